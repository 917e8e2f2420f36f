"""Stock use cases: receive, adjust, transfer, thresholds, and what shoppers see as availability.

Each movement is one transaction: the level's guarded delta update, its ledger entry and,
when the movement takes ``available`` to or below the low-stock threshold from above it, a
``stock.low`` outbox event (``stock.recovered`` when it rises back above it; units
shipped are counted per day for sales velocity). The service reads the level (strongly
consistent), asks the domain what the movement is, and commits; the write's own guard
(``available >= need``) is what actually prevents overselling. If the guard fails or the
transaction collides with another one, the level is read again and the movement
re-planned (bounded).

Low-stock crossings are decided against the level this service read, and the write is
guarded on the level still being on the same side of its threshold (see
``store.inventory``): if another movement crossed it in between, the movement is planned
again, so each crossing is seen once. The low-stock index the same write maintains lets
the scheduled check (``services.low_stock``) find every low level without a Scan.

A level without a threshold of its own follows its product's
``default_low_stock_threshold``: a new level starts with it, and changing the product's
default updates the levels that follow it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from chalicelib.domain import inventory as rules
from chalicelib.domain.catalogue import (
    Location,
    Product,
    ProductNotFound,
    Warehouse,
    WarehouseNotFound,
    require_category,
)
from chalicelib.domain.catalogue import require_id as _require_id
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, UnknownSku
from chalicelib.domain.inventory import (
    MAX_QUANTITY,
    MAX_THRESHOLD,
    Movement,
    MovementType,
    StockLevel,
)
from chalicelib.domain.paging import (
    DEFAULT_GRID_PAGE,
    DEFAULT_LEDGER_PAGE,
    MAX_LEDGER_PAGE,
)
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.services import catalogue
from chalicelib.settings import get_settings
from chalicelib.store import analytics as analytics_store
from chalicelib.store import inventory as store
from chalicelib.store import low_stock as low_stock_store
from chalicelib.store import outbox, stock_ledger, stock_shards, tables, units_shipped
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

STOCK_LOW = "stock.low"
STOCK_RECOVERED = "stock.recovered"
# A transaction holds 100 actions and releasing the largest order (40 allocations) needs
# 82 of them, so at most this many recovery events ride along in one; the scheduled
# low-stock check resolves the alerts of any recovery left out.
MAX_RECOVERY_EVENTS_PER_TRANSACTION = 16
WAREHOUSE_CACHE_SECONDS = 60.0
_ATTEMPTS = 5
# Levels stocked per transaction by ``stock_if_new`` (two actions each, 100 at most).
_FIRST_STOCKING_BATCH = 50

SAME_CITY_KM = 50.0
# (up to this distance, earliest and latest days from today) — a rough carrier promise.
DELIVERY_DAYS: tuple[tuple[float, int, int], ...] = (
    (SAME_CITY_KM, 1, 2),
    (500.0, 2, 3),
    (1500.0, 3, 5),
    (float("inf"), 4, 7),
)

T = TypeVar("T")
StockKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TransferResult:
    transfer_id: str
    source: StockLevel
    destination: StockLevel


@dataclass(frozen=True, slots=True)
class SkuStock:
    """One SKU in every warehouse (never-stocked warehouses show zeros)."""

    sku: str
    levels: list[StockLevel]

    @property
    def total_available(self) -> int:
        return sum(max(0, level.available) for level in self.levels)


# --- reference data ------------------------------------------------------------------------


class _WarehouseCache:
    """The warehouse list, kept briefly per process: it changes rarely and every stock
    read needs it. A miss refreshes it at once, so a new warehouse is usable immediately."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        # What the list was read from: another table or endpoint (tests) means another list.
        self._source: tuple[str, object] | None = None
        self._loaded_at = 0.0
        self._by_id: dict[str, Warehouse] = {}

    def all(self, *, refresh: bool = False) -> dict[str, Warehouse]:
        source = (get_settings().table_name, tables.client())
        with self._lock:
            fresh = time.monotonic() - self._loaded_at < self._ttl
            same_source = self._source is not None and (
                self._source[0] == source[0] and self._source[1] is source[1]
            )
            if refresh or not fresh or not same_source:
                self._by_id = {w.id: w for w in catalogue.list_warehouses()}
                self._loaded_at = time.monotonic()
                self._source = source
            return dict(self._by_id)

    def get(self, warehouse_id: str) -> Warehouse | None:
        found = self.all().get(warehouse_id)
        return found if found is not None else self.all(refresh=True).get(warehouse_id)

    def forget(self) -> None:
        with self._lock:
            self._loaded_at = 0.0
            self._by_id = {}


_warehouses = _WarehouseCache(WAREHOUSE_CACHE_SECONDS)


def known_warehouses(*, fresh: bool = False) -> list[Warehouse]:
    """Every warehouse, by id: cached for ``WAREHOUSE_CACHE_SECONDS`` on hot paths, or read
    now (``fresh``) where staff must see a warehouse created a moment ago on another worker."""
    return [w for _, w in sorted(_warehouses.all(refresh=fresh).items())]


def forget_cached_warehouses() -> None:
    _warehouses.forget()


def _require_product(sku: str, *, in_body: bool = False) -> Product:
    _require_id(sku, "sku")
    product = catalogue.products.get(sku)
    if product is None:
        # A path names a resource (404); a body names a reference (400 unknown_sku).
        raise UnknownSku([sku]) if in_body else ProductNotFound(sku)
    return product


def _require_sku(sku: str, *, in_body: bool = False) -> str:
    _require_product(sku, in_body=in_body)
    return sku


def _require_warehouse(warehouse_id: str, *, field: str | None = None) -> Warehouse:
    _require_id(warehouse_id, field or "warehouse")
    warehouse = _warehouses.get(warehouse_id)
    if warehouse is None:
        if field is None:
            raise WarehouseNotFound(warehouse_id)
        raise InvalidInput(
            f"Unknown warehouse {warehouse_id}.",
            [{"field": field, "message": f"no warehouse {warehouse_id}"}],
        )
    return warehouse


def _require_quantity(value: int, what: str, *, allow_negative: bool = False) -> int:
    limit = MAX_QUANTITY
    low = -limit if allow_negative else 1
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= limit:
        raise InvalidInput(
            f"{what} must be an integer from {low} to {limit}.",
            [{"field": what, "message": f"must be between {low} and {limit}"}],
        )
    return value


# --- movements -----------------------------------------------------------------------------


def record_movement(
    uow: UnitOfWork,
    before: StockLevel,
    after: StockLevel,
    movement: Movement,
    *,
    creates_level: bool = False,
    shard: int | None = None,
) -> None:
    """Add a movement to ``uow``, with a ``stock.low`` event when it crosses the threshold
    and a ``stock.recovered`` event when it rises back above it (both in the movement's
    transaction), and the day's shipped units when goods leave.

    For every use case that moves stock (orders reserve, release and ship through this
    too), so the low-stock rule lives in one place. A movement that ``creates_level`` (the
    first receipt) rises from nothing: there is no alert to resolve, so no recovery event.

    On a sharded level the movement goes to ``shard`` (the one its reservation is on) or to
    shards the store picks; its crossing of the threshold is not decided here (no single
    item holds the total) but from the summed shards after the write (``sync_low_stock``).
    """
    store.add_movement(uow, movement, before=before, shard=shard)
    if movement.type is MovementType.SHIPPED:
        # Sales velocity counts shipments: a shipment leaves one warehouse (at most 20
        # lines), so its transaction has room for a counter per line.
        units_shipped.add_units_shipped(
            uow, movement.sku, movement.warehouse, business_day(movement.at), movement.quantity
        )
    if before.is_sharded:
        return
    if rules.crossed_low_threshold(before, after):
        outbox.add_event(
            uow, STOCK_LOW, low_stock_payload(after, movement), occurred_at=movement.at
        )
    elif (
        not creates_level
        and rules.recovered_above_threshold(before, after)
        and _room_for_recovery_event(uow)
    ):
        outbox.add_event(
            uow, STOCK_RECOVERED, low_stock_payload(after, movement), occurred_at=movement.at
        )


def _room_for_recovery_event(uow: UnitOfWork) -> bool:
    events = sum(1 for tag in uow.tags if tag[:1] == ("outbox",))
    return events < MAX_RECOVERY_EVENTS_PER_TRANSACTION


def business_day(moment: datetime) -> date:
    """The calendar day in China that ``moment`` falls on (sales are counted per day)."""
    return moment.astimezone(CHINA_TIME).date()


def low_stock_payload(level: StockLevel, movement: Movement) -> dict[str, Any]:
    return {
        "sku": level.sku,
        "warehouse": level.warehouse,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
        "low_stock_threshold": level.low_stock_threshold,
        "movement": movement.type.value,
        "reference": movement.reference,
    }


def _pause(attempt: int) -> None:
    # Jittered so that colliding writers do not collide again.
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def _commit_with_retries(plan: Callable[[], tuple[UnitOfWork, T]]) -> T:
    """Plan from fresh reads and commit; on a failed guard or a collision, plan again.

    A shortage that is real shows up in the fresh read, where the domain rule raises
    ``InsufficientStock`` with the numbers as they are now.
    """
    for attempt in range(_ATTEMPTS):
        try:
            uow, result = plan()
        except rules.ShardsTooThin as thin:
            # The level has the stock, spread too thin over its shards: gather it, then plan.
            rebalance(thin.sku, thin.warehouse, need=thin.need)
            continue
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)
            continue
        return result
    raise Conflict("Stock is changing too quickly to apply this movement; try again.")


def _now() -> datetime:
    return datetime.now(UTC)


def _read_levels(
    sku: str, warehouses: list[str], product: Product
) -> tuple[dict[str, StockLevel], frozenset[str]]:
    """The levels as they are now, and the warehouses where the level does not exist yet
    (a new level starts at the product's default threshold)."""
    existing = {
        level.warehouse: level
        for level in store.existing_levels([(sku, w) for w in warehouses], consistent=True)
    }
    threshold = product.reorder.low_stock_threshold
    levels = {w: existing.get(w) or StockLevel.empty(sku, w, threshold) for w in warehouses}
    return levels, frozenset(warehouses) - set(existing)


def receive(
    sku: str, warehouse: str, quantity: int, *, actor: str, note: str | None = None
) -> StockLevel:
    """Goods arrived: on_hand += quantity. The level as this movement left it."""
    _require_quantity(quantity, "quantity")
    product = _require_product(sku)
    _require_warehouse(warehouse)

    def plan() -> tuple[UnitOfWork, StockLevel]:
        levels, new = _read_levels(sku, [warehouse], product)
        before = levels[warehouse]
        after, movement = rules.receive(before, quantity, at=_now(), actor=actor, note=note)
        uow = UnitOfWork()
        record_movement(uow, before, after, movement, creates_level=warehouse in new)
        return uow, after

    return _commit_with_retries(plan)


def adjust(
    sku: str,
    warehouse: str,
    delta: int,
    *,
    reason: str,
    actor: str,
    note: str | None = None,
) -> StockLevel:
    """A count correction, damage, loss or find; never takes ``available`` below zero."""
    _require_quantity(delta, "delta", allow_negative=True)
    if delta == 0:
        raise InvalidInput("delta must not be 0.", [{"field": "delta", "message": "must not be 0"}])
    product = _require_product(sku)
    _require_warehouse(warehouse)

    def plan() -> tuple[UnitOfWork, StockLevel]:
        levels, new = _read_levels(sku, [warehouse], product)
        before = levels[warehouse]
        after, movement = rules.adjust(
            before, delta, reason=reason, at=_now(), actor=actor, note=note
        )
        uow = UnitOfWork()
        record_movement(uow, before, after, movement, creates_level=warehouse in new)
        return uow, after

    return _commit_with_retries(plan)


def transfer(
    sku: str,
    source: str,
    destination: str,
    quantity: int,
    *,
    actor: str,
    note: str | None = None,
) -> TransferResult:
    """Move stock between warehouses: both sides in one transaction, or neither."""
    _require_quantity(quantity, "quantity")
    _require_id(sku, "sku")
    _require_warehouse(source, field="from")
    _require_warehouse(destination, field="to")
    if source == destination:
        raise InvalidInput(
            "from and to must be different warehouses.",
            [{"field": "to", "message": "same as from"}],
        )
    product = _require_product(sku, in_body=True)
    transfer_id = "trf_" + uuid.uuid4().hex

    def plan() -> tuple[UnitOfWork, TransferResult]:
        levels, new = _read_levels(sku, [source, destination], product)
        moved = rules.transfer(
            levels[source],
            levels[destination],
            quantity,
            transfer_id=transfer_id,
            at=_now(),
            actor=actor,
            note=note,
        )
        uow = UnitOfWork()
        record_movement(uow, levels[source], moved.source, moved.outgoing)
        record_movement(
            uow,
            levels[destination],
            moved.destination,
            moved.incoming,
            creates_level=destination in new,
        )
        return uow, TransferResult(transfer_id, moved.source, moved.destination)

    return _commit_with_retries(plan)


def set_threshold(sku: str, warehouse: str, low_stock_threshold: int) -> StockLevel:
    if (
        not isinstance(low_stock_threshold, int)
        or isinstance(low_stock_threshold, bool)
        or not 0 <= low_stock_threshold <= MAX_THRESHOLD
    ):
        raise InvalidInput(
            f"low_stock_threshold must be an integer from 0 to {MAX_THRESHOLD}.",
            [{"field": "low_stock_threshold", "message": f"must be between 0 and {MAX_THRESHOLD}"}],
        )
    _require_sku(sku)
    _require_warehouse(warehouse)
    return low_stock_store.set_threshold(sku, warehouse, low_stock_threshold, at=_now())


# --- shards (flash sales) ----------------------------------------------------------------


class UnknownWarehouse(WarehouseNotFound):
    code = "warehouse_not_found"


class StockLevelNotFound(NotFound):
    code = "stock_level_not_found"

    def __init__(self, sku: str, warehouse: str) -> None:
        super().__init__(
            f"{sku} has never been stocked in {warehouse}.", {"sku": sku, "warehouse": warehouse}
        )


SYSTEM_ACTOR = "system"
_REBALANCE_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class ShardedLevel:
    level: StockLevel
    shards: int

    def as_dict(self) -> dict[str, int | str]:
        body = self.level.as_dict()
        return {"sku": body["sku"], "warehouse": body["warehouse"], "shards": self.shards} | {
            key: body[key] for key in ("on_hand", "reserved", "available", "low_stock_threshold")
        }


def _read_level(sku: str, warehouse: str) -> StockLevel | None:
    found = store.existing_levels([(sku, warehouse)], consistent=True)
    return found[0] if found else None


def set_shards(sku: str, warehouse: str, shards: object, *, actor: str) -> ShardedLevel:
    """Split a level into ``shards`` shards (1 merges them back), then rebalance its stock
    over them. Orders placed meanwhile lose nothing: every movement is guarded on the layout
    it was planned with, and each move between shards is its own transaction."""
    count = rules.require_shard_count(shards)
    _require_id(sku, "sku")
    _require_id(warehouse, "warehouse")
    if _warehouses.get(warehouse) is None:
        raise UnknownWarehouse(warehouse)
    for _ in range(_ATTEMPTS):
        level = _read_level(sku, warehouse)
        if level is None:
            raise StockLevelNotFound(sku, warehouse)
        if level.shard_count == count and (level.is_sharded or count == 1):
            break
        if count == 1 and not level.is_sharded:
            break
        if stock_shards.set_shard_count(level, count, at=_now()):
            break
    else:
        raise Conflict(f"The shards of {sku} in {warehouse} are changing; try again.")
    level = rebalance(sku, warehouse, actor=actor)
    return ShardedLevel(level=level, shards=level.shard_count)


def rebalance(sku: str, warehouse: str, *, need: int = 0, actor: str = SYSTEM_ACTOR) -> StockLevel:
    """Move available stock between a sharded level's shards (``rules.rebalance_moves``), one
    transaction per move with its two ledger entries; a merged level whose dropped shards
    are empty becomes a plain level again. The level afterwards (unsharded levels are left
    as they are). Best effort under load: a move that loses a race is planned again from a
    fresh read, a bounded number of times."""
    reference = "rbl_" + uuid.uuid4().hex
    level = _read_level(sku, warehouse)
    for _ in range(_REBALANCE_ROUNDS):
        if level is None or not level.is_sharded:
            break
        moves = rules.rebalance_moves(level, need=need)
        if not moves:
            if level.active_shards == 1 and not any(
                shard.on_hand or shard.reserved for shard in level.shards[1:]
            ):
                uow = UnitOfWork()
                stock_shards.add_unshard(uow, level)
                try:
                    uow.commit()
                except TransactionCancelled:
                    level = _read_level(sku, warehouse)
                    continue
                level = _read_level(sku, warehouse)
            break
        at = _now()
        for source, target, units in moves:
            uow = UnitOfWork()
            stock_shards.add_shard_move(
                uow, level, source, target, units, reference=reference, actor=actor, at=at
            )
            try:
                uow.commit()
            except TransactionCancelled:
                break  # a shard moved meanwhile: plan the rest from a fresh read
        level = _read_level(sku, warehouse)
    return level if level is not None else StockLevel.empty(sku, warehouse)


def sync_low_stock(sku: str, warehouse: str) -> list[outbox.OutboxEvent]:
    """After a write to a sharded level (the table stream): refill a shard that ran dry
    (``rules.needs_refill``, then ``rebalance``); sum its shards, keep the level in the
    low-stock index as the total says, and return the events this call is the one to see
    (each flag write is conditional, so each crossing is seen once): ``stock.low`` or
    ``stock.recovered`` for operations (the alert's own conditional write keeps it at one
    alert), ``stock.out`` or ``stock.restocked`` for analytics. Nothing for unsharded
    levels: their movements and their own stream records decide exactly."""
    synced = stock_shards.sync_low_index(sku, warehouse)
    if synced is None:
        return []
    level, low, out = synced
    if rules.needs_refill(level):
        rebalance(sku, warehouse)  # a shard ran dry: refill it from the others
    at = _now()
    counters = {
        "sku": sku,
        "warehouse": warehouse,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
    }
    events = []
    if low is not None:
        payload = counters | {
            "low_stock_threshold": level.low_stock_threshold,
            "movement": "shards",
            "reference": None,
        }
        kind = STOCK_LOW if low else STOCK_RECOVERED
        events.append(outbox.OutboxEvent(outbox.new_event_id(), kind, at, payload))
    if out is not None:
        kind = analytics_store.STOCK_OUT if out else analytics_store.STOCK_RESTOCKED
        event_id = f"{kind}:{sku}:{warehouse}:{uuid.uuid4().hex}"
        events.append(outbox.OutboxEvent(event_id, kind, at, counters))
    return events


def apply_default_threshold(product: Product) -> list[StockLevel]:
    """Bring the levels of ``product`` that have no threshold of their own in line with its
    ``default_low_stock_threshold`` (0 when unset); the levels that changed.

    Run after a product is saved; running it again changes nothing, so a failed run is
    completed by saving the product again.
    """
    threshold = product.reorder.low_stock_threshold
    warehouses = [w.id for w in known_warehouses(fresh=True)]
    changed: list[StockLevel] = []
    for level in low_stock_store.levels_following_default(product.sku, warehouses):
        if level.low_stock_threshold == threshold:
            continue
        updated = low_stock_store.follow_default_threshold(
            product.sku, level.warehouse, threshold, at=_now()
        )
        if updated is not None:
            changed.append(updated)
    return changed


# --- reads ---------------------------------------------------------------------------------


def stock_of(sku: str) -> SkuStock:
    """A SKU's level in every warehouse, by warehouse id (one batch read)."""
    _require_sku(sku)
    warehouses = [w.id for w in known_warehouses(fresh=True)]
    levels = store.get_levels(sku, warehouses)
    return SkuStock(sku=sku, levels=[levels[w] for w in warehouses])


def stock_grid(
    *,
    warehouse: str | None = None,
    category: str | None = None,
    low: bool = False,
    cursor: str | None = None,
    limit: int = DEFAULT_GRID_PAGE,
) -> Page[StockLevel]:
    """Levels for the staff grid, by SKU then warehouse, from indexes only.

    All levels: a page of products (the catalogue's listing index, by category if asked)
    with each product's level in every warehouse asked for (one batch read; a level never
    stocked is empty), so ``limit`` counts SKUs. Low levels only: the low-stock index,
    ``limit`` levels at a time (a category filter may leave a page shorter).
    """
    if warehouse is not None:
        _require_warehouse(warehouse, field="warehouse")
    if category is not None:
        require_category(category)
    if low:
        page = low_stock_store.low_levels_page(warehouse=warehouse, limit=limit, cursor=cursor)
        levels = page.items
        if category is not None:
            found = catalogue.products.get_many({level.sku for level in levels})
            levels = [
                level
                for level in levels
                if level.sku in found and found[level.sku].category == category
            ]
        return Page(items=levels, next_cursor=page.next_cursor)
    products = catalogue.products.list_page(
        category=category, include_inactive=True, limit=limit, cursor=cursor
    )
    warehouse_ids = [warehouse] if warehouse else [w.id for w in known_warehouses()]
    keys = [(product.sku, wh) for product in products.items for wh in warehouse_ids]
    levels = store.get_levels_many(keys)
    return Page(items=[levels[key] for key in sorted(keys)], next_cursor=products.next_cursor)


def ledger(
    sku: str, warehouse: str, *, cursor: str | None = None, limit: int = DEFAULT_LEDGER_PAGE
) -> Page[Movement]:
    """A level's movements newest first, each with the counters it left behind."""
    _require_sku(sku)
    _require_warehouse(warehouse)
    return stock_ledger.ledger_page(sku, warehouse, cursor, max(1, min(limit, MAX_LEDGER_PAGE)))


def delivery_window(distance_km: float, today: date) -> tuple[date, date]:
    """When a parcel shipped from ``distance_km`` away should arrive, as (earliest, latest)."""
    for up_to_km, earliest, latest in DELIVERY_DAYS:
        if distance_km < up_to_km:
            return today + timedelta(days=earliest), today + timedelta(days=latest)
    raise AssertionError("DELIVERY_DAYS ends with an unbounded range")


def availability(
    sku: str, near: Location | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """What a shopper sees on a product: ``{"in_stock", "available"}``, and with ``near``
    also ``nearest_city`` (of the nearest warehouse that has it) and ``delivery_estimate``
    (``{"earliest", "latest"}`` ISO dates, counted from today in China).

    The caller has already found the product; this reads only stock (one batch read).
    """
    warehouses = known_warehouses()
    levels = store.get_levels(sku, [w.id for w in warehouses])
    stocked = [w for w in warehouses if levels[w.id].available > 0]
    total = sum(levels[w.id].available for w in stocked)
    result: dict[str, Any] = {"in_stock": total > 0, "available": total}
    if near is not None and stocked:
        nearest = min(stocked, key=lambda w: (w.distance_km(near), w.id))
        today = (now or _now()).astimezone(CHINA_TIME).date()
        earliest, latest = delivery_window(nearest.distance_km(near), today)
        result["nearest_city"] = nearest.city
        result["delivery_estimate"] = {
            "earliest": earliest.isoformat(),
            "latest": latest.isoformat(),
        }
    return result


# --- demo and setup ------------------------------------------------------------------------


def stock_if_new(
    quantities: Iterable[tuple[str, str, int]], *, actor: str = "system", note: str | None = None
) -> list[StockLevel]:
    """Receive each (sku, warehouse, quantity) whose level does not exist yet; the levels
    created. Running it again changes nothing (for demo data and first-time setup).

    Each receipt is an ordinary ``received`` movement with its ledger entry; up to
    ``_FIRST_STOCKING_BATCH`` levels share one transaction, each written only if its level
    still does not exist.
    """
    wanted = {(sku, warehouse): quantity for sku, warehouse, quantity in quantities}
    for (sku, warehouse), quantity in wanted.items():
        _require_id(sku, "sku")
        _require_warehouse(warehouse)
        _require_quantity(quantity, "quantity")
    products = catalogue.products.get_many(s for s, _ in wanted)
    unknown = sorted({sku for sku, _ in wanted} - set(products))
    if unknown:
        raise UnknownSku(unknown)

    created: list[StockLevel] = []
    pending = sorted(wanted)
    for start in range(0, len(pending), _FIRST_STOCKING_BATCH):
        chunk = pending[start : start + _FIRST_STOCKING_BATCH]

        def plan(chunk: list[StockKey] = chunk) -> tuple[UnitOfWork, list[StockLevel]]:
            existing = store.existing_levels(chunk, consistent=True)
            taken = {(level.sku, level.warehouse) for level in existing}
            uow, levels = UnitOfWork(), []
            for sku, warehouse in chunk:
                if (sku, warehouse) in taken:
                    continue
                empty = StockLevel.empty(sku, warehouse, products[sku].reorder.low_stock_threshold)
                level, movement = rules.receive(
                    empty, wanted[(sku, warehouse)], at=_now(), actor=actor, note=note
                )
                store.add_movement(uow, movement, new_level=True, before=empty)
                levels.append(level)
            return uow, levels

        created += _commit_with_retries(plan)
    return created
