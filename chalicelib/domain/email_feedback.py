"""What SES tells us about an email after sending it: bounces and complaints.

SES publishes these to SNS as JSON in one of two shapes, which differ only in the name of
the field that says what happened:

* **event publishing** (a configuration set's SNS event destination, which is how ours is
  set up): ``{"eventType": "Bounce" | "Complaint" | "Delivery" | "Send" | ..., "mail",
  "bounce" | "complaint" | ...}``;
* **feedback notifications** (set on a sending identity): ``{"notificationType": "Bounce" |
  "Complaint" | "Delivery", ...}``, plus a one-off ``AmazonSnsSubscriptionSucceeded``.

Both are read here. An address becomes undeliverable on a ``Permanent`` bounce (a hard
bounce: the mailbox does not exist, or SES suppresses it); a ``Transient`` or
``Undetermined`` bounce (mailbox full, a server busy) changes nothing. A complaint (the
recipient marked our email as spam) makes it undeliverable too, unless the reporter says
``not-spam``. Every other event is ignored. SES may add fields at any time, so unknown
ones are not errors; a message that is not one of these shapes is ``MalformedFeedback``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from chalicelib.domain.notifications import UndeliverableReason, is_email, normalize_address

BOUNCE = "Bounce"
COMPLAINT = "Complaint"
PERMANENT_BOUNCE = "Permanent"
NOT_SPAM = "not-spam"
# A message larger than this is not SES's (its notifications are a few KB, headers included).
MAX_MESSAGE_CHARS = 256 * 1024


class MalformedFeedback(ValueError):
    """The message is not an SES notification or event we can read; retrying will not help."""


@dataclass(frozen=True, slots=True)
class EmailFeedback:
    """One SES message: what happened, and to which addresses."""

    event_type: str
    # Set when the addresses are to be marked undeliverable; None for anything else.
    reason: UndeliverableReason | None
    addresses: tuple[str, ...] = ()  # normalized
    feedback_id: str | None = None
    message_id: str | None = None  # SES's id of the email the feedback is about
    detail: str | None = None  # bounceType/bounceSubType or the complaint's feedback type

    @property
    def marks_undeliverable(self) -> bool:
        return self.reason is not None and bool(self.addresses)


def parse_feedback(message: str | bytes) -> EmailFeedback:
    """The feedback in an SNS message body from SES (either shape, see the module doc)."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise MalformedFeedback("the message is too large to be an SES notification")
    try:
        document = json.loads(message)
    except (TypeError, ValueError):
        raise MalformedFeedback("the message is not JSON") from None
    if not isinstance(document, Mapping):
        raise MalformedFeedback("the message is not a JSON object")
    event_type = document.get("eventType", document.get("notificationType"))
    if not isinstance(event_type, str) or not event_type:
        raise MalformedFeedback("the message has neither eventType nor notificationType")
    mail = document.get("mail")
    message_id = mail.get("messageId") if isinstance(mail, Mapping) else None
    message_id = message_id if isinstance(message_id, str) else None
    if event_type == BOUNCE:
        return _bounce(document.get("bounce"), message_id)
    if event_type == COMPLAINT:
        return _complaint(document.get("complaint"), message_id)
    return EmailFeedback(event_type=event_type, reason=None, message_id=message_id)


def _bounce(bounce: Any, message_id: str | None) -> EmailFeedback:
    if not isinstance(bounce, Mapping):
        raise MalformedFeedback("a Bounce without its bounce object")
    bounce_type = bounce.get("bounceType")
    if not isinstance(bounce_type, str):
        raise MalformedFeedback("a bounce without a bounceType")
    addresses = _recipients(bounce.get("bouncedRecipients"), "bouncedRecipients")
    subtype = bounce.get("bounceSubType")
    return EmailFeedback(
        event_type=BOUNCE,
        reason=UndeliverableReason.BOUNCED if bounce_type == PERMANENT_BOUNCE else None,
        addresses=addresses,
        feedback_id=_text(bounce.get("feedbackId")),
        message_id=message_id,
        detail=f"{bounce_type}/{subtype}" if isinstance(subtype, str) else bounce_type,
    )


def _complaint(complaint: Any, message_id: str | None) -> EmailFeedback:
    if not isinstance(complaint, Mapping):
        raise MalformedFeedback("a Complaint without its complaint object")
    addresses = _recipients(complaint.get("complainedRecipients"), "complainedRecipients")
    feedback_type = _text(complaint.get("complaintFeedbackType"))
    return EmailFeedback(
        event_type=COMPLAINT,
        reason=None if feedback_type == NOT_SPAM else UndeliverableReason.COMPLAINED,
        addresses=addresses,
        feedback_id=_text(complaint.get("feedbackId")),
        message_id=message_id,
        detail=feedback_type,
    )


def _recipients(recipients: Any, field: str) -> tuple[str, ...]:
    """The recipients' addresses, normalized, each once; at least one must be readable."""
    if not isinstance(recipients, Sequence) or isinstance(recipients, str):
        raise MalformedFeedback(f"{field} is not a list")
    addresses: list[str] = []
    for recipient in recipients:
        value = recipient.get("emailAddress") if isinstance(recipient, Mapping) else None
        if not isinstance(value, str):
            continue
        # SES gives the bare address; a "Name <address>" form is read as its address.
        address = normalize_address(parseaddr(value)[1] or value)
        if is_email(address) and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise MalformedFeedback(f"{field} holds no email address")
    return tuple(addresses)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
