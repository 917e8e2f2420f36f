"""Analytics: the queue that keeps the figures up to date, and the nightly report job.

Queue records are handled one by one (Powertools ``BatchProcessor``); the failed ones are
returned in ``batchItemFailures`` so only they come back, and one that keeps failing ends
in the queue's dead-letter queue. A repeat delivery is recognised by its event id and
changes nothing; event types analytics has no use for are acknowledged and dropped.

The nightly job runs at 00:30 China time (16:30 UTC) for the day that just ended, or for
``detail.date`` when asked (``make tick JOB=analytics DATE=2026-11-24``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Cron
from chalice.app import CloudWatchEvent, SQSEvent

from chalicelib.observability import logger
from chalicelib.services import analytics as service
from chalicelib.workers import batches
from chalicelib.workers.schedules import requested_day, run_moment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

blueprint = Blueprint(__name__)

# The queue's name as infra/resources.yaml declares it (Metadata.SqsEventSources).
QUEUE = "analytics"
BATCH_SIZE = 10


def _handle_record(record: SQSRecord) -> None:
    try:
        event = service.parse_event(record.body)
    except service.MalformedEvent as exc:
        logger.error("unreadable analytics message", extra={"reason": str(exc)})
        raise
    logger.append_keys(event_id=event.event_id, event_type=event.type)
    try:
        outcome = service.record_event(event)
    except service.MalformedEvent as exc:
        logger.error("analytics event cannot be counted", extra={"reason": str(exc)})
        raise
    logger.debug("analytics event handled", extra={"outcome": outcome.value})


@blueprint.on_sqs_message(queue=QUEUE, batch_size=BATCH_SIZE)
def record_analytics(event: SQSEvent) -> dict[str, Any]:
    return batches.each_record(event, _handle_record)


# 16:30 UTC is 00:30 the next day in China (UTC+8, no daylight saving): the day has just
# ended there. A BUSINESS_TIME_ZONE with another offset needs this time moved with it.
@blueprint.schedule(Cron(30, 16, "*", "*", "?", "*"))
def analytics(event: CloudWatchEvent) -> dict[str, Any]:
    """Build the previous business day's reports (or ``detail.date``'s) and export them."""
    day = requested_day(event, service.previous_business_day(run_moment(event)))
    run = service.run_nightly(day)
    return {
        "date": day.isoformat(),
        "tables": {table.name: len(table.rows) for table in run.reports.tables},
        "headline": dict(run.reports.headline),
        "exported": run.exported,
    }
