"""The nightly analytics job against the age of the data: the same day, after 1x and 10x as
much older history, should cost the same DynamoDB calls and read the same items.

Each run starts its own emulator (``python -m infra.local.aws_emulator``, a fresh table),
provisions the template's resources and seeds a catalogue with stock in every warehouse.
History is then written for the days before the report day, and the report day's own
activity after it, identical in both runs. Orders are priced and allocated by the domain and
stored by the order store; their ``order.paid`` events, with the payload the payment service
writes, go straight to ``services.analytics.record_event`` (the queue in between only
delivers them). The nightly job then runs for an earlier day (so that a stock snapshot exists
to measure turnover against) and, measured, for the report day: every DynamoDB call it makes
is counted by operation through a botocore event hook on the client, with the items it read.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.orders import _configure
from bench.transactions import _emulator

ROOT = Path(__file__).resolve().parent.parent
REPORT_DAY = date(2026, 11, 24)
HISTORY_DAYS = 10
HISTORY_CUSTOMERS_PER_SHARD_PER_DAY = 2  # x the history multiple
DAY_ORDERS = 40
MULTIPLES = (1, 10)
RERUNS = 5
WAREHOUSES = {
    "wh-sha": (31.2304, 121.4737),
    "wh-pek": (39.9042, 116.4074),
    "wh-can": (23.1291, 113.2644),
}
CATEGORIES = ("home", "kitchen", "tea", "stationery", "electronics")
SKUS = [f"AN-{n:02d}" for n in range(30)]
PRICES = {sku: 500 + 150 * number for number, sku in enumerate(SKUS)}  # minor units
UNITS_PER_LEVEL = 100_000
METHODS = ("card", "alipay", "wechat_pay")


def _seed() -> None:
    from chalicelib.domain.catalogue import (
        LocalizedText,
        Location,
        ProductDetails,
        WarehouseDetails,
    )
    from chalicelib.domain.money import Money
    from chalicelib.services import analytics, catalogue, stock
    from chalicelib.store import analytics as analytics_store

    for warehouse, (lat, lon) in WAREHOUSES.items():
        catalogue.put_warehouse(
            warehouse, WarehouseDetails(warehouse, warehouse, Location(lat, lon))
        )
    for number, sku in enumerate(SKUS):
        details = ProductDetails(
            name=LocalizedText(zh_cn=f"分析商品 {number}", en=f"Analytics product {number}"),
            category=CATEGORIES[number % len(CATEGORIES)],
            price=Money(PRICES[sku], "CNY"),
        )
        catalogue.put_product(sku, details)
        for warehouse in WAREHOUSES:
            stock.receive(sku, warehouse, UNITS_PER_LEVEL, actor="bench")
            # What the forwarder derives from the level's creation in the table's stream.
            analytics.record_event(
                analytics.AnalyticsEvent(
                    event_id=f"{analytics_store.LEVEL_CREATED}:{sku}:{warehouse}",
                    type=analytics_store.LEVEL_CREATED,
                    occurred_at=datetime.now(UTC),
                    payload={"sku": sku, "warehouse": warehouse},
                )
            )
    stock.forget_cached_warehouses()


def _customers_by_shard(count_per_shard: int, prefix: str) -> list[list[str]]:
    """Customer ids grouped by their counter shard, ``count_per_shard`` in each."""
    from chalicelib.domain.analytics import COUNTER_SHARDS, shard_of

    groups: list[list[str]] = [[] for _ in range(COUNTER_SHARDS)]
    number = 0
    while any(len(group) < count_per_shard for group in groups):
        customer = f"{prefix}-{number:05d}"
        group = groups[shard_of(customer)]
        if len(group) < count_per_shard:
            group.append(customer)
        number += 1
    return groups


def _paid_order(rng: random.Random, customer: str, paid_at: datetime) -> None:
    from chalicelib.domain.allocation import Allocation, AllocationPlan, RequestedLine
    from chalicelib.domain.money import Money
    from chalicelib.domain.orders import Order, OrderStatus, ShippingAddress
    from chalicelib.services import analytics, orders
    from chalicelib.store import orders as order_store
    from chalicelib.store.unit_of_work import UnitOfWork

    skus = rng.sample(SKUS, rng.randint(1, 4))
    warehouse = rng.choice(sorted(WAREHOUSES))
    lines = [RequestedLine(sku, rng.randint(1, 3)) for sku in skus]
    prices = {sku: Money(PRICES[sku], "CNY") for sku in skus}
    placed_at = paid_at - timedelta(minutes=rng.randint(1, 10))
    order = Order.place(
        order_id=orders.new_order_id(placed_at),
        customer_id=customer,
        lines=lines,
        prices=prices,
        plan=AllocationPlan(
            allocations=tuple(Allocation(line.sku, warehouse, line.quantity) for line in lines),
            warehouses=(warehouse,),
        ),
        shipping_address=ShippingAddress(
            "测试", "+8613800000000", "CN", "上海", "上海市", "人民大道 1 号", "200003"
        ),
        fee_rule=orders.fee_rule(),
        at=placed_at,
    )
    paid = order.transition(to=OrderStatus.PAID, at=paid_at, actor="payment:bench")
    uow = UnitOfWork()
    order_store.add_new_order(uow, paid)
    uow.commit()
    method = rng.choice(METHODS)
    payload = orders.order_event_payload(
        paid,
        payment_id=f"pay_{paid.order_id[4:]}",
        method=method,
        previous_status="pending_payment",
    )
    analytics.record_event(
        analytics.AnalyticsEvent(
            # From the seeded generator: the report day's counters shard alike in every run.
            event_id=f"evt_{rng.getrandbits(128):032x}",
            type="order.paid",
            occurred_at=paid_at,
            payload=payload,
        )
    )


def _business_moment(day: date, rng: random.Random) -> datetime:
    from chalicelib.domain.analytics import DEFAULT_TIME_ZONE, business_zone, day_bounds

    start, _ = day_bounds(day, business_zone(DEFAULT_TIME_ZONE))
    return (start + timedelta(seconds=rng.randint(8 * 3600, 23 * 3600))).astimezone(UTC)


def _write_history(multiple: int) -> int:
    rng = random.Random(20261124 + multiple)
    groups = _customers_by_shard(HISTORY_CUSTOMERS_PER_SHARD_PER_DAY * multiple, "past")
    orders = 0
    for back in range(HISTORY_DAYS, 0, -1):
        day = REPORT_DAY - timedelta(days=back)
        for group in groups:
            for customer in rng.sample(group, HISTORY_CUSTOMERS_PER_SHARD_PER_DAY * multiple):
                _paid_order(rng, customer, _business_moment(day, rng))
                orders += 1
    return orders


def _write_report_day() -> None:
    rng = random.Random(1124)
    returning = _customers_by_shard(HISTORY_CUSTOMERS_PER_SHARD_PER_DAY, "past")
    newcomers = _customers_by_shard(5, "new")
    customers = [c for group in returning for c in group] + [c for g in newcomers for c in g]
    for number in range(DAY_ORDERS):
        _paid_order(rng, customers[number % len(customers)], _business_moment(REPORT_DAY, rng))


@dataclass
class Counted:
    calls: Counter[str]
    items_read: int
    seconds: float


@dataclass
class Run:
    history_orders: int
    counted: Counted
    rerun_seconds: float
    empty_query_seconds: float  # what the emulator takes for a Query that finds nothing


class _Hook:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read = 0

    def before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        read = len(parsed.get("Items") or [])
        read += sum(len(items) for items in (parsed.get("Responses") or {}).values())
        read += 1 if parsed.get("Item") else 0
        self.items_read += read


def _nightly(day: date) -> Counted:
    from chalicelib.domain.analytics import DEFAULT_TIME_ZONE, business_zone, day_bounds
    from chalicelib.services import analytics
    from chalicelib.store import tables

    _, day_end = day_bounds(day, business_zone(DEFAULT_TIME_ZONE))
    hook = _Hook()
    events = tables.client().meta.events
    events.register("provide-client-params.dynamodb.*", hook.before)
    events.register("after-call.dynamodb.*", hook.after)
    try:
        started = time.perf_counter()
        analytics.build_daily_reports(day, now=day_end + timedelta(minutes=30))
        seconds = time.perf_counter() - started
    finally:
        events.unregister("provide-client-params.dynamodb.*", hook.before)
        events.unregister("after-call.dynamodb.*", hook.after)
    return Counted(hook.calls, hook.items_read, seconds)


def _rerun_seconds(day: date) -> float:
    from chalicelib.domain.analytics import DEFAULT_TIME_ZONE, business_zone, day_bounds
    from chalicelib.services import analytics

    _, day_end = day_bounds(day, business_zone(DEFAULT_TIME_ZONE))
    times = []
    for _ in range(RERUNS):
        started = time.perf_counter()
        analytics.build_daily_reports(day, now=day_end + timedelta(minutes=30))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _empty_query_seconds() -> float:
    from chalicelib.store import tables

    times = []
    for _ in range(RERUNS):
        started = time.perf_counter()
        tables.client().query(
            TableName=tables.table_name(),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "BENCH#NOTHING"}},
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _one_run(multiple: int) -> Run:
    with _emulator() as endpoint_url:
        _configure(endpoint_url)
        _seed()
        history = _write_history(multiple)
        _write_report_day()
        _nightly(REPORT_DAY - timedelta(days=HISTORY_DAYS // 2))  # a snapshot to measure against
        counted = _nightly(REPORT_DAY)
        return Run(history, counted, _rerun_seconds(REPORT_DAY), _empty_query_seconds())


def _reset() -> None:
    from chalicelib.services import stock
    from chalicelib.settings import get_settings
    from chalicelib.store import tables

    get_settings.cache_clear()
    tables.reset()
    stock.forget_cached_warehouses()


def main() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    saved_environment = dict(os.environ)
    results: dict[int, Run] = {}
    try:
        for multiple in MULTIPLES:
            results[multiple] = _one_run(multiple)
            os.environ.clear()
            os.environ.update(saved_environment)
            _reset()
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
        _reset()
    print(
        f"nightly analytics for {REPORT_DAY} ({DAY_ORDERS} paid orders that day, "
        f"{len(SKUS)} SKUs x {len(WAREHOUSES)} warehouses), emulator in its own process",
        flush=True,
    )
    for multiple, run in results.items():
        counted = run.counted
        calls = ", ".join(f"{name} {n}" for name, n in sorted(counted.calls.items()))
        print(
            f"{multiple:>2}x history ({run.history_orders} older paid orders over "
            f"{HISTORY_DAYS} days): calls [{calls}] = {sum(counted.calls.values())}; "
            f"items read {counted.items_read}; first run {counted.seconds * 1000:.0f} ms, "
            f"rerun median {run.rerun_seconds * 1000:.0f} ms; the emulator's Query of an "
            f"empty partition {run.empty_query_seconds * 1000:.1f} ms"
        )
    first, last = (results[m].counted for m in (MULTIPLES[0], MULTIPLES[-1]))
    same_calls = first.calls == last.calls
    same_items = first.items_read == last.items_read
    print(
        f"calls {'equal' if same_calls else 'DIFFER'}, items read "
        f"{'equal' if same_items else 'DIFFER'} (target: both equal). Times are the "
        "emulator's: moto walks every item of the table for each Query, so its Query time grows "
        "with the table (see the empty-partition figure); DynamoDB reads only the partition.",
        flush=True,
    )


if __name__ == "__main__":
    main()
