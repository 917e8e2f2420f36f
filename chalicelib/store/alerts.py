"""Low-stock alerts, the alert state of each stock level, and the operations consumer's
record of the events it has handled, in the main table.

Item shapes (the only place that knows them):

    alert        pk=ALERT#<alert_id>                 sk=ALERT
                 sku, warehouse, status, available, threshold, created_at,
                 acknowledged_at, acknowledged_by, resolved_at, version,
                 suggestion {available, units_sold, window_days, lead_time_days,
                             target_days_of_cover, unit_cost {amount, currency}}
                 gsi1pk=ALERTS#<status>   gsi1sk=<created_at>#<alert_id>   the ops inbox
    alert state  pk=ALERTSTATE#<sku>#<warehouse>     sk=LOWSTOCK
                 open_alert_id (absent while the level is armed), updated_at
    consumed     pk=CONSUMED#<consumer>#<event_id>   sk=EVENT
                 consumed_at, expires_ttl

Times are fixed-width ISO 8601 UTC with microseconds, so string order is time order.

One alert per crossing: opening an alert sets the level's ``open_alert_id`` on condition
that it has none, in the same transaction as the new alert, so two deliveries of one event,
or an event and the scheduled check, open one alert between them. Resolving an alert clears
``open_alert_id`` (re-arming the level) in the same transaction. Every alert change is
written conditionally on the version it was read with, so a late acknowledgement cannot
undo a resolution.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import AlertStatus, LowStockAlert, ReorderSuggestion
from chalicelib.store import tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ALERT_PREFIX = "ALERT#"
ALERT_SK = "ALERT"
INBOX_PREFIX = "ALERTS#"
STATE_PREFIX = "ALERTSTATE#"
STATE_SK = "LOWSTOCK"
CONSUMED_PREFIX = "CONSUMED#"
CONSUMED_SK = "EVENT"
INBOX_INDEX = tables.GSI1
# Longer than an event can stay in its queue (4 days) and be redriven from its DLQ.
CONSUMED_RETENTION = timedelta(days=15)
MAX_PAGE = 100

_INBOX_PK, _INBOX_SK = tables.GSI_KEYS[INBOX_INDEX]
_INBOX_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[A-Za-z0-9._-]{1,64}")

StockKey = tuple[str, str]


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def _alert_key(alert_id: str) -> tables.RawItem:
    return {tables.PK: {"S": ALERT_PREFIX + alert_id}, tables.SK: {"S": ALERT_SK}}


def _state_key(sku: str, warehouse: str) -> tables.RawItem:
    return {tables.PK: {"S": f"{STATE_PREFIX}{sku}#{warehouse}"}, tables.SK: {"S": STATE_SK}}


def _inbox_sort_key(alert: LowStockAlert) -> str:
    return f"{timestamp(alert.created_at)}#{alert.alert_id}"


# --- alert items -------------------------------------------------------------------------------


def _suggestion(suggestion: ReorderSuggestion) -> dict[str, Any]:
    cost = suggestion.unit_cost
    return {
        "available": suggestion.available,
        "units_sold": suggestion.units_sold,
        "window_days": suggestion.window_days,
        "lead_time_days": suggestion.lead_time_days,
        "target_days_of_cover": suggestion.target_days_of_cover,
        "unit_cost": cost.as_dict() if cost else None,
    }


def _suggestion_from(value: dict[str, Any]) -> ReorderSuggestion:
    cost = value.get("unit_cost")
    return ReorderSuggestion(
        available=int(value["available"]),
        units_sold=int(value["units_sold"]),
        window_days=int(value["window_days"]),
        lead_time_days=int(value["lead_time_days"]),
        target_days_of_cover=int(value["target_days_of_cover"]),
        unit_cost=Money.from_dict(cost) if cost else None,
    )


def _alert_item(alert: LowStockAlert, version: int) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: ALERT_PREFIX + alert.alert_id,
            tables.SK: ALERT_SK,
            "entity": "low_stock_alert",
            _INBOX_PK: INBOX_PREFIX + alert.status.value,
            _INBOX_SK: _inbox_sort_key(alert),
            "alert_id": alert.alert_id,
            "sku": alert.sku,
            "warehouse": alert.warehouse,
            "status": alert.status.value,
            "available": alert.available,
            "threshold": alert.threshold,
            "created_at": timestamp(alert.created_at),
            "acknowledged_at": timestamp(alert.acknowledged_at) if alert.acknowledged_at else None,
            "acknowledged_by": alert.acknowledged_by,
            "resolved_at": timestamp(alert.resolved_at) if alert.resolved_at else None,
            "suggestion": _suggestion(alert.reorder_suggestion),
            "version": version,
        }
    )


def _alert_from(raw: tables.RawItem) -> tuple[LowStockAlert, int]:
    item = tables.from_item(raw)
    alert = LowStockAlert(
        alert_id=item["alert_id"],
        sku=item["sku"],
        warehouse=item["warehouse"],
        status=AlertStatus(item["status"]),
        available=int(item["available"]),
        threshold=int(item["threshold"]),
        created_at=datetime.fromisoformat(item["created_at"]).astimezone(UTC),
        reorder_suggestion=_suggestion_from(item["suggestion"]),
        acknowledged_at=_parse_time(item.get("acknowledged_at")),
        acknowledged_by=item.get("acknowledged_by"),
        resolved_at=_parse_time(item.get("resolved_at")),
    )
    return alert, int(item.get("version", 1))


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as read, with the version its next change is written against."""

    alert: LowStockAlert
    version: int


def get_alert(alert_id: str, *, consistent: bool = True) -> StoredAlert | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=_alert_key(alert_id), ConsistentRead=consistent
    )
    raw = response.get("Item")
    return StoredAlert(*_alert_from(raw)) if raw else None


# --- alert state per level ---------------------------------------------------------------------


def open_alert_id(sku: str, warehouse: str) -> str | None:
    """The level's open (or acknowledged) alert, or None while it is armed."""
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=_state_key(sku, warehouse), ConsistentRead=True
    )
    raw = response.get("Item") or {}
    return raw.get("open_alert_id", {}).get("S")


def open_alert_ids(keys: Iterable[StockKey]) -> dict[StockKey, str]:
    """The open alert of each level among ``keys`` that has one (one batch read)."""
    found = tables.batch_get([_state_key(sku, wh) for sku, wh in sorted(set(keys))])
    result: dict[StockKey, str] = {}
    for raw in found:
        alert_id = raw.get("open_alert_id", {}).get("S")
        if alert_id:
            item = tables.from_item(raw)
            result[(item["sku"], item["warehouse"])] = alert_id
    return result


# --- writing -----------------------------------------------------------------------------------


def add_alert(alert: LowStockAlert, *, also: Callable[[UnitOfWork], None] | None = None) -> bool:
    """Open ``alert`` if its level has no open alert; False (nothing written) if it has.
    ``also`` adds further writes (the day's alert counter) to the same transaction."""
    at = timestamp(alert.created_at)
    uow = UnitOfWork()
    if also is not None:
        also(uow)
    uow.update(
        _state_key(alert.sku, alert.warehouse),
        "SET open_alert_id = :alert_id, sku = :sku, warehouse = :warehouse,"
        " entity = :entity, updated_at = :at",
        tag=("alert_state", alert.sku, alert.warehouse),
        condition="attribute_not_exists(open_alert_id)",
        values={
            ":alert_id": {"S": alert.alert_id},
            ":sku": {"S": alert.sku},
            ":warehouse": {"S": alert.warehouse},
            ":entity": {"S": "low_stock_alert_state"},
            ":at": {"S": at},
        },
    )
    uow.put_versioned(
        _alert_item(alert, version=1), tag=("alert", alert.alert_id), previous_version=None
    )
    try:
        uow.commit()
    except TransactionCancelled as cancelled:
        if cancelled.conflicted:
            raise
        return False
    return True


def _changed_alert(uow: UnitOfWork, alert: LowStockAlert, previous: StoredAlert) -> None:
    uow.put_versioned(
        _alert_item(alert, version=previous.version + 1),
        tag=("alert", alert.alert_id),
        previous_version=previous.version,
    )


def save_change(alert: LowStockAlert, previous: StoredAlert) -> bool:
    """Write a changed alert if it is still as read; False (nothing written) if not."""
    uow = UnitOfWork()
    _changed_alert(uow, alert, previous)
    try:
        uow.commit()
    except TransactionCancelled as cancelled:
        if cancelled.conflicted:
            raise
        return False
    return True


def save_resolution(resolved: LowStockAlert, previous: StoredAlert) -> bool:
    """Resolve the alert and re-arm its level in one transaction; False (nothing written)
    if the alert changed since it was read."""
    uow = UnitOfWork()
    _changed_alert(uow, resolved, previous)
    uow.update(
        _state_key(resolved.sku, resolved.warehouse),
        "REMOVE open_alert_id SET updated_at = :at",
        tag=("alert_state", resolved.sku, resolved.warehouse),
        condition="open_alert_id = :alert_id",
        values={
            ":alert_id": {"S": resolved.alert_id},
            ":at": {"S": timestamp(resolved.resolved_at or datetime.now(UTC))},
        },
    )
    try:
        uow.commit()
    except TransactionCancelled as cancelled:
        if cancelled.conflicted:
            raise
        return False
    return True


# --- the inbox ---------------------------------------------------------------------------------


def _inbox_query(status: AlertStatus, *, newest_first: bool) -> dict[str, Any]:
    return {
        "TableName": tables.table_name(),
        "IndexName": INBOX_INDEX,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": _INBOX_PK},
        "ExpressionAttributeValues": {":pk": {"S": INBOX_PREFIX + status.value}},
        "ScanIndexForward": not newest_first,
    }


def alerts_page(status: AlertStatus, *, limit: int, cursor: str | None) -> Page[LowStockAlert]:
    """Alerts in ``status``, newest first, ``limit`` at a time."""
    limit = max(1, min(limit, MAX_PAGE))
    scope = scope_of("alerts", status.value)
    query = _inbox_query(status, newest_first=True)
    if cursor:
        after = decode_cursor(cursor, scope).get("after")
        if not isinstance(after, str) or not _INBOX_POSITION.fullmatch(after):
            raise InvalidCursor()
        query["ExclusiveStartKey"] = {
            _INBOX_PK: {"S": INBOX_PREFIX + status.value},
            _INBOX_SK: {"S": after},
            tables.PK: {"S": ALERT_PREFIX + after.split("#", 1)[1]},
            tables.SK: {"S": ALERT_SK},
        }
    # One extra item tells whether another page exists.
    alerts = [_alert_from(raw)[0] for raw in tables.query_up_to(query, limit + 1)]
    page, more = alerts[:limit], len(alerts) > limit
    next_cursor = encode_cursor(scope, {"after": _inbox_sort_key(page[-1])}) if more else None
    return Page(items=page, next_cursor=next_cursor)


def alert_pages(status: AlertStatus, *, page_size: int = 100) -> Iterator[list[LowStockAlert]]:
    """Every alert in ``status``, oldest first, a page at a time (for the scheduled check)."""
    query = _inbox_query(status, newest_first=False)
    query["Limit"] = page_size
    while True:
        response = tables.client().query(**query)
        page = [_alert_from(raw)[0] for raw in response.get("Items", [])]
        if page:
            yield page
        if "LastEvaluatedKey" not in response:
            return
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- events handled ----------------------------------------------------------------------------


def _consumed_key(consumer: str, event_id: str) -> tables.RawItem:
    return {
        tables.PK: {"S": f"{CONSUMED_PREFIX}{consumer}#{event_id}"},
        tables.SK: {"S": CONSUMED_SK},
    }


def was_consumed(consumer: str, event_id: str) -> bool:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=_consumed_key(consumer, event_id), ConsistentRead=True
    )
    return "Item" in response


def mark_consumed(consumer: str, event_id: str, *, at: datetime) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item={
            **_consumed_key(consumer, event_id),
            "entity": {"S": "consumed_event"},
            "consumed_at": {"S": timestamp(at)},
            tables.TTL_ATTRIBUTE: {"N": str(int((at + CONSUMED_RETENTION).timestamp()))},
        },
    )
