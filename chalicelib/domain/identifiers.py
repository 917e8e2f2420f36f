"""Identifiers that sort by creation time: orders, payments, refunds."""

from __future__ import annotations

import random
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def sortable_id(prefix: str, at: datetime | None = None) -> str:
    """``prefix`` + 26 Crockford base32 characters: 48 bits of milliseconds, then 80 random
    bits, so ids sort by creation time and never collide in practice. With a four-character
    prefix the id is 30 characters: within WeChat Pay's 32 for a merchant reference."""
    millis = int((at or datetime.now(UTC)).timestamp() * 1000)
    value = (millis << 80) | random.getrandbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return prefix + "".join(reversed(chars))
