"""Operations views: queue depths (dead letters need a person)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import FINANCE, OPS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.domain import paging
from chalicelib.services import analytics, operations

blueprint = Blueprint(__name__)


class QueueBody(models.ResponseModel):
    queue: str
    visible: int
    in_flight: int
    delayed: int
    dead_letters: int | None


class QueueList(models.ResponseModel):
    items: list[QueueBody]


@blueprint.route("/ops/queues", methods=["GET"], authorizer=authorizer)
@operation(
    "Queue depths",
    description=(
        "Each queue's waiting, in-flight and delayed messages, and how many wait in its "
        "dead-letter queue (move them back with `make redrive QUEUE=<name>` once fixed)."
    ),
    tags=("operations",),
    responses={200: QueueList},
)
def queue_depths() -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS)
    return {"items": operations.queue_depths()}


class DashboardQuery(models.QueryModel):
    days: int = Field(default=paging.DASHBOARD_DAYS, ge=1, le=paging.MAX_DASHBOARD_DAYS)


class DashboardDay(models.ResponseModel):
    date: str = Field(description="Business day, YYYY-MM-DD; the last is today.")
    orders: int = Field(description="Orders paid that day.")
    revenue: models.MoneyBody = Field(description="What those orders paid, in total.")
    low_stock_alerts_opened: int


class Dashboard(models.ResponseModel):
    days: list[DashboardDay]


@blueprint.route("/ops/dashboard", methods=["GET"], authorizer=authorizer)
@operation(
    "Orders, revenue and low-stock alerts per day",
    description="The last `days` business days, oldest first, from the daily counters the "
    "analytics keep (never from orders).",
    tags=("operations",),
    query=DashboardQuery,
    responses={200: Dashboard},
)
def dashboard() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS, FINANCE)
    params = DashboardQuery.model_validate(request.query_params or {})
    days = [
        DashboardDay(
            date=day.day.isoformat(),
            orders=day.orders,
            revenue=models.MoneyBody.of(day.revenue),
            low_stock_alerts_opened=day.low_stock_alerts_opened,
        )
        for day in analytics.dashboard(params.days)
    ]
    return models.dump(Dashboard(days=days))
