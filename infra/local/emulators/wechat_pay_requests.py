"""What the WeChat Pay emulator refuses in a merchant's request, as WeChat Pay does: the
error answer in WeChat Pay's shape (an HTTP status with ``{"code", "message"}``) and the
strict reading of a request body's fields.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime
from typing import Any

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# RFC 3339 to the second with an offset, as WeChat Pay writes it: 2026-11-26T10:34:56+08:00
TIME_EXPIRE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)")


class ApiError(Exception):
    """An error answer in WeChat Pay's shape: ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "PARAM_ERROR", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "PARAM_ERROR", "the body is not a JSON object")
    return document


def require_text(request: dict[str, Any], key: str, max_length: int) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ApiError(400, "PARAM_ERROR", f"{key}: a string of 1 to {max_length} characters")
    return value


def require_url(request: dict[str, Any], key: str) -> str:
    """A notify URL as WeChat Pay takes it: https, absolute, no query string. Loopback
    hosts alone may use http (and a query), so the local stack can be called back."""
    value = require_text(request, key, 255)
    parts = urllib.parse.urlsplit(value)
    loopback = parts.hostname in LOOPBACK_HOSTS
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "PARAM_ERROR", f"{key}: an absolute https URL")
    if parts.scheme != "https" and not loopback:
        raise ApiError(400, "PARAM_ERROR", f"{key}: must be an https URL")
    if (parts.query or parts.fragment) and not loopback:
        raise ApiError(400, "PARAM_ERROR", f"{key}: must not carry parameters")
    return value


def require_amount(amount: Any, key: str) -> int:
    if not isinstance(amount, dict):
        raise ApiError(400, "PARAM_ERROR", "amount is required")
    value = amount.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(400, "PARAM_ERROR", f"amount.{key}: a positive integer in fen")
    if amount.get("currency", "CNY") != "CNY":
        raise ApiError(400, "PARAM_ERROR", "amount.currency: CNY only")
    return value


def parse_time_expire(value: Any) -> datetime:
    if not isinstance(value, str) or not TIME_EXPIRE.fullmatch(value):
        raise ApiError(400, "PARAM_ERROR", "time_expire: yyyy-MM-DDTHH:mm:ss+TIMEZONE")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "PARAM_ERROR", "time_expire is not a valid time") from None
