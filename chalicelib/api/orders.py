"""Orders: customers place, read and cancel their own; staff (ops, support) read all, ops act.

A customer asking for someone else's order is told it does not exist (404), never that it
is forbidden, so order ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated, Any

from chalice import Blueprint, Response
from pydantic import Field, StringConstraints, model_validator

from chalicelib.api import models
from chalicelib.api.auth import CUSTOMERS, OPS, authorizer, principal, require_groups
from chalicelib.api.errors import forbidden
from chalicelib.api.openapi import operation
from chalicelib.api.requests import REPLAYED_HEADER, idempotency_key, json_body, parse_body
from chalicelib.domain import paging
from chalicelib.domain.orders import (
    MAX_LINES_PER_ORDER,
    MAX_QUANTITY_PER_LINE,
    OrderStatus,
    ShippingAddress,
)
from chalicelib.services import customers, orders

blueprint = Blueprint(__name__)

ORDER_ID_PARAMETER = {"order_id": {"type": "string", "pattern": models.ID_PATTERN}}
JSON = {"Content-Type": "application/json"}

# --- request models ----------------------------------------------------------------------

Sku = Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]
AddressText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]


class OrderLineIn(models.RequestModel):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_QUANTITY_PER_LINE)


class ShippingAddressIn(models.RequestModel):
    name: AddressText
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{4,24}$", examples=["+8613800000000"])
    country: str = Field(pattern=r"^[A-Z]{2}$", examples=["CN"])
    region: AddressText = Field(examples=["上海"])
    city: AddressText = Field(examples=["上海市"])
    line1: str = Field(min_length=1, max_length=200, pattern=r"\S")
    postcode: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$", examples=["200003"])
    location: models.LocationBody | None = Field(
        default=None,
        description="Optional; without it the city (else the region) places the address.",
    )

    def to_domain(self) -> ShippingAddress:
        return ShippingAddress(
            name=self.name.strip(),
            phone=self.phone,
            country=self.country,
            region=self.region.strip(),
            city=self.city.strip(),
            line1=self.line1.strip(),
            postcode=self.postcode,
            location=self.location.to_domain() if self.location else None,
        )


class PlaceOrderIn(models.RequestModel):
    """The body of POST /orders. Prices come from the catalogue, never from here."""

    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES_PER_ORDER)
    shipping_address: ShippingAddressIn
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _each_sku_once(self) -> PlaceOrderIn:
        skus = [line.sku for line in self.lines]
        repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
        if repeated:
            raise ValueError(f"each SKU may appear on one line only: {', '.join(repeated)}")
        return self


class CancelOrderIn(models.RequestModel):
    reason: str | None = Field(default=None, max_length=200)


class OrderListQuery(models.QueryModel):
    status: OrderStatus | None = None
    customer: str | None = Field(
        default=None,
        pattern=models.ID_PATTERN,
        description="Staff only; a customer may only name themselves.",
    )
    limit: int = Field(default=paging.DEFAULT_PAGE_SIZE, ge=1, le=paging.MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2048)


# --- response models (documentation of what ``Order.as_dict`` returns) ---------------------


class AllocationBody(models.ResponseModel):
    warehouse: str
    quantity: int


class OrderLineBody(models.ResponseModel):
    sku: str
    quantity: int
    unit_price: models.MoneyBody
    line_total: models.MoneyBody
    allocations: list[AllocationBody]


class ShipmentLineBody(models.ResponseModel):
    sku: str
    quantity: int


class ShipmentBody(models.ResponseModel):
    shipment_id: str
    warehouse: str
    status: str
    lines: list[ShipmentLineBody]


class HistoryEntryBody(models.ResponseModel):
    from_: str | None = Field(alias="from")
    to: str
    at: str
    actor: str
    reason: str | None
    shipment_id: str | None = None


class OrderBody(models.ResponseModel):
    order_id: str
    status: OrderStatus
    customer_id: str
    lines: list[OrderLineBody]
    shipments: list[ShipmentBody]
    shipping_address: dict[str, Any]
    subtotal: models.MoneyBody
    shipping_fee: models.MoneyBody
    total: models.MoneyBody
    note: str | None
    expires_at: str = Field(description="ISO 8601 UTC; unpaid, the order is released then.")
    created_at: str
    updated_at: str
    history: list[HistoryEntryBody]


class QuoteShipmentBody(models.ResponseModel):
    warehouse: str
    city: str
    estimated_delivery: models.DeliveryEstimateBody | None = Field(
        description="Null when the address cannot be placed on a map."
    )


class QuoteBody(models.ResponseModel):
    lines: list[OrderLineBody]
    shipments: list[QuoteShipmentBody]
    subtotal: models.MoneyBody
    shipping_fee: models.MoneyBody
    total: models.MoneyBody


class OrderPage(models.ResponseModel):
    items: list[OrderBody]
    next_cursor: str | None


# --- views -------------------------------------------------------------------------------


@blueprint.route("/orders", methods=["POST"], authorizer=authorizer)
@operation(
    "Place an order",
    description=(
        "Reserves stock from the nearest warehouses in one transaction. Send an "
        "Idempotency-Key header to retry safely: the same key and body answer with the "
        "original order (header Idempotent-Replayed: true); the same key with another body "
        "is a 422. 409 out_of_stock names every short SKU and changes nothing; it is only "
        "answered when a fresh read shows too little stock. 503 busy (header Retry-After) "
        "means the store stayed contended for the request's time budget: nothing was "
        "ordered, try again. Limits per customer (a replayed key is exempt): more than "
        "MAX_OPEN_UNPAID_ORDERS unpaid orders is 429 too_many_open_orders, more than "
        "MAX_HELD_UNITS_PER_SKU units of one SKU held by unpaid orders is 409 "
        "hold_limit_reached, more than 10 orders a minute is 429 rate_limited with Retry-After."
    ),
    tags=("orders",),
    request=PlaceOrderIn,
    responses={201: OrderBody},
    errors=(422, 429, 503),
    idempotent=True,
    headers={201: ("Location",)},
)
def place_order() -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    key = idempotency_key(request)
    body = parse_body(request, PlaceOrderIn)
    placement = orders.place_order(
        caller.user_id,
        body.lines,
        body.shipping_address.to_domain(),
        note=body.note,
        idempotency_key=key,
    )
    # The shopper's contact details from sign-in, so the order's notifications reach them.
    customers.get_profile(caller.user_id, caller.contact_claims)
    headers = {**JSON, "Location": f"/orders/{placement.order_id}"}
    if placement.replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(body=placement.body, status_code=201, headers=headers)


@blueprint.route("/orders/quote", methods=["POST"], authorizer=authorizer)
@operation(
    "Quote an order",
    description=(
        "What POST /orders would make of the same body now: prices, the warehouses each "
        "line ships from, the shipping fee and total, and each shipment's city and delivery "
        "estimate. Nothing is reserved or written. A shortage is 409 out_of_stock, exactly "
        "as when placing."
    ),
    tags=("orders",),
    request=PlaceOrderIn,
    responses={200: QuoteBody},
)
def quote_order() -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, PlaceOrderIn)
    quote = orders.quote_order(caller.user_id, body.lines, body.shipping_address.to_domain())
    return quote.as_dict()


@blueprint.route("/orders/{order_id}", methods=["GET"], authorizer=authorizer)
@operation(
    "An order",
    description="For its owner and for staff (ops, support); 404 for anyone else.",
    tags=("orders",),
    responses={200: OrderBody},
    path_params=ORDER_ID_PARAMETER,
)
def get_order(order_id: str) -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    order = orders.get_order(order_id, viewer_id=caller.user_id, staff=caller.is_staff)
    return order.as_dict()


@blueprint.route("/orders", methods=["GET"], authorizer=authorizer)
@operation(
    "List orders",
    description=(
        "Newest first. Customers see their own orders; staff see everyone's and may filter "
        "by status and customer."
    ),
    tags=("orders",),
    query=OrderListQuery,
    responses={200: OrderPage},
)
def list_orders() -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    params = OrderListQuery.model_validate(request.query_params or {})
    if not caller.is_staff and params.customer not in (None, caller.user_id):
        raise forbidden("Customers may list only their own orders.")
    page = orders.list_orders(
        viewer_id=caller.user_id,
        staff=caller.is_staff,
        status=params.status.value if params.status else None,
        customer=params.customer,
        cursor=params.cursor,
        limit=params.limit,
    )
    return {"items": [order.as_dict() for order in page.items], "next_cursor": page.next_cursor}


@blueprint.route("/orders/{order_id}/cancel", methods=["POST"], authorizer=authorizer)
@operation(
    "Cancel an order",
    description=(
        "The owner may cancel until anything has shipped; ops may cancel any order the state "
        "machine allows. Releases the reserved stock. Cancelling again is a no-op (200); "
        "after shipping it is 409 invalid_transition. The body is optional."
    ),
    tags=("orders",),
    request=CancelOrderIn,
    responses={200: OrderBody},
    path_params=ORDER_ID_PARAMETER,
)
def cancel_order(order_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS, OPS)
    reason = None
    if (request.raw_body or b"").strip():
        reason = CancelOrderIn.model_validate(json_body(request)).reason
    order = orders.cancel_order(
        order_id, actor_id=caller.user_id, is_ops=caller.can_write_ops, reason=reason
    )
    return order.as_dict()
