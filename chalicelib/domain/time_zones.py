"""The business's time zone, without a time zone database.

Mainland China has had no daylight saving since 1991, so a fixed UTC+8 offset is exact for
every date this system handles, and needs no tzdata in the Lambda runtime.
"""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
