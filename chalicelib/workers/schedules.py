"""Timed jobs: EventBridge schedules that call a service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice import Blueprint, Rate
from chalice.app import CloudWatchEvent

from chalicelib.services import orders

blueprint = Blueprint(__name__)


def _moment(event: CloudWatchEvent) -> datetime:
    """When the run is for: the scheduled time, or now if that is earlier (a late retry)."""
    now = datetime.now(UTC)
    try:
        scheduled = datetime.fromisoformat(str(event.time)).astimezone(UTC)
    except (TypeError, ValueError):
        return now
    return max(scheduled, now)


@blueprint.schedule(Rate(1, unit=Rate.MINUTES))
def expire_orders(event: CloudWatchEvent) -> dict[str, Any]:
    """Release the stock of unpaid orders whose payment window has closed."""
    report = orders.expire_due_orders(_moment(event))
    return {"expired": report.expired, "skipped": report.skipped}
