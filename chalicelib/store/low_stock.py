"""Low-stock thresholds of stock levels, and finding the levels at or under them.

A level's threshold is its own once ops set it (``threshold_source``), else it follows its
product's default. Either way the threshold is written together with the level's sparse
low-stock index key, under a guard on which side of it ``available`` is, so the index
never disagrees with the level; the low levels are then read from that index, a Query
per page of each of its partitions, never a Scan. The level item and the index key are
described in ``store.inventory``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.errors import Conflict
from chalicelib.domain.inventory import StockLevel
from chalicelib.store import inventory, tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of

OWN_THRESHOLD = "level"
# A threshold write re-tries when a movement moves the level across it meanwhile (bounded).
_THRESHOLD_WRITE_ATTEMPTS = 5
_LOW_POSITION = re.compile(r"[^#]+#[^#]+")


def set_threshold(
    sku: str, warehouse: str, low_stock_threshold: int, *, at: datetime | None = None
) -> StockLevel:
    """Set a level's own low-stock threshold (creating an empty level if needed); the new
    level. From then on the product's default no longer applies to it.

    The threshold is not a movement: it writes no ledger entry and raises no event (a
    level it makes low is in the low-stock index, where the scheduled check finds it).
    """
    raw = _write_threshold(sku, warehouse, low_stock_threshold, own=True, at=at)
    assert raw is not None  # an own threshold is always written
    return inventory.levels_from_items([raw], consistent=True)[0]


def follow_default_threshold(
    sku: str, warehouse: str, low_stock_threshold: int, *, at: datetime | None = None
) -> StockLevel | None:
    """Give an existing level its product's default threshold, unless ops set one of its
    own; the new level, or None when the level does not exist or has its own."""
    raw = _write_threshold(sku, warehouse, low_stock_threshold, own=False, at=at)
    return None if raw is None else inventory.levels_from_items([raw], consistent=True)[0]


def _write_threshold(
    sku: str, warehouse: str, threshold: int, *, own: bool, at: datetime | None
) -> tables.RawItem | None:
    """Write ``threshold`` and the low-stock index key that goes with it, conditionally on
    which side of the threshold ``available`` is (tried as low, then as not low: no read).
    The item as written, or None when ``own`` is False and the level is missing or has a
    threshold of its own."""
    values: dict[str, Any] = {
        ":threshold": {"N": str(threshold)},
        ":zero": {"N": "0"},
        ":sku": {"S": sku},
        ":warehouse": {"S": warehouse},
        ":entity": {"S": "stock_level"},
        ":at": {"S": tables.timestamp(at or datetime.now(UTC))},
        ":own": {"S": OWN_THRESHOLD},
    }
    update = (
        "SET low_stock_threshold = :threshold,"
        " on_hand = if_not_exists(on_hand, :zero),"
        " reserved = if_not_exists(reserved, :zero),"
        " available = if_not_exists(available, :zero),"
        " movements = if_not_exists(movements, :zero),"
        " sku = :sku, warehouse = :warehouse, entity = :entity, updated_at = :at"
    )
    if own:
        update += ", threshold_source = :own"
        # A level that does not exist yet is created empty: 0 available is low.
        low_side = "(attribute_not_exists(available) OR available <= :threshold)"
        precondition = ""
    else:
        low_side = "available <= :threshold"
        precondition = (
            "attribute_exists(pk) AND"
            " (attribute_not_exists(threshold_source) OR threshold_source <> :own) AND "
        )
    attempts = [
        (
            update + inventory.SET_LOW_KEY,
            low_side,
            inventory.low_stock_index_values(sku, warehouse),
        ),
        (update + inventory.REMOVE_LOW_KEY, "available > :threshold", {}),
    ]
    for _ in range(_THRESHOLD_WRITE_ATTEMPTS):
        for expression, side, index_values in attempts:
            try:
                response = tables.client().update_item(
                    TableName=tables.table_name(),
                    Key=inventory.level_key(sku, warehouse),
                    UpdateExpression=expression,
                    ConditionExpression=precondition + side,
                    ExpressionAttributeValues={**values, **index_values},
                    ReturnValues="ALL_NEW",
                )
            except Exception as exc:
                if tables.error_code(exc) != "ConditionalCheckFailedException":
                    raise
                if not own and not _follows_default(inventory.get_level_item(sku, warehouse)):
                    return None
                continue  # available is on the other side (or just moved): try that
            return dict(response["Attributes"])
    raise Conflict(f"Stock of {sku} in {warehouse} is changing too quickly; try again.")


def _follows_default(raw: tables.RawItem | None) -> bool:
    return raw is not None and raw.get("threshold_source", {}).get("S") != OWN_THRESHOLD


def levels_following_default(sku: str, warehouses: Iterable[str]) -> list[StockLevel]:
    """The existing levels of ``sku`` among ``warehouses`` that have no threshold of their
    own, so follow the product's default (one batch read)."""
    found = tables.batch_get(
        [inventory.level_key(sku, wh) for wh in sorted(set(warehouses))], consistent=True
    )
    levels = inventory.levels_from_items(
        [raw for raw in found if _follows_default(raw)], consistent=True
    )
    return sorted(levels, key=lambda level: level.warehouse)


def low_levels(*, page_size: int = 100) -> Iterator[list[StockLevel]]:
    """Every level at or under its threshold, a page at a time, from the low-stock index:
    one Query per page of each shard (the index is eventually consistent: re-read a level
    before acting on it)."""
    for shard in range(inventory.LOW_STOCK_SHARDS):
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": inventory.LOW_STOCK_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": inventory.LOW_PK},
            "ExpressionAttributeValues": {":pk": {"S": f"{inventory.LOW_STOCK_PREFIX}{shard}"}},
            "Limit": page_size,
        }
        while True:
            response = tables.client().query(**query)
            page = inventory.levels_from_items(response.get("Items", []), consistent=False)
            if page:
                yield page
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def low_levels_page(*, warehouse: str | None, limit: int, cursor: str | None) -> Page[StockLevel]:
    """Levels at or under their threshold (in one warehouse, or all), ``limit`` at a time:
    the low-stock index's shards one after another, a Query per page of each."""
    scope = scope_of("low_levels", warehouse)
    shard, after = 0, None
    if cursor:
        position = decode_cursor(cursor, scope)
        shard, after = position.get("shard"), position.get("after")
        if not isinstance(shard, int) or not 0 <= shard < inventory.LOW_STOCK_SHARDS:
            raise InvalidCursor()
        if not isinstance(after, str) or not _LOW_POSITION.fullmatch(after):
            raise InvalidCursor()
    found: list[tuple[int, StockLevel]] = []
    while shard < inventory.LOW_STOCK_SHARDS and len(found) <= limit:
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": inventory.LOW_STOCK_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": inventory.LOW_PK},
            "ExpressionAttributeValues": {":pk": {"S": f"{inventory.LOW_STOCK_PREFIX}{shard}"}},
            "Limit": limit + 1,
        }
        if warehouse is not None:
            query["FilterExpression"] = "warehouse = :warehouse"
            query["ExpressionAttributeValues"][":warehouse"] = {"S": warehouse}
        if after is not None:
            sku, warehouse_id = after.split("#")
            query["ExclusiveStartKey"] = {
                **inventory.level_key(sku, warehouse_id),
                inventory.LOW_PK: {"S": f"{inventory.LOW_STOCK_PREFIX}{shard}"},
                inventory.LOW_SK: {"S": after},
            }
        while len(found) <= limit:
            response = tables.client().query(**query)
            found.extend(
                (shard, level) for level in inventory.levels_from_items(response.get("Items", []))
            )
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        shard, after = shard + 1, None
    page, more = found[:limit], len(found) > limit
    next_cursor = None
    if more:
        last_shard, last = page[-1]
        next_cursor = encode_cursor(
            scope, {"shard": last_shard, "after": f"{last.sku}#{last.warehouse}"}
        )
    return Page(items=[level for _, level in page], next_cursor=next_cursor)
