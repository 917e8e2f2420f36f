"""Partial batch responses for every SQS handler, in one place.

Records are handled one by one (Powertools ``BatchProcessor``); those that raised come
back in ``batchItemFailures`` so only they are retried, and one that keeps failing ends in
its queue's dead-letter queue while the rest of its batch is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import SQSEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def each_record(event: SQSEvent, handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """``handle`` every record; ``{"batchItemFailures": [...]}`` names those that raised."""
    # Imported here: the batch utility costs ~0.1 s to import, and every function of the app
    # (HTTP ones too) imports app.py at cold start.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    # A batch where every record failed is reported like any other, not raised: Lambda then
    # retries exactly the failed records, as it does for a partial failure.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event.to_dict(),
        record_handler=handle,
        processor=processor,
        context=event.context,
    )
