"""The ops inbox of low-stock alerts: list them by status, acknowledge them (ops only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from chalice import Blueprint
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import OPS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.domain import paging
from chalicelib.domain.replenishment import LowStockAlert
from chalicelib.services import low_stock

blueprint = Blueprint(__name__)

TAGS = ("operations",)
ALERT_PATH = {"alert_id": {"type": "string", "pattern": models.ID_PATTERN}}


class AlertQuery(models.QueryModel):
    status: Literal["open", "acknowledged", "resolved"] = "open"
    limit: int = Field(default=paging.DEFAULT_PAGE_SIZE, ge=1, le=paging.MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2048)


class ReorderSuggestionBody(models.ResponseModel):
    velocity_per_day: float = Field(
        description="Units shipped from this warehouse per day over the last window_days."
    )
    days_of_cover: float | None = Field(
        description="How many days available lasts at that pace; null when nothing sold."
    )
    quantity: int = Field(
        description="Units to order now to cover lead_time_days + target_days_of_cover."
    )
    units_sold: int
    window_days: int
    lead_time_days: int
    target_days_of_cover: int
    unit_cost: models.MoneyBody | None
    estimated_cost: models.MoneyBody | None = Field(description="quantity × unit_cost.")


class AlertBody(models.ResponseModel):
    alert_id: str
    sku: str
    warehouse: str
    status: Literal["open", "acknowledged", "resolved"]
    available: int = Field(description="Available when the alert was raised.")
    threshold: int
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None = Field(description="When stock rose back above the threshold.")
    reorder_suggestion: ReorderSuggestionBody

    @classmethod
    def of(cls, alert: LowStockAlert) -> AlertBody:
        return cls.model_validate(alert.as_dict())


class AlertPage(models.ResponseModel):
    items: list[AlertBody]
    next_cursor: str | None = Field(
        description="Pass as cursor to get older alerts; null on the last page."
    )


@blueprint.route("/ops/alerts", methods=["GET"], authorizer=authorizer)
@operation(
    "Low-stock alerts",
    description="Newest first, by status (open unless asked). Ops only.",
    tags=TAGS,
    query=AlertQuery,
    responses={200: AlertPage},
)
def list_alerts() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS)
    params = AlertQuery.model_validate(request.query_params or {})
    page = low_stock.list_alerts(params.status, limit=params.limit, cursor=params.cursor)
    items = [AlertBody.of(alert) for alert in page.items]
    return models.dump(AlertPage(items=items, next_cursor=page.next_cursor))


@blueprint.route("/ops/alerts/{alert_id}/ack", methods=["POST"], authorizer=authorizer)
@operation(
    "Acknowledge a low-stock alert",
    description="Acknowledging again changes nothing; 409 invalid_transition once resolved.",
    tags=TAGS,
    responses={200: AlertBody},
    path_params=ALERT_PATH,
)
def acknowledge_alert(alert_id: str) -> dict[str, Any]:
    caller = require_groups(blueprint.current_request, OPS)
    alert = low_stock.acknowledge(alert_id, actor=caller.user_id)
    return models.dump(AlertBody.of(alert))
