"""The fields WeChat Pay sends and takes: the shapes of its ids, states and times, what its
states mean to us, and strict, typed reading of its JSON (answers and notifications alike).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

from chalicelib.adapters.payments import ProviderStatus

CURRENCY = "CNY"
MAX_FEN = 10**12  # far above any single payment; a bound against absurd values

# WeChat Pay's own rules for merchant references and ids.
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
PROVIDER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # transaction_id, refund_id
STATE = re.compile(r"[A-Z_]{1,32}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")

TRADE_STATES = {
    "SUCCESS": ProviderStatus.SUCCEEDED,
    "REFUND": ProviderStatus.SUCCEEDED,  # paid, then (partly) refunded
    "NOTPAY": ProviderStatus.PENDING,
    "USERPAYING": ProviderStatus.PENDING,
    "ACCEPT": ProviderStatus.PENDING,
    "CLOSED": ProviderStatus.FAILED,
    "PAYERROR": ProviderStatus.FAILED,
    "REVOKED": ProviderStatus.FAILED,
}
REFUND_STATUSES = {
    "SUCCESS": ProviderStatus.SUCCEEDED,
    "PROCESSING": ProviderStatus.PENDING,
    "ABNORMAL": ProviderStatus.FAILED,
    "CLOSED": ProviderStatus.FAILED,
}


def same_text(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def json_object(raw: bytes, where: str, error: Callable[[str], Exception]) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> NoReturn:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(f"{where} is not valid JSON") from None
    if not isinstance(value, dict):
        raise error(f"{where} is not a JSON object")
    return value


class Reader:
    """Typed, bounded reads from a decoded JSON object; any surprise raises ``error``."""

    def __init__(self, data: Any, where: str, error: Callable[[str], Exception]) -> None:
        if not isinstance(data, dict):
            raise error(f"{where} is not an object")
        self._data = data
        self._where = where
        self._error = error

    def fail(self, key: str, what: str = "is missing or malformed") -> NoReturn:
        raise self._error(f"{self._where}.{key} {what}")

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def text(
        self,
        key: str,
        *,
        pattern: re.Pattern[str] | None = None,
        max_length: int = 256,
        allow_empty: bool = False,
    ) -> str:
        value = self._data.get(key)
        if not isinstance(value, str) or len(value) > max_length:
            self.fail(key)
        if not value and not allow_empty:
            self.fail(key)
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key)
        return value

    def optional_text(
        self, key: str, *, pattern: re.Pattern[str] | None = None, max_length: int = 256
    ) -> str | None:
        return self.text(key, pattern=pattern, max_length=max_length) if self.has(key) else None

    def integer(self, key: str, *, minimum: int = 0, maximum: int = MAX_FEN) -> int:
        value = self._data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key)
        if not minimum <= value <= maximum:
            self.fail(key, "is out of range")
        return value

    def instant(self, key: str) -> datetime:
        value = self.text(key, pattern=RFC3339, max_length=40)
        return datetime.fromisoformat(value)

    def child(self, key: str) -> Reader:
        return Reader(self._data.get(key), f"{self._where}.{key}", self._error)

    def equals(self, key: str, expected: str) -> None:
        if not same_text(self.text(key), expected):
            self.fail(key, "is not ours")
