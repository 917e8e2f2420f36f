"""Stock per (SKU, warehouse) and the ledger of every movement that changes it.

Each operation is a pure function: given the current ``StockLevel`` it returns the new
level and the ``Movement`` that explains the change, or raises when the rule says no. The
store writes both in one transaction, guarded by the movement's ``requires_available`` /
``requires_reserved`` conditions, so the ledger and the counters can never drift apart:
``ledger_balance(movements) == (level.on_hand, level.reserved)`` always.

Reservation lifecycle: an order *reserves* (reserved += q); payment *commits* it (a
ledger marker: the quantity stays reserved but no longer expires); shipping *ships* it
(on_hand and reserved both -= q); cancellation or expiry *releases* it (reserved -= q).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from chalicelib.domain.errors import Conflict, InsufficientStock, InvalidInput


class MovementType(StrEnum):
    RECEIVED = "received"
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    SHIPPED = "shipped"
    RETURNED = "returned"
    ADJUSTED = "adjusted"
    TRANSFERRED_IN = "transferred_in"
    TRANSFERRED_OUT = "transferred_out"
    # Stock moved between the shards of one level (a rebalance): the level is unchanged.
    REBALANCED_OUT = "rebalanced_out"
    REBALANCED_IN = "rebalanced_in"
    WRITTEN_OFF = "written_off"  # a returned unit not fit to sell: recorded, not on hand


class AdjustmentReason(StrEnum):
    COUNT = "count"
    DAMAGE = "damage"
    LOSS = "loss"
    FOUND = "found"
    OTHER = "other"


# How one unit of each movement moves (on_hand, reserved). ADJUSTED carries a signed
# quantity; every other type carries a positive one.
_EFFECT: dict[MovementType, tuple[int, int]] = {
    MovementType.RECEIVED: (1, 0),
    MovementType.RESERVED: (0, 1),
    MovementType.COMMITTED: (0, 0),
    MovementType.RELEASED: (0, -1),
    MovementType.SHIPPED: (-1, -1),
    MovementType.RETURNED: (1, 0),
    MovementType.ADJUSTED: (1, 0),
    MovementType.TRANSFERRED_IN: (1, 0),
    MovementType.TRANSFERRED_OUT: (-1, 0),
    MovementType.REBALANCED_OUT: (-1, 0),
    MovementType.REBALANCED_IN: (1, 0),
    MovementType.WRITTEN_OFF: (0, 0),
}

# One movement may move at most this many units: bigger numbers are typing mistakes, and
# keeping counters far from any numeric limit keeps every sum exact.
MAX_QUANTITY = 1_000_000
MAX_THRESHOLD = MAX_QUANTITY

# Movements that belong to one order's reservation; their ``reference`` is the order id.
RESERVATION_MOVEMENTS = frozenset(
    {MovementType.RESERVED, MovementType.COMMITTED, MovementType.RELEASED, MovementType.SHIPPED}
)


@dataclass(frozen=True, slots=True)
class Shard:
    """One item holding part of a sharded level's stock (shard 0 is the level item)."""

    index: int
    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A (SKU, warehouse) level. A sharded level's counters are the sums of its ``shards``
    (every item that may hold its stock); ``active_shards`` of them take new stock and
    reservations. An unsharded level has no ``shards``."""

    sku: str
    warehouse: str
    on_hand: int = 0
    reserved: int = 0
    low_stock_threshold: int = 0
    shards: tuple[Shard, ...] = ()
    active_shards: int = 1

    @classmethod
    def empty(cls, sku: str, warehouse: str, low_stock_threshold: int = 0) -> StockLevel:
        """The level of a (SKU, warehouse) pair that has never had stock."""
        return cls(sku=sku, warehouse=warehouse, low_stock_threshold=low_stock_threshold)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold

    def can_reserve(self, quantity: int) -> bool:
        return quantity > 0 and self.available >= quantity

    @property
    def is_sharded(self) -> bool:
        """Its stock may be on more than one item (also while a merge is draining)."""
        return len(self.shards) > 1

    @property
    def shard_count(self) -> int:
        """How many shards take stock and reservations (1 for an unsharded level)."""
        return self.active_shards if self.is_sharded else 1

    def with_threshold(self, low_stock_threshold: int) -> StockLevel:
        _require_non_negative(low_stock_threshold, "low_stock_threshold")
        return replace(self, low_stock_threshold=low_stock_threshold)

    def as_dict(self) -> dict[str, int | str]:
        return {
            "sku": self.sku,
            "warehouse": self.warehouse,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "available": self.available,
            "low_stock_threshold": self.low_stock_threshold,
        }


@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger entry: what moved, why, and the level it left behind."""

    type: MovementType
    sku: str
    warehouse: str
    quantity: int  # positive, except ADJUSTED where it is the signed delta
    on_hand: int  # resulting
    reserved: int  # resulting
    at: datetime
    actor: str
    reference: str | None = None  # order id, transfer id, ...
    note: str | None = None
    reason: AdjustmentReason | None = None

    @property
    def on_hand_delta(self) -> int:
        return _EFFECT[self.type][0] * self.quantity

    @property
    def reserved_delta(self) -> int:
        return _EFFECT[self.type][1] * self.quantity

    @property
    def available_delta(self) -> int:
        return self.on_hand_delta - self.reserved_delta

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def requires_available(self) -> int:
        """The least ``available`` the level must have *before* this movement (write guard)."""
        return max(0, -self.available_delta)

    @property
    def requires_reserved(self) -> int:
        """The least ``reserved`` the level must have before this movement (write guard)."""
        if self.type in (MovementType.COMMITTED, MovementType.RELEASED, MovementType.SHIPPED):
            return self.quantity
        return 0


def _require_positive(quantity: int, what: str = "quantity") -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise InvalidInput(f"{what} must be a positive integer, got {quantity!r}.")


def _require_non_negative(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{what} must be a non-negative integer, got {value!r}.")


def _short(level: StockLevel, requested: int, what: str, have: int) -> InsufficientStock:
    return InsufficientStock(
        f"Only {have} of {level.sku} {what} in {level.warehouse}; {requested} needed.",
        {
            "sku": level.sku,
            "warehouse": level.warehouse,
            "requested": requested,
            "available": level.available,
            "reserved": level.reserved,
        },
    )


def _move(
    level: StockLevel,
    movement_type: MovementType,
    quantity: int,
    *,
    at: datetime,
    actor: str,
    reference: str | None = None,
    note: str | None = None,
    reason: AdjustmentReason | None = None,
) -> tuple[StockLevel, Movement]:
    on_hand_step, reserved_step = _EFFECT[movement_type]
    after = replace(
        level,
        on_hand=level.on_hand + on_hand_step * quantity,
        reserved=level.reserved + reserved_step * quantity,
    )
    movement = Movement(
        type=movement_type,
        sku=level.sku,
        warehouse=level.warehouse,
        quantity=quantity,
        on_hand=after.on_hand,
        reserved=after.reserved,
        at=at,
        actor=actor,
        reference=reference,
        note=note,
        reason=reason,
    )
    return after, movement


def receive(
    level: StockLevel, quantity: int, *, at: datetime, actor: str, note: str | None = None
) -> tuple[StockLevel, Movement]:
    """Goods arrived at the warehouse."""
    _require_positive(quantity)
    return _move(level, MovementType.RECEIVED, quantity, at=at, actor=actor, note=note)


def adjust(
    level: StockLevel,
    delta: int,
    *,
    reason: AdjustmentReason | str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> tuple[StockLevel, Movement]:
    """A correction after a count, damage, loss or find. It may never eat into reservations."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise InvalidInput(f"delta must be a non-zero integer, got {delta!r}.")
    try:
        reason = AdjustmentReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in AdjustmentReason)
        raise InvalidInput(f"reason must be one of {allowed}, got {reason!r}.") from None
    if level.available + delta < 0:
        raise _short(level, -delta, "available", level.available)
    return _move(level, MovementType.ADJUSTED, delta, at=at, actor=actor, note=note, reason=reason)


def reserve(
    level: StockLevel, quantity: int, *, order_id: str, at: datetime, actor: str
) -> tuple[StockLevel, Movement]:
    """Hold stock for an unpaid order."""
    _require_positive(quantity)
    if not level.can_reserve(quantity):
        raise _short(level, quantity, "available", level.available)
    return _move(level, MovementType.RESERVED, quantity, at=at, actor=actor, reference=order_id)


def _require_reserved(level: StockLevel, quantity: int) -> None:
    _require_positive(quantity)
    if level.reserved < quantity:
        raise _short(level, quantity, "reserved", level.reserved)


def commit(
    level: StockLevel, quantity: int, *, order_id: str, at: datetime, actor: str
) -> tuple[StockLevel, Movement]:
    """Payment arrived: the reservation stays but no longer expires (counters unchanged)."""
    _require_reserved(level, quantity)
    return _move(level, MovementType.COMMITTED, quantity, at=at, actor=actor, reference=order_id)


def release(
    level: StockLevel, quantity: int, *, order_id: str, at: datetime, actor: str
) -> tuple[StockLevel, Movement]:
    """Cancellation or expiry gives reserved stock back."""
    _require_reserved(level, quantity)
    return _move(level, MovementType.RELEASED, quantity, at=at, actor=actor, reference=order_id)


def ship(
    level: StockLevel, quantity: int, *, order_id: str, at: datetime, actor: str
) -> tuple[StockLevel, Movement]:
    """Reserved goods leave the building: on_hand and reserved drop together."""
    _require_reserved(level, quantity)
    return _move(level, MovementType.SHIPPED, quantity, at=at, actor=actor, reference=order_id)


def return_to_stock(
    level: StockLevel,
    quantity: int,
    *,
    reference: str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> tuple[StockLevel, Movement]:
    """A customer return put back on the shelf (``reference``: the return or order id)."""
    _require_positive(quantity)
    return _move(
        level, MovementType.RETURNED, quantity, at=at, actor=actor, reference=reference, note=note
    )


def write_off(
    level: StockLevel,
    quantity: int,
    *,
    reference: str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> tuple[StockLevel, Movement]:
    """A returned unit judged unfit to sell: on the record, never back on hand."""
    _require_positive(quantity)
    return _move(
        level,
        MovementType.WRITTEN_OFF,
        quantity,
        at=at,
        actor=actor,
        reference=reference,
        note=note,
    )


def transfer_out(
    level: StockLevel,
    quantity: int,
    *,
    transfer_id: str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> tuple[StockLevel, Movement]:
    _require_positive(quantity)
    if level.available < quantity:
        raise _short(level, quantity, "available", level.available)
    return _move(
        level,
        MovementType.TRANSFERRED_OUT,
        quantity,
        at=at,
        actor=actor,
        reference=transfer_id,
        note=note,
    )


def transfer_in(
    level: StockLevel,
    quantity: int,
    *,
    transfer_id: str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> tuple[StockLevel, Movement]:
    _require_positive(quantity)
    return _move(
        level,
        MovementType.TRANSFERRED_IN,
        quantity,
        at=at,
        actor=actor,
        reference=transfer_id,
        note=note,
    )


@dataclass(frozen=True, slots=True)
class Transfer:
    """Both sides of a move between warehouses; the store writes them in one transaction."""

    source: StockLevel
    destination: StockLevel
    outgoing: Movement
    incoming: Movement


def transfer(
    source: StockLevel,
    destination: StockLevel,
    quantity: int,
    *,
    transfer_id: str,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> Transfer:
    if source.sku != destination.sku:
        raise InvalidInput("A transfer moves one SKU; source and destination differ.")
    if source.warehouse == destination.warehouse:
        raise InvalidInput("A transfer needs two different warehouses.")
    new_source, outgoing = transfer_out(
        source, quantity, transfer_id=transfer_id, at=at, actor=actor, note=note
    )
    new_destination, incoming = transfer_in(
        destination, quantity, transfer_id=transfer_id, at=at, actor=actor, note=note
    )
    return Transfer(new_source, new_destination, outgoing, incoming)


def crossed_low_threshold(before: StockLevel, after: StockLevel) -> bool:
    """``available`` fell to or below the threshold from above it: raise one low-stock alert."""
    return (
        before.available > before.low_stock_threshold
        and after.available <= after.low_stock_threshold
    )


def recovered_above_threshold(before: StockLevel, after: StockLevel) -> bool:
    """``available`` rose back above the threshold: the low-stock alert is re-armed."""
    return (
        before.available <= before.low_stock_threshold
        and after.available > after.low_stock_threshold
    )


def ledger_balance(movements: Iterable[Movement]) -> tuple[int, int]:
    """(on_hand, reserved) as the ledger says they must be, from types and quantities alone."""
    on_hand = reserved = 0
    for movement in movements:
        on_hand += movement.on_hand_delta
        reserved += movement.reserved_delta
    return on_hand, reserved


def open_reservations(movements: Iterable[Movement]) -> dict[str, int]:
    """Quantity still held per order (reserved minus released minus shipped), omitting zeros.

    Their sum is what ``reserved`` must be; a negative entry means an order gave back more
    than it held.
    """
    held: dict[str, int] = defaultdict(int)
    for movement in movements:
        if movement.type in RESERVATION_MOVEMENTS and movement.reference is not None:
            held[movement.reference] += movement.reserved_delta
    return {order_id: quantity for order_id, quantity in held.items() if quantity != 0}


# --- shards (flash sales) ----------------------------------------------------------------------

MAX_SHARDS = 32


def require_shard_count(value: object) -> int:
    """A shard count ops may ask for: an integer (not a bool) from 1 to ``MAX_SHARDS``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SHARDS:
        raise InvalidInput(
            f"shards must be an integer from 1 to {MAX_SHARDS}.",
            [{"field": "shards", "message": f"must be between 1 and {MAX_SHARDS}"}],
        )
    return value


def spread(quantity: int, shards: int) -> list[tuple[int, int]]:
    """How ``quantity`` units are split over ``shards`` shards: (shard, units) for every
    shard that gets any, the first ones one unit more. Shard 0 always gets some."""
    base, rest = divmod(quantity, shards)
    parts = [(index, base + (1 if index < rest else 0)) for index in range(shards)]
    return [(index, units) for index, units in parts if units > 0]


def pick_shard(level: StockLevel, quantity: int, rng: random.Random | None = None) -> int | None:
    """The shard a movement needing ``quantity`` available takes from: one at random among
    the active shards that can cover it (so no single item is hot), or None when none can."""
    covering = [
        shard.index
        for shard in level.shards
        if shard.index < level.active_shards and shard.available >= quantity
    ]
    if not covering:
        return None
    return (rng or random).choice(covering)


def needs_refill(level: StockLevel) -> bool:
    """Whether a sharded level has a dry active shard (or stock stranded on a dropped one)
    while it holds enough to give every active shard ``REFILL_FLOOR`` units: then a
    rebalance spreads it again, so reservations keep choosing among all the shards."""
    if not level.is_sharded:
        return False
    available = _available_by_shard(level)
    active = [available[i] for i in range(level.active_shards)]
    stranded = any(available[i] > 0 for i in available if i >= level.active_shards)
    enough = sum(available.values()) >= REFILL_FLOOR * level.active_shards
    return stranded or (enough and min(active) == 0)


REFILL_FLOOR = 2


def _available_by_shard(level: StockLevel) -> dict[int, int]:
    width = max(level.active_shards, len(level.shards))
    current = {index: 0 for index in range(width)}
    for shard in level.shards:
        current[shard.index] = max(0, shard.available)
    return current


def _moves(current: dict[int, int], desired: dict[int, int]) -> list[tuple[int, int, int]]:
    surplus = [
        (i, current[i] - desired.get(i, 0)) for i in current if current[i] > desired.get(i, 0)
    ]
    deficit = [
        (i, desired[i] - current.get(i, 0)) for i in desired if desired[i] > current.get(i, 0)
    ]
    moves: list[tuple[int, int, int]] = []
    while surplus and deficit:
        (source, spare), (target, short) = surplus[0], deficit[0]
        units = min(spare, short)
        moves.append((source, target, units))
        surplus[0], deficit[0] = (source, spare - units), (target, short - units)
        if surplus[0][1] == 0:
            surplus.pop(0)
        if deficit[0][1] == 0:
            deficit.pop(0)
    return moves


def rebalance_moves(level: StockLevel, *, need: int = 0) -> list[tuple[int, int, int]]:
    """The moves (from shard, to shard, units of available stock) that refill a sharded
    level's shards: stock on shards no longer active goes to the active ones, and

    * without ``need``, the active shards end up even (within one unit), moving as little
      as possible;
    * with ``need``, the richest active shard is topped up to cover ``need`` (when the
      level has that much), taking from the richest others first.
    """
    current = _available_by_shard(level)
    active = range(level.active_shards)
    total = sum(current.values())
    if need <= 0:
        base, rest = divmod(total, level.active_shards)
        richest_first = sorted(active, key=lambda i: (-current[i], i))
        desired = {i: base + (1 if rank < rest else 0) for rank, i in enumerate(richest_first)}
        return _moves(current, desired)
    target = max(active, key=lambda i: (current[i], -i))
    spare_inactive = sum(current[i] for i in current if i >= level.active_shards)
    desired = {i: current[i] for i in active}
    desired[target] = max(current[target] + spare_inactive, min(need, total))
    still_short = desired[target] - current[target] - spare_inactive
    for i in sorted((i for i in active if i != target), key=lambda i: (-current[i], i)):
        if still_short <= 0:
            break
        taken = min(current[i], still_short)
        desired[i] -= taken
        still_short -= taken
    return _moves(current, desired)


class ShardsTooThin(Conflict):
    """No active shard of a sharded level holds enough available stock for one movement,
    though the level may: a rebalance (``rebalance_moves`` with ``need``) makes one that does."""

    def __init__(self, level: StockLevel, need: int) -> None:
        super().__init__(
            f"No shard of {level.sku} in {level.warehouse} holds {need} units; try again.",
            {"sku": level.sku, "warehouse": level.warehouse, "requested": need},
        )
        self.sku = level.sku
        self.warehouse = level.warehouse
        self.need = need
