"""The day's summary: what it picks from the reports, its SVG charts and its HTML page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

from chalicelib.domain.report_pages import (
    CHART_COLUMNS,
    NO_DATA,
    STOCK_COVER_LIMIT,
    Bar,
    bar_chart,
    build_summary,
    column_chart,
    render_summary_page,
)
from chalicelib.domain.report_schemas import REPORT_SCHEMAS
from chalicelib.domain.reports import DailyReports, ReportTable

DAY = date(2026, 11, 24)
SVG = "{http://www.w3.org/2000/svg}"


def table(name: str, *rows: dict[str, Any]) -> ReportTable:
    area, _, table_name = name.partition("/")
    columns = tuple(column for column, _type in REPORT_SCHEMAS[name])
    filled = tuple({column: row.get(column) for column in columns} for row in rows)
    return ReportTable(area, table_name, columns, filled)


EARBUDS = {"sku": "EAR-1", "name_zh": "无线蓝牙耳机", "name_en": "Earbuds", "currency": "CNY"}
MUG = {"sku": "MUG-1", "name_en": "Mug", "currency": "CNY"}


def day_reports(**headline: Any) -> DailyReports:
    by_hour = table(
        "sales/by_hour",
        {"hour": 9, "currency": "CNY", "orders": 2, "revenue_minor": 25800},
        {"hour": 20, "currency": "CNY", "orders": 1, "revenue_minor": 12900},
    )
    top = table(
        "sales/top_products",
        {**MUG, "rank": 2, "revenue_minor": 5000},
        {**EARBUDS, "rank": 1, "revenue_minor": 38700},
    )
    turnover = table(
        "inventory/sku_turnover",
        {**EARBUDS, "days_of_cover": 12.5},
        {**MUG, "days_of_cover": 3},
        {"sku": "TOY-1", "name_en": "Unsold toy", "days_of_cover": None},
    )
    return DailyReports(
        DAY,
        [by_hour, top, turnover],
        headline=headline or {"currency": "CNY", "orders": 3, "net_revenue_minor": 123450},
    )


def svgs_in(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


# --- the summary document -----------------------------------------------------------------


def test_chart_columns_are_declared_in_the_report_schemas() -> None:
    for report, columns in CHART_COLUMNS.items():
        declared = {column for column, _type in REPORT_SCHEMAS[report]}
        assert set(columns) <= declared, report


def test_revenue_by_hour_covers_all_twenty_four_hours() -> None:
    series = build_summary(day_reports())["charts"]["revenue_by_hour"]
    assert [point["hour"] for point in series] == list(range(24))
    assert series[9] == {"hour": 9, "currency": "CNY", "revenue_minor": 25800}
    assert series[10]["revenue_minor"] == 0


def test_top_products_follow_rank_and_prefer_the_chinese_name() -> None:
    products = build_summary(day_reports())["charts"]["top_products"]
    assert [(p["sku"], p["name"]) for p in products] == [
        ("EAR-1", "无线蓝牙耳机"),
        ("MUG-1", "Mug"),
    ]


def test_stock_cover_lists_the_least_cover_first_and_leaves_out_unsold_skus() -> None:
    cover = build_summary(day_reports())["charts"]["stock_cover"]
    assert [(c["sku"], c["days_of_cover"]) for c in cover] == [("MUG-1", 3), ("EAR-1", 12.5)]


def test_stock_cover_is_limited_to_the_skus_closest_to_running_out() -> None:
    rows = [{"sku": f"SKU-{n:03d}", "days_of_cover": float(100 - n)} for n in range(50)]
    reports = DailyReports(DAY, [table("inventory/sku_turnover", *rows)])
    cover = build_summary(reports)["charts"]["stock_cover"]
    assert len(cover) == STOCK_COVER_LIMIT
    assert cover[0]["sku"] == "SKU-049"


def test_a_day_without_the_chart_tables_has_empty_series() -> None:
    summary = build_summary(DailyReports(DAY, []))
    assert summary == {
        "date": "2026-11-24",
        "headline": {},
        "charts": {"revenue_by_hour": [], "top_products": [], "stock_cover": []},
    }


# --- charts -------------------------------------------------------------------------------


def test_column_chart_is_well_formed_svg_with_one_bar_per_label() -> None:
    bars = [Bar(f"{hour:02d}", hour * 10, f"{hour}") for hour in range(24)]
    root = ET.fromstring(column_chart(bars, title="Revenue by hour"))
    assert root.tag == f"{SVG}svg"
    rects = root.findall(f".//{SVG}rect")
    assert len(rects) == 24
    heights = [float(rect.get("height", "0")) for rect in rects]
    assert heights[0] == 0 and heights[-1] == max(heights) > 0


def test_bar_chart_lengths_are_proportional_to_the_values() -> None:
    bars = [Bar("无线蓝牙耳机", 400, "4.00 CNY"), Bar("Mug", 100, "1.00 CNY")]
    root = ET.fromstring(bar_chart(bars, title="Top products"))
    widths = [float(rect.get("width", "0")) for rect in root.findall(f".//{SVG}rect")]
    assert widths[0] == 4 * widths[1]
    assert "无线蓝牙耳机" in [text.text for text in root.iter(f"{SVG}text")]


def test_chart_text_is_escaped_and_stays_well_formed() -> None:
    evil = '<script>alert("x")</script> & co'
    for chart in (column_chart, bar_chart):
        svg = chart([Bar(evil, 1, evil)], title=evil)
        assert "<script>" not in svg
        root = ET.fromstring(svg)
        assert root.find(f"{SVG}title").text == evil  # type: ignore[union-attr]


def test_empty_charts_say_there_is_no_data() -> None:
    for chart in (column_chart, bar_chart):
        root = ET.fromstring(chart([], title="Top products"))
        assert NO_DATA in "".join(root.itertext())


def test_negative_values_draw_no_bar_rather_than_an_inverted_one() -> None:
    root = ET.fromstring(column_chart([Bar("00", -5, "-5"), Bar("01", 10, "10")], title="t"))
    heights = [float(rect.get("height", "0")) for rect in root.findall(f".//{SVG}rect")]
    assert heights[0] == 0 and heights[1] > 0


# --- the page -----------------------------------------------------------------------------


def test_page_declares_utf8_and_shows_headline_money_and_chinese_names() -> None:
    page = render_summary_page(build_summary(day_reports()))
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "1234.50 CNY" in page  # net_revenue_minor, in yuan
    assert "net revenue" in page
    assert "无线蓝牙耳机" in page
    charts = svgs_in(page)
    assert len(charts) == 3  # revenue by hour, top products, stock cover
    assert all(chart.tag == f"{SVG}svg" for chart in charts)


def test_page_escapes_every_piece_of_text() -> None:
    evil = '<img src=x onerror="alert(1)">'
    reports = DailyReports(
        DAY,
        [
            table(
                "sales/top_products",
                {"rank": 1, "sku": "X", "name_zh": evil, "currency": "CNY", "revenue_minor": 1},
            )
        ],
        headline={evil: evil, "currency": "CNY"},
    )
    page = render_summary_page(build_summary(reports))
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    svgs_in(page)  # still well-formed


def test_an_empty_day_renders_a_friendly_page() -> None:
    page = render_summary_page(build_summary(DailyReports(DAY, [])))
    assert page.count(NO_DATA) == 4  # headline and three charts
    assert len(svgs_in(page)) == 3


def test_a_summary_missing_parts_still_renders() -> None:
    page = render_summary_page({"date": "2026-11-24"})
    assert NO_DATA in page and "2026-11-24" in page
