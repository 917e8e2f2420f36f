"""The expiry schedule and the outbox stream handler, invoked as Lambda would invoke them.

Both handlers get Lambda-shaped events through Chalice's test client: the schedule an
EventBridge Scheduled Event whose ``time`` is the clock the test controls, the stream
handler the table's real stream records (read from moto) shaped as Lambda delivers them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from test_orders_api import (
    address,
    build_world,
    ledger_types,
    levels,
    order_body,
    outbox_events,
    place,
    receive,
)

from chalicelib.adapters import queues
from chalicelib.domain.orders import Order, OrderStatus
from chalicelib.observability import logger
from chalicelib.services import orders as order_service
from chalicelib.services import stock
from chalicelib.settings import get_settings
from chalicelib.store import orders as order_store
from chalicelib.store import outbox, tables
from chalicelib.store.unit_of_work import UnitOfWork
from chalicelib.workers.outbox import ROUTES
from infra.local.pump import scheduled_event, sqs_record, stream_record

if TYPE_CHECKING:
    from conftest import Api

REGION = "us-east-1"


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    yield api
    stock.forget_cached_warehouses()


def tick(api: Api, at: datetime) -> Any:
    """Fire the expiry schedule as EventBridge would, for the moment ``at``."""
    event = scheduled_event("orderdesk-test-expire_orders", region=REGION, when=at)
    return api.client.lambda_.invoke("expire_orders", event).payload


def stored(order_id: str) -> Order:
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    return order


def change_directly(order: Order, changed: Order) -> None:
    """A change made by a later use case (payment), written as it would write it."""
    uow = UnitOfWork()
    order_store.add_order_change(uow, changed, previous=order)
    uow.commit()


# --- expiry ------------------------------------------------------------------------------------


def test_an_unpaid_order_expires_after_its_window_and_its_stock_is_released(world: Api) -> None:
    receive("MUG", "SH", 4)
    order = place(world, order_body({"MUG": 3})).json_body
    expires_at = datetime.fromisoformat(order["expires_at"])

    early = tick(world, expires_at - timedelta(seconds=30))
    assert early == {"expired": [], "skipped": []}
    assert levels("MUG") == {"SH": (4, 3, 1)}

    due = tick(world, expires_at + timedelta(seconds=1))

    assert due == {"expired": [order["order_id"]], "skipped": []}
    expired = stored(order["order_id"])
    assert expired.status is OrderStatus.EXPIRED
    assert expired.history[-1].from_status == "pending_payment"
    assert expired.history[-1].to_status == "expired"
    assert expired.history[-1].actor == "system"
    assert levels("MUG") == {"SH": (4, 0, 4)}
    assert ledger_types("MUG", "SH") == ["received", "reserved", "released"]
    (event,) = outbox_events("order.expired")
    assert event["payload"]["order_id"] == order["order_id"]
    # It has left the due index: the next run finds nothing.
    assert tick(world, expires_at + timedelta(minutes=5)) == {"expired": [], "skipped": []}


def test_orders_in_every_shard_of_the_due_index_are_expired(world: Api) -> None:
    receive("MUG", "SH", 50)
    placed = [place(world, order_body({"MUG": 1})).json_body for _ in range(12)]
    shards = {order_store.expiry_shard(order["order_id"]) for order in placed}
    assert len(shards) > 1  # otherwise this would not show that every shard is read
    latest = max(datetime.fromisoformat(order["expires_at"]) for order in placed)

    result = tick(world, latest + timedelta(seconds=1))

    assert sorted(result["expired"]) == sorted(order["order_id"] for order in placed)
    assert levels("MUG") == {"SH": (50, 0, 50)}


def test_a_paid_order_is_never_expired(world: Api) -> None:
    receive("MUG", "SH", 4)
    placed = place(world, order_body({"MUG": 2})).json_body
    order = stored(placed["order_id"])
    change_directly(order, order.transition(to=OrderStatus.PAID, at=order.created_at, actor="psp"))

    result = tick(world, order.expires_at + timedelta(minutes=1))

    assert result == {"expired": [], "skipped": []}
    assert stored(order.order_id).status is OrderStatus.PAID
    assert levels("MUG") == {"SH": (4, 2, 2)}


def test_a_payment_that_lands_after_the_job_listed_the_order_wins(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive("MUG", "SH", 4)
    placed = place(world, order_body({"MUG": 2})).json_body
    listed = stored(placed["order_id"])  # what the (eventually consistent) index still shows
    change_directly(
        listed, listed.transition(to=OrderStatus.PAID, at=listed.created_at, actor="psp")
    )
    monkeypatch.setattr(order_store, "orders_due_for_expiry", lambda now, limit_per_shard: [listed])

    result = tick(world, listed.expires_at + timedelta(minutes=1))

    assert result == {"expired": [], "skipped": [listed.order_id]}
    assert stored(listed.order_id).status is OrderStatus.PAID
    assert levels("MUG") == {"SH": (4, 2, 2)}
    assert outbox_events("order.expired") == []


def test_an_extended_hold_is_respected(world: Api) -> None:
    receive("MUG", "SH", 4)
    order = stored(place(world, order_body({"MUG": 1})).json_body["order_id"])
    extended_until = order.expires_at + timedelta(minutes=10)
    change_directly(order, order.extend_expiry(extended_until, at=order.created_at))

    at_first_deadline = tick(world, order.expires_at + timedelta(seconds=1))
    after_extension = tick(world, extended_until + timedelta(seconds=1))

    assert at_first_deadline == {"expired": [], "skipped": []}
    assert after_extension["expired"] == [order.order_id]


def test_the_payment_window_is_configurable(world: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_PAYMENT_WINDOW_SECONDS", "60")
    get_settings.cache_clear()
    receive("MUG", "SH", 4)

    order = place(world, order_body({"MUG": 1})).json_body

    window = datetime.fromisoformat(order["expires_at"]) - datetime.fromisoformat(
        order["created_at"]
    )
    assert window == timedelta(seconds=60)


def test_an_expired_order_cannot_be_cancelled(world: Api) -> None:
    receive("MUG", "SH", 4)
    order = place(world, order_body({"MUG": 1})).json_body
    tick(world, datetime.fromisoformat(order["expires_at"]) + timedelta(seconds=1))

    response = world.request(
        "POST",
        f"/orders/{order['order_id']}/cancel",
        None,
        world.token("customer-1", "customers"),
    )

    assert response.status_code == 409
    assert response.json_body["error"] == "invalid_transition"


def test_expiry_runs_through_the_service_with_an_injected_clock(world: Api) -> None:
    receive("TEA", "BJ", 2)
    beijing = address(region="北京", city="北京市")
    order = place(world, order_body({"TEA": 2}, shipping_address=beijing)).json_body

    report = order_service.expire_due_orders(
        datetime.fromisoformat(order["expires_at"]) + timedelta(seconds=1)
    )

    assert report.expired == [order["order_id"]]
    assert levels("TEA") == {"BJ": (2, 0, 2)}


# --- the outbox stream handler -----------------------------------------------------------------


@pytest.fixture
def queue_urls(world: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Real (moto) queues for every consumer the outbox routes to, wired into the settings."""
    sqs = boto3.client("sqs", region_name=REGION)
    urls = {
        name: sqs.create_queue(QueueName=f"orderdesk-test-{name}")["QueueUrl"]
        for name in sorted({queue for route in ROUTES.values() for queue in route})
    }
    for name, url in urls.items():
        monkeypatch.setenv(f"{name.upper()}_QUEUE_URL", url)
    get_settings.cache_clear()
    queues.reset()
    yield urls
    queues.reset()


class Stream:
    """Reads the table's stream from where the last read stopped, as Lambda records."""

    def __init__(self) -> None:
        # moto intercepts the streams API only at its classic endpoint.
        self.client = boto3.client(
            "dynamodbstreams",
            region_name=REGION,
            endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com",
        )
        description = tables.client().describe_table(TableName=tables.table_name())
        self.arn = description["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}

    def new_records(self) -> list[dict[str, Any]]:
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            iterator = (
                self.iterators.get(shard["ShardId"])
                or self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            response = self.client.get_records(ShardIterator=iterator)
            self.iterators[shard["ShardId"]] = response["NextShardIterator"]
            records += [stream_record(raw, self.arn, REGION) for raw in response["Records"]]
        return records


def deliver(api: Api, records: list[dict[str, Any]]) -> Any:
    return api.client.lambda_.invoke("forward_outbox", {"Records": records}).payload


def received(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )


def sequence_of(records: list[dict[str, Any]], event_type: str) -> str:
    (record,) = [
        r
        for r in records
        if r["eventName"] == "INSERT"
        and r["dynamodb"].get("NewImage", {}).get("type", {}).get("S") == event_type
        and r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#")
    ]
    return str(record["dynamodb"]["SequenceNumber"])


def test_a_placed_order_event_reaches_the_notifications_queue_with_its_id(
    world: Api, queue_urls: dict[str, str]
) -> None:
    stream = Stream()
    receive("MUG", "SH", 5)
    order = place(world, order_body({"MUG": 1})).json_body
    records = stream.new_records()
    assert len(records) > 3  # levels, ledger, order, outbox: only the outbox is forwarded

    result = deliver(world, records)

    assert result == {"batchItemFailures": []}
    (message,) = received(queue_urls["notifications"])
    body = json.loads(message["Body"])
    (stored_event,) = outbox_events("order.placed")
    assert body["type"] == "order.placed"
    assert body["event_id"] == stored_event["event_id"]
    assert body["payload"]["order_id"] == order["order_id"]
    assert body["payload"]["total"] == order["total"]
    attributes = message["MessageAttributes"]
    assert attributes["event_type"]["StringValue"] == "order.placed"
    assert attributes["event_id"]["StringValue"] == body["event_id"]
    assert received(queue_urls["fulfilment"]) == []


def test_a_paid_order_event_goes_to_fulfilment_and_notifications(
    world: Api, queue_urls: dict[str, str]
) -> None:
    stream = Stream()
    uow = UnitOfWork()
    event_id = outbox.add_event(uow, "order.paid", {"order_id": "ord_1"})
    uow.commit()

    assert deliver(world, stream.new_records()) == {"batchItemFailures": []}

    for queue in ("fulfilment", "notifications"):
        (message,) = received(queue_urls[queue])
        assert json.loads(message["Body"])["event_id"] == event_id


def test_records_that_cannot_be_sent_are_reported_and_the_others_are_delivered(
    world: Api, queue_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = queue_urls["fulfilment"].rsplit("/", 1)[0] + "/no-such-queue"
    monkeypatch.setenv("FULFILMENT_QUEUE_URL", missing)
    get_settings.cache_clear()
    stream = Stream()
    uow = UnitOfWork()
    outbox.add_event(uow, "order.placed", {"order_id": "ord_1"})
    outbox.add_event(uow, "order.paid", {"order_id": "ord_2"})
    outbox.add_event(uow, "order.cancelled", {"order_id": "ord_3"})
    uow.commit()
    records = stream.new_records()

    result = deliver(world, records)

    assert result == {"batchItemFailures": [{"itemIdentifier": sequence_of(records, "order.paid")}]}
    delivered = sorted(json.loads(m["Body"])["type"] for m in received(queue_urls["notifications"]))
    # order.paid reached notifications before its fulfilment copy failed; when the record is
    # retried, notifications sees the same event id again and ignores it.
    assert delivered == ["order.cancelled", "order.paid", "order.placed"]


def test_changes_to_outbox_items_are_not_delivered_again(
    world: Api, queue_urls: dict[str, str]
) -> None:
    stream = Stream()
    uow = UnitOfWork()
    event_id = outbox.add_event(uow, "order.placed", {"order_id": "ord_1"})
    uow.commit()
    deliver(world, stream.new_records())
    received(queue_urls["notifications"])
    # A TTL deletion (REMOVE) of the delivered event.
    tables.client().delete_item(
        TableName=tables.table_name(),
        Key={"pk": {"S": f"OUTBOX#{event_id}"}, "sk": {"S": "EVENT"}},
    )

    assert deliver(world, stream.new_records()) == {"batchItemFailures": []}
    assert received(queue_urls["notifications"]) == []


def test_the_request_that_wrote_an_event_is_named_in_every_log_line_of_its_consumers(
    world: Api, queue_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream()
    logger.set_correlation_id("req-origin-1")  # as the API request's invocation sets it
    try:
        uow = UnitOfWork()
        outbox.add_event(uow, "order.cancelled", {"order_id": "ord_1", "customer_id": "c-1"})
        uow.commit()
    finally:
        logger.set_correlation_id(None)
    deliver(world, stream.new_records())
    (message,) = received(queue_urls["notifications"])
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "req-origin-1"
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)

    arn = f"arn:aws:sqs:{REGION}:123456789012:orderdesk-test-notifications"
    event = {"Records": [sqs_record(message, arn, REGION)]}
    world.client.lambda_.invoke("notify_customers", event)
    # Nothing of this record's stays on the logger for the next one.
    assert not {"message_id", "event_id", "order_id", "invocation_id"} & set(
        logger.get_current_keys()
    )
    assert logger.get_correlation_id() != "req-origin-1"

    lines = [json.loads(line) for line in logged.getvalue().splitlines() if line.startswith("{")]
    handled = [line for line in lines if line.get("event_type") == "order.cancelled"]
    assert handled, lines
    assert {line["correlation_id"] for line in handled} == {"req-origin-1"}
    assert all(line.get("invocation_id") != "req-origin-1" for line in handled)


# --- events the stream did not deliver: marked forwarded, or swept ---------------------------


def sweep(api: Api, at: datetime) -> Any:
    """Fire the outbox sweep as EventBridge would, for the moment ``at``."""
    event = scheduled_event("orderdesk-test-sweep_outbox", region=REGION, when=at)
    return api.client.lambda_.invoke("sweep_outbox", event).payload


def test_a_forwarded_event_records_when_and_leaves_the_sweeps_index(
    world: Api, queue_urls: dict[str, str]
) -> None:
    stream = Stream()
    uow = UnitOfWork()
    event_id = outbox.add_event(uow, "order.placed", {"order_id": "ord_1"})
    uow.commit()
    assert outbox.forwarded_at(event_id) is None
    assert [e.event_id for e in outbox.unforwarded_events(datetime.now(UTC))] == [event_id]

    deliver(world, stream.new_records())

    assert outbox.forwarded_at(event_id) is not None
    assert outbox.unforwarded_events(datetime.now(UTC) + timedelta(hours=1)) == []
    assert sweep(world, datetime.now(UTC) + timedelta(hours=1)) == {"forwarded": [], "failed": []}
    assert len(received(queue_urls["notifications"])) == 1


def test_an_event_the_stream_gave_up_on_is_forwarded_by_the_sweep_after_five_minutes(
    world: Api, queue_urls: dict[str, str]
) -> None:
    # The stream's retries ran out: nothing was forwarded (its records are never delivered).
    occurred = datetime.now(UTC)
    uow = UnitOfWork()
    paid = outbox.add_event(uow, "order.paid", {"order_id": "ord_1"}, occurred_at=occurred)
    placed = outbox.add_event(uow, "order.placed", {"order_id": "ord_2"}, occurred_at=occurred)
    uow.commit()

    too_soon = sweep(world, occurred + timedelta(minutes=4))
    assert too_soon == {"forwarded": [], "failed": []}
    assert received(queue_urls["fulfilment"]) == []

    due = sweep(world, occurred + timedelta(minutes=5, seconds=1))

    assert sorted(due["forwarded"]) == sorted([paid, placed]) and due["failed"] == []
    (order_paid,) = received(queue_urls["fulfilment"])
    assert json.loads(order_paid["Body"])["event_id"] == paid
    notified = sorted(
        json.loads(m["Body"])["event_id"] for m in received(queue_urls["notifications"])
    )
    assert notified == sorted([paid, placed])
    assert outbox.forwarded_at(paid) is not None and outbox.forwarded_at(placed) is not None
    # Forwarded once: the next sweep finds nothing more to do.
    assert sweep(world, occurred + timedelta(hours=1)) == {"forwarded": [], "failed": []}


def test_the_sweep_reads_every_shard_of_the_unsent_index(
    world: Api, queue_urls: dict[str, str]
) -> None:
    occurred = datetime.now(UTC) - timedelta(minutes=10)
    uow = UnitOfWork()
    ids = [
        outbox.add_event(uow, "order.cancelled", {"order_id": f"ord_{n}"}, occurred_at=occurred)
        for n in range(24)
    ]
    uow.commit()
    assert len({outbox.unsent_shard(event_id) for event_id in ids}) > 1

    report = sweep(world, datetime.now(UTC))

    assert sorted(report["forwarded"]) == sorted(ids)
    assert len(received(queue_urls["notifications"])) == len(ids)


def test_an_event_whose_queue_refuses_it_stays_for_the_next_sweep(
    world: Api, queue_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    occurred = datetime.now(UTC) - timedelta(minutes=10)
    uow = UnitOfWork()
    paid = outbox.add_event(uow, "order.paid", {"order_id": "ord_1"}, occurred_at=occurred)
    uow.commit()
    missing = queue_urls["fulfilment"].rsplit("/", 1)[0] + "/no-such-queue"
    monkeypatch.setenv("FULFILMENT_QUEUE_URL", missing)
    get_settings.cache_clear()

    assert sweep(world, datetime.now(UTC)) == {"forwarded": [], "failed": [paid]}
    assert outbox.forwarded_at(paid) is None

    monkeypatch.setenv("FULFILMENT_QUEUE_URL", queue_urls["fulfilment"])
    get_settings.cache_clear()
    assert sweep(world, datetime.now(UTC)) == {"forwarded": [paid], "failed": []}
    (message,) = received(queue_urls["fulfilment"])
    assert json.loads(message["Body"])["event_id"] == paid


class ForwarderDied(BaseException):
    """The forwarder's process died (nothing of ours catches a BaseException)."""


def test_a_forwarder_that_dies_after_sending_leaves_only_a_duplicate_consumers_ignore(
    world: Api, queue_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = Stream()
    uow = UnitOfWork()
    event_id = outbox.add_event(uow, "order.placed", {"order_id": "ord_1"})
    uow.commit()
    records = stream.new_records()

    def die(event_id: str, at: datetime) -> bool:
        raise ForwarderDied(event_id)

    with monkeypatch.context() as patched:
        patched.setattr(outbox, "mark_forwarded", die)
        with pytest.raises(ForwarderDied):
            deliver(world, records)
    assert outbox.forwarded_at(event_id) is None

    # Lambda retries the batch from the stream; had it given up, the sweep would send it.
    assert deliver(world, records) == {"batchItemFailures": []}

    copies = received(queue_urls["notifications"])
    assert [json.loads(m["Body"])["event_id"] for m in copies] == [event_id, event_id]
    assert outbox.forwarded_at(event_id) is not None
    assert sweep(world, datetime.now(UTC) + timedelta(hours=1))["forwarded"] == []
