"""The outbox: events recorded in the same transaction as the change they announce.

Item shape (the only place that knows it):

    event   pk=OUTBOX#<event_id>   sk=EVENT
            type, event_id, occurred_at (ISO 8601 UTC), payload (map), expires_ttl,
            correlation_id (the request or event whose handling wrote it, when known),
            forwarded_at (once its queues have it)
            gsi3pk=OUTBOXUNSENT#<n>   gsi3sk=<occurred_at>#<event_id>   until forwarded

A change and its event commit together, so an event exists exactly when its change does.
The table's stream then carries each new OUTBOX item to a handler that forwards it to SQS
(``event_from_item`` decodes the stream's image) and marks it forwarded, which also drops
its ``OUTBOXUNSENT#`` index keys. That sparse index therefore holds only events still to be
delivered, spread over ``UNSENT_SHARDS`` partitions (n from a hash of the event id); the
sweep Queries each shard for those older than a few minutes (``unforwarded_events``) and
forwards them again, so an event the stream gave up on is not lost. Items expire after
``RETENTION`` via the table's TTL; nothing reads them back in a request path.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.observability import correlation_id
from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork

OUTBOX_PREFIX = "OUTBOX#"
EVENT_SK = "EVENT"
RETENTION = timedelta(days=7)
UNSENT_PREFIX = "OUTBOXUNSENT#"
UNSENT_SHARDS = 8


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    correlation_id: str | None = None


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def is_outbox_key(pk: str) -> bool:
    return pk.startswith(OUTBOX_PREFIX)


def add_event(
    uow: UnitOfWork,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> str:
    """Add the event to ``uow`` (it commits with the change); returns its id.

    A caller-chosen ``event_id`` makes the event itself idempotent: the same id cannot be
    written twice, so the transaction carrying a duplicate is cancelled.
    """
    event_id = event_id or new_event_id()
    moment = (occurred_at or datetime.now(UTC)).astimezone(UTC)
    occurred_at = moment.isoformat(timespec="microseconds")
    item = tables.to_item(
        {
            tables.PK: OUTBOX_PREFIX + event_id,
            tables.SK: EVENT_SK,
            "entity": "outbox_event",
            "type": event_type,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "payload": _storable(dict(payload)),
            tables.TTL_ATTRIBUTE: int((moment + RETENTION).timestamp()),
            "correlation_id": correlation_id(),
            "gsi3pk": f"{UNSENT_PREFIX}{unsent_shard(event_id)}",
            "gsi3sk": f"{occurred_at}#{event_id}",
        }
    )
    uow.put(item, tag=("outbox", event_id), condition="attribute_not_exists(pk)")
    return event_id


def event_from_item(raw: Mapping[str, Any]) -> OutboxEvent:
    """An event from a raw OUTBOX item (e.g. a stream record's NewImage)."""
    item = tables.from_item(raw)
    return OutboxEvent(
        event_id=item["event_id"],
        type=item["type"],
        occurred_at=datetime.fromisoformat(item["occurred_at"]),
        payload=_plain(item.get("payload") or {}),
        correlation_id=item.get("correlation_id"),
    )


def unsent_shard(event_id: str) -> int:
    return zlib.crc32(event_id.encode()) % UNSENT_SHARDS


def _event_key(event_id: str) -> tables.RawItem:
    return {tables.PK: {"S": OUTBOX_PREFIX + event_id}, tables.SK: {"S": EVENT_SK}}


def mark_forwarded(event_id: str, at: datetime) -> bool:
    """Record that the event's queues have it (and drop it from the unsent index); False
    when the item is gone (expired)."""
    try:
        tables.client().update_item(
            TableName=tables.table_name(),
            Key=_event_key(event_id),
            UpdateExpression="SET forwarded_at = :at REMOVE gsi3pk, gsi3sk",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":at": {"S": at.astimezone(UTC).isoformat(timespec="microseconds")}
            },
        )
    except Exception as exc:
        if tables.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def forwarded_at(event_id: str) -> datetime | None:
    """When the event was forwarded to its queues (None: not yet, or no such event)."""
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=_event_key(event_id), ConsistentRead=True
    )
    value = (response.get("Item") or {}).get("forwarded_at", {}).get("S")
    return datetime.fromisoformat(value) if value else None


def unforwarded_events(
    occurred_before: datetime, *, limit_per_shard: int = 100
) -> list[OutboxEvent]:
    """Events not yet forwarded that occurred before ``occurred_before``, oldest first per
    shard: one Query per shard of the sparse unsent index (index copies: a few may have been
    forwarded a moment ago, which only means a duplicate message consumers ignore)."""
    before = occurred_before.astimezone(UTC).isoformat(timespec="microseconds")
    events: list[OutboxEvent] = []
    for shard in range(UNSENT_SHARDS):
        response = tables.client().query(
            TableName=tables.table_name(),
            IndexName=tables.GSI3,
            KeyConditionExpression="#pk = :pk AND #sk < :before",
            ExpressionAttributeNames={"#pk": "gsi3pk", "#sk": "gsi3sk"},
            ExpressionAttributeValues={
                ":pk": {"S": f"{UNSENT_PREFIX}{shard}"},
                ":before": {"S": before},
            },
            Limit=limit_per_shard,
        )
        events.extend(event_from_item(raw) for raw in response.get("Items", []))
    return events


class MalformedMessage(ValueError):
    """A queue message that is not an outbox event; delivering it again will not help."""


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An outbox event as a consumer's queue message carries it (``message_body``)."""

    event_id: str
    type: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None


def message_body(event: OutboxEvent) -> str:
    """The body of the queue message that carries ``event`` to its consumers."""
    body = {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "payload": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def event_from_message(body: str | bytes) -> QueuedEvent:
    """The event in a queue message body; ``MalformedMessage`` says what is wrong with it."""
    try:
        document = json.loads(body)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise MalformedMessage("the message body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("the message body is not a JSON object")
    event_id, event_type = document.get("event_id"), document.get("type")
    payload = document.get("payload")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedMessage("the event has no event_id")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedMessage("the event has no type")
    if not isinstance(payload, dict):
        raise MalformedMessage("the event has no payload object")
    occurred_at = document.get("occurred_at")
    moment = None
    if occurred_at is not None:
        try:
            moment = datetime.fromisoformat(occurred_at)
        except (TypeError, ValueError):
            raise MalformedMessage("the event's occurred_at is not a time") from None
    return QueuedEvent(event_id=event_id, type=event_type, payload=payload, occurred_at=moment)


def _storable(value: Any) -> Any:
    """DynamoDB has no floats: keep their exact digits as ``Decimal``; drop nothing else."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    """Back from DynamoDB numbers: integral ``Decimal`` to int, others to float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value
