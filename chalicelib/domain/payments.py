"""Payments and refunds: what a shopper paid for an order, through which provider, and
what was given back.

A ``Payment`` is one attempt to pay one order. Its status only moves forward:

    pending -> requires_action -> succeeded -> partially_refunded -> refunded
    pending | requires_action -> failed

A notification that arrives late or twice (``requires_action`` after ``succeeded``) changes
nothing. Refunds are counted against what was captured: ``refund_committed`` is the sum
of every refund that is under way or done, so a new refund can never take the total past
the captured amount, not even when two are requested at once (the store guards the sum
with a conditional write).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import Conflict, InvalidInput, InvalidTransition
from chalicelib.domain.money import Money

METHODS = ("card", "alipay", "wechat_pay")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_P = PaymentStatus
_PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.PENDING: frozenset({_P.REQUIRES_ACTION, _P.SUCCEEDED, _P.FAILED}),
    _P.REQUIRES_ACTION: frozenset({_P.SUCCEEDED, _P.FAILED}),
    _P.SUCCEEDED: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED}),
    _P.PARTIALLY_REFUNDED: frozenset({_P.REFUNDED}),
    _P.FAILED: frozenset(),
    _P.REFUNDED: frozenset(),
}
CAPTURED_STATUSES = frozenset({_P.SUCCEEDED, _P.PARTIALLY_REFUNDED, _P.REFUNDED})
OPEN_STATUSES = frozenset({_P.PENDING, _P.REQUIRES_ACTION})


class RefundExceedsCaptured(Conflict):
    """A refund would take the refunded total past what the payment captured."""

    code = "refund_exceeds_captured"


class NothingToRefund(Conflict):
    """The order has no captured payment to refund."""

    code = "refund_exceeds_captured"


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ReviewFlag:
    """Why a captured payment did not pay its order and needs a person (e.g. amount)."""

    reason: str
    expected: Money
    received: Money

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "expected": self.expected.as_dict(),
            "received": self.received.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    order_id: str
    customer_id: str
    method: str
    amount: Money  # what the order asked for
    status: PaymentStatus
    created_at: datetime
    updated_at: datetime
    provider_payment_id: str | None = None
    captured: Money | None = None  # what the provider says it took
    captured_at: datetime | None = None
    refunded: Money | None = None  # refunds that succeeded
    refund_committed: Money | None = None  # refunds under way or done
    next_action: dict[str, Any] | None = None
    failure: Failure | None = None
    review: ReviewFlag | None = None
    saved_method_id: str | None = None
    version: int = 1

    @classmethod
    def start(
        cls,
        *,
        payment_id: str,
        order_id: str,
        customer_id: str,
        method: str,
        amount: Money,
        at: datetime,
        saved_method_id: str | None = None,
    ) -> Payment:
        if method not in METHODS:
            raise InvalidInput(f"method must be one of {', '.join(METHODS)}.")
        if not amount.amount > 0:
            raise InvalidInput("A payment is for a positive amount.")
        return cls(
            payment_id=payment_id,
            order_id=order_id,
            customer_id=customer_id,
            method=method,
            amount=amount,
            status=PaymentStatus.PENDING,
            created_at=at,
            updated_at=at,
            saved_method_id=saved_method_id,
        )

    # -- questions -----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_captured(self) -> bool:
        return self.status in CAPTURED_STATUSES

    def can_move_to(self, status: PaymentStatus) -> bool:
        return status in _PAYMENT_TRANSITIONS[self.status]

    @property
    def refundable(self) -> Money:
        """What may still be refunded: captured minus every refund under way or done."""
        if self.captured is None:
            return Money.zero(self.amount.currency)
        committed = self.refund_committed or Money.zero(self.amount.currency)
        return self.captured - committed

    # -- changes -------------------------------------------------------------------------

    def advance(
        self,
        to: PaymentStatus,
        *,
        at: datetime,
        provider_payment_id: str | None = None,
        next_action: dict[str, Any] | None = None,
        failure: Failure | None = None,
    ) -> Payment:
        """One step forward; the same status again only fills in what was missing."""
        if to is self.status:
            return replace(
                self,
                provider_payment_id=self.provider_payment_id or provider_payment_id,
                next_action=next_action if next_action is not None else self.next_action,
                updated_at=at,
                version=self.version + 1,
            )
        if not self.can_move_to(to):
            raise InvalidTransition.between(self.status, to)
        return replace(
            self,
            status=to,
            provider_payment_id=provider_payment_id or self.provider_payment_id,
            next_action=next_action if to is PaymentStatus.REQUIRES_ACTION else None,
            failure=failure if to is PaymentStatus.FAILED else None,
            updated_at=at,
            version=self.version + 1,
        )

    def capture(
        self,
        received: Money,
        *,
        at: datetime,
        provider_payment_id: str | None,
        expected: Money | None = None,
    ) -> Payment:
        """The provider took ``received``. If it is not what the order asked for
        (``expected``, by default this payment's amount), the payment is flagged for review."""
        if self.status not in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION):
            raise InvalidTransition.between(self.status, PaymentStatus.SUCCEEDED)
        wanted = expected or self.amount
        review = None if received == wanted else ReviewFlag("amount_mismatch", wanted, received)
        captured = self.advance(
            PaymentStatus.SUCCEEDED, at=at, provider_payment_id=provider_payment_id
        )
        zero = Money.zero(received.currency)
        return replace(
            captured,
            captured=received,
            captured_at=at,
            refunded=zero,
            refund_committed=zero,
            review=review,
        )

    def commit_refund(self, amount: Money, *, at: datetime) -> Payment:
        """Set ``amount`` aside for a new refund, or raise ``RefundExceedsCaptured``."""
        if not amount.amount > 0:
            raise InvalidInput("A refund is for a positive amount.")
        if not self.is_captured:
            raise RefundExceedsCaptured(
                f"Payment {self.payment_id} has captured nothing to refund.",
                {"payment_id": self.payment_id, "refundable": self.refundable.as_dict()},
            )
        if amount.currency != self.amount.currency or amount > self.refundable:
            raise RefundExceedsCaptured(
                f"At most {self.refundable} can still be refunded.",
                {"requested": amount.as_dict(), "refundable": self.refundable.as_dict()},
            )
        committed = (self.refund_committed or Money.zero(amount.currency)) + amount
        return replace(self, refund_committed=committed, updated_at=at, version=self.version + 1)

    def refund_settled(self, refund: Refund, *, at: datetime) -> Payment:
        """A refund finished: a success counts as refunded, a failure frees its amount."""
        zero = Money.zero(self.amount.currency)
        if refund.status is RefundStatus.FAILED:
            committed = (self.refund_committed or zero) - refund.amount
            return replace(
                self, refund_committed=committed, updated_at=at, version=self.version + 1
            )
        refunded = (self.refunded or zero) + refund.amount
        status = (
            PaymentStatus.REFUNDED
            if self.captured is not None and refunded >= self.captured
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        if status is not self.status and not self.can_move_to(status):
            raise InvalidTransition.between(self.status, status)
        return replace(
            self, status=status, refunded=refunded, updated_at=at, version=self.version + 1
        )

    def as_dict(self) -> dict[str, Any]:
        """The payment as the API returns it."""
        return {
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "method": self.method,
            "status": self.status.value,
            "amount": self.amount.as_dict(),
            "captured": self.captured.as_dict() if self.captured else None,
            "refunded": self.refunded.as_dict() if self.refunded else None,
            "failure": self.failure.as_dict() if self.failure else None,
            "next_action": self.next_action,
            "review": self.review.as_dict() if self.review else None,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    payment_id: str
    order_id: str
    customer_id: str
    method: str
    amount: Money
    reason: str
    status: RefundStatus
    requested_by: str
    created_at: datetime
    updated_at: datetime
    provider_refund_id: str | None = None
    failure: Failure | None = None
    settled_at: datetime | None = None
    automatic: bool = False  # refunded by the system (late or second payment, cancellation)
    version: int = 1

    @property
    def is_settled(self) -> bool:
        return self.status is not RefundStatus.PENDING

    def with_provider_reference(self, provider_refund_id: str, *, at: datetime) -> Refund:
        """The provider accepted the refund and is still processing it."""
        return replace(
            self, provider_refund_id=provider_refund_id, updated_at=at, version=self.version + 1
        )

    def settle(
        self,
        status: RefundStatus,
        *,
        at: datetime,
        provider_refund_id: str | None = None,
        failure: Failure | None = None,
    ) -> Refund:
        """Pending to succeeded or failed; a settled refund never changes again."""
        if self.is_settled:
            raise InvalidTransition.between(self.status, status)
        return replace(
            self,
            status=status,
            provider_refund_id=provider_refund_id or self.provider_refund_id,
            failure=failure,
            settled_at=at,
            updated_at=at,
            version=self.version + 1,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "status": self.status.value,
            "amount": self.amount.as_dict(),
            "reason": self.reason,
            "automatic": self.automatic,
            "failure": self.failure.as_dict() if self.failure else None,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
