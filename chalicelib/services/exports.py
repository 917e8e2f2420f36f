"""The nightly report export for finance, and what finance reads back through the API.

``export_reports`` writes every table of a ``DailyReports`` to the reports bucket as CSV and
as JSON Lines (layout in ``domain/report_files.py``), then the day's summary, then the
manifest. Everything is rendered and checked against the declared schemas before the first
write, so a table that does not match writes nothing; the manifest goes last, so a day has
a manifest only once all its files are in place. Running a day again overwrites the same
keys with the same bytes (only the manifest's ``generated_at`` changes).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.adapters import reports_bucket
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.report_files import (
    JSON_CONTENT_TYPE,
    Manifest,
    manifest_key,
    render_json,
    report_files,
)
from chalicelib.domain.report_pages import build_summary, render_summary_page
from chalicelib.domain.reports import DailyReports
from chalicelib.observability import logger
from chalicelib.settings import get_settings

DEV_VERSION = "dev"
DAY_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def code_version() -> str:
    """The deployed code's version: CODE_VERSION (the package step sets it to the git
    commit it packaged), else "dev"."""
    return get_settings().code_version or DEV_VERSION


def export_reports(reports: DailyReports, *, generated_at: datetime | None = None) -> Manifest:
    """Write ``reports`` for its day; return the manifest written."""
    files = report_files(reports)
    summary = render_json(build_summary(reports), sort_keys=False)
    manifest = Manifest.of(
        reports.day,
        files,
        generated_at=generated_at or datetime.now(UTC),
        code_version=code_version(),
    )
    manifest_body = manifest.render()
    for report_file in files:
        reports_bucket.write(report_file.key, report_file.body, report_file.content_type)
    reports_bucket.write(manifest.summary_key, summary, JSON_CONTENT_TYPE)
    reports_bucket.write(manifest_key(reports.day), manifest_body, JSON_CONTENT_TYPE)
    logger.info(
        "reports exported",
        extra={
            "date": reports.day.isoformat(),
            "files": len(files),
            "version": manifest.code_version,
        },
    )
    return manifest


# --- reading back ---------------------------------------------------------------------------


def _day(text: str) -> date:
    # fromisoformat alone also takes 20261124 and other ISO spellings; finance's is one.
    try:
        if not DAY_FORMAT.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(
            "date must be a calendar date, YYYY-MM-DD.",
            [{"field": "date", "message": "not a date"}],
        ) from None


def _not_exported(day: date) -> NotFound:
    return NotFound(
        f"No reports have been exported for {day.isoformat()}.", {"date": day.isoformat()}
    )


def manifest_for(day_text: str) -> Manifest:
    """The manifest of ``day_text``'s export; NotFound when the day has none."""
    day = _day(day_text)
    body = reports_bucket.read(manifest_key(day))
    if body is None:
        raise _not_exported(day)
    return Manifest.from_dict(json.loads(body))


def downloads_for(day_text: str) -> list[dict[str, Any]]:
    """Every file of the day's export with a short-lived download URL."""
    manifest = manifest_for(day_text)
    return [
        {
            "area": entry.area,
            "table": entry.table,
            "format": entry.format,
            "rows": entry.rows,
            "url": reports_bucket.download_url(
                entry.key, filename=f"{entry.table}-{manifest.day.isoformat()}.{entry.format}"
            ),
        }
        for entry in manifest.files
    ]


def summary_for(day_text: str) -> dict[str, Any]:
    """The day's summary as exported: date, headline figures and chart series."""
    manifest = manifest_for(day_text)  # a day without a manifest has not finished exporting
    body = reports_bucket.read(manifest.summary_key)
    if body is None:
        raise _not_exported(manifest.day)
    summary: dict[str, Any] = json.loads(body)
    return summary


def summary_page_for(day_text: str) -> str:
    return render_summary_page(summary_for(day_text))
