"""Turning a Chalice request into a validated request model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel

from chalicelib.api.errors import ApiError, validation_error
from chalicelib.settings import get_settings

Model = TypeVar("Model", bound=BaseModel)


def json_body(request: Request) -> Any:
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise ApiError(413, "payload_too_large", "The request body is too large.")
    if not raw.strip():
        raise validation_error(
            "A JSON body is required.", [{"field": "body", "message": "missing"}]
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise validation_error(
            "The body is not valid JSON.", [{"field": "body", "message": str(exc)}]
        ) from exc


def parse_body(request: Request, model: type[Model]) -> Model:
    """Validate the JSON body against ``model``; pydantic errors become 400s upstream."""
    return model.model_validate(json_body(request))
