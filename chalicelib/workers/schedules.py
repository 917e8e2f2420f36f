"""Timed jobs: EventBridge schedules that call a service."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from chalice import Blueprint, Cron, Rate
from chalice.app import CloudWatchEvent

from chalicelib import public_api
from chalicelib.services import (
    fulfilment,
    low_stock,
    orders,
    pending_payments,
    reconciliation,
    refunds,
)

blueprint = Blueprint(__name__)


@blueprint.middleware("scheduled")
def _configuration_check(event: CloudWatchEvent, get_response: Any) -> Any:
    public_api.report_if_unresolvable_for_jobs()  # once per process
    return get_response(event)


def run_moment(event: CloudWatchEvent) -> datetime:
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
    report = orders.expire_due_orders(run_moment(event))
    return {"expired": report.expired, "skipped": report.skipped}


@blueprint.schedule(Rate(15, unit=Rate.MINUTES))
def check_low_stock(event: CloudWatchEvent) -> dict[str, Any]:
    """Open the low-stock alerts events missed; resolve those whose stock recovered."""
    return low_stock.check_low_stock(run_moment(event)).as_dict()


@blueprint.schedule(Rate(10, unit=Rate.MINUTES))
def retry_pending_refunds(event: CloudWatchEvent) -> dict[str, Any]:
    """Ask the providers again about refunds they have not confirmed."""
    return refunds.retry_pending_refunds(run_moment(event)).as_dict()


@blueprint.schedule(Rate(5, unit=Rate.MINUTES))
def resolve_pending_payments(event: CloudWatchEvent) -> dict[str, Any]:
    """Ask Stripe how card payments whose answer never came ended."""
    return pending_payments.resolve_pending_payments(run_moment(event)).as_dict()


@blueprint.schedule(Rate(5, unit=Rate.MINUTES))
def retry_shipment_bookings(event: CloudWatchEvent) -> dict[str, Any]:
    """Book again the packed shipments whose booking failed and is due for another try."""
    return fulfilment.retry_due_bookings(run_moment(event))


def requested_day(event: CloudWatchEvent, default: date) -> date:
    """The day a daily job is for: ``detail.date`` when asked (``make tick DATE=``)."""
    detail = event.to_dict().get("detail") or {}
    asked = detail.get("date") if isinstance(detail, dict) else None
    return date.fromisoformat(asked) if asked else default


# 02:00 UTC is 10:00 in China: Alipay and WeChat Pay publish the previous day's bills by then.
@blueprint.schedule(Cron(0, 2, "*", "*", "?", "*"))
def reconcile_payments(event: CloudWatchEvent) -> dict[str, Any]:
    """Compare each provider's settlement data for yesterday with our records."""
    day = requested_day(event, reconciliation.previous_business_day(run_moment(event)))
    run = reconciliation.reconcile_day(day)
    return {
        "date": day.isoformat(),
        "discrepancies": run.discrepancy_count,
        "failed_providers": run.failed_providers,
    }
