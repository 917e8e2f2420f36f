"""Alipay's field formats: yuan amounts with at most two decimals (fen here, in
``Money("CNY")``, parsed strictly), times in China Standard Time, and what its trade
statuses mean to us. China has kept UTC+8 without daylight saving since 1991, so a fixed
offset stands in for the ``Asia/Shanghai`` zone and no tz database is needed on Lambda.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.payments import ProviderError, ProviderStatus
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME

CURRENCY = "CNY"
# Alipay's own bounds for one trade: [0.01, 100000000] yuan.
MAX_AMOUNT_FEN = 100_000_000_00
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_SIGNED_AMOUNT = re.compile(r"(-?)(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")

TRADE_STATUSES: dict[str, ProviderStatus] = {
    "WAIT_BUYER_PAY": ProviderStatus.PENDING,
    "TRADE_SUCCESS": ProviderStatus.SUCCEEDED,
    "TRADE_FINISHED": ProviderStatus.SUCCEEDED,
    "TRADE_CLOSED": ProviderStatus.FAILED,
}


def to_yuan(amount: Money) -> str:
    """``Money`` in fen as Alipay's yuan string: ``Money(1234, "CNY")`` -> ``"12.34"``."""
    if amount.currency != CURRENCY:
        raise ProviderError(
            f"Alipay takes CNY only, not {amount.currency}.", code="unsupported_currency"
        )
    if not 0 < amount.amount <= MAX_AMOUNT_FEN:
        raise ProviderError(
            "An Alipay amount is between 0.01 and 100000000.00 yuan.", code="invalid_amount"
        )
    yuan, fen = divmod(amount.amount, 100)
    return f"{yuan}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """Fen from a positive yuan string with at most two decimals, within Alipay's bounds;
    ``ValueError`` for anything else ("1e3", "-1", " 1", "1.234", "0.00")."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("not a yuan amount with at most two decimals")
    fen = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if not 0 < fen <= MAX_AMOUNT_FEN:
        raise ValueError("amount out of range")
    return fen


def parse_signed_yuan(text: str) -> int:
    match = _SIGNED_AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("not a yuan amount with at most two decimals")
    fen = int(match[2]) * 100 + int((match[3] or "0").ljust(2, "0"))
    return -fen if match[1] else fen


def china_time(text: str) -> datetime:
    """An Alipay time ("2026-10-03 10:00:05", optionally with ".123") as aware UTC."""
    head, dot, fraction = text.partition(".")
    moment = datetime.strptime(head, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
    if dot:
        if not fraction.isdigit() or len(fraction) > 6:
            raise ValueError("bad fraction of a second")
        moment += timedelta(microseconds=int(fraction.ljust(6, "0")))
    return moment.astimezone(UTC)
