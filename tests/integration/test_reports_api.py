"""Report exports in S3 and finance's access to them, through the real app over moto."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import requests

from chalicelib.adapters import reports_bucket
from chalicelib.domain.report_schemas import REPORT_SCHEMAS, ReportSchemaError
from chalicelib.domain.reports import DailyReports, ReportTable
from chalicelib.services.exports import export_reports
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from conftest import Api  # the fixture's type, from this folder's conftest.py

BUCKET = "orderdesk-test-reports"
DAY = date(2026, 11, 24)
FIRST_RUN = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
TRICKY_NAME = 'Mug, "large"\nline two'


def report(name: str, *rows: dict[str, Any]) -> ReportTable:
    area, _, table = name.partition("/")
    columns = tuple(column for column, _type in REPORT_SCHEMAS[name])
    return ReportTable(
        area, table, columns, tuple({c: row.get(c) for c in columns} for row in rows)
    )


def day_reports(day: date = DAY) -> DailyReports:
    earbuds = {"sku": "EAR-1", "name_zh": "无线蓝牙耳机", "name_en": "Earbuds", "currency": "CNY"}
    mug = {"sku": "MUG-1", "name_zh": None, "name_en": TRICKY_NAME, "currency": "CNY"}
    return DailyReports(
        day,
        [
            report(
                "sales/by_hour",
                {"hour": 9, "currency": "CNY", "orders": 2, "units": 3, "revenue_minor": 38700},
                {"hour": 21, "currency": "CNY", "orders": 1, "units": 1, "revenue_minor": 5000},
            ),
            report(
                "sales/top_products",
                {**earbuds, "rank": 1, "units": 3, "revenue_minor": 38700},
                {**mug, "rank": 2, "units": 1, "revenue_minor": 5000},
            ),
            report(
                "inventory/sku_turnover",
                {**earbuds, "units_sold": 3, "available": 36, "days_of_cover": 12.0},
                {**mug, "units_sold": 1, "available": 4, "days_of_cover": 4.0},
            ),
            report("customers/top_customers"),  # an empty table is still exported
        ],
        headline={"currency": "CNY", "orders": 3, "net_revenue_minor": 43700},
    )


@pytest.fixture
def bucket(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The reports bucket in moto (inside the ``api`` fixture's mock); yields an S3 client."""
    monkeypatch.setenv("REPORTS_BUCKET", BUCKET)
    monkeypatch.delenv("CODE_VERSION", raising=False)
    get_settings.cache_clear()
    reports_bucket.reset()
    s3 = reports_bucket.client()
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    reports_bucket.reset()
    get_settings.cache_clear()


def finance(api: Api) -> dict[str, str]:
    return api.token("finance-1", "finance")


def stored_keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def body_of(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def stored_manifest(s3: Any, day: date = DAY) -> dict[str, Any]:
    return json.loads(body_of(s3, f"reports/_manifests/dt={day.isoformat()}.json"))


# --- the export -----------------------------------------------------------------------------


def test_manifest_lists_every_file_with_its_true_rows_size_and_digest(bucket: Any) -> None:
    returned = export_reports(day_reports(), generated_at=FIRST_RUN)
    manifest = stored_manifest(bucket)
    assert manifest == returned.as_dict()
    assert manifest["generated_at"] == "2026-11-25T01:00:00Z"
    assert manifest["code_version"] == "dev"
    expected_rows = {"by_hour": 2, "top_products": 2, "sku_turnover": 2, "top_customers": 0}
    assert {(f["table"], f["format"]) for f in manifest["files"]} == {
        (table, file_format) for table in expected_rows for file_format in ("csv", "jsonl")
    }
    for entry in manifest["files"]:
        body = body_of(bucket, entry["key"])
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["bytes"] == len(body)
        assert entry["rows"] == expected_rows[entry["table"]]
        if entry["format"] == "jsonl":
            assert len(body.decode().splitlines()) == entry["rows"]
    written = {entry["key"] for entry in manifest["files"]}
    assert stored_keys(bucket) == sorted(
        written | {manifest["summary"], "reports/_manifests/dt=2026-11-24.json"}
    )


def test_every_object_is_encrypted_at_rest(bucket: Any) -> None:
    export_reports(day_reports())
    keys = stored_keys(bucket)
    assert len(keys) == 10  # 4 tables x 2 formats, the summary and the manifest
    for key in keys:
        assert bucket.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"


def test_files_land_where_athena_reads_them_in_the_right_format(bucket: Any) -> None:
    export_reports(day_reports())
    csv_body = body_of(bucket, "reports/sales/top_products/dt=2026-11-24/part-0.csv")
    assert csv_body.startswith(b"\xef\xbb\xbf")
    assert "无线蓝牙耳机".encode() in csv_body
    assert b'"Mug, ""large""\nline two"' in csv_body
    head = bucket.head_object(
        Bucket=BUCKET, Key="reports/sales/top_products/dt=2026-11-24/part-0.csv"
    )
    assert head["ContentType"] == "text/csv; charset=utf-8"
    jsonl = body_of(bucket, "reports/sales/top_products_jsonl/dt=2026-11-24/part-0.jsonl")
    first = json.loads(jsonl.decode().splitlines()[0])
    assert first["name_zh"] == "无线蓝牙耳机" and first["revenue_minor"] == 38700


def test_running_a_day_again_overwrites_the_same_keys_with_the_same_bytes(bucket: Any) -> None:
    export_reports(day_reports(), generated_at=FIRST_RUN)
    first_keys = stored_keys(bucket)
    first = {key: body_of(bucket, key) for key in first_keys}
    first_manifest = stored_manifest(bucket)

    export_reports(day_reports(), generated_at=datetime(2026, 11, 25, 7, 30, tzinfo=UTC))
    assert stored_keys(bucket) == first_keys
    second_manifest = stored_manifest(bucket)
    assert second_manifest["generated_at"] == "2026-11-25T07:30:00Z"
    assert {**second_manifest, "generated_at": None} == {**first_manifest, "generated_at": None}
    for key in first_keys:
        if not key.startswith("reports/_manifests/"):
            assert body_of(bucket, key) == first[key], key


def test_a_table_that_breaks_its_schema_exports_nothing(bucket: Any) -> None:
    good = day_reports()
    columns = tuple(column for column, _type in REPORT_SCHEMAS["sales/by_category"])
    broken = ReportTable(
        "sales",
        "by_category",
        columns,
        ({**dict.fromkeys(columns), "category": "audio", "revenue_minor": 12.5},),
    )
    with pytest.raises(ReportSchemaError, match="revenue_minor"):
        export_reports(DailyReports(DAY, [*good.tables, broken], good.headline))
    assert stored_keys(bucket) == []


def test_manifest_records_the_configured_code_version(
    bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE_VERSION", "3589068abcde")
    get_settings.cache_clear()
    assert export_reports(day_reports()).code_version == "3589068abcde"
    assert stored_manifest(bucket)["code_version"] == "3589068abcde"


# --- GET /reports ---------------------------------------------------------------------------


def test_finance_gets_a_working_short_lived_link_for_every_file(api: Api, bucket: Any) -> None:
    manifest = export_reports(day_reports())
    response = api.request("GET", "/reports?date=2026-11-24", headers=finance(api))
    assert response.status_code == 200
    items = response.json_body["items"]
    assert len(items) == len(manifest.files) == 8
    by_key = {entry.key: entry for entry in manifest.files}
    for item in items:
        assert set(item) == {"area", "table", "format", "rows", "url"}
        url = urlsplit(item["url"])
        key = unquote(url.path.lstrip("/"))
        entry = by_key[key]
        assert (item["area"], item["table"], item["format"], item["rows"]) == (
            entry.area,
            entry.table,
            entry.format,
            entry.rows,
        )
        assert parse_qs(url.query)["X-Amz-Expires"] == ["900"]
        downloaded = requests.get(item["url"], timeout=10)
        assert downloaded.status_code == 200
        assert downloaded.content == body_of(bucket, key)
        filename = f"{entry.table}-2026-11-24.{entry.format}"
        assert downloaded.headers["Content-Disposition"] == f'attachment; filename="{filename}"'


def test_ops_may_list_reports_too(api: Api, bucket: Any) -> None:
    export_reports(day_reports())
    response = api.request("GET", "/reports?date=2026-11-24", headers=api.ops)
    assert response.status_code == 200
    assert len(response.json_body["items"]) == 8


@pytest.mark.parametrize("who", ["customer", "support"])
def test_customers_and_support_are_refused(api: Api, bucket: Any, who: str) -> None:
    export_reports(day_reports())
    headers = getattr(api, who)
    for path in ("/reports?date=2026-11-24", "/reports/2026-11-24/summary"):
        response = api.request("GET", path, headers=headers)
        assert response.status_code == 403, path
        assert response.json_body["error"] == "forbidden"
    assert (
        api.request("GET", "/reports/2026-11-24/summary.html", headers=headers).status_code == 403
    )


def test_no_token_is_401(api: Api, bucket: Any) -> None:
    assert api.request("GET", "/reports?date=2026-11-24").status_code == 401


def test_a_day_never_exported_is_404(api: Api, bucket: Any) -> None:
    export_reports(day_reports())
    for path in (
        "/reports?date=2026-11-23",
        "/reports/2026-11-23/summary",
        "/reports/2026-11-23/summary.html",
    ):
        response = api.request("GET", path, headers=finance(api))
        assert response.status_code == 404, path
        assert response.json_body["error"] == "not_found"
        assert response.json_body["details"] == {"date": "2026-11-23"}


@pytest.mark.parametrize(
    "path",
    [
        "/reports",
        "/reports?date=yesterday",
        "/reports?date=2026-02-30",
        "/reports?date=2026-1-5",
        "/reports?" + urlencode({"date": "２０２６-11-24"}),  # full-width digits
        "/reports/2026-13-01/summary",
        "/reports/20261124/summary.html",
    ],
)
def test_a_bad_date_is_400(api: Api, bucket: Any, path: str) -> None:
    response = api.request("GET", path, headers=finance(api))
    assert response.status_code == 400, response.body
    assert response.json_body["error"] == "validation_error"
    assert set(response.json_body) == {"error", "message", "details"}


# --- the summary ----------------------------------------------------------------------------


def test_summary_gives_the_headline_figures_and_chart_series(api: Api, bucket: Any) -> None:
    export_reports(day_reports())
    response = api.request("GET", "/reports/2026-11-24/summary", headers=finance(api))
    assert response.status_code == 200
    body = response.json_body
    assert body["date"] == "2026-11-24"
    assert body["headline"] == {"currency": "CNY", "orders": 3, "net_revenue_minor": 43700}
    charts = body["charts"]
    assert set(charts) == {"revenue_by_hour", "top_products", "stock_cover"}
    assert len(charts["revenue_by_hour"]) == 24
    assert any(row["name"] == "无线蓝牙耳机" for row in charts["top_products"])
    # In the order analytics gave them, which is the order the page shows them in.
    assert list(response.json_body["headline"]) == ["currency", "orders", "net_revenue_minor"]


def test_summary_page_is_utf8_html_with_charts(api: Api, bucket: Any) -> None:
    export_reports(day_reports())
    response = api.request("GET", "/reports/2026-11-24/summary.html", headers=finance(api))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode("utf-8")
    assert '<meta charset="utf-8">' in page
    assert "无线蓝牙耳机" in page
    assert "437.00 CNY" in page  # the headline's net revenue
    assert page.count("<svg") == 3
    assert 'Mug, "large"' not in page and "Mug, &quot;large&quot;" in page
    assert "<script" not in page
