"""Order use cases: place, read, list, cancel, and expire unpaid orders.

Placing an order reads everything it needs in one batch (prices, the stock level of every
line in every warehouse, the idempotency key), plans the allocation from that snapshot, and
commits ONE transaction: per allocated (SKU, warehouse) the guarded reservation and its
ledger entry, the order, the idempotency record and the ``order.placed`` event (plus
``stock.low`` for levels the order takes to their threshold). The write's own guards decide:
if someone took the stock in between, the transaction is cancelled, nothing is written, and
the order is planned again from a fresh read (with jitter, within a time budget). A shortage
that is real shows up in that fresh read as ``OutOfStock`` with the numbers as they are. A
conflict or a throttle is not a shortage: it is retried the same way, and when the budget is
spent while the fresh read still shows the stock, the answer is ``Busy`` (503), never 409.

The idempotency record is claimed in the order's own transaction, so two requests with one
key can never both create an order; the loser reads the winner's record and answers with
the original response, or 422 if its body differs.

Cancelling and expiring release every allocation in one transaction with the status change,
written conditionally on the status and version that were read: a payment landing at the
same moment wins against the expiry job, and a cancelled order is never released twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.domain import allocation, limits
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.allocation import Line, RequestedLine
from chalicelib.domain.catalogue import ID_PATTERN
from chalicelib.domain.errors import (
    Busy,
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    OutOfStock,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.money import Money
from chalicelib.domain.orders import (
    Order,
    OrderStatus,
    ShippingAddress,
    ShippingFeeRule,
    require_prices,
)
from chalicelib.domain.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.observability import count, logger
from chalicelib.services import refunds, stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory as inventory_store
from chalicelib.store import limits as limits_store
from chalicelib.store import orders as store
from chalicelib.store import outbox, stock_shards, tables
from chalicelib.store.pagination import Page
from chalicelib.store.tables import TRANSACTION_LIMIT
from chalicelib.store.unit_of_work import THROTTLING_ERROR, TransactionCancelled, UnitOfWork

ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"
ORDER_EXPIRED = "order.expired"
CURRENCY = "CNY"
TRANSITION_ATTEMPTS = 4
# Orders expired per shard of the due index in one run of the job; more wait a minute.
EXPIRY_BATCH_PER_SHARD = 50
SYSTEM_ACTOR = "system"


def _now() -> datetime:
    return datetime.now(UTC)


def _pause_ceiling(attempt: int) -> float:
    return min(0.2, 0.01 * 2**attempt)


def _pause(attempt: int) -> None:
    # Full jitter: colliding buyers spread out instead of colliding again in step.
    time.sleep(random.uniform(0, _pause_ceiling(attempt)))


def new_order_id(at: datetime | None = None) -> str:
    return sortable_id("ord_", at or _now())


def fee_rule() -> ShippingFeeRule:
    """The configured shipping rule (``SHIPPING_FLAT_FEE``, ``SHIPPING_FREE_ABOVE``)."""
    settings = get_settings()
    free_from = settings.shipping_free_above
    return ShippingFeeRule(
        fee_per_shipment=Money(settings.shipping_flat_fee, CURRENCY),
        free_from=Money(free_from, CURRENCY) if free_from is not None else None,
    )


def payment_window() -> timedelta:
    return timedelta(seconds=get_settings().order_payment_window_seconds)


# --- placing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """The answer to a placement: the order as first returned, and whether it is a replay."""

    order_id: str
    body: dict[str, Any]
    replayed: bool = False


def _fingerprint(lines: Sequence[Line], address: ShippingAddress, note: str | None) -> str:
    return store.request_hash(
        {
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
            "shipping_address": address.as_dict(),
            "note": note,
        }
    )


def _replay(record: store.IdempotencyRecord, fingerprint: str) -> Placement:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"order_id": record.order_id})
    return Placement(order_id=record.order_id, body=record.response, replayed=True)


def order_event_payload(order: Order, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "total": order.total.as_dict(),
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in order.lines],
        "warehouses": [shipment.warehouse for shipment in order.shipments],
        **extra,
    }


def place_order(
    customer_id: str,
    lines: Sequence[Line],
    shipping_address: ShippingAddress,
    *,
    note: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Placement:
    """Place a ``pending_payment`` order holding its stock until ``expires_at``.

    Raises ``UnknownSku`` (400), ``OutOfStock`` (409, nothing changed; only when a fresh read
    shows too little stock), ``IdempotencyKeyReused`` (422) or ``Busy`` (503: conflicts,
    throttles or lost races filled the time budget while the stock was there).
    """
    requested = [RequestedLine(line.sku, line.quantity) for line in lines]
    fingerprint = _fingerprint(requested, shipping_address, note)
    warehouses = {w.id: w for w in stock.known_warehouses()}
    locations = {w.id: w.location for w in warehouses.values()}
    destination = shipping_address.destination
    skus = [line.sku for line in requested]
    order_id = new_order_id(now)
    busy = False

    deadline = time.monotonic() + get_settings().placement_budget_seconds
    attempt = 0
    out_of_time = False
    while True:
        at = now or _now()
        try:
            snapshot = store.read_for_placement(
                customer_id=customer_id,
                key=idempotency_key,
                skus=skus,
                warehouses=sorted(warehouses),
            )
        except Exception as exc:
            if not tables.is_throttling(exc):
                raise
            busy = True  # botocore's own retries were not enough: wait, then read again
        else:
            record = snapshot.idempotency
            if record is not None and record.is_live(at):
                return _replay(record, fingerprint)
            # A replay is exempt from every limit; anything that would create an order is not.
            holds, recent = limits_store.read_limits(customer_id, ORDER_RATE)
            uses = recent[ORDER_RATE]
            uses.next_slot(order_rate(), at)  # 429 rate_limited
            holds.check(_held(requested), hold_limits())  # 429 / 409, nothing reserved

            prices = require_prices(
                requested, {p.sku: p.price for p in snapshot.products.values() if p.active}
            )
            try:
                plan = allocation.plan(
                    requested, snapshot.levels.values(), destination, warehouse_locations=locations
                )
            except OutOfStock:
                # A fresh read shows too little: that, and only that, is a shortage. The list
                # is cached per worker: a warehouse opened moments ago on another worker may
                # hold the stock. Look once more at the list as it is now before saying no.
                current = {w.id: w for w in stock.known_warehouses(fresh=True)}
                if set(current) <= set(warehouses):
                    if _shards_hold_enough(requested, snapshot.levels, destination, locations):
                        # The batch read caught a move between shards half done.
                        if time.monotonic() < deadline:
                            continue
                        raise Busy(
                            "The store is busy; nothing was ordered. Try again in a moment.",
                            {"attempts": attempt + 1, "contended": busy},
                        ) from None
                    count("StockOuts")
                    raise
                warehouses = current
                locations = {w.id: w.location for w in warehouses.values()}
                continue
            try:
                plan = _on_shards(plan, snapshot.levels)
            except stock_rules.ShardsTooThin as thin:
                # The level has the stock but no shard holds this much: gather it, then plan
                # again from a fresh read (within the same budget).
                _gather(thin)
                busy = True
                if time.monotonic() < deadline:
                    continue
                raise Busy(
                    "The store is busy; nothing was ordered. Try again in a moment.",
                    {"attempts": attempt + 1, "contended": busy},
                ) from None
            order = Order.place(
                order_id=order_id,
                customer_id=customer_id,
                lines=requested,
                prices=prices,
                plan=plan,
                shipping_address=shipping_address,
                fee_rule=fee_rule(),
                at=at,
                payment_window=payment_window(),
                note=note,
            )
            body = order.as_dict()
            uow, overflow = _placement_work(
                order, body, snapshot.levels, idempotency_key, fingerprint, uses
            )
            try:
                uow.commit()
            except TransactionCancelled as cancelled:
                replay = _idempotency_outcome(cancelled, customer_id, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
                busy = _contended(cancelled)
                logger.info(
                    "order placement lost a race; planning again",
                    extra={
                        "attempt": attempt + 1,
                        "busy": busy,
                        "short_skus": sorted(
                            {tag[1] for tag in cancelled.failed_tags() if tag[:1] == ("stock",)}
                        ),
                    },
                )
            else:
                _record_overflow_events(overflow, at)
                logger.append_keys(order_id=order.order_id)
                logger.info(
                    "order placed",
                    extra={"lines": len(requested), "shipments": len(plan.warehouses)},
                )
                count("OrdersPlaced")
                return Placement(order_id=order.order_id, body=body)
        # A lost condition is planned again from a fresh read, which decides whether the
        # stock is really gone; a conflict or a throttle only says the store is busy. When the
        # budget is spent, one last fresh read and attempt: a read showing too little stock
        # raised OutOfStock above; otherwise the answer is busy, never out of stock.
        if out_of_time:
            raise Busy(
                "The store is busy; nothing was ordered. Try again in a moment.",
                {"attempts": attempt + 1, "contended": busy},
            )
        out_of_time = time.monotonic() + _pause_ceiling(attempt) >= deadline
        if not out_of_time:
            _pause(attempt)
        attempt += 1


def _on_shards(
    plan: allocation.AllocationPlan, levels: dict[tuple[str, str], StockLevel]
) -> allocation.AllocationPlan:
    """The plan with the shard each allocation on a sharded level reserves from: one at
    random among those that can cover it (``ShardsTooThin`` when none can)."""
    chosen = []
    for held in plan.allocations:
        level = levels[(held.sku, held.warehouse)]
        if level.is_sharded:
            shard = stock_rules.pick_shard(level, held.quantity)
            if shard is None:
                raise stock_rules.ShardsTooThin(level, held.quantity)
            held = replace(held, shard=shard)
        chosen.append(held)
    return replace(plan, allocations=tuple(chosen))


def _shards_hold_enough(
    requested: Sequence[RequestedLine],
    levels: dict[tuple[str, str], StockLevel],
    destination: Any,
    locations: dict[str, Any],
) -> bool:
    """Whether the order fits after all once its sharded levels are read as one snapshot
    each (the placement read of a sharded level sums shards read one by one)."""
    sharded = [key for key, level in levels.items() if level.is_sharded]
    if not sharded:
        return False
    exact = dict(levels)
    for sku, warehouse in sharded:
        exact[(sku, warehouse)] = (
            stock_shards.exact_level(sku, warehouse) or levels[(sku, warehouse)]
        )
    try:
        allocation.plan(requested, exact.values(), destination, warehouse_locations=locations)
    except OutOfStock:
        return False
    return True


def _gather(thin: stock_rules.ShardsTooThin) -> None:
    try:
        stock.rebalance(thin.sku, thin.warehouse, need=thin.need)
    except Exception:  # noqa: BLE001 - a busy rebalance is retried with the next attempt
        logger.exception("could not gather stock on one shard")


def _contended(cancelled: TransactionCancelled) -> bool:
    """A cancellation for contention (conflict, throttle), not for a failed condition."""
    return cancelled.conflicted or bool(cancelled.failed(THROTTLING_ERROR))


ORDER_RATE = "orders"


def hold_limits() -> limits.HoldLimits:
    """``MAX_OPEN_UNPAID_ORDERS`` and ``MAX_HELD_UNITS_PER_SKU``."""
    settings = get_settings()
    return limits.HoldLimits(settings.max_open_unpaid_orders, settings.max_held_units_per_sku)


def order_rate() -> limits.RateLimit:
    return limits.RateLimit(ORDER_RATE, get_settings().orders_per_minute, timedelta(minutes=1))


def _held(lines: Sequence[RequestedLine]) -> list[tuple[str, int]]:
    return [(line.sku, line.quantity) for line in lines]


def _add_limits(uow: UnitOfWork, order: Order, uses: limits.RecentUses, *, at: datetime) -> None:
    """The order counts against its customer's holds and order rate in its own transaction:
    a lost race for either cancels it like a lost race for stock, and the next attempt
    reads the counts again."""
    limits_store.add_hold(uow, order.customer_id, store.held_lines(order), hold_limits())
    limits_store.add_use(uow, order.customer_id, order_rate(), uses, at=at)


def _placement_work(
    order: Order,
    body: dict[str, Any],
    levels: dict[tuple[str, str], StockLevel],
    idempotency_key: str | None,
    fingerprint: str,
    uses: limits.RecentUses,
) -> tuple[UnitOfWork, list[tuple[StockLevel, stock_rules.Movement]]]:
    """The order's one transaction: the order, its idempotency record, its event, its
    customer's limit counters, and every reservation with its ledger entry (plus the
    low-stock crossings that fit)."""
    at = order.created_at
    uow = UnitOfWork()
    store.add_new_order(uow, order)
    if idempotency_key is not None:
        store.add_idempotency_record(
            uow,
            store.IdempotencyRecord(
                customer_id=order.customer_id,
                key=idempotency_key,
                request_hash=fingerprint,
                order_id=order.order_id,
                status_code=201,
                response=body,
                created_at=at,
                expires_at=at + store.IDEMPOTENCY_RETENTION,
            ),
        )
    outbox.add_event(uow, ORDER_PLACED, order_event_payload(order), occurred_at=at)
    _add_limits(uow, order, uses, at=at)
    overflow = _reserve(uow, order, levels, at=at, actor=order.customer_id)
    return uow, overflow


def _reserve(
    uow: UnitOfWork,
    order: Order,
    levels: dict[tuple[str, str], StockLevel],
    *,
    at: datetime,
    actor: str,
) -> list[tuple[StockLevel, stock_rules.Movement]]:
    """Add every allocation's reservation to ``uow``; returns low-stock crossings that did not
    fit in the transaction (only possible for a very large split order)."""
    allocations = order.allocations
    room = TRANSACTION_LIMIT - len(uow) - 2 * len(allocations)
    overflow: list[tuple[StockLevel, stock_rules.Movement]] = []
    for reserved in allocations:
        before = levels[(reserved.sku, reserved.warehouse)]
        after, movement = stock_rules.reserve(
            before, reserved.quantity, order_id=order.order_id, at=at, actor=actor
        )
        if stock_rules.crossed_low_threshold(before, after):
            if room > 0:
                room -= 1
            else:
                inventory_store.add_movement(uow, movement, before=before, shard=reserved.shard)
                overflow.append((after, movement))
                continue
        stock.record_movement(uow, before, after, movement, shard=reserved.shard)
    return overflow


def _record_overflow_events(
    overflow: list[tuple[StockLevel, stock_rules.Movement]], at: datetime
) -> None:
    """Low-stock events that did not fit in the order's transaction, written right after it.

    Best effort by necessity (a transaction holds 100 actions); it takes an order of 20
    lines, every one split over two warehouses, most of them crossing their threshold at
    once, to get here.
    """
    if not overflow:
        return
    uow = UnitOfWork()
    for level, movement in overflow:
        outbox.add_event(
            uow, stock.STOCK_LOW, stock.low_stock_payload(level, movement), occurred_at=at
        )
    try:
        uow.commit()
    except Exception:  # noqa: BLE001 - the order stands; the alert is what is lost
        logger.exception("could not record low-stock events after an order")


def _idempotency_outcome(
    cancelled: TransactionCancelled, customer_id: str, key: str | None, fingerprint: str
) -> Placement | None:
    """The answer when the transaction lost because the key is already taken."""
    if key is None:
        return None
    for reason in cancelled.failed():
        if reason.tag[:1] != ("idempotency",) or not reason.condition_failed:
            continue
        record = (
            store.idempotency_from_item(reason.item)
            if reason.item
            else store.get_idempotency_record(customer_id, key)
        )
        if record is not None:
            return _replay(record, fingerprint)
    return None


# --- reading -------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id} was not found.", {"order_id": order_id})


def get_order(order_id: str, *, viewer_id: str, staff: bool) -> Order:
    """The order, for its owner or staff; anyone else is told it does not exist."""
    order = store.get_order(order_id, consistent=True) if ID_PATTERN.fullmatch(order_id) else None
    if order is None or not (staff or order.is_owned_by(viewer_id)):
        raise OrderNotFound(order_id)
    return order


def _status(value: str | None) -> OrderStatus | None:
    if value is None:
        return None
    try:
        return OrderStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in OrderStatus)
        raise InvalidInput(
            f"status must be one of {allowed}.",
            [{"field": "status", "message": f"unknown status {value!r}"}],
        ) from None


def list_orders(
    *,
    viewer_id: str,
    staff: bool,
    status: str | None = None,
    customer: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[Order]:
    """Newest first. Customers see their own orders; staff see everyone's, by status and/or
    customer. A customer naming someone else is refused by the caller (API) beforehand."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    wanted_status = _status(status)
    owner = customer if staff else viewer_id
    if owner is not None:
        return store.customer_orders_page(
            owner,
            status=wanted_status.value if wanted_status else None,
            limit=limit,
            cursor=cursor,
        )
    statuses = [wanted_status.value] if wanted_status else [s.value for s in OrderStatus]
    return store.orders_by_status_page(statuses, limit=limit, cursor=cursor)


# --- cancelling and expiring ---------------------------------------------------------------


def _release_all(
    order: Order, changed: Order, *, event_type: str, at: datetime, actor: str
) -> UnitOfWork:
    """One transaction: every allocation released, the order changed, the event recorded."""
    keys = [(a.sku, a.warehouse) for a in order.allocations]
    levels = inventory_store.get_levels_many(keys, consistent=True)
    uow = UnitOfWork()
    for held in order.allocations:
        before = levels[(held.sku, held.warehouse)]
        after, movement = stock_rules.release(
            before, held.quantity, order_id=order.order_id, at=at, actor=actor
        )
        stock.record_movement(uow, before, after, movement, shard=held.shard)
    store.add_order_change(uow, changed, previous=order)
    outbox.add_event(
        uow,
        event_type,
        order_event_payload(changed, previous_status=order.status.value, actor=actor),
        occurred_at=at,
    )
    return uow


def cancel_order(
    order_id: str,
    *,
    actor_id: str,
    is_ops: bool,
    reason: str | None = None,
    now: datetime | None = None,
) -> Order:
    """Cancel and release the stock; a paid order is refunded in full. The owner may cancel
    until something ships, ops any time the state machine allows; cancelling a cancelled
    order changes nothing."""
    for attempt in range(TRANSITION_ATTEMPTS):
        order = get_order(order_id, viewer_id=actor_id, staff=is_ops)
        if order.status is OrderStatus.CANCELLED:
            return order
        at = now or _now()
        changed = order.cancel(at=at, actor=actor_id, reason=reason or "cancelled")
        uow = _release_all(order, changed, event_type=ORDER_CANCELLED, at=at, actor=actor_id)
        # Money it took goes back: owed in this transaction, sent by the refund.pending consumer.
        refunds.add_refunds_for_cancelled_order(uow, order_id, at=at)
        try:
            uow.commit()
        except TransactionCancelled:
            # The order moved on (paid, expired, cancelled), its stock did, or a payment
            # changed: look again.
            _pause(attempt)
            continue
        return changed
    raise Conflict(f"Order {order_id} is changing too quickly to cancel; try again.")


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    expired: list[str]
    skipped: list[str]  # listed as due but paid, cancelled or extended meanwhile


def expire_due_orders(
    now: datetime | None = None, *, batch_per_shard: int = EXPIRY_BATCH_PER_SHARD
) -> ExpiryReport:
    """Release the stock of every unpaid order whose hold has ended and mark it expired.

    Due orders come from the ``EXPIRY#`` index shards (a Query each, no Scan).
    """
    moment = now or _now()
    expired: list[str] = []
    skipped: list[str] = []
    for order in store.orders_due_for_expiry(moment, limit_per_shard=batch_per_shard):
        if _expire(order, moment):
            expired.append(order.order_id)
        else:
            skipped.append(order.order_id)
    if expired or skipped:
        logger.info(
            "expired unpaid orders", extra={"expired": len(expired), "skipped": len(skipped)}
        )
    return ExpiryReport(expired=expired, skipped=skipped)


def _expire(candidate: Order, now: datetime) -> bool:
    order: Order | None = candidate
    for attempt in range(TRANSITION_ATTEMPTS):
        if order is None or not order.is_due_to_expire(now):
            return False
        changed = order.expire(at=now, actor=SYSTEM_ACTOR)
        uow = _release_all(order, changed, event_type=ORDER_EXPIRED, at=now, actor=SYSTEM_ACTOR)
        try:
            uow.commit()
        except TransactionCancelled:
            # The index copy may be stale, or a payment just landed: read the order itself.
            _pause(attempt)
            order = store.get_order(candidate.order_id, consistent=True)
            continue
        return True
    logger.warning("could not expire order", extra={"order_id": candidate.order_id})
    return False


# --- quoting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a quoted shipment leaves from and when it should arrive (dates in China)."""

    warehouse: str
    city: str
    window: tuple[date, date] | None  # None when the address cannot be placed on a map

    def as_dict(self) -> dict[str, Any]:
        estimate = None
        if self.window is not None:
            earliest, latest = self.window
            estimate = {"earliest": earliest.isoformat(), "latest": latest.isoformat()}
        return {"warehouse": self.warehouse, "city": self.city, "estimated_delivery": estimate}


@dataclass(frozen=True, slots=True)
class Quote:
    """What ``place_order`` would make of a request now: the priced, allocated order."""

    order: Order
    deliveries: tuple[Delivery, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.as_dict() for line in self.order.lines],
            "shipments": [delivery.as_dict() for delivery in self.deliveries],
            "subtotal": self.order.subtotal.as_dict(),
            "shipping_fee": self.order.shipping_fee.as_dict(),
            "total": self.order.total.as_dict(),
        }


def quote_order(
    customer_id: str,
    lines: Sequence[Line],
    shipping_address: ShippingAddress,
    *,
    now: datetime | None = None,
) -> Quote:
    """Plan the order exactly as ``place_order`` would, from one read, and write nothing.

    Raises what placing raises for the same request: ``UnknownSku`` (400) and
    ``OutOfStock`` (409, with the same details).
    """
    at = now or _now()
    requested = [RequestedLine(line.sku, line.quantity) for line in lines]
    warehouses = {w.id: w for w in stock.known_warehouses()}
    snapshot = store.read_for_placement(
        customer_id=customer_id,
        key=None,
        skus=[line.sku for line in requested],
        warehouses=sorted(warehouses),
    )
    prices = require_prices(
        requested, {p.sku: p.price for p in snapshot.products.values() if p.active}
    )
    plan = allocation.plan(
        requested,
        snapshot.levels.values(),
        shipping_address.destination,
        warehouse_locations={w.id: w.location for w in warehouses.values()},
    )
    order = Order.place(
        order_id=new_order_id(at),
        customer_id=customer_id,
        lines=requested,
        prices=prices,
        plan=plan,
        shipping_address=shipping_address,
        fee_rule=fee_rule(),
        at=at,
        payment_window=payment_window(),
    )
    destination = shipping_address.destination
    today = at.astimezone(CHINA_TIME).date()
    deliveries = []
    for shipment in order.shipments:
        origin = warehouses[shipment.warehouse]
        window = None
        if destination is not None:
            window = stock.delivery_window(origin.distance_km(destination), today)
        deliveries.append(Delivery(shipment.warehouse, origin.city, window))
    return Quote(order=order, deliveries=tuple(deliveries))
