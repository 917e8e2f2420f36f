"""Low-stock alerts for operations: one per crossing of a level's threshold, with a reorder
suggestion, resolved by themselves when stock recovers.

Two paths lead here, and both end in ``reconcile_level``, which looks at the level as it
is now (strongly consistent) and at its alert state:

* the ``stock.low`` and ``stock.recovered`` outbox events, recorded in the very
  transaction that moved the stock and delivered through the operations queue
  (``handle_event``): alerts open and resolve within seconds;
* ``check_low_stock`` every 15 minutes: it Queries the low-stock index for levels at or
  under their threshold that have no open alert (an event lost, a threshold changed), and
  the inbox for open alerts whose level has recovered. No Scan: its cost follows the
  number of low levels and open alerts.

Because the decision is made from current state, events that arrive twice, late or out of
order change nothing they should not; the alert state's conditional write makes sure that
two deciders at the same moment open one alert. An alert is published on the SNS alerts
topic by whoever opened it. Each event is also recorded as handled, so a redelivery does
no work at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import alerts as alert_channel
from chalicelib.domain.analytics import local_day, shard_of
from chalicelib.domain.catalogue import ID_PATTERN, require_id
from chalicelib.domain.errors import Conflict, DomainError, NotFound
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.paging import DEFAULT_PAGE_SIZE
from chalicelib.domain.replenishment import (
    AlertStatus,
    LowStockAlert,
    ReorderPolicy,
    ReorderSuggestion,
    sales_window,
)
from chalicelib.observability import count, logger
from chalicelib.services import analytics, catalogue, stock
from chalicelib.store import alerts as store
from chalicelib.store import analytics as analytics_store
from chalicelib.store import inventory, outbox, units_shipped
from chalicelib.store import low_stock as low_stock_store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

CONSUMER = "operations"
STOCK_LOW = stock.STOCK_LOW
STOCK_RECOVERED = stock.STOCK_RECOVERED
HANDLED_TYPES = frozenset({STOCK_LOW, STOCK_RECOVERED})
ALERT_KIND = "stock.low"
_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


class MalformedEvent(ValueError):
    """The message cannot be read as a stock event; retrying it will not help."""


@dataclass(frozen=True, slots=True)
class StockEvent:
    """An outbox event as the operations queue carries it."""

    event_id: str
    type: str
    payload: Mapping[str, Any]

    @property
    def level_key(self) -> tuple[str, str]:
        sku, warehouse = self.payload.get("sku"), self.payload.get("warehouse")
        if not all(isinstance(v, str) and ID_PATTERN.fullmatch(v) for v in (sku, warehouse)):
            raise MalformedEvent(f"{self.type} event {self.event_id} names no stock level")
        return str(sku), str(warehouse)


def parse_event(body: str | bytes) -> StockEvent:
    """The event in a queue message body ``{"event_id", "type", "occurred_at", "payload"}``."""
    try:
        event = outbox.event_from_message(body)
    except outbox.MalformedMessage as exc:
        raise MalformedEvent(str(exc)) from None
    if not ID_PATTERN.fullmatch(event.event_id):
        raise MalformedEvent("the event has no usable event_id")
    return StockEvent(event_id=event.event_id, type=event.type, payload=event.payload)


# --- deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What ``reconcile_level`` changed: an alert opened, or one resolved, or neither."""

    opened: LowStockAlert | None = None
    resolved: LowStockAlert | None = None


def reconcile_level(sku: str, warehouse: str, *, now: datetime | None = None) -> Reconciled:
    """Open an alert if the level is low and has none; resolve its alert if it recovered."""
    for _ in range(_ATTEMPTS):
        at = now or _now()
        found = inventory.existing_levels([(sku, warehouse)], consistent=True)
        if not found:
            return Reconciled()
        level = found[0]
        open_id = store.open_alert_id(sku, warehouse)
        try:
            if level.is_low and open_id is None:
                alert = _new_alert(level, at)
                if store.add_alert(alert, also=_count_opened(alert)):
                    _publish(alert)
                    logger.info("low-stock alert opened", extra=_log_fields(alert))
                    count("LowStockAlertsOpened")
                    return Reconciled(opened=alert)
                continue  # opened by someone else meanwhile: look again
            if not level.is_low and open_id is not None:
                current = store.get_alert(open_id)
                if current is not None:
                    resolved = current.alert.resolve(at=at)
                    if store.save_resolution(resolved, current):
                        logger.info("low-stock alert resolved", extra=_log_fields(resolved))
                        return Reconciled(resolved=resolved)
                continue  # the alert changed meanwhile: look again
        except TransactionCancelled:
            continue  # collided with another writer: look again
        return Reconciled()
    raise Conflict(f"The alert state of {sku} in {warehouse} is changing too quickly.")


def _count_opened(alert: LowStockAlert) -> Callable[[UnitOfWork], None]:
    """The dashboard's count of alerts opened that day, written with the alert."""

    def count(uow: UnitOfWork) -> None:
        day = local_day(alert.created_at, analytics.zone())
        analytics_store.add_alert_opened(uow, day=day, shard=shard_of(alert.alert_id))

    return count


def _new_alert(level: StockLevel, at: datetime) -> LowStockAlert:
    product = catalogue.products.get(level.sku)
    policy = product.reorder if product is not None else ReorderPolicy()
    today = stock.business_day(at)
    first, last = sales_window(today)
    shipped = units_shipped.units_shipped_by_day(level.sku, level.warehouse, first, last)
    return LowStockAlert.raise_for(
        sortable_id("alr_", at),
        sku=level.sku,
        warehouse=level.warehouse,
        available=level.available,
        threshold=level.low_stock_threshold,
        suggestion=ReorderSuggestion.compute(level.available, shipped, policy, today),
        at=at,
    )


def _publish(alert: LowStockAlert) -> None:
    suggestion = alert.reorder_suggestion
    subject = (
        f"Low stock: {alert.sku} in {alert.warehouse}, {alert.available} left"
        f" (threshold {alert.threshold}); reorder {suggestion.quantity}"
    )
    alert_channel.publish(subject, alert.as_dict(), kind=ALERT_KIND)


def _log_fields(alert: LowStockAlert) -> dict[str, Any]:
    return {"alert_id": alert.alert_id, "sku": alert.sku, "warehouse": alert.warehouse}


# --- the operations queue ----------------------------------------------------------------------


def handle_event(event: StockEvent, *, now: datetime | None = None) -> Reconciled | None:
    """React to one stock event; None when there was nothing to do (a type this consumer
    does not handle, or an event already handled)."""
    if event.type not in HANDLED_TYPES:
        return None
    sku, warehouse = event.level_key
    if store.was_consumed(CONSUMER, event.event_id):
        return None
    outcome = reconcile_level(sku, warehouse, now=now)
    store.mark_consumed(CONSUMER, event.event_id, at=now or _now())
    return outcome


# --- the scheduled check -----------------------------------------------------------------------


@dataclass(slots=True)
class CheckReport:
    low_levels: int = 0
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<sku>@<warehouse>", retried next run

    def as_dict(self) -> dict[str, Any]:
        return {
            "low_levels": self.low_levels,
            "opened": self.opened,
            "resolved": self.resolved,
            "failed": self.failed,
        }


def check_low_stock(now: datetime | None = None) -> CheckReport:
    """Open the alerts events missed and resolve the ones whose stock recovered."""
    report = CheckReport()
    for page in low_stock_store.low_levels():
        report.low_levels += len(page)
        already_open = store.open_alert_ids((level.sku, level.warehouse) for level in page)
        for level in page:
            if (level.sku, level.warehouse) not in already_open:
                _reconcile_into(report, level.sku, level.warehouse, now)
    for status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED):
        for alerts in store.alert_pages(status):
            keys = [(alert.sku, alert.warehouse) for alert in alerts]
            levels = inventory.get_levels_many(keys, consistent=True)
            for sku, warehouse in keys:
                if not levels[(sku, warehouse)].is_low:
                    _reconcile_into(report, sku, warehouse, now)
    return report


def _reconcile_into(report: CheckReport, sku: str, warehouse: str, now: datetime | None) -> None:
    try:
        outcome = reconcile_level(sku, warehouse, now=now)
    except (DomainError, TransactionCancelled):
        logger.exception(
            "could not check a stock level", extra={"sku": sku, "warehouse": warehouse}
        )
        report.failed.append(f"{sku}@{warehouse}")
        return
    if outcome.opened is not None:
        report.opened.append(outcome.opened.alert_id)
    if outcome.resolved is not None:
        report.resolved.append(outcome.resolved.alert_id)


# --- the ops inbox -----------------------------------------------------------------------------


def list_alerts(
    status: AlertStatus | str = AlertStatus.OPEN,
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[LowStockAlert]:
    """Alerts in ``status``, newest first, a page at a time."""
    return store.alerts_page(AlertStatus(status), limit=limit, cursor=cursor)


def acknowledge(alert_id: str, *, actor: str, now: datetime | None = None) -> LowStockAlert:
    """Ops have seen the alert: 409 ``invalid_transition`` once it is resolved."""
    require_id(alert_id, "alert_id")
    for _ in range(_ATTEMPTS):
        current = store.get_alert(alert_id)
        if current is None:
            raise NotFound(f"Alert {alert_id} was not found.", {"alert_id": alert_id})
        acknowledged = current.alert.acknowledge(by=actor, at=now or _now())
        if acknowledged == current.alert:
            return acknowledged
        try:
            if store.save_change(acknowledged, current):
                return acknowledged
        except TransactionCancelled:
            pass
    raise Conflict(f"Alert {alert_id} is changing too quickly; try again.")
