"""The parcels of an after-sales request: the one the customer sends back (reported, and
subscribed with the carrier provider for tracking pushes) and the one going out (the exchange's
replacement or the repaired goods, booked with the shop's carrier). Their tracking pushes are
kept on the request, and the outbound parcel's delivery completes it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.carriers import CarrierError, TrackingUpdate
from chalicelib.adapters.carriers.kuaidi100 import Kuaidi100Client
from chalicelib.domain.after_sales import AfterSalesRequest, AfterSalesStatus, AfterSalesType
from chalicelib.domain.errors import Conflict
from chalicelib.domain.orders import ShipmentStatus
from chalicelib.domain.tracking import Booking, TrackingStatus
from chalicelib.observability import logger
from chalicelib.services import after_sales_replacement, carrier_booking
from chalicelib.services.after_sales import (
    SYSTEM_ACTOR,
    RequestNotFound,
    change,
    get_request,
    require_move,
)
from chalicelib.settings import get_settings
from chalicelib.store import after_sales as store
from chalicelib.store import orders as orders_store
from chalicelib.store import shipments as shipments_store
from chalicelib.store.unit_of_work import UnitOfWork

_S = AfterSalesStatus

OUTBOUND = "-out"  # the replacement or the repaired goods, booked with the shop's carrier
INBOUND = "-back"  # the customer's parcel, subscribed for tracking


def is_parcel_id(parcel_id: str) -> bool:
    """Whether a tracking number's parcel is an after-sales one (not an order's shipment)."""
    return parcel_id.startswith("afs_") and parcel_id.endswith((OUTBOUND, INBOUND))


def _carrier_configured() -> bool:
    return bool(get_settings().carrier_key)


def _callback() -> str:
    return f"{get_settings().public_api_url}/webhooks/carriers/kuaidi100"


def _book_outbound(request: AfterSalesRequest) -> Booking | None:
    """Book the outbound parcel through the same carrier routes as an order's shipment, from
    the warehouse it leaves (the replacement's, or the one the repair came back to); None
    when no carrier is configured (the parcel then travels without tracking)."""
    if not _carrier_configured():
        logger.warning("no carrier configured; after-sales parcel not booked")
        return None
    order = orders_store.get_order(request.order_id, consistent=True)
    if order is None:  # pragma: no cover - a request is opened on an existing order
        raise RequestNotFound(request.request_id)
    if request.replacement:
        warehouse = request.replacement[0].warehouse
        lines = tuple((held.sku, held.quantity) for held in request.replacement)
    else:
        warehouse = request.return_warehouse or order.shipments[0].warehouse
        lines = tuple((line.sku, line.quantity) for line in request.lines)
    now = datetime.now(UTC)
    parcel = shipments_store.ShipmentRecord(
        shipment_id=request.request_id + OUTBOUND,
        order_id=order.order_id,
        customer_id=order.customer_id,
        warehouse=warehouse,
        status=ShipmentStatus.PACKED,
        lines=lines,
        released_at=now,
        updated_at=now,
    )
    try:
        return carrier_booking.book(order, parcel)
    except carrier_booking.BookingFailed as failed:
        raise Conflict(
            f"The carrier could not book the parcel of {request.request_id}; try again.",
            {"request_id": request.request_id, "reason": str(failed)},
        ) from None


def _outbound(booking: Booking | None, request_id: str, at: datetime) -> dict[str, Any]:
    parcel: dict[str, Any] = {"shipment_id": request_id + OUTBOUND, "shipped_at": at.isoformat()}
    if booking is not None:
        parcel.update(
            carrier=booking.carrier,
            tracking_number=booking.tracking_number,
            tracking_url=booking.tracking_url,
        )
    return parcel


def _subscribe_inbound(request: AfterSalesRequest, carrier: str, number: str) -> bool:
    """Ask the carrier provider for pushes about the customer's parcel (best effort: a
    number the provider refuses is still recorded for ops to follow by hand)."""
    if not _carrier_configured():
        return False
    settings = get_settings()
    try:
        Kuaidi100Client.from_settings(settings).subscribe(
            carrier, number, _callback(), settings.carrier_webhook_secret
        )
    except (CarrierError, ValueError) as exc:
        logger.warning(
            "return parcel not subscribed",
            extra={"request_id": request.request_id, "reason": str(exc)},
        )
        return False
    return True


def record_parcel_tracking(
    parcel_id: str, update: TrackingUpdate, *, now: datetime | None = None
) -> bool:
    """A verified carrier push about an after-sales parcel: its latest status is kept on
    the request, and the outbound parcel's delivery completes the request."""
    request_id = parcel_id.removesuffix(OUTBOUND).removesuffix(INBOUND)
    outbound = parcel_id.endswith(OUTBOUND)
    if not update.events or store.get_request(request_id) is None:
        return bool(update.events)
    latest = max(update.events, key=lambda event: event.occurred_at)
    delivered = any(e.status is TrackingStatus.DELIVERED for e in update.events)
    noted = {
        "tracking_status": latest.status.value,
        "tracked_at": latest.occurred_at.isoformat(),
    }

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        if outbound:
            parcel = {**(current.outbound_shipment or {}), **noted}
            if delivered and current.can_move_to(_S.COMPLETED):
                return current.transition(
                    _S.COMPLETED,
                    at=at,
                    actor=SYSTEM_ACTOR,
                    note="delivered",
                    outbound_shipment=parcel,
                )
            return replace(current, outbound_shipment=parcel, version=current.version + 1)
        parcel = {**(current.return_shipment or {}), **noted}
        return replace(current, return_shipment=parcel, version=current.version + 1)

    change(request_id, plan, now=now)
    return True


def ship_replacement(request_id: str, *, now: datetime | None = None) -> AfterSalesRequest | None:
    """The fulfilment consumer's part for a received exchange: the replacement leaves its
    reservation (``shipped`` under the request's id) as an after-sales parcel. Repeating
    it changes nothing."""
    current = store.get_request(request_id)
    if current is None or current.type is not AfterSalesType.EXCHANGE:
        return current
    if current.status is not _S.RECEIVED:
        return current
    booking = _book_outbound(current)

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        require_move(current, _S.EXCHANGE_SHIPPED)
        if booking is not None:
            shipments_store.add_tracking_number(uow, booking, request_id + OUTBOUND)
        after_sales_replacement.ship(uow, current, at=at, actor=SYSTEM_ACTOR)
        return current.transition(
            _S.EXCHANGE_SHIPPED,
            at=at,
            actor=SYSTEM_ACTOR,
            outbound_shipment=_outbound(booking, request_id, at),
        )

    return change(request_id, plan, now=now)


def return_repaired(
    request_id: str, *, actor: str, note: str | None = None, now: datetime | None = None
) -> AfterSalesRequest:
    current = store.get_request(request_id)
    if current is None:
        raise RequestNotFound(request_id)
    require_move(current, _S.REPAIR_SHIPPED)
    booking = _book_outbound(current)

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        changed = current.transition(
            _S.REPAIR_SHIPPED,
            at=at,
            actor=actor,
            note=note,
            outbound_shipment=_outbound(booking, request_id, at),
        )
        if booking is not None:
            shipments_store.add_tracking_number(uow, booking, request_id + OUTBOUND)
        return changed

    return change(request_id, plan, now=now)


def report_return_shipment(
    request_id: str,
    *,
    customer_id: str,
    carrier: str,
    tracking_number: str,
    now: datetime | None = None,
) -> AfterSalesRequest:
    owned = get_request(request_id, viewer_id=customer_id, staff=False)
    require_move(owned, _S.RETURN_IN_TRANSIT)
    subscribed = _subscribe_inbound(owned, carrier, tracking_number)

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        parcel = {
            "carrier": carrier,
            "tracking_number": tracking_number,
            "reported_at": at.isoformat(),
            "subscribed": subscribed,
        }
        if subscribed:
            shipments_store.add_tracking_number(
                uow, Booking(carrier, tracking_number, "", ""), request_id + INBOUND
            )
        return current.transition(
            _S.RETURN_IN_TRANSIT,
            at=at,
            actor=customer_id,
            note=f"{carrier} {tracking_number}",
            return_shipment=parcel,
        )

    return change(request_id, plan, now=now)
