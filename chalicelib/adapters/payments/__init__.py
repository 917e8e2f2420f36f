"""Payment providers behind one small interface: card (Stripe), Alipay and WeChat Pay.

Each provider module holds the real client for that provider's wire format; its base URL
comes from configuration, so the same code talks to the real provider in AWS and to an
emulator on the local stack. Services see only the types below, never a provider's
payloads, and every amount is ``Money`` in minor units (fen, cents).

A provider's notification is verified (``verify_notification``) before anything in it is
read; a forged, stale or malformed one raises ``NotificationRejected`` and the webhook
answers with the provider's own failure reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.domain.money import Money

CARD = "card"
ALIPAY = "alipay"
WECHAT_PAY = "wechat_pay"
PROVIDERS = (CARD, ALIPAY, WECHAT_PAY)


class ProviderStatus(StrEnum):
    """Where a payment or refund stands at the provider, in our words."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class NotificationRejected(Exception):
    """A notification that is not provably from the provider (bad or missing signature,
    unknown key serial, stale timestamp, undecryptable or malformed body)."""


class ProviderError(Exception):
    """The provider refused a request or could not be reached; ``code`` is its own code."""

    def __init__(self, message: str, *, code: str = "provider_error", retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A reusable card at the provider: only its tokens and what a person recognises."""

    provider_customer_id: str
    provider_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    payment_id: str  # ours; the provider's merchant reference (out_trade_no, metadata)
    order_id: str
    amount: Money
    description: str
    notify_url: str  # where the provider posts notifications (Alipay, WeChat Pay)
    return_url: str | None = None  # where a redirect flow returns the shopper
    # When the order stops waiting for this payment; providers that can close the trade
    # then do (Alipay, WeChat Pay), so it cannot be paid after the order has let go.
    expires_at: datetime | None = None
    # card only
    payment_method: str | None = None  # a one-off provider token, e.g. pm_...
    saved_method: SavedMethod | None = None  # quick pay: completes in one call
    save_for_later: bool = False
    provider_customer_id: str | None = None  # reuse the shopper's provider customer
    customer_email: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    provider_payment_id: str  # pi_..., Alipay trade_no / our out_trade_no, WeChat prepay id
    status: ProviderStatus
    amount: Money
    next_action: dict[str, Any] | None = None  # {"type": "redirect", "url"} / qr_code
    failure_code: str | None = None
    failure_message: str | None = None
    saved_method: SavedMethod | None = None  # set when save_for_later succeeded


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: str  # ours; the provider's out_request_no / out_refund_no / idempotency key
    payment_id: str
    provider_payment_id: str
    amount: Money
    payment_amount: Money  # the captured total (WeChat Pay requires it)
    reason: str
    notify_url: str


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    provider_refund_id: str
    status: ProviderStatus  # pending (provider still processing), succeeded, failed
    amount: Money


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    OTHER = "other"  # verified but nothing we act on (e.g. customer.created)


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified notification, reduced to what we act on."""

    provider: str
    event_id: str  # the provider's own id: what makes the webhook idempotent
    kind: NotificationKind
    status: ProviderStatus
    payment_id: str | None  # ours, from the merchant reference
    provider_payment_id: str | None
    amount: Money | None
    refund_id: str | None = None  # ours, for refund notifications
    provider_refund_id: str | None = None
    occurred_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    event_type: str = ""  # the provider's own name for it, for logs


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """What the webhook answers the provider, in the shape it expects."""

    status_code: int
    body: str
    content_type: str = "application/json"


class SettlementKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One line of a provider's settlement data for a day."""

    provider: str
    kind: SettlementKind
    reference: str | None  # our payment_id (or refund_id for refunds) when the line names it
    provider_reference: str  # the provider's transaction / trade / refund number
    amount: Money  # positive, in the payment's own currency; a refund is one by its kind
    fee: Money | None = None  # in the settlement currency
    # What reached the balance, in the account's settlement currency (Stripe converts a
    # charge in another currency at details["exchange_rate"]); None when it is ``amount``.
    settlement: Money | None = None
    settled_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str
    # Whether a refund request carries the URL its outcome is posted to (WeChat Pay); the
    # others notify at the payment's URL (Alipay) or a dashboard-configured one (Stripe).
    refund_needs_notify_url: bool

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Start (card: and confirm) a payment for ``request.amount``; idempotent per
        ``request.payment_id``."""
        ...

    def retrieve_payment(self, payment_id: str, provider_payment_id: str) -> ProviderPayment:
        """The payment as the provider has it now (query)."""
        ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify, then parse; raises ``NotificationRejected``. ``headers`` are matched
        case-insensitively."""
        ...

    def acknowledge(self) -> WebhookReply:
        """The reply that tells the provider the notification was recorded."""
        ...

    def reject(self, message: str) -> WebhookReply:
        """The reply for a notification we could not accept (it may retry)."""
        ...

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund part or all of a captured payment; idempotent per ``request.refund_id``."""
        ...

    def settlement(self, day: date) -> list[SettlementRecord]:
        """The provider's settlement lines for ``day`` (its own time zone's day)."""
        ...


class CardProvider(PaymentProvider, Protocol):
    def detach_method(self, method: SavedMethod) -> None:
        """Forget a saved card at the provider."""
        ...
