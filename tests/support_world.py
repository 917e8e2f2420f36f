"""A small world for support tests: a shipped order with a parcel on the road, stored as the
app keeps it (the integration tests write it to moto, the e2e tests to the stack's moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain.allocation import Allocation
from chalicelib.domain.money import Money
from chalicelib.domain.orders import (
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    ShippingAddress,
)
from chalicelib.domain.tracking import Booking, Timeline, TrackingEvent, TrackingLocation
from chalicelib.store import orders as order_store
from chalicelib.store import shipments as shipment_store
from chalicelib.store.unit_of_work import UnitOfWork

CUSTOMER = "customer-1"


def shipped_order(order_id: str = "ord_01JSUPPORTSHIPPED000000000A", owner: str = CUSTOMER) -> str:
    """A shipped order with one parcel on the road with shunfeng, stored as the app keeps it."""
    now = datetime.now(UTC)
    price = Money(2900, "CNY")
    order = Order(
        order_id=order_id,
        customer_id=owner,
        status=OrderStatus.SHIPPED,
        lines=(OrderLine("MUG", 1, price, (Allocation("MUG", "SH", 1),)),),
        shipments=(
            Shipment(
                "shp_1" + order_id[-4:], "SH", ShipmentStatus.SHIPPED, (ShipmentLine("MUG", 1),)
            ),
        ),
        shipping_address=ShippingAddress(
            "李雷", "+8613800000000", "CN", "上海", "上海市", "x 1", "200000"
        ),
        subtotal=price,
        shipping_fee=Money(0, "CNY"),
        total=price,
        created_at=now - timedelta(days=2),
        updated_at=now - timedelta(days=1),
        expires_at=now - timedelta(days=2),
        history=(),
    )
    record = shipment_store.ShipmentRecord.released(order, order.shipments[0].shipment_id, now)
    event = TrackingEvent(
        status="in_transit",
        occurred_at=datetime(2026, 12, 5, 2, 30, tzinfo=UTC),
        description="快件已到达杭州转运中心",
        location=TrackingLocation(city="杭州"),
        estimated_delivery=datetime(2026, 12, 7, 4, 0, tzinfo=UTC),
    )
    record = record.changed(
        at=now,
        status=ShipmentStatus.SHIPPED,
        booking=Booking("shunfeng", "SF1234567890", "https://t.example/SF1234567890", "lbl-1"),
        timeline=Timeline((event,)),
    )
    uow = UnitOfWork()
    order_store.add_new_order(uow, order)
    shipment_store.add_new_shipment(uow, record)
    uow.commit()
    return order_id
