"""Delivering the outbox: the table's stream carries each new OUTBOX item here, and it goes
on to the SQS queues of the consumers that react to its type.

Every message carries the event id (in the body and as the ``event_id`` attribute) and its
type (``event_type``): a record that is delivered again, after a partial failure or a retry
of the batch, is a duplicate that consumers recognise by its id and ignore.

Records that could not be sent are reported in ``batchItemFailures`` (by SequenceNumber), so
Lambda retries from the first of them; the event source mapping bisects failing batches,
retries a bounded number of times and then hands the record to its on-failure queue, so one
bad record never blocks the shard (``infra/package.py`` configures that). A record given up
on is not lost: each event is marked forwarded once its queues have it, and ``sweep_outbox``
(every five minutes; ``make replay-outbox`` by hand) forwards again every event still
unmarked five minutes after it occurred.

Stock levels' own changes in the stream also stand for events analytics counts: a level
created, run out or restocked (``store.analytics.level_events``); they go to its queue only.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalice import Blueprint, Rate
from chalice.app import CloudWatchEvent, DynamoDBEvent

from chalicelib.adapters import queues
from chalicelib.observability import logger
from chalicelib.services import stock
from chalicelib.settings import get_settings
from chalicelib.store import analytics as analytics_store
from chalicelib.store import outbox, stock_shards
from chalicelib.workers.batches import CORRELATION_ATTRIBUTE
from chalicelib.workers.schedules import run_moment

blueprint = Blueprint(__name__)

FULFILMENT = "fulfilment"
NOTIFICATIONS = "notifications"
OPERATIONS = "operations"
ANALYTICS = "analytics"
# Which consumers react to which events. Payment starts fulfilment, which also sends the
# refunds the system owes (refund.pending); everything a customer
# should hear about goes to notifications, which ignores types it has no use for; stock
# crossing its low-stock threshold (either way) goes to operations, which raises and
# resolves the alerts ops see; analytics counts orders, payments and refunds.
ROUTES: Mapping[str, tuple[str, ...]] = {
    "order.paid": (FULFILMENT, NOTIFICATIONS, ANALYTICS),
    "order.placed": (NOTIFICATIONS, ANALYTICS),
    "order.cancelled": (NOTIFICATIONS, ANALYTICS),
    "order.expired": (NOTIFICATIONS, ANALYTICS),
    "stock.low": (OPERATIONS,),
    "stock.recovered": (OPERATIONS,),
    "payment.refunded": (NOTIFICATIONS, ANALYTICS, FULFILMENT),
    "refund.pending": (FULFILMENT,),
    "payment.flagged": (NOTIFICATIONS,),
    "shipment.shipped": (NOTIFICATIONS,),
    "shipment.out_for_delivery": (NOTIFICATIONS,),
    "shipment.delivered": (NOTIFICATIONS,),
    "shipment.exception": (NOTIFICATIONS,),
    "review.created": (ANALYTICS,),
    "review.edited": (ANALYTICS,),
    "review.hidden": (ANALYTICS,),
    "review.published": (ANALYTICS,),
    "review.replied": (NOTIFICATIONS,),
    # After-sales: every status tells the customer; a received exchange ships its
    # replacement, and a settled refund (payment.refunded) completes its request.
    "after_sales.requested": (NOTIFICATIONS,),
    "after_sales.approved": (NOTIFICATIONS,),
    "after_sales.rejected": (NOTIFICATIONS,),
    "after_sales.return_in_transit": (NOTIFICATIONS,),
    "after_sales.received": (FULFILMENT, NOTIFICATIONS),
    "after_sales.refunded": (NOTIFICATIONS,),
    "after_sales.exchange_shipped": (NOTIFICATIONS,),
    "after_sales.repairing": (NOTIFICATIONS,),
    "after_sales.repair_shipped": (NOTIFICATIONS,),
    "after_sales.completed": (NOTIFICATIONS,),
    "after_sales.cancelled": (NOTIFICATIONS,),
    "after_sales.closed": (NOTIFICATIONS,),
    # Support: only a reply to a customer without an open socket is for their channels.
    "support.conversation_started": (),
    "support.conversation_status_changed": (),
    "support.reply_posted": (NOTIFICATIONS,),
}
DEFAULT_ROUTE: tuple[str, ...] = (NOTIFICATIONS,)
# An event not forwarded this long after it occurred is the sweep's to forward: well past
# the stream's own retries of a healthy batch.
SWEEP_AFTER = timedelta(minutes=5)

# Chalice needs a stream ARN when the app is imported, before any settings exist. The
# package step replaces it with the table's real stream (infra/package.py) and the local
# pump reads TABLE_STREAM_ARN, so this placeholder is only ever a well-formed stand-in.
STREAM_ARN = os.environ.get(
    "TABLE_STREAM_ARN",
    "arn:aws:dynamodb:us-east-1:000000000000:table/orderdesk/stream/1970-01-01T00:00:00.000",
)


def queue_urls() -> dict[str, str]:
    settings = get_settings()
    return {
        FULFILMENT: settings.fulfilment_queue_url,
        NOTIFICATIONS: settings.notifications_queue_url,
        OPERATIONS: settings.operations_queue_url,
        ANALYTICS: settings.analytics_queue_url,
    }


def _message(event: outbox.OutboxEvent, sequence_number: str) -> queues.QueueMessage:
    attributes = {"event_type": event.type, "event_id": event.event_id}
    if event.correlation_id:
        attributes[CORRELATION_ATTRIBUTE] = event.correlation_id
    return queues.QueueMessage(
        message_id=sequence_number, body=outbox.message_body(event), attributes=attributes
    )


def _routes(event: outbox.OutboxEvent) -> tuple[str, ...]:
    route = ROUTES.get(event.type)
    if route is None:
        logger.warning("no route for event type; notifying", extra={"type": event.type})
        return DEFAULT_ROUTE
    return route


def forward(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Send the outbox events among stream ``records`` (Lambda-shaped dicts) to their queues
    and mark them forwarded; the SequenceNumbers of the records that could not be sent."""
    by_queue: dict[str, list[queues.QueueMessage]] = defaultdict(list)
    failed: list[str] = []
    sent: list[tuple[str, str]] = []  # (sequence number, event id) of outbox events
    urls = queue_urls()
    sharded: dict[tuple[str, str], str] = {}  # sharded levels written, by their last record
    for record in records:
        change = record.get("dynamodb") or {}
        sequence_number = str(change.get("SequenceNumber", ""))
        keys = change.get("Keys") or {}
        written = stock_shards.sharded_level_changed(record)
        if written is not None:
            sharded[written] = sequence_number
        if record.get("eventName") != "INSERT" or not outbox.is_outbox_key(
            str(keys.get("pk", {}).get("S", ""))
        ):
            # Stock levels created, run out or restocked are analytics' to count; order
            # changes, other stock changes, outbox items marked forwarded and TTL deletions
            # are not ours to deliver.
            for derived in analytics_store.level_events(record):
                if not urls.get(ANALYTICS):
                    logger.error("queue not configured", extra={"queues": [ANALYTICS]})
                    failed.append(sequence_number)
                    break
                by_queue[urls[ANALYTICS]].append(_message(derived, sequence_number))
            continue
        try:
            event = outbox.event_from_item(change["NewImage"])
        except (KeyError, TypeError, ValueError):
            logger.exception("undecodable outbox record", extra={"sequence": sequence_number})
            failed.append(sequence_number)
            continue
        route = _routes(event)
        missing = [name for name in route if not urls.get(name)]
        if missing:
            logger.error("queue not configured", extra={"queues": missing, "type": event.type})
            failed.append(sequence_number)
            continue
        for name in route:
            by_queue[urls[name]].append(_message(event, sequence_number))
        sent.append((sequence_number, event.event_id))
    failed.extend(_sharded_low_stock(sharded, by_queue, urls))
    for url, messages in by_queue.items():
        failed.extend(queues.send_batch(url, messages))
    refused = set(failed)
    _mark_forwarded([event_id for sequence, event_id in sent if sequence not in refused])
    # One SequenceNumber per record, in stream order (a record sent to two queues may fail
    # on both).
    return sorted(set(failed), key=lambda sequence: (len(sequence), sequence))


def _sharded_low_stock(
    written: Mapping[tuple[str, str], str],
    by_queue: dict[str, list[queues.QueueMessage]],
    urls: Mapping[str, str],
) -> list[str]:
    """A sharded level's low-stock crossing (and its running out or coming back, for
    analytics) is decided here, once per level per batch, from its summed shards
    (``stock.sync_low_stock``); the sequence numbers that failed (the scheduled low-stock
    check is the backstop for alerts lost)."""
    failed: list[str] = []
    for (sku, warehouse), sequence_number in written.items():
        try:
            events = stock.sync_low_stock(sku, warehouse)
        except Exception:  # noqa: BLE001 - retried with the batch
            logger.exception("could not check a sharded level", extra={"sku": sku})
            failed.append(sequence_number)
            continue
        for event in events:
            # Low and recovered are operations'; sold out and restocked are analytics'.
            queue = OPERATIONS if event.type in ROUTES else ANALYTICS
            if not urls.get(queue):
                logger.error("queue not configured", extra={"queues": [queue]})
                failed.append(sequence_number)
                break
            by_queue[urls[queue]].append(_message(event, sequence_number))
    return failed


def _mark_forwarded(event_ids: Iterable[str]) -> None:
    """Best effort: an event left unmarked is only sent again by the sweep, and consumers
    ignore an event id they have handled."""
    at = datetime.now(UTC)
    for event_id in event_ids:
        try:
            outbox.mark_forwarded(event_id, at)
        except Exception:  # noqa: BLE001 - the sweep forwards it again; consumers dedupe
            logger.exception("could not mark an event forwarded", extra={"event_id": event_id})


@blueprint.on_dynamodb_record(
    stream_arn=STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON"
)
def forward_outbox(event: DynamoDBEvent) -> dict[str, Any]:
    failed = forward(event.to_dict().get("Records") or [])
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


# --- the sweep: events the stream did not deliver -----------------------------------------


@dataclass(frozen=True, slots=True)
class SweepReport:
    forwarded: list[str]
    failed: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded, "failed": self.failed}


def sweep(now: datetime, *, older_than: timedelta = SWEEP_AFTER) -> SweepReport:
    """Forward again every event not forwarded ``older_than`` after it occurred: the stream
    handler gave up on it (its retries ran out) or died between sending and marking."""
    urls = queue_urls()
    by_queue: dict[str, list[queues.QueueMessage]] = defaultdict(list)
    events = outbox.unforwarded_events(now - older_than)
    failed: set[str] = set()
    for event in events:
        route = _routes(event)
        if any(not urls.get(name) for name in route):
            logger.error("queue not configured", extra={"type": event.type})
            failed.add(event.event_id)
            continue
        for name in route:
            by_queue[urls[name]].append(_message(event, event.event_id))
    for url, messages in by_queue.items():
        failed.update(queues.send_batch(url, messages))
    forwarded = [e.event_id for e in events if e.event_id not in failed]
    _mark_forwarded(forwarded)
    if forwarded or failed:
        logger.warning(
            "outbox events forwarded by the sweep",
            extra={"forwarded": len(forwarded), "failed": sorted(failed)},
        )
    return SweepReport(forwarded=forwarded, failed=sorted(failed))


@blueprint.schedule(Rate(5, unit=Rate.MINUTES))
def sweep_outbox(event: CloudWatchEvent) -> dict[str, Any]:
    """Forward the outbox events the stream has not delivered within five minutes."""
    return sweep(run_moment(event)).as_dict()
