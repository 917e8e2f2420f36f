"""Stock levels per (SKU, warehouse) and their ledger, in the main table.

This module reads levels and writes their movements and ledger entries. The stock modules
beside it use the item shapes listed here: ``store.stock_shards`` changes a level's shards
and keeps a sharded level's low-stock key and ``sold_out`` flag, ``store.stock_ledger``
reads the ledger back, ``store.low_stock`` writes thresholds and finds the low levels.
(Shipped units per day are their own items: ``store.units_shipped``.)

Item shapes (the only place that knows them):

    level    pk=STOCK#<sku>#<warehouse>    sk=LEVEL
             sku, warehouse, on_hand, reserved, available, low_stock_threshold,
             threshold_source ("level" once ops set the level's own; else it follows the
             product's default), movements (how many ledger entries it has), updated_at
             gsi3pk=LOWSTOCK#<n>   gsi3sk=<sku>#<warehouse>      only while available <=
                                                                 low_stock_threshold
    ledger   pk=LEDGER#<sku>#<warehouse>   sk=<at, ISO 8601 UTC with microseconds>#<movement id>
             sku, warehouse, type, quantity, on_hand_delta, reserved_delta, reference, note,
             reason, actor, at

``available`` is stored as well as derived: a DynamoDB condition cannot do arithmetic, and
the guard every movement writes under is ``available >= :need``. Each level is its own
partition; ledger entries live in their own partition so they never add load to the hot
level item.

Shards (flash sales). One partition takes about 1,000 write units a second, so a level
can be split into shards, each its own partition:

    shard    pk=STOCK#<sku>#<warehouse>#<n>   sk=SHARD       (n = 1 .. 31)
             sku, warehouse, shard_index, on_hand, reserved, available, movements, updated_at
    ledger   pk=LEDGER#<sku>#<warehouse>#<n>  sk=<at>#<movement id>   (shard n's entries,
             with shard_index = n)

Shard 0 is the level item itself, which then also carries ``shard_count`` (how many take
stock and reservations) and ``shard_slots`` (how many items may hold its stock: more than
``shard_count`` while a merge waits for reservations on the dropped shards to end), and
``sold_out`` exactly while the summed ``available`` is 0 or less. Reading a
level reads the level item and, when ``shard_slots`` > 1, its other shards in one batch,
and sums them; an unsharded level has neither attribute and is read and written exactly as
before. Each shard's counters equal the sum of its own ledger, so the level's equal the
sum of its shards' ledgers. Movements on shard 0 of a sharded level are guarded on
``shard_slots`` being what they were planned with; movements planned on an unsharded level
are guarded on it still having none. Sharded levels keep no low-stock guard in their
movements (the total is on no single item): ``stock_shards.sync_low_index`` sets the index
key from the summed shards after the write.

Every movement is a *delta* update guarded by the movement's own requirements, never a
write of values read earlier, and its ledger entry is in the same transaction, so
``on_hand`` always equals the sum of its ledger. A level that does not exist yet is
created by the first movement that needs nothing from it (a receipt, an incoming
transfer); one that needs stock fails its guard instead.

Low levels are findable without a Scan: the level item carries the sparse ``LOWSTOCK#<n>``
index key exactly while ``available <= low_stock_threshold``, spread over
``LOW_STOCK_SHARDS`` partitions (n from a hash of sku and warehouse) like orders' ``EXPIRY#``
index. A movement that changes ``available`` sets or removes the key as its plan says, and
writes under a guard that the threshold, and which side of it ``available`` is on before
and after, are what the plan was made from. A concurrent movement that moved the level
across the threshold makes the guard fail and the movement is planned again, so the key
never disagrees with the level, and each crossing is seen by exactly one movement. (A
movement added without the level it was planned from writes neither key nor guard.)
Threshold changes (``store.low_stock``) write the key under the same kind of guard.
"""

from __future__ import annotations

import random
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from chalicelib.domain import inventory as rules
from chalicelib.domain.inventory import Movement, MovementType, Shard, ShardsTooThin, StockLevel
from chalicelib.store import tables
from chalicelib.store.unit_of_work import Tag, UnitOfWork

STOCK_PREFIX = "STOCK#"
LEVEL_SK = "LEVEL"
SHARD_SK = "SHARD"
LEDGER_PREFIX = "LEDGER#"
LOW_STOCK_PREFIX = "LOWSTOCK#"
LOW_STOCK_SHARDS = 8
LOW_STOCK_INDEX = tables.GSI3

StockKey = tuple[str, str]  # (sku, warehouse)


def stock_tag(sku: str, warehouse: str) -> Tag:
    """The unit-of-work tag of a level's guarded update (see ``TransactionCancelled``)."""
    return ("stock", sku, warehouse)


def level_key(sku: str, warehouse: str) -> tables.RawItem:
    """The raw key of a level (for callers batching reads with other items)."""
    return {
        tables.PK: {"S": f"{STOCK_PREFIX}{sku}#{warehouse}"},
        tables.SK: {"S": LEVEL_SK},
    }


def shard_key(sku: str, warehouse: str, index: int) -> tables.RawItem:
    """The raw key of a level's shard ``index`` (shard 0 is the level item)."""
    if index == 0:
        return level_key(sku, warehouse)
    return {
        tables.PK: {"S": f"{STOCK_PREFIX}{sku}#{warehouse}#{index}"},
        tables.SK: {"S": SHARD_SK},
    }


def ledger_pk(sku: str, warehouse: str, shard: int = 0) -> str:
    return f"{LEDGER_PREFIX}{sku}#{warehouse}" + (f"#{shard}" if shard else "")


def is_shard_item(raw: tables.RawItem) -> bool:
    """A shard other than shard 0 (for stream readers)."""
    pk = raw.get(tables.PK, {}).get("S", "")
    return pk.startswith(STOCK_PREFIX) and raw.get(tables.SK, {}).get("S") == SHARD_SK


def shard_slots(raw: tables.RawItem | None) -> int:
    """How many items may hold a level's stock, from its level item (1: unsharded)."""
    return int(raw["shard_slots"]["N"]) if raw and "shard_slots" in raw else 1


def _active_shards(raw: tables.RawItem) -> int:
    return int(raw["shard_count"]["N"]) if "shard_count" in raw else 1


def levels_from_items(
    raws: Iterable[tables.RawItem], *, consistent: bool = False
) -> list[StockLevel]:
    """The levels of raw level items, sharded ones completed with their other shards (one
    batch read for all of them) and summed."""
    return [level for level, _ in _levels_with_available(raws, consistent=consistent)]


def _levels_with_available(
    raws: Iterable[tables.RawItem], *, consistent: bool
) -> list[tuple[StockLevel, int]]:
    raws = list(raws)
    wanted = [
        shard_key(raw["sku"]["S"], raw["warehouse"]["S"], index)
        for raw in raws
        for index in range(1, shard_slots(raw))
    ]
    shards: dict[StockKey, list[tables.RawItem]] = defaultdict(list)
    for item in tables.batch_get(wanted, consistent=consistent) if wanted else []:
        shards[(item["sku"]["S"], item["warehouse"]["S"])].append(item)
    return [assemble_level(raw, shards[(raw["sku"]["S"], raw["warehouse"]["S"])]) for raw in raws]


def assemble_level(
    raw: tables.RawItem, shard_items: Iterable[tables.RawItem]
) -> tuple[StockLevel, int]:
    """A level from its level item and its other shards' items (summed), with the stored
    ``available`` counters summed too."""
    level = level_from_item(raw)
    stored_available = int(raw.get("available", {}).get("N", "0"))
    slots = shard_slots(raw)
    if slots <= 1:
        return level, stored_available
    parts = {0: Shard(0, level.on_hand, level.reserved)}
    for item in shard_items:
        index = int(item["shard_index"]["N"])
        if index < slots:
            parts[index] = Shard(index, int(item["on_hand"]["N"]), int(item["reserved"]["N"]))
            stored_available += int(item["available"]["N"])
    every = tuple(parts.get(i, Shard(i)) for i in range(slots))
    level = replace(
        level,
        on_hand=sum(part.on_hand for part in every),
        reserved=sum(part.reserved for part in every),
        shards=every,
        active_shards=_active_shards(raw),
    )
    return level, stored_available


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


# --- writing -------------------------------------------------------------------------------


def add_movement(
    uow: UnitOfWork,
    movement: Movement,
    *,
    new_level: bool = False,
    before: StockLevel | None = None,
    shard: int | None = None,
) -> str:
    """Add the level's guarded delta update and the ledger entry to ``uow``; returns the
    ledger entry's id.

    The update is tagged ``stock_tag(sku, warehouse)``: when the guard fails (not enough
    available or reserved, because someone else moved stock since it was read) the
    transaction is cancelled with that tag's reason ``ConditionalCheckFailed``. With
    ``new_level`` the level must not exist yet (first stocking, run at most once).

    ``before`` is the level the movement was planned from. With it, a new level starts at
    its threshold, and a movement that changes ``available`` keeps the low-stock index key
    right (and fails its guard if the level crossed the threshold since it was read).

    On a sharded ``before``, the movement goes to shards (see ``_add_sharded_movement``):
    ``shard`` is the one a reservation was taken from (releases, shipments and commits go
    back to it) or was chosen for.
    """
    if before is not None and (before.is_sharded or shard):
        return _add_sharded_movement(uow, movement, before, shard)
    movement_id = uuid.uuid4().hex
    sku, warehouse = movement.sku, movement.warehouse
    at = tables.timestamp(movement.at)
    values = _delta_values(movement)
    update = _DELTA_UPDATE + (
        ", low_stock_threshold = if_not_exists(low_stock_threshold, :threshold),"
        " sku = :sku, warehouse = :warehouse, entity = :entity, updated_at = :at"
    )
    values[":entity"] = {"S": "stock_level"}
    values[":threshold"] = {"N": str(before.low_stock_threshold if before else 0)}
    conditions = ["attribute_not_exists(pk)"] if new_level else []
    conditions += _requirements(movement, values)
    if before is not None:
        # Planned on an unsharded level: it must still be one.
        conditions.append("attribute_not_exists(shard_slots)")
    if before is not None and movement.available_delta != 0:
        index_update, guard = _low_stock_index_update(before, movement, values)
        update += index_update
        if not new_level:
            conditions.append(guard)
    uow.update(
        level_key(sku, warehouse),
        update,
        tag=stock_tag(sku, warehouse),
        # A guard on a missing attribute is false, so a level that needs stock must exist.
        condition=" AND ".join(conditions) or None,
        values=values,
    )
    _add_ledger_entry(uow, movement, movement_id, at, shard=0)
    return movement_id


_DELTA_UPDATE = (
    "SET on_hand = if_not_exists(on_hand, :zero) + :dh,"
    " reserved = if_not_exists(reserved, :zero) + :dr,"
    " available = if_not_exists(available, :zero) + :da,"
    " movements = if_not_exists(movements, :zero) + :one"
)


def _delta_values(movement: Movement) -> dict[str, Any]:
    return {
        ":dh": {"N": str(movement.on_hand_delta)},
        ":dr": {"N": str(movement.reserved_delta)},
        ":da": {"N": str(movement.available_delta)},
        ":zero": {"N": "0"},
        ":one": {"N": "1"},
        ":sku": {"S": movement.sku},
        ":warehouse": {"S": movement.warehouse},
        ":at": {"S": tables.timestamp(movement.at)},
    }


def _requirements(movement: Movement, values: dict[str, Any]) -> list[str]:
    conditions = []
    if movement.requires_available:
        conditions.append("available >= :need_available")
        values[":need_available"] = {"N": str(movement.requires_available)}
    if movement.requires_reserved:
        conditions.append("reserved >= :need_reserved")
        values[":need_reserved"] = {"N": str(movement.requires_reserved)}
    return conditions


def _add_ledger_entry(
    uow: UnitOfWork, movement: Movement, movement_id: str, at: str, *, shard: int
) -> None:
    sku, warehouse = movement.sku, movement.warehouse
    entry = tables.to_item(
        {
            tables.PK: ledger_pk(sku, warehouse, shard),
            tables.SK: f"{at}#{movement_id}",
            "entity": "stock_movement",
            "sku": sku,
            "warehouse": warehouse,
            "shard_index": shard or None,
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


# Stock coming in that is spread over the shards at once: one movement per transaction.
_SPREAD = frozenset({MovementType.RECEIVED, MovementType.ADJUSTED, MovementType.TRANSFERRED_IN})


def _add_sharded_movement(
    uow: UnitOfWork, movement: Movement, before: StockLevel, shard: int | None
) -> str:
    """A movement on a sharded level: stock coming in is spread over the active shards
    (one update and ledger entry each); one needing available stock takes it from
    ``shard`` or a random active shard that covers it (``ShardsTooThin`` when none does);
    one on a reservation goes to ``shard`` (0 when not given)."""
    stock_in = movement.on_hand_delta > 0 and movement.reserved_delta == 0
    if stock_in and shard is None and movement.type not in _SPREAD:
        # Returns come a few lines at a time: one shard each keeps the transaction small
        # (the stream consumer's refill spreads them later).
        shard = random.randrange(before.shard_count)
    if stock_in and shard is None:
        ids = [
            add_shard_movement(uow, replace(movement, quantity=units), before, index)
            for index, units in rules.spread(movement.quantity, before.shard_count)
        ]
        return ids[0]
    if shard is None:
        shard = 0
        if movement.requires_available:
            picked = rules.pick_shard(before, movement.requires_available)
            if picked is None:
                raise ShardsTooThin(before, movement.requires_available)
            shard = picked
    return add_shard_movement(uow, movement, before, shard)


def add_shard_movement(uow: UnitOfWork, movement: Movement, before: StockLevel, index: int) -> str:
    """One shard's guarded delta update and its ledger entry. Shard 0 (the level item) is
    guarded on the level's shard slots being those planned with, so no movement lands on a
    shard that readers no longer read."""
    movement_id = uuid.uuid4().hex
    sku, warehouse = movement.sku, movement.warehouse
    at = tables.timestamp(movement.at)
    values = _delta_values(movement)
    update = _DELTA_UPDATE + ", sku = :sku, warehouse = :warehouse, updated_at = :at"
    conditions = _requirements(movement, values)
    if index == 0:
        conditions.append("shard_slots = :slots")
        values[":slots"] = {"N": str(max(len(before.shards), 1))}
        tag = stock_tag(sku, warehouse)
    else:
        update += ", entity = :entity, shard_index = :shard"
        values[":entity"] = {"S": "stock_shard"}
        values[":shard"] = {"N": str(index)}
        tag = ("stock", sku, warehouse, index)
    uow.update(
        shard_key(sku, warehouse, index),
        update,
        tag=tag,
        condition=" AND ".join(conditions) or None,
        values=values,
    )
    _add_ledger_entry(uow, movement, movement_id, at, shard=index)
    return movement_id


def low_stock_shard(sku: str, warehouse: str) -> int:
    return zlib.crc32(f"{sku}#{warehouse}".encode()) % LOW_STOCK_SHARDS


def low_stock_index_values(sku: str, warehouse: str) -> dict[str, Any]:
    return {
        ":low_pk": {"S": f"{LOW_STOCK_PREFIX}{low_stock_shard(sku, warehouse)}"},
        ":low_sk": {"S": f"{sku}#{warehouse}"},
    }


LOW_PK, LOW_SK = tables.GSI_KEYS[LOW_STOCK_INDEX]
SET_LOW_KEY = f", {LOW_PK} = :low_pk, {LOW_SK} = :low_sk"
REMOVE_LOW_KEY = f" REMOVE {LOW_PK}, {LOW_SK}"


def _low_stock_index_update(
    before: StockLevel, movement: Movement, values: dict[str, Any]
) -> tuple[str, str]:
    """(the update's index clause, the guard it needs) for a movement that changes
    ``available``; adds their values to ``values``.

    The guard holds when the stored threshold is the one planned with, and ``available``
    (as stored before this update) is on the planned side of the threshold both before and
    after the movement: after <= threshold is before <= threshold - delta."""
    threshold = before.low_stock_threshold
    was_low = before.available <= threshold
    will_be_low = before.available + movement.available_delta <= threshold
    values[":low_threshold"] = {"N": str(threshold)}
    values[":low_limit"] = {"N": str(threshold - movement.available_delta)}
    before_side = "available <= :low_threshold" if was_low else "available > :low_threshold"
    after_side = "available <= :low_limit" if will_be_low else "available > :low_limit"
    guard = (
        "(attribute_not_exists(pk) OR"
        f" (low_stock_threshold = :low_threshold AND {before_side} AND {after_side}))"
    )
    if will_be_low:
        values.update(low_stock_index_values(movement.sku, movement.warehouse))
        return SET_LOW_KEY, guard
    return REMOVE_LOW_KEY, guard


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
    for level in levels_from_items(found, consistent=consistent):
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
        levels_from_items(found, consistent=consistent),
        key=lambda level: (level.sku, level.warehouse),
    )


def levels_with_stored_available(
    keys: Iterable[StockKey], *, consistent: bool = True
) -> list[tuple[StockLevel, int]]:
    """Existing levels among ``keys`` with the ``available`` counter as stored (audits check
    it against ``on_hand - reserved``)."""
    found = tables.batch_get(
        [level_key(sku, wh) for sku, wh in sorted(set(keys))], consistent=consistent
    )
    rows = _levels_with_available(found, consistent=consistent)
    return sorted(rows, key=lambda row: (row[0].sku, row[0].warehouse))


def get_level_item(sku: str, warehouse: str) -> tables.RawItem | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=level_key(sku, warehouse), ConsistentRead=True
    )
    return response.get("Item")
