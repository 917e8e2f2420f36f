"""The files of a nightly export: each report table as CSV and as JSON Lines, and the manifest.

Layout in the reports bucket, one format per table location so that each Athena table reads
files of one kind only::

    reports/<area>/<table>/dt=YYYY-MM-DD/part-0.csv
    reports/<area>/<table>_jsonl/dt=YYYY-MM-DD/part-0.jsonl
    reports/_summaries/dt=YYYY-MM-DD/summary.json
    reports/_manifests/dt=YYYY-MM-DD.json

CSV is for people first: UTF-8 with a byte-order mark so that Excel shows Chinese names,
RFC 4180 quoting (CRLF line ends, fields holding a comma, quote or line break quoted,
quotes doubled), a header row, None as an empty field, booleans as true/false. Text that a
spreadsheet would run as a formula (starting with ``= + - @``, tab or CR; product names are
typed by staff) gets a leading apostrophe in CSV only. JSON Lines keeps every value exactly:
money stays an integer, None is null. The same data always renders to the same bytes, so a
re-run export overwrites each key with identical content.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.domain.report_schemas import REPORT_SCHEMAS, ReportSchemaError, check_table
from chalicelib.domain.reports import DailyReports, ReportTable

ROOT = "reports"
CSV = "csv"
JSONL = "jsonl"
FORMATS = (CSV, JSONL)
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSONL: "application/x-ndjson"}
JSON_CONTENT_TYPE = "application/json"
BOM = "\ufeff"


# --- where things go ----------------------------------------------------------------------


def table_location(area: str, table: str, file_format: str) -> str:
    """The prefix holding every day of one table in one format (an Athena table's location)."""
    if file_format not in FORMATS:
        raise ValueError(f"unknown report format {file_format!r}")
    folder = table if file_format == CSV else f"{table}_{file_format}"
    return f"{ROOT}/{area}/{folder}"


def table_key(area: str, table: str, file_format: str, day: date) -> str:
    return f"{table_location(area, table, file_format)}/dt={day.isoformat()}/part-0.{file_format}"


def manifest_key(day: date) -> str:
    return f"{ROOT}/_manifests/dt={day.isoformat()}.json"


def summary_key(day: date) -> str:
    return f"{ROOT}/_summaries/dt={day.isoformat()}/summary.json"


# --- rendering ----------------------------------------------------------------------------


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # shortest text that reads back as the same number
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_field(row[column]) for column in columns])
    return buffer.getvalue().encode("utf-8")


def render_jsonl(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    lines = [
        json.dumps(
            {column: row[column] for column in columns},
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        + "\n"
        for row in rows
    ]
    return "".join(lines).encode("utf-8")


def render_json(document: Mapping[str, Any], *, sort_keys: bool = True) -> bytes:
    """A JSON document; equal content gives equal bytes (with ``sort_keys=False``, as long as
    it is built in the same order, e.g. to keep the headline figures in their given order)."""
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=sort_keys, allow_nan=False)
    return (text + "\n").encode("utf-8")


# --- the export's files -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportFile:
    key: str
    format: str
    area: str
    table: str
    rows: int
    body: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def entry(self) -> ManifestEntry:
        return ManifestEntry(
            key=self.key,
            format=self.format,
            area=self.area,
            table=self.table,
            rows=self.rows,
            bytes=len(self.body),
            sha256=hashlib.sha256(self.body).hexdigest(),
        )


def _declared_order(table: ReportTable) -> int:
    names = list(REPORT_SCHEMAS)
    return names.index(table.name) if table.name in names else len(names)


def report_files(reports: DailyReports) -> list[ReportFile]:
    """Every file for ``reports``, in the declared order of the tables, CSV before JSON Lines.

    Raises ``ReportSchemaError`` (before anything is rendered) when a table is unknown,
    given twice, or does not match its declared schema."""
    names = [table.name for table in reports.tables]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ReportSchemaError(f"tables given more than once: {repeated}")
    for table in reports.tables:
        check_table(table)
    files: list[ReportFile] = []
    for table in sorted(reports.tables, key=_declared_order):
        rendered = {
            CSV: render_csv(table.columns, table.rows),
            JSONL: render_jsonl(table.columns, table.rows),
        }
        for file_format, body in rendered.items():
            files.append(
                ReportFile(
                    key=table_key(table.area, table.table, file_format, reports.day),
                    format=file_format,
                    area=table.area,
                    table=table.table,
                    rows=len(table.rows),
                    body=body,
                )
            )
    return files


# --- the manifest -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    key: str
    format: str
    area: str
    table: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "format": self.format,
            "area": self.area,
            "table": self.table,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            key=str(data["key"]),
            format=str(data["format"]),
            area=str(data["area"]),
            table=str(data["table"]),
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            sha256=str(data["sha256"]),
        )


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Manifest:
    """What one day's export wrote: written last, so its presence means the day is complete."""

    day: date
    generated_at: datetime
    code_version: str
    files: tuple[ManifestEntry, ...]
    summary_key: str

    @classmethod
    def of(
        cls,
        day: date,
        files: Iterable[ReportFile],
        *,
        generated_at: datetime,
        code_version: str,
    ) -> Manifest:
        return cls(
            day=day,
            generated_at=generated_at,
            code_version=code_version,
            files=tuple(report_file.entry() for report_file in files),
            summary_key=summary_key(day),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "generated_at": _utc_text(self.generated_at),
            "code_version": self.code_version,
            "files": [entry.as_dict() for entry in self.files],
            "summary": self.summary_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            day=date.fromisoformat(data["date"]),
            generated_at=datetime.fromisoformat(str(data["generated_at"]).replace("Z", "+00:00")),
            code_version=str(data["code_version"]),
            files=tuple(ManifestEntry.from_dict(entry) for entry in data["files"]),
            summary_key=str(data["summary"]),
        )

    def render(self) -> bytes:
        return render_json(self.as_dict())
