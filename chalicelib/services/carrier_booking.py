"""Booking a packed shipment with its carrier, through the provider its route names.

The carrier is chosen by destination (``CARRIER_CODE`` at home, ``CARRIER_CODE_INTERNATIONAL``
abroad); its route (``adapters.carriers.routes``) says which provider books it (Kuaidi100's
e-waybill API, or EasyPost) and which provider tracks it (Kuaidi100's push subscription,
EasyPost's tracker, or AfterShip). The warehouse is the sender and the shopper the
recipient, both with phones; a warehouse without an address, contact or phone cannot book.

``book`` either returns the ``Booking`` or raises ``BookingFailed`` saying why in the
provider's own words; ``services.fulfilment`` records the failure on the shipment, tells ops
and has the booking retried on a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.adapters.carriers import (
    AFTERSHIP,
    EASYPOST,
    KUAIDI100,
    CarrierError,
    ParcelRequest,
    Party,
    routes,
)
from chalicelib.adapters.carriers.aftership import AfterShipClient
from chalicelib.adapters.carriers.easypost import EasyPostClient
from chalicelib.adapters.carriers.kuaidi100 import Kuaidi100Client
from chalicelib.domain.catalogue import Warehouse
from chalicelib.domain.errors import (
    CarrierRefused,
    CarrierUnavailable,
    DomainError,
    WarehouseIncomplete,
)
from chalicelib.domain.orders import Order
from chalicelib.domain.tracking import (
    CARRIER_REFUSED,
    CARRIER_UNAVAILABLE,
    WAREHOUSE_INCOMPLETE,
    Booking,
)
from chalicelib.services import catalogue
from chalicelib.settings import Settings, get_settings
from chalicelib.store.shipments import ShipmentRecord

HOME_COUNTRY = "CN"
# Products carry no weight yet: each unit is taken as half a kilo on the waybill.
GRAMS_PER_UNIT = 500


@dataclass(frozen=True)
class BookingFailed(Exception):
    reason: str  # CARRIER_UNAVAILABLE, CARRIER_REFUSED or WAREHOUSE_INCOMPLETE
    message: str
    provider: str = ""
    missing: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    def as_error(self, shipment_id: str, details: dict[str, object]) -> DomainError:
        """The error the ops ``POST /shipments/{id}/ship`` answers with."""
        body = {
            "shipment_id": shipment_id,
            "provider": self.provider or None,
            "provider_message": self.message,
            **details,
        }
        if self.reason == WAREHOUSE_INCOMPLETE:
            return WarehouseIncomplete(
                f"Shipment {shipment_id} cannot be booked: its warehouse has no "
                f"{', '.join(self.missing)}.",
                {**body, "missing": list(self.missing)},
            )
        if self.reason == CARRIER_UNAVAILABLE:
            return CarrierUnavailable(
                f"The carrier could not be reached to book shipment {shipment_id}; "
                "it will be tried again.",
                body,
            )
        return CarrierRefused(f"The carrier refused shipment {shipment_id}: {self.message}", body)


def carrier_for(order: Order, settings: Settings) -> str:
    abroad = order.shipping_address.country.upper() != HOME_COUNTRY
    return settings.international_carrier_code if abroad else settings.carrier_code


def book(order: Order, record: ShipmentRecord) -> Booking:
    """Book the shipment's parcel and have it tracked; ``BookingFailed`` if that cannot be."""
    settings = get_settings()
    carrier = carrier_for(order, settings)
    try:
        route = routes.route_for(carrier, settings.carrier_routes)
    except ValueError as exc:
        raise BookingFailed(CARRIER_REFUSED, str(exc)) from None
    warehouse = catalogue.get_warehouse(record.warehouse)
    missing = tuple(warehouse.missing_for_booking())
    if missing:
        raise BookingFailed(
            WAREHOUSE_INCOMPLETE,
            f"warehouse {warehouse.id} has no {', '.join(missing)}",
            missing=missing,
        )
    parcel = _parcel(order, record, warehouse, carrier)
    try:
        booking = _book_with(route, parcel, settings)
        _track_with(route, booking, order, settings)
    except CarrierError as exc:
        reason = CARRIER_UNAVAILABLE if exc.retryable else CARRIER_REFUSED
        raise BookingFailed(reason, str(exc), exc.provider or route.booking) from None
    return booking


def _book_with(route: routes.Route, parcel: ParcelRequest, settings: Settings) -> Booking:
    if route.booking == EASYPOST:
        return EasyPostClient.from_settings(settings).book(parcel)
    client = Kuaidi100Client.from_settings(settings)
    waybill = client.order_waybill(parcel)
    return client.booking_for(waybill, tracking_provider=route.tracking)


def _track_with(route: routes.Route, booking: Booking, order: Order, settings: Settings) -> None:
    """Ask the tracking provider for pushes, unless booking did that already."""
    if route.tracking == KUAIDI100:
        callback = f"{settings.public_api_url}/webhooks/carriers/{KUAIDI100}"
        Kuaidi100Client.from_settings(settings).subscribe(
            booking.carrier,
            booking.tracking_number,
            callback,
            settings.carrier_webhook_secret,
            order.shipping_address.phone,
        )
    elif route.tracking == AFTERSHIP:
        AfterShipClient.from_settings(settings).register(
            booking.carrier, booking.tracking_number, order_id=order.order_id
        )
    elif route.tracking == EASYPOST and route.booking != EASYPOST:
        EasyPostClient.from_settings(settings).track(booking.carrier, booking.tracking_number)


def _parcel(
    order: Order, record: ShipmentRecord, warehouse: Warehouse, carrier: str
) -> ParcelRequest:
    address = warehouse.address
    assert address is not None  # missing_for_booking said it is there
    to = order.shipping_address
    quantity = sum(quantity for _, quantity in record.lines)
    skus = ", ".join(sku for sku, _ in record.lines)
    attempt = record.booking_failure.attempts if record.booking_failure else 0
    return ParcelRequest(
        # One order id per attempt: a provider refuses a repeated one.
        reference=record.shipment_id if attempt == 0 else f"{record.shipment_id}.{attempt}",
        carrier=carrier,
        sender=Party(
            name=warehouse.contact_name,
            phone=warehouse.phone,
            country=HOME_COUNTRY,
            region=address.region,
            city=address.city,
            line1=address.line1,
            postcode=address.postcode,
            company=warehouse.name,
        ),
        recipient=Party(
            name=to.name,
            phone=to.phone,
            country=to.country,
            region=to.region,
            city=to.city,
            line1=to.line1,
            postcode=to.postcode,
        ),
        description=f"Order {order.order_id}: {skus}",
        quantity=quantity,
        weight_grams=GRAMS_PER_UNIT * max(quantity, 1),
    )
