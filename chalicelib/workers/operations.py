"""The operations queue: ``stock.low`` and ``stock.recovered`` events open and resolve the
low-stock alerts ops see in their inbox and on the alerts topic.

Records are handled one by one (Powertools ``BatchProcessor``); those that failed are
returned in ``batchItemFailures`` so only they come back, and one that keeps failing ends
in the queue's dead-letter queue. Handling is idempotent per event id (and decided from the
level's current state), so a record delivered again changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint
from chalice.app import SQSEvent

from chalicelib.observability import logger
from chalicelib.services import low_stock
from chalicelib.workers import batches

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

blueprint = Blueprint(__name__)

# The queue's name as infra/resources.yaml declares it (Metadata.SqsEventSources): packaging
# points the event source at that stage's queue, and the local pump reads
# OPERATIONS_QUEUE_URL, so nothing here depends on the environment at import time.
QUEUE = "operations"
BATCH_SIZE = 10


def _handle_record(record: SQSRecord) -> None:
    try:
        event = low_stock.parse_event(record.body)
    except low_stock.MalformedEvent as exc:
        logger.error("unreadable operations message", extra={"reason": str(exc)})
        raise
    logger.append_keys(event_id=event.event_id, event_type=event.type)
    try:
        outcome = low_stock.handle_event(event)
    except low_stock.MalformedEvent as exc:
        logger.error("unusable stock event", extra={"reason": str(exc)})
        raise
    if outcome is None:
        logger.debug("nothing to do for this event")


@blueprint.on_sqs_message(queue=QUEUE, batch_size=BATCH_SIZE)
def track_low_stock(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record(event, _handle_record)
