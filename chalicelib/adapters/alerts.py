"""Alerts for operations staff: the SNS alerts topic (email, chat, pager subscribe to it)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.observability import logger
from chalicelib.settings import get_settings

# SNS limits a subject to 100 characters.
SUBJECT_LIMIT = 100


@functools.lru_cache(maxsize=1)
def client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("sns", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def reset() -> None:
    client.cache_clear()


def publish(subject: str, details: Mapping[str, Any], *, kind: str) -> bool:
    """Tell ops; whether it was published. Never raises: the change that caused the alert
    is already recorded (with its outbox event), and an alert must not undo it."""
    topic = get_settings().alerts_topic_arn
    if not topic:
        # Nested: a detail named like a log record field ("message") must not break logging.
        logger.warning("no alerts topic configured", extra={"alert": kind, "details": details})
        return False
    try:
        client().publish(
            TopicArn=topic,
            Subject=subject[:SUBJECT_LIMIT],
            Message=json.dumps({"kind": kind, **details}, ensure_ascii=False, default=str),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}},
        )
    except Exception:  # noqa: BLE001 - see above
        logger.exception("could not publish an alert", extra={"alert": kind})
        return False
    return True
