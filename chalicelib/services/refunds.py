"""Refunds: asked for by ops (and later by the returns flow), or made by the system when money
arrives for an order that can no longer take it (expired, cancelled, already paid) and when
a paid order is cancelled.

A refund is first *committed* against its payment — one transaction writes the refund
(``pending``), raises the payment's ``refund_committed`` conditionally on the version that
was read, and claims the request's Idempotency-Key — so two refunds at once can never take
more than was captured: the second one's write fails, it reads again, and is refused with
409 ``refund_exceeds_captured``. Only then is the provider asked; its answer (now, or later
by notification) settles the refund: a success counts as refunded and tells the customer
(``payment.refunded``), a failure gives the committed amount back. A refund whose provider
could not be reached stays ``pending``, and ``retry_pending_refunds`` asks again.

The refunds the system owes (a paid order cancelled; money captured for an order that
expired, was cancelled or is already paid) are written ``pending`` in the transaction that
owes them (``add_refund_owed``), with a ``refund.pending`` event: its consumer asks the
provider at once (``send_refund``), and the retry schedule asks again if that died.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib import public_api
from chalicelib.adapters.payments import (
    CARD,
    Notification,
    ProviderError,
    ProviderStatus,
    RefundRequest,
)
from chalicelib.adapters.payments.providers import get_provider
from chalicelib.domain.errors import Conflict, IdempotencyKeyReused, NotFound
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.domain.payments import (
    Failure,
    NothingToRefund,
    Payment,
    Refund,
    RefundStatus,
)
from chalicelib.observability import logger
from chalicelib.store import orders as orders_store
from chalicelib.store import outbox
from chalicelib.store import payments as store
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

PAYMENT_REFUNDED = "payment.refunded"
REFUND_PENDING = "refund.pending"
ATTEMPTS = 5
SYSTEM_ACTOR = "system"
RETRY_AFTER = timedelta(minutes=5)  # well past the longest provider call
RETRY_FOR = timedelta(hours=23)  # Stripe honours an idempotency key for 24 hours
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def notify_url(provider: str) -> str:
    """Where ``provider`` posts its notifications: absolute, or ``PaymentsUnavailable``.
    Stripe's webhook endpoint is set at Stripe, so a card needs none ("")."""
    if provider == CARD:
        return ""
    return f"{public_api.base_url().rstrip('/')}/webhooks/payments/{provider}"


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    refund: Refund
    replayed: bool = False


def request_refund(
    order_id: str,
    *,
    amount: Money,
    reason: str,
    actor_id: str,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> RefundOutcome:
    """Refund ``amount`` of what the order's payment captured (full or partial)."""
    order = orders_store.get_order(order_id, consistent=True)
    if order is None:
        raise NotFound(f"Order {order_id} was not found.", {"order_id": order_id})
    fingerprint = orders_store.request_hash({"amount": amount.as_dict(), "reason": reason})
    if idempotency_key is not None:
        replay = _replay(order_id, idempotency_key, fingerprint)
        if replay is not None:
            return _resume(replay)
    payment = _refundable_payment(order_id, amount)
    request_key = (
        store.RequestKey("refund", order_id, idempotency_key, fingerprint, "")
        if idempotency_key
        else None
    )
    return refund_payment(
        payment, amount, reason=reason, actor_id=actor_id, request_key=request_key, now=now
    )


def _replay(order_id: str, key: str, fingerprint: str) -> RefundOutcome | None:
    record = store.get_request_key("refund", order_id, key)
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"refund_id": record.target_id})
    refund = store.get_refund(record.target_id)
    if refund is None:  # pragma: no cover - written in one transaction with its key
        return None
    return RefundOutcome(refund, replayed=True)


def _resume(replay: RefundOutcome) -> RefundOutcome:
    """A replayed refund the provider never answered (the first request died after its
    commit): ask now rather than wait for the retry job; keyed by our refund id, it is made
    once."""
    refund = replay.refund
    if refund.is_settled or refund.provider_refund_id:
        return replay
    payment = store.get_payment(refund.payment_id)
    if payment is None:  # pragma: no cover - a refund is written with its payment
        return replay
    return RefundOutcome(_ask_provider(refund, payment, at=_now()), replayed=True)


def _refundable_payment(order_id: str, amount: Money) -> Payment:
    """The captured payment to refund from: the one that paid the order, else any other
    captured one with enough left (an order is paid once; others were refunded already)."""
    payments = [p for p in store.order_payments(order_id) if p.is_captured]
    if not payments:
        raise NothingToRefund(
            f"Order {order_id} has no captured payment to refund.", {"order_id": order_id}
        )
    payments.sort(key=lambda p: (p.review is not None, p.created_at))
    for payment in payments:
        if amount.currency == payment.amount.currency and amount <= payment.refundable:
            return payment
    return payments[0]  # refused with what it can still refund


def refund_payment(
    payment: Payment,
    amount: Money,
    *,
    reason: str,
    actor_id: str,
    automatic: bool = False,
    request_key: store.RequestKey | None = None,
    now: datetime | None = None,
) -> RefundOutcome:
    """Commit a refund against ``payment``, then ask its provider."""
    refund_id = sortable_id("rfd_", now)
    for attempt in range(ATTEMPTS):
        at = now or _now()
        current = store.get_payment(payment.payment_id) or payment
        committed = current.commit_refund(amount, at=at)  # RefundExceedsCaptured
        refund = Refund(
            refund_id=refund_id,
            payment_id=current.payment_id,
            order_id=current.order_id,
            customer_id=current.customer_id,
            method=current.method,
            amount=amount,
            reason=reason,
            status=RefundStatus.PENDING,
            requested_by=actor_id,
            created_at=at,
            updated_at=at,
            automatic=automatic,
        )
        uow = UnitOfWork()
        store.add_payment_change(uow, committed, previous=current)
        store.add_new_refund(uow, refund)
        if request_key is not None:
            store.add_request_key(
                uow,
                store.RequestKey(
                    "refund", current.order_id, request_key.key, request_key.request_hash, refund_id
                ),
                at=at,
            )
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if request_key is not None and any(
                tag[0] == "request_key" for tag in cancelled.failed_tags()
            ):
                replay = _replay(current.order_id, request_key.key, request_key.request_hash)
                if replay is not None:
                    return replay
            _pause(attempt)
            continue
        return RefundOutcome(_ask_provider(refund, committed, at=at))
    raise Conflict(f"Payment {payment.payment_id} is changing too quickly to refund; try again.")


def _ask_provider(refund: Refund, payment: Payment, *, at: datetime) -> Refund:
    provider = get_provider(payment.method)
    request = RefundRequest(
        refund_id=refund.refund_id,
        payment_id=payment.payment_id,
        provider_payment_id=payment.provider_payment_id or payment.payment_id,
        amount=refund.amount,
        payment_amount=payment.captured or payment.amount,
        reason=refund.reason,
        # Only where the provider takes one: a job cannot always build it.
        notify_url=(
            notify_url(payment.method)
            if getattr(provider, "refund_needs_notify_url", False)
            else ""
        ),
    )
    try:
        answer = provider.refund(request)
    except ProviderError as exc:
        logger.warning(
            "provider refused a refund",
            extra={"refund_id": refund.refund_id, "code": exc.code, "retryable": exc.retryable},
        )
        if exc.retryable:
            return refund  # stays pending; the provider is asked again by a later attempt
        return settle_refund(
            refund.refund_id, RefundStatus.FAILED, failure=Failure(exc.code, str(exc)), now=at
        )
    if answer.status is ProviderStatus.SUCCEEDED:
        return settle_refund(
            refund.refund_id,
            RefundStatus.SUCCEEDED,
            provider_refund_id=answer.provider_refund_id,
            now=at,
        )
    if answer.status is ProviderStatus.FAILED:
        return settle_refund(
            refund.refund_id,
            RefundStatus.FAILED,
            provider_refund_id=answer.provider_refund_id,
            failure=Failure("refund_failed", "The provider could not refund."),
            now=at,
        )
    return _note_provider_id(refund, answer.provider_refund_id, at)


def _note_provider_id(refund: Refund, provider_refund_id: str, at: datetime) -> Refund:
    current = store.get_refund(refund.refund_id) or refund
    if current.is_settled or not provider_refund_id:
        return current
    noted = current.with_provider_reference(provider_refund_id, at=at)
    uow = UnitOfWork()
    store.add_refund_change(uow, noted, previous=current)
    try:
        uow.commit()
    except TransactionCancelled:
        return store.get_refund(refund.refund_id) or current  # settled meanwhile
    return noted


def settle_refund(
    refund_id: str,
    status: RefundStatus,
    *,
    provider_refund_id: str | None = None,
    failure: Failure | None = None,
    receipt: tuple[str, str] | None = None,
    now: datetime | None = None,
) -> Refund:
    """Record the provider's final word on a refund (once: a settled refund stays settled).

    ``receipt`` (provider, event id) is claimed in the same transaction when the word came
    by notification.
    """
    for attempt in range(ATTEMPTS):
        at = now or _now()
        refund = store.get_refund(refund_id)
        if refund is None:
            raise NotFound(f"Refund {refund_id} was not found.", {"refund_id": refund_id})
        if refund.is_settled:
            if receipt is not None:
                store.record_webhook_receipt(*receipt, at=at, summary="refund already settled")
            return refund
        uow = UnitOfWork()
        if receipt is not None:
            store.add_webhook_receipt(uow, *receipt, at=at, summary=f"refund {status.value}")
        payment = store.get_payment(refund.payment_id)
        if payment is None:  # pragma: no cover - a refund is written with its payment
            raise NotFound(f"Payment {refund.payment_id} was not found.")
        settled = refund.settle(
            status, at=at, provider_refund_id=provider_refund_id, failure=failure
        )
        store.add_refund_change(uow, settled, previous=refund)
        store.add_payment_change(uow, payment.refund_settled(settled, at=at), previous=payment)
        if status is RefundStatus.SUCCEEDED:
            outbox.add_event(uow, PAYMENT_REFUNDED, refund_event_payload(settled), occurred_at=at)
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if receipt is not None and any(t[0] == "webhook" for t in cancelled.failed_tags()):
                return store.get_refund(refund_id) or refund  # a copy of this notification won
            _pause(attempt)
            continue
        logger.info(
            "refund settled",
            extra={"refund_id": refund_id, "order_id": refund.order_id, "status": status.value},
        )
        return settled
    raise Conflict(f"Refund {refund_id} is changing too quickly; try again.")


@dataclass(frozen=True, slots=True)
class RetryReport:
    asked: int
    settled: int
    overdue: list[str]  # still pending after RETRY_FOR: someone must check with the provider

    def as_dict(self) -> dict[str, object]:
        return {"asked": self.asked, "settled": self.settled, "overdue": self.overdue}


def retry_pending_refunds(now: datetime) -> RetryReport:
    """Ask the provider again about each refund still pending ``RETRY_AFTER`` after it was
    committed: the first call failed with a retryable error, or never happened because the
    process died. Every provider keys a refund by our refund id, so asking again cannot
    refund twice; past ``RETRY_FOR`` that is no longer sure, so those are only reported."""
    asked = settled = 0
    for listed in store.pending_refunds(now - RETRY_FOR, now - RETRY_AFTER):
        refund = store.get_refund(listed.refund_id)
        payment = store.get_payment(listed.payment_id)
        if refund is None or refund.is_settled or payment is None:
            continue
        asked += 1
        try:
            # Recorded at the provider's answer, not at ``now`` (which picks the refunds).
            if _ask_provider(refund, payment, at=_now()).is_settled:
                settled += 1
        except Exception:  # noqa: BLE001 - one refund must not hold up the others
            logger.exception("retrying a refund failed", extra={"refund_id": refund.refund_id})
    overdue = [r.refund_id for r in store.pending_refunds(EPOCH, now - RETRY_FOR)]
    if overdue:
        logger.error("refunds pending for too long to retry", extra={"refund_ids": overdue})
    return RetryReport(asked=asked, settled=settled, overdue=overdue)


def refund_event_payload(refund: Refund) -> dict[str, object]:
    return {
        "order_id": refund.order_id,
        "customer_id": refund.customer_id,
        "payment_id": refund.payment_id,
        "refund_id": refund.refund_id,
        "method": refund.method,
        "amount": refund.amount.as_dict(),
        "reason": refund.reason,
        "automatic": refund.automatic,
    }


def add_refund_owed(
    uow: UnitOfWork, payment: Payment, *, reason: str, at: datetime
) -> tuple[Payment, Refund | None]:
    """Add to ``uow`` a ``pending`` refund of everything still refundable on ``payment`` and
    the ``refund.pending`` event that has it sent; ``payment`` with that amount committed
    (the caller writes it, conditional on the version it read) and the refund, or
    ``payment`` unchanged and None when nothing is left to give back.

    This is how the system owes money back: in the very transaction that makes it owed
    (a cancellation, a capture the order cannot take), so a crash right after the commit
    still leaves the refund on record for ``send_refund`` and ``retry_pending_refunds``.
    """
    if not payment.is_captured or payment.refundable.is_zero():
        return payment, None
    amount = payment.refundable
    committed = payment.commit_refund(amount, at=at)
    refund = Refund(
        refund_id=sortable_id("rfd_", at),
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        method=payment.method,
        amount=amount,
        reason=reason,
        status=RefundStatus.PENDING,
        requested_by=SYSTEM_ACTOR,
        created_at=at,
        updated_at=at,
        automatic=True,
    )
    store.add_new_refund(uow, refund)
    outbox.add_event(uow, REFUND_PENDING, refund_event_payload(refund), occurred_at=at)
    return committed, refund


def add_refunds_for_cancelled_order(
    uow: UnitOfWork, order_id: str, *, at: datetime
) -> list[Refund]:
    """The cancellation's side: every captured payment of the order back in full, read
    consistently from the base table and written conditionally on the version read."""
    owed = []
    for payment in store.order_payments(order_id):
        committed, refund = add_refund_owed(uow, payment, reason="order cancelled", at=at)
        if refund is not None:
            store.add_payment_change(uow, committed, previous=payment)
            owed.append(refund)
    return owed


def send_refund(refund_id: str) -> Refund | None:
    """Ask the provider for a refund that is still pending (the ``refund.pending`` consumer).

    Safe to repeat: every provider keys a refund by our refund id, and a refund settles
    once. None when there is no such refund.
    """
    refund = store.get_refund(refund_id)
    if refund is None or refund.is_settled:
        return refund
    payment = store.get_payment(refund.payment_id)
    if payment is None:  # pragma: no cover - a refund is written with its payment
        return refund
    return _ask_provider(refund, payment, at=_now())


def on_refund_notification(notification: Notification) -> None:
    """A provider's verified word on a refund we asked for."""
    receipt = (notification.provider, notification.event_id)
    refund = store.get_refund(notification.refund_id) if notification.refund_id else None
    if refund is None:
        logger.warning(
            "refund notification for no refund of ours",
            extra={"provider": notification.provider, "event_id": notification.event_id},
        )
        return
    if notification.status is ProviderStatus.SUCCEEDED:
        status = RefundStatus.SUCCEEDED
    elif notification.status is ProviderStatus.FAILED:
        status = RefundStatus.FAILED
    else:
        return  # still processing: nothing to record yet
    failure = (
        Failure(notification.failure_code or "refund_failed", notification.failure_message or "")
        if status is RefundStatus.FAILED
        else None
    )
    settle_refund(
        refund.refund_id,
        status,
        provider_refund_id=notification.provider_refund_id,
        failure=failure,
        receipt=receipt,
    )


def refunds_for_order(order_id: str, *, viewer_id: str, staff: bool) -> list[Refund]:
    order = orders_store.get_order(order_id, consistent=True)
    if order is None or not (staff or order.is_owned_by(viewer_id)):
        raise NotFound(f"Order {order_id} was not found.", {"order_id": order_id})
    return [store.get_refund(r.refund_id) or r for r in store.refunds_of_order(order_id)]
