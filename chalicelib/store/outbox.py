"""The outbox: events recorded in the same transaction as the change they announce.

Item shape (the only place that knows it):

    event   pk=OUTBOX#<event_id>   sk=EVENT
            type, event_id, occurred_at (ISO 8601 UTC), payload (map), expires_ttl,
            correlation_id (the request or event whose handling wrote it, when known)

A change and its event commit together, so an event exists exactly when its change does.
The table's stream then carries each new OUTBOX item to a handler that forwards it to SQS
(``event_from_item`` decodes the stream's image). Items expire after ``RETENTION`` via the
table's TTL; nothing reads them back in a request path.
"""

from __future__ import annotations

import json
import uuid
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
    item = tables.to_item(
        {
            tables.PK: OUTBOX_PREFIX + event_id,
            tables.SK: EVENT_SK,
            "entity": "outbox_event",
            "type": event_type,
            "event_id": event_id,
            "occurred_at": moment.isoformat(timespec="microseconds"),
            "payload": _storable(dict(payload)),
            tables.TTL_ATTRIBUTE: int((moment + RETENTION).timestamp()),
            "correlation_id": correlation_id(),
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
