"""Turning a Chalice request into a validated request model."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel

from chalicelib.api.errors import ApiError, validation_error
from chalicelib.domain import json_limits
from chalicelib.settings import get_settings

Model = TypeVar("Model", bound=BaseModel)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Visible ASCII (UUIDs, ULIDs, base64): the key becomes part of a storage key.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def json_body(request: Request) -> Any:
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise ApiError(413, "payload_too_large", "The request body is too large.")
    if not raw.strip():
        raise validation_error(
            "A JSON body is required.", [{"field": "body", "message": "missing"}]
        )
    try:
        return json_limits.loads(raw)
    except json_limits.UnreadableJson as exc:
        raise ApiError(
            400,
            "invalid_json",
            "The body is not JSON we can read.",
            [{"field": "body", "message": str(exc)}],
        ) from None


def parse_body(request: Request, model: type[Model]) -> Model:
    """Validate the JSON body against ``model``; pydantic errors become 400s upstream."""
    return model.model_validate(json_body(request))


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header, if any (400 when it is not a usable key)."""
    value = (request.headers or {}).get(IDEMPOTENCY_HEADER.lower())
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise validation_error(
            f"{IDEMPOTENCY_HEADER} must be 1-255 visible ASCII characters.",
            [{"field": IDEMPOTENCY_HEADER, "message": "1-255 visible ASCII characters"}],
        )
    return value
