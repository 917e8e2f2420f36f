"""The local AWS emulator: requests serialized, transactions all-or-nothing, streams intact.

The emulator runs in a thread of this process on a free port and is reached over HTTP with
boto3, as the app reaches it. Running in-process also lets one test look at moto's table
objects, to prove that a cancelled transaction no longer copies or replaces the table.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from infra.local.aws_emulator import EmulatorServer, start_in_thread

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
CONCURRENT_ORDERS = 150


# --- world ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    server = start_in_thread()
    yield server
    server.stop()


def _aws_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=CONCURRENT_ORDERS + 10, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def dynamodb(emulator: EmulatorServer) -> Any:
    return _aws_client("dynamodb", emulator.url)


@pytest.fixture(scope="module")
def streams(emulator: EmulatorServer) -> Any:
    return _aws_client("dynamodbstreams", emulator.url)


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
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
    )
    return name


def stock_key(sku: str) -> dict[str, Any]:
    return {"pk": {"S": f"STOCK#{sku}"}, "sk": {"S": "WH#shanghai"}}


def order_key(order_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "ORDER"}}


def put_stock(dynamodb: Any, table: str, sku: str, available: int) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={**stock_key(sku), "available": {"N": str(available)}, "reserved": {"N": "0"}},
    )


def reserve(table: str, sku: str, quantity: int, *, all_old: bool = False) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": table,
        "Key": stock_key(sku),
        "UpdateExpression": "SET available = available - :q, reserved = reserved + :q",
        "ConditionExpression": "available >= :q",
        "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
    }
    if all_old:
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": update}


def new_order(table: str, order_id: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": {**order_key(order_id), "status": {"S": "reserved"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def available(dynamodb: Any, table: str, sku: str) -> int:
    item = dynamodb.get_item(TableName=table, Key=stock_key(sku), ConsistentRead=True)["Item"]
    return int(item["available"]["N"])


def every_item(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=table)
        for item in page["Items"]
    ]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def order_count(dynamodb: Any, table: str) -> int:
    return sum(1 for item in every_item(dynamodb, table) if item["pk"]["S"].startswith("ORDER#"))


def cancellation_codes(error: ClientError) -> list[str]:
    return [reason["Code"] for reason in error.response["CancellationReasons"]]


def stream_iterator_at_latest(dynamodb: Any, streams: Any, table: str) -> str:
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard_id = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    return streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="LATEST"
    )["ShardIterator"]


def read_stream(streams: Any, iterator: str) -> list[dict[str, Any]]:
    """Every record from ``iterator`` up to the end of the shard, in order."""
    records: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=100)
        if not page["Records"]:
            return records
        records.extend(page["Records"])
        iterator = page["NextShardIterator"]


def cancel_a_reservation(dynamodb: Any, table: str) -> ClientError:
    """A transaction whose last condition fails after three operations that would succeed.

    Expects stock A with enough and stock B with less than 1000 available, and an order
    "placed-earlier". moto's own rollback would have applied the first three before the swap.
    """
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                reserve(table, "SKU-A", 1),
                new_order(table, f"O-{uuid.uuid4().hex[:8]}"),
                {"Delete": {"TableName": table, "Key": order_key("placed-earlier")}},
                reserve(table, "SKU-B", 1000, all_old=True),
            ]
        )
    return cancelled.value


# --- behaviour ------------------------------------------------------------------------------


def test_concurrent_conditional_transactions_never_oversell_and_stay_consistent(
    dynamodb: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 100)
    put_stock(dynamodb, table, "SKU-B", 130)
    start_together = threading.Barrier(CONCURRENT_ORDERS)
    committed: list[str] = []
    cancelled: list[list[str]] = []
    unexpected: list[BaseException] = []

    def place_order(order_id: str) -> None:
        start_together.wait()
        try:
            dynamodb.transact_write_items(
                TransactItems=[
                    reserve(table, "SKU-A", 1),
                    reserve(table, "SKU-B", 1),
                    new_order(table, order_id),
                ]
            )
            committed.append(order_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                unexpected.append(error)
            else:
                cancelled.append(cancellation_codes(error))
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            unexpected.append(error)

    threads = [
        threading.Thread(target=place_order, args=(f"O-{number:04d}",))
        for number in range(CONCURRENT_ORDERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    assert len(committed) == 100
    assert cancelled == [["ConditionalCheckFailed", "None", "None"]] * 50
    assert available(dynamodb, table, "SKU-A") == 0
    assert available(dynamodb, table, "SKU-B") == 30
    assert order_count(dynamodb, table) == len(committed)


def test_cancelled_transaction_changes_nothing_and_emits_no_stream_record(
    dynamodb: Any, streams: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 5)
    put_stock(dynamodb, table, "SKU-B", 1)
    dynamodb.put_item(
        TableName=table, Item={**order_key("placed-earlier"), "status": {"S": "paid"}}
    )
    before = every_item(dynamodb, table)
    iterator = stream_iterator_at_latest(dynamodb, streams, table)

    error = cancel_a_reservation(dynamodb, table)

    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    assert cancellation_codes(error) == ["None", "None", "None", "ConditionalCheckFailed"]
    stock_b = dynamodb.get_item(TableName=table, Key=stock_key("SKU-B"))["Item"]
    assert error.response["CancellationReasons"][3]["Item"] == stock_b
    assert every_item(dynamodb, table) == before
    assert read_stream(streams, iterator) == []


def test_stream_reader_keeps_its_place_across_cancelled_transactions(
    dynamodb: Any, streams: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 5)
    put_stock(dynamodb, table, "SKU-B", 1)
    dynamodb.put_item(
        TableName=table, Item={**order_key("placed-earlier"), "status": {"S": "paid"}}
    )
    iterator = stream_iterator_at_latest(dynamodb, streams, table)

    dynamodb.put_item(TableName=table, Item={**order_key("first-write"), "status": {"S": "new"}})
    cancel_a_reservation(dynamodb, table)
    cancel_a_reservation(dynamodb, table)
    dynamodb.update_item(
        TableName=table,
        Key=stock_key("SKU-B"),
        UpdateExpression="SET available = :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
    )

    records = read_stream(streams, iterator)
    assert [(r["eventName"], r["dynamodb"]["Keys"]) for r in records] == [
        ("INSERT", order_key("first-write")),
        ("MODIFY", stock_key("SKU-B")),
    ]
    assert records[1]["dynamodb"]["OldImage"]["available"] == {"N": "1"}
    assert records[1]["dynamodb"]["NewImage"]["available"] == {"N": "7"}


def test_cancelled_transaction_neither_copies_nor_replaces_the_table(
    dynamodb: Any, table: str
) -> None:
    # Structural, not timed: moto's own rollback deep-copied the table (a new Table object and
    # a copy of every item) and swapped the copy in. Cost now depends on the items touched.
    put_stock(dynamodb, table, "SKU-A", 5)
    put_stock(dynamodb, table, "SKU-B", 1)
    dynamodb.put_item(
        TableName=table, Item={**order_key("placed-earlier"), "status": {"S": "paid"}}
    )
    for first in range(0, 300, 25):
        dynamodb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": f"PRODUCT#{n}"}, "sk": {"S": "P"}}}}
                    for n in range(first, first + 25)
                ]
            }
        )
    moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[table]
    items_store, stream_shard = moto_table.items, moto_table.stream_shard
    tables_created, items_created = len(Table.instances_tracked), len(Item.instances_tracked)

    cancel_a_reservation(dynamodb, table)
    dynamodb.transact_write_items(TransactItems=[reserve(table, "SKU-A", 1)])

    assert dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[table] is moto_table
    assert moto_table.items is items_store
    assert moto_table.stream_shard is stream_shard
    assert len(Table.instances_tracked) == tables_created
    assert len(Item.instances_tracked) - items_created < 20  # a few per operation, not 300+


def test_committed_transaction_writes_every_item_with_one_stream_record_each(
    dynamodb: Any, streams: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 5)
    put_stock(dynamodb, table, "SKU-B", 1)
    dynamodb.put_item(
        TableName=table, Item={**order_key("placed-earlier"), "status": {"S": "paid"}}
    )
    iterator = stream_iterator_at_latest(dynamodb, streams, table)

    dynamodb.transact_write_items(
        TransactItems=[
            reserve(table, "SKU-A", 2),
            {
                "Update": {
                    "TableName": table,
                    "Key": stock_key("SKU-NEW"),
                    "UpdateExpression": "SET available = :n",
                    "ExpressionAttributeValues": {":n": {"N": "3"}},
                }
            },
            new_order(table, "O-1"),
            {"Delete": {"TableName": table, "Key": order_key("placed-earlier")}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": stock_key("SKU-B"),
                    "ConditionExpression": "available >= :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )

    assert available(dynamodb, table, "SKU-A") == 3
    assert available(dynamodb, table, "SKU-NEW") == 3
    assert "Item" in dynamodb.get_item(TableName=table, Key=order_key("O-1"))
    assert "Item" not in dynamodb.get_item(TableName=table, Key=order_key("placed-earlier"))
    records = read_stream(streams, iterator)
    assert [(r["eventName"], r["dynamodb"]["Keys"]) for r in records] == [
        ("MODIFY", stock_key("SKU-A")),
        ("INSERT", stock_key("SKU-NEW")),
        ("INSERT", order_key("O-1")),
        ("REMOVE", order_key("placed-earlier")),
    ]
    assert records[1]["dynamodb"]["NewImage"]["available"] == {"N": "3"}


def test_two_operations_on_one_item_are_rejected_without_any_write(
    dynamodb: Any, streams: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 5)
    before = every_item(dynamodb, table)
    iterator = stream_iterator_at_latest(dynamodb, streams, table)

    with pytest.raises(ClientError) as rejected:
        dynamodb.transact_write_items(
            TransactItems=[
                new_order(table, "O-1"),
                reserve(table, "SKU-A", 1),
                reserve(table, "SKU-A", 1),
            ]
        )

    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert "multiple operations on one item" in rejected.value.response["Error"]["Message"]
    assert every_item(dynamodb, table) == before
    assert read_stream(streams, iterator) == []


def test_invalid_update_fails_the_request_as_validation_error_without_any_write(
    dynamodb: Any, streams: Any, table: str
) -> None:
    put_stock(dynamodb, table, "SKU-A", 5)
    put_stock(dynamodb, table, "SKU-B", 0)
    before = every_item(dynamodb, table)
    iterator = stream_iterator_at_latest(dynamodb, streams, table)
    undefined_value = {
        "Update": {
            "TableName": table,
            "Key": stock_key("SKU-A"),
            "UpdateExpression": "SET available = available - :undefined",
            "ExpressionAttributeValues": {":q": {"N": "1"}},
        }
    }

    with pytest.raises(ClientError) as rejected:
        dynamodb.transact_write_items(
            TransactItems=[new_order(table, "O-1"), reserve(table, "SKU-B", 1), undefined_value]
        )

    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert every_item(dynamodb, table) == before
    assert read_stream(streams, iterator) == []


def test_command_line_emulator_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.aws_emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready_line = process.stdout.readline().strip()
        assert ready_line.startswith("aws emulator listening on http://127.0.0.1:")
        url = ready_line.rsplit(" ", 1)[1]
        sqs = _aws_client("sqs", url)
        queue_url = sqs.create_queue(QueueName="fulfilment")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
        received = sqs.receive_message(QueueUrl=queue_url)["Messages"]
        assert [message["Body"] for message in received] == ["hello"]
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=20)
    assert exit_code == 0


def _trim_horizon(dynamodb: Any, streams: Any, table: str) -> str:
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    return streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]


def test_stream_records_a_reader_has_passed_are_released_and_nothing_unread_is_lost(
    dynamodb: Any, streams: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("infra.local.aws_emulator.STREAM_RECORDS_KEPT", 5)
    iterator = _trim_horizon(dynamodb, streams, table)
    seen: list[str] = []
    for round_number in range(6):
        for n in range(10):
            put_stock(dynamodb, table, f"SKU-{round_number}-{n}", 1)
        page = read_stream(streams, iterator)
        seen += [record["dynamodb"]["Keys"]["pk"]["S"] for record in page]
        iterator = streams.get_shard_iterator(
            StreamArn=dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"],
            ShardId=_shard_id(dynamodb, streams, table),
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            SequenceNumber=page[-1]["dynamodb"]["SequenceNumber"],
        )["ShardIterator"]

    # The reader got every record once, in order...
    assert seen == [f"STOCK#SKU-{r}-{n}" for r in range(6) for n in range(10)]
    # ...while the emulator kept only the newest few of those it had handed out.
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table).stream_shard
    assert len(shard.items) < 20
    # A new reader from the horizon starts at what is still kept.
    assert len(read_stream(streams, _trim_horizon(dynamodb, streams, table))) == len(shard.items)


def _shard_id(dynamodb: Any, streams: Any, table: str) -> str:
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    return str(
        streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    )


def test_written_items_are_not_kept_alive_by_motos_instance_list(dynamodb: Any, table: str) -> None:
    tracked_before = len(Item.instances_tracked)
    for n in range(50):
        put_stock(dynamodb, table, f"SKU-{n}", 1)
    assert len(Item.instances_tracked) == tracked_before


def test_sent_emails_and_sms_can_be_read_back_from_the_emulator(emulator: EmulatorServer) -> None:
    ses = _aws_client("ses", emulator.url)
    ses.verify_email_identity(EmailAddress="orders@orderdesk.test")
    ses.send_email(
        Source="orders@orderdesk.test",
        Destination={"ToAddresses": ["li.lei@example.com"]},
        Message={"Subject": {"Data": "Your code"}, "Body": {"Text": {"Data": "code 123456"}}},
    )
    _aws_client("sns", emulator.url).publish(PhoneNumber="+8613800000000", Message="code 654321")

    with urllib.request.urlopen(f"{emulator.url}/_emulator/sent-messages", timeout=10) as answer:
        sent = json.loads(answer.read())["messages"]

    assert {
        "channel": "email",
        "to": ["li.lei@example.com"],
        "subject": "Your code",
        "body": "code 123456",
    } in sent
    assert {
        "channel": "sms",
        "to": ["+8613800000000"],
        "subject": None,
        "body": "code 654321",
    } in sent
