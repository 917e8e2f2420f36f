"""Orders and their idempotency records in the main table.

Item shapes (the only place that knows them):

    order        pk=ORDER#<order_id>                      sk=ORDER
                 the whole order as attributes (lines, shipments, history, money as
                 {amount, currency}), status, version
                 gsi1pk=CUSTOMER#<customer_id>   gsi1sk=<created_at>#<order_id>   own orders
                 gsi2pk=ORDERSTATUS#<status>     gsi2sk=<created_at>#<order_id>   staff lists
                 gsi3pk=EXPIRY#<n>               gsi3sk=<expires_at>              only while
                                                                                   pending_payment
    idempotency  pk=IDEMPOTENCY#<customer_id>#<key>       sk=ORDER
                 request_hash, order_id, status_code, response (zlib JSON), created_at,
                 expires_ttl

Times are stored as fixed-width ISO 8601 UTC with microseconds, so string order is time order.

Every status change rewrites the order item conditionally on the status *and* version it
was read with: the status is the state machine's guard, the version stops a change based on
a stale read (say, an expiry extended by a pending payment a moment ago) from landing.
Because the item is rewritten whole, leaving ``pending_payment`` drops the ``EXPIRY#``
index keys with it, so the expiry job only ever Queries orders that are still due.

``EXPIRY#<n>`` spreads the due-orders index over ``EXPIRY_SHARDS`` partitions (n from a
hash of the order id) so a flash sale does not pile every new order onto one index key.

Staff listing without a status filter merges the ``ORDERSTATUS#`` partitions newest first
(one Query per status, each limited to the page size), so no extra index is needed and the
cost of a page stays proportional to its size.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.allocation import Allocation
from chalicelib.domain.catalogue import Location, Product
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.money import Money
from chalicelib.domain.orders import (
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    ShippingAddress,
    StatusChange,
)
from chalicelib.store import catalogue, inventory, limits, tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import UnitOfWork

ORDER_PREFIX = "ORDER#"
ORDER_SK = "ORDER"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
IDEMPOTENCY_SK = "ORDER"
CUSTOMER_PREFIX = "CUSTOMER#"
STATUS_PREFIX = "ORDERSTATUS#"
EXPIRY_PREFIX = "EXPIRY#"
EXPIRY_SHARDS = 8
# Kept at least 24 h as promised to clients; DynamoDB's TTL deletes some time after this.
IDEMPOTENCY_RETENTION = timedelta(hours=48)

# "<created_at>#<order_id>": the sort key of both listings, and what a cursor carries.
_LISTING_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[A-Za-z0-9._-]{1,64}")


def timestamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 (``2026-05-20T08:00:00.000000Z``): sorts as it reads."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def order_key(order_id: str) -> tables.RawItem:
    return {tables.PK: {"S": ORDER_PREFIX + order_id}, tables.SK: {"S": ORDER_SK}}


def idempotency_key(customer_id: str, key: str) -> tables.RawItem:
    return {
        tables.PK: {"S": f"{IDEMPOTENCY_PREFIX}{customer_id}#{key}"},
        tables.SK: {"S": IDEMPOTENCY_SK},
    }


def expiry_shard(order_id: str) -> int:
    return zlib.crc32(order_id.encode()) % EXPIRY_SHARDS


def _listing_sort_key(order: Order) -> str:
    return f"{timestamp(order.created_at)}#{order.order_id}"


# --- order items ---------------------------------------------------------------------------


def _address(address: ShippingAddress) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": address.name,
        "phone": address.phone,
        "country": address.country,
        "region": address.region,
        "city": address.city,
        "line1": address.line1,
        "postcode": address.postcode,
    }
    if address.location is not None:
        # DynamoDB numbers are decimals; str() keeps exactly the digits given.
        body["location"] = {
            "lat": Decimal(str(address.location.lat)),
            "lon": Decimal(str(address.location.lon)),
        }
    return body


def _address_from(value: Mapping[str, Any]) -> ShippingAddress:
    location = value.get("location")
    return ShippingAddress(
        name=value["name"],
        phone=value["phone"],
        country=value["country"],
        region=value["region"],
        city=value["city"],
        line1=value["line1"],
        postcode=value["postcode"],
        location=(
            Location(lat=float(location["lat"]), lon=float(location["lon"])) if location else None
        ),
    )


# The address book keeps addresses in the shape orders keep them.
address_attributes = _address
address_from_attributes = _address_from


def _change(change: StatusChange) -> dict[str, Any]:
    return {
        "from": change.from_status,
        "to": change.to_status,
        "at": timestamp(change.at),
        "actor": change.actor,
        "reason": change.reason,
        "shipment_id": change.shipment_id,
    }


def _change_from(value: Mapping[str, Any]) -> StatusChange:
    return StatusChange(
        from_status=value.get("from"),
        to_status=value["to"],
        at=_parse_time(value["at"]),
        actor=value["actor"],
        reason=value.get("reason"),
        shipment_id=value.get("shipment_id"),
    )


def order_item(order: Order) -> tables.RawItem:
    listing_key = _listing_sort_key(order)
    values: dict[str, Any] = {
        tables.PK: ORDER_PREFIX + order.order_id,
        tables.SK: ORDER_SK,
        "entity": "order",
        "gsi1pk": CUSTOMER_PREFIX + order.customer_id,
        "gsi1sk": listing_key,
        "gsi2pk": STATUS_PREFIX + order.status.value,
        "gsi2sk": listing_key,
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price.as_dict(),
                "allocations": [
                    # The shard a reservation was taken from, on a sharded level.
                    {"warehouse": a.warehouse, "quantity": a.quantity}
                    | ({"shard": a.shard} if a.shard else {})
                    for a in line.allocations
                ],
            }
            for line in order.lines
        ],
        "shipments": [
            {
                "shipment_id": shipment.shipment_id,
                "warehouse": shipment.warehouse,
                "status": shipment.status.value,
                "lines": [{"sku": s.sku, "quantity": s.quantity} for s in shipment.lines],
            }
            for shipment in order.shipments
        ],
        "shipping_address": _address(order.shipping_address),
        "subtotal": order.subtotal.as_dict(),
        "shipping_fee": order.shipping_fee.as_dict(),
        "total": order.total.as_dict(),
        "created_at": timestamp(order.created_at),
        "updated_at": timestamp(order.updated_at),
        "expires_at": timestamp(order.expires_at),
        "history": [_change(change) for change in order.history],
        "note": order.note,
        "version": order.version,
    }
    if order.status is OrderStatus.PENDING_PAYMENT:
        values["gsi3pk"] = f"{EXPIRY_PREFIX}{expiry_shard(order.order_id)}"
        values["gsi3sk"] = timestamp(order.expires_at)
    return tables.to_item(values)


def order_from_item(raw: Mapping[str, Any]) -> Order:
    item = tables.from_item(raw)
    return Order(
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        status=OrderStatus(item["status"]),
        lines=tuple(
            OrderLine(
                sku=line["sku"],
                quantity=int(line["quantity"]),
                unit_price=Money.from_dict(line["unit_price"]),
                allocations=tuple(
                    Allocation(
                        line["sku"], a["warehouse"], int(a["quantity"]), int(a.get("shard", 0))
                    )
                    for a in line["allocations"]
                ),
            )
            for line in item["lines"]
        ),
        shipments=tuple(
            Shipment(
                shipment_id=shipment["shipment_id"],
                warehouse=shipment["warehouse"],
                status=ShipmentStatus(shipment["status"]),
                lines=tuple(ShipmentLine(s["sku"], int(s["quantity"])) for s in shipment["lines"]),
            )
            for shipment in item["shipments"]
        ),
        shipping_address=_address_from(item["shipping_address"]),
        subtotal=Money.from_dict(item["subtotal"]),
        shipping_fee=Money.from_dict(item["shipping_fee"]),
        total=Money.from_dict(item["total"]),
        created_at=_parse_time(item["created_at"]),
        updated_at=_parse_time(item["updated_at"]),
        expires_at=_parse_time(item["expires_at"]),
        history=tuple(_change_from(change) for change in item["history"]),
        note=item.get("note"),
        version=int(item.get("version", 1)),
    )


def held_lines(order: Order) -> list[tuple[str, int]]:
    """What an unpaid order holds, as ``(sku, quantity)``."""
    return [(line.sku, line.quantity) for line in order.lines]


def add_new_order(uow: UnitOfWork, order: Order) -> None:
    uow.put(order_item(order), tag=("order", order.order_id), condition="attribute_not_exists(pk)")


def add_order_change(uow: UnitOfWork, order: Order, *, previous: Order) -> None:
    """Write ``order`` if the stored one is still ``previous`` (same status and version).

    An order leaving ``pending_payment`` (paid, cancelled, expired) stops holding stock
    against its customer's limits in the same transaction.
    """
    if previous.status is OrderStatus.PENDING_PAYMENT and order.status is not previous.status:
        limits.add_release(uow, order.customer_id, held_lines(order))
    uow.put(
        order_item(order),
        tag=("order", order.order_id),
        condition="#status = :expected_status AND #version = :expected_version",
        names={"#status": "status", "#version": "version"},
        values={
            ":expected_status": {"S": previous.status.value},
            ":expected_version": {"N": str(previous.version)},
        },
    )


def get_order(order_id: str, *, consistent: bool = False) -> Order | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=order_key(order_id), ConsistentRead=consistent
    )
    raw = response.get("Item")
    return order_from_item(raw) if raw else None


# --- idempotency records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What the first request with a key was, and what it was answered."""

    customer_id: str
    key: str
    request_hash: str
    order_id: str
    status_code: int
    response: dict[str, Any]
    created_at: datetime
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at


def request_hash(body: Mapping[str, Any]) -> str:
    """A fingerprint of a request body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_item(record: IdempotencyRecord) -> tables.RawItem:
    response = json.dumps(record.response, separators=(",", ":"), ensure_ascii=False)
    return tables.to_item(
        {
            **{k: v["S"] for k, v in idempotency_key(record.customer_id, record.key).items()},
            "entity": "idempotency",
            "customer_id": record.customer_id,
            "idempotency_key": record.key,
            "request_hash": record.request_hash,
            "order_id": record.order_id,
            "status_code": record.status_code,
            # Compressed: the key's item is written in the order's transaction, where every
            # kilobyte costs two write units.
            "response": zlib.compress(response.encode(), 6),
            "created_at": timestamp(record.created_at),
            tables.TTL_ATTRIBUTE: int(record.expires_at.timestamp()),
        }
    )


def idempotency_from_item(raw: Mapping[str, Any]) -> IdempotencyRecord:
    item = tables.from_item(raw)
    response = item["response"]
    data = response.value if hasattr(response, "value") else bytes(response)
    return IdempotencyRecord(
        customer_id=item["customer_id"],
        key=item["idempotency_key"],
        request_hash=item["request_hash"],
        order_id=item["order_id"],
        status_code=int(item["status_code"]),
        response=json.loads(zlib.decompress(data)),
        created_at=_parse_time(item["created_at"]),
        expires_at=datetime.fromtimestamp(int(item[tables.TTL_ATTRIBUTE]), UTC),
    )


def add_idempotency_record(uow: UnitOfWork, record: IdempotencyRecord) -> None:
    """Claim the key in ``uow``; the transaction is cancelled if a live claim exists.

    A record past its retention that TTL has not deleted yet may be replaced.
    """
    uow.put(
        idempotency_item(record),
        tag=("idempotency", record.customer_id, record.key),
        condition="attribute_not_exists(pk) OR #ttl < :now",
        names={"#ttl": tables.TTL_ATTRIBUTE},
        values={":now": {"N": str(int(record.created_at.timestamp()))}},
    )


def get_idempotency_record(customer_id: str, key: str) -> IdempotencyRecord | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=idempotency_key(customer_id, key), ConsistentRead=True
    )
    raw = response.get("Item")
    return idempotency_from_item(raw) if raw else None


# --- listings ------------------------------------------------------------------------------


def _before_position(cursor: str | None, scope: str) -> str | None:
    if not cursor:
        return None
    before = decode_cursor(cursor, scope).get("before")
    if not isinstance(before, str) or not _LISTING_POSITION.fullmatch(before):
        raise InvalidCursor()
    return before


def _page(orders: list[Order], limit: int, scope: str) -> Page[Order]:
    page, more = orders[:limit], len(orders) > limit
    next_cursor = encode_cursor(scope, {"before": _listing_sort_key(page[-1])}) if more else None
    return Page(items=page, next_cursor=next_cursor)


def _query_newest_first(
    index: str,
    partition: str,
    *,
    wanted: int,
    before: str | None,
    status: str | None = None,
) -> list[Order]:
    """Up to ``wanted`` orders of one index partition, newest first, older than ``before``."""
    pk_name, sk_name = tables.GSI_KEYS[index]
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": index,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": pk_name},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "ScanIndexForward": False,
    }
    if before is not None:
        query["KeyConditionExpression"] += " AND #sk < :before"
        query["ExpressionAttributeNames"]["#sk"] = sk_name
        query["ExpressionAttributeValues"][":before"] = {"S": before}
    if status is not None:
        # Only within one customer's orders: the filter reads no more than they have.
        query["FilterExpression"] = "#status = :status"
        query["ExpressionAttributeNames"]["#status"] = "status"
        query["ExpressionAttributeValues"][":status"] = {"S": status}
    return [order_from_item(raw) for raw in tables.query_up_to(query, wanted)]


def customer_orders_page(
    customer_id: str, *, status: str | None, limit: int, cursor: str | None
) -> Page[Order]:
    """One customer's orders, newest first, optionally of one status."""
    scope = scope_of("orders.customer", customer_id, status)
    before = _before_position(cursor, scope)
    orders = _query_newest_first(
        tables.GSI1, CUSTOMER_PREFIX + customer_id, wanted=limit + 1, before=before, status=status
    )
    return _page(orders, limit, scope)


def orders_by_status_page(
    statuses: Sequence[str], *, limit: int, cursor: str | None
) -> Page[Order]:
    """Orders in any of ``statuses``, newest first: a merge of their status partitions."""
    scope = scope_of("orders.status", sorted(statuses))
    before = _before_position(cursor, scope)
    merged: list[Order] = []
    for status in statuses:
        merged.extend(
            _query_newest_first(
                tables.GSI2, STATUS_PREFIX + status, wanted=limit + 1, before=before
            )
        )
    # An index copy can lag a status change for a moment: never list one order twice.
    unique = {order.order_id: order for order in merged}
    ordered = sorted(unique.values(), key=_listing_sort_key, reverse=True)
    return _page(ordered[: limit + 1], limit, scope)


def iter_by_status(status: OrderStatus | str) -> Iterator[Order]:
    """Every order in one status, newest first (for audits and batch jobs)."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": tables.GSI2,
        "KeyConditionExpression": "gsi2pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": STATUS_PREFIX + OrderStatus(status).value}},
        "ScanIndexForward": False,
    }
    while True:
        response = tables.client().query(**query)
        yield from (order_from_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def orders_due_for_expiry(now: datetime, *, limit_per_shard: int) -> list[Order]:
    """Unpaid orders whose hold ended at or before ``now``, oldest first in each shard.

    The index is eventually consistent: an order may still be listed just after it left
    ``pending_payment``. Callers write conditionally on status and version, so such an
    order is skipped, never expired twice.
    """
    due: list[Order] = []
    for shard in range(EXPIRY_SHARDS):
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": tables.GSI3,
            "KeyConditionExpression": "gsi3pk = :shard AND gsi3sk <= :now",
            "ExpressionAttributeValues": {
                ":shard": {"S": f"{EXPIRY_PREFIX}{shard}"},
                ":now": {"S": timestamp(now)},
            },
        }
        due.extend(order_from_item(raw) for raw in tables.query_up_to(query, limit_per_shard))
    return due


@dataclass(frozen=True, slots=True)
class PlacementSnapshot:
    """Everything placing an order reads, fetched together."""

    products: dict[str, Product]  # by SKU; missing SKUs do not exist
    levels: dict[tuple[str, str], StockLevel]  # by (sku, warehouse); never stocked = empty
    idempotency: IdempotencyRecord | None


def read_for_placement(
    *,
    customer_id: str,
    key: str | None,
    skus: Sequence[str],
    warehouses: Sequence[str],
) -> PlacementSnapshot:
    """Prices, stock levels and the idempotency key in one ``BatchGetItem`` per 100 keys.

    Strongly consistent, so a plan is made from the freshest stock and a replayed key is
    always seen.
    """
    stock_keys = [(sku, warehouse) for sku in skus for warehouse in warehouses]
    keys = [catalogue.product_key(sku) for sku in skus]
    keys += [inventory.level_key(sku, warehouse) for sku, warehouse in stock_keys]
    if key is not None:
        keys.append(idempotency_key(customer_id, key))
    products: dict[str, Product] = {}
    levels = {pair: StockLevel.empty(*pair) for pair in stock_keys}
    record: IdempotencyRecord | None = None
    level_items: list[tables.RawItem] = []
    for raw in tables.batch_get(keys, consistent=True):
        pk = raw[tables.PK]["S"]
        if inventory.is_level_item(raw):
            level_items.append(raw)
        elif pk.startswith(catalogue.PRODUCT_PREFIX):
            product = catalogue.product_from_item(raw)
            products[product.sku] = product
        elif pk.startswith(IDEMPOTENCY_PREFIX):
            record = idempotency_from_item(raw)
    for level in inventory.levels_from_items(level_items, consistent=True):
        levels[(level.sku, level.warehouse)] = level
    return PlacementSnapshot(products=products, levels=levels, idempotency=record)
