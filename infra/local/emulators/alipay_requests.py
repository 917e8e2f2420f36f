"""What the Alipay emulator's gateway refuses, as Alipay does: its error answers (``code``,
``msg``, ``sub_code``, ``sub_msg``) and the strict reading of ``biz_content`` fields
(yuan amounts, China times); and what a test may not do to a trade.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from infra.local.emulators.cny import CHINA_TIME

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_FEN = 100_000_000_00

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


class GatewayError(Exception):
    """An answer in Alipay's error shape: code, msg, sub_code, sub_msg."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.node = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def missing(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40001", "Missing Required Arguments", sub_code, sub_msg)


def invalid(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40002", "Invalid Arguments", sub_code, sub_msg)


def business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", "Business Failed", sub_code, sub_msg)


class TradeConflict(Exception):
    """A test asked to pay a trade that cannot be paid (already paid or closed)."""


def biz_text(biz: dict[str, Any], name: str) -> str:
    value = biz.get(name, "")
    return value if isinstance(value, str) else str(value)


def parse_yuan(text: str) -> int:
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a yuan amount: {text!r}")
    fen = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if not 0 < fen <= MAX_FEN:
        raise ValueError(f"amount out of range: {text!r}")
    return fen


def biz_time(biz: dict[str, Any], name: str) -> datetime | None:
    """An optional ``yyyy-MM-dd HH:mm:ss`` China time from biz_content."""
    if name not in biz:
        return None
    text = biz_text(biz, name)
    try:
        if not _TIME.fullmatch(text):
            raise ValueError(text)
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
    except ValueError:
        raise business(
            "ACQ.INVALID_PARAMETER", f"{name} 格式不正确，应为 yyyy-MM-dd HH:mm:ss"
        ) from None


def biz_amount(biz: dict[str, Any], name: str) -> int:
    try:
        return parse_yuan(biz_text(biz, name))
    except ValueError:
        raise business("ACQ.INVALID_PARAMETER", f"{name} 金额格式不正确") from None
