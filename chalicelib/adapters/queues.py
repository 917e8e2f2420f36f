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
