"""Analytics over moto: events from real use cases reach the analytics handler as Lambda
delivers them, and the nightly reports agree with figures computed directly from the orders.

Past days are made through the service layer with an injected clock (``now=``): orders are
placed, paid (a payment recorded and captured as the provider's answer would be), refunded,
cancelled and expired at the moments the test chooses. Their events then travel the real way:
the table's stream -> the outbox forwarder -> the analytics queue (moto) -> the analytics
handler, invoked with Lambda-shaped SQS events, one per batch of received messages.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from conftest import main_table_definition
from test_outbox_and_expiry import Stream

from chalicelib.adapters import queues
from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.catalogue import LocalizedText, Location, ProductDetails, WarehouseDetails
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, ShippingAddress
from chalicelib.domain.payments import Payment, Refund, RefundStatus
from chalicelib.domain.reports import DailyReports
from chalicelib.services import analytics as service
from chalicelib.services import catalogue, orders, payments, refunds, stock
from chalicelib.settings import get_settings
from chalicelib.store import analytics as analytics_store
from chalicelib.store import orders as order_store
from chalicelib.store import payments as payment_store
from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork
from chalicelib.workers import outbox as outbox_worker
from infra.local.pump import scheduled_event, sqs_record

if TYPE_CHECKING:
    from conftest import Api

REGION = "us-east-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
D0 = date(2026, 11, 20)
PRODUCTS = {  # sku: (category, price)
    "MUG": ("home", 2900),
    "TEA": ("food", 4550),
    "PEN": ("office", 800),
    "LAMP": ("home", 12900),
}
STOCK = {("MUG", "SH"): 2, ("MUG", "HZ"): 2, ("TEA", "SH"): 50, ("PEN", "SH"): 100}
STOCK |= {("PEN", "BJ"): 100, ("LAMP", "SH"): 30}
SHANGHAI_ADDRESS = ShippingAddress(
    "李雷", "+8613800000000", "CN", "上海", "上海市", "人民大道 200 号", "200003"
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment on ``day`` in Shanghai, as UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


# --- the world and the pipe ---------------------------------------------------------------------


def build_world() -> None:
    stock.forget_cached_warehouses()
    for warehouse, city, location in (
        ("SH", "Shanghai", Location(31.2304, 121.4737)),
        ("HZ", "Hangzhou", Location(30.2741, 120.1551)),
        ("BJ", "Beijing", Location(39.9042, 116.4074)),
    ):
        catalogue.put_warehouse(warehouse, WarehouseDetails(f"{city} DC", city, location))
    for sku, (category, price) in PRODUCTS.items():
        catalogue.put_product(
            sku,
            ProductDetails(
                name=LocalizedText(zh_cn=f"{sku} 中文", en=sku.title()),
                category=category,
                price=Money(price, "CNY"),
            ),
        )
    for (sku, warehouse), quantity in STOCK.items():
        stock.receive(sku, warehouse, quantity, actor="test")


@dataclass
class Pipe:
    """Stream -> forwarder -> analytics queue -> analytics handler."""

    api: Api
    stream: Stream
    analytics_url: str
    analytics_arn: str
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def flush(self) -> list[dict[str, Any]]:
        """Deliver every new event; the messages handed to the handler."""
        records = self.stream.new_records()
        assert outbox_worker.forward(records) == []
        messages = drain(self.analytics_url)
        self.deliver(messages)
        self.delivered += messages
        return messages

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            event = {"Records": [sqs_record(m, self.analytics_arn, REGION) for m in batch]}
            result = self.api.client.lambda_.invoke("record_analytics", event).payload
            assert result == {"batchItemFailures": []}


def drain(queue_url: str) -> list[dict[str, Any]]:
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


def wire_queues(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A moto queue for every consumer the forwarder routes to; the analytics URL and ARN."""
    sqs = boto3.client("sqs", region_name=REGION)
    urls = {}
    for name in outbox_worker.queue_urls():
        urls[name] = sqs.create_queue(QueueName=f"orderdesk-test-{name}")["QueueUrl"]
        monkeypatch.setenv(f"{name.upper()}_QUEUE_URL", urls[name])
    get_settings.cache_clear()
    queues.reset()
    arn = sqs.get_queue_attributes(QueueUrl=urls["analytics"], AttributeNames=["QueueArn"])
    return urls["analytics"], arn["Attributes"]["QueueArn"]


@pytest.fixture
def pipe(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipe]:
    analytics_url, analytics_arn = wire_queues(monkeypatch)
    stream = Stream()
    build_world()
    made = Pipe(api, stream, analytics_url, analytics_arn)
    made.flush()
    yield made
    stock.forget_cached_warehouses()
    queues.reset()


# --- what happened, kept for the independent computation ---------------------------------------


@dataclass
class Paid:
    order: Order
    method: str
    paid_at: datetime


@dataclass
class Ledger:
    """Everything the test did, in plain values."""

    paid: list[Paid] = field(default_factory=list)
    refunds: list[tuple[str, str, int, datetime]] = field(default_factory=list)  # customer, method
    placed: list[tuple[str, datetime]] = field(default_factory=list)
    cancelled: list[datetime] = field(default_factory=list)
    expired: list[datetime] = field(default_factory=list)


def place(ledger: Ledger, customer: str, lines: dict[str, int], when: datetime) -> Order:
    placement = orders.place_order(
        customer,
        [RequestedLine(sku, quantity) for sku, quantity in lines.items()],
        SHANGHAI_ADDRESS,
        now=when,
    )
    ledger.placed.append((customer, when))
    order = order_store.get_order(placement.order_id, consistent=True)
    assert order is not None
    return order


def pay(ledger: Ledger, order: Order, method: str, when: datetime) -> None:
    """A payment recorded and captured as the provider's success would capture it."""
    payment = Payment.start(
        payment_id=sortable_id("pay_", when),
        order_id=order.order_id,
        customer_id=order.customer_id,
        method=method,
        amount=order.total,
        at=when,
    )
    uow = UnitOfWork()
    payment_store.add_new_payment(uow, payment)
    uow.commit()
    captured = payments.capture(
        payment.payment_id, order.total, provider_payment_id=f"prov-{payment.payment_id}", now=when
    )
    assert captured.is_captured
    ledger.paid.append(Paid(order, method, when))


def refund(ledger: Ledger, order: Order, amount: int, when: datetime) -> None:
    """A refund committed and settled as the provider's success would settle it."""
    (payment,) = [p for p in payment_store.payments_of_order(order.order_id) if p.is_captured]
    current = payment_store.get_payment(payment.payment_id)
    assert current is not None
    money = Money(amount, "CNY")
    refund_record = Refund(
        refund_id=sortable_id("rfd_", when),
        payment_id=current.payment_id,
        order_id=order.order_id,
        customer_id=order.customer_id,
        method=current.method,
        amount=money,
        reason="damaged",
        status=RefundStatus.PENDING,
        requested_by="ops-1",
        created_at=when,
        updated_at=when,
    )
    uow = UnitOfWork()
    payment_store.add_payment_change(uow, current.commit_refund(money, at=when), previous=current)
    payment_store.add_new_refund(uow, refund_record)
    uow.commit()
    refunds.settle_refund(refund_record.refund_id, RefundStatus.SUCCEEDED, now=when)
    ledger.refunds.append((order.customer_id, current.method, amount, when))


def day_of(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def the_story(pipe: Pipe) -> Ledger:
    """Seven customers over four months, the report day D0 the busiest."""
    ledger = Ledger()
    old = D0 - timedelta(days=111)
    # dave and frank bought long ago only; alice long ago and again on D0.
    pay(ledger, place(ledger, "dave", {"PEN": 2}, at(old, 10)), "card", at(old, 10, 1))
    pay(ledger, place(ledger, "frank", {"TEA": 1}, at(old, 11)), "alipay", at(old, 11, 2))
    pay(ledger, place(ledger, "frank", {"PEN": 1}, at(old, 12)), "alipay", at(old, 12, 2))
    pay(ledger, place(ledger, "alice", {"PEN": 1}, at(old, 13)), "wechat_pay", at(old, 13, 3))
    # gina 60 days ago; carol the day before.
    sixty = D0 - timedelta(days=60)
    pay(ledger, place(ledger, "gina", {"TEA": 2}, at(sixty, 9)), "card", at(sixty, 9, 1))
    before = D0 - timedelta(days=1)
    pay(ledger, place(ledger, "carol", {"TEA": 1}, at(before, 20)), "card", at(before, 20, 5))
    # bob orders just before midnight and pays just after: the sale is D0's, hour 0.
    bobs = place(ledger, "bob", {"TEA": 1, "PEN": 3}, at(before, 23, 55))
    pay(ledger, bobs, "card", at(D0, 0, 10))
    # alice's MUGs come from two warehouses; Shanghai runs out of them.
    alices = place(ledger, "alice", {"MUG": 3, "TEA": 1}, at(D0, 10))
    assert {a.warehouse for a in alices.allocations} == {"SH", "HZ"}
    pay(ledger, alices, "alipay", at(D0, 10, 5))
    # erin's first order is big (free shipping); most of it comes back.
    erins = place(ledger, "erin", {"LAMP": 20}, at(D0, 14))
    pay(ledger, erins, "wechat_pay", at(D0, 14, 1))
    refund(ledger, erins, 100_000, at(D0, 15))
    refund(ledger, bobs, 500, at(D0, 16))
    # carol cancels; dave's order is never paid and expires.
    carols = place(ledger, "carol", {"PEN": 1}, at(D0, 11))
    orders.cancel_order(carols.order_id, actor_id="carol", is_ops=False, now=at(D0, 11, 5))
    ledger.cancelled.append(at(D0, 11, 5))
    daves = place(ledger, "dave", {"PEN": 1}, at(D0, 12))
    expiry = daves.expires_at + timedelta(seconds=1)
    assert orders.expire_due_orders(expiry).expired == [daves.order_id]
    ledger.expired.append(expiry)
    pipe.flush()
    return ledger


def reports_for(day: date) -> DailyReports:
    """The nightly job as it runs at 00:30 the next morning."""
    return service.build_daily_reports(day, now=at(day + timedelta(days=1), 0, 30))


def rows(reports: DailyReports, name: str) -> list[dict[str, Any]]:
    return [dict(row) for row in reports.table(name).rows]


# --- the figures agree with the orders ----------------------------------------------------------


def test_sales_figures_match_a_direct_computation_over_the_orders(pipe: Pipe) -> None:
    ledger = the_story(pipe)

    reports = reports_for(D0)

    paid_today = [p for p in ledger.paid if day_of(p.paid_at) == D0]
    refunded_today = [r for r in ledger.refunds if day_of(r[3]) == D0]
    gross = sum(p.order.total.amount for p in paid_today)
    refunded = sum(r[2] for r in refunded_today)
    (summary,) = rows(reports, "sales/daily_summary")
    assert summary == {
        "currency": "CNY",
        "orders": len(paid_today),
        "cancelled_orders": sum(1 for t in ledger.cancelled if day_of(t) == D0),
        "units": sum(line.quantity for p in paid_today for line in p.order.lines),
        "customers": len({p.order.customer_id for p in paid_today}),
        "new_customers": len(
            {
                p.order.customer_id
                for p in paid_today
                if min(
                    day_of(q.paid_at)
                    for q in ledger.paid
                    if q.order.customer_id == p.order.customer_id
                )
                == D0
            }
        ),
        "gross_revenue_minor": gross,
        "discounts_minor": 0,
        "shipping_minor": sum(p.order.shipping_fee.amount for p in paid_today),
        "refunds_minor": refunded,
        "net_revenue_minor": gross - refunded,
        "average_order_value_minor": round(gross / len(paid_today)),
    }
    assert (summary["orders"], summary["customers"], summary["new_customers"]) == (3, 3, 2)

    units: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    orders_with: Counter[str] = Counter()
    for p in paid_today:
        for line in p.order.lines:
            units[line.sku] += line.quantity
            revenue[line.sku] += line.quantity * line.unit_price.amount
            orders_with[line.sku] += 1
    by_product = {row["sku"]: row for row in rows(reports, "sales/by_product")}
    assert {sku: row["units"] for sku, row in by_product.items()} == dict(units)
    assert {sku: row["revenue_minor"] for sku, row in by_product.items()} == dict(revenue)
    assert {sku: row["orders"] for sku, row in by_product.items()} == dict(orders_with)
    assert by_product["MUG"]["name_zh"] == "MUG 中文" and by_product["MUG"]["category"] == "home"

    by_category: Counter[str] = Counter()
    for sku, amount in revenue.items():
        by_category[PRODUCTS[sku][0]] += amount
    assert {
        row["category"]: row["revenue_minor"] for row in rows(reports, "sales/by_category")
    } == dict(by_category)

    warehouse_units: Counter[str] = Counter()
    warehouse_revenue: Counter[str] = Counter()
    for p in paid_today:
        prices = {line.sku: line.unit_price.amount for line in p.order.lines}
        for allocation in p.order.allocations:
            warehouse_units[allocation.warehouse] += allocation.quantity
            warehouse_revenue[allocation.warehouse] += allocation.quantity * prices[allocation.sku]
        per_shipment = p.order.shipping_fee.amount // len(p.order.shipments)
        for shipment in p.order.shipments:
            warehouse_revenue[shipment.warehouse] += per_shipment
    by_warehouse = {row["warehouse_id"]: row for row in rows(reports, "sales/by_warehouse")}
    assert {w: row["units"] for w, row in by_warehouse.items()} == dict(warehouse_units)
    assert {w: row["revenue_minor"] for w, row in by_warehouse.items()} == dict(warehouse_revenue)
    assert by_warehouse["HZ"]["city"] == "Hangzhou"

    methods: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for p in paid_today:
        methods[p.method][0] += 1
        methods[p.method][1] += p.order.total.amount
    for _customer, method, amount, _when in refunded_today:
        methods[method][2] += 1
        methods[method][3] += amount
    assert {
        row["payment_method"]: [
            row["payments"],
            row["captured_minor"],
            row["refunds"],
            row["refunded_minor"],
        ]
        for row in rows(reports, "sales/by_payment_method")
    } == dict(methods)

    hours: Counter[int] = Counter()
    for p in paid_today:
        hours[p.paid_at.astimezone(SHANGHAI).hour] += p.order.total.amount
    by_hour = rows(reports, "sales/by_hour")
    assert {row["hour"]: row["revenue_minor"] for row in by_hour if row["revenue_minor"]} == dict(
        hours
    )
    assert hours[0] > 0  # bob paid ten minutes after midnight, Shanghai time

    top = rows(reports, "sales/top_products")
    assert [row["sku"] for row in top] == [sku for sku, _ in revenue.most_common()]
    assert reports.headline["orders_placed"] == sum(1 for _, t in ledger.placed if day_of(t) == D0)
    assert reports.headline["orders_expired"] == 1


def test_customer_figures_and_segments_match_the_customers_histories(pipe: Pipe) -> None:
    ledger = the_story(pipe)

    reports = reports_for(D0)

    paid_today = [p for p in ledger.paid if day_of(p.paid_at) == D0]
    spent: Counter[str] = Counter()
    for p in paid_today:
        spent[p.order.customer_id] += p.order.total.amount
    (summary,) = rows(reports, "customers/summary")
    assert summary["customers"] == 3
    assert summary["new_customers"] == 2  # bob and erin; alice bought before
    assert summary["returning_customers"] == 1
    assert summary["revenue_per_customer_minor"] == round(sum(spent.values()) / 3)
    everyone = {p.order.customer_id for p in ledger.paid}
    repeaters = {c for c in everyone if sum(p.order.customer_id == c for p in ledger.paid) >= 2}
    assert summary["repeat_rate"] == round(len(repeaters) / len(everyone), 4)

    segments = {row["segment"]: row for row in rows(reports, "customers/rfm_segments")}
    # alice: 2 orders, paid today -> loyal. bob, carol: one recent order -> promising; erin
    # too, as the refund took her below the high-value line. gina: one order 60 days ago.
    # frank: two orders 111 days ago -> at risk. dave: one order 111 days ago -> lost.
    assert {name: row["customers"] for name, row in segments.items()} == {
        "champions": 0,
        "loyal": 1,
        "promising": 3,
        "needs_attention": 1,
        "at_risk": 1,
        "lost": 1,
    }
    net: Counter[str] = Counter()
    for p in ledger.paid:
        net[p.order.customer_id] += p.order.total.amount
    for customer, _method, amount, _when in ledger.refunds:
        net[customer] -= amount
    promising = {"bob", "carol", "erin"}
    assert segments["promising"]["revenue_minor"] == sum(net[c] for c in promising)
    assert segments["promising"]["average_recency_days"] == round((0 + 1 + 0) / 3, 1)
    assert segments["lost"]["average_recency_days"] == 111.0
    assert segments["at_risk"]["average_frequency"] == 2.0
    # bob bought mostly pens, carol tea, erin lamps.
    assert segments["promising"]["favourite_categories"] == "food=1;home=1;office=1"

    top = rows(reports, "customers/top_customers")
    assert [row["customer_id"] for row in top] == [c for c, _ in spent.most_common()]
    assert top[0]["revenue_minor"] == spent.most_common(1)[0][1]
    assert top[0]["last_order_at"] == at(D0, 14, 1).astimezone(SHANGHAI).isoformat()


def test_inventory_reports_stock_turnover_and_the_days_stockouts(pipe: Pipe) -> None:
    the_story(pipe)

    reports = reports_for(D0)

    stock_rows = {
        (r["warehouse_id"], r["sku"]): r for r in rows(reports, "inventory/stock_by_warehouse")
    }
    assert set(stock_rows) == {(w, s) for s, w in STOCK}
    mug_sh = stock_rows[("SH", "MUG")]
    assert (mug_sh["on_hand"], mug_sh["reserved"], mug_sh["available"]) == (2, 2, 0)
    assert mug_sh["below_threshold"] is True
    # The catalogue has no unit costs yet: unknown, and said so.
    assert all(row["cost_known"] is False for row in stock_rows.values())
    assert reports.headline["skus_without_unit_cost"] == len(PRODUCTS)

    (stockout,) = rows(reports, "inventory/stockouts")
    assert (stockout["sku"], stockout["warehouse_id"]) == ("MUG", "SH")
    assert stockout["stocked_out_at"] == at(D0, 10).astimezone(SHANGHAI).isoformat()
    assert stockout["restocked_at"] is None
    assert stockout["hours_out_of_stock"] == 14.0

    turnover = {row["sku"]: row for row in rows(reports, "inventory/sku_turnover")}
    # No earlier snapshot: the day alone is the window.
    assert turnover["MUG"]["units_sold"] == 3
    assert turnover["LAMP"]["units_sold"] == 20
    assert turnover["LAMP"]["days_of_cover"] == round(10 * 1 / 20, 1)
    assert reports.headline["turnover_window_days"] == 1
    assert rows(reports, "inventory/slow_movers") == []  # everything sold within 30 days


def test_stock_is_valued_at_the_catalogues_unit_cost_where_it_has_one(pipe: Pipe) -> None:
    replenishment = pytest.importorskip("chalicelib.domain.replenishment")
    category, price = PRODUCTS["LAMP"]
    catalogue.put_product(
        "LAMP",
        ProductDetails(
            name=LocalizedText(zh_cn="LAMP 中文", en="Lamp"),
            category=category,
            price=Money(price, "CNY"),
            reorder=replenishment.ReorderPolicy(unit_cost=Money(8000, "CNY")),
        ),
    )
    the_story(pipe)

    reports = reports_for(D0)

    stock_rows = {
        (r["warehouse_id"], r["sku"]): r for r in rows(reports, "inventory/stock_by_warehouse")
    }
    lamp = stock_rows[("SH", "LAMP")]
    assert (lamp["unit_cost_minor"], lamp["value_at_cost_minor"]) == (8000, 30 * 8000)
    assert lamp["cost_known"] is True and stock_rows[("SH", "MUG")]["cost_known"] is False
    assert reports.headline["stock_value_at_cost_minor"] == 30 * 8000
    assert reports.headline["skus_without_unit_cost"] == len(PRODUCTS) - 1


def test_a_later_day_measures_turnover_against_the_snapshot_kept_for_an_earlier_one(
    pipe: Pipe,
) -> None:
    the_story(pipe)
    first = reports_for(D0)  # keeps D0's closing stock
    later = D0 + timedelta(days=5)
    lamps = Ledger()
    pay(lamps, place(lamps, "zoe", {"LAMP": 4}, at(later, 9)), "card", at(later, 9, 1))
    pipe.flush()

    reports = reports_for(later)

    turnover = {row["sku"]: row for row in rows(reports, "inventory/sku_turnover")}
    assert reports.headline["turnover_window_days"] == 5
    assert turnover["LAMP"]["units_sold"] == 4
    # On hand was 30 at D0's close (20 reserved) and is 30 still (nothing shipped).
    assert turnover["LAMP"]["turnover"] == round(4 / 30, 4)
    assert turnover["LAMP"]["average_daily_units"] == 0.8
    # D0 run again reports the stock it closed with, not today's.
    again = reports_for(D0)
    assert again.table("inventory/stock_by_warehouse") == first.table(
        "inventory/stock_by_warehouse"
    )
    assert again.headline["stock_measured_at"] == first.headline["stock_measured_at"]


def test_a_day_first_reported_long_after_it_ended_keeps_no_snapshot(pipe: Pipe) -> None:
    the_story(pipe)

    late = service.build_daily_reports(D0, now=at(D0 + timedelta(days=3), 9))

    assert analytics_store.get_snapshot(D0) is None  # today's stock is not D0's closing stock
    assert late.headline["stock_measured_at"] == "2026-11-23T09:00:00+08:00"
    reports_for(D0)
    assert analytics_store.get_snapshot(D0) is not None


# --- counted once, and nothing on a quiet day ---------------------------------------------------


def test_an_event_delivered_twice_is_counted_once(pipe: Pipe) -> None:
    the_story(pipe)
    first = reports_for(D0)
    totals_before = tables.client().get_item(
        TableName=tables.table_name(), Key={"pk": {"S": "AN#CUSTOMER#alice"}, "sk": {"S": "TOTALS"}}
    )["Item"]

    # The same bodies again, as a redelivery would bring them: new message ids, same events.
    again = [{**m, "MessageId": str(uuid.uuid4())} for m in pipe.delivered]
    pipe.deliver(again)

    second = reports_for(D0)
    for table in first.tables:
        assert second.table(table.name).rows == table.rows, table.name
    totals_after = tables.client().get_item(
        TableName=tables.table_name(), Key={"pk": {"S": "AN#CUSTOMER#alice"}, "sk": {"S": "TOTALS"}}
    )["Item"]
    assert totals_after == totals_before
    types = Counter(json.loads(m["Body"])["type"] for m in again)
    assert types["order.paid"] == 9 and types["payment.refunded"] == 2


def test_a_refund_of_money_that_never_was_revenue_is_kept_apart(pipe: Pipe) -> None:
    the_story(pipe)
    stray = service.AnalyticsEvent(
        event_id="evt_stray",
        type="payment.refunded",
        occurred_at=at(D0, 18),
        payload={
            "customer_id": "dave",
            "payment_id": "pay_never_paid_an_order",
            "method": "card",
            "amount": {"amount": 1234, "currency": "CNY"},
        },
    )

    assert service.record_event(stray) is service.Outcome.RECORDED
    assert service.record_event(stray) is service.Outcome.DUPLICATE

    reports = reports_for(D0)
    assert rows(reports, "sales/daily_summary")[0]["refunds_minor"] == 100_500
    assert reports.headline["refunds_not_of_revenue_minor"] == 1234


def test_a_day_without_activity_reports_zero_figures(pipe: Pipe) -> None:
    quiet = D0 - timedelta(days=400)

    reports = reports_for(quiet)

    (summary,) = rows(reports, "sales/daily_summary")
    assert summary["orders"] == summary["gross_revenue_minor"] == summary["units"] == 0
    assert summary["average_order_value_minor"] is None
    for name in ("sales/by_product", "sales/top_products", "customers/top_customers"):
        assert rows(reports, name) == []
    assert rows(reports, "inventory/stockouts") == []
    assert all(row["customers"] == 0 for row in rows(reports, "customers/rfm_segments"))


def test_malformed_messages_are_reported_and_the_rest_of_the_batch_is_counted(
    pipe: Pipe,
) -> None:
    good = service.AnalyticsEvent("evt_placed", "order.placed", at(D0, 9), {"order_id": "o"})
    body = json.dumps(
        {
            "event_id": good.event_id,
            "type": good.type,
            "occurred_at": good.occurred_at.isoformat(),
            "payload": dict(good.payload),
        }
    )
    messages = [
        {"MessageId": "m-good", "ReceiptHandle": "r1", "Body": body},
        {"MessageId": "m-bad", "ReceiptHandle": "r2", "Body": "not json"},
    ]
    event = {"Records": [sqs_record(m, pipe.analytics_arn, REGION) for m in messages]}

    result = pipe.api.client.lambda_.invoke("record_analytics", event).payload

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert reports_for(D0).headline["orders_placed"] == 1


# --- the nightly job ------------------------------------------------------------------------------


def test_the_scheduled_job_builds_the_asked_day_and_hands_it_to_the_exports(
    pipe: Pipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_story(pipe)
    handed: list[DailyReports] = []
    exports = types.ModuleType(service.EXPORTS_MODULE)
    exports.__spec__ = importlib.machinery.ModuleSpec(service.EXPORTS_MODULE, None)
    exports.export_reports = handed.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, service.EXPORTS_MODULE, exports)
    event = scheduled_event("orderdesk-test-analytics", detail={"date": D0.isoformat()})

    result = pipe.api.client.lambda_.invoke("analytics", event).payload

    assert result["date"] == D0.isoformat() and result["exported"] is True
    assert result["tables"]["sales/by_product"] == 4
    (reports,) = handed
    assert reports.day == D0 and reports.headline["orders"] == 3


def test_without_the_exports_module_the_job_still_builds_and_says_so(
    pipe: Pipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EXPORTS_MODULE", "chalicelib.services.no_such_exports")

    runs = service.run_range(D0 - timedelta(days=1), D0, now=at(D0 + timedelta(days=1), 1))

    assert [run.day for run in runs] == [D0 - timedelta(days=1), D0]
    assert not any(run.exported for run in runs)


def test_by_default_the_job_reports_the_day_that_just_ended_in_shanghai() -> None:
    assert service.previous_business_day(datetime(2026, 11, 24, 16, 30, tzinfo=UTC)) == date(
        2026, 11, 24
    )
    assert service.previous_business_day(datetime(2026, 11, 24, 15, 59, tzinfo=UTC)) == date(
        2026, 11, 23
    )


# --- cost grows with the day, not with history ----------------------------------------------------


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


def nightly_calls() -> Counter[str]:
    counter = CallCounter()
    events = tables.client().meta.events
    events.register("provide-client-params.dynamodb.*", counter)
    try:
        reports_for(D0)
    finally:
        events.unregister("provide-client-params.dynamodb.*", counter)
    return counter.calls


def history_then_day(pipe: Pipe, times: int) -> Counter[str]:
    ledger = Ledger()
    for back in (3, 5, 7):
        for n in range(times):
            day = D0 - timedelta(days=back)
            customer = f"h{back}-{n}"
            order = place(ledger, customer, {"PEN": 1, "TEA": 1}, at(day, 9 + n % 10))
            pay(ledger, order, "card", at(day, 9 + n % 10, 30))
    pay(ledger, place(ledger, "alice", {"MUG": 1}, at(D0, 10)), "alipay", at(D0, 10, 5))
    pay(ledger, place(ledger, "h3-0", {"PEN": 2}, at(D0, 11)), "card", at(D0, 11, 5))
    pipe.flush()
    return nightly_calls()


def fresh_table() -> None:
    client = tables.client()
    client.delete_table(TableName=tables.table_name())
    client.create_table(TableName=tables.table_name(), **main_table_definition())


def test_the_nightly_reads_do_not_grow_with_older_history(
    pipe: Pipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    once = history_then_day(pipe, 1)
    fresh_table()
    analytics_url, analytics_arn = wire_queues(monkeypatch)
    again = Pipe(pipe.api, Stream(), analytics_url, analytics_arn)
    build_world()
    again.flush()

    thrice = history_then_day(again, 3)

    assert once == thrice
    assert "Scan" not in once
