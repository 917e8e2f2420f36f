"""Units shipped per (SKU, warehouse) and day, for sales velocity.

Item shape (the only place that knows it):

    shipped  pk=SHIPPED#<sku>#<warehouse>  sk=<day, YYYY-MM-DD>
             sku, warehouse, units (shipped from the warehouse that day), expires_ttl

The count is added in the shipment's own transaction (``ADD``), so sales velocity is one
Query of at most 30 small items, never a read of the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork

SHIPPED_PREFIX = "SHIPPED#"
# Daily shipped counters outlive the 30-day sales window by a margin, then expire.
SHIPPED_RETENTION = timedelta(days=45)


def _shipped_key(sku: str, warehouse: str, day: date) -> tables.RawItem:
    return {
        tables.PK: {"S": f"{SHIPPED_PREFIX}{sku}#{warehouse}"},
        tables.SK: {"S": day.isoformat()},
    }


def add_units_shipped(uow: UnitOfWork, sku: str, warehouse: str, day: date, units: int) -> None:
    """Count ``units`` shipped from ``warehouse`` on ``day`` (an atomic ``ADD`` in ``uow``)."""
    expires = datetime.combine(day + SHIPPED_RETENTION, time(), tzinfo=UTC)
    uow.update(
        _shipped_key(sku, warehouse, day),
        "ADD units :units SET sku = :sku, warehouse = :warehouse, entity = :entity,"
        f" {tables.TTL_ATTRIBUTE} = :expires",
        tag=("shipped", sku, warehouse, day.isoformat()),
        values={
            ":units": {"N": str(units)},
            ":sku": {"S": sku},
            ":warehouse": {"S": warehouse},
            ":entity": {"S": "units_shipped"},
            ":expires": {"N": str(int(expires.timestamp()))},
        },
    )


def units_shipped_by_day(sku: str, warehouse: str, first: date, last: date) -> dict[date, int]:
    """Units shipped from ``warehouse`` per day from ``first`` to ``last`` (days without
    shipments are left out): one Query of at most one small item per day."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"{SHIPPED_PREFIX}{sku}#{warehouse}"},
            ":first": {"S": first.isoformat()},
            ":last": {"S": last.isoformat()},
        },
        "ProjectionExpression": "sk, units",
    }
    shipped: dict[date, int] = {}
    while True:
        response = tables.client().query(**query)
        for raw in response.get("Items", []):
            shipped[date.fromisoformat(raw[tables.SK]["S"])] = int(raw["units"]["N"])
        if "LastEvaluatedKey" not in response:
            return shipped
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
