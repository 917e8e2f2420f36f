"""Shipments: warehouse staff pick, pack and ship; shoppers follow the parcel; carriers push.

The carrier webhooks carry no bearer token: each push format is signed, and the signature
is verified before anything in the body is trusted (``services.fulfilment``).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import FINANCE, OPS, authorizer, principal, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.orders import ORDER_ID_PARAMETER
from chalicelib.domain.orders import ShipmentStatus
from chalicelib.services import fulfilment

blueprint = Blueprint(__name__)

SHIPMENT_ID_PARAMETER = {"shipment_id": {"type": "string", "pattern": models.ID_PATTERN}}


class ShipmentStepBody(models.ResponseModel):
    shipment_id: str
    order_id: str
    warehouse: str
    status: str
    order_status: str
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    label_reference: str | None
    label_url: str | None
    booking_provider: str | None
    tracking_provider: str | None
    booking_failure: dict[str, Any] | None


class TrackingEventBody(models.ResponseModel):
    status: str
    occurred_at: str
    description: str
    location: dict[str, str | None]
    estimated_delivery: str | None
    carrier_status: str


class ShipmentTrackingBody(models.ResponseModel):
    shipment_id: str
    warehouse: str
    status: str
    carrier: str | None
    tracking_number: str | None = Field(description="The waybill number.")
    tracking_url: str | None
    booking_provider: str | None = Field(description="kuaidi100 or easypost")
    tracking_provider: str | None = Field(description="kuaidi100, easypost or aftership")
    tracking_status: str | None
    estimated_delivery: str | None
    timeline: list[TrackingEventBody]


class OrderTrackingBody(models.ResponseModel):
    order_id: str
    status: str
    shipments: list[ShipmentTrackingBody]


class WorkQuery(models.QueryModel):
    status: str = Field(default="pending", description="pending, picking or packed")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class WorkPage(models.ResponseModel):
    items: list[ShipmentStepBody]
    next_cursor: str | None


def _step_body(record: Any, order_status: str) -> dict[str, Any]:
    booking = record.booking
    return {
        "shipment_id": record.shipment_id,
        "order_id": record.order_id,
        "warehouse": record.warehouse,
        "status": record.status.value,
        "order_status": order_status,
        "carrier": booking.carrier if booking else None,
        "tracking_number": booking.tracking_number if booking else None,
        "tracking_url": booking.tracking_url if booking else None,
        "label_reference": booking.label_reference if booking else None,
        "label_url": (booking.label_url or None) if booking else None,
        "booking_provider": (booking.booking_provider or None) if booking else None,
        "tracking_provider": (booking.tracking_provider or None) if booking else None,
        "booking_failure": _failure_body(record.booking_failure),
    }


def _failure_body(failure: Any) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {
        "reason": failure.reason,
        "message": failure.message,
        "provider": failure.provider or None,
        "attempts": failure.attempts,
        "retry_at": failure.retry_at.isoformat(),
        "missing": list(failure.missing),
    }


def _step(shipment_id: str, to: ShipmentStatus) -> dict[str, Any]:
    caller = require_groups(blueprint.current_request, OPS)
    order, record = fulfilment.advance_shipment(shipment_id, to, actor=caller.user_id)
    return _step_body(record, order.status.value)


_STEP_DOC = (
    "Warehouse staff (ops) move a shipment forward: pending -> picking -> packed -> shipped. "
    "Anything else is 409 invalid_transition. Shipping books the parcel with the carrier "
    "and takes the goods out of stock. When the booking fails, the shipment stays packed "
    "and is booked again by a schedule: 502 carrier_unavailable (provider down), 409 "
    "carrier_refused (the provider's message in details), 409 warehouse_incomplete (the "
    "warehouse lacks address, contact_name or phone)."
)


@blueprint.route("/shipments/{shipment_id}/pick", methods=["POST"], authorizer=authorizer)
@operation(
    "Start picking a shipment",
    description=_STEP_DOC,
    tags=("shipments",),
    responses={200: ShipmentStepBody},
    path_params=SHIPMENT_ID_PARAMETER,
)
def pick(shipment_id: str) -> dict[str, Any]:
    return _step(shipment_id, ShipmentStatus.PICKING)


@blueprint.route("/shipments/{shipment_id}/pack", methods=["POST"], authorizer=authorizer)
@operation(
    "Mark a shipment packed",
    description=_STEP_DOC,
    tags=("shipments",),
    responses={200: ShipmentStepBody},
    path_params=SHIPMENT_ID_PARAMETER,
)
def pack(shipment_id: str) -> dict[str, Any]:
    return _step(shipment_id, ShipmentStatus.PACKED)


@blueprint.route("/shipments/{shipment_id}/ship", methods=["POST"], authorizer=authorizer)
@operation(
    "Ship a shipment",
    description=_STEP_DOC,
    tags=("shipments",),
    responses={200: ShipmentStepBody},
    errors=(502,),
    path_params=SHIPMENT_ID_PARAMETER,
)
def ship(shipment_id: str) -> dict[str, Any]:
    return _step(shipment_id, ShipmentStatus.SHIPPED)


@blueprint.route("/warehouses/{warehouse_id}/shipments", methods=["GET"], authorizer=authorizer)
@operation(
    "A warehouse's work list",
    description="Shipments waiting in one status (pending, picking, packed), oldest first.",
    tags=("shipments",),
    query=WorkQuery,
    responses={200: WorkPage},
    path_params={"warehouse_id": {"type": "string", "pattern": models.ID_PATTERN}},
)
def warehouse_work(warehouse_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS)
    query = WorkQuery.model_validate(request.query_params or {})
    page = fulfilment.warehouse_work(
        warehouse_id, query.status, limit=query.limit, cursor=query.cursor
    )
    return {
        "items": [_step_body(record, "") for record in page.items],
        "next_cursor": page.next_cursor,
    }


@blueprint.route("/orders/{order_id}/tracking", methods=["GET"], authorizer=authorizer)
@operation(
    "Follow an order's parcels",
    description=(
        "Per shipment: carrier, tracking number and URL, status, ETA and the carrier's "
        "timeline in time order. For the owner and staff; 404 for anyone else."
    ),
    tags=("shipments",),
    responses={200: OrderTrackingBody},
    path_params=ORDER_ID_PARAMETER,
)
def order_tracking(order_id: str) -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    return fulfilment.tracking_for_order(
        order_id, viewer_id=caller.user_id, staff=caller.is_staff or caller.in_any(FINANCE)
    )


@blueprint.route(
    "/webhooks/carriers/{carrier}",
    methods=["POST"],
    content_types=["application/json", "application/x-www-form-urlencoded", "text/plain"],
)
@operation(
    "Carrier tracking pushes",
    description=(
        "aftership (aftership-hmac-sha256), easypost (X-Hmac-Signature), kuaidi100 (form "
        "param + MD5 sign). Verified before anything in the body is trusted; forged: 401 in "
        "the format's own reply shape. Unknown tracking numbers, and parcels that another "
        "provider tracks, are acknowledged and ignored. Kuaidi100 forms over 256 KB or with "
        "more than 10 fields are refused before they are parsed."
    ),
    tags=("webhooks",),
    # Replies (and 401 refusals) are in each provider's own shape, not ours.
    responses={200: None, 401: None},
    auth="none",
    path_params={"carrier": {"type": "string", "enum": ["aftership", "easypost", "kuaidi100"]}},
)
def carrier_webhook(carrier: str) -> Response:
    request = blueprint.current_request
    reply = fulfilment.receive_tracking_push(
        carrier, dict(request.headers or {}), request.raw_body or b""
    )
    return Response(
        body=reply.body, status_code=reply.status_code, headers={"Content-Type": reply.content_type}
    )
