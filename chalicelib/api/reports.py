"""Finance's nightly reports: the day's files as short-lived download links, and its summary.

Finance and ops only; anyone else signed in gets 403. A day that has not been exported (no
manifest yet) is 404. The files themselves never pass through the API: each link is a
presigned S3 URL valid for 15 minutes.
"""

from __future__ import annotations

from typing import Any, Literal

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import REPORT_READERS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.services import exports

blueprint = Blueprint(__name__)

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE_PARAMETER = {"date": {"type": "string", "pattern": DATE_PATTERN, "examples": ["2026-11-24"]}}


class ReportsQuery(models.QueryModel):
    date: str = Field(pattern=DATE_PATTERN, description="The business day, YYYY-MM-DD.")


class ReportFileItem(models.ResponseModel):
    area: Literal["sales", "inventory", "customers", "feedback", "after_sales"]
    table: str = Field(examples=["by_product"])
    format: Literal["csv", "jsonl"]
    rows: int
    url: str = Field(description="Presigned download URL, valid for 15 minutes.")


class ReportFileList(models.ResponseModel):
    items: list[ReportFileItem]


class ReportSummaryBody(models.ResponseModel):
    date: str
    headline: dict[str, Any] = Field(
        description="The day's headline figures; money in *_minor integers with a currency."
    )
    charts: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="The series the summary page draws: revenue_by_hour (hour, currency, "
        "revenue_minor), top_products (rank, sku, name, currency, units, revenue_minor) and "
        "stock_cover (sku, name, days_of_cover).",
    )


@blueprint.route("/reports", methods=["GET"], authorizer=authorizer)
@operation(
    "A day's report files",
    description=(
        "Every table of the day's export, as CSV (UTF-8 with BOM, opens in Excel) and as "
        "JSON Lines, each with a download URL valid for 15 minutes. Finance and ops. 404 "
        "until the day has been exported."
    ),
    tags=("reports",),
    query=ReportsQuery,
    responses={200: ReportFileList},
    errors=(404,),
)
def list_report_files() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, *REPORT_READERS)
    query = ReportsQuery.model_validate(request.query_params or {})
    return {"items": exports.downloads_for(query.date)}


@blueprint.route("/reports/{date}/summary", methods=["GET"], authorizer=authorizer)
@operation(
    "A day's headline figures",
    tags=("reports",),
    responses={200: ReportSummaryBody},
    path_params=DATE_PARAMETER,
)
def get_report_summary(date: str) -> dict[str, Any]:
    require_groups(blueprint.current_request, *REPORT_READERS)
    summary = exports.summary_for(date)
    return {
        "date": summary["date"],
        "headline": summary.get("headline") or {},
        "charts": summary.get("charts") or {},
    }


@blueprint.route("/reports/{date}/summary.html", methods=["GET"], authorizer=authorizer)
@operation(
    "A day's summary as a page",
    description=(
        "Headline figures, revenue by hour, top products and days of stock cover, with "
        "charts drawn as inline SVG. Errors are JSON like everywhere else."
    ),
    tags=("reports",),
    media_type="text/html",
    raw_schema={"type": "string"},
    responses={200: None},
    path_params=DATE_PARAMETER,
)
def get_report_summary_page(date: str) -> Response:
    require_groups(blueprint.current_request, *REPORT_READERS)
    return Response(
        body=exports.summary_page_for(date),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            # Self-contained: no scripts, no outside resources, inline styles only.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Cache-Control": "private, no-store",
        },
    )
