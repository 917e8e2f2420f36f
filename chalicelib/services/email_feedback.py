"""SES's feedback on the email we sent: bouncing and complaining addresses stop receiving it.

``record_feedback(message)`` reads one SNS message from the email-feedback topic
(``domain/email_feedback.py``: event publishing or feedback notification shape). For a
permanent bounce or a complaint, every customer whose profile holds a reported address
(found through the email owner items, one Query per address) has it marked undeliverable:
notifications then skip email for them (SMS and push go on), ``GET /me`` shows
``"email_status": "undeliverable"``, and only confirming an email address with a code
clears it. Anything else (a transient bounce, a delivery) changes nothing.

Marking is idempotent (the same feedback twice changes nothing the second time) and
conditional on the profile being as read, so a customer changing their email at the same
moment is never marked for the address they just left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain.email_feedback import EmailFeedback, MalformedFeedback, parse_feedback
from chalicelib.domain.errors import Busy
from chalicelib.domain.notifications import UndeliverableReason
from chalicelib.observability import count, logger
from chalicelib.store import customers as store

__all__ = ["FeedbackOutcome", "MalformedFeedback", "record_feedback"]

_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    feedback: EmailFeedback
    marked: tuple[str, ...] = ()  # customer ids whose email is now undeliverable


def record_feedback(message: str | bytes, *, now: datetime | None = None) -> FeedbackOutcome:
    """Act on one SES message; ``MalformedFeedback`` if it cannot be read."""
    feedback = parse_feedback(message)
    if not feedback.marks_undeliverable or feedback.reason is None:
        return FeedbackOutcome(feedback)
    at = now or datetime.now(UTC)
    marked: list[str] = []
    for address in feedback.addresses:
        for customer_id in store.customers_with_email(address):
            if _mark(customer_id, address, feedback.reason, at):
                marked.append(customer_id)
    if marked:
        count("EmailAddressesMarkedUndeliverable", value=len(marked), reason=feedback.reason.value)
    return FeedbackOutcome(feedback, tuple(marked))


def _mark(customer_id: str, address: str, reason: UndeliverableReason, at: datetime) -> bool:
    """Mark ``customer_id``'s email if it is still ``address``; True if this changed it."""
    for _attempt in range(_ATTEMPTS):
        previous = store.get_profile(customer_id)
        if previous is None:
            return False
        profile = previous.marked_undeliverable(address, reason, at)
        if profile is previous:
            return False  # no longer this address, or already marked for this reason
        if store.replace_profile(profile, previous):
            logger.info(
                "email marked undeliverable",
                extra={"customer_id": customer_id, "reason": reason.value},
            )
            return True
    raise Busy("The profile is changing too quickly; the feedback will be tried again.")
