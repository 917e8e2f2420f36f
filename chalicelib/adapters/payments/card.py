"""Card payments on Stripe: PaymentIntents through the official ``stripe`` package.

A payment is one PaymentIntent created and confirmed in a single call, whose idempotency key
is our payment id (a retried request gets Stripe's first answer back) and whose metadata
names our payment and order. A card saved for later is a Stripe PaymentMethod attached to a
Stripe Customer: we keep only those two ids and what a person recognises (brand, last four
digits, expiry). Card numbers never pass through here: the storefront turns them into a
PaymentMethod with Stripe.js, and nothing below logs or returns one.

``STRIPE_API_BASE`` points the client at an emulator (localstripe on the local stack, see
``infra/local/emulators/localstripe_server.py``); empty means Stripe's own API.

3-D Secure: with a ``return_url`` Stripe answers ``redirect_to_url`` and ``next_action`` is
``{"type": "redirect", "url", "client_secret"}``; the shopper comes back to the return URL
with ``payment_intent`` and ``redirect_status`` in its query, and the webhook (or
``retrieve_payment``) tells the outcome. Without a return URL Stripe leaves the challenge to
Stripe.js: ``{"type": "use_stripe_sdk", "client_secret"}``.

Since API version 2023-08-16 Stripe refuses to confirm a PaymentIntent without a
``return_url`` unless it is ``off_session`` or names its ``payment_method_types``: a saved
card is confirmed off session, a new card with the server's return URL (the storefront's
order page), and without one the intent names ``card`` as its only method.

An answer that never came (timeout, connection error, 429, 5xx) says nothing about the
card: the error is ``retryable`` and the payment stays pending until the webhook or
``retrieve_payment`` tells. Without the PaymentIntent's id, ``retrieve_payment`` finds the
intent by our payment id in its metadata (Stripe's search). One call waits at most
``REQUEST_TIMEOUT_SECONDS`` and is retried once (same idempotency key), so the time spent on
Stripe inside one API request stays well inside API Gateway's 29 s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import stripe

from chalicelib.adapters.payments import (
    CARD,
    CardProvider,
    Notification,
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    SavedMethod,
    SettlementKind,
    SettlementRecord,
    WebhookReply,
)
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money
from chalicelib.settings import Settings

SIGNATURE_HEADER = "Stripe-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 10.0
NETWORK_RETRIES = 1  # 2 x 10 s: well inside API Gateway's 29 s
_SETTLEMENT_PAGE_SIZE = 100
_METADATA_VALUE_LIMIT = 500  # Stripe's limit for one metadata value
_METADATA_SEARCH_VALUE = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # safe inside a search query

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": ProviderStatus.SUCCEEDED,
    "payment_intent.payment_failed": ProviderStatus.FAILED,
    "payment_intent.requires_action": ProviderStatus.REQUIRES_ACTION,
    "payment_intent.processing": ProviderStatus.PENDING,
    "payment_intent.canceled": ProviderStatus.FAILED,
}
_REFUND_OBJECT_EVENTS = (
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
)
# What a Stripe webhook endpoint for this adapter subscribes to.
WEBHOOK_EVENTS = (*_PAYMENT_EVENTS, *_REFUND_OBJECT_EVENTS, "charge.refunded")
_REFUND_STATUSES = {
    "succeeded": ProviderStatus.SUCCEEDED,
    "pending": ProviderStatus.PENDING,
    "requires_action": ProviderStatus.PENDING,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.FAILED,
}
_CHARGE_LINES = ("charge", "payment")
_REFUND_LINES = ("refund", "payment_refund")
_ERROR_CODES: dict[type[stripe.StripeError], str] = {
    stripe.InvalidRequestError: "invalid_request",
    stripe.AuthenticationError: "authentication_failed",
    stripe.PermissionError: "permission_denied",
    stripe.IdempotencyError: "idempotency_conflict",
    stripe.APIError: "provider_unavailable",
}


class StripeCardProvider(CardProvider):
    """The card provider on Stripe's API (or an emulator of it, by base URL)."""

    name = CARD
    refund_needs_notify_url = False

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str = "",
        api_base: str = "",
        timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
        max_network_retries: int = NETWORK_RETRIES,
    ) -> None:
        # A client per provider, not stripe's module globals: settings stay per instance.
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else {},
            http_client=stripe.new_default_http_client(timeout=timeout_seconds),
            max_network_retries=max_network_retries,
        )
        self._webhook_secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeCardProvider:
        if not settings.stripe_api_key:
            raise ProviderError(
                "Card payments are not configured (STRIPE_API_KEY is empty).",
                code="not_configured",
            )
        return cls(
            settings.stripe_api_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
        )

    # --- payments ---

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        saved = request.saved_method
        payment_method = saved.provider_method_id if saved else request.payment_method
        if not payment_method:
            raise ProviderError("A card payment needs a payment method.", code="no_payment_method")
        save_now = request.save_for_later and saved is None
        params: dict[str, Any] = {
            "amount": request.amount.amount,
            "currency": request.amount.currency.lower(),
            "payment_method": payment_method,
            "confirm": True,
            "metadata": {"payment_id": request.payment_id, "order_id": request.order_id},
        }
        if request.description:
            params["description"] = request.description
        if saved is not None or save_now:
            params["customer"] = self._customer_for(request)
        if save_now:
            params["setup_future_usage"] = "off_session"
            params["expand"] = ["payment_method"]
        if saved is not None:
            params["off_session"] = True  # the shopper is not there to authenticate again
        elif request.return_url:
            params["return_url"] = request.return_url  # where 3-D Secure comes back to
        else:
            params["payment_method_types"] = ["card"]  # no redirect-based methods
        try:
            intent = self._client.v1.payment_intents.create(
                params, {"idempotency_key": request.payment_id}
            ).to_dict()
        except stripe.CardError as exc:
            return self._declined(exc, request)
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc
        payment = _payment_from_intent(intent)
        if save_now and payment.status is ProviderStatus.SUCCEEDED:
            return _with_saved_method(payment, self._saved_method(intent))
        return payment

    def retrieve_payment(self, payment_id: str, provider_payment_id: str) -> ProviderPayment:
        """The PaymentIntent as Stripe has it; without its id, the one whose metadata names
        ``payment_id`` (``ProviderError`` ``payment_not_found`` when there is none)."""
        if not provider_payment_id:
            return _payment_from_intent(self._intent_for_payment(payment_id))
        intent = self._call(self._client.v1.payment_intents.retrieve, provider_payment_id)
        named = (intent.get("metadata") or {}).get("payment_id")
        if named and named != payment_id:
            raise ProviderError(
                f"PaymentIntent {provider_payment_id} belongs to payment {named}, "
                f"not {payment_id}.",
                code="payment_mismatch",
            )
        return _payment_from_intent(intent)

    def _intent_for_payment(self, payment_id: str) -> dict[str, Any]:
        if not _METADATA_SEARCH_VALUE.fullmatch(payment_id):
            raise ProviderError("Not a payment id to search for.", code="invalid_request")
        found = self._call(
            self._client.v1.payment_intents.search,
            {"query": f"metadata['payment_id']:'{payment_id}'", "limit": 1},
        )
        intents = found.get("data") or []
        if not intents:
            raise ProviderError(
                f"Stripe has no PaymentIntent for payment {payment_id}.",
                code="payment_not_found",
            )
        return dict(intents[0])

    def _customer_for(self, request: PaymentRequest) -> str:
        if request.saved_method is not None:
            return request.saved_method.provider_customer_id  # the card is attached there
        if request.provider_customer_id:
            return request.provider_customer_id
        params = {"email": request.customer_email} if request.customer_email else {}
        customer = self._call(
            self._client.v1.customers.create,
            params,
            {"idempotency_key": f"{request.payment_id}-customer"},
        )
        return str(customer["id"])

    def _declined(self, exc: stripe.CardError, request: PaymentRequest) -> ProviderPayment:
        error = (exc.json_body or {}).get("error") or {}
        intent = error.get("payment_intent") or {}
        provider_payment_id = intent.get("id") or self._intent_of_charge(error.get("charge"))
        return ProviderPayment(
            provider_payment_id=provider_payment_id,
            status=ProviderStatus.FAILED,
            amount=request.amount,
            failure_code=error.get("decline_code") or error.get("code") or "card_declined",
            failure_message=error.get("message") or "The card was declined.",
        )

    def _intent_of_charge(self, charge_id: str | None) -> str:
        # Stripe puts the PaymentIntent in a decline; localstripe only names the charge.
        if not charge_id:
            return ""
        try:
            charge = self._client.v1.charges.retrieve(charge_id).to_dict()
        except stripe.StripeError:
            return charge_id
        return _id_of(charge.get("payment_intent")) or charge_id

    def _saved_method(self, intent: dict[str, Any]) -> SavedMethod:
        method = intent.get("payment_method")
        if not isinstance(method, dict):
            method = self._call(self._client.v1.payment_methods.retrieve, str(method))
        card = method.get("card") or {}
        return SavedMethod(
            provider_customer_id=_id_of(intent.get("customer")) or _id_of(method.get("customer")),
            provider_method_id=str(method["id"]),
            brand=str(card.get("brand") or ""),
            last4=str(card.get("last4") or ""),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
        )

    # --- refunds and saved cards ---

    def refund(self, request: RefundRequest) -> ProviderRefund:
        metadata = {"refund_id": request.refund_id, "payment_id": request.payment_id}
        if request.reason:
            metadata["reason"] = request.reason[:_METADATA_VALUE_LIMIT]
        refund = self._call(
            self._client.v1.refunds.create,
            {
                "payment_intent": request.provider_payment_id,
                "amount": request.amount.amount,
                "metadata": metadata,
            },
            {"idempotency_key": request.refund_id},
        )
        return ProviderRefund(
            provider_refund_id=str(refund["id"]),
            status=_REFUND_STATUSES.get(str(refund.get("status")), ProviderStatus.PENDING),
            amount=Money(int(refund["amount"]), str(refund["currency"]).upper()),
        )

    def detach_method(self, method: SavedMethod) -> None:
        self._call(self._client.v1.payment_methods.detach, method.provider_method_id)

    # --- notifications ---

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise NotificationRejected(f"The {SIGNATURE_HEADER} header is missing.")
        try:
            event = stripe.Webhook.construct_event(
                body, signature, self._webhook_secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            ).to_dict()
        except stripe.SignatureVerificationError as exc:
            raise NotificationRejected(exc.user_message or "Bad signature.") from None
        except ValueError:  # not UTF-8, not JSON, not an event
            raise NotificationRejected("The body is not a Stripe event.") from None
        try:
            return _notification_from_event(event)
        except (KeyError, TypeError, ValueError, AttributeError, InvalidInput):
            raise NotificationRejected("The event is malformed.") from None

    def acknowledge(self) -> WebhookReply:
        return WebhookReply(200, json.dumps({"received": True}))

    def reject(self, message: str) -> WebhookReply:
        body = {"error": "notification_rejected", "message": message, "details": None}
        return WebhookReply(401, json.dumps(body))

    # --- settlement ---

    def settlement(self, day: date) -> list[SettlementRecord]:
        """The balance transactions created on ``day`` in UTC (Stripe's timestamps are UTC
        epochs): charges as payments, refunds as refunds; payouts and the like are left out."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        since, until = int(start.timestamp()), int((start + timedelta(days=1)).timestamp())
        params: dict[str, Any] = {
            "limit": _SETTLEMENT_PAGE_SIZE,
            "created": {"gte": since, "lt": until},
            "expand": ["data.source", "data.source.payment_intent"],
        }
        records: list[SettlementRecord] = []
        while True:
            page = self._call(self._client.v1.balance_transactions.list, params)
            lines = page.get("data") or []
            for line in lines:
                if since <= int(line["created"]) < until:  # whatever the server filtered
                    record = self._settlement_record(line)
                    if record is not None:
                        records.append(record)
            if not page.get("has_more") or not lines:
                return records
            params = {**params, "starting_after": lines[-1]["id"]}

    def _settlement_record(self, line: dict[str, Any]) -> SettlementRecord | None:
        """A balance transaction as a settlement line. The transaction is in the account's
        settlement currency (converted at its ``exchange_rate``), so the line's ``amount``
        is the charge's or refund's own, and the settled amount and fee go beside it."""
        kind = str(line.get("type"))
        currency = str(line["currency"]).upper()
        common: dict[str, Any] = {
            "provider": CARD,
            "settlement": Money(abs(int(line["amount"])), currency),
            "fee": Money(int(line.get("fee") or 0), currency),
            "settled_at": datetime.fromtimestamp(int(line["created"]), UTC),
        }
        details: dict[str, Any] = {
            "balance_transaction": line["id"],
            "net": line.get("net"),
            "exchange_rate": line.get("exchange_rate"),
        }
        source = line.get("source")
        if kind in _CHARGE_LINES:
            charge = source if isinstance(source, dict) else self._charge(str(source))
            intent = charge.get("payment_intent")
            if isinstance(intent, str):
                intent = self._call(self._client.v1.payment_intents.retrieve, intent)
            intent = intent or {}
            return SettlementRecord(
                kind=SettlementKind.PAYMENT,
                reference=(intent.get("metadata") or {}).get("payment_id"),
                provider_reference=str(intent.get("id") or charge["id"]),
                amount=_own_amount(charge),
                details={**details, "charge": charge["id"]},
                **common,
            )
        if kind in _REFUND_LINES:
            refund = (
                source
                if isinstance(source, dict)
                else self._call(self._client.v1.refunds.retrieve, str(source))
            )
            return SettlementRecord(
                kind=SettlementKind.REFUND,
                reference=(refund.get("metadata") or {}).get("refund_id"),
                provider_reference=str(refund["id"]),
                amount=_own_amount(refund),
                details={**details, "payment_intent": _id_of(refund.get("payment_intent"))},
                **common,
            )
        return None

    def _charge(self, charge_id: str) -> dict[str, Any]:
        return self._call(
            self._client.v1.charges.retrieve, charge_id, {"expand": ["payment_intent"]}
        )

    # --- calling Stripe ---

    @staticmethod
    def _call(operation: Any, *args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = operation(*args).to_dict()
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc
        return result


def _provider_error(exc: stripe.StripeError) -> ProviderError:
    # No answer, 429 or 5xx: Stripe may have done it; the same idempotency key asks again.
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500
    )
    if isinstance(exc, stripe.APIConnectionError):
        code = "connection_error"
    elif isinstance(exc, stripe.RateLimitError):
        code = "rate_limited"
    else:
        code = exc.code or _ERROR_CODES.get(type(exc), "provider_error")
    return ProviderError(
        exc.user_message or "Stripe refused the request.", code=code, retryable=retryable
    )


def _payment_from_intent(intent: dict[str, Any]) -> ProviderPayment:
    status = str(intent.get("status"))
    common: dict[str, Any] = {
        "provider_payment_id": str(intent["id"]),
        "amount": Money(int(intent["amount"]), str(intent["currency"]).upper()),
    }
    if status == "succeeded":
        return ProviderPayment(status=ProviderStatus.SUCCEEDED, **common)
    if status == "requires_action":
        return ProviderPayment(
            status=ProviderStatus.REQUIRES_ACTION, next_action=_next_action(intent), **common
        )
    error = intent.get("last_payment_error") or {}
    if status == "canceled" or (status == "requires_payment_method" and error):
        return ProviderPayment(
            status=ProviderStatus.FAILED,
            failure_code=error.get("decline_code")
            or error.get("code")
            or intent.get("cancellation_reason")
            or status,
            failure_message=error.get("message") or f"The payment is {status}.",
            **common,
        )
    # processing, requires_confirmation, requires_capture, or not yet given a card
    return ProviderPayment(status=ProviderStatus.PENDING, **common)


def _next_action(intent: dict[str, Any]) -> dict[str, Any]:
    """Where the shopper goes to authenticate: a URL when Stripe gives one, else Stripe.js."""
    action = intent.get("next_action") or {}
    url = None
    if action.get("type") == "redirect_to_url":
        url = (action.get("redirect_to_url") or {}).get("url")
    elif action.get("type") == "use_stripe_sdk":
        sdk = action.get("use_stripe_sdk") or {}
        if sdk.get("type") == "three_d_secure_redirect":
            url = sdk.get("stripe_js")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "redirect", "url": url, "client_secret": intent.get("client_secret")}
    return {"type": "use_stripe_sdk", "client_secret": intent.get("client_secret")}


def _with_saved_method(payment: ProviderPayment, method: SavedMethod) -> ProviderPayment:
    return ProviderPayment(
        provider_payment_id=payment.provider_payment_id,
        status=payment.status,
        amount=payment.amount,
        next_action=payment.next_action,
        saved_method=method,
    )


def _notification_from_event(event: dict[str, Any]) -> Notification:
    event_type = str(event["type"])
    subject = event["data"]["object"]
    common: dict[str, Any] = {
        "provider": CARD,
        "event_id": str(event["id"]),
        "occurred_at": datetime.fromtimestamp(int(event["created"]), UTC),
        "event_type": event_type,
    }
    if event_type in _PAYMENT_EVENTS:
        status = _PAYMENT_EVENTS[event_type]
        error = (subject.get("last_payment_error") or {}) if status is ProviderStatus.FAILED else {}
        return Notification(
            kind=NotificationKind.PAYMENT,
            status=status,
            payment_id=(subject.get("metadata") or {}).get("payment_id"),
            provider_payment_id=str(subject["id"]),
            amount=Money(
                int(subject.get("amount_received") or subject["amount"]),
                str(subject["currency"]).upper(),
            ),
            failure_code=error.get("decline_code") or error.get("code"),
            failure_message=error.get("message"),
            **common,
        )
    if event_type in _REFUND_OBJECT_EVENTS and subject.get("object") == "refund":
        return _refund_notification(subject, _id_of(subject.get("payment_intent")), common)
    if event_type == "charge.refunded":
        refunds = (subject.get("refunds") or {}).get("data") or []
        intent_id = _id_of(subject.get("payment_intent"))
        if refunds:  # newest first
            return _refund_notification(refunds[0], intent_id, common)
        return Notification(  # newer API versions leave the refunds out of the charge
            kind=NotificationKind.REFUND,
            status=ProviderStatus.SUCCEEDED,
            payment_id=(subject.get("metadata") or {}).get("payment_id"),
            provider_payment_id=intent_id or None,
            amount=Money(int(subject["amount_refunded"]), str(subject["currency"]).upper()),
            **common,
        )
    return Notification(
        kind=NotificationKind.OTHER,
        status=ProviderStatus.PENDING,
        payment_id=None,
        provider_payment_id=None,
        amount=None,
        **common,
    )


def _refund_notification(
    refund: dict[str, Any], intent_id: str, common: dict[str, Any]
) -> Notification:
    metadata = refund.get("metadata") or {}
    status = _REFUND_STATUSES.get(str(refund.get("status")), ProviderStatus.PENDING)
    return Notification(
        kind=NotificationKind.REFUND,
        status=status,
        payment_id=metadata.get("payment_id"),
        provider_payment_id=intent_id or None,
        amount=Money(int(refund["amount"]), str(refund["currency"]).upper()),
        refund_id=metadata.get("refund_id"),
        provider_refund_id=str(refund["id"]),
        failure_code=refund.get("failure_reason") if status is ProviderStatus.FAILED else None,
        **common,
    )


def _own_amount(charge_or_refund: dict[str, Any]) -> Money:
    return Money(abs(int(charge_or_refund["amount"])), str(charge_or_refund["currency"]).upper())


def _id_of(value: Any) -> str:
    """A Stripe reference, whether it came as an id or expanded into its object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value) if value else ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
