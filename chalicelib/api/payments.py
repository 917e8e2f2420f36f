"""Payments: pay an order, refund it, quick pay with saved cards, and the providers' webhooks.

The webhooks carry no bearer token: each provider signs its notifications, and the
signature is verified before anything in the body is trusted (``services.payments``).
"""

from __future__ import annotations

from typing import Any, Literal

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import CUSTOMERS, FINANCE, OPS, authorizer, principal, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.orders import ORDER_ID_PARAMETER
from chalicelib.api.requests import REPLAYED_HEADER, idempotency_key, parse_body
from chalicelib.domain.money import Money
from chalicelib.services import payments, reconciliation, refunds

blueprint = Blueprint(__name__)

JSON = {"Content-Type": "application/json"}
PaymentMethodName = Literal["card", "alipay", "wechat_pay"]
ProviderToken = Field(default=None, pattern=r"^[A-Za-z0-9_]{3,255}$")


class PayIn(models.RequestModel):
    """For a card, exactly one of ``payment_method`` (a provider token such as ``pm_...``)
    and ``saved_payment_method_id``; ``save_for_later`` only for a new card."""

    method: PaymentMethodName
    payment_method: str | None = ProviderToken
    saved_payment_method_id: str | None = Field(default=None, pattern=models.ID_PATTERN)
    save_for_later: bool = False


class FailureBody(models.ResponseModel):
    code: str
    message: str


class PaymentBody(models.ResponseModel):
    payment_id: str
    order_id: str
    method: PaymentMethodName
    status: Literal[
        "pending", "requires_action", "succeeded", "failed", "partially_refunded", "refunded"
    ]
    amount: models.MoneyBody
    captured: models.MoneyBody | None
    refunded: models.MoneyBody | None
    failure: FailureBody | None
    next_action: dict[str, Any] | None = Field(
        description='null, {"type": "redirect", "url"} or {"type": "qr_code", "code_url"}.'
    )
    review: dict[str, Any] | None
    created_at: str
    updated_at: str


class PaymentList(models.ResponseModel):
    items: list[PaymentBody]


class RefundIn(models.RequestModel):
    amount: models.Price
    reason: str = Field(min_length=1, max_length=200, pattern=r"\S")


class RefundBody(models.ResponseModel):
    refund_id: str
    payment_id: str
    order_id: str
    status: Literal["pending", "succeeded", "failed"]
    amount: models.MoneyBody
    reason: str
    automatic: bool
    failure: FailureBody | None
    created_at: str
    updated_at: str


class RefundList(models.ResponseModel):
    items: list[RefundBody]


class SavedMethodBody(models.ResponseModel):
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class SavedMethodList(models.ResponseModel):
    items: list[SavedMethodBody]


class ReconciliationQuery(models.QueryModel):
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")


class ReconciliationBody(models.ResponseModel):
    date: str
    generated_at: str
    providers: dict[str, dict[str, int]]
    items: list[dict[str, Any]]


def _created(body: dict[str, Any], location: str, replayed: bool) -> Response:
    headers = {**JSON, "Location": location}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(body=body, status_code=201, headers=headers)


@blueprint.route("/orders/{order_id}/payments", methods=["POST"], authorizer=authorizer)
@operation(
    "Pay for an order",
    description=(
        "The owner pays a pending_payment order by card, Alipay or WeChat Pay. A card "
        "usually succeeds (or fails) at once; 3-D Secure answers requires_action with a "
        "redirect; Alipay and WeChat Pay answer pending with a QR code, and the provider's "
        "notification completes the payment. Send an Idempotency-Key to retry safely. "
        "409 invalid_transition when the order is not waiting for payment; 503 "
        "payments_unavailable for Alipay and WeChat Pay while the API's public URL is "
        "not configured. A card payment whose outcome Stripe did not tell stays pending "
        "until its webhook or the resolving sweep says. More than 10 payments started a "
        "minute is 429 rate_limited with Retry-After."
    ),
    tags=("payments",),
    request=PayIn,
    responses={201: PaymentBody},
    errors=(422, 429, 503),
    idempotent=True,
    headers={201: ("Location",)},
    path_params=ORDER_ID_PARAMETER,
)
def pay_order(order_id: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    key = idempotency_key(request)
    body = parse_body(request, PayIn)
    attempt = payments.start_payment(
        order_id,
        customer_id=caller.user_id,
        method=body.method,
        payment_method=body.payment_method,
        saved_payment_method_id=body.saved_payment_method_id,
        save_for_later=body.save_for_later,
        idempotency_key=key,
    )
    payment = attempt.payment
    location = f"/orders/{order_id}/payments/{payment.payment_id}"
    return _created(payment.as_dict(), location, attempt.replayed)


@blueprint.route("/orders/{order_id}/payments", methods=["GET"], authorizer=authorizer)
@operation(
    "An order's payments",
    description="Every payment attempt, oldest first; for the owner and staff.",
    tags=("payments",),
    responses={200: PaymentList},
    path_params=ORDER_ID_PARAMETER,
)
def list_payments(order_id: str) -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    found = payments.payments_for_order(
        order_id, viewer_id=caller.user_id, staff=caller.is_staff or caller.in_any(FINANCE)
    )
    return {"items": [payment.as_dict() for payment in found]}


@blueprint.route("/orders/{order_id}/refunds", methods=["POST"], authorizer=authorizer)
@operation(
    "Refund an order",
    description=(
        "Ops refund part or all of what the order's payment captured, through its provider. "
        "Never more than captured minus already refunded (409 refund_exceeds_captured, also "
        "when two requests race). Send an Idempotency-Key to retry safely."
    ),
    tags=("payments",),
    request=RefundIn,
    responses={201: RefundBody},
    errors=(422,),
    idempotent=True,
    headers={201: ("Location",)},
    path_params=ORDER_ID_PARAMETER,
)
def refund_order(order_id: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    key = idempotency_key(request)
    body = parse_body(request, RefundIn)
    outcome = refunds.request_refund(
        order_id,
        amount=Money(body.amount.amount, body.amount.currency),
        reason=body.reason.strip(),
        actor_id=caller.user_id,
        idempotency_key=key,
    )
    refund = outcome.refund
    location = f"/orders/{order_id}/refunds/{refund.refund_id}"
    return _created(refund.as_dict(), location, outcome.replayed)


@blueprint.route("/orders/{order_id}/refunds", methods=["GET"], authorizer=authorizer)
@operation(
    "An order's refunds",
    tags=("payments",),
    responses={200: RefundList},
    path_params=ORDER_ID_PARAMETER,
)
def list_refunds(order_id: str) -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    found = refunds.refunds_for_order(
        order_id, viewer_id=caller.user_id, staff=caller.is_staff or caller.in_any(FINANCE)
    )
    return {"items": [refund.as_dict() for refund in found]}


@blueprint.route("/me/payment-methods", methods=["GET"], authorizer=authorizer)
@operation(
    "My saved cards",
    description="Only the provider's tokens are kept, with brand, last four digits and expiry.",
    tags=("payments",),
    responses={200: SavedMethodList},
)
def list_saved_methods() -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    return {"items": [m.as_dict() for m in payments.saved_methods(caller.user_id)]}


@blueprint.route("/me/payment-methods/{method_id}", methods=["DELETE"], authorizer=authorizer)
@operation(
    "Forget a saved card",
    tags=("payments",),
    responses={204: None},
    path_params={"method_id": {"type": "string", "pattern": models.ID_PATTERN}},
)
def delete_saved_method(method_id: str) -> Response:
    caller = principal(blueprint.current_request)
    payments.forget_saved_method(caller.user_id, method_id)
    return Response(body="", status_code=204)


@blueprint.route(
    "/webhooks/payments/{provider}",
    methods=["POST"],
    content_types=["application/json", "application/x-www-form-urlencoded", "text/plain"],
)
@operation(
    "Payment provider notifications",
    description=(
        "card (Stripe-Signature), alipay (RSA2 form post, answered with the text success), "
        "wechat_pay (Wechatpay-* headers, AES-256-GCM resource). Verified before anything "
        "in the body is trusted; forged, malformed or stale: 401 in the provider's shape."
    ),
    tags=("webhooks",),
    # Replies (and 401 refusals) are in each provider's own shape, not ours.
    responses={200: None, 401: None},
    auth="none",
    path_params={"provider": {"type": "string", "enum": ["card", "alipay", "wechat_pay"]}},
)
def payment_webhook(provider: str) -> Response:
    request = blueprint.current_request
    reply = payments.receive_notification(
        provider, dict(request.headers or {}), request.raw_body or b""
    )
    return Response(
        body=reply.body, status_code=reply.status_code, headers={"Content-Type": reply.content_type}
    )


@blueprint.route("/ops/reconciliation", methods=["GET"], authorizer=authorizer)
@operation(
    "Settlement reconciliation for a day",
    description=(
        "What the daily job found comparing each provider's settlement data with our "
        "payments and refunds: missing_at_provider, missing_in_records, amount_mismatch, "
        "duplicate. 404 until the day has been reconciled. Ops and finance."
    ),
    tags=("payments",),
    query=ReconciliationQuery,
    responses={200: ReconciliationBody},
    errors=(404,),
)
def get_reconciliation() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS, FINANCE)
    query = ReconciliationQuery.model_validate(request.query_params or {})
    return reconciliation.report_for(query.date)
