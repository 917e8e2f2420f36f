"""Card payments whose outcome is not known: the provider's answer never came (timeout,
connection error, 429, 5xx), so Stripe may or may not have charged the card.

Such a payment stays ``pending``. Its webhook resolves it when it arrives; otherwise
``resolve_pending_payments`` (every 5 minutes) retrieves the PaymentIntent of each card
payment pending for longer than ``RESOLVE_AFTER`` and records what Stripe says, through the
same path as any provider answer. A payment Stripe still has no PaymentIntent for after
``NEVER_REACHED_AFTER`` never reached it: it fails, and the shopper can pay again.

The payments are found through the sparse pending-payments index, never a Scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.payments import CARD, ProviderError, ProviderPayment, ProviderStatus
from chalicelib.adapters.payments.providers import get_provider
from chalicelib.domain.payments import PaymentStatus
from chalicelib.observability import logger
from chalicelib.services import payments
from chalicelib.store import payments as store

RESOLVE_AFTER = timedelta(minutes=2)  # past the longest create call and its retry
NEVER_REACHED_AFTER = timedelta(hours=1)  # well past Stripe's search delay
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ResolveReport:
    asked: int
    resolved: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"asked": self.asked, "resolved": self.resolved}


def resolve_pending_payments(now: datetime) -> ResolveReport:
    """Ask Stripe about each card payment pending since before ``now - RESOLVE_AFTER``."""
    asked = 0
    resolved: list[str] = []
    for listed in store.pending_payments(CARD, EPOCH, now - RESOLVE_AFTER):
        payment = store.get_payment(listed.payment_id)
        if payment is None or payment.status is not PaymentStatus.PENDING:
            continue
        asked += 1
        try:
            answer = _ask(payment.payment_id, payment.provider_payment_id or "")
            if answer is None:
                if now - payment.created_at < NEVER_REACHED_AFTER:
                    continue
                answer = ProviderPayment(
                    provider_payment_id="",
                    status=ProviderStatus.FAILED,
                    amount=payment.amount,
                    failure_code="provider_unreachable",
                    failure_message="The card payment never reached the provider.",
                )
            if answer.status is ProviderStatus.PENDING:
                continue
            payments.apply_provider_answer(payment.payment_id, answer)
            resolved.append(payment.payment_id)
        except Exception:  # noqa: BLE001 - one payment must not hold up the others
            logger.exception(
                "resolving a pending payment failed", extra={"payment_id": payment.payment_id}
            )
    if resolved:
        logger.info("pending card payments resolved", extra={"payment_ids": resolved})
    return ResolveReport(asked=asked, resolved=resolved)


def _ask(payment_id: str, provider_payment_id: str) -> ProviderPayment | None:
    """Stripe's word on the payment; None when Stripe has no PaymentIntent for it."""
    try:
        return get_provider(CARD).retrieve_payment(payment_id, provider_payment_id)
    except ProviderError as exc:
        if exc.code == "payment_not_found":
            return None
        raise
