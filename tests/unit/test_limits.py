"""Per-customer limits as rules: holds of unpaid orders and a sliding window of uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.limits import (
    CustomerHolds,
    HoldLimitReached,
    HoldLimits,
    RateLimit,
    RateLimited,
    RecentUses,
    TooManyOpenOrders,
)

LIMITS = HoldLimits(max_open_orders=5, max_units_per_sku=20)
T0 = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
PER_MINUTE = RateLimit("orders", 3, timedelta(minutes=1))


def test_a_customer_below_every_limit_may_hold_more() -> None:
    CustomerHolds(open_orders=4, units={"MUG": 19}).check([("MUG", 1), ("TEA", 20)], LIMITS)


def test_open_orders_at_the_limit_are_refused_naming_limit_and_count() -> None:
    with pytest.raises(TooManyOpenOrders) as refused:
        CustomerHolds(open_orders=5).check([("MUG", 1)], LIMITS)
    assert refused.value.details == {"limit": 5, "open": 5}


def test_units_past_the_per_sku_limit_are_refused_naming_what_is_held() -> None:
    with pytest.raises(HoldLimitReached) as refused:
        CustomerHolds(open_orders=1, units={"MUG": 15}).check([("TEA", 2), ("MUG", 6)], LIMITS)
    assert refused.value.details == {"sku": "MUG", "limit": 20, "held": 15}


def test_one_order_alone_cannot_pass_the_per_sku_limit() -> None:
    with pytest.raises(HoldLimitReached):
        CustomerHolds().check([("MUG", 21)], LIMITS)


def test_negative_counts_left_by_old_orders_count_as_none() -> None:
    CustomerHolds(open_orders=-2, units={"MUG": -3}).check([("MUG", 20)], LIMITS)


def test_uses_fill_the_ring_then_wait_for_the_oldest_to_leave_the_window() -> None:
    uses = RecentUses()
    slots: dict[int, datetime] = {}
    for n in range(3):
        slot = uses.next_slot(PER_MINUTE, T0 + timedelta(seconds=n))
        slots[slot] = T0 + timedelta(seconds=n)
        uses = RecentUses(count=n + 1, slots=dict(slots))
    with pytest.raises(RateLimited) as refused:
        uses.next_slot(PER_MINUTE, T0 + timedelta(seconds=30))
    assert refused.value.retry_after_seconds == 30
    assert refused.value.code == "rate_limited"
    assert uses.next_slot(PER_MINUTE, T0 + timedelta(seconds=60)) == 0
