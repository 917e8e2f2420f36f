"""The nightly after-sales tables, computed from the requests themselves (not counters).

``after_sales/by_product``: per (SKU, type, reason), the day's requests and their units, the
refunds of the requests refunded that day (each refund shared over its request's lines by
value), and the SKU's return rate: units under return requests over the last 30 days ÷ units
delivered (shipped) in those days.

``after_sales/summary``: per type, the day's requests and completions (``refunded`` or
``completed``), and the median days from request to completion over the requests
completed that day.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.domain.after_sales import (
    AfterSalesRequest,
    AfterSalesStatus,
    AfterSalesType,
    RequestLine,
)
from chalicelib.domain.analytics import ratio
from chalicelib.domain.money import Money
from chalicelib.domain.reports import ReportTable

AREA = "after_sales"
RETURN_RATE_DAYS = 30
BY_PRODUCT_COLUMNS = (
    "sku",
    "name_zh",
    "name_en",
    "type",
    "reason",
    "currency",
    "requests",
    "units",
    "refunds_minor",
    "return_rate",
)
SUMMARY_COLUMNS = ("type", "requests", "completions", "median_days_to_complete")


@dataclass(frozen=True, slots=True)
class Names:
    name_zh: str | None
    name_en: str | None


def _line_refunds(request: AfterSalesRequest, prices: Mapping[str, Money]) -> list[int]:
    """The request's refund shared over its lines by their value."""
    refund = request.refund_amount
    if refund is None or refund.is_zero():
        return [0] * len(request.lines)
    weights = [
        prices[line.sku].amount * line.quantity if line.sku in prices else 0
        for line in request.lines
    ]
    if sum(weights) == 0:
        weights = [line.quantity for line in request.lines]
    return [share.amount for share in refund.allocate(weights)]


def by_product(
    requests: Iterable[AfterSalesRequest],
    refunded: Iterable[AfterSalesRequest] = (),
    *,
    currency: str,
    prices: Mapping[str, Money],
    names: Mapping[str, Names],
    returned_units: Mapping[str, int],
    delivered_units: Mapping[str, int],
) -> ReportTable:
    groups: dict[tuple[str, str, str], dict[str, int]] = {}

    def group_of(request: AfterSalesRequest, line: RequestLine) -> dict[str, int]:
        key = (line.sku, request.type.value, line.reason.value)
        return groups.setdefault(key, {"requests": 0, "units": 0, "refunds": 0})

    for request in requests:
        for line in request.lines:
            group = group_of(request, line)
            group["requests"] += 1
            group["units"] += line.quantity
    for request in refunded:
        if request.status is not AfterSalesStatus.REFUNDED:
            continue
        for line, refund in zip(request.lines, _line_refunds(request, prices), strict=True):
            group_of(request, line)["refunds"] += refund
    rows = []
    for (sku, kind, reason), group in sorted(groups.items()):
        known = names.get(sku)
        rows.append(
            {
                "sku": sku,
                "name_zh": known.name_zh if known else None,
                "name_en": known.name_en if known else None,
                "type": kind,
                "reason": reason,
                "currency": currency,
                "requests": group["requests"],
                "units": group["units"],
                "refunds_minor": group["refunds"],
                "return_rate": ratio(returned_units.get(sku, 0), delivered_units.get(sku, 0)),
            }
        )
    return ReportTable(AREA, "by_product", BY_PRODUCT_COLUMNS, tuple(rows))


def returned_units(requests: Iterable[AfterSalesRequest]) -> dict[str, int]:
    """Units under return requests that still stand (not rejected, cancelled or closed)."""
    units: dict[str, int] = {}
    for request in requests:
        if request.type is not AfterSalesType.RETURN or not request.covers_units:
            continue
        for sku, quantity in request.quantities().items():
            units[sku] = units.get(sku, 0) + quantity
    return units


def summary(
    created: Iterable[AfterSalesRequest], completed: Iterable[AfterSalesRequest]
) -> ReportTable:
    made: dict[str, int] = {}
    for request in created:
        made[request.type.value] = made.get(request.type.value, 0) + 1
    durations: dict[str, list[float]] = {}
    for request in completed:
        done = request.completed_at
        if done is None:
            continue
        days = (done - request.created_at).total_seconds() / 86400
        durations.setdefault(request.type.value, []).append(days)
    rows = []
    for kind in AfterSalesType:
        finished = durations.get(kind.value, [])
        rows.append(
            {
                "type": kind.value,
                "requests": made.get(kind.value, 0),
                "completions": len(finished),
                "median_days_to_complete": (
                    round(statistics.median(finished), 2) if finished else None
                ),
            }
        )
    return ReportTable(AREA, "summary", SUMMARY_COLUMNS, tuple(rows))
