"""The refund retry job over moto: which pending refunds it asks about again, and which it
only reports. (That a retried refund is made exactly once at a real provider's wire format
is shown end to end with the Alipay emulator in ``tests/e2e/test_payments_e2e.py``.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.payments import ProviderError
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.domain.payments import Payment, Refund, RefundStatus
from chalicelib.services import refunds
from chalicelib.store import payments as store
from chalicelib.store.unit_of_work import UnitOfWork

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Unreachable:
    """A provider that cannot be reached, counting what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def refund(self, request: object) -> None:
        self.asked.append(request.refund_id)  # type: ignore[attr-defined]
        raise ProviderError("gateway timeout", code="unreachable", retryable=True)


@pytest.fixture
def provider(aws_table: str, monkeypatch: pytest.MonkeyPatch) -> Unreachable:
    unreachable = Unreachable()
    monkeypatch.setattr(refunds, "get_provider", lambda method: unreachable)
    return unreachable


def pending_refund(created_at: datetime) -> Refund:
    """A captured payment with a refund committed against it at ``created_at``."""
    amount = Money(5000, "CNY")
    payment = Payment.start(
        payment_id=sortable_id("pay_", created_at),
        order_id=sortable_id("ord_", created_at),
        customer_id="cust-1",
        method="alipay",
        amount=amount,
        at=created_at,
    )
    captured = payment.capture(amount, provider_payment_id="2026112622001", at=created_at)
    refund = Refund(
        refund_id=sortable_id("rfd_", created_at),
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        method=payment.method,
        amount=Money(1000, "CNY"),
        reason="late delivery",
        status=RefundStatus.PENDING,
        requested_by="ops-1",
        created_at=created_at,
        updated_at=created_at,
    )
    uow = UnitOfWork()
    store.add_new_payment(uow, captured.commit_refund(refund.amount, at=created_at))
    store.add_new_refund(uow, refund)
    uow.commit()
    return refund


def test_only_refunds_old_enough_and_young_enough_are_asked_again(
    provider: Unreachable,
) -> None:
    just_made = pending_refund(NOW - timedelta(minutes=1))
    due = pending_refund(NOW - timedelta(minutes=30))
    overdue = pending_refund(NOW - timedelta(hours=30))

    report = refunds.retry_pending_refunds(NOW)

    assert provider.asked == [due.refund_id]
    assert report.as_dict() == {"asked": 1, "settled": 0, "overdue": [overdue.refund_id]}
    for refund in (just_made, due, overdue):
        stored = store.get_refund(refund.refund_id)
        assert stored is not None and stored.status is RefundStatus.PENDING


def test_a_settled_refund_leaves_the_retry_index(provider: Unreachable) -> None:
    due = pending_refund(NOW - timedelta(minutes=30))
    refunds.settle_refund(due.refund_id, RefundStatus.SUCCEEDED, now=NOW - timedelta(minutes=20))

    report = refunds.retry_pending_refunds(NOW)

    assert provider.asked == []
    assert report.as_dict() == {"asked": 0, "settled": 0, "overdue": []}
    assert store.pending_refunds(refunds.EPOCH, NOW) == []
