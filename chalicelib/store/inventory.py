"""Stock levels per (SKU, warehouse) and their ledger, in the main table.

Item shapes (the only place that knows them):

    level    pk=STOCK#<sku>#<warehouse>    sk=LEVEL
             sku, warehouse, on_hand, reserved, available, low_stock_threshold,
             movements (how many ledger entries it has), updated_at
    ledger   pk=LEDGER#<sku>#<warehouse>   sk=<at, ISO 8601 UTC with microseconds>#<movement id>
             sku, warehouse, type, quantity, on_hand_delta, reserved_delta, reference, note,
             reason, actor, at

``available`` is stored as well as derived: a DynamoDB condition cannot do arithmetic, and
the guard every movement writes under is ``available >= :need``. Each level is its own
partition (and its key leaves room for shards, sk ``LEVEL#n``, for flash sales); ledger
entries live in their own partition so they never add load to the hot level item.

Every movement is a *delta* update guarded by the movement's own requirements, never a
write of values read earlier, and its ledger entry is in the same transaction, so
``on_hand`` always equals the sum of its ledger. A level that does not exist yet is
created by the first movement that needs nothing from it (a receipt, an incoming
transfer); one that needs stock fails its guard instead.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.inventory import AdjustmentReason, Movement, MovementType, StockLevel
from chalicelib.store import tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import Tag, UnitOfWork

STOCK_PREFIX = "STOCK#"
LEVEL_SK = "LEVEL"
LEDGER_PREFIX = "LEDGER#"
MAX_LEDGER_PAGE = 100
# A ledger page is re-read when a movement lands while it is being read (bounded).
_LEDGER_READ_ATTEMPTS = 3
_LEDGER_SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00#[0-9a-f]{32}")

StockKey = tuple[str, str]  # (sku, warehouse)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def stock_tag(sku: str, warehouse: str) -> Tag:
    """The unit-of-work tag of a level's guarded update (see ``TransactionCancelled``)."""
    return ("stock", sku, warehouse)


def level_key(sku: str, warehouse: str) -> tables.RawItem:
    """The raw key of a level (for callers batching reads with other items)."""
    return {
        tables.PK: {"S": f"{STOCK_PREFIX}{sku}#{warehouse}"},
        tables.SK: {"S": LEVEL_SK},
    }


def _ledger_pk(sku: str, warehouse: str) -> str:
    return f"{LEDGER_PREFIX}{sku}#{warehouse}"


def is_level_item(raw: tables.RawItem) -> bool:
    pk = raw.get(tables.PK, {}).get("S", "")
    return pk.startswith(STOCK_PREFIX) and raw.get(tables.SK, {}).get("S") == LEVEL_SK


def level_from_item(raw: tables.RawItem) -> StockLevel:
    """A ``StockLevel`` from a raw level item (e.g. one read in a caller's own batch)."""
    item = tables.from_item(raw)
    return StockLevel(
        sku=item["sku"],
        warehouse=item["warehouse"],
        on_hand=int(item.get("on_hand", 0)),
        reserved=int(item.get("reserved", 0)),
        low_stock_threshold=int(item.get("low_stock_threshold", 0)),
    )


def _movement_count(raw: tables.RawItem | None) -> int:
    return int(raw["movements"]["N"]) if raw and "movements" in raw else 0


# --- writing -------------------------------------------------------------------------------


def add_movement(uow: UnitOfWork, movement: Movement, *, new_level: bool = False) -> str:
    """Add the level's guarded delta update and the ledger entry to ``uow``; returns the
    ledger entry's id.

    The update is tagged ``stock_tag(sku, warehouse)``: when the guard fails (not enough
    available or reserved, because someone else moved stock since it was read) the
    transaction is cancelled with that tag's reason ``ConditionalCheckFailed``. With
    ``new_level`` the level must not exist yet (first stocking, run at most once).
    """
    movement_id = uuid.uuid4().hex
    sku, warehouse = movement.sku, movement.warehouse
    at = _iso(movement.at)
    values: dict[str, Any] = {
        ":dh": {"N": str(movement.on_hand_delta)},
        ":dr": {"N": str(movement.reserved_delta)},
        ":da": {"N": str(movement.available_delta)},
        ":zero": {"N": "0"},
        ":one": {"N": "1"},
        ":sku": {"S": sku},
        ":warehouse": {"S": warehouse},
        ":at": {"S": at},
    }
    update = (
        "SET on_hand = if_not_exists(on_hand, :zero) + :dh,"
        " reserved = if_not_exists(reserved, :zero) + :dr,"
        " available = if_not_exists(available, :zero) + :da,"
        " movements = if_not_exists(movements, :zero) + :one,"
        " low_stock_threshold = if_not_exists(low_stock_threshold, :zero),"
        " sku = :sku, warehouse = :warehouse, entity = :entity, updated_at = :at"
    )
    values[":entity"] = {"S": "stock_level"}
    conditions = ["attribute_not_exists(pk)"] if new_level else []
    if movement.requires_available:
        conditions.append("available >= :need_available")
        values[":need_available"] = {"N": str(movement.requires_available)}
    if movement.requires_reserved:
        conditions.append("reserved >= :need_reserved")
        values[":need_reserved"] = {"N": str(movement.requires_reserved)}
    uow.update(
        level_key(sku, warehouse),
        update,
        tag=stock_tag(sku, warehouse),
        # A guard on a missing attribute is false, so a level that needs stock must exist.
        condition=" AND ".join(conditions) or None,
        values=values,
    )
    entry = tables.to_item(
        {
            tables.PK: _ledger_pk(sku, warehouse),
            tables.SK: f"{at}#{movement_id}",
            "entity": "stock_movement",
            "sku": sku,
            "warehouse": warehouse,
            "type": movement.type.value,
            "quantity": movement.quantity,
            "on_hand_delta": movement.on_hand_delta,
            "reserved_delta": movement.reserved_delta,
            "reference": movement.reference,
            "note": movement.note,
            "reason": movement.reason.value if movement.reason else None,
            "actor": movement.actor,
            "at": at,
        }
    )
    uow.put(entry, tag=("ledger", sku, warehouse, movement_id))
    return movement_id


def set_threshold(
    sku: str, warehouse: str, low_stock_threshold: int, *, at: datetime | None = None
) -> StockLevel:
    """Set a level's low-stock threshold (creating an empty level if needed); the new level.

    The threshold is not a movement: it writes no ledger entry and raises no event.
    """
    response = tables.client().update_item(
        TableName=tables.table_name(),
        Key=level_key(sku, warehouse),
        UpdateExpression=(
            "SET low_stock_threshold = :threshold,"
            " on_hand = if_not_exists(on_hand, :zero),"
            " reserved = if_not_exists(reserved, :zero),"
            " available = if_not_exists(available, :zero),"
            " movements = if_not_exists(movements, :zero),"
            " sku = :sku, warehouse = :warehouse, entity = :entity, updated_at = :at"
        ),
        ExpressionAttributeValues={
            ":threshold": {"N": str(low_stock_threshold)},
            ":zero": {"N": "0"},
            ":sku": {"S": sku},
            ":warehouse": {"S": warehouse},
            ":entity": {"S": "stock_level"},
            ":at": {"S": _iso(at or datetime.now(UTC))},
        },
        ReturnValues="ALL_NEW",
    )
    return level_from_item(response["Attributes"])


# --- reading -------------------------------------------------------------------------------


def get_levels_many(
    keys: Iterable[StockKey], *, consistent: bool = False
) -> dict[StockKey, StockLevel]:
    """The level of every (sku, warehouse) asked for; never-stocked ones are empty levels.

    One ``BatchGetItem`` per 100 keys.
    """
    wanted = sorted(set(keys))
    found = tables.batch_get([level_key(sku, wh) for sku, wh in wanted], consistent=consistent)
    levels = {key: StockLevel.empty(*key) for key in wanted}
    for raw in found:
        level = level_from_item(raw)
        levels[(level.sku, level.warehouse)] = level
    return levels


def get_levels(
    sku: str, warehouses: Iterable[str], *, consistent: bool = False
) -> dict[str, StockLevel]:
    """One SKU's level in each of ``warehouses`` (empty where it was never stocked)."""
    levels = get_levels_many(((sku, wh) for wh in warehouses), consistent=consistent)
    return {warehouse: level for (_, warehouse), level in levels.items()}


def existing_levels(keys: Iterable[StockKey], *, consistent: bool = False) -> list[StockLevel]:
    """Only the levels among ``keys`` that exist as items (for audits)."""
    found = tables.batch_get(
        [level_key(sku, wh) for sku, wh in sorted(set(keys))], consistent=consistent
    )
    return sorted(
        (level_from_item(raw) for raw in found), key=lambda level: (level.sku, level.warehouse)
    )


def levels_with_stored_available(
    keys: Iterable[StockKey], *, consistent: bool = True
) -> list[tuple[StockLevel, int]]:
    """Existing levels among ``keys`` with the ``available`` counter as stored (audits check
    it against ``on_hand - reserved``)."""
    found = tables.batch_get(
        [level_key(sku, wh) for sku, wh in sorted(set(keys))], consistent=consistent
    )
    rows = [(level_from_item(raw), int(raw.get("available", {}).get("N", "0"))) for raw in found]
    return sorted(rows, key=lambda row: (row[0].sku, row[0].warehouse))


def _get_level_item(sku: str, warehouse: str) -> tables.RawItem | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=level_key(sku, warehouse), ConsistentRead=True
    )
    return response.get("Item")


def _movement_from_item(raw: tables.RawItem, on_hand: int, reserved: int) -> Movement:
    """A ledger entry, with the resulting counters supplied by the caller's walk."""
    item = tables.from_item(raw)
    reason = item.get("reason")
    return Movement(
        type=MovementType(item["type"]),
        sku=item["sku"],
        warehouse=item["warehouse"],
        quantity=int(item["quantity"]),
        on_hand=on_hand,
        reserved=reserved,
        at=datetime.fromisoformat(item["at"]),
        actor=item.get("actor") or "",
        reference=item.get("reference"),
        note=item.get("note"),
        reason=AdjustmentReason(reason) if reason else None,
    )


def _deltas(raw: tables.RawItem) -> tuple[int, int]:
    return int(raw["on_hand_delta"]["N"]), int(raw["reserved_delta"]["N"])


def ledger_page(
    sku: str, warehouse: str, cursor: str | None = None, limit: int = 50
) -> Page[Movement]:
    """Ledger entries newest first, each with the on_hand/reserved it left behind.

    Entries store deltas; the resulting counters are found by walking back from the
    current level (the newest entry left exactly the current level). The level counts its
    movements, so the walk is only trusted when no movement landed between reading the
    level and reading the page (else it is read again). Movements that commit within the
    same microsecond are ordered by their random ids, so their intermediate counters may
    show in either order; the counters after both are exact.

    The cursor carries the position and the counters reached so far.
    """
    limit = max(1, min(limit, MAX_LEDGER_PAGE))
    scope = scope_of("stock.ledger", sku, warehouse)
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": _ledger_pk(sku, warehouse)}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    if cursor:
        after, on_hand, reserved = _ledger_position(decode_cursor(cursor, scope))
        query["ExclusiveStartKey"] = {
            tables.PK: {"S": _ledger_pk(sku, warehouse)},
            tables.SK: {"S": after},
        }
        raws = _query_up_to(query, limit + 1)
    else:
        on_hand, reserved, raws = _first_page(sku, warehouse, query, limit + 1)

    movements: list[Movement] = []
    for raw in raws[:limit]:
        movements.append(_movement_from_item(raw, on_hand, reserved))
        on_hand_delta, reserved_delta = _deltas(raw)
        on_hand, reserved = on_hand - on_hand_delta, reserved - reserved_delta
    next_cursor = None
    if len(raws) > limit:
        last_sort_key = raws[limit - 1][tables.SK]["S"]
        next_cursor = encode_cursor(
            scope, {"after": last_sort_key, "on_hand": on_hand, "reserved": reserved}
        )
    return Page(items=movements, next_cursor=next_cursor)


def _first_page(
    sku: str, warehouse: str, query: dict[str, Any], count: int
) -> tuple[int, int, list[tables.RawItem]]:
    for _ in range(_LEDGER_READ_ATTEMPTS):
        before = _get_level_item(sku, warehouse)
        raws = _query_up_to(dict(query), count)
        after = _get_level_item(sku, warehouse)
        if _movement_count(before) == _movement_count(after):
            break
    level = level_from_item(after) if after else StockLevel.empty(sku, warehouse)
    return level.on_hand, level.reserved, raws


def _ledger_position(position: dict[str, Any]) -> tuple[str, int, int]:
    after, on_hand, reserved = (position.get(k) for k in ("after", "on_hand", "reserved"))
    if not isinstance(after, str) or not _LEDGER_SORT_KEY.fullmatch(after):
        raise InvalidCursor()
    for number in (on_hand, reserved):
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidCursor()
    return after, on_hand, reserved


def _query_up_to(query: dict[str, Any], count: int) -> list[tables.RawItem]:
    items: list[tables.RawItem] = []
    while len(items) < count:
        response = tables.client().query(**query, Limit=count - len(items))
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items


def iter_ledger(sku: str, warehouse: str) -> Iterator[Movement]:
    """Every ledger entry, oldest first, with counters as the ledger alone says (for audits)."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": _ledger_pk(sku, warehouse)}},
        "ConsistentRead": True,
    }
    on_hand = reserved = 0
    while True:
        response = tables.client().query(**query)
        for raw in response.get("Items", []):
            on_hand_delta, reserved_delta = _deltas(raw)
            on_hand, reserved = on_hand + on_hand_delta, reserved + reserved_delta
            yield _movement_from_item(raw, on_hand, reserved)
        if "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
