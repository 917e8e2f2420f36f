"""Low-stock alerts end to end over moto: stock moves through the real API and order path,
the table's stream is forwarded to real (moto) queues, the operations handler and the
scheduled check are invoked as Lambda invokes them, and ops read the inbox over HTTP and
the SNS alerts topic through a subscribed queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
import pytest
from test_orders_api import add_product, build_world, order_body, outbox_events, place
from test_outbox_and_expiry import Stream, deliver, received

from chalicelib.adapters import alerts as alert_channel
from chalicelib.adapters import queues
from chalicelib.domain import inventory as rules
from chalicelib.services import stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory, tables, units_shipped
from chalicelib.store import low_stock as low_stock_store
from chalicelib.store.unit_of_work import UnitOfWork
from chalicelib.workers import outbox as outbox_worker
from infra.local.pump import scheduled_event, sqs_record

if TYPE_CHECKING:
    from conftest import Api

REGION = "us-east-1"


# --- the world: queues, the alerts topic, the stream -------------------------------------------


@dataclass
class Ops:
    """The app plus the pipes around it: stream -> queues -> handler, and the alerts topic."""

    api: Api
    queue_urls: dict[str, str]
    pager_url: str
    stream: Stream

    def forward(self) -> list[dict[str, Any]]:
        """Deliver new outbox events from the stream; the messages the operations queue got."""
        assert deliver(self.api, self.stream.new_records()) == {"batchItemFailures": []}
        for name, url in self.queue_urls.items():
            if name != outbox_worker.OPERATIONS:
                received(url)  # other consumers' messages: not these tests' concern
        return received(self.queue_urls[outbox_worker.OPERATIONS])

    def handle(self, messages: list[dict[str, Any]]) -> Any:
        """Invoke the operations handler with ``messages`` as one Lambda SQS batch."""
        queue_arn = f"arn:aws:sqs:{REGION}:123456789012:orderdesk-test-operations"
        records = [sqs_record(message, queue_arn, REGION) for message in messages]
        return self.api.client.lambda_.invoke("track_low_stock", {"Records": records}).payload

    def pump(self) -> Any:
        return self.handle(self.forward())

    def check(self) -> Any:
        event = scheduled_event("orderdesk-test-check_low_stock", region=REGION)
        return self.api.client.lambda_.invoke("check_low_stock", event).payload

    def published(self) -> list[dict[str, Any]]:
        """Alerts that reached the SNS topic since the last call."""
        return [json.loads(message["Body"]) for message in received(self.pager_url)]

    def inbox(self, status: str = "open", headers: dict[str, str] | None = None, **params: Any):
        query = urlencode({"status": status, **params})
        return self.api.request("GET", f"/ops/alerts?{query}", headers=headers or self.api.ops)

    def alerts(self, status: str = "open") -> list[dict[str, Any]]:
        response = self.inbox(status)
        assert response.status_code == 200, response.json_body
        return response.json_body["items"]

    def ack(self, alert_id: str, headers: dict[str, str] | None = None) -> Any:
        return self.api.request(
            "POST", f"/ops/alerts/{alert_id}/ack", headers=headers or self.api.ops
        )


@pytest.fixture
def ops(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ops]:
    build_world()
    sqs = boto3.client("sqs", region_name=REGION)
    # Every queue the forwarder routes to, so forwarding never fails for lack of one.
    urls = {
        name: sqs.create_queue(QueueName=f"orderdesk-test-{name}")["QueueUrl"]
        for name in outbox_worker.queue_urls()
    }
    for name, url in urls.items():
        monkeypatch.setenv(f"{name.upper()}_QUEUE_URL", url)
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="orderdesk-test-alerts")["TopicArn"]
    pager = sqs.create_queue(QueueName="ops-pager")["QueueUrl"]
    pager_arn = sqs.get_queue_attributes(QueueUrl=pager, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=pager_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv("ALERTS_TOPIC_ARN", topic)
    get_settings.cache_clear()
    queues.reset()
    alert_channel.reset()
    yield Ops(api=api, queue_urls=urls, pager_url=pager, stream=Stream())
    queues.reset()
    alert_channel.reset()
    stock.forget_cached_warehouses()


# --- small helpers -----------------------------------------------------------------------------


def receive(api: Api, sku: str, warehouse: str, quantity: int) -> None:
    response = api.request(
        "POST", f"/stock/{sku}/{warehouse}/receive", {"quantity": quantity}, api.ops
    )
    assert response.status_code == 201, response.json_body


def set_threshold(api: Api, sku: str, warehouse: str, threshold: int) -> None:
    response = api.request(
        "PUT", f"/stock/{sku}/{warehouse}/threshold", {"low_stock_threshold": threshold}, api.ops
    )
    assert response.status_code == 200, response.json_body


def sell(api: Api, sku: str, quantity: int) -> str:
    response = place(api, order_body({sku: quantity}))
    assert response.status_code == 201, response.json_body
    return str(response.json_body["order_id"])


def ship_directly(sku: str, warehouse: str, quantity: int, *, at: datetime) -> None:
    """Goods leaving for an order, through the same movement recording the fulfilment
    path uses: reserved, then shipped (``at`` decides the day the units count for)."""
    for movement_of in (rules.reserve, rules.ship):
        before = inventory.get_levels(sku, [warehouse], consistent=True)[warehouse]
        after, movement = movement_of(before, quantity, order_id="ord_x", at=at, actor="wh-1")
        uow = UnitOfWork()
        stock.record_movement(uow, before, after, movement)
        uow.commit()


def low_index() -> set[tuple[str, str]]:
    return {(level.sku, level.warehouse) for page in low_stock_store.low_levels() for level in page}


def product_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": {"en": "Mug"},
        "category": "home",
        "price": {"amount": 2900, "currency": "CNY"},
        **overrides,
    }


class NoScanClient:
    """The DynamoDB client, refusing Scan and remembering which operations were used."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.used: set[str] = set()

    def scan(self, **_: Any) -> Any:
        raise AssertionError("Scan used")

    def get_paginator(self, name: str) -> Any:
        if name == "scan":
            raise AssertionError("Scan used")
        return self._client.get_paginator(name)

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self._client, name)


@pytest.fixture
def no_scan() -> Iterator[Callable[[], NoScanClient]]:
    """Installs a ``NoScanClient`` as the app's DynamoDB client until the test ends."""
    original = tables.client

    def install() -> NoScanClient:
        wrapped = NoScanClient(original())
        tables.client = lambda: wrapped  # type: ignore[assignment]
        return wrapped

    yield install
    tables.client = original


# --- one alert per crossing ----------------------------------------------------------------------


def test_selling_down_raises_one_alert_however_often_it_is_seen(ops: Ops) -> None:
    receive(ops.api, "MUG", "SH", 5)
    set_threshold(ops.api, "MUG", "SH", 2)
    ops.forward()  # nothing low yet
    sell(ops.api, "MUG", 2)  # 3 left: above
    assert ops.forward() == []

    sell(ops.api, "MUG", 1)  # 2 left: at the threshold
    (message,) = ops.forward()
    assert json.loads(message["Body"])["type"] == "stock.low"
    # The same event delivered twice (in one batch and again later), then the check runs.
    duplicate = {**message, "MessageId": "redelivered-1"}
    assert ops.handle([message, duplicate]) == {"batchItemFailures": []}
    assert ops.handle([{**message, "MessageId": "redelivered-2"}]) == {"batchItemFailures": []}
    assert ops.check()["opened"] == []

    (alert,) = ops.alerts("open")
    assert alert["sku"] == "MUG" and alert["warehouse"] == "SH"
    assert (alert["status"], alert["available"], alert["threshold"]) == ("open", 2, 2)
    assert alert["acknowledged_at"] is None and alert["resolved_at"] is None
    assert set(alert) == {
        "alert_id",
        "sku",
        "warehouse",
        "status",
        "available",
        "threshold",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "reorder_suggestion",
    }
    (published,) = ops.published()
    assert published["kind"] == "stock.low"
    assert published["alert_id"] == alert["alert_id"]
    assert low_index() == {("MUG", "SH")}


def test_stock_recovering_resolves_the_alert_and_the_next_crossing_opens_a_new_one(
    ops: Ops,
) -> None:
    receive(ops.api, "MUG", "SH", 5)
    set_threshold(ops.api, "MUG", "SH", 2)
    sell(ops.api, "MUG", 4)  # 1 left
    ops.pump()
    (first,) = ops.alerts("open")

    sell(ops.api, "MUG", 1)  # 0 left: still low, no new alert
    receive(ops.api, "MUG", "SH", 10)  # 10: back above
    messages = ops.forward()
    assert [json.loads(m["Body"])["type"] for m in messages] == ["stock.recovered"]
    assert ops.handle(messages) == {"batchItemFailures": []}

    assert ops.alerts("open") == []
    (resolved,) = ops.alerts("resolved")
    assert resolved["alert_id"] == first["alert_id"]
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert low_index() == set()

    sell(ops.api, "MUG", 9)  # 1 left: a second crossing
    ops.pump()
    (second,) = ops.alerts("open")
    assert second["alert_id"] != first["alert_id"]
    assert second["available"] == 1
    assert [p["alert_id"] for p in ops.published()] == [first["alert_id"], second["alert_id"]]


def test_a_late_low_event_after_recovery_opens_nothing(ops: Ops) -> None:
    receive(ops.api, "MUG", "SH", 3)
    set_threshold(ops.api, "MUG", "SH", 1)
    sell(ops.api, "MUG", 2)  # 1: low
    low_messages = ops.forward()
    receive(ops.api, "MUG", "SH", 5)  # 6: recovered before the low event was handled
    recovered_messages = ops.forward()

    ops.handle(recovered_messages)
    ops.handle(low_messages)

    assert ops.alerts("open") == []
    assert ops.published() == []


# --- the scheduled check -------------------------------------------------------------------------


def test_the_check_finds_a_level_whose_event_was_lost_using_only_queries(
    ops: Ops, no_scan: Callable[[], NoScanClient]
) -> None:
    receive(ops.api, "TEA", "HZ", 4)
    set_threshold(ops.api, "TEA", "HZ", 3)
    receive(ops.api, "PEN", "SH", 9)  # far above its threshold
    sell(ops.api, "TEA", 2)  # 2 left in Hangzhou (the nearest with stock to Shanghai)
    ops.forward()  # the stock.low event is dropped on the floor
    assert ops.alerts("open") == []

    client = no_scan()
    report = ops.check()

    assert report["low_levels"] == 1
    (alert,) = ops.alerts("open")
    assert report["opened"] == [alert["alert_id"]]
    assert (alert["sku"], alert["warehouse"], alert["available"]) == ("TEA", "HZ", 2)
    assert "query" in client.used
    assert len(ops.published()) == 1
    # Running it again opens nothing more.
    assert ops.check()["opened"] == []
    assert len(ops.alerts("open")) == 1


def test_the_check_resolves_an_alert_whose_recovery_event_was_lost(
    ops: Ops, no_scan: Callable[[], NoScanClient]
) -> None:
    receive(ops.api, "MUG", "SH", 3)
    set_threshold(ops.api, "MUG", "SH", 1)
    sell(ops.api, "MUG", 3)
    ops.pump()
    (alert,) = ops.alerts("open")
    ops.ack(alert["alert_id"])
    receive(ops.api, "MUG", "SH", 20)
    ops.forward()  # the stock.recovered event is lost

    no_scan()
    report = ops.check()

    assert report["resolved"] == [alert["alert_id"]]
    assert ops.alerts("acknowledged") == []
    (resolved,) = ops.alerts("resolved")
    assert resolved["acknowledged_by"] == "ops-1"


def test_a_threshold_raised_over_the_stock_is_caught_by_the_check(ops: Ops) -> None:
    receive(ops.api, "PEN", "SH", 5)
    ops.forward()
    set_threshold(ops.api, "PEN", "SH", 5)  # not a movement: no event
    assert ops.forward() == []
    assert low_index() == {("PEN", "SH")}

    assert len(ops.check()["opened"]) == 1
    set_threshold(ops.api, "PEN", "SH", 4)
    assert low_index() == set()
    assert len(ops.check()["resolved"]) == 1


# --- the reorder suggestion ----------------------------------------------------------------------


def test_the_alert_suggests_a_reorder_from_thirty_days_of_shipments(ops: Ops) -> None:
    response = ops.api.request(
        "PUT",
        "/products/MUG",
        product_body(
            unit_cost={"amount": 1200, "currency": "CNY"},
            lead_time_days=5,
            target_days_of_cover=10,
        ),
        ops.api.ops,
    )
    assert response.status_code == 200, response.json_body
    receive(ops.api, "MUG", "SH", 100)
    set_threshold(ops.api, "MUG", "SH", 10)
    now = datetime.now(UTC)
    ship_directly("MUG", "SH", 40, at=now - timedelta(days=3))
    ship_directly("MUG", "SH", 20, at=now)
    ship_directly("MUG", "SH", 25, at=now - timedelta(days=31))  # before the window
    today = stock.business_day(now)
    shipped = units_shipped.units_shipped_by_day("MUG", "SH", today - timedelta(days=40), today)
    assert sorted(shipped.values()) == [20, 25, 40]

    ops.forward()
    sell(ops.api, "MUG", 5)  # 15 - 5 = 10 left: at the threshold
    ops.pump()

    (alert,) = ops.alerts("open")
    # 60 units in 30 days is 2 a day; 15 days of it is 30, 10 are there: order 20.
    assert alert["reorder_suggestion"] == {
        "velocity_per_day": 2.0,
        "days_of_cover": 5.0,
        "quantity": 20,
        "units_sold": 60,
        "window_days": 30,
        "lead_time_days": 5,
        "target_days_of_cover": 10,
        "unit_cost": {"amount": 1200, "currency": "CNY"},
        "estimated_cost": {"amount": 24000, "currency": "CNY"},
    }


def test_a_level_that_never_sold_gets_no_days_of_cover(ops: Ops) -> None:
    receive(ops.api, "PEN", "SH", 1)
    sell(ops.api, "PEN", 1)
    ops.pump()
    (alert,) = ops.alerts("open")
    assert alert["reorder_suggestion"]["velocity_per_day"] == 0.0
    assert alert["reorder_suggestion"]["days_of_cover"] is None
    assert alert["reorder_suggestion"]["quantity"] == 0


# --- the product's default threshold -------------------------------------------------------------


def test_levels_without_their_own_threshold_follow_the_products_default(ops: Ops) -> None:
    receive(ops.api, "MUG", "SH", 6)
    receive(ops.api, "MUG", "HZ", 6)
    set_threshold(ops.api, "MUG", "HZ", 1)  # its own

    ops.api.request(
        "PUT", "/products/MUG", product_body(default_low_stock_threshold=8), ops.api.ops
    )

    levels = inventory.get_levels("MUG", ["SH", "HZ"], consistent=True)
    assert (levels["SH"].low_stock_threshold, levels["HZ"].low_stock_threshold) == (8, 1)
    assert low_index() == {("MUG", "SH")}
    receive(ops.api, "MUG", "BJ", 3)  # a new level starts at the default
    assert inventory.get_levels("MUG", ["BJ"])["BJ"].low_stock_threshold == 8
    assert ops.check()["low_levels"] == 2

    ops.api.request("PUT", "/products/MUG", product_body(), ops.api.ops)  # default unset: 0
    levels = inventory.get_levels("MUG", ["SH", "HZ", "BJ"], consistent=True)
    assert [levels[w].low_stock_threshold for w in ("SH", "HZ", "BJ")] == [0, 1, 0]
    assert low_index() == set()


# --- the inbox -----------------------------------------------------------------------------------


@pytest.fixture
def one_alert(ops: Ops) -> dict[str, Any]:
    receive(ops.api, "MUG", "SH", 2)
    sell(ops.api, "MUG", 2)
    ops.pump()
    (alert,) = ops.alerts("open")
    return alert


def test_ops_acknowledge_an_alert_once(ops: Ops, one_alert: dict[str, Any]) -> None:
    response = ops.ack(one_alert["alert_id"])

    assert response.status_code == 200
    assert response.json_body["status"] == "acknowledged"
    assert response.json_body["acknowledged_by"] == "ops-1"
    assert response.json_body["acknowledged_at"] is not None
    again = ops.ack(one_alert["alert_id"], ops.api.token("ops-2", "ops"))
    assert again.status_code == 200 and again.json_body == response.json_body
    assert ops.alerts("open") == []
    assert [a["alert_id"] for a in ops.alerts("acknowledged")] == [one_alert["alert_id"]]


def test_a_resolved_alert_cannot_be_acknowledged(ops: Ops, one_alert: dict[str, Any]) -> None:
    receive(ops.api, "MUG", "SH", 5)
    ops.pump()

    response = ops.ack(one_alert["alert_id"])

    assert response.status_code == 409
    assert response.json_body["error"] == "invalid_transition"
    (resolved,) = ops.alerts("resolved")
    assert resolved["acknowledged_at"] is None


def test_only_ops_see_and_acknowledge_alerts(ops: Ops, one_alert: dict[str, Any]) -> None:
    for headers in (ops.api.customer, ops.api.support):
        assert ops.inbox("open", headers).status_code == 403
        assert ops.ack(one_alert["alert_id"], headers).status_code == 403
    assert ops.api.request("GET", "/ops/alerts").status_code == 401
    assert ops.alerts("open")[0]["status"] == "open"


def test_unknown_alerts_and_bad_parameters(ops: Ops, one_alert: dict[str, Any]) -> None:
    assert ops.ack("alr_NOPE").status_code == 404
    assert ops.ack("bad*id").status_code == 400
    assert ops.inbox("closed").status_code == 400
    assert ops.inbox("open", limit=0).status_code == 400
    assert ops.inbox("open", cursor="not-a-cursor").status_code == 400


def test_the_inbox_pages_newest_first(ops: Ops) -> None:
    for sku in ("MUG", "TEA", "PEN"):
        receive(ops.api, sku, "SH", 1)
        sell(ops.api, sku, 1)
        ops.pump()
    first = ops.inbox("open", limit=2).json_body
    second = ops.inbox("open", limit=2, cursor=first["next_cursor"]).json_body

    assert [a["sku"] for a in first["items"] + second["items"]] == ["PEN", "TEA", "MUG"]
    assert second["next_cursor"] is None
    other = ops.inbox("resolved", cursor=first["next_cursor"])
    assert other.status_code == 400  # a cursor from another listing


# --- the handler ---------------------------------------------------------------------------------


def test_an_unreadable_message_is_reported_and_the_rest_of_the_batch_is_handled(
    ops: Ops,
) -> None:
    receive(ops.api, "MUG", "SH", 1)
    ops.forward()
    sell(ops.api, "MUG", 1)
    (good,) = ops.forward()
    bad = {**good, "MessageId": "bad-1", "Body": "{not json"}
    unknown = {
        **good,
        "MessageId": "other-1",
        "Body": json.dumps({"event_id": "evt_2", "type": "order.placed", "payload": {}}),
    }

    result = ops.handle([bad, good, unknown])

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert len(ops.alerts("open")) == 1


# --- products' ops fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"default_low_stock_threshold": "5"},
        {"default_low_stock_threshold": -1},
        {"default_low_stock_threshold": 10**12},
        {"default_low_stock_threshold": 2.5},
        {"lead_time_days": 366},
        {"lead_time_days": True},
        {"target_days_of_cover": 0},
        {"unit_cost": {"amount": -1, "currency": "CNY"}},
        {"unit_cost": {"amount": 10**15, "currency": "CNY"}},
        {"unit_cost": {"amount": 100}},
        {"unit_cost": 100},
    ],
)
def test_bad_ops_fields_are_400_and_change_nothing(ops: Ops, fields: dict[str, Any]) -> None:
    before = ops.api.request("GET", "/products/MUG", headers=ops.api.ops).json_body

    response = ops.api.request("PUT", "/products/MUG", product_body(**fields), ops.api.ops)

    assert response.status_code == 400
    assert response.json_body["error"] == "validation_error"
    assert ops.api.request("GET", "/products/MUG", headers=ops.api.ops).json_body == before


def test_ops_fields_are_shown_to_ops_only(ops: Ops) -> None:
    fields = {
        "default_low_stock_threshold": 5,
        "unit_cost": {"amount": 1500, "currency": "CNY"},
        "lead_time_days": 0,
        "target_days_of_cover": 21,
    }
    put = ops.api.request("PUT", "/products/MUG", product_body(**fields), ops.api.ops)
    assert put.status_code == 200
    assert not set(fields) & set(put.json_body)  # the product as shoppers see it

    as_ops = ops.api.request("GET", "/products/MUG", headers=ops.api.ops).json_body
    assert {name: as_ops[name] for name in fields} == fields
    for headers in (None, ops.api.customer, ops.api.support):
        shown = ops.api.request("GET", "/products/MUG", headers=headers).json_body
        assert not set(fields) & set(shown), headers
        assert {k: v for k, v in shown.items()} == {
            k: v for k, v in as_ops.items() if k not in fields
        }
    listed = ops.api.request("GET", "/products", headers=ops.api.customer).json_body["items"]
    assert all(not set(fields) & set(item) for item in listed)


# --- transactions stay within DynamoDB's limit ---------------------------------------------------


def test_cancelling_the_largest_order_fits_one_transaction_when_every_level_recovers(
    ops: Ops,
) -> None:
    skus = [f"BULK-{n:02d}" for n in range(20)]
    for sku in skus:
        add_product(sku, 100)
        stock.receive(sku, "SH", 1, actor="test")
        stock.receive(sku, "HZ", 1, actor="test")
    order_id = sell_many(ops.api, dict.fromkeys(skus, 2))

    response = ops.api.request(
        "POST", f"/orders/{order_id}/cancel", headers=ops.api.token("customer-1", "customers")
    )

    assert response.status_code == 200, response.json_body
    released = [
        e for e in outbox_events("stock.recovered") if e["payload"]["movement"] == "released"
    ]
    assert len(released) == stock.MAX_RECOVERY_EVENTS_PER_TRANSACTION
    assert low_index() == set()


def sell_many(api: Api, lines: dict[str, int]) -> str:
    response = place(api, order_body(lines))
    assert response.status_code == 201, response.json_body
    return str(response.json_body["order_id"])


# --- sharded levels: decided from the stream ---------------------------------------------------


def test_a_sharded_level_selling_down_raises_one_alert_from_the_stream(ops: Ops) -> None:
    receive(ops.api, "MUG", "SH", 8)
    set_threshold(ops.api, "MUG", "SH", 2)
    stock.set_shards("MUG", "SH", 4, actor="ops-1")
    ops.forward()
    sell(ops.api, "MUG", 5)  # 3 left: above
    assert ops.forward() == []

    sell(ops.api, "MUG", 1)  # 2 left: at the threshold, summed over the shards
    messages = ops.forward()

    assert [json.loads(m["Body"])["type"] for m in messages] == ["stock.low"]
    assert ops.forward() == []  # seen once
    assert ops.handle(messages + messages) == {"batchItemFailures": []}
    assert ops.check()["opened"] == []
    (alert,) = ops.alerts("open")
    assert (alert["sku"], alert["available"], alert["threshold"]) == ("MUG", 2, 2)
    assert low_index() == {("MUG", "SH")}

    receive(ops.api, "MUG", "SH", 10)
    (recovered,) = ops.forward()
    assert json.loads(recovered["Body"])["type"] == "stock.recovered"
    ops.handle([recovered])
    assert ops.alerts("open") == []
    assert low_index() == set()
