"""The shards of a sharded stock level (flash sales): changing how many there are, moving
stock between them, merging them back, the facts about the whole level that no single
shard's transaction can keep (its low-stock index key and ``sold_out`` flag), and reading
all its shards as one snapshot.

The level and shard items, their keys and how a level's shards are read and summed are
described in ``store.inventory``, which also writes movements to shards. Every change here
is guarded on the level's ``shard_slots`` being what it was read with, so a movement or a
reader never meets a layout it was not planned for.
"""

from __future__ import annotations

import time as clock
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.inventory import Movement, MovementType, StockLevel
from chalicelib.store import inventory, tables
from chalicelib.store.unit_of_work import UnitOfWork

SOLD_OUT = "sold_out"  # on a sharded level item, exactly while its summed available <= 0
_EXACT_READ_ATTEMPTS = 5


def set_shard_count(level: StockLevel, shards: int, *, at: datetime) -> bool:
    """Make ``shards`` shards of ``level`` take stock and reservations (shard slots grow to
    cover them, never shrink here); False when the level's sharding changed since it was
    read. Movements planned from the old layout fail their guard and are planned again."""
    slots = max(len(level.shards), shards) if level.is_sharded else max(shards, 1)
    values: dict[str, Any] = {
        ":shards": {"N": str(shards)},
        ":slots": {"N": str(slots)},
        ":at": {"S": tables.timestamp(at)},
    }
    update = "SET shard_count = :shards, shard_slots = :slots, updated_at = :at"
    if level.is_sharded:
        values[":old_slots"] = {"N": str(len(level.shards))}
        attempts = [(update, "shard_slots = :old_slots", {})]
    else:
        # Flagged sold out as it is now (tried both ways: no read), so that the stream
        # consumer tells analytics only about changes from here on.
        plain = "attribute_exists(pk) AND attribute_not_exists(shard_slots) AND "
        attempts = [
            (f"{update}, {SOLD_OUT} = :yes", plain + "available <= :zero", {":yes": True}),
            (update, plain + "available > :zero", {}),
        ]
    for expression, condition, extra in attempts:
        extra_values = {name: {"BOOL": flag} for name, flag in extra.items()}
        if not level.is_sharded:
            extra_values[":zero"] = {"N": "0"}
        try:
            tables.client().update_item(
                TableName=tables.table_name(),
                Key=inventory.level_key(level.sku, level.warehouse),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues={**values, **extra_values},
            )
        except Exception as exc:
            if tables.error_code(exc) != "ConditionalCheckFailedException":
                raise
            continue
        return True
    return False


def add_shard_move(
    uow: UnitOfWork,
    level: StockLevel,
    source: int,
    target: int,
    units: int,
    *,
    reference: str,
    actor: str,
    at: datetime,
) -> None:
    """Move ``units`` of available stock from shard ``source`` to shard ``target`` of a
    sharded level, each side with its ledger entry (the level's counters do not change)."""
    common = {
        "sku": level.sku,
        "warehouse": level.warehouse,
        "quantity": units,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "at": at,
        "actor": actor,
        "reference": reference,
    }
    outgoing = Movement(type=MovementType.REBALANCED_OUT, **common)
    incoming = Movement(type=MovementType.REBALANCED_IN, **common)
    inventory.add_shard_movement(uow, outgoing, level, source)
    inventory.add_shard_movement(uow, incoming, level, target)
    if 0 not in (source, target):
        # Neither side is the level item: check the shards are still read where they land.
        uow.condition_check(
            inventory.level_key(level.sku, level.warehouse),
            "shard_slots = :slots",
            tag=("stock-layout", level.sku, level.warehouse),
            values={":slots": {"N": str(len(level.shards))}},
        )


def add_unshard(uow: UnitOfWork, level: StockLevel) -> None:
    """Turn a sharded level with one active shard whose other shards are empty back into a
    plain level: the empty shard items go (each only if still empty), the level item drops
    its shard attributes and gets the low-stock index key its counters call for, guarded on
    those counters and its slots being as read."""
    sku, warehouse = level.sku, level.warehouse
    for index in range(1, len(level.shards)):
        uow.delete(
            inventory.shard_key(sku, warehouse, index),
            tag=("stock", sku, warehouse, index),
            condition="attribute_not_exists(pk) OR (on_hand = :zero AND reserved = :zero)",
            values={":zero": {"N": "0"}},
        )
    values: dict[str, Any] = {
        ":slots": {"N": str(len(level.shards))},
        ":one": {"N": "1"},
        ":on_hand": {"N": str(level.on_hand)},
        ":reserved": {"N": str(level.reserved)},
    }
    if level.is_low:
        values.update(inventory.low_stock_index_values(sku, warehouse))
        update = (
            f"REMOVE shard_count, shard_slots, {SOLD_OUT}"
            f" SET {inventory.LOW_PK} = :low_pk, {inventory.LOW_SK} = :low_sk"
        )
    else:
        update = (
            f"REMOVE shard_count, shard_slots, {SOLD_OUT}, {inventory.LOW_PK}, {inventory.LOW_SK}"
        )
    uow.update(
        inventory.level_key(sku, warehouse),
        update,
        tag=inventory.stock_tag(sku, warehouse),
        condition="shard_slots = :slots AND shard_count = :one"
        " AND on_hand = :on_hand AND reserved = :reserved",
        values=values,
    )


def sync_low_index(sku: str, warehouse: str) -> tuple[StockLevel, bool | None, bool | None] | None:
    """For a sharded level: put the level item in the low-stock index, or take it out, and
    flag it ``sold_out`` or not, as the summed shards say. Returns the level, then True when
    this call found it newly low (False: newly recovered, None: the index already agreed),
    then the same for sold out; None when the level is missing or not sharded. Each write
    is conditional on the key or flag as read, so of two concurrent callers only one sees
    each crossing."""
    raw = inventory.get_level_item(sku, warehouse)
    if raw is None or inventory.shard_slots(raw) <= 1:
        return None
    level = inventory.levels_from_items([raw], consistent=True)[0]
    slots = inventory.shard_slots(raw)
    low = None
    if level.is_low != (inventory.LOW_PK in raw):
        index_values = inventory.low_stock_index_values(sku, warehouse) if level.is_low else {}
        set_key = f"SET {inventory.LOW_PK} = :low_pk, {inventory.LOW_SK} = :low_sk"
        update = set_key if level.is_low else f"REMOVE {inventory.LOW_PK}, {inventory.LOW_SK}"
        if _flip(sku, warehouse, slots, inventory.LOW_PK, level.is_low, update, index_values):
            low = level.is_low
    sold_out = level.available <= 0
    out = None
    if sold_out != (SOLD_OUT in raw):
        update = f"SET {SOLD_OUT} = :yes" if sold_out else f"REMOVE {SOLD_OUT}"
        yes = {":yes": {"BOOL": True}} if sold_out else {}
        if _flip(sku, warehouse, slots, SOLD_OUT, sold_out, update, yes):
            out = sold_out
    return level, low, out


def _flip(
    sku: str,
    warehouse: str,
    slots: int,
    attribute: str,
    present: bool,
    update: str,
    values: dict[str, Any],
) -> bool:
    """Set or remove ``attribute`` of a sharded level item if it is still the other way;
    False when someone else did (or the level's layout changed)."""
    was = "attribute_not_exists" if present else "attribute_exists"
    try:
        tables.client().update_item(
            TableName=tables.table_name(),
            Key=inventory.level_key(sku, warehouse),
            UpdateExpression=update,
            ConditionExpression=f"shard_slots = :slots AND {was}({attribute})",
            ExpressionAttributeValues={":slots": {"N": str(slots)}, **values},
        )
    except Exception as exc:
        if tables.error_code(exc) != "ConditionalCheckFailedException":
            raise
        return False
    return True


def sharded_level_changed(record: Mapping[str, Any]) -> inventory.StockKey | None:
    """The (sku, warehouse) of a sharded level whose ``available`` a table stream record
    changed (a shard, or the level item of a sharded level); None for any other record."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    new, old = change.get("NewImage") or {}, change.get("OldImage") or {}
    if not new:
        return None
    if not inventory.is_shard_item(keys) and not (
        inventory.is_level_item(keys) and ("shard_slots" in new or "shard_slots" in old)
    ):
        return None
    watched = ("available", "low_stock_threshold", inventory.LOW_PK)
    if all(new.get(name) == old.get(name) for name in watched):
        return None
    return new["sku"]["S"], new["warehouse"]["S"]


def exact_level(sku: str, warehouse: str) -> StockLevel | None:
    """A level as one snapshot: a sharded level's items are read in one TransactGetItems, so
    no move between shards is seen half done (a batch read may catch one in flight). For
    the last word before telling a buyer the stock is gone. None when it does not exist."""
    for attempt in range(_EXACT_READ_ATTEMPTS):
        raw = inventory.get_level_item(sku, warehouse)
        if raw is None:
            return None
        slots = inventory.shard_slots(raw)
        if slots <= 1:
            return inventory.level_from_item(raw)
        gets = [
            {
                "Get": {
                    "TableName": tables.table_name(),
                    "Key": inventory.shard_key(sku, warehouse, i),
                }
            }
            for i in range(slots)
        ]
        try:
            response = tables.client().transact_get_items(TransactItems=gets)
        except Exception as exc:
            if tables.error_code(exc) != "TransactionCanceledException":
                raise
            clock.sleep(0.01 * 2**attempt)  # a write in flight: read again
            continue
        items = [entry.get("Item") for entry in response.get("Responses", [])]
        first = items[0] if items else None
        if first is None or inventory.shard_slots(first) != slots:
            continue  # the layout changed between the two reads
        return inventory.assemble_level(first, [item for item in items[1:] if item])[0]
    return inventory.levels_from_items([raw], consistent=True)[0] if raw else None
