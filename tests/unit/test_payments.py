"""Payments and refunds: forward-only status, capture, refund limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidInput, InvalidTransition
from chalicelib.domain.money import Money
from chalicelib.domain.payments import (
    Payment,
    PaymentStatus,
    Refund,
    RefundExceedsCaptured,
    RefundStatus,
)

AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
S = PaymentStatus


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def a_payment(amount: int = 10_000, method: str = "alipay") -> Payment:
    return Payment.start(
        payment_id="pay_1",
        order_id="ord_1",
        customer_id="alice",
        method=method,
        amount=cny(amount),
        at=AT,
    )


def a_refund(payment: Payment, amount: int, status: RefundStatus = RefundStatus.PENDING) -> Refund:
    return Refund(
        refund_id=f"rfd_{amount}",
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        method=payment.method,
        amount=cny(amount),
        reason="test",
        status=status,
        requested_by="ops-1",
        created_at=AT,
        updated_at=AT,
    )


def test_a_new_payment_is_pending_for_the_order_total() -> None:
    payment = a_payment()
    assert payment.status is S.PENDING
    assert payment.amount == cny(10_000)
    assert payment.refundable == cny(0)


@pytest.mark.parametrize("method", ["paypal", "", "CARD"])
def test_only_known_methods_are_accepted(method: str) -> None:
    with pytest.raises(InvalidInput):
        a_payment(method=method)


def test_capture_of_the_right_amount_succeeds_without_review() -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    assert paid.status is S.SUCCEEDED
    assert paid.captured == cny(10_000)
    assert paid.captured_at == AT
    assert paid.review is None
    assert paid.provider_payment_id == "T1"


@pytest.mark.parametrize("received", [cny(9_999), cny(10_001), Money(10_000, "USD")])
def test_capture_of_another_amount_or_currency_is_flagged_for_review(received: Money) -> None:
    paid = a_payment().capture(received, at=AT, provider_payment_id="T1")
    assert paid.review is not None
    assert paid.review.reason == "amount_mismatch"
    assert paid.review.expected == cny(10_000)
    assert paid.review.received == received


def test_requires_action_after_success_is_refused() -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    assert not paid.can_move_to(S.REQUIRES_ACTION)
    with pytest.raises(InvalidTransition):
        paid.advance(S.REQUIRES_ACTION, at=AT)
    with pytest.raises(InvalidTransition):
        paid.capture(cny(10_000), at=AT, provider_payment_id="T1")


def test_a_failed_payment_never_moves_again() -> None:
    failed = a_payment().advance(S.FAILED, at=AT)
    for status in PaymentStatus:
        assert not failed.can_move_to(status)


ORDER = [S.PENDING, S.REQUIRES_ACTION, S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED]


@given(st.lists(st.sampled_from(list(PaymentStatus)), max_size=12))
def test_status_only_ever_moves_forward(steps: list[PaymentStatus]) -> None:
    payment = a_payment()
    for step in steps:
        if payment.can_move_to(step):
            before = payment.status
            payment = payment.advance(step, at=AT)
            if step is not S.FAILED:
                assert ORDER.index(payment.status) > ORDER.index(before)
    if payment.status is S.FAILED:
        assert not any(payment.can_move_to(s) for s in PaymentStatus)


def test_refunds_are_committed_up_to_the_captured_amount() -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    first = paid.commit_refund(cny(6_000), at=AT)
    assert first.refundable == cny(4_000)
    with pytest.raises(RefundExceedsCaptured) as refused:
        first.commit_refund(cny(4_001), at=AT)
    assert refused.value.code == "refund_exceeds_captured"
    assert first.commit_refund(cny(4_000), at=AT).refundable == cny(0)


def test_nothing_can_be_refunded_before_capture() -> None:
    with pytest.raises(RefundExceedsCaptured):
        a_payment().commit_refund(cny(1), at=AT)


@pytest.mark.parametrize("amount", [0, -5])
def test_a_refund_is_for_a_positive_amount(amount: int) -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    with pytest.raises(InvalidInput):
        paid.commit_refund(cny(amount), at=AT)


def test_settled_refunds_move_the_payment_to_partially_then_fully_refunded() -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    paid = paid.commit_refund(cny(3_000), at=AT)
    part = a_refund(paid, 3_000).settle(RefundStatus.SUCCEEDED, at=AT)
    paid = paid.refund_settled(part, at=AT)
    assert paid.status is S.PARTIALLY_REFUNDED
    assert paid.refunded == cny(3_000)
    paid = paid.commit_refund(cny(7_000), at=AT)
    rest = a_refund(paid, 7_000).settle(RefundStatus.SUCCEEDED, at=AT)
    paid = paid.refund_settled(rest, at=AT)
    assert paid.status is S.REFUNDED
    assert paid.refunded == cny(10_000)


def test_a_failed_refund_gives_its_amount_back() -> None:
    paid = a_payment().capture(cny(10_000), at=AT, provider_payment_id="T1")
    paid = paid.commit_refund(cny(10_000), at=AT)
    failed = a_refund(paid, 10_000).settle(RefundStatus.FAILED, at=AT)
    paid = paid.refund_settled(failed, at=AT)
    assert paid.status is S.SUCCEEDED
    assert paid.refundable == cny(10_000)


def test_a_settled_refund_never_changes_again() -> None:
    refund = a_refund(a_payment(), 100).settle(RefundStatus.SUCCEEDED, at=AT)
    with pytest.raises(InvalidTransition):
        refund.settle(RefundStatus.FAILED, at=AT + timedelta(seconds=1))


def test_the_api_shape_names_every_field_a_client_reads() -> None:
    body = a_payment().as_dict()
    assert {"payment_id", "status", "amount", "failure", "next_action"} <= set(body)
    assert body["amount"] == {"amount": 10_000, "currency": "CNY"}
