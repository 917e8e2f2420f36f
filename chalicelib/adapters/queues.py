"""SQS: sending messages in batches, telling the caller exactly which ones did not go.

The client is created on first use (cold starts stay cheap, tests can point boto3 at moto
first). boto3 reaches the local emulator through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.observability import logger

SEND_BATCH_LIMIT = 10  # SendMessageBatch's limit


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One message; ``message_id`` is the caller's own id, reported back if sending failed."""

    message_id: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10
    )
    return boto3.client("sqs", config=config)


def reset() -> None:
    """Forget the cached client (tests that switch endpoints or start moto call this)."""
    client.cache_clear()


def _entry(index: int, message: QueueMessage) -> dict[str, Any]:
    return {
        "Id": str(index),
        "MessageBody": message.body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        },
    }


def send_batch(queue_url: str, messages: Sequence[QueueMessage]) -> list[str]:
    """Send ``messages`` to ``queue_url``, ten per call; the ids of those that failed."""
    failed: list[str] = []
    for start in range(0, len(messages), SEND_BATCH_LIMIT):
        chunk = messages[start : start + SEND_BATCH_LIMIT]
        try:
            response = client().send_message_batch(
                QueueUrl=queue_url, Entries=[_entry(i, m) for i, m in enumerate(chunk)]
            )
        except Exception:  # noqa: BLE001 - reported per message; the caller retries them
            logger.exception("sending to a queue failed", extra={"queue_url": queue_url})
            failed.extend(m.message_id for m in chunk)
            continue
        for failure in response.get("Failed") or []:
            message = chunk[int(failure["Id"])]
            logger.warning(
                "a queue refused a message",
                extra={"queue_url": queue_url, "code": failure.get("Code")},
            )
            failed.append(message.message_id)
    return failed


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int  # waiting to be received
    in_flight: int  # received, not yet deleted
    delayed: int


def depth(queue_url: str) -> QueueDepth:
    attributes = client().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def move_messages(from_url: str, to_url: str, *, limit: int) -> int:
    """Move up to ``limit`` messages, body and attributes unchanged; how many moved.

    Each message is deleted from ``from_url`` only after ``to_url`` accepted it, so a
    failure part-way leaves a message in one queue or (at worst) in both, never in neither.
    """
    moved = 0
    while moved < limit:
        received = (
            client()
            .receive_message(
                QueueUrl=from_url,
                MaxNumberOfMessages=min(SEND_BATCH_LIMIT, limit - moved),
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
            )
            .get("Messages", [])
        )
        if not received:
            break
        entries = [
            {
                "Id": str(index),
                "MessageBody": message["Body"],
                "MessageAttributes": message.get("MessageAttributes") or {},
            }
            for index, message in enumerate(received)
        ]
        response = client().send_message_batch(QueueUrl=to_url, Entries=entries)
        sent = {int(entry["Id"]) for entry in response.get("Successful") or []}
        done = [
            {"Id": str(index), "ReceiptHandle": received[index]["ReceiptHandle"]} for index in sent
        ]
        if done:
            client().delete_message_batch(QueueUrl=from_url, Entries=done)
        moved += len(done)
        if len(done) < len(received):
            break  # the target refused some; they reappear in the source after the timeout
    return moved
