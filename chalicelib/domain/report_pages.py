"""The day's summary for a person: the figures behind it and the page that shows them.

``build_summary`` picks, at export time, what the summary page needs from the day's report
tables (revenue by hour, top products, days of stock cover per SKU) next to the headline
figures, so that serving the page reads one small object. ``render_summary_page`` turns
that summary into a self-contained HTML page whose charts are inline SVG drawn here: no
scripts, no plotting library, no outside resources. Every piece of text is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money
from chalicelib.domain.reports import DailyReports, ReportTable

# Where the charts come from: report name and the columns read (declared in report_schemas).
HOURLY_SALES = "sales/by_hour"
TOP_PRODUCTS = "sales/top_products"
SKU_TURNOVER = "inventory/sku_turnover"
CHART_COLUMNS = {
    HOURLY_SALES: ("hour", "currency", "revenue_minor"),
    TOP_PRODUCTS: ("rank", "sku", "name_zh", "name_en", "currency", "units", "revenue_minor"),
    SKU_TURNOVER: ("sku", "name_zh", "name_en", "days_of_cover"),
}
HOURS = range(24)
# The SKUs closest to running out; a catalogue of hundreds would not fit one chart.
STOCK_COVER_LIMIT = 30
NO_DATA = "No data for this day"


# --- the summary document -----------------------------------------------------------------


def _table(reports: DailyReports, name: str) -> ReportTable | None:
    try:
        return reports.table(name)
    except KeyError:
        return None


def _display_name(row: Mapping[str, Any]) -> str:
    return str(row.get("name_zh") or row.get("name_en") or row.get("sku") or "")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _revenue_by_hour(table: ReportTable | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    totals: dict[tuple[str, int], int] = {}
    for row in table.rows:
        hour, currency, revenue = row.get("hour"), row.get("currency"), row.get("revenue_minor")
        if isinstance(hour, int) and hour in HOURS and isinstance(currency, str):
            amount = revenue if isinstance(revenue, int) and not isinstance(revenue, bool) else 0
            totals[(currency, hour)] = totals.get((currency, hour), 0) + amount
    currencies = sorted({currency for currency, _hour in totals})
    return [
        {"hour": hour, "currency": currency, "revenue_minor": totals.get((currency, hour), 0)}
        for currency in currencies
        for hour in HOURS
    ]


def _top_products(table: ReportTable | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    rows = [row for row in table.rows if _is_number(row.get("revenue_minor"))]
    rows.sort(key=lambda row: (row.get("rank") is None, row.get("rank") or 0))
    return [
        {
            "rank": row.get("rank"),
            "sku": row.get("sku"),
            "name": _display_name(row),
            "currency": row.get("currency"),
            "units": row.get("units"),
            "revenue_minor": row["revenue_minor"],
        }
        for row in rows
    ]


def _stock_cover(table: ReportTable | None) -> list[dict[str, Any]]:
    if table is None:
        return []
    # None means nothing sold: no finite cover, nothing at risk, nothing to draw.
    rows = [row for row in table.rows if _is_number(row.get("days_of_cover"))]
    rows.sort(key=lambda row: (row["days_of_cover"], str(row.get("sku"))))
    return [
        {"sku": row.get("sku"), "name": _display_name(row), "days_of_cover": row["days_of_cover"]}
        for row in rows[:STOCK_COVER_LIMIT]
    ]


def build_summary(reports: DailyReports) -> dict[str, Any]:
    """The headline figures and the chart series for ``reports``' day, as plain JSON data."""
    return {
        "date": reports.day.isoformat(),
        "headline": dict(reports.headline),
        "charts": {
            "revenue_by_hour": _revenue_by_hour(_table(reports, HOURLY_SALES)),
            "top_products": _top_products(_table(reports, TOP_PRODUCTS)),
            "stock_cover": _stock_cover(_table(reports, SKU_TURNOVER)),
        },
    }


# --- charts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    value_text: str


_SVG_OPEN = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
    'width="100%" role="img" aria-label="{title}" class="chart">'
)
CHART_WIDTH = 720


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _no_data(title: str) -> str:
    height = 60
    return (
        _SVG_OPEN.format(width=CHART_WIDTH, height=height, title=_escape(title))
        + f"<title>{_escape(title)}</title>"
        + f'<text x="{CHART_WIDTH / 2:.0f}" y="35" text-anchor="middle" class="empty">'
        + f"{_escape(NO_DATA)}</text></svg>"
    )


def _scale(bars: Sequence[Bar]) -> float:
    largest = max((bar.value for bar in bars), default=0.0)
    return largest if largest > 0 else 1.0


def column_chart(bars: Sequence[Bar], *, title: str) -> str:
    """Vertical bars, one per label left to right (e.g. the hours of a day), as SVG."""
    if not bars:
        return _no_data(title)
    height, top, bottom, left = 240, 24, 28, 8
    plot_height = height - top - bottom
    step = (CHART_WIDTH - 2 * left) / len(bars)
    largest = _scale(bars)
    parts = [
        _SVG_OPEN.format(width=CHART_WIDTH, height=height, title=_escape(title)),
        f"<title>{_escape(title)}</title>",
        f'<text x="{left}" y="14" class="axis">max {_escape(max(bars, key=_value).value_text)}'
        "</text>",
        f'<line x1="{left}" y1="{top + plot_height}" x2="{CHART_WIDTH - left}" '
        f'y2="{top + plot_height}" class="baseline"/>',
    ]
    for index, bar in enumerate(bars):
        bar_height = max(bar.value, 0) / largest * plot_height
        x = left + index * step
        parts.append(
            f"<g><title>{_escape(bar.label)}: {_escape(bar.value_text)}</title>"
            f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_height - bar_height:.1f}" '
            f'width="{step * 0.8:.1f}" height="{bar_height:.1f}" class="bar"/>'
            f'<text x="{x + step / 2:.1f}" y="{height - 10}" text-anchor="middle" '
            f'class="axis">{_escape(_shorten(bar.label, 6))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _value(bar: Bar) -> float:
    return bar.value


def bar_chart(bars: Sequence[Bar], *, title: str) -> str:
    """Horizontal bars, one row per label top to bottom (e.g. ranked products), as SVG."""
    if not bars:
        return _no_data(title)
    row, top, label_width, value_width = 24, 8, 220, 130
    height = top * 2 + row * len(bars)
    plot_width = CHART_WIDTH - label_width - value_width
    largest = _scale(bars)
    parts = [
        _SVG_OPEN.format(width=CHART_WIDTH, height=height, title=_escape(title)),
        f"<title>{_escape(title)}</title>",
    ]
    for index, bar in enumerate(bars):
        y = top + index * row
        length = max(bar.value, 0) / largest * plot_width
        parts.append(
            f"<g><title>{_escape(bar.label)}: {_escape(bar.value_text)}</title>"
            f'<text x="{label_width - 8}" y="{y + row * 0.65:.1f}" text-anchor="end" '
            f'class="label">{_escape(_shorten(bar.label, 16))}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
            f'class="bar"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + row * 0.65:.1f}" '
            f'class="value">{_escape(bar.value_text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the page -----------------------------------------------------------------------------


def money_text(amount: Any, currency: Any) -> str:
    try:
        return str(Money(amount, currency))
    except InvalidInput:
        return f"{amount} {currency}".strip()


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _headline_rows(headline: Mapping[str, Any]) -> list[tuple[str, str]]:
    currency = headline.get("currency")
    rows = []
    for key, value in headline.items():
        if key.endswith("_minor") and isinstance(value, int) and not isinstance(value, bool):
            text = money_text(value, currency)
        else:
            text = _number_text(value)
        rows.append((key.removesuffix("_minor").replace("_", " "), text))
    return rows


def _by_currency(points: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for point in points:
        grouped.setdefault(str(point.get("currency") or ""), []).append(point)
    return grouped


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_escape(title)}</h2>{body}</section>"


def _revenue_sections(points: Sequence[Mapping[str, Any]]) -> list[str]:
    title = "Revenue by hour"
    grouped = _by_currency(points)
    if not grouped:
        return [_section(title, column_chart([], title=title))]
    sections = []
    for currency, series in grouped.items():
        named = f"{title} ({currency})" if currency else title
        bars = [
            Bar(
                f"{point['hour']:02d}",
                point["revenue_minor"],
                money_text(point["revenue_minor"], currency),
            )
            for point in series
        ]
        sections.append(_section(named, column_chart(bars, title=named)))
    return sections


def _top_product_sections(products: Sequence[Mapping[str, Any]]) -> list[str]:
    title = "Top products by revenue"
    grouped = _by_currency(products)
    if not grouped:
        return [_section(title, bar_chart([], title=title))]
    sections = []
    for currency, items in grouped.items():
        named = f"{title} ({currency})" if len(grouped) > 1 and currency else title
        bars = [
            Bar(
                str(item.get("name") or item.get("sku") or ""),
                item["revenue_minor"],
                money_text(item["revenue_minor"], currency),
            )
            for item in items
        ]
        sections.append(_section(named, bar_chart(bars, title=named)))
    return sections


def _stock_cover_section(cover: Sequence[Mapping[str, Any]]) -> str:
    title = "Stock cover: days of stock left at the recent rate of sale"
    bars = [
        Bar(
            str(item.get("name") or item.get("sku") or ""),
            float(item["days_of_cover"]),
            f"{_number_text(float(item['days_of_cover']))} days",
        )
        for item in cover
    ]
    note = (
        f"<p class='note'>The {STOCK_COVER_LIMIT} SKUs with the least cover; SKUs that sold "
        "nothing are left out.</p>"
    )
    return _section(title, note + bar_chart(bars, title=title))


_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",
sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0;color:#c9cfdb}
main{max-width:60rem;margin:0 auto;padding:1rem 2rem 3rem}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
h2{font-size:1.1rem;margin:.5rem 0}
table{border-collapse:collapse}td,th{text-align:left;padding:.25rem 1rem .25rem 0;
border-bottom:1px solid #eef0f4}td.figure{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#6b7385;margin:.2rem 0}
svg.chart{display:block;max-width:100%;height:auto}
svg .bar{fill:#1f5fae}svg .baseline{stroke:#9aa3b5}
svg text{font-size:12px;fill:#1d2330}svg .axis{fill:#6b7385;font-size:11px}
svg .empty{fill:#6b7385;font-size:14px}
"""


def render_summary_page(summary: Mapping[str, Any]) -> str:
    """The summary as one HTML page (UTF-8), charts inline; missing parts say there is no data."""
    day = str(summary.get("date") or "")
    headline = summary.get("headline") or {}
    charts = summary.get("charts") or {}
    rows = _headline_rows(headline)
    if rows:
        figures = "".join(
            f'<tr><th scope="row">{_escape(label)}</th><td class="figure">{_escape(text)}</td></tr>'
            for label, text in rows
        )
        headline_html = f"<table>{figures}</table>"
    else:
        headline_html = f"<p class='note'>{_escape(NO_DATA)}</p>"
    sections = [_section("Headline", headline_html)]
    sections += _revenue_sections(charts.get("revenue_by_hour") or [])
    sections += _top_product_sections(charts.get("top_products") or [])
    sections.append(_stock_cover_section(charts.get("stock_cover") or []))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Daily report {_escape(day)}</title><style>{_STYLE}</style></head>"
        f"<body><header><h1>Daily report</h1><p>{_escape(day)}</p></header>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )
