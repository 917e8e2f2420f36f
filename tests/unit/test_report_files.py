"""Report files: CSV for Excel and Athena, JSON Lines, keys, schema checks and the manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain.report_files import (
    BOM,
    Manifest,
    manifest_key,
    render_csv,
    render_jsonl,
    report_files,
    summary_key,
    table_key,
)
from chalicelib.domain.report_schemas import (
    REPORT_SCHEMAS,
    ReportSchemaError,
    check_table,
    problems_with_schemas,
)
from chalicelib.domain.reports import DailyReports, ReportTable

DAY = date(2026, 11, 24)
TOP_COLUMNS = tuple(column for column, _type in REPORT_SCHEMAS["sales/top_products"])


def top_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "rank": 1,
        "sku": "EAR-001",
        "name_zh": "无线蓝牙耳机 Pro",
        "name_en": "Wireless Earbuds Pro",
        "currency": "CNY",
        "units": 3,
        "revenue_minor": 38700,
    }
    return {**row, **overrides}


def top_products(*rows: dict[str, Any]) -> ReportTable:
    return ReportTable("sales", "top_products", TOP_COLUMNS, tuple(rows))


def hourly(*rows: dict[str, Any]) -> ReportTable:
    columns = tuple(column for column, _type in REPORT_SCHEMAS["sales/by_hour"])
    return ReportTable("sales", "by_hour", columns, tuple(rows))


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


# --- CSV ----------------------------------------------------------------------------------


def test_csv_starts_with_a_byte_order_mark_then_the_header_in_column_order() -> None:
    body = render_csv(TOP_COLUMNS, [top_row()])
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.count(BOM.encode()) == 1
    assert body.decode("utf-8-sig").split("\r\n")[0] == ",".join(TOP_COLUMNS)


def test_chinese_names_round_trip_through_csv() -> None:
    body = render_csv(TOP_COLUMNS, [top_row(name_zh="儿童保温杯（粉色）")])
    header, row = csv_rows(body)
    assert dict(zip(header, row, strict=True))["name_zh"] == "儿童保温杯（粉色）"


def test_commas_quotes_and_line_breaks_are_quoted_as_rfc_4180_says() -> None:
    tricky = 'Mug, large "XL"\nsecond line'
    body = render_csv(TOP_COLUMNS, [top_row(name_en=tricky)])
    assert b'"Mug, large ""XL""\nsecond line"' in body
    assert body.endswith(b"\r\n")
    _header, row = csv_rows(body)
    assert row[TOP_COLUMNS.index("name_en")] == tricky


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_defused_in_csv_only(name: str) -> None:
    row = top_row(name_en=name)
    _header, values = csv_rows(render_csv(TOP_COLUMNS, [row]))
    assert values[TOP_COLUMNS.index("name_en")] == "'" + name
    assert json.loads(render_jsonl(TOP_COLUMNS, [row]))["name_en"] == name


def test_negative_numbers_are_written_as_numbers() -> None:
    columns = ("delta",)
    assert csv_rows(render_csv(columns, [{"delta": -3}]))[1:] == [["-3"]]


def test_plain_text_is_not_quoted() -> None:
    body = render_csv(TOP_COLUMNS, [top_row()])
    assert b",EAR-001,\xe6\x97\xa0" in body  # sku and name sit bare between commas


def test_none_is_an_empty_csv_field_and_a_json_null() -> None:
    row = top_row(name_en=None, units=None)
    _header, values = csv_rows(render_csv(TOP_COLUMNS, [row]))
    assert values[TOP_COLUMNS.index("name_en")] == ""
    assert values[TOP_COLUMNS.index("units")] == ""
    (line,) = render_jsonl(TOP_COLUMNS, [row]).decode().splitlines()
    assert json.loads(line)["name_en"] is None and json.loads(line)["units"] is None


def test_money_in_minor_units_stays_an_integer_in_both_formats() -> None:
    row = top_row(revenue_minor=1_234_567_890_123)
    _header, values = csv_rows(render_csv(TOP_COLUMNS, [row]))
    assert values[TOP_COLUMNS.index("revenue_minor")] == "1234567890123"
    decoded = json.loads(render_jsonl(TOP_COLUMNS, [row]))
    assert decoded["revenue_minor"] == 1_234_567_890_123
    assert isinstance(decoded["revenue_minor"], int)


def test_booleans_and_ratios_are_written_as_athena_reads_them() -> None:
    columns = ("flag", "ratio")
    body = render_csv(columns, [{"flag": True, "ratio": 0.125}, {"flag": False, "ratio": 2}])
    assert csv_rows(body)[1:] == [["true", "0.125"], ["false", "2"]]
    lines = render_jsonl(columns, [{"flag": True, "ratio": 0.125}]).decode()
    assert lines == '{"flag":true,"ratio":0.125}\n'


def test_json_lines_hold_one_object_per_row_in_column_order_with_chinese_unescaped() -> None:
    body = render_jsonl(TOP_COLUMNS, [top_row(), top_row(rank=2, sku="MUG-002")])
    lines = body.decode("utf-8").splitlines()
    assert len(lines) == 2 and body.endswith(b"\n")
    assert list(json.loads(lines[0])) == list(TOP_COLUMNS)
    assert "无线蓝牙耳机" in lines[0]
    assert not body.startswith(b"\xef\xbb\xbf")


def test_an_empty_table_is_a_header_only_csv_and_an_empty_json_lines_file() -> None:
    assert csv_rows(render_csv(TOP_COLUMNS, [])) == [list(TOP_COLUMNS)]
    assert render_jsonl(TOP_COLUMNS, []) == b""


# --- keys ---------------------------------------------------------------------------------


def test_each_format_has_its_own_table_location_partitioned_by_day() -> None:
    assert table_key("sales", "by_hour", "csv", DAY) == (
        "reports/sales/by_hour/dt=2026-11-24/part-0.csv"
    )
    assert table_key("sales", "by_hour", "jsonl", DAY) == (
        "reports/sales/by_hour_jsonl/dt=2026-11-24/part-0.jsonl"
    )
    assert manifest_key(DAY) == "reports/_manifests/dt=2026-11-24.json"
    assert summary_key(DAY) == "reports/_summaries/dt=2026-11-24/summary.json"
    with pytest.raises(ValueError):
        table_key("sales", "by_hour", "xlsx", DAY)


# --- schema checks ------------------------------------------------------------------------


def test_declared_schemas_cover_the_sixteen_reports_and_follow_the_conventions() -> None:
    assert set(REPORT_SCHEMAS) == {
        "sales/daily_summary",
        "sales/by_product",
        "sales/by_category",
        "sales/by_warehouse",
        "sales/by_payment_method",
        "sales/by_hour",
        "sales/top_products",
        "inventory/stock_by_warehouse",
        "inventory/sku_turnover",
        "inventory/slow_movers",
        "inventory/stockouts",
        "customers/summary",
        "customers/rfm_segments",
        "customers/top_customers",
        "feedback/ratings_by_product",
        "feedback/complaint_terms",
    }
    assert problems_with_schemas() == []


def test_schema_convention_check_finds_what_is_wrong() -> None:
    bad = {
        "sales/bad": (("amount_minor", "double"), ("Name", "string"), ("dt", "string")),
        "finance/x": (("a", "decimal"), ("a", "string")),
    }
    problems = " | ".join(problems_with_schemas(bad))
    assert "money must be bigint" in problems
    assert "without a currency" in problems
    assert "sales/bad.Name" in problems and "sales/bad.dt" in problems
    assert "finance/x: not <area>/<table>" in problems
    assert "unknown type 'decimal'" in problems and "declared twice" in problems


def test_a_table_matching_its_schema_passes() -> None:
    check_table(top_products(top_row(), top_row(rank=2, name_en=None)))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("revenue_minor", 387.0),  # money is never a float
        ("revenue_minor", "38700"),
        ("units", True),
        ("sku", 1),
        ("rank", 1.5),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(column: str, value: Any) -> None:
    with pytest.raises(ReportSchemaError, match=column):
        check_table(top_products(top_row(**{column: value})))


def test_a_ratio_must_be_a_finite_number() -> None:
    columns = tuple(column for column, _type in REPORT_SCHEMAS["sales/by_category"])
    row = {
        "category": "audio",
        "currency": "CNY",
        "orders": 1,
        "units": 1,
        "revenue_minor": 100,
        "share_of_revenue": float("nan"),
    }
    with pytest.raises(ReportSchemaError, match="share_of_revenue"):
        check_table(ReportTable("sales", "by_category", columns, (row,)))
    check_table(ReportTable("sales", "by_category", columns, ({**row, "share_of_revenue": 1},)))


def test_columns_out_of_order_or_renamed_are_refused() -> None:
    swapped = (TOP_COLUMNS[1], TOP_COLUMNS[0], *TOP_COLUMNS[2:])
    with pytest.raises(ReportSchemaError, match="not the declared"):
        check_table(ReportTable("sales", "top_products", swapped, ()))
    renamed = (*TOP_COLUMNS[:-1], "revenue")
    with pytest.raises(ReportSchemaError, match=r"missing \['revenue_minor'\]"):
        check_table(ReportTable("sales", "top_products", renamed, ()))


def test_an_undeclared_table_is_refused() -> None:
    with pytest.raises(ReportSchemaError, match="no declared schema"):
        check_table(ReportTable("sales", "by_moon_phase", ("phase",), ()))


# --- the export's files and manifest ------------------------------------------------------


def test_every_table_becomes_a_csv_and_a_json_lines_file_in_declared_order() -> None:
    reports = DailyReports(DAY, [top_products(top_row()), hourly()])
    files = report_files(reports)
    assert [(f.table, f.format) for f in files] == [
        ("by_hour", "csv"),
        ("by_hour", "jsonl"),
        ("top_products", "csv"),
        ("top_products", "jsonl"),
    ]
    assert [f.rows for f in files] == [0, 0, 1, 1]
    assert files[2].content_type == "text/csv; charset=utf-8"
    assert files[3].content_type == "application/x-ndjson"


def test_the_same_data_renders_the_same_bytes_whatever_the_row_dict_order() -> None:
    first = report_files(DailyReports(DAY, [top_products(top_row())]))
    reordered = dict(reversed(list(top_row().items())))
    second = report_files(DailyReports(DAY, [top_products(reordered)]))
    assert [f.body for f in first] == [f.body for f in second]


def test_a_table_given_twice_is_refused() -> None:
    with pytest.raises(ReportSchemaError, match="more than once"):
        report_files(DailyReports(DAY, [top_products(), top_products()]))


def test_manifest_records_rows_size_and_digest_and_reads_back() -> None:
    files = report_files(DailyReports(DAY, [top_products(top_row(), top_row(rank=2))]))
    manifest = Manifest.of(
        DAY, files, generated_at=datetime(2026, 11, 25, 1, 0, tzinfo=UTC), code_version="abc123"
    )
    document = manifest.as_dict()
    assert document["date"] == "2026-11-24"
    assert document["generated_at"] == "2026-11-25T01:00:00Z"
    assert document["code_version"] == "abc123"
    assert document["summary"] == "reports/_summaries/dt=2026-11-24/summary.json"
    csv_entry = document["files"][0]
    assert csv_entry == {
        "key": "reports/sales/top_products/dt=2026-11-24/part-0.csv",
        "format": "csv",
        "area": "sales",
        "table": "top_products",
        "rows": 2,
        "bytes": len(files[0].body),
        "sha256": hashlib.sha256(files[0].body).hexdigest(),
    }
    assert Manifest.from_dict(json.loads(manifest.render())) == manifest
