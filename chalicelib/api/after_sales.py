"""After-sales: customers ask about their delivered orders; support and ops decide, ops
receive the parcels. A customer asking about someone else's order or request is told it
does not exist (404); staff cannot ask on a customer's behalf (403)."""

from __future__ import annotations

from typing import Annotated, Any

from chalice import Blueprint, Response
from pydantic import Field, StringConstraints, model_validator

from chalicelib.api import models
from chalicelib.api.auth import CUSTOMERS, OPS, STAFF, authorizer, require_groups
from chalicelib.api.errors import validation_error
from chalicelib.api.openapi import operation
from chalicelib.api.requests import REPLAYED_HEADER, idempotency_key, json_body, parse_body
from chalicelib.domain import paging
from chalicelib.domain.after_sales import (
    MAX_LINES,
    AfterSalesStatus,
    AfterSalesType,
    Disposition,
    Reason,
    ReceivedLine,
    RequestLine,
)
from chalicelib.domain.orders import MAX_QUANTITY_PER_LINE
from chalicelib.services import after_sales, after_sales_parcels, uploads

blueprint = Blueprint(__name__)

JSON = {"Content-Type": "application/json"}
ORDER_ID_PARAMETER = {"order_id": {"type": "string", "pattern": models.ID_PATTERN}}
REQUEST_ID_PARAMETER = {"request_id": {"type": "string", "pattern": models.ID_PATTERN}}
Sku = Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=500)]


# --- request models ----------------------------------------------------------------------


class LineIn(models.RequestModel):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_QUANTITY_PER_LINE)
    reason: Reason = Field(strict=False)
    exchange_sku: Sku | None = None

    def to_domain(self) -> RequestLine:
        return RequestLine(self.sku, self.quantity, Reason(self.reason), self.exchange_sku)


class CreateIn(models.RequestModel):
    type: AfterSalesType = Field(strict=False)
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    description: str = Field(max_length=2000)
    photos: list[Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]] | None = Field(
        default=None, max_length=9, description="Upload ids (see POST /uploads)."
    )

    @model_validator(mode="after")
    def _each_sku_once(self) -> CreateIn:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only")
        if self.type is not AfterSalesType.EXCHANGE and any(
            line.exchange_sku for line in self.lines
        ):
            raise ValueError("exchange_sku is only for exchanges")
        return self


class ApproveIn(models.RequestModel):
    note: Note | None = None
    return_warehouse: Sku | None = None
    pickup: bool | None = Field(default=None, description="Not supported by this shop yet.")


class RejectIn(models.RequestModel):
    note: Note


class NoteIn(models.RequestModel):
    note: Note | None = None


class ReturnShipmentIn(models.RequestModel):
    carrier: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$")]


class ReceivedLineIn(models.RequestModel):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_QUANTITY_PER_LINE)
    disposition: Disposition = Field(strict=False)


class ReceiveIn(models.RequestModel):
    lines: list[ReceivedLineIn] = Field(min_length=1, max_length=MAX_LINES)
    note: Note | None = None


class ListQuery(models.QueryModel):
    status: AfterSalesStatus | None = None
    type: AfterSalesType | None = None
    limit: int = Field(default=paging.DEFAULT_PAGE_SIZE, ge=1, le=paging.MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2048)


# --- response models ---------------------------------------------------------------------


class TimelineBody(models.ResponseModel):
    from_: str | None = Field(alias="from")
    status: str
    at: str
    actor: str
    note: str | None


class AfterSalesBody(models.ResponseModel):
    request_id: str
    order_id: str
    customer_id: str
    type: AfterSalesType
    status: AfterSalesStatus
    lines: list[dict[str, Any]]
    description: str
    photos: list[str]
    refund_estimate: models.MoneyBody | None
    return_shipment: dict[str, Any] | None
    return_warehouse: str | None
    replacement: list[dict[str, Any]]
    received: list[dict[str, Any]]
    refund_id: str | None
    refund_amount: models.MoneyBody | None
    outbound_shipment: dict[str, Any] | None
    created_at: str
    updated_at: str
    timeline: list[TimelineBody]


class AfterSalesDetail(AfterSalesBody):
    photo_urls: list[models.PhotoLink] | None = Field(
        default=None, description="Staff only: short-lived GET URLs of the request's photos."
    )


class AfterSalesList(models.ResponseModel):
    items: list[AfterSalesBody]


class AfterSalesPage(models.ResponseModel):
    items: list[AfterSalesBody]
    next_cursor: str | None


def _optional(request: Any, model: type[models.RequestModel]) -> Any:
    if (request.raw_body or b"").strip():
        return model.model_validate(json_body(request))
    return model()


# --- views -------------------------------------------------------------------------------


@blueprint.route("/orders/{order_id}/after-sales", methods=["POST"], authorizer=authorizer)
@operation(
    "Ask for a refund, return, exchange or repair",
    description=(
        "The order's owner, on delivered lines, within each reason's window. 409 "
        "not_eligible with details.reason (not_delivered, window_closed, "
        "quantity_exceeds_eligible, reason_not_allowed, different_price). Idempotency-Key "
        "as on POST /orders. Photos are ids of your own uploads (POST /uploads)."
    ),
    tags=("after-sales",),
    request=CreateIn,
    responses={201: AfterSalesBody},
    errors=(422,),
    idempotent=True,
    headers={201: ("Location",)},
    path_params=ORDER_ID_PARAMETER,
)
def create_request(order_id: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    key = idempotency_key(request)
    body = parse_body(request, CreateIn)
    created = after_sales.create_request(
        caller.user_id,
        order_id,
        kind=AfterSalesType(body.type),
        lines=[line.to_domain() for line in body.lines],
        description=body.description,
        photos=body.photos or (),
        idempotency_key=key,
    )
    headers = {**JSON, "Location": f"/after-sales/{created.request_id}"}
    if created.replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(body=created.body, status_code=201, headers=headers)


@blueprint.route("/orders/{order_id}/after-sales", methods=["GET"], authorizer=authorizer)
@operation(
    "An order's after-sales requests",
    description="Newest first; for the order's owner, support and ops.",
    tags=("after-sales",),
    responses={200: AfterSalesList},
    path_params=ORDER_ID_PARAMETER,
)
def order_requests(order_id: str) -> dict[str, Any]:
    caller = require_groups(blueprint.current_request, CUSTOMERS, *STAFF)
    found = after_sales.requests_of_order(order_id, viewer_id=caller.user_id, staff=caller.is_staff)
    return {"items": [r.as_dict() for r in found]}


@blueprint.route("/after-sales/{request_id}", methods=["GET"], authorizer=authorizer)
@operation(
    "An after-sales request",
    description="For its owner, support and ops; 404 for anyone else. Staff also get "
    "short-lived links to its photos.",
    tags=("after-sales",),
    responses={200: AfterSalesDetail},
    path_params=REQUEST_ID_PARAMETER,
)
def get_request(request_id: str) -> dict[str, Any]:
    caller = require_groups(blueprint.current_request, CUSTOMERS, *STAFF)
    found = after_sales.get_request(request_id, viewer_id=caller.user_id, staff=caller.is_staff)
    body = found.as_dict()
    if caller.is_staff:
        body["photo_urls"] = uploads.photo_links(found.photos)
    return body


@blueprint.route("/after-sales", methods=["GET"], authorizer=authorizer)
@operation(
    "List after-sales requests",
    description="Support and ops; newest first, by status and type, a page at a time.",
    tags=("after-sales",),
    query=ListQuery,
    responses={200: AfterSalesPage},
)
def list_requests() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, *STAFF)
    params = ListQuery.model_validate(request.query_params or {})
    page = after_sales.list_requests(
        status=params.status.value if params.status else None,
        kind=params.type.value if params.type else None,
        cursor=params.cursor,
        limit=params.limit,
    )
    return {"items": [r.as_dict() for r in page.items], "next_cursor": page.next_cursor}


def _staff_action(summary: str, model: type[models.RequestModel], description: str) -> Any:
    return operation(
        summary,
        description=description,
        tags=("after-sales",),
        request=model,
        responses={200: AfterSalesBody},
        path_params=REQUEST_ID_PARAMETER,
    )


@blueprint.route("/after-sales/{request_id}/approve", methods=["POST"], authorizer=authorizer)
@_staff_action(
    "Approve a request",
    ApproveIn,
    "Support or ops. A refund_only request is refunded; an exchange reserves its "
    "replacement (409 out_of_stock when there is none).",
)
def approve(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, *STAFF)
    body = _optional(request, ApproveIn)
    if body.pickup:
        raise validation_error(
            "Pickup booking is not available with this shop's carrier.",
            [{"field": "pickup", "message": "not supported"}],
        )
    return after_sales.approve(
        request_id, actor=caller.user_id, note=body.note, return_warehouse=body.return_warehouse
    ).as_dict()


@blueprint.route("/after-sales/{request_id}/reject", methods=["POST"], authorizer=authorizer)
@_staff_action("Reject a request", RejectIn, "Support or ops, with a note for the customer.")
def reject(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, *STAFF)
    body = parse_body(request, RejectIn)
    return after_sales.reject(request_id, actor=caller.user_id, note=body.note).as_dict()


@blueprint.route("/after-sales/{request_id}/cancel", methods=["POST"], authorizer=authorizer)
@_staff_action("Cancel a request", NoteIn, "The customer, before the parcel is received.")
def cancel(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = _optional(request, NoteIn)
    return after_sales.cancel(request_id, customer_id=caller.user_id, note=body.note).as_dict()


@blueprint.route(
    "/after-sales/{request_id}/return-shipment", methods=["POST"], authorizer=authorizer
)
@_staff_action(
    "Report the return parcel",
    ReturnShipmentIn,
    "The customer, after approval: the carrier and tracking number of the parcel sent back.",
)
def return_shipment(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, ReturnShipmentIn)
    return after_sales_parcels.report_return_shipment(
        request_id,
        customer_id=caller.user_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
    ).as_dict()


@blueprint.route("/after-sales/{request_id}/receive", methods=["POST"], authorizer=authorizer)
@_staff_action(
    "Receive the returned parcel",
    ReceiveIn,
    "Ops: per line, restock (back on hand, ledger 'returned') or write off (ledger "
    "'written_off'). A return is refunded; a repair goes to repairing; an exchange ships.",
)
def receive(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = parse_body(request, ReceiveIn)
    lines = [
        ReceivedLine(line.sku, line.quantity, Disposition(line.disposition)) for line in body.lines
    ]
    return after_sales.receive(request_id, lines, actor=caller.user_id, note=body.note).as_dict()


@blueprint.route(
    "/after-sales/{request_id}/return-repaired", methods=["POST"], authorizer=authorizer
)
@_staff_action("Ship the repaired goods back", NoteIn, "Ops, once the repair is done.")
def return_repaired(request_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = _optional(request, NoteIn)
    return after_sales_parcels.return_repaired(
        request_id, actor=caller.user_id, note=body.note
    ).as_dict()
