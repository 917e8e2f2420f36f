"""The email-feedback topic: SES's bounces and complaints about the email we sent.

SES publishes them (through the configuration set's SNS event destination,
``infra/production.py``) to ``orderdesk-<stage>-email-feedback``; SNS invokes this handler
once per message. A message that cannot be read is logged and dropped: raising would only
have Lambda retry it twice and fail the same way. Other failures (DynamoDB busy) raise, so
Lambda's asynchronous retries try the message again.
"""

from __future__ import annotations

from chalice import Blueprint
from chalice.app import SNSEvent

from chalicelib.observability import logger
from chalicelib.services import email_feedback

blueprint = Blueprint(__name__)

# The topic's name as infra/production.py declares it, without the orderdesk-<stage>- prefix:
# packaging points the subscription at that stage's topic (production.SNS_EVENT_SOURCES).
TOPIC = "email-feedback"


@blueprint.on_sns_message(topic=TOPIC)
def record_email_feedback(event: SNSEvent) -> None:
    try:
        outcome = email_feedback.record_feedback(event.message)
    except email_feedback.MalformedFeedback as exc:
        logger.error("unreadable email feedback dropped", extra={"reason": str(exc)})
        return
    feedback = outcome.feedback
    logger.info(
        "email feedback",
        extra={
            "event_type": feedback.event_type,
            "detail": feedback.detail,
            "feedback_id": feedback.feedback_id,
            "ses_message_id": feedback.message_id,
            "addresses": len(feedback.addresses),
            "marked_customers": list(outcome.marked),
        },
    )
