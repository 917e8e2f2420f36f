"""What the two Chinese payment emulators write the same way: China Standard Time (UTC+8
all year since 1991, so a fixed offset) and fen as a yuan string with two decimals.
"""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")


def yuan(fen: int) -> str:
    """``1234`` -> ``"12.34"``, ``-5`` -> ``"-0.05"``."""
    sign = "-" if fen < 0 else ""
    major, minor = divmod(abs(fen), 100)
    return f"{sign}{major}.{minor:02d}"
