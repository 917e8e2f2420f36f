"""The notifications queue: each message is an order event a customer may need to hear about.

Records are handled one by one (Powertools ``BatchProcessor``); those that failed are
returned in ``batchItemFailures`` so only they come back, and one that keeps failing ends
in the queue's dead-letter queue. Events customers do not hear about (``stock.low``) are
acknowledged and dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.observability import logger
from chalicelib.services import notifications
from chalicelib.workers import batches

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

blueprint = Blueprint(__name__)

# The queue's name as infra/resources.yaml declares it (Metadata.SqsEventSources): packaging
# points the event source at that stage's queue, and the local pump reads
# NOTIFICATIONS_QUEUE_URL, so nothing here depends on the environment at import time.
QUEUE = "notifications"
BATCH_SIZE = 10


def _handle_record(record: SQSRecord) -> None:
    try:
        event = notifications.parse_event(record.body)
    except notifications.MalformedEvent as exc:
        logger.error("unreadable notification message", extra={"reason": str(exc)})
        raise
    logger.append_keys(event_id=event.event_id, event_type=event.type, order_id=event.order_id)
    try:
        outcome = notifications.notify(event)
    except notifications.DeliveryFailed as exc:
        logger.warning(
            "notification not fully sent; will retry",
            extra={"channels": [channel.value for channel in exc.failed]},
        )
        raise
    except notifications.MalformedEvent as exc:
        logger.error("unusable notification event", extra={"reason": str(exc)})
        raise
    if outcome.ignored:
        logger.debug("event type not notified")
    else:
        logger.info(
            "customer notified",
            extra={
                "sent": [c.value for c in outcome.sent],
                "already_sent": [c.value for c in outcome.already_sent],
                "unreachable": [c.value for c in outcome.unreachable],
                "unverified": [c.value for c in outcome.unverified],
                "undeliverable": [c.value for c in outcome.undeliverable],
            },
        )


@blueprint.on_sqs_message(queue=QUEUE, batch_size=BATCH_SIZE)
def notify_customers(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record(event, _handle_record)
