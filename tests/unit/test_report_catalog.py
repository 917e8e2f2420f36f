"""The Athena catalogue generated from the report schemas, and its place in the package."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.report_files import table_key
from chalicelib.domain.report_schemas import REPORT_SCHEMAS, split_name
from infra.local.provision import load_template
from infra.package import build_merge_template, lint
from infra.report_catalog import (
    DATABASE_LOGICAL_ID,
    glue_resources,
    glue_table_name,
    table_logical_id,
)

DAY = date(2026, 11, 24)
CHALICE_TEMPLATE = {
    "Resources": {
        "APIHandler": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "app.app",
                "Tags": {"aws-chalice": "version=1.34.0:stage=dev:app=orderdesk"},
            },
        }
    }
}


def table_input(report: str, file_format: str) -> dict[str, Any]:
    resource = glue_resources()[table_logical_id(report, file_format)]
    assert resource["Type"] == "AWS::Glue::Table"
    assert resource["Properties"]["DatabaseName"] == {"Ref": DATABASE_LOGICAL_ID}
    return resource["Properties"]["TableInput"]


def test_one_database_and_a_csv_and_a_json_lines_table_per_report() -> None:
    resources = glue_resources()
    assert resources[DATABASE_LOGICAL_ID]["Type"] == "AWS::Glue::Database"
    tables = [r for r in resources.values() if r["Type"] == "AWS::Glue::Table"]
    assert len(tables) == 2 * len(REPORT_SCHEMAS) == 32
    names = {t["Properties"]["TableInput"]["Name"] for t in tables}
    assert {"sales_by_hour", "sales_by_hour_jsonl", "customers_rfm_segments_jsonl"} <= names


@pytest.mark.parametrize("report", sorted(REPORT_SCHEMAS))
@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_table_columns_are_the_declared_schema_partitioned_by_day(
    report: str, file_format: str
) -> None:
    described = table_input(report, file_format)
    assert described["Name"] == glue_table_name(report, file_format)
    columns = described["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == list(REPORT_SCHEMAS[report])
    assert described["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]


@pytest.mark.parametrize("report", sorted(REPORT_SCHEMAS))
@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_partition_projection_points_at_the_keys_the_export_writes(
    report: str, file_format: str
) -> None:
    parameters = table_input(report, file_format)["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.dt.range"].endswith(",NOW")
    template = parameters["storage.location.template"]["Fn::Sub"]
    # ${!dt} reaches Athena as ${dt}; the bucket is the template's ReportsBucket.
    day_location = template.replace("${ReportsBucket}", "bucket").replace("${!dt}", DAY.isoformat())
    area, table = split_name(report)
    key = table_key(area, table, file_format, DAY)
    assert f"s3://bucket/{key}".startswith(day_location)
    assert day_location.endswith(f"dt={DAY.isoformat()}/")


def test_csv_tables_skip_the_header_and_read_empty_fields_as_null() -> None:
    described = table_input("sales/by_product", "csv")
    assert described["Parameters"]["skip.header.line.count"] == "1"
    assert described["Parameters"]["use.null.for.invalid.data"] == "true"
    serde = described["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert serde["Parameters"]["quoteChar"] == '"'


def test_json_lines_tables_use_a_json_serde_and_no_header() -> None:
    described = table_input("sales/by_product", "jsonl")
    assert "skip.header.line.count" not in described["Parameters"]
    serde = described["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"


def test_merge_template_adds_the_catalogue_and_the_code_version() -> None:
    merge = build_merge_template(load_template(), CHALICE_TEMPLATE, "dev", code_version="abc123")
    assert set(glue_resources()) <= set(merge["Resources"])
    variables = merge["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CODE_VERSION"] == "abc123"


def test_resources_with_the_catalogue_are_cfn_lint_clean(tmp_path: Path) -> None:
    template = load_template()
    template["Resources"].update(glue_resources())
    path = tmp_path / "resources-with-catalogue.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    assert lint(path) == []
