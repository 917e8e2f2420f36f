"""Replenishment: low-stock alerts for operations, and how much to reorder.

A product carries a ``ReorderPolicy`` that ops set: the low-stock threshold its levels use
unless a level has its own, what a unit costs, how long the supplier takes, and how many
days of sales a delivery should cover. When a level runs low, its alert carries a
``ReorderSuggestion``:

    velocity       = units shipped over the last ``SALES_WINDOW_DAYS`` days ÷ that many days
    days of cover  = available ÷ velocity                      (None when nothing sold)
    quantity       = max(0, ceil(velocity × (lead time + target days of cover)) − available)

The maths is exact (``Fraction``), so the ceiling never rounds a whole number up; values are
rounded only when shown.

An alert moves ``open → acknowledged → resolved`` or straight ``open → resolved``: ops
acknowledge it (once; again is a no-op), and it resolves itself when stock rises back above
the threshold. A resolved alert is finished: it cannot be acknowledged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

from chalicelib.domain.errors import InvalidInput, InvalidTransition
from chalicelib.domain.money import Money

SALES_WINDOW_DAYS = 30
# Used when a product does not say: a week for the supplier, a month of sales per delivery.
DEFAULT_LEAD_TIME_DAYS = 7
DEFAULT_TARGET_DAYS_OF_COVER = 30
MAX_LOW_STOCK_THRESHOLD = 1_000_000
MAX_LEAD_TIME_DAYS = 365
MAX_TARGET_DAYS_OF_COVER = 365
# Shown rounded; the quantity is computed from the exact values.
VELOCITY_DECIMALS = 3
DAYS_OF_COVER_DECIMALS = 1


def _require_int(value: Any, what: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(
            f"{what} must be an integer from {low} to {high}.",
            [{"field": what, "message": f"must be between {low} and {high}"}],
        )


@dataclass(frozen=True, slots=True)
class ReorderPolicy:
    """What ops set on a product for restocking; ``None`` means "not set"."""

    default_low_stock_threshold: int | None = None
    unit_cost: Money | None = None
    lead_time_days: int | None = None
    target_days_of_cover: int | None = None

    def __post_init__(self) -> None:
        limits = (
            ("default_low_stock_threshold", 0, MAX_LOW_STOCK_THRESHOLD),
            ("lead_time_days", 0, MAX_LEAD_TIME_DAYS),
            ("target_days_of_cover", 1, MAX_TARGET_DAYS_OF_COVER),
        )
        for name, low, high in limits:
            value = getattr(self, name)
            if value is not None:
                _require_int(value, name, low, high)
        if self.unit_cost is not None and self.unit_cost.is_negative():
            raise InvalidInput(
                "unit_cost.amount must not be negative.",
                [{"field": "unit_cost.amount", "message": "must be >= 0"}],
            )

    @property
    def low_stock_threshold(self) -> int:
        """The threshold of every level of the product that has none of its own."""
        return self.default_low_stock_threshold or 0

    def lead_time(self) -> int:
        return DEFAULT_LEAD_TIME_DAYS if self.lead_time_days is None else self.lead_time_days

    def target_cover(self) -> int:
        if self.target_days_of_cover is None:
            return DEFAULT_TARGET_DAYS_OF_COVER
        return self.target_days_of_cover


# --- the maths ---------------------------------------------------------------------------------


def sales_window(today: date, days: int = SALES_WINDOW_DAYS) -> tuple[date, date]:
    """The first and last day (both included) of the ``days`` days ending ``today``."""
    return today - timedelta(days=days - 1), today


def units_in_window(
    units_by_day: Mapping[date, int], today: date, days: int = SALES_WINDOW_DAYS
) -> int:
    first, last = sales_window(today, days)
    return sum(units for day, units in units_by_day.items() if first <= day <= last)


def sales_velocity(units_sold: int, days: int = SALES_WINDOW_DAYS) -> Fraction:
    """Units per day."""
    if days <= 0:
        raise ValueError("a sales window has at least one day")
    return Fraction(max(0, units_sold), days)


def days_of_cover(available: int, velocity: Fraction) -> Fraction | None:
    """How long ``available`` lasts at ``velocity``; None when nothing sells."""
    if velocity <= 0:
        return None
    return Fraction(max(0, available)) / velocity


def reorder_quantity(
    available: int, velocity: Fraction, lead_time_days: int, target_days_of_cover: int
) -> int:
    """Units to order now so that, once they arrive after ``lead_time_days``, stock covers
    ``target_days_of_cover`` more days of sales."""
    needed = math.ceil(velocity * (lead_time_days + target_days_of_cover))
    return max(0, needed - max(0, available))


@dataclass(frozen=True, slots=True)
class ReorderSuggestion:
    """What to reorder for one level, from the figures it was computed from."""

    available: int
    units_sold: int  # shipped from this warehouse in the window
    lead_time_days: int
    target_days_of_cover: int
    window_days: int = SALES_WINDOW_DAYS
    unit_cost: Money | None = None

    @classmethod
    def compute(
        cls,
        available: int,
        units_by_day: Mapping[date, int],
        policy: ReorderPolicy,
        today: date,
        window_days: int = SALES_WINDOW_DAYS,
    ) -> ReorderSuggestion:
        return cls(
            available=available,
            units_sold=units_in_window(units_by_day, today, window_days),
            lead_time_days=policy.lead_time(),
            target_days_of_cover=policy.target_cover(),
            window_days=window_days,
            unit_cost=policy.unit_cost,
        )

    @property
    def velocity(self) -> Fraction:
        return sales_velocity(self.units_sold, self.window_days)

    @property
    def days_of_cover(self) -> Fraction | None:
        return days_of_cover(self.available, self.velocity)

    @property
    def quantity(self) -> int:
        return reorder_quantity(
            self.available, self.velocity, self.lead_time_days, self.target_days_of_cover
        )

    @property
    def estimated_cost(self) -> Money | None:
        return None if self.unit_cost is None else self.unit_cost.times(self.quantity)

    def as_dict(self) -> dict[str, Any]:
        cover = self.days_of_cover
        return {
            "velocity_per_day": round(float(self.velocity), VELOCITY_DECIMALS),
            "days_of_cover": None if cover is None else round(float(cover), DAYS_OF_COVER_DECIMALS),
            "quantity": self.quantity,
            "units_sold": self.units_sold,
            "window_days": self.window_days,
            "lead_time_days": self.lead_time_days,
            "target_days_of_cover": self.target_days_of_cover,
            "unit_cost": None if self.unit_cost is None else self.unit_cost.as_dict(),
            "estimated_cost": (
                None if self.estimated_cost is None else self.estimated_cost.as_dict()
            ),
        }


# --- alerts ------------------------------------------------------------------------------------


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class LowStockAlert:
    """One crossing of a level's threshold, from the moment it was seen until stock recovered."""

    alert_id: str
    sku: str
    warehouse: str
    status: AlertStatus
    available: int  # when the alert was raised
    threshold: int
    created_at: datetime
    reorder_suggestion: ReorderSuggestion
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None

    @classmethod
    def raise_for(
        cls,
        alert_id: str,
        *,
        sku: str,
        warehouse: str,
        available: int,
        threshold: int,
        suggestion: ReorderSuggestion,
        at: datetime,
    ) -> LowStockAlert:
        if available > threshold:
            raise ValueError(f"{sku} in {warehouse} is not low ({available} > {threshold})")
        return cls(
            alert_id=alert_id,
            sku=sku,
            warehouse=warehouse,
            status=AlertStatus.OPEN,
            available=available,
            threshold=threshold,
            created_at=at,
            reorder_suggestion=suggestion,
        )

    @property
    def is_resolved(self) -> bool:
        return self.status is AlertStatus.RESOLVED

    def acknowledge(self, *, by: str, at: datetime) -> LowStockAlert:
        """Ops have seen it. Acknowledging again changes nothing."""
        if self.status is AlertStatus.ACKNOWLEDGED:
            return self
        if self.status is AlertStatus.RESOLVED:
            raise InvalidTransition.between(
                self.status, AlertStatus.ACKNOWLEDGED, "stock has already recovered"
            )
        return replace(
            self, status=AlertStatus.ACKNOWLEDGED, acknowledged_at=at, acknowledged_by=by
        )

    def resolve(self, *, at: datetime) -> LowStockAlert:
        """Stock rose back above the threshold. Resolving again changes nothing."""
        if self.is_resolved:
            return self
        return replace(self, status=AlertStatus.RESOLVED, resolved_at=at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "sku": self.sku,
            "warehouse": self.warehouse,
            "status": self.status.value,
            "available": self.available,
            "threshold": self.threshold,
            "created_at": self.created_at,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": self.resolved_at,
            "reorder_suggestion": self.reorder_suggestion.as_dict(),
        }
