"""Paying for an order: start a payment, take the provider's word for it, quick pay.

Starting a payment writes the payment (``pending``), claims the request's Idempotency-Key
and extends the order's hold on its stock (bounded) in one transaction, then asks the
provider. The provider's answer — at once for most cards, by signed notification for
Alipay, WeChat Pay and 3-D Secure — goes through the same ``capture`` path:

- the money matches the order and the order still waits for it: ONE transaction moves the
  payment to ``succeeded`` and the order ``pending_payment -> paid`` (both conditional on
  what was read), commits every reservation (ledger ``committed``), records ``order.paid``
  in the outbox and claims the notification's event id;
- the amount or currency differs: the payment is flagged for review, the order stays
  unpaid and ops are alerted;
- the order can no longer take it (expired, cancelled, paid by another payment): the
  same transaction records the capture and a ``pending`` refund of all of it, which the
  ``refund.pending`` consumer then sends.

A notification's event id is claimed in the transaction of the change it causes, so a
replay, or two copies at once, change nothing the second time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.adapters import alerts
from chalicelib.adapters.payments import (
    CARD,
    PROVIDERS,
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderStatus,
    SavedMethod,
    WebhookReply,
)
from chalicelib.adapters.payments import Notification as ProviderNotification
from chalicelib.adapters.payments.providers import card_provider, get_provider
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.catalogue import ID_PATTERN
from chalicelib.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.limits import RateLimit
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderStatus
from chalicelib.domain.payments import Failure, Payment, PaymentStatus
from chalicelib.observability import count, logger
from chalicelib.services import orders, refunds, stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory as inventory_store
from chalicelib.store import limits as limits_store
from chalicelib.store import orders as orders_store
from chalicelib.store import outbox
from chalicelib.store import payments as store
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ORDER_PAID = "order.paid"
PAYMENT_FLAGGED = "payment.flagged"
ATTEMPTS = 5

_STATUS_FOR = {
    ProviderStatus.PENDING: PaymentStatus.PENDING,
    ProviderStatus.REQUIRES_ACTION: PaymentStatus.REQUIRES_ACTION,
    ProviderStatus.SUCCEEDED: PaymentStatus.SUCCEEDED,
    ProviderStatus.FAILED: PaymentStatus.FAILED,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


# --- starting a payment --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentAttempt:
    payment: Payment
    replayed: bool = False


def _check_method_fields(
    method: str,
    payment_method: str | None,
    saved_payment_method_id: str | None,
    save_for_later: bool,
) -> None:
    if method not in PROVIDERS:
        raise InvalidInput(f"method must be one of {', '.join(PROVIDERS)}.")
    if method == CARD:
        if (payment_method is None) == (saved_payment_method_id is None):
            raise InvalidInput(
                "A card payment needs exactly one of payment_method and saved_payment_method_id.",
                [{"field": "payment_method", "message": "exactly one with the saved method"}],
            )
        if save_for_later and saved_payment_method_id is not None:
            raise InvalidInput("A saved method is saved already; drop save_for_later.")
        return
    if payment_method is not None or saved_payment_method_id is not None or save_for_later:
        raise InvalidInput(
            f"payment_method, saved_payment_method_id and save_for_later are for cards, "
            f"not {method}."
        )


def hold_until(order: Order, now: datetime) -> datetime:
    """How long a pending payment keeps the order's stock: a while from now, bounded from
    the order's creation so a stream of payment attempts cannot hold it for ever."""
    settings = get_settings()
    wanted = now + timedelta(seconds=settings.payment_hold_seconds)
    ceiling = order.created_at + timedelta(seconds=settings.max_order_hold_seconds)
    return max(order.expires_at, min(wanted, ceiling))


PAYMENT_RATE = "payments"


def payment_rate() -> RateLimit:
    return RateLimit(PAYMENT_RATE, get_settings().payments_per_minute, timedelta(minutes=1))


def start_payment(
    order_id: str,
    *,
    customer_id: str,
    method: str,
    payment_method: str | None = None,
    saved_payment_method_id: str | None = None,
    save_for_later: bool = False,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> PaymentAttempt:
    """Pay for the customer's own ``pending_payment`` order (409 ``invalid_transition``
    otherwise). The same Idempotency-Key answers with the payment it started."""
    _check_method_fields(method, payment_method, saved_payment_method_id, save_for_later)
    # Before anything is written: 503 payments_unavailable when it cannot be absolute.
    notify_url = refunds.notify_url(method)
    fingerprint = orders_store.request_hash(
        {
            "method": method,
            "payment_method": payment_method,
            "saved_payment_method_id": saved_payment_method_id,
            "save_for_later": save_for_later,
        }
    )
    order = orders.get_order(order_id, viewer_id=customer_id, staff=False)  # 404 for others
    if idempotency_key is not None:
        replay = _replay(order_id, idempotency_key, fingerprint)
        if replay is not None:
            return _resume(
                replay,
                order,
                payment_method,
                saved_payment_method_id,
                save_for_later,
                notify_url=notify_url,
            )
    saved = None
    if saved_payment_method_id is not None:
        saved = store.get_saved_method(customer_id, saved_payment_method_id)
        if saved is None:
            raise NotFound(
                f"Saved payment method {saved_payment_method_id} was not found.",
                {"saved_payment_method_id": saved_payment_method_id},
            )
    payment_id = sortable_id("pay_", now)
    for attempt in range(ATTEMPTS):
        at = now or _now()
        uses = limits_store.read_uses(customer_id, PAYMENT_RATE)  # a replay never gets here
        if order.status is not OrderStatus.PENDING_PAYMENT:
            raise InvalidTransition.between(order.status, OrderStatus.PAID, "nothing to pay")
        if at >= order.expires_at:
            raise InvalidTransition.between(
                order.status, OrderStatus.PAID, "its payment window has closed"
            )
        payment = Payment.start(
            payment_id=payment_id,
            order_id=order.order_id,
            customer_id=customer_id,
            method=method,
            amount=order.total,
            at=at,
            saved_method_id=saved_payment_method_id,
        )
        uow = UnitOfWork()
        store.add_new_payment(uow, payment)
        limits_store.add_use(uow, customer_id, payment_rate(), uses, at=at)  # 429 when full
        held = order.extend_expiry(hold_until(order, at), at=at)
        if held is not order:
            orders_store.add_order_change(uow, held, previous=order)
        if idempotency_key is not None:
            store.add_request_key(
                uow,
                store.RequestKey("payment", order_id, idempotency_key, fingerprint, payment_id),
                at=at,
            )
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if idempotency_key is not None and any(
                tag[0] == "request_key" for tag in cancelled.failed_tags()
            ):
                replay = _replay(order_id, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
            _pause(attempt)
            order = orders.get_order(order_id, viewer_id=customer_id, staff=False)
            continue
        request = _provider_request(
            payment, held, saved, save_for_later, payment_method, notify_url=notify_url
        )
        return PaymentAttempt(_ask_provider(payment, request, save_for_later=save_for_later))
    raise Conflict(f"Order {order_id} is changing too quickly to pay; try again.")


def _replay(order_id: str, key: str, fingerprint: str) -> PaymentAttempt | None:
    record = store.get_request_key("payment", order_id, key)
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"payment_id": record.target_id})
    payment = store.get_payment(record.target_id)
    if payment is None:  # pragma: no cover - written in one transaction with its key
        return None
    return PaymentAttempt(payment, replayed=True)


def _resume(
    attempt: PaymentAttempt,
    order: Order,
    payment_method: str | None,
    saved_payment_method_id: str | None,
    save_for_later: bool,
    *,
    notify_url: str,
) -> PaymentAttempt:
    """A replayed start whose provider never answered (the first request died after its
    commit, or is still waiting): ask the provider now. Every provider keys a payment by our
    payment id (Stripe's idempotency key, Alipay's out_trade_no, WeChat Pay's out_trade_no),
    so asking again cannot charge twice."""
    payment = attempt.payment
    if payment.status is not PaymentStatus.PENDING or payment.provider_payment_id:
        return attempt
    saved = (
        store.get_saved_method(payment.customer_id, saved_payment_method_id)
        if saved_payment_method_id
        else None
    )
    request = _provider_request(
        payment, order, saved, save_for_later, payment_method, notify_url=notify_url
    )
    resumed = _ask_provider(payment, request, save_for_later=save_for_later)
    return PaymentAttempt(resumed, replayed=True)


def _provider_request(
    payment: Payment,
    order: Order,
    saved: store.StoredMethod | None,
    save_for_later: bool,
    payment_method: str | None,
    *,
    notify_url: str,
) -> PaymentRequest:
    provider_customer = (
        store.get_provider_customer(payment.customer_id, payment.method)
        if payment.method == CARD and (saved or save_for_later)
        else None
    )
    return PaymentRequest(
        payment_id=payment.payment_id,
        order_id=order.order_id,
        amount=payment.amount,
        description=f"orderdesk {order.order_id}",
        notify_url=notify_url,
        return_url=card_return_url(order.order_id) if payment.method == CARD else None,
        expires_at=order.expires_at,
        payment_method=payment_method,
        saved_method=_provider_method(saved) if saved else None,
        save_for_later=save_for_later,
        provider_customer_id=saved.provider_customer_id if saved else provider_customer,
    )


def card_return_url(order_id: str) -> str | None:
    """Where 3-D Secure sends the shopper back: the storefront's page for the order
    (configured, never taken from the client); None without a storefront."""
    storefront = get_settings().storefront_url
    return f"{storefront}/orders/{order_id}" if storefront else None


def _provider_method(method: store.StoredMethod) -> SavedMethod:
    return SavedMethod(
        provider_customer_id=method.provider_customer_id,
        provider_method_id=method.provider_method_id,
        brand=method.brand,
        last4=method.last4,
        exp_month=method.exp_month,
        exp_year=method.exp_year,
    )


def _ask_provider(payment: Payment, request: PaymentRequest, *, save_for_later: bool) -> Payment:
    try:
        answer = get_provider(payment.method).create_payment(request)
    except ProviderError as exc:
        if exc.retryable and payment.method == CARD:
            # No answer, 429 or 5xx: Stripe may have charged the card. The payment stays
            # pending until its webhook or resolve_pending_payments tells. (A QR-code
            # payment without its code cannot have been paid, so that one fails below.)
            logger.warning(
                "card payment outcome unknown; it stays pending",
                extra={"payment_id": payment.payment_id, "code": exc.code},
            )
            return payment
        logger.warning(
            "provider refused a payment",
            extra={"payment_id": payment.payment_id, "code": exc.code},
        )
        answer = ProviderPayment(
            provider_payment_id="",
            status=ProviderStatus.FAILED,
            amount=payment.amount,
            failure_code=exc.code,
            failure_message=str(exc) or "The payment provider refused the payment.",
        )
    if save_for_later and answer.saved_method is not None:
        _save_method(payment, answer.saved_method)
    return apply_provider_answer(payment.payment_id, answer)


def _save_method(payment: Payment, method: SavedMethod) -> None:
    store.put_provider_customer(payment.customer_id, payment.method, method.provider_customer_id)
    store.put_saved_method(
        store.StoredMethod(
            method_id=method.provider_method_id,
            customer_id=payment.customer_id,
            provider=payment.method,
            provider_customer_id=method.provider_customer_id,
            provider_method_id=method.provider_method_id,
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            created_at=payment.created_at,
        )
    )


def apply_provider_answer(
    payment_id: str,
    answer: ProviderPayment,
    *,
    receipt: tuple[str, str] | None = None,
    now: datetime | None = None,
) -> Payment:
    """Record where the provider says the payment stands (forward only)."""
    status = _STATUS_FOR[answer.status]
    if status is PaymentStatus.SUCCEEDED:
        return capture(
            payment_id,
            answer.amount,
            provider_payment_id=answer.provider_payment_id or None,
            receipt=receipt,
            now=now,
        )
    failure = (
        Failure(answer.failure_code or "payment_failed", answer.failure_message or "")
        if status is PaymentStatus.FAILED
        else None
    )
    return _advance(
        payment_id,
        status,
        provider_payment_id=answer.provider_payment_id or None,
        next_action=answer.next_action,
        failure=failure,
        receipt=receipt,
        now=now,
    )


def _get_payment(payment_id: str) -> Payment:
    payment = store.get_payment(payment_id)
    if payment is None:
        raise NotFound(f"Payment {payment_id} was not found.", {"payment_id": payment_id})
    return payment


def _receipt_lost(cancelled: TransactionCancelled, receipt: tuple[str, str] | None) -> bool:
    """Whether the transaction lost because this notification was recorded already."""
    return receipt is not None and any(tag[0] == "webhook" for tag in cancelled.failed_tags())


def _record_receipt_only(receipt: tuple[str, str] | None, at: datetime, summary: str) -> None:
    if receipt is not None:
        store.record_webhook_receipt(*receipt, at=at, summary=summary)


def _advance(
    payment_id: str,
    status: PaymentStatus,
    *,
    provider_payment_id: str | None,
    next_action: dict[str, object] | None,
    failure: Failure | None,
    receipt: tuple[str, str] | None,
    now: datetime | None,
) -> Payment:
    for attempt in range(ATTEMPTS):
        at = now or _now()
        payment = _get_payment(payment_id)
        if status is not payment.status and not payment.can_move_to(status):
            # Late or out of order (e.g. requires_action after succeeded): history only.
            logger.info(
                "payment notification does not move the payment",
                extra={"payment_id": payment_id, "at": payment.status.value, "to": status.value},
            )
            _record_receipt_only(receipt, at, f"ignored {status.value}")
            return payment
        changed = payment.advance(
            status,
            at=at,
            provider_payment_id=provider_payment_id,
            next_action=next_action,
            failure=failure,
        )
        uow = UnitOfWork()
        store.add_payment_change(uow, changed, previous=payment)
        if receipt is not None:
            store.add_webhook_receipt(uow, *receipt, at=at, summary=status.value)
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if _receipt_lost(cancelled, receipt):
                return _get_payment(payment_id)
            _pause(attempt)
            continue
        if changed.status is PaymentStatus.FAILED and payment.status is not PaymentStatus.FAILED:
            count("PaymentsFailed", method=changed.method)
        return changed
    raise Conflict(f"Payment {payment_id} is changing too quickly; try again.")


def capture(
    payment_id: str,
    received: Money,
    *,
    provider_payment_id: str | None,
    receipt: tuple[str, str] | None = None,
    now: datetime | None = None,
) -> Payment:
    """The provider took ``received`` for this payment: pay the order, or flag, or refund."""
    for attempt in range(ATTEMPTS):
        at = now or _now()
        payment = _get_payment(payment_id)
        if payment.is_captured or payment.status is PaymentStatus.FAILED:
            if payment.status is PaymentStatus.FAILED:
                # Money taken for an attempt we had given up on: a person must look.
                alerts.publish(
                    f"Payment {payment_id} succeeded after it had failed",
                    {"payment_id": payment_id, "order_id": payment.order_id},
                    kind="payment.success_after_failure",
                )
            _record_receipt_only(receipt, at, "duplicate success")
            return payment
        order = orders_store.get_order(payment.order_id, consistent=True)
        if order is None:  # pragma: no cover - a payment is only ever made for an order
            raise NotFound(f"Order {payment.order_id} was not found.")
        captured = payment.capture(
            received, at=at, provider_payment_id=provider_payment_id, expected=order.total
        )
        uow = UnitOfWork()
        if receipt is not None:
            store.add_webhook_receipt(uow, *receipt, at=at, summary="succeeded")
        payable = captured.review is None and order.status is OrderStatus.PENDING_PAYMENT
        if payable:
            _add_order_paid(uow, order, captured, at=at)
        elif captured.review is not None:
            outbox.add_event(uow, PAYMENT_FLAGGED, _flag_payload(captured), occurred_at=at)
        else:
            # The order can no longer take it: the refund is owed by this very capture.
            captured, _ = refunds.add_refund_owed(
                uow, captured, reason=_late_payment_reason(order), at=at
            )
        store.add_payment_change(uow, captured, previous=payment)
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if _receipt_lost(cancelled, receipt):
                return _get_payment(payment_id)
            _pause(attempt)  # the order or payment moved on: look again
            continue
        _after_capture(captured, order, paid=payable, at=at)
        return store.get_payment(payment_id) or captured
    raise Conflict(f"Payment {payment_id} is changing too quickly; try again.")


def _add_order_paid(uow: UnitOfWork, order: Order, payment: Payment, *, at: datetime) -> None:
    """The order's side of a capture: paid, reservations committed, ``order.paid``."""
    actor = f"payment:{payment.method}"
    paid = order.transition(to=OrderStatus.PAID, at=at, actor=actor, reason=payment.payment_id)
    orders_store.add_order_change(uow, paid, previous=order)
    keys = [(a.sku, a.warehouse) for a in order.allocations]
    levels = inventory_store.get_levels_many(keys, consistent=True)
    for held in order.allocations:
        before = levels[(held.sku, held.warehouse)]
        after, movement = stock_rules.commit(
            before, held.quantity, order_id=order.order_id, at=at, actor=actor
        )
        stock.record_movement(uow, before, after, movement, shard=held.shard)
    outbox.add_event(
        uow,
        ORDER_PAID,
        orders.order_event_payload(
            paid,
            payment_id=payment.payment_id,
            method=payment.method,
            previous_status="pending_payment",
        ),
        occurred_at=at,
    )


def _flag_payload(payment: Payment) -> dict[str, object]:
    review = payment.review
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "customer_id": payment.customer_id,
        "method": payment.method,
        "reason": review.reason if review else None,
        "expected": review.expected.as_dict() if review else None,
        "received": review.received.as_dict() if review else None,
    }


def _after_capture(payment: Payment, order: Order, *, paid: bool, at: datetime) -> None:
    count("PaymentsSucceeded", method=payment.method)
    if paid:
        logger.info(
            "order paid",
            extra={"order_id": order.order_id, "payment_id": payment.payment_id},
        )
        return
    if payment.review is not None:
        logger.warning("payment flagged for review", extra=_flag_payload(payment))
        alerts.publish(
            f"Payment {payment.payment_id} needs review: {payment.review.reason}",
            _flag_payload(payment),
            kind=PAYMENT_FLAGGED,
        )
        return
    logger.info(
        "payment for an order that cannot take it; refund owed",
        extra={"order_id": order.order_id, "payment_id": payment.payment_id},
    )


def _late_payment_reason(order: Order) -> str:
    """Why money for ``order`` goes back: it expired, was cancelled, or another payment
    paid it first."""
    if order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        return f"order {order.status.value}"
    return "order already paid"


# --- notifications -------------------------------------------------------------------------


class UnknownPaymentProvider(NotFound):
    pass


def receive_notification(
    provider_name: str, headers: Mapping[str, str], body: bytes
) -> WebhookReply:
    """Verify a provider's notification, then record what it says; the reply for it.

    Nothing in the body is read, and nothing is read from the table, before the signature
    is verified. A verified notification about a payment we do not know is acknowledged
    (the provider would retry it for a day) and logged for ops.
    """
    if provider_name not in PROVIDERS:
        raise UnknownPaymentProvider(
            f"No payment provider {provider_name!r}.", {"provider": provider_name}
        )
    provider = get_provider(provider_name)
    try:
        notification = provider.verify_notification(headers, body)
    except NotificationRejected as exc:
        logger.warning(
            "payment notification rejected", extra={"provider": provider_name, "why": str(exc)}
        )
        return provider.reject(str(exc))
    logger.append_keys(event_id=notification.event_id, payment_id=notification.payment_id)
    if store.webhook_seen(provider_name, notification.event_id):
        logger.info("payment notification replayed; nothing to do")
        return provider.acknowledge()
    if notification.kind is NotificationKind.PAYMENT:
        if not _on_payment_notification(notification):
            return provider.reject("The notification cannot be recorded.")
    elif notification.kind is NotificationKind.REFUND:
        refunds.on_refund_notification(notification)
    return provider.acknowledge()


def _on_payment_notification(notification: ProviderNotification) -> bool:
    """Record a payment notification; False when it must not be acknowledged (the
    provider then sends it again)."""
    receipt = (notification.provider, notification.event_id)
    payment_id = notification.payment_id
    payment = (
        store.get_payment(payment_id) if payment_id and ID_PATTERN.fullmatch(payment_id) else None
    )
    if payment is None or payment.method != notification.provider:
        logger.warning(
            "payment notification for no payment of ours",
            extra={"provider": notification.provider, "reference": payment_id},
        )
        return True
    logger.append_keys(order_id=payment.order_id)
    if notification.status is ProviderStatus.SUCCEEDED and notification.amount is None:
        # Signed, but we cannot tell what was paid: not acknowledged, so the provider
        # retries, and a person looks.
        details = {
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "provider": notification.provider,
            "event_id": notification.event_id,
        }
        logger.error("success notification without an amount; not recorded", extra=details)
        alerts.publish(
            f"Payment {payment.payment_id}: {notification.provider} reported a success "
            "without an amount",
            details,
            kind="payment.notification_without_amount",
        )
        return False
    apply_provider_answer(
        payment.payment_id,
        ProviderPayment(
            provider_payment_id=notification.provider_payment_id or "",
            status=notification.status,
            amount=notification.amount or payment.amount,
            failure_code=notification.failure_code,
            failure_message=notification.failure_message,
        ),
        receipt=receipt,
    )
    return True


# --- reading -------------------------------------------------------------------------------


def payments_for_order(order_id: str, *, viewer_id: str, staff: bool) -> list[Payment]:
    orders.get_order(order_id, viewer_id=viewer_id, staff=staff)  # 404 for others
    return [store.get_payment(p.payment_id) or p for p in store.payments_of_order(order_id)]


# --- saved payment methods (quick pay) -----------------------------------------------------


def saved_methods(customer_id: str) -> list[store.StoredMethod]:
    return store.saved_methods(customer_id)


def forget_saved_method(customer_id: str, method_id: str) -> None:
    """Detach the card at the provider and forget it; someone else's id is not found."""
    method = store.get_saved_method(customer_id, method_id)
    if method is None:
        raise NotFound(f"Saved payment method {method_id} was not found.", {"id": method_id})
    try:
        card_provider().detach_method(_provider_method(method))
    except ProviderError as exc:
        # Ours is forgotten either way: it can no longer be used from here.
        logger.warning("could not detach a card at the provider", extra={"code": exc.code})
    store.delete_saved_method(customer_id, method_id)
