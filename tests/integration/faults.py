"""Fault injection for the integration tests: make a handler die at a named point.

Nothing under ``chalicelib`` knows about this. ``install`` wraps ``UnitOfWork.commit`` for
the test's duration, and the stand-ins for the outside world below (a payment provider, a
carrier, notification senders) report their calls, so a test can arm one point:

    before_commit:<n> / after_commit:<n>      the n-th transaction since the point was armed
    before_provider:<call> / after_provider:<call>
                                              a provider call (create_payment, refund, book,
                                              send), before it reaches the provider or after
                                              the provider has acted but before we hear back

Reaching the armed point raises ``Crash``, a ``BaseException``: no ``except Exception`` in
the code under test catches it, just as nothing survives a Lambda that is killed. The point
disarms itself, so the replay that follows runs to the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.adapters.carriers import CarrierError, ParcelRequest, Waybill
from chalicelib.adapters.payments import (
    Notification,
    NotificationKind,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    WebhookReply,
)
from chalicelib.domain.money import Money
from chalicelib.domain.tracking import Booking
from chalicelib.store.unit_of_work import UnitOfWork


class Crash(BaseException):
    """The process died at ``point``."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


@dataclass
class Faults:
    armed: str | None = None
    commits: int = 0
    passed: list[str] = field(default_factory=list)

    def arm(self, point: str | None) -> None:
        """Die at ``point`` (None: run normally); commits are counted from here."""
        self.armed = point
        self.commits = 0
        self.passed.clear()

    def reach(self, point: str) -> None:
        self.passed.append(point)
        if self.armed is not None and point == self.armed:
            self.armed = None
            raise Crash(point)

    def provider_call(self, call: str) -> _ProviderCall:
        return _ProviderCall(self, call)


@dataclass
class _ProviderCall:
    faults: Faults
    call: str

    def __enter__(self) -> None:
        self.faults.reach(f"before_provider:{self.call}")

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.faults.reach(f"after_provider:{self.call}")


def install(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Wrap every transaction commit with its two points for this test."""
    faults = Faults()
    original = UnitOfWork.commit

    def commit(self: UnitOfWork, *, client_request_token: str | None = None) -> None:
        if not self.actions:
            original(self, client_request_token=client_request_token)
            return
        faults.commits += 1
        number = faults.commits
        faults.reach(f"before_commit:{number}")
        original(self, client_request_token=client_request_token)
        faults.reach(f"after_commit:{number}")

    monkeypatch.setattr(UnitOfWork, "commit", commit)
    return faults


def run(action: Any, *args: Any, **kwargs: Any) -> Crash | None:
    """Call ``action``; the ``Crash`` it died of, or None when it ran to the end."""
    try:
        action(*args, **kwargs)
    except Crash as crash:
        return crash
    return None


# --- the outside world --------------------------------------------------------------------


@dataclass
class PaymentProvider:
    """A gateway that, like Alipay and WeChat Pay, keys a trade by our payment id and a
    refund by our refund id: asking twice never charges or refunds twice."""

    faults: Faults
    name: str = "alipay"
    trades: dict[str, Money] = field(default_factory=dict)
    refunds: dict[str, Money] = field(default_factory=dict)
    refund_calls: int = 0

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        with self.faults.provider_call("create_payment"):
            self.trades.setdefault(request.payment_id, request.amount)
        return ProviderPayment(
            provider_payment_id=f"trade_{request.payment_id}",
            status=ProviderStatus.PENDING,
            amount=request.amount,
        )

    def refund(self, request: RefundRequest) -> ProviderRefund:
        with self.faults.provider_call("refund"):
            self.refund_calls += 1
            self.refunds.setdefault(request.refund_id, request.amount)
        return ProviderRefund(
            provider_refund_id=f"refund_{request.refund_id}",
            status=ProviderStatus.SUCCEEDED,
            amount=self.refunds[request.refund_id],
        )

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        import json

        fields = json.loads(body)
        return Notification(
            provider=self.name,
            event_id=fields["event_id"],
            kind=NotificationKind.PAYMENT,
            status=ProviderStatus.SUCCEEDED,
            payment_id=fields["payment_id"],
            provider_payment_id=f"trade_{fields['payment_id']}",
            amount=Money(fields["amount"], "CNY"),
        )

    def acknowledge(self) -> WebhookReply:
        return WebhookReply(200, "success", "text/plain")

    def reject(self, reason: str) -> WebhookReply:
        return WebhookReply(400, reason, "text/plain")

    @property
    def refunded(self) -> int:
        return sum(m.amount for m in self.refunds.values())


@dataclass
class Carrier:
    """A Kuaidi100 e-waybill client: one waybill per order id (our reference), and a
    repeated reference refused as Kuaidi100 refuses a duplicate order id."""

    faults: Faults
    waybills: dict[str, str] = field(default_factory=dict)  # reference -> waybill number

    def order_waybill(self, parcel: ParcelRequest) -> Waybill:
        with self.faults.provider_call("book"):
            if parcel.reference in self.waybills:
                raise CarrierError(
                    f"duplicate order id {parcel.reference}", code="duplicate", provider="kuaidi100"
                )
            number = f"SF{len(self.waybills) + 1:010d}"
            self.waybills[parcel.reference] = number
        return Waybill(parcel.carrier, number, f"https://label.example/{number}", parcel.reference)

    def booking_for(self, waybill: Waybill, *, tracking_provider: str) -> Booking:
        return Booking(
            carrier=waybill.carrier,
            tracking_number=waybill.tracking_number,
            tracking_url=f"https://carrier.example/track/{waybill.tracking_number}",
            label_reference=waybill.reference,
            booking_provider="kuaidi100",
            tracking_provider=tracking_provider,
            label_url=waybill.label_url,
        )

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        """Pushes are not part of these scenarios."""


@dataclass
class Sender:
    """A notification channel with no idempotency of its own (SES, SNS SMS): every call
    sends. ``unreachable`` addresses fail the call."""

    faults: Faults
    sent: list[tuple[str, str]] = field(default_factory=list)  # (address, subject)
    failing: set[str] = field(default_factory=set)

    def send(self, address: str, message: Any) -> str:
        with self.faults.provider_call("send"):
            if address in self.failing:
                raise ConnectionError(f"{address} did not answer")
            self.sent.append((address, message.subject))
        return f"msg-{len(self.sent)}"
