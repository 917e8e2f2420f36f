"""The event pump against a moto server: SQS batches and redrive, stream records, schedules."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice import Chalice, Cron, Rate

from infra.local.pump import Pump, PumpSettings, parse_schedule

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint_url(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server: the project's locked emulator when it is there, plain moto otherwise."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch_module.setenv(name, value)
    monkeypatch_module.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch_module.delenv("AWS_PROFILE", raising=False)
    try:
        from infra.local.aws_emulator import start_in_thread
    except ImportError:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    emulator = start_in_thread(0)
    try:
        yield emulator.url
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def sqs(endpoint_url: str) -> Any:
    return boto3.client("sqs", region_name=REGION, endpoint_url=endpoint_url)


@pytest.fixture
def dynamodb(endpoint_url: str) -> Any:
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)


def _env(endpoint_url: str, **extra: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "STAGE": "test",
        **extra,
    }


def _run_until(pump: Pump, done: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the pump did not get there in time")
        if pump.run_once() == 0:
            time.sleep(0.05)


def _queue_with_dlq(sqs: Any, max_receive_count: int = 2) -> tuple[str, str, str]:
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return name, queue_url, dlq_url


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _dlq_bodies(sqs: Any, dlq_url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    return [message["Body"] for message in messages]


# --- SQS ---------------------------------------------------------------------------------------


def test_poison_message_goes_to_dlq_while_rest_of_its_batch_is_deleted(
    sqs: Any, endpoint_url: str
) -> None:
    name, queue_url, dlq_url = _queue_with_dlq(sqs, max_receive_count=2)
    deliveries: list[dict[str, Any]] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def consume(event: Any) -> dict[str, Any]:
        failures = []
        for record in event:
            raw = record.to_dict()
            deliveries.append(raw)
            if raw["body"] == "poison":
                failures.append({"itemIdentifier": raw["messageId"]})
        return {"batchItemFailures": failures}

    for body in ("a", "b", "poison", "c"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(sqs_retry_delay=0))

    _run_until(pump, lambda: _queue_depth(sqs, queue_url) == 0 and _queue_depth(sqs, dlq_url) > 0)

    bodies = [d["body"] for d in deliveries]
    assert sorted(b for b in bodies if b != "poison") == ["a", "b", "c"]  # never redelivered
    assert bodies.count("poison") == 2  # maxReceiveCount receives, then the DLQ
    assert _dlq_bodies(sqs, dlq_url) == ["poison"]
    poison = [d for d in deliveries if d["body"] == "poison"]
    assert [d["attributes"]["ApproximateReceiveCount"] for d in poison] == ["1", "2"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    first = deliveries[0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == queue_arn
    assert first["awsRegion"] == REGION
    assert first["md5OfBody"] == hashlib.md5(first["body"].encode()).hexdigest()
    assert len({d["messageId"] for d in deliveries if d["body"] != "poison"}) == 3


def test_handler_that_raises_gets_its_whole_batch_again(sqs: Any, endpoint_url: str) -> None:
    name, queue_url, dlq_url = _queue_with_dlq(sqs, max_receive_count=3)
    batches: list[list[dict[str, Any]]] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def consume(event: Any) -> None:
        batches.append([record.to_dict() for record in event])
        if len(batches) == 1:
            raise RuntimeError("the database is down")

    for body in ("one", "two", "three"):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": "order.paid"}},
        )
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(sqs_retry_delay=0))

    _run_until(pump, lambda: len(batches) >= 2 and _queue_depth(sqs, queue_url) == 0)

    first_ids = sorted(record["messageId"] for record in batches[0])
    second_ids = sorted(record["messageId"] for record in batches[1])
    assert len(first_ids) == 3
    assert second_ids == first_ids
    assert {r["attributes"]["ApproximateReceiveCount"] for r in batches[1]} == {"2"}
    assert batches[1][0]["messageAttributes"]["event_type"]["stringValue"] == "order.paid"
    assert batches[1][0]["messageAttributes"]["event_type"]["dataType"] == "String"
    assert _queue_depth(sqs, dlq_url) == 0


def test_failure_list_naming_an_unknown_id_fails_the_whole_batch(
    sqs: Any, endpoint_url: str
) -> None:
    name, queue_url, _ = _queue_with_dlq(sqs, max_receive_count=5)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def consume(event: Any) -> dict[str, Any]:
        batches.append([record.to_dict()["body"] for record in event])
        if len(batches) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]}
        return {"batchItemFailures": []}

    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    sqs.send_message(QueueUrl=queue_url, MessageBody="y")
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(sqs_retry_delay=0))

    _run_until(pump, lambda: len(batches) >= 2 and _queue_depth(sqs, queue_url) == 0)

    assert sorted(batches[0]) == sorted(batches[1]) == ["x", "y"]


def test_logical_queue_name_resolves_through_queue_url_env_var(sqs: Any, endpoint_url: str) -> None:
    _, queue_url, _ = _queue_with_dlq(sqs)
    bodies: list[str] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue="fulfilment", batch_size=1)
    def fulfil(event: Any) -> None:
        bodies.extend(record.body for record in event)

    sqs.send_message(QueueUrl=queue_url, MessageBody="order-1")
    pump = Pump(app, _env(endpoint_url, FULFILMENT_QUEUE_URL=queue_url))

    _run_until(pump, lambda: bodies == ["order-1"])

    assert _queue_depth(sqs, queue_url) == 0


def _send_backlog(sqs: Any, queue_url: str, count: int) -> list[str]:
    bodies = [f"m-{index:03d}" for index in range(count)]
    for start in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )
    return bodies


def test_queue_backlog_larger_than_a_batch_drains_in_one_pass_in_handler_sized_batches(
    sqs: Any, endpoint_url: str
) -> None:
    name, queue_url, _ = _queue_with_dlq(sqs)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def consume(event: Any) -> None:
        batches.append([record.body for record in event])

    sent = _send_backlog(sqs, queue_url, 35)
    pump = Pump(app, _env(endpoint_url))

    assert pump.run_once() == 35
    assert [len(batch) for batch in batches] == [10, 10, 10, 5]
    assert sorted(body for batch in batches for body in batch) == sent
    assert _queue_depth(sqs, queue_url) == 0  # every delivered message was deleted


def test_queue_backlog_is_drained_a_bounded_number_of_batches_per_pass(
    sqs: Any, endpoint_url: str
) -> None:
    name, queue_url, _ = _queue_with_dlq(sqs)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=5)
    def consume(event: Any) -> None:
        batches.append([record.body for record in event])

    sent = _send_backlog(sqs, queue_url, 23)
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(sqs_batches_per_pass=3))

    assert pump.run_once() == 15
    assert _queue_depth(sqs, queue_url) == 8
    assert pump.run_once() == 8
    assert [len(batch) for batch in batches] == [5, 5, 5, 5, 3]
    assert sorted(body for batch in batches for body in batch) == sent
    assert _queue_depth(sqs, queue_url) == 0


def test_failed_messages_in_a_backlog_are_kept_while_the_rest_is_deleted(
    sqs: Any, endpoint_url: str
) -> None:
    name, queue_url, dlq_url = _queue_with_dlq(sqs, max_receive_count=5)
    seen: list[str] = []
    app = Chalice(app_name="pump-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def consume(event: Any) -> dict[str, Any]:
        failures = []
        for record in event:
            seen.append(record.body)
            if record.body == "m-004":
                failures.append({"itemIdentifier": record.to_dict()["messageId"]})
        return {"batchItemFailures": failures}

    sent = _send_backlog(sqs, queue_url, 25)
    # The failed message becomes visible again only after sqs_retry_delay: not in this pass.
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(sqs_retry_delay=30))

    assert pump.run_once() == 25
    assert sorted(seen) == sent  # each once, the failure did not stop the backlog
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # m-004, not deleted
    assert pump.run_once() == 0
    assert _queue_depth(sqs, dlq_url) == 0


# --- DynamoDB streams --------------------------------------------------------------------------


def _table_with_stream(dynamodb: Any) -> tuple[str, str]:
    name = f"pump-{uuid.uuid4().hex[:8]}"
    description = dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return name, description["LatestStreamArn"]


def test_stream_records_reach_the_handler_shaped_like_lambdas(
    dynamodb: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    records: list[dict[str, Any]] = []
    table_names: list[str] = []
    app = Chalice(app_name="pump-test")

    # Declared with another table's ARN, as a placeholder would be: the env's stream is used.
    @app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/x/stream/y")
    def outbox(event: Any) -> None:
        for record in event:
            records.append(record.to_dict())
            table_names.append(record.table_name)

    key = {"pk": {"S": "ORDER#1"}, "sk": {"S": "OUTBOX#1"}}
    dynamodb.put_item(TableName=table, Item={**key, "blob": {"B": b"\x00\x01"}, "n": {"N": "1"}})
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    dynamodb.delete_item(TableName=table, Key=key)
    pump = Pump(app, _env(endpoint_url, TABLE_STREAM_ARN=stream_arn))

    _run_until(pump, lambda: len(records) >= 3)

    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    now = time.time()
    for record in records:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stream_arn
        assert record["awsRegion"] == REGION
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, int | float)
        assert abs(now - created) < 120
        assert record["dynamodb"]["Keys"] == key
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table_names == [table] * 3
    insert, modify, remove = records
    assert insert["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # base64, as in Lambda
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert "NewImage" not in remove["dynamodb"]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences == sorted(sequences)


def test_stream_batch_item_failure_retries_from_the_first_failed_record(
    dynamodb: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def outbox(event: Any) -> dict[str, Any]:
        raws = [record.to_dict() for record in event]
        batches.append([r["dynamodb"]["Keys"]["sk"]["S"] for r in raws])
        failed = [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in raws
            if r["dynamodb"]["Keys"]["sk"]["S"] == "flaky" and len(batches) == 1
        ]
        return {"batchItemFailures": failed}

    for sk in ("first", "flaky", "last"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": sk}})
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(stream_retry_delay=0))

    _run_until(pump, lambda: len(batches) >= 2)
    for _ in range(5):
        pump.run_once()

    assert batches == [["first", "flaky", "last"], ["flaky", "last"]]


def test_stream_record_that_keeps_failing_is_given_up_and_the_shard_moves_on(
    dynamodb: Any, sqs: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    failure_queue = sqs.create_queue(QueueName=f"stream-failures-{uuid.uuid4().hex[:8]}")[
        "QueueUrl"
    ]
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def outbox(event: Any) -> None:
        keys = [record.keys["sk"]["S"] for record in event]
        batches.append(keys)
        if "poison" in keys:
            raise ValueError("cannot decode")

    for sk in ("before", "poison", "after"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": sk}})
    settings = PumpSettings(
        stream_max_retries=1, stream_retry_delay=0, on_failure_queue_url=failure_queue
    )
    pump = Pump(app, _env(endpoint_url), settings=settings)

    _run_until(pump, lambda: bool(batches) and batches[-1] == ["after"])

    # Bisecting isolates the poison record; it is retried once more, then given up on.
    assert batches.count(["poison"]) == 2
    assert sum(batch.count("before") for batch in batches if "poison" not in batch) == 1
    messages = sqs.receive_message(QueueUrl=failure_queue).get("Messages", [])
    assert len(messages) == 1
    info = json.loads(messages[0]["Body"])["DDBStreamBatchInfo"]
    assert info["streamArn"] == stream_arn
    assert info["batchSize"] == 1


def _write_stream_backlog(dynamodb: Any, table: str, count: int) -> list[str]:
    keys = [f"item-{index:04d}" for index in range(count)]
    for sk in keys:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": sk}})
    return keys


def test_stream_backlog_larger_than_a_batch_drains_in_one_pass_in_order(
    dynamodb: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def outbox(event: Any) -> None:
        batches.append([record.keys["sk"]["S"] for record in event])

    written = _write_stream_backlog(dynamodb, table, 35)
    pump = Pump(app, _env(endpoint_url))

    delivered = pump.run_once()

    assert delivered == 35
    assert [len(batch) for batch in batches] == [10, 10, 10, 5]  # the handler's batch size
    assert [sk for batch in batches for sk in batch] == written


def test_stream_backlog_is_drained_a_bounded_number_of_batches_per_pass(
    dynamodb: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def outbox(event: Any) -> None:
        batches.append([record.keys["sk"]["S"] for record in event])

    written = _write_stream_backlog(dynamodb, table, 25)
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(stream_batches_per_pass=2))

    assert pump.run_once() == 20
    assert pump.run_once() == 5
    assert [len(batch) for batch in batches] == [10, 10, 5]
    assert [sk for batch in batches for sk in batch] == written


def test_stream_failure_in_a_backlog_stops_the_shard_for_this_pass_and_retries_from_it(
    dynamodb: Any, endpoint_url: str
) -> None:
    table, stream_arn = _table_with_stream(dynamodb)
    batches: list[list[str]] = []
    app = Chalice(app_name="pump-test")

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def outbox(event: Any) -> dict[str, Any]:
        raws = [record.to_dict() for record in event]
        batches.append([r["dynamodb"]["Keys"]["sk"]["S"] for r in raws])
        failed = [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in raws
            if r["dynamodb"]["Keys"]["sk"]["S"] == "item-0013" and len(batches) == 2
        ]
        return {"batchItemFailures": failed}

    written = _write_stream_backlog(dynamodb, table, 30)
    pump = Pump(app, _env(endpoint_url), settings=PumpSettings(stream_retry_delay=0))

    assert pump.run_once() == 13  # the first batch, then the second up to its failed record
    _run_until(pump, lambda: bool(batches) and batches[-1][-1] == written[-1])

    assert batches[1] == written[10:20]
    assert batches[2] == written[13:20]  # retried from the failed record, nothing skipped
    # Counting only what was checkpointed of the failed batch, every record arrives once, in order.
    checkpointed = [batches[0], batches[1][:3], *batches[2:]]
    assert [sk for batch in checkpointed for sk in batch] == written


# --- schedules ---------------------------------------------------------------------------------


def test_tick_fires_a_schedule_handler_with_a_scheduled_event(endpoint_url: str) -> None:
    events: list[dict[str, Any]] = []
    app = Chalice(app_name="pump-test")

    @app.schedule("cron(30 16 * * ? *)")
    def analytics(event: Any) -> None:
        events.append(event.to_dict())

    pump = Pump(app, _env(endpoint_url))
    pump.tick("analytics", detail={"date": "2026-11-24"})

    assert len(events) == 1
    event = events[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["detail"] == {"date": "2026-11-24"}
    assert event["resources"][0].startswith("arn:aws:events:us-east-1:")
    assert event["resources"][0].endswith("analytics")
    datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(KeyError):
        pump.tick("no-such-job")


def test_rate_schedule_fires_once_per_interval_and_never_catches_up(endpoint_url: str) -> None:
    times: list[str] = []
    app = Chalice(app_name="pump-test")

    @app.schedule(Rate(5, unit=Rate.MINUTES))
    def expire_reservations(event: Any) -> None:
        times.append(event.time)

    pump = Pump(app, _env(endpoint_url))
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    pump.run_once(now=start)
    pump.run_once(now=start + timedelta(minutes=4, seconds=59))
    assert times == []
    pump.run_once(now=start + timedelta(minutes=5))
    assert times == ["2026-11-24T10:05:00Z"]
    pump.run_once(now=start + timedelta(minutes=26))  # four slots missed: fires once
    assert times == ["2026-11-24T10:05:00Z", "2026-11-24T10:10:00Z"]
    pump.run_once(now=start + timedelta(minutes=29))
    assert len(times) == 2
    pump.run_once(now=start + timedelta(minutes=30))
    assert len(times) == 3


def test_a_schedule_handler_that_raises_does_not_stop_the_pump(endpoint_url: str) -> None:
    calls: list[str] = []
    app = Chalice(app_name="pump-test")

    @app.schedule("rate(1 minute)")
    def broken(event: Any) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    @app.schedule("rate(1 minute)")
    def healthy(event: Any) -> None:
        calls.append("healthy")

    pump = Pump(app, _env(endpoint_url))
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    pump.run_once(now=start)
    pump.run_once(now=start + timedelta(minutes=1))
    pump.run_once(now=start + timedelta(minutes=2))

    assert calls == ["broken", "healthy", "broken", "healthy"]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(30 16 * * ? *)", "2026-11-24T16:30", "2026-11-25T16:30"),
        ("cron(30 16 * * ? *)", "2026-11-24T16:29", "2026-11-24T16:30"),
        ("cron(0/15 * * * ? *)", "2026-11-24T10:07", "2026-11-24T10:15"),
        ("cron(0/15 * * * ? *)", "2026-11-24T23:50", "2026-11-25T00:00"),
        ("cron(0 9 ? * MON-FRI *)", "2026-11-27T10:00", "2026-11-30T09:00"),  # Fri -> Mon
        ("cron(0 9 ? * 2-6 *)", "2026-11-28T08:00", "2026-11-30T09:00"),  # Sat -> Mon
        ("cron(0 0 1 JAN,JUL ? *)", "2026-11-24T00:00", "2027-01-01T00:00"),
        ("cron(15,45 8-9 * * ? *)", "2026-11-24T08:45", "2026-11-24T09:15"),
        ("cron(0 12 29 2 ? *)", "2026-03-01T00:00", "2028-02-29T12:00"),
        ("cron(0 0 * * ? 2027)", "2026-11-24T00:00", "2027-01-01T00:00"),
        ("cron(5 0 ? * SUN *)", "2026-11-24T00:00", "2026-11-29T00:05"),
        ("rate(5 minutes)", "2026-11-24T10:00", "2026-11-24T10:05"),
        ("rate(1 hour)", "2026-11-24T10:00", "2026-11-24T11:00"),
        ("rate(2 days)", "2026-11-24T10:00", "2026-11-26T10:00"),
    ],
)
def test_schedule_expression_names_its_next_time(
    expression: str, after: str, expected: str
) -> None:
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert parse_schedule(expression).next_after(moment) == datetime.fromisoformat(
        expected
    ).replace(tzinfo=UTC)


def test_chalice_schedule_objects_parse_like_their_strings() -> None:
    assert parse_schedule(Rate(1, unit=Rate.HOURS)).expression == "rate(1 hour)"
    cron = parse_schedule(Cron(0, 18, "?", "*", "MON-FRI", "*"))
    assert cron.expression == "cron(0 18 ? * MON-FRI *)"


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",  # AWS wants the singular for 1
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 seconds)",
        "cron(0 12 * * * *)",  # one of the day fields must be ?
        "cron(0 12 ? * ? *)",
        "cron(0 12 L * ? *)",  # last-day-of-month is not evaluated locally
        "cron(0 12 ? * 6#3 *)",
        "cron(60 12 * * ? *)",
        "cron(0 12 * *)",
        "every day",
    ],
)
def test_invalid_or_unsupported_schedule_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(expression)


# --- make tick ---------------------------------------------------------------------------------

TICK_APP = """
import json
import os

from chalice import Chalice

app = Chalice(app_name="tick-sample")


@app.schedule("cron(30 16 * * ? *)")
def nightly(event):
    with open(os.environ["TICK_OUT"], "w") as out:
        json.dump({"event": event.to_dict(), "stage": os.environ.get("STAGE")}, out)
"""


def _tick(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.tick",
            "--port",
            "18999",
            *args,
            "--app",
            "tick_sample_app:app",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_tick_runs_the_named_schedule_with_the_stacks_env_and_the_date(
    tmp_path: Path,
) -> None:
    out = tmp_path / "tick.json"
    (tmp_path / "tick_sample_app.py").write_text(TICK_APP)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "stack-18999.json").write_text(
        json.dumps({"env": {"STAGE": "local", "TICK_OUT": str(out)}})
    )

    result = _tick(tmp_path, "nightly", "--date", "2026-11-24")

    assert result.returncode == 0, result.stderr
    ran = json.loads(out.read_text())
    assert ran["stage"] == "local"
    assert ran["event"]["detail-type"] == "Scheduled Event"
    assert ran["event"]["detail"] == {"date": "2026-11-24"}

    unknown = _tick(tmp_path, "weekly")
    assert unknown.returncode == 2
    assert "nightly" in unknown.stderr
    bad_date = _tick(tmp_path, "nightly", "--date", "24/11/2026")
    assert bad_date.returncode == 2
