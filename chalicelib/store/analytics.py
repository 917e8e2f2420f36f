"""Analytics aggregates in the main table: counters kept up to date from events, customer and
SKU totals, segment counters, the list of stock levels and daily stock snapshots.

Item shapes (the only place that knows them):

    claim        pk=AN#EVENT#<event_id>       sk=CLAIM        type, claimed_at, expires_ttl
    day counters pk=AN#DAY#<day>#<shard>      sk=SUMMARY      orders, units, gross,
                 merchandise, shipping, refunds, refund_count, other_refunds,
                 other_refund_count, placed, cancelled, expired, low_stock_alerts_opened
                                              sk=METHOD#<method>        payments, captured,
                                                                        refunds, refunded
                                              sk=HOUR#<hh>              orders, units, revenue
                                              sk=ITEM#<sku>#<warehouse> sku, warehouse, category,
                 units, revenue, shipping, orders, category_orders, warehouse_orders
                                              sk=CUSTOMER#<id>          customer_id, orders,
                 revenue, refunds, refund_count, first_paid_day, last_order_at
                                              sk=LEVEL#<sku>#<warehouse> sku, warehouse,
                 outs, restocks (string sets of ISO times)
    customer     pk=AN#CUSTOMER#<id>          sk=TOTALS       orders, spent, refunded,
                 first_paid_day, last_paid_day, last_paid_at, categories (map), version
    SKU          pk=AN#SKU#<sku>              sk=TOTALS       units_sold, last_sale_day
    payment      pk=AN#PAYMENT#<payment_id>   sk=PAID         day (its order's revenue counted)
    classes      pk=AN#CLASSES#<shard>        sk=ALL          per customer class <c>:
                 n|<c>, orders|<c>, net|<c>, days|<c>, fav|<c>|<category>
    cohort       pk=AN#COHORT#<shard>         sk=<last paid day>   the same, but days|<c>
    level list   pk=AN#LEVELS                 sk=<warehouse>#<sku>  sku, warehouse
    snapshot     pk=AN#STOCK#<day>            sk=<sku>        levels (list), units_sold_to_date,
                 last_sale_day
    snapshots    pk=AN#SNAPSHOTS              sk=<day>        taken_at, skus

Days are business days (ISO dates). Day counters are spread over ``COUNTER_SHARDS`` partitions
(by event id; customer and level items by their own id, so each has one item per day) and
summed when read. Every counter moves by ``ADD`` in one ``TransactWriteItems`` with the
event's claim (``attribute_not_exists``): an event delivered twice is cancelled by its claim
and counts once. A customer's totals are rewritten conditionally on their version, and in
the same transaction the customer moves between the class and cohort counters, so segment
counts follow every change exactly once.

Reading a day costs a Query per shard of that day's partition; the segment counters, a
Query per shard from 90 days back; the level list, one Query; no Scan anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.analytics import (
    COUNTER_SHARDS,
    ClassTotals,
    CustomerDay,
    CustomerTotals,
    DayActivity,
    HourCounters,
    ItemCounters,
    LevelChanges,
    LevelFigures,
    Membership,
    MethodCounters,
    Sale,
    SalesCounters,
    SkuSales,
    SkuStock,
    StockSnapshot,
    shard_of,
)
from chalicelib.domain.catalogue import Product
from chalicelib.domain.orders import Order
from chalicelib.store import catalogue, inventory, orders, outbox, tables
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

EVENT_PREFIX = "AN#EVENT#"
CLAIM_SK = "CLAIM"
# Longer than a message can live in its queue and dead-letter queue (4 + 14 days).
CLAIM_RETENTION = timedelta(days=30)
DAY_PREFIX = "AN#DAY#"
SUMMARY_SK = "SUMMARY"
METHOD_PREFIX = "METHOD#"
HOUR_PREFIX = "HOUR#"
ITEM_PREFIX = "ITEM#"
CUSTOMER_DAY_PREFIX = "CUSTOMER#"
LEVEL_DAY_PREFIX = "LEVEL#"
CUSTOMER_PREFIX = "AN#CUSTOMER#"
SKU_PREFIX = "AN#SKU#"
TOTALS_SK = "TOTALS"
PAYMENT_PREFIX = "AN#PAYMENT#"
PAID_SK = "PAID"
CLASSES_PREFIX = "AN#CLASSES#"
CLASSES_SK = "ALL"
COHORT_PREFIX = "AN#COHORT#"
LEVELS_PK = "AN#LEVELS"
STOCK_PREFIX = "AN#STOCK#"
SNAPSHOTS_PK = "AN#SNAPSHOTS"

# Events derived from stock levels' own changes in the table's stream (see ``level_events``).
LEVEL_CREATED = "stock.level_created"
STOCK_OUT = "stock.out"
STOCK_RESTOCKED = "stock.restocked"

ORDER_COUNTS = ("placed", "cancelled", "expired")

StockKey = tuple[str, str]  # (sku, warehouse)


def _key(pk: str, sk: str) -> tables.RawItem:
    return {tables.PK: {"S": pk}, tables.SK: {"S": sk}}


def _day_pk(day: date, shard: int) -> str:
    return f"{DAY_PREFIX}{day.isoformat()}#{shard}"


def _value(value: Any) -> dict[str, Any]:
    return tables.to_item({"v": value})["v"]


def _int(item: Mapping[str, Any], name: str) -> int:
    return int(item.get(name) or 0)


def _day_or_none(text: Any) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


def _time_or_none(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _add_counters(
    uow: UnitOfWork,
    key: tables.RawItem,
    *,
    tag: tuple[Any, ...],
    add: Mapping[str, int] | None = None,
    assign: Mapping[str, Any] | None = None,
    entity: str,
) -> None:
    """One update adding ``add`` to counters (zeros left out) and setting ``assign``."""
    names: dict[str, str] = {"#entity": "entity"}
    values: dict[str, Any] = {":entity": {"S": entity}}
    additions: list[str] = []
    for index, (name, delta) in enumerate(sorted((add or {}).items())):
        if delta:
            names[f"#a{index}"] = name
            values[f":a{index}"] = {"N": str(delta)}
            additions.append(f"#a{index} :a{index}")
    assignments = ["#entity = :entity"]
    for index, (name, value) in enumerate(sorted((assign or {}).items())):
        if value is not None:
            names[f"#s{index}"] = name
            values[f":s{index}"] = _value(value)
            assignments.append(f"#s{index} = :s{index}")
    expression = "SET " + ", ".join(assignments)
    if additions:
        expression += " ADD " + ", ".join(additions)
    uow.update(key, expression, tag=tag, names=names, values=values)


# --- claims ---------------------------------------------------------------------------------------


def add_claim(uow: UnitOfWork, event_id: str, event_type: str, *, at: datetime) -> None:
    """Claim ``event_id`` in ``uow``: the transaction fails if it was counted already."""
    uow.put(
        tables.to_item(
            {
                tables.PK: EVENT_PREFIX + event_id,
                tables.SK: CLAIM_SK,
                "entity": "analytics_claim",
                "type": event_type,
                "claimed_at": tables.timestamp(at),
                tables.TTL_ATTRIBUTE: int((at + CLAIM_RETENTION).timestamp()),
            }
        ),
        tag=("claim", event_id),
        condition="attribute_not_exists(pk)",
    )


def is_duplicate(cancelled: TransactionCancelled) -> bool:
    """Whether the transaction lost because its event had been counted already."""
    return any(
        reason.tag[:1] == ("claim",) and reason.condition_failed for reason in cancelled.failed()
    )


def lost_customer_race(cancelled: TransactionCancelled) -> bool:
    """Whether another event for the same customer changed their totals first."""
    return cancelled.conflicted or any(
        reason.tag[:1] == ("customer",) and reason.condition_failed for reason in cancelled.failed()
    )


# --- what events add ------------------------------------------------------------------------------


def add_sale(uow: UnitOfWork, sale: Sale, *, shard: int) -> None:
    """The day's sales counters for a paid order, and the mark that its payment was revenue."""
    day = sale.day
    pk = _day_pk(day, shard)
    _add_counters(
        uow,
        _key(pk, SUMMARY_SK),
        tag=("day", day.isoformat(), shard, SUMMARY_SK),
        add={
            "orders": 1,
            "units": sale.units,
            "gross": sale.total,
            "merchandise": sale.merchandise,
            "shipping": sale.shipping,
        },
        entity="analytics_day",
    )
    _add_counters(
        uow,
        _key(pk, METHOD_PREFIX + sale.method),
        tag=("day", day.isoformat(), shard, "method", sale.method),
        add={"payments": 1, "captured": sale.total},
        assign={"method": sale.method},
        entity="analytics_day",
    )
    _add_counters(
        uow,
        _key(pk, f"{HOUR_PREFIX}{sale.hour:02d}"),
        tag=("day", day.isoformat(), shard, "hour", sale.hour),
        add={"orders": 1, "units": sale.units, "revenue": sale.total},
        assign={"hour": sale.hour},
        entity="analytics_day",
    )
    merged: dict[StockKey, ItemCounters] = {}
    for item in sale.items:
        total = merged.setdefault(
            (item.sku, item.warehouse), ItemCounters(item.sku, item.warehouse, item.category)
        )
        total.units += item.units
        total.revenue += item.revenue
        total.shipping += item.shipping
        total.orders += item.orders
        total.category_orders += item.category_orders
        total.warehouse_orders += item.warehouse_orders
    for (sku, warehouse), total in sorted(merged.items()):
        _add_counters(
            uow,
            _key(pk, f"{ITEM_PREFIX}{sku}#{warehouse}"),
            tag=("day", day.isoformat(), shard, "item", sku, warehouse),
            add={
                "units": total.units,
                "revenue": total.revenue,
                "shipping": total.shipping,
                "orders": total.orders,
                "category_orders": total.category_orders,
                "warehouse_orders": total.warehouse_orders,
            },
            assign={"sku": sku, "warehouse": warehouse, "category": total.category},
            entity="analytics_day",
        )
    uow.put(
        tables.to_item(
            {
                tables.PK: PAYMENT_PREFIX + sale.payment_id,
                tables.SK: PAID_SK,
                "entity": "analytics_paid_payment",
                "order_id": sale.order_id,
                "day": day.isoformat(),
            }
        ),
        tag=("payment", sale.payment_id),
    )


def add_refund(
    uow: UnitOfWork,
    *,
    day: date,
    shard: int,
    method: str,
    amount: int,
    of_revenue: bool,
) -> None:
    """A refund on ``day``: of revenue (a payment that paid an order) or of money that never
    was revenue."""
    pk = _day_pk(day, shard)
    summary = (
        {"refunds": amount, "refund_count": 1}
        if of_revenue
        else {"other_refunds": amount, "other_refund_count": 1}
    )
    _add_counters(
        uow,
        _key(pk, SUMMARY_SK),
        tag=("day", day.isoformat(), shard, SUMMARY_SK),
        add=summary,
        entity="analytics_day",
    )
    if of_revenue:
        _add_counters(
            uow,
            _key(pk, METHOD_PREFIX + method),
            tag=("day", day.isoformat(), shard, "method", method),
            add={"refunds": 1, "refunded": amount},
            assign={"method": method},
            entity="analytics_day",
        )


def add_order_count(uow: UnitOfWork, *, day: date, shard: int, counter: str) -> None:
    """One more order placed, cancelled or expired on ``day``."""
    if counter not in ORDER_COUNTS:
        raise ValueError(f"unknown order counter {counter!r}")
    _add_counters(
        uow,
        _key(_day_pk(day, shard), SUMMARY_SK),
        tag=("day", day.isoformat(), shard, SUMMARY_SK),
        add={counter: 1},
        entity="analytics_day",
    )


def add_alert_opened(uow: UnitOfWork, *, day: date, shard: int) -> None:
    """One more low-stock alert opened on ``day`` (in the alert's own transaction)."""
    _add_counters(
        uow,
        _key(_day_pk(day, shard), SUMMARY_SK),
        tag=("day", day.isoformat(), shard, SUMMARY_SK),
        add={"low_stock_alerts_opened": 1},
        entity="analytics_day",
    )


def add_customer_day(
    uow: UnitOfWork,
    *,
    day: date,
    customer: CustomerTotals,
    orders_added: int = 0,
    revenue: int = 0,
    refunds: int = 0,
    last_order_at: datetime | None = None,
) -> None:
    """The customer's figures for ``day`` (one item per customer and day)."""
    shard = shard_of(customer.customer_id)
    _add_counters(
        uow,
        _key(_day_pk(day, shard), CUSTOMER_DAY_PREFIX + customer.customer_id),
        tag=("day", day.isoformat(), shard, "customer", customer.customer_id),
        add={
            "orders": orders_added,
            "revenue": revenue,
            "refunds": refunds,
            "refund_count": 1 if refunds else 0,
        },
        assign={
            "customer_id": customer.customer_id,
            "first_paid_day": customer.first_paid_day.isoformat()
            if customer.first_paid_day
            else None,
            "last_order_at": tables.timestamp(last_order_at) if last_order_at else None,
        },
        entity="analytics_day",
    )


def add_sku_sales(uow: UnitOfWork, *, sku: str, units: int, last_sale_day: date) -> None:
    _add_counters(
        uow,
        _key(SKU_PREFIX + sku, TOTALS_SK),
        tag=("sku", sku),
        add={"units_sold": units},
        assign={"sku": sku, "last_sale_day": last_sale_day.isoformat()},
        entity="analytics_sku",
    )


def add_customer_change(
    uow: UnitOfWork, after: CustomerTotals, *, before: CustomerTotals | None
) -> None:
    """Write the customer's new totals if they are still ``before`` (by version), and move the
    customer between the class and cohort counters accordingly."""
    previous_version = before.version if before else 0
    condition = (
        "attribute_not_exists(pk)" if previous_version == 0 else "#version = :previous_version"
    )
    uow.put(
        _customer_item(after),
        tag=("customer", after.customer_id),
        condition=condition,
        names={"#version": "version"} if previous_version else None,
        values={":previous_version": {"N": str(previous_version)}} if previous_version else None,
    )
    old = before.membership if before else None
    new = after.membership
    if old == new:
        return
    shard = shard_of(after.customer_id)
    moves: dict[tuple[str, str], Counter[str]] = {}
    for membership, sign in ((old, -1), (new, 1)):
        if membership is None:
            continue
        overall = moves.setdefault((CLASSES_PREFIX + str(shard), CLASSES_SK), Counter())
        overall.update(_membership_counts(membership, sign, with_days=True))
        cohort_key = (COHORT_PREFIX + str(shard), membership.last_paid_day.isoformat())
        moves.setdefault(cohort_key, Counter()).update(
            _membership_counts(membership, sign, with_days=False)
        )
    for (pk, sk), deltas in sorted(moves.items()):
        changed = {name: delta for name, delta in deltas.items() if delta}
        if changed:
            _add_counters(
                uow, _key(pk, sk), tag=("classes", pk, sk), add=changed, entity="analytics_classes"
            )


def _membership_counts(membership: Membership, sign: int, *, with_days: bool) -> dict[str, int]:
    klass = membership.klass
    counts = {
        f"n|{klass}": sign,
        f"orders|{klass}": sign * membership.orders,
        f"net|{klass}": sign * membership.net,
    }
    if with_days:
        counts[f"days|{klass}"] = sign * membership.last_paid_day.toordinal()
    if membership.favourite:
        counts[f"fav|{klass}|{membership.favourite}"] = sign
    return counts


def _customer_item(customer: CustomerTotals) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: CUSTOMER_PREFIX + customer.customer_id,
            tables.SK: TOTALS_SK,
            "entity": "analytics_customer",
            "customer_id": customer.customer_id,
            "orders": customer.orders,
            "spent": customer.spent,
            "refunded": customer.refunded,
            "first_paid_day": customer.first_paid_day.isoformat()
            if customer.first_paid_day
            else None,
            "last_paid_day": customer.last_paid_day.isoformat() if customer.last_paid_day else None,
            "last_paid_at": tables.timestamp(customer.last_paid_at)
            if customer.last_paid_at
            else None,
            "categories": dict(customer.categories),
            "version": customer.version,
        }
    )


def _customer_from(raw: Mapping[str, Any]) -> CustomerTotals:
    item = tables.from_item(raw)
    return CustomerTotals(
        customer_id=item["customer_id"],
        orders=_int(item, "orders"),
        spent=_int(item, "spent"),
        refunded=_int(item, "refunded"),
        first_paid_day=_day_or_none(item.get("first_paid_day")),
        last_paid_day=_day_or_none(item.get("last_paid_day")),
        last_paid_at=_time_or_none(item.get("last_paid_at")),
        categories={str(k): int(v) for k, v in (item.get("categories") or {}).items()},
        version=_int(item, "version"),
    )


# --- stock levels ---------------------------------------------------------------------------------


def list_level(sku: str, warehouse: str) -> None:
    """Remember that the level (sku, warehouse) exists (idempotent)."""
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: LEVELS_PK,
                tables.SK: f"{warehouse}#{sku}",
                "entity": "analytics_level",
                "sku": sku,
                "warehouse": warehouse,
            }
        ),
    )


def record_level_change(
    *, day: date, sku: str, warehouse: str, ran_out: bool, at: datetime
) -> None:
    """A level ran out (``ran_out``) or came back on ``day``; set semantics make a repeat
    delivery of the same change harmless."""
    shard = shard_of(f"{sku}#{warehouse}")
    tables.client().update_item(
        TableName=tables.table_name(),
        Key=_key(_day_pk(day, shard), f"{LEVEL_DAY_PREFIX}{sku}#{warehouse}"),
        UpdateExpression="SET sku = :sku, warehouse = :warehouse, entity = :entity ADD #set :at",
        ExpressionAttributeNames={"#set": "outs" if ran_out else "restocks"},
        ExpressionAttributeValues={
            ":sku": {"S": sku},
            ":warehouse": {"S": warehouse},
            ":entity": {"S": "analytics_day"},
            ":at": {"SS": [tables.timestamp(at)]},
        },
    )


def level_events(record: Mapping[str, Any]) -> list[outbox.OutboxEvent]:
    """The events a stock level's change in the table's stream stands for: the level was
    created, ran out (``available`` fell to 0 or below), or came back. Records of other items
    stand for none."""
    change = record.get("dynamodb") or {}
    if not inventory.is_level_item(change.get("Keys") or {}):
        return []
    new_image = change.get("NewImage")
    old_image = change.get("OldImage")
    name = record.get("eventName")
    if not new_image:
        return []
    if "shard_slots" in new_image or "shard_slots" in (old_image or {}):
        return []  # a sharded level's item holds one shard, not the level
    level = inventory.level_from_item(new_image)
    at = _change_time(new_image, change)
    payload = {
        "sku": level.sku,
        "warehouse": level.warehouse,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
    }
    movements = new_image.get("movements", {}).get("N") or change.get("SequenceNumber", "")
    if name == "INSERT":
        kind = LEVEL_CREATED
        event_id = f"{kind}:{level.sku}:{level.warehouse}"
    elif name == "MODIFY" and old_image:
        before = inventory.level_from_item(old_image).available
        if before > 0 >= level.available:
            kind = STOCK_OUT
        elif before <= 0 < level.available:
            kind = STOCK_RESTOCKED
        else:
            return []
        event_id = f"{kind}:{level.sku}:{level.warehouse}:{movements}"
    else:
        return []
    return [outbox.OutboxEvent(event_id=event_id, type=kind, occurred_at=at, payload=payload)]


def _change_time(image: Mapping[str, Any], change: Mapping[str, Any]) -> datetime:
    text = image.get("updated_at", {}).get("S")
    if text:
        return datetime.fromisoformat(text)
    approximate = change.get("ApproximateCreationDateTime")
    if isinstance(approximate, int | float | Decimal):
        return datetime.fromtimestamp(float(approximate), UTC)
    return datetime.now(UTC)


def listed_levels() -> list[StockKey]:
    """Every (sku, warehouse) level there is, by warehouse then SKU."""
    return [
        (item["sku"]["S"], item["warehouse"]["S"])
        for item in _query(LEVELS_PK, projection="sku, warehouse")
    ]


# --- reading what an event needs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleInputs:
    order: Order | None
    products: dict[str, Product]
    customer: CustomerTotals | None
    sku_sales: dict[str, SkuSales]


def read_for_sale(order_id: str, customer_id: str, skus: Sequence[str]) -> SaleInputs:
    """The order, its products, the customer's and its SKUs' totals: one consistent
    ``BatchGetItem``."""
    keys = [orders.order_key(order_id), _key(CUSTOMER_PREFIX + customer_id, TOTALS_SK)]
    keys += [catalogue.product_key(sku) for sku in sorted(set(skus))]
    keys += [_key(SKU_PREFIX + sku, TOTALS_SK) for sku in sorted(set(skus))]
    order: Order | None = None
    customer: CustomerTotals | None = None
    products: dict[str, Product] = {}
    sku_sales: dict[str, SkuSales] = {}
    for raw in tables.batch_get(keys, consistent=True):
        pk = raw[tables.PK]["S"]
        if pk.startswith(CUSTOMER_PREFIX):
            customer = _customer_from(raw)
        elif pk.startswith(SKU_PREFIX):
            sales = _sku_sales_from(raw)
            sku_sales[sales.sku] = sales
        elif raw[tables.SK]["S"] == catalogue.PRODUCT_SK:
            product = catalogue.product_from_item(raw)
            products[product.sku] = product
        else:
            order = orders.order_from_item(raw)
    return SaleInputs(order=order, products=products, customer=customer, sku_sales=sku_sales)


@dataclass(frozen=True, slots=True)
class RefundInputs:
    customer: CustomerTotals | None
    payment_was_revenue: bool


def read_for_refund(customer_id: str, payment_id: str) -> RefundInputs:
    keys = [
        _key(CUSTOMER_PREFIX + customer_id, TOTALS_SK),
        _key(PAYMENT_PREFIX + payment_id, PAID_SK),
    ]
    customer: CustomerTotals | None = None
    paid = False
    for raw in tables.batch_get(keys, consistent=True):
        if raw[tables.PK]["S"].startswith(CUSTOMER_PREFIX):
            customer = _customer_from(raw)
        else:
            paid = True
    return RefundInputs(customer=customer, payment_was_revenue=paid)


def get_customer(customer_id: str) -> CustomerTotals | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_key(CUSTOMER_PREFIX + customer_id, TOTALS_SK),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    return _customer_from(raw) if raw else None


def _sku_sales_from(raw: Mapping[str, Any]) -> SkuSales:
    item = tables.from_item(raw)
    return SkuSales(
        sku=item["sku"],
        units_sold=_int(item, "units_sold"),
        last_sale_day=_day_or_none(item.get("last_sale_day")),
    )


def sku_sales_many(skus: Iterable[str]) -> dict[str, SkuSales]:
    keys = [_key(SKU_PREFIX + sku, TOTALS_SK) for sku in sorted(set(skus))]
    found = (_sku_sales_from(raw) for raw in tables.batch_get(keys))
    return {sales.sku: sales for sales in found}


# --- reading a day --------------------------------------------------------------------------------


def _query(
    pk: str,
    *,
    sk_from: str | None = None,
    projection: str | None = None,
    limit: int | None = None,
) -> Iterator[tables.RawItem]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
    }
    if sk_from is not None:
        query["KeyConditionExpression"] += " AND sk >= :from"
        query["ExpressionAttributeValues"][":from"] = {"S": sk_from}
    if projection:
        query["ProjectionExpression"] = projection
    if limit:
        query["Limit"] = limit
    while True:
        response = tables.client().query(**query)
        yield from response.get("Items", [])
        if limit or "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _counters(target: Any, item: Mapping[str, Any], skip: Iterable[str] = ()) -> None:
    """Add the item's numbers to the dataclass ``target``'s integer fields of the same name."""
    for name in (f.name for f in fields(target)):
        if name not in skip and isinstance(getattr(target, name), int):
            setattr(target, name, getattr(target, name) + _int(item, name))


def day_summaries(days: Iterable[date]) -> dict[date, SalesCounters]:
    """The summary counters of each of ``days``, summed over shards (one batch read; days
    with nothing counted have zeros)."""
    wanted = sorted(set(days))
    keys = [
        _key(_day_pk(day, shard), SUMMARY_SK) for day in wanted for shard in range(COUNTER_SHARDS)
    ]
    summaries = {day: SalesCounters() for day in wanted}
    for raw in tables.batch_get(keys):
        item = tables.from_item(raw)
        day = date.fromisoformat(item[tables.PK][len(DAY_PREFIX) :].split("#")[0])
        _counters(summaries[day], item)
    return summaries


def day_activity(day: date) -> DayActivity:
    """Every counter kept for ``day``, summed over its shards (a Query per shard)."""
    activity = DayActivity(day=day)
    for shard in range(COUNTER_SHARDS):
        for raw in _query(_day_pk(day, shard)):
            item = tables.from_item(raw)
            sk = item[tables.SK]
            if sk == SUMMARY_SK:
                _counters(activity.sales, item)
            elif sk.startswith(METHOD_PREFIX):
                method = sk[len(METHOD_PREFIX) :]
                _counters(activity.methods.setdefault(method, MethodCounters()), item)
            elif sk.startswith(HOUR_PREFIX):
                hour = int(sk[len(HOUR_PREFIX) :])
                _counters(activity.hours.setdefault(hour, HourCounters()), item)
            elif sk.startswith(ITEM_PREFIX):
                key = (item["sku"], item["warehouse"])
                counters = activity.items.setdefault(key, ItemCounters(*key))
                counters.category = item.get("category") or counters.category
                _counters(counters, item)
            elif sk.startswith(CUSTOMER_DAY_PREFIX):
                activity.customers[item["customer_id"]] = CustomerDay(
                    customer_id=item["customer_id"],
                    orders=_int(item, "orders"),
                    revenue=_int(item, "revenue"),
                    refunds=_int(item, "refunds"),
                    first_paid_day=_day_or_none(item.get("first_paid_day")),
                    last_order_at=_time_or_none(item.get("last_order_at")),
                )
            elif sk.startswith(LEVEL_DAY_PREFIX):
                key = (item["sku"], item["warehouse"])
                changes = activity.levels.setdefault(key, LevelChanges(*key))
                changes.outs.update(datetime.fromisoformat(t) for t in item.get("outs") or ())
                changes.restocks.update(
                    datetime.fromisoformat(t) for t in item.get("restocks") or ()
                )
    return activity


def class_totals(since: date) -> tuple[dict[str, ClassTotals], dict[date, dict[str, ClassTotals]]]:
    """Customers by class, overall and in cohorts by last paid day from ``since`` on."""
    overall_keys = [_key(CLASSES_PREFIX + str(s), CLASSES_SK) for s in range(COUNTER_SHARDS)]
    overall: dict[str, ClassTotals] = {}
    for raw in tables.batch_get(overall_keys):
        _class_counts_into(overall, tables.from_item(raw))
    cohorts: dict[date, dict[str, ClassTotals]] = {}
    for shard in range(COUNTER_SHARDS):
        for raw in _query(COHORT_PREFIX + str(shard), sk_from=since.isoformat()):
            item = tables.from_item(raw)
            _class_counts_into(cohorts.setdefault(date.fromisoformat(item[tables.SK]), {}), item)
    return overall, cohorts


def _class_counts_into(target: dict[str, ClassTotals], item: Mapping[str, Any]) -> None:
    for name, value in item.items():
        kind, _, rest = name.partition("|")
        if not rest:
            continue
        klass, _, category = rest.partition("|")
        totals = target.setdefault(klass, ClassTotals())
        number = int(value)
        if kind == "n":
            totals.customers += number
        elif kind == "orders":
            totals.orders += number
        elif kind == "net":
            totals.net += number
        elif kind == "days":
            totals.day_ordinals += number
        elif kind == "fav" and category:
            totals.favourites[category] += number


# --- stock snapshots ------------------------------------------------------------------------------


def get_snapshot(day: date) -> StockSnapshot | None:
    """The stock snapshot taken for ``day``, if one was completed."""
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=_key(SNAPSHOTS_PK, day.isoformat()), ConsistentRead=True
    )
    marker = response.get("Item")
    if not marker:
        return None
    skus: dict[str, SkuStock] = {}
    for raw in _query(STOCK_PREFIX + day.isoformat()):
        item = tables.from_item(raw)
        skus[item["sku"]] = SkuStock(
            sku=item["sku"],
            levels=tuple(
                LevelFigures(
                    warehouse=level["warehouse"],
                    on_hand=_int(level, "on_hand"),
                    reserved=_int(level, "reserved"),
                    low_stock_threshold=_int(level, "low_stock_threshold"),
                )
                for level in item.get("levels") or ()
            ),
            units_sold_to_date=_int(item, "units_sold_to_date"),
            last_sale_day=_day_or_none(item.get("last_sale_day")),
        )
    taken_at = datetime.fromisoformat(marker["taken_at"]["S"])
    return StockSnapshot(day=day, taken_at=taken_at, skus=skus)


def earliest_snapshot_day(first: date, last: date) -> date | None:
    """The earliest day from ``first`` to ``last`` with a completed snapshot (one Query)."""
    response = tables.client().query(
        TableName=tables.table_name(),
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":pk": {"S": SNAPSHOTS_PK},
            ":first": {"S": first.isoformat()},
            ":last": {"S": last.isoformat()},
        },
        Limit=1,
    )
    items = response.get("Items", [])
    return date.fromisoformat(items[0][tables.SK]["S"]) if items else None


def save_snapshot(snapshot: StockSnapshot) -> None:
    """Write the snapshot's items, then the marker that says it is complete."""
    day = snapshot.day.isoformat()
    tables.batch_write(
        puts=[
            tables.to_item(
                {
                    tables.PK: STOCK_PREFIX + day,
                    tables.SK: sku.sku,
                    "entity": "analytics_stock",
                    "sku": sku.sku,
                    "units_sold_to_date": sku.units_sold_to_date,
                    "last_sale_day": sku.last_sale_day.isoformat() if sku.last_sale_day else None,
                    "levels": [
                        {
                            "warehouse": level.warehouse,
                            "on_hand": level.on_hand,
                            "reserved": level.reserved,
                            "low_stock_threshold": level.low_stock_threshold,
                        }
                        for level in sku.levels
                    ],
                }
            )
            for sku in snapshot.skus.values()
        ]
    )
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: SNAPSHOTS_PK,
                tables.SK: day,
                "entity": "analytics_snapshot",
                "taken_at": tables.timestamp(snapshot.taken_at),
                "skus": len(snapshot.skus),
            }
        ),
    )
