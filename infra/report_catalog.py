"""The Athena catalogue over the report exports: Glue resources generated from the schemas.

One ``AWS::Glue::Database`` and, for every report declared in
``chalicelib/domain/report_schemas.py``, two ``AWS::Glue::Table``s: ``<area>_<table>`` over
the CSV files and ``<area>_<table>_jsonl`` over the JSON Lines, each partitioned by ``dt``
with partition projection, so a new day is queryable the moment its files land (no
crawler, no ``MSCK REPAIR``). ``infra/package.py`` merges them into the package; they are
generated rather than written out in ``infra/resources.yaml`` so that the columns Athena
reads can never drift from the columns the export checks.

CSV tables use OpenCSVSerde, skip the header line (which also carries the byte-order mark)
and read an empty field in a typed column as NULL (``use.null.for.invalid.data``): the
export has already checked every value's type, so an empty field is the only thing that
does not parse, and it means None. OpenCSVSerde cannot read a line break inside a field,
and text the export defused for spreadsheets reads with its leading apostrophe; the
``_jsonl`` tables carry both exactly.

The local stack does not create these: moto's CloudFormation has no Glue resources, and
nothing in the app reads the catalogue.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.report_files import CSV, FORMATS, JSONL, table_location
from chalicelib.domain.report_schemas import PARTITION_COLUMN, REPORT_SCHEMAS, split_name

DATABASE_LOGICAL_ID = "ReportsDatabase"
BUCKET_LOGICAL_ID = "ReportsBucket"
# The first day partition projection offers; NOW is today (UTC) whenever a query runs.
PROJECTION_RANGE = "2026-01-01,NOW"

_TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
_SERDES: dict[str, dict[str, Any]] = {
    CSV: {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
        "Parameters": {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"},
    },
    JSONL: {
        "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
        "Parameters": {"ignore.malformed.json": "false"},
    },
}
_FORMAT_PARAMETERS: dict[str, dict[str, str]] = {
    CSV: {
        "classification": "csv",
        "skip.header.line.count": "1",
        "use.null.for.invalid.data": "true",
    },
    JSONL: {"classification": "json"},
}


def glue_table_name(report: str, file_format: str) -> str:
    """``sales/by_hour`` -> ``sales_by_hour`` (CSV) or ``sales_by_hour_jsonl``."""
    area, table = split_name(report)
    return f"{area}_{table}" if file_format == CSV else f"{area}_{table}_{file_format}"


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("/", "_").split("_"))


def table_logical_id(report: str, file_format: str) -> str:
    return f"ReportTable{_camel(report)}{file_format.capitalize()}"


def _s3(location: str) -> dict[str, str]:
    # ${!dt} is Fn::Sub's escape for a literal ${dt}: Athena substitutes it, not CloudFormation.
    return {"Fn::Sub": f"s3://${{{BUCKET_LOGICAL_ID}}}/{location}"}


def _table(report: str, file_format: str) -> dict[str, Any]:
    area, table = split_name(report)
    location = table_location(area, table, file_format)
    return {
        "Type": "AWS::Glue::Table",
        "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseName": {"Ref": DATABASE_LOGICAL_ID},
            "TableInput": {
                "Name": glue_table_name(report, file_format),
                "Description": f"{report} report, {file_format} files, one partition per day",
                "TableType": "EXTERNAL_TABLE",
                "PartitionKeys": [{"Name": PARTITION_COLUMN, "Type": "string"}],
                "Parameters": {
                    **_FORMAT_PARAMETERS[file_format],
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": PROJECTION_RANGE,
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": _s3(f"{location}/dt=${{!dt}}/"),
                },
                "StorageDescriptor": {
                    "Columns": [
                        {"Name": column, "Type": kind} for column, kind in REPORT_SCHEMAS[report]
                    ],
                    "Location": _s3(f"{location}/"),
                    "InputFormat": _TEXT_INPUT,
                    "OutputFormat": _TEXT_OUTPUT,
                    "SerdeInfo": _SERDES[file_format],
                },
            },
        },
    }


def glue_resources() -> dict[str, dict[str, Any]]:
    """CloudFormation resources (logical id -> resource) for the database and every table.

    They refer to the template's ``Stage`` parameter and its ``ReportsBucket``."""
    resources: dict[str, dict[str, Any]] = {
        DATABASE_LOGICAL_ID: {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseInput": {
                    "Name": {"Fn::Sub": "orderdesk_${Stage}_reports"},
                    "Description": "Nightly report exports for finance, queried with Athena",
                },
            },
        }
    }
    for report in REPORT_SCHEMAS:
        for file_format in FORMATS:
            resources[table_logical_id(report, file_format)] = _table(report, file_format)
    return resources
