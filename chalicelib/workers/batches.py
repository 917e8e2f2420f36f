"""Partial batch responses for every SQS handler, in one place.

Records are handled one by one (Powertools ``BatchProcessor``); those that raised come
back in ``batchItemFailures`` so only they are retried, and one that keeps failing ends in
its queue's dead-letter queue while the rest of its batch is done. Each record is handled
under the correlation id its event was written with (the ``correlation_id`` message
attribute the outbox forwarder sets), so its log lines join the request that caused it, and
with its message id; log keys a handler adds for one record are gone before the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import SQSEvent

from chalicelib.observability import correlated_with, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

CORRELATION_ATTRIBUTE = "correlation_id"


def origin_of(record: SQSRecord) -> str | None:
    """The correlation id a queued event was written under, if its message carries one."""
    attributes = record.get("messageAttributes") or {}
    value = (attributes.get(CORRELATION_ATTRIBUTE) or {}).get("stringValue")
    return value if isinstance(value, str) and value else None


def each_record(event: SQSEvent, handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """``handle`` every record; ``{"batchItemFailures": [...]}`` names those that raised."""
    # Imported here: the batch utility costs ~0.1 s to import, and every function of the app
    # (HTTP ones too) imports app.py at cold start.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def handle_in_its_origin(record: SQSRecord) -> None:
        before = set(logger.get_current_keys())
        with correlated_with(origin_of(record)):
            logger.append_keys(message_id=record.message_id)
            try:
                handle(record)
            finally:
                # What a handler added for this record (event id, order id) ends with it.
                logger.remove_keys([k for k in logger.get_current_keys() if k not in before])

    # A batch where every record failed is reported like any other, not raised: Lambda then
    # retries exactly the failed records, as it does for a partial failure.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event.to_dict(),
        record_handler=handle_in_its_origin,
        processor=processor,
        context=event.context,
    )
