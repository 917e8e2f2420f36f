"""The nightly reports as tables: what analytics computes and what exports write.

A ``DailyReports`` holds every table for one business day plus the headline figures;
each ``ReportTable`` names its area and table (``sales/by_product``) and its columns in
order, and its rows are plain values: str, int (money in minor units), float ratios
rounded for people, or None. Money columns end in ``_minor`` and come with a ``currency``
column, so nothing is ever a floating-point amount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

AREAS = ("sales", "inventory", "customers", "feedback")


@dataclass(frozen=True, slots=True)
class ReportTable:
    area: str
    table: str
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        if self.area not in AREAS:
            raise ValueError(f"unknown report area {self.area!r}")
        for row in self.rows:
            if set(row) != set(self.columns):
                raise ValueError(f"{self.area}/{self.table}: a row's fields are not its columns")

    @property
    def name(self) -> str:
        return f"{self.area}/{self.table}"


@dataclass(frozen=True, slots=True)
class DailyReports:
    day: date
    tables: Sequence[ReportTable]
    headline: Mapping[str, Any] = field(default_factory=dict)  # for GET /reports/{date}/summary

    def table(self, name: str) -> ReportTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)
