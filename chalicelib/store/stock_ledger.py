"""Reading a stock level's ledger back: a page at a time newest first, each entry with the
counters it left behind, or all of it oldest first for audits.

The ledger entries (and the level and shard items whose counters they add up to) are
described in ``store.inventory``, which writes each entry in its movement's transaction.
A sharded level's ledger is its shards' ledgers merged in time order.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from chalicelib.domain.inventory import AdjustmentReason, Movement, MovementType, StockLevel
from chalicelib.domain.paging import MAX_LEDGER_PAGE
from chalicelib.store import inventory, tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of

# A ledger page is re-read when a movement lands while it is being read (bounded).
_LEDGER_READ_ATTEMPTS = 3
_LEDGER_SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00#[0-9a-f]{32}")


def _movement_count(raw: tables.RawItem | None) -> int:
    return int(raw["movements"]["N"]) if raw and "movements" in raw else 0


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
        "ExpressionAttributeValues": {":pk": {"S": inventory.ledger_pk(sku, warehouse)}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    slots = inventory.shard_slots(inventory.get_level_item(sku, warehouse))
    if slots > 1:
        on_hand, reserved, raws = _sharded_ledger_head(
            sku, warehouse, slots, cursor and decode_cursor(cursor, scope), limit + 1
        )
    elif cursor:
        after, on_hand, reserved = _ledger_position(decode_cursor(cursor, scope))
        query["ExclusiveStartKey"] = {
            tables.PK: {"S": inventory.ledger_pk(sku, warehouse)},
            tables.SK: {"S": after},
        }
        raws = tables.query_up_to(query, limit + 1)
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


def _sharded_ledger_head(
    sku: str, warehouse: str, slots: int, position: dict[str, Any] | None, count: int
) -> tuple[int, int, list[tables.RawItem]]:
    """A sharded level's ledger, newest first: the shards' ledgers merged (each read up to
    ``count`` entries before the cursor's position), with the counters to walk back from —
    the cursor's, or the summed shards' when no movement landed while the page was read."""

    def newest(after: str | None) -> list[tables.RawItem]:
        merged: list[tables.RawItem] = []
        for index in range(slots):
            query: dict[str, Any] = {
                "TableName": tables.table_name(),
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {
                    ":pk": {"S": inventory.ledger_pk(sku, warehouse, index)}
                },
                "ScanIndexForward": False,
                "ConsistentRead": True,
            }
            if after is not None:
                query["KeyConditionExpression"] += " AND sk < :after"
                query["ExpressionAttributeValues"][":after"] = {"S": after}
            merged.extend(tables.query_up_to(query, count))
        merged.sort(key=lambda raw: raw[tables.SK]["S"], reverse=True)
        return merged[:count]

    if position is not None:
        after, on_hand, reserved = _ledger_position(position)
        return on_hand, reserved, newest(after)
    keys = [inventory.shard_key(sku, warehouse, index) for index in range(slots)]
    for _ in range(_LEDGER_READ_ATTEMPTS):
        before = tables.batch_get(keys, consistent=True)
        raws = newest(None)
        current = tables.batch_get(keys, consistent=True)
        if sum(map(_movement_count, before)) == sum(map(_movement_count, current)):
            break
    on_hand = sum(int(raw.get("on_hand", {}).get("N", "0")) for raw in current)
    reserved = sum(int(raw.get("reserved", {}).get("N", "0")) for raw in current)
    return on_hand, reserved, raws


def _first_page(
    sku: str, warehouse: str, query: dict[str, Any], count: int
) -> tuple[int, int, list[tables.RawItem]]:
    for _ in range(_LEDGER_READ_ATTEMPTS):
        before = inventory.get_level_item(sku, warehouse)
        raws = tables.query_up_to(dict(query), count)
        after = inventory.get_level_item(sku, warehouse)
        if _movement_count(before) == _movement_count(after):
            break
    level = inventory.level_from_item(after) if after else StockLevel.empty(sku, warehouse)
    return level.on_hand, level.reserved, raws


def _ledger_position(position: dict[str, Any]) -> tuple[str, int, int]:
    after, on_hand, reserved = (position.get(k) for k in ("after", "on_hand", "reserved"))
    if not isinstance(after, str) or not _LEDGER_SORT_KEY.fullmatch(after):
        raise InvalidCursor()
    for number in (on_hand, reserved):
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidCursor()
    return after, on_hand, reserved


def iter_ledger(sku: str, warehouse: str) -> Iterator[Movement]:
    """Every ledger entry, oldest first, with counters as the ledger alone says (for audits).

    A sharded level's entries are its shards' ledgers merged in time order."""
    slots = inventory.shard_slots(inventory.get_level_item(sku, warehouse))
    entries = heapq.merge(
        *(_ledger_items(sku, warehouse, index) for index in range(slots)),
        key=lambda raw: raw[tables.SK]["S"],
    )
    on_hand = reserved = 0
    for raw in entries:
        on_hand_delta, reserved_delta = _deltas(raw)
        on_hand, reserved = on_hand + on_hand_delta, reserved + reserved_delta
        yield _movement_from_item(raw, on_hand, reserved)


def _ledger_items(sku: str, warehouse: str, shard: int) -> Iterator[tables.RawItem]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": inventory.ledger_pk(sku, warehouse, shard)}},
        "ConsistentRead": True,
    }
    while True:
        response = tables.client().query(**query)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
