"""Per-customer limits that keep one customer from using the shop against everyone else.

- **Holds**: a customer's unpaid orders hold stock. ``CustomerHolds`` is what they hold now
  (open unpaid orders, units per SKU); ``CustomerHolds.check`` refuses an order that would
  take them past ``HoldLimits``.
- **Rates**: ``RecentUses`` remembers when the last ``limit`` uses of an action happened
  (a ring of ``limit`` slots, slot ``count % limit`` holding the oldest). A new use is
  allowed only if that oldest one is at least a window ago: an exact sliding window, so no
  burst at a window's edge gets twice the limit.

The store writes both in the transaction that creates the order or payment, guarded by a
condition, so what is counted is exactly what was created.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.domain.errors import Conflict, TooManyRequests


class TooManyOpenOrders(TooManyRequests):
    code = "too_many_open_orders"

    def __init__(self, limit: int, open_orders: int) -> None:
        super().__init__(
            f"You have {open_orders} unpaid orders; pay or cancel one before placing another.",
            {"limit": limit, "open": open_orders},
        )


class HoldLimitReached(Conflict):
    code = "hold_limit_reached"

    def __init__(self, sku: str, limit: int, held: int) -> None:
        super().__init__(
            f"Your unpaid orders already hold {held} of {sku}; at most {limit} may be held "
            "at once. Pay or cancel an order first.",
            {"sku": sku, "limit": limit, "held": held},
        )


class RateLimited(TooManyRequests):
    code = "rate_limited"

    def __init__(self, action: str, limit: int, window: timedelta, retry_after: int) -> None:
        seconds = int(window.total_seconds())
        super().__init__(
            f"At most {limit} {action} per {seconds} seconds; try again in {retry_after} s.",
            {"action": action, "limit": limit, "window_seconds": seconds},
            retry_after_seconds=retry_after,
        )


@dataclass(frozen=True, slots=True)
class HoldLimits:
    max_open_orders: int
    max_units_per_sku: int


@dataclass(frozen=True, slots=True)
class CustomerHolds:
    """What a customer's unpaid orders hold right now."""

    open_orders: int = 0
    units: Mapping[str, int] = field(default_factory=dict)

    def held(self, sku: str) -> int:
        return max(0, self.units.get(sku, 0))

    def check(self, lines: Iterable[tuple[str, int]], limits: HoldLimits) -> None:
        """Refuse an order of ``(sku, quantity)`` lines that would pass a limit."""
        open_orders = max(0, self.open_orders)
        if open_orders >= limits.max_open_orders:
            raise TooManyOpenOrders(limits.max_open_orders, open_orders)
        for sku, quantity in lines:
            if self.held(sku) + quantity > limits.max_units_per_sku:
                raise HoldLimitReached(sku, limits.max_units_per_sku, self.held(sku))


@dataclass(frozen=True, slots=True)
class RateLimit:
    action: str  # "orders", "payments": named in the refusal
    limit: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class RecentUses:
    """How many uses so far, and when each of the last ``limit`` happened (by ring slot)."""

    count: int = 0
    slots: Mapping[int, datetime] = field(default_factory=dict)

    def next_slot(self, rate: RateLimit, now: datetime) -> int:
        """The ring slot a new use takes; ``RateLimited`` if the window is full."""
        slot = self.count % rate.limit
        oldest = self.slots.get(slot)
        if oldest is not None and now - oldest < rate.window:
            wait = (oldest + rate.window - now).total_seconds()
            raise RateLimited(rate.action, rate.limit, rate.window, max(1, math.ceil(wait)))
        return slot
