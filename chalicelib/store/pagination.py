"""Opaque page cursors: base64url JSON bound to the listing they came from.

A cursor records where the last page ended and a fingerprint of the request that made it
(filters, query, who may see what). A cursor that does not decode, or comes from another
listing, is a 400 naming the ``cursor`` parameter, never a 500 and never a page of a
listing the caller did not ask for. Callers still validate the position they get back
before turning it into a storage key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chalicelib.domain import json_limits
from chalicelib.domain.errors import InvalidInput

MAX_CURSOR_CHARS = 2048

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not valid for this listing; start again without it.",
            [{"field": "cursor", "message": "invalid cursor"}],
        )


def scope_of(*parts: Any) -> str:
    """A short fingerprint of what a listing was asked for."""
    encoded = json.dumps(parts, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def encode_cursor(scope: str, position: Mapping[str, Any]) -> str:
    payload = json.dumps({"s": scope, "p": dict(position)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> dict[str, Any]:
    """The position stored in ``cursor``; ``InvalidCursor`` unless it belongs to ``scope``."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json_limits.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    if not isinstance(payload, dict) or payload.get("s") != scope:
        raise InvalidCursor()
    position = payload.get("p")
    if not isinstance(position, dict):
        raise InvalidCursor()
    return position
