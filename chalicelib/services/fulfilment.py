"""Fulfilment and tracking: from a paid order to a parcel at the shopper's door.

- ``order.paid`` releases each of the order's shipments (one per allocated warehouse) to
  its warehouse's work list (``release_paid_order``).
- Warehouse staff (or the local warehouse simulator, through these same functions) move a
  shipment ``pending -> picking -> packed -> shipped`` (``advance_shipment``); the order
  follows its least advanced shipment. Shipping books the parcel first, through the
  provider the carrier's route names (``services.carrier_booking``), then ONE transaction
  records the booking, moves the shipment and the order, takes the goods out of stock
  (``on_hand`` and ``reserved`` drop together, ledger ``shipped``) and records
  ``shipment.shipped``. A booking that fails leaves the shipment packed with the failure
  recorded on it (ops are alerted once per new failure); ``retry_due_bookings`` (a
  schedule) books it again when it is due.
- Carriers push tracking (``record_tracking``): every distinct event is kept in time order;
  the shipment moves forward only (out for delivery, delivered), so a late or repeated push
  is history, never a step back. The order is delivered when every shipment is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import alerts, carriers
from chalicelib.adapters.carriers import TrackingUpdate, WebhookReply
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from chalicelib.domain.orders import Order, OrderStatus, ShipmentStatus
from chalicelib.domain.tracking import Booking, BookingFailure, TrackingStatus, shipment_stage
from chalicelib.observability import logger
from chalicelib.services import after_sales_parcels, carrier_booking, stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory as inventory_store
from chalicelib.store import orders as orders_store
from chalicelib.store import outbox
from chalicelib.store import shipments as store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

SHIPMENT_SHIPPED = "shipment.shipped"
# Tracking statuses the shopper hears about, and the event each one records.
TRACKING_EVENTS = {
    TrackingStatus.OUT_FOR_DELIVERY: "shipment.out_for_delivery",
    TrackingStatus.DELIVERED: "shipment.delivered",
    TrackingStatus.EXCEPTION: "shipment.exception",
    TrackingStatus.ATTEMPT_FAIL: "shipment.exception",
    TrackingStatus.RETURNED_TO_SENDER: "shipment.exception",
}
WAREHOUSE_STEPS = (ShipmentStatus.PICKING, ShipmentStatus.PACKED, ShipmentStatus.SHIPPED)
ATTEMPTS = 8
BOOKING_RETRY_ACTOR = "carrier-booking-retry"
_PROGRESS = (
    ShipmentStatus.PENDING,
    ShipmentStatus.PICKING,
    ShipmentStatus.PACKED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.OUT_FOR_DELIVERY,
    ShipmentStatus.DELIVERED,
)
_RELEASABLE = frozenset(
    {OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED}
)


def _now() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int) -> None:
    # Two parcels of one order reported at once both write the order: spread them out.
    time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))


def order_id_of(shipment_id: str) -> str:
    """Shipment ids are ``<order_id>-<n>`` (see ``Order.place``)."""
    order_id, _, number = shipment_id.rpartition("-")
    if not order_id or not number.isdigit():
        raise NotFound(f"Shipment {shipment_id} was not found.", {"shipment_id": shipment_id})
    return order_id


def _order_for(shipment_id: str) -> Order:
    order = orders_store.get_order(order_id_of(shipment_id), consistent=True)
    if order is None or shipment_id not in {s.shipment_id for s in order.shipments}:
        raise NotFound(f"Shipment {shipment_id} was not found.", {"shipment_id": shipment_id})
    return order


# --- releasing a paid order to its warehouses -------------------------------------------


def release_paid_order(order_id: str, *, now: datetime | None = None) -> list[str]:
    """Put each shipment of a paid order on its warehouse's work list; the ids released now
    (none when a repeated ``order.paid`` finds them released already)."""
    at = now or _now()
    order = orders_store.get_order(order_id, consistent=True)
    if order is None:
        raise NotFound(f"Order {order_id} was not found.", {"order_id": order_id})
    if order.status not in _RELEASABLE:
        logger.info("order no longer to fulfil", extra={"status": order.status.value})
        return []
    ids = [s.shipment_id for s in order.shipments]
    existing = store.get_shipments(ids)
    released = []
    for shipment_id in ids:
        if shipment_id in existing:
            continue
        uow = UnitOfWork()
        store.add_new_shipment(uow, store.ShipmentRecord.released(order, shipment_id, at))
        try:
            uow.commit()
        except TransactionCancelled:
            continue  # released by a copy of this event, or by staff acting first
        released.append(shipment_id)
    logger.info("shipments released to warehouses", extra={"shipments": released})
    return released


def warehouse_work(
    warehouse: str, status: str, *, limit: int = 50, cursor: str | None = None
) -> Page[store.ShipmentRecord]:
    try:
        wanted = ShipmentStatus(status)
    except ValueError:
        wanted = None
    if wanted not in store.WORK_STATUSES:
        allowed = ", ".join(s.value for s in sorted(store.WORK_STATUSES, key=_PROGRESS.index))
        raise InvalidInput(f"status must be one of {allowed}.")
    return store.warehouse_work_page(warehouse, wanted, limit=limit, cursor=cursor)


# --- the warehouse's steps ------------------------------------------------------------------


def _book(order: Order, record: store.ShipmentRecord, *, is_new: bool) -> Booking:
    """Book the parcel with the carrier. A failure is recorded on the shipment (it stays
    packed, due for a retry), ops hear of it, and the caller gets the provider's answer."""
    try:
        return carrier_booking.book(order, record)
    except carrier_booking.BookingFailed as failed:
        logger.error(
            "carrier booking failed",
            extra={"shipment_id": record.shipment_id, "reason": failed.reason, "why": str(failed)},
        )
        failure = _record_booking_failure(record, failed, is_new=is_new)
        details = {"attempts": failure.attempts, "retry_at": failure.retry_at.isoformat()}
        raise failed.as_error(record.shipment_id, details) from None


def _record_booking_failure(
    record: store.ShipmentRecord, failed: carrier_booking.BookingFailed, *, is_new: bool
) -> BookingFailure:
    at = _now()
    for attempt in range(ATTEMPTS):
        previous = record.booking_failure
        failure = BookingFailure.after(
            previous,
            reason=failed.reason,
            message=failed.message,
            provider=failed.provider,
            at=at,
            missing=failed.missing,
        )
        uow = UnitOfWork()
        updated = record.changed(at=at, booking_failure=failure)
        if is_new:
            store.add_new_shipment(uow, updated)
        else:
            store.add_shipment_change(uow, updated, previous=record)
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)
            fresh = store.get_shipment(record.shipment_id)
            if fresh is None or fresh.booking is not None:
                return failure  # booked by someone else meanwhile
            record, is_new = fresh, False
            continue
        if failure.is_news(previous):
            alerts.publish(
                f"Shipment {record.shipment_id} cannot be booked: {failure.reason}",
                {
                    "shipment_id": record.shipment_id,
                    "order_id": record.order_id,
                    "warehouse": record.warehouse,
                    "reason": failure.reason,
                    "provider": failure.provider or None,
                    "message": failure.message,
                    "missing": list(failure.missing),
                    "retry_at": failure.retry_at.isoformat(),
                },
                kind="shipment_booking_failed",
            )
        return failure
    return failure


def retry_due_bookings(now: datetime, *, limit: int = 50) -> dict[str, list[str]]:
    """Try again to book (and so ship) packed shipments whose booking failed and is due."""
    shipped, failed = [], []
    for record in store.shipments_due_for_booking(now, limit=limit):
        try:
            advance_shipment(record.shipment_id, ShipmentStatus.SHIPPED, actor=BOOKING_RETRY_ACTOR)
        except DomainError as exc:
            logger.info(
                "booking retry left the shipment packed",
                extra={"shipment_id": record.shipment_id, "why": exc.message},
            )
            failed.append(record.shipment_id)
            continue
        shipped.append(record.shipment_id)
    return {"shipped": shipped, "failed": failed}


def advance_shipment(
    shipment_id: str, to: ShipmentStatus, *, actor: str, now: datetime | None = None
) -> tuple[Order, store.ShipmentRecord]:
    """One warehouse step (pick, pack, ship), forward only: 409 ``invalid_transition``."""
    if to not in WAREHOUSE_STEPS:
        raise InvalidInput(f"Warehouse steps are {', '.join(s.value for s in WAREHOUSE_STEPS)}.")
    booking: Booking | None = None
    for attempt in range(ATTEMPTS):
        at = now or _now()
        order = _order_for(shipment_id)
        changed = order.advance_shipment(shipment_id, to=to, at=at, actor=actor)
        record = store.get_shipment(shipment_id)
        is_new = record is None
        record = record or store.ShipmentRecord.released(order, shipment_id, at)
        if to is ShipmentStatus.SHIPPED and booking is None:
            booking = record.booking or _book(order, record, is_new=is_new)
        updated = record.changed(
            at=at,
            status=to,
            booking=booking if booking is not None else record.booking,
            booking_failure=None if booking is not None else record.booking_failure,
        )
        uow = UnitOfWork()
        orders_store.add_order_change(uow, changed, previous=order)
        if is_new:
            store.add_new_shipment(uow, updated)
        else:
            store.add_shipment_change(uow, updated, previous=record)
        if to is ShipmentStatus.SHIPPED and booking is not None:
            _add_goods_leaving(uow, order, updated, actor=actor, at=at)
            store.add_tracking_number(uow, booking, shipment_id)
            outbox.add_event(
                uow, SHIPMENT_SHIPPED, shipment_event_payload(changed, updated), occurred_at=at
            )
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)  # someone moved the order or the shipment: look again
            continue
        logger.info(
            "shipment advanced",
            extra={"order_id": order.order_id, "shipment_id": shipment_id, "to": to.value},
        )
        return changed, updated
    raise Conflict(f"Shipment {shipment_id} is changing too quickly; try again.")


def _add_goods_leaving(
    uow: UnitOfWork, order: Order, record: store.ShipmentRecord, *, actor: str, at: datetime
) -> None:
    keys = [(sku, record.warehouse) for sku, _ in record.lines]
    levels = inventory_store.get_levels_many(keys, consistent=True)
    # On a sharded level the goods leave the shard their reservation is on.
    shards = {(a.sku, a.warehouse): a.shard for a in order.allocations}
    for sku, quantity in record.lines:
        before = levels[(sku, record.warehouse)]
        after, movement = stock_rules.ship(
            before, quantity, order_id=order.order_id, at=at, actor=actor
        )
        shard = shards.get((sku, record.warehouse), 0)
        stock.record_movement(uow, before, after, movement, shard=shard)


def shipment_event_payload(order: Order, record: store.ShipmentRecord) -> dict[str, Any]:
    booking = record.booking
    status = record.timeline.current_status
    latest = record.timeline.current_event
    eta = record.timeline.estimated_delivery
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "order_status": order.status.value,
        "shipment_id": record.shipment_id,
        "warehouse": record.warehouse,
        "carrier": booking.carrier if booking else None,
        "tracking_number": booking.tracking_number if booking else None,
        "tracking_url": booking.tracking_url if booking else None,
        "tracking_status": status.value if status else None,
        "location": str(latest.location) if latest else None,
        "estimated_delivery": eta.isoformat() if eta else None,
    }


# --- carrier tracking -----------------------------------------------------------------------


def record_tracking(update: TrackingUpdate, *, now: datetime | None = None) -> bool:
    """Add a verified push's events to its shipment; whether it was ours to record.

    An unknown tracking number, or a parcel that another provider tracks, is logged for ops
    and answered as received: the provider would otherwise retry it for days.
    """
    shipment_id = store.shipment_for_tracking_number(update.tracking_number)
    if shipment_id is None:
        logger.warning(
            "tracking push for an unknown tracking number",
            extra={"carrier": update.carrier, "tracking_number": update.tracking_number},
        )
        return False
    if after_sales_parcels.is_parcel_id(shipment_id):
        return after_sales_parcels.record_parcel_tracking(shipment_id, update, now=now)
    for attempt in range(ATTEMPTS):
        at = now or _now()
        record = store.get_shipment(shipment_id)
        order = orders_store.get_order(order_id_of(shipment_id), consistent=True)
        if record is None or order is None:  # pragma: no cover - written when it shipped
            raise NotFound(f"Shipment {shipment_id} was not found.")
        tracker = record.booking.tracking_provider if record.booking else ""
        if tracker and tracker != update.source:
            # Authentic for its provider, but that provider does not track this parcel.
            logger.warning(
                "tracking push from a provider that does not track this parcel",
                extra={
                    "shipment_id": shipment_id,
                    "push_from": update.source,
                    "tracked_by": tracker,
                    "tracking_number": update.tracking_number,
                },
            )
            return False
        timeline = record.timeline.add(update.events)
        if timeline == record.timeline:
            return True  # nothing new: a repeated push
        before = record.timeline.current_status
        after = timeline.current_status
        changed = _follow_carrier(order, shipment_id, after, at=at)
        shipment_status = changed.shipment(shipment_id).status
        updated = record.changed(at=at, timeline=timeline, status=shipment_status)
        uow = UnitOfWork()
        store.add_shipment_change(uow, updated, previous=record)
        if changed is not order:
            orders_store.add_order_change(uow, changed, previous=order)
        if after is not None and after is not before and after in TRACKING_EVENTS:
            outbox.add_event(
                uow,
                TRACKING_EVENTS[after],
                shipment_event_payload(changed, updated),
                occurred_at=at,
            )
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)
            continue
        logger.info(
            "tracking recorded",
            extra={
                "order_id": order.order_id,
                "shipment_id": shipment_id,
                "tracking_status": after.value if after else None,
            },
        )
        return True
    raise Conflict(f"Shipment {shipment_id} is changing too quickly; try again.")


def _follow_carrier(
    order: Order, shipment_id: str, status: TrackingStatus | None, *, at: datetime
) -> Order:
    """The order with the shipment moved to the stage the carrier's status proves, if that
    is ahead of where it is; otherwise the order unchanged."""
    stage = shipment_stage(status)
    current = order.shipment(shipment_id).status
    if stage is None or current not in _PROGRESS or stage not in _PROGRESS:
        return order
    if _PROGRESS.index(stage) <= _PROGRESS.index(current):
        return order
    if current not in (ShipmentStatus.SHIPPED, ShipmentStatus.OUT_FOR_DELIVERY):
        return order  # the carrier is ahead of the warehouse's own scan: wait for it
    return order.advance_shipment(shipment_id, to=stage, at=at, actor="carrier")


def receive_tracking_push(source: str, headers: Mapping[str, str], body: bytes) -> WebhookReply:
    """Verify a carrier push in format ``source``, then record it; the reply for it."""
    try:
        push_format = carriers.webhook_format(source)
    except carriers.UnknownWebhookFormat:
        raise NotFound(f"No carrier push format {source!r}.", {"carrier": source}) from None
    secret = carriers.webhook_secret(source, get_settings())
    try:
        update = push_format.verify_and_parse(headers, body, secret)
    except carriers.WebhookRejected as exc:
        logger.warning("carrier push rejected", extra={"format": source, "why": str(exc)})
        return push_format.reject(str(exc), exc.status_code)
    if update is not None:
        record_tracking(update)
    return push_format.acknowledge()


def tracking_for_order(order_id: str, *, viewer_id: str, staff: bool) -> dict[str, Any]:
    order = orders_store.get_order(order_id, consistent=True)
    if order is None or not (staff or order.is_owned_by(viewer_id)):
        raise NotFound(f"Order {order_id} was not found.", {"order_id": order_id})
    records = store.get_shipments([s.shipment_id for s in order.shipments])
    shipments = []
    for shipment in order.shipments:
        record = records.get(shipment.shipment_id)
        if record is None:
            shipments.append(
                {
                    "shipment_id": shipment.shipment_id,
                    "warehouse": shipment.warehouse,
                    "status": shipment.status.value,
                    "carrier": None,
                    "tracking_number": None,
                    "tracking_url": None,
                    "booking_provider": None,
                    "tracking_provider": None,
                    "tracking_status": None,
                    "estimated_delivery": None,
                    "timeline": [],
                }
            )
        else:
            shipments.append({**record.tracking_dict(), "status": shipment.status.value})
    return {"order_id": order.order_id, "status": order.status.value, "shipments": shipments}
