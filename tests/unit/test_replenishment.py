from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidInput, InvalidTransition
from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import (
    DEFAULT_LEAD_TIME_DAYS,
    DEFAULT_TARGET_DAYS_OF_COVER,
    AlertStatus,
    LowStockAlert,
    ReorderPolicy,
    ReorderSuggestion,
    days_of_cover,
    reorder_quantity,
    sales_velocity,
    sales_window,
    units_in_window,
)

TODAY = date(2026, 5, 20)
NOW = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)


def suggestion(**overrides: object) -> ReorderSuggestion:
    values: dict[str, object] = {
        "available": 4,
        "units_sold": 60,
        "lead_time_days": 5,
        "target_days_of_cover": 10,
    }
    values.update(overrides)
    return ReorderSuggestion(**values)  # type: ignore[arg-type]


def alert() -> LowStockAlert:
    return LowStockAlert.raise_for(
        "alr_1",
        sku="MUG",
        warehouse="SH",
        available=3,
        threshold=5,
        suggestion=suggestion(),
        at=NOW,
    )


# --- the maths ---------------------------------------------------------------------------------


def test_velocity_is_units_sold_over_the_window_in_units_per_day() -> None:
    assert sales_velocity(60, 30) == 2
    assert sales_velocity(1, 30) == Fraction(1, 30)


def test_days_of_cover_is_available_over_velocity_and_none_when_nothing_sells() -> None:
    assert days_of_cover(10, Fraction(2)) == 5
    assert days_of_cover(7, Fraction(1, 3)) == 21
    assert days_of_cover(10, Fraction(0)) is None


def test_reorder_covers_the_lead_time_and_the_target_days_beyond_what_is_available() -> None:
    # 2 a day for 5 + 10 days is 30 units; 4 are on the shelf.
    assert reorder_quantity(4, Fraction(2), lead_time_days=5, target_days_of_cover=10) == 26


def test_reorder_rounds_a_part_unit_up_and_a_whole_number_not_at_all() -> None:
    # 1/30 a day for 45 days is 1.5 units: order 2.
    assert reorder_quantity(0, Fraction(1, 30), 15, 30) == 2
    # 31/30 a day for 30 days is exactly 31 (in floats it is 31.000000000000004: 32).
    assert reorder_quantity(0, Fraction(31, 30), 0, 30) == 31


def test_nothing_to_order_when_stock_already_covers_it_or_nothing_sells() -> None:
    assert reorder_quantity(500, Fraction(2), 5, 10) == 0
    assert reorder_quantity(0, Fraction(0), 5, 10) == 0


@given(
    available=st.integers(min_value=0, max_value=10_000),
    sold=st.integers(min_value=0, max_value=100_000),
    lead=st.integers(min_value=0, max_value=365),
    target=st.integers(min_value=1, max_value=365),
)
def test_ordering_the_suggestion_always_covers_lead_time_plus_target(
    available: int, sold: int, lead: int, target: int
) -> None:
    velocity = sales_velocity(sold)
    quantity = reorder_quantity(available, velocity, lead, target)
    assert quantity >= 0
    assert available + quantity >= velocity * (lead + target)
    # ... and never by a whole unit more than needed.
    if quantity > 0:
        assert available + quantity - 1 < velocity * (lead + target)


def test_the_window_is_the_thirty_days_ending_today() -> None:
    first, last = sales_window(TODAY)
    assert (first, last) == (TODAY - timedelta(days=29), TODAY)
    shipped = {TODAY: 3, first: 2, first - timedelta(days=1): 100, TODAY + timedelta(days=1): 7}
    assert units_in_window(shipped, TODAY) == 5


# --- the suggestion ----------------------------------------------------------------------------


def test_suggestion_uses_the_products_policy_and_the_shipments_in_the_window() -> None:
    policy = ReorderPolicy(lead_time_days=5, target_days_of_cover=10, unit_cost=Money(1250, "CNY"))
    shipped = {TODAY - timedelta(days=day): 2 for day in range(30)}  # 60 in 30 days

    made = ReorderSuggestion.compute(4, shipped, policy, TODAY)

    assert made.as_dict() == {
        "velocity_per_day": 2.0,
        "days_of_cover": 2.0,
        "quantity": 26,
        "units_sold": 60,
        "window_days": 30,
        "lead_time_days": 5,
        "target_days_of_cover": 10,
        "unit_cost": {"amount": 1250, "currency": "CNY"},
        "estimated_cost": {"amount": 32500, "currency": "CNY"},
    }


def test_a_product_without_a_policy_gets_the_defaults_and_no_cost() -> None:
    made = ReorderSuggestion.compute(0, {TODAY: 30}, ReorderPolicy(), TODAY)
    assert made.lead_time_days == DEFAULT_LEAD_TIME_DAYS
    assert made.target_days_of_cover == DEFAULT_TARGET_DAYS_OF_COVER
    assert made.quantity == DEFAULT_LEAD_TIME_DAYS + DEFAULT_TARGET_DAYS_OF_COVER
    assert made.as_dict()["estimated_cost"] is None


def test_nothing_sold_means_no_days_of_cover_and_nothing_to_order() -> None:
    shown = suggestion(units_sold=0, available=2).as_dict()
    assert shown["velocity_per_day"] == 0.0
    assert shown["days_of_cover"] is None
    assert shown["quantity"] == 0


def test_shown_figures_are_rounded_but_the_quantity_is_exact() -> None:
    shown = suggestion(units_sold=1, available=1, lead_time_days=0, target_days_of_cover=30)
    assert shown.as_dict()["velocity_per_day"] == 0.033
    assert shown.as_dict()["days_of_cover"] == 30.0
    assert shown.quantity == 0  # 1/30 a day for 30 days is exactly the one on the shelf


# --- the policy --------------------------------------------------------------------------------


def test_the_default_threshold_is_zero_when_not_set() -> None:
    assert ReorderPolicy().low_stock_threshold == 0
    assert ReorderPolicy(default_low_stock_threshold=12).low_stock_threshold == 12


@pytest.mark.parametrize(
    "values",
    [
        {"default_low_stock_threshold": -1},
        {"default_low_stock_threshold": 1_000_001},
        {"default_low_stock_threshold": True},
        {"lead_time_days": -1},
        {"lead_time_days": 366},
        {"target_days_of_cover": 0},
        {"target_days_of_cover": 2.5},
        {"unit_cost": Money(-1, "CNY")},
    ],
)
def test_a_policy_out_of_range_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        ReorderPolicy(**values)  # type: ignore[arg-type]


# --- alerts ------------------------------------------------------------------------------------


def test_an_alert_is_raised_open_only_for_a_level_at_or_under_its_threshold() -> None:
    raised = alert()
    assert raised.status is AlertStatus.OPEN
    assert raised.acknowledged_at is None and raised.resolved_at is None
    with pytest.raises(ValueError):
        LowStockAlert.raise_for(
            "alr_2",
            sku="MUG",
            warehouse="SH",
            available=6,
            threshold=5,
            suggestion=suggestion(),
            at=NOW,
        )


def test_acknowledging_records_who_and_when_and_again_changes_nothing() -> None:
    later = NOW + timedelta(minutes=5)
    seen = alert().acknowledge(by="ops-1", at=later)
    assert (seen.status, seen.acknowledged_by, seen.acknowledged_at) == (
        AlertStatus.ACKNOWLEDGED,
        "ops-1",
        later,
    )
    assert seen.acknowledge(by="ops-2", at=later + timedelta(hours=1)) == seen


def test_a_resolved_alert_cannot_be_acknowledged() -> None:
    resolved = alert().resolve(at=NOW + timedelta(hours=1))
    assert resolved.status is AlertStatus.RESOLVED
    with pytest.raises(InvalidTransition) as refused:
        resolved.acknowledge(by="ops-1", at=NOW + timedelta(hours=2))
    assert refused.value.details == {"from": "resolved", "to": "acknowledged"}


def test_an_acknowledged_alert_still_resolves_and_resolving_again_changes_nothing() -> None:
    at = NOW + timedelta(hours=1)
    resolved = alert().acknowledge(by="ops-1", at=NOW).resolve(at=at)
    assert (resolved.status, resolved.resolved_at, resolved.acknowledged_by) == (
        AlertStatus.RESOLVED,
        at,
        "ops-1",
    )
    assert resolved.resolve(at=at + timedelta(hours=1)) == resolved
