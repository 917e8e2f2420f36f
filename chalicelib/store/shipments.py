"""Shipments' fulfilment and tracking records in the main table.

The order item stays the source of truth for each shipment's *status* (the order's own
status follows its least advanced shipment). The shipment item holds what the warehouse
and the carrier add: when it was released to the warehouse, the booking (carrier, tracking
number and URL, label), and the carrier's tracking timeline.

Item shapes (the only place that knows them):

    shipment      pk=SHIPMENT#<shipment_id>          sk=SHIPMENT
                  order_id, customer_id, warehouse, status (mirrors the order's copy), lines,
                  released_at, carrier, tracking_number, tracking_url, label_reference,
                  tracking_status, estimated_delivery, timeline (list of events), version
                  gsi2pk=WAREHOUSEWORK#<warehouse>#<status>  gsi2sk=<released_at>#<id>
                  only while pending, picking or packed: a warehouse's work list
                  booking_provider, tracking_provider, label_url: who booked and who tracks
                  booking_failure {reason, message, provider, attempts, failed_at, retry_at,
                  missing}: the last failed booking of a packed shipment, and while it is
                  packed and unbooked: gsi1pk=BOOKINGRETRY  gsi1sk=<retry_at>#<id>
    tracking no.  pk=TRACKINGNO#<tracking_number>     sk=SHIPMENT
                  shipment_id, carrier: how a carrier's push finds its shipment

Every change is conditional on the version that was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.orders import Order, ShipmentStatus
from chalicelib.domain.tracking import (
    Booking,
    BookingFailure,
    Timeline,
    TrackingEvent,
    TrackingLocation,
    TrackingStatus,
)
from chalicelib.store import tables
from chalicelib.store.orders import timestamp
from chalicelib.store.pagination import (
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
    scope_of,
)
from chalicelib.store.unit_of_work import UnitOfWork

SHIPMENT_PREFIX = "SHIPMENT#"
TRACKING_NUMBER_PREFIX = "TRACKINGNO#"
WORK_PREFIX = "WAREHOUSEWORK#"
WORK_STATUSES = frozenset({ShipmentStatus.PENDING, ShipmentStatus.PICKING, ShipmentStatus.PACKED})
BOOKING_RETRY_PK = "BOOKINGRETRY"


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    shipment_id: str
    order_id: str
    customer_id: str
    warehouse: str
    status: ShipmentStatus
    lines: tuple[tuple[str, int], ...]
    released_at: datetime
    updated_at: datetime
    booking: Booking | None = None
    timeline: Timeline = field(default_factory=Timeline)
    version: int = 1
    booking_failure: BookingFailure | None = None

    @classmethod
    def released(cls, order: Order, shipment_id: str, at: datetime) -> ShipmentRecord:
        shipment = order.shipment(shipment_id)
        return cls(
            shipment_id=shipment_id,
            order_id=order.order_id,
            customer_id=order.customer_id,
            warehouse=shipment.warehouse,
            status=shipment.status,
            lines=tuple((line.sku, line.quantity) for line in shipment.lines),
            released_at=at,
            updated_at=at,
        )

    def changed(self, *, at: datetime, **changes: Any) -> ShipmentRecord:
        return replace(self, **changes, updated_at=at, version=self.version + 1)

    def tracking_dict(self) -> dict[str, Any]:
        """The shipment's tracking as ``GET /orders/{id}/tracking`` shows it."""
        eta = self.timeline.estimated_delivery
        return {
            "shipment_id": self.shipment_id,
            "warehouse": self.warehouse,
            "status": self.status.value,
            "carrier": self.booking.carrier if self.booking else None,
            "tracking_number": self.booking.tracking_number if self.booking else None,
            "tracking_url": self.booking.tracking_url if self.booking else None,
            "booking_provider": (self.booking.booking_provider or None) if self.booking else None,
            "tracking_provider": (
                (self.booking.tracking_provider or None) if self.booking else None
            ),
            "tracking_status": (
                self.timeline.current_status.value if self.timeline.current_status else None
            ),
            "estimated_delivery": _iso(eta) if eta else None,
            "timeline": [_event_dict(event) for event in self.timeline.events],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_dict(event: TrackingEvent) -> dict[str, Any]:
    return {
        "status": event.status.value,
        "occurred_at": _iso(event.occurred_at),
        "description": event.description,
        "location": {
            "city": event.location.city,
            "region": event.location.region,
            "country": event.location.country,
        },
        "estimated_delivery": (
            _iso(event.estimated_delivery) if event.estimated_delivery else None
        ),
        "carrier_status": event.carrier_status,
    }


def _event_from(value: Mapping[str, Any]) -> TrackingEvent:
    location = value.get("location") or {}
    eta = value.get("estimated_delivery")
    return TrackingEvent(
        status=TrackingStatus(value["status"]),
        occurred_at=datetime.fromisoformat(value["occurred_at"]),
        description=value.get("description") or "",
        location=TrackingLocation(
            city=location.get("city"),
            region=location.get("region"),
            country=location.get("country"),
        ),
        estimated_delivery=datetime.fromisoformat(eta) if eta else None,
        carrier_status=value.get("carrier_status") or "",
        carrier_event_id=value.get("carrier_event_id"),
    )


def shipment_key(shipment_id: str) -> tables.RawItem:
    return {tables.PK: {"S": SHIPMENT_PREFIX + shipment_id}, tables.SK: {"S": "SHIPMENT"}}


def shipment_item(record: ShipmentRecord) -> tables.RawItem:
    booking = record.booking
    values: dict[str, Any] = {
        tables.PK: SHIPMENT_PREFIX + record.shipment_id,
        tables.SK: "SHIPMENT",
        "entity": "shipment",
        "shipment_id": record.shipment_id,
        "order_id": record.order_id,
        "customer_id": record.customer_id,
        "warehouse": record.warehouse,
        "status": record.status.value,
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in record.lines],
        "released_at": timestamp(record.released_at),
        "updated_at": timestamp(record.updated_at),
        "carrier": booking.carrier if booking else None,
        "tracking_number": booking.tracking_number if booking else None,
        "tracking_url": booking.tracking_url if booking else None,
        "label_reference": booking.label_reference if booking else None,
        "booking_provider": (booking.booking_provider or None) if booking else None,
        "tracking_provider": (booking.tracking_provider or None) if booking else None,
        "label_url": (booking.label_url or None) if booking else None,
        "booking_failure": _failure_dict(record.booking_failure),
        "timeline": [
            {**_event_dict(event), "carrier_event_id": event.carrier_event_id}
            for event in record.timeline.events
        ],
        "version": record.version,
    }
    if record.status in WORK_STATUSES:
        values["gsi2pk"] = f"{WORK_PREFIX}{record.warehouse}#{record.status.value}"
        values["gsi2sk"] = f"{timestamp(record.released_at)}#{record.shipment_id}"
    failure = record.booking_failure
    if failure is not None and record.booking is None and record.status is ShipmentStatus.PACKED:
        values["gsi1pk"] = BOOKING_RETRY_PK
        values["gsi1sk"] = f"{timestamp(failure.retry_at)}#{record.shipment_id}"
    return tables.to_item(values)


def _failure_dict(failure: BookingFailure | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {
        "reason": failure.reason,
        "message": failure.message,
        "provider": failure.provider,
        "attempts": failure.attempts,
        "failed_at": timestamp(failure.failed_at),
        "retry_at": timestamp(failure.retry_at),
        "missing": list(failure.missing),
    }


def _failure_from(value: Mapping[str, Any] | None) -> BookingFailure | None:
    if not value:
        return None
    return BookingFailure(
        reason=value["reason"],
        message=value.get("message") or "",
        provider=value.get("provider") or "",
        attempts=int(value.get("attempts", 1)),
        failed_at=datetime.fromisoformat(value["failed_at"]),
        retry_at=datetime.fromisoformat(value["retry_at"]),
        missing=tuple(value.get("missing") or ()),
    )


def shipment_from_item(raw: Mapping[str, Any]) -> ShipmentRecord:
    item = tables.from_item(raw)
    booking = (
        Booking(
            carrier=item["carrier"],
            tracking_number=item["tracking_number"],
            tracking_url=item.get("tracking_url") or "",
            label_reference=item.get("label_reference") or "",
            booking_provider=item.get("booking_provider") or "",
            tracking_provider=item.get("tracking_provider") or "",
            label_url=item.get("label_url") or "",
        )
        if item.get("tracking_number")
        else None
    )
    return ShipmentRecord(
        shipment_id=item["shipment_id"],
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        warehouse=item["warehouse"],
        status=ShipmentStatus(item["status"]),
        lines=tuple((line["sku"], int(line["quantity"])) for line in item["lines"]),
        released_at=datetime.fromisoformat(item["released_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        booking=booking,
        timeline=Timeline(tuple(_event_from(e) for e in item.get("timeline") or [])),
        version=int(item.get("version", 1)),
        booking_failure=_failure_from(item.get("booking_failure")),
    )


def add_new_shipment(uow: UnitOfWork, record: ShipmentRecord) -> None:
    uow.put_versioned(
        shipment_item(record), tag=("shipment", record.shipment_id), previous_version=None
    )


def add_shipment_change(
    uow: UnitOfWork, record: ShipmentRecord, *, previous: ShipmentRecord
) -> None:
    uow.put_versioned(
        shipment_item(record),
        tag=("shipment", record.shipment_id),
        previous_version=previous.version,
    )


def get_shipment(shipment_id: str) -> ShipmentRecord | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=shipment_key(shipment_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return shipment_from_item(raw) if raw else None


def get_shipments(shipment_ids: list[str]) -> dict[str, ShipmentRecord]:
    found = tables.batch_get([shipment_key(sid) for sid in shipment_ids], consistent=True)
    records = [shipment_from_item(raw) for raw in found]
    return {record.shipment_id: record for record in records}


def add_tracking_number(uow: UnitOfWork, booking: Booking, shipment_id: str) -> None:
    uow.put(
        tables.to_item(
            {
                tables.PK: TRACKING_NUMBER_PREFIX + booking.tracking_number,
                tables.SK: "SHIPMENT",
                "entity": "tracking_number",
                "shipment_id": shipment_id,
                "carrier": booking.carrier,
            }
        ),
        tag=("tracking_number", booking.tracking_number),
        condition="attribute_not_exists(pk) OR shipment_id = :shipment",
        values={":shipment": {"S": shipment_id}},
    )


def shipment_for_tracking_number(tracking_number: str) -> str | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key={
            tables.PK: {"S": TRACKING_NUMBER_PREFIX + tracking_number},
            tables.SK: {"S": "SHIPMENT"},
        },
    )
    raw = response.get("Item")
    return str(raw["shipment_id"]["S"]) if raw else None


def _start_key(position: Mapping[str, Any], query: Mapping[str, Any]) -> tables.RawItem:
    """The stored position, if it is one this listing could have given."""
    key = position.get("key")
    names = {tables.PK, tables.SK, "gsi2pk", "gsi2sk"}
    if (
        not isinstance(key, dict)
        or set(key) != names
        or not all(isinstance(v, dict) and isinstance(v.get("S"), str) for v in key.values())
        or key["gsi2pk"] != query["ExpressionAttributeValues"][":pk"]
    ):
        raise InvalidCursor()
    return key


def warehouse_work_page(
    warehouse: str, status: ShipmentStatus, *, limit: int, cursor: str | None
) -> Page[ShipmentRecord]:
    """A warehouse's shipments in one work status, oldest released first."""
    scope = scope_of("shipments.work", warehouse, status.value)
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": tables.GSI2,
        "KeyConditionExpression": "gsi2pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{WORK_PREFIX}{warehouse}#{status.value}"}},
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = _start_key(decode_cursor(cursor, scope), query)
    response = tables.client().query(**query)
    last = response.get("LastEvaluatedKey")
    return Page(
        items=[shipment_from_item(raw) for raw in response.get("Items", [])],
        next_cursor=encode_cursor(scope, {"key": last}) if last else None,
    )


def shipments_due_for_booking(now: datetime, *, limit: int = 50) -> list[ShipmentRecord]:
    """Packed shipments whose failed booking is due to be tried again, oldest due first."""
    response = tables.client().query(
        TableName=tables.table_name(),
        IndexName=tables.GSI1,
        KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :due",
        ExpressionAttributeValues={
            ":pk": {"S": BOOKING_RETRY_PK},
            ":due": {"S": f"{timestamp(now)}#~"},
        },
        Limit=limit,
    )
    return [shipment_from_item(raw) for raw in response.get("Items", [])]
