"""After-sales requests, the per-order ledger of what they cover, and their idempotency keys.

Item shapes (the only place that knows them):

    request      pk=AFTERSALES#<request_id>             sk=REQUEST
                 the whole request (lines, timeline, replacement, received, ...), status,
                 version
                 gsi1pk=AFTERSALESDAY#<business day created>   gsi1sk=<created_at>#<id>  reports
                 gsi2pk=AFTERSALESSTATUS#<status>  gsi2sk=<created_at>#<request_id>  staff list
                 gsi3pk=AFTERSALESDUE              gsi3sk=<close_at>#<request_id>   only while
                                                   approved with no return parcel (auto-close)
                 gsi3pk=AFTERSALESDONE#<business day completed>  gsi3sk=<completed_at>#<id>
                                                   once refunded or completed (reports)
    coverage     pk=ORDER#<order_id>                    sk=AFTERSALES
                 request_ids (newest last), covered {sku: units under open or completed
                 requests}, returned {sku: units refunded by returns}, version
    idempotency  pk=IDEMPOTENCY#<customer_id>#<key>     sk=AFTERSALES#<order_id>
                 request_hash, request_id, response (zlib JSON), expires_ttl

The coverage item lives in the order's partition and is written, conditionally on its
version, in the transaction of every change that takes units in or gives them back: two
requests for the same units at once cannot both pass the quantity check, and the order's
requests are read consistently by key (no index lag).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.after_sales import (
    CLOSE_AFTER,
    AfterSalesRequest,
    AfterSalesStatus,
    AfterSalesType,
    Disposition,
    Held,
    Reason,
    ReceivedLine,
    RequestLine,
    TimelineEntry,
)
from chalicelib.domain.money import Money
from chalicelib.settings import get_settings
from chalicelib.store import tables
from chalicelib.store.orders import ORDER_PREFIX, timestamp
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import UnitOfWork

REQUEST_PREFIX = "AFTERSALES#"
REQUEST_SK = "REQUEST"
COVERAGE_SK = "AFTERSALES"
STATUS_PREFIX = "AFTERSALESSTATUS#"
DUE_PARTITION = "AFTERSALESDUE"
DAY_PREFIX = "AFTERSALESDAY#"
DONE_PREFIX = "AFTERSALESDONE#"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
IDEMPOTENCY_RETENTION = timedelta(hours=48)
_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[A-Za-z0-9._-]{1,64}")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def request_key(request_id: str) -> tables.RawItem:
    return {tables.PK: {"S": REQUEST_PREFIX + request_id}, tables.SK: {"S": REQUEST_SK}}


def coverage_key(order_id: str) -> tables.RawItem:
    return {tables.PK: {"S": ORDER_PREFIX + order_id}, tables.SK: {"S": COVERAGE_SK}}


def _idempotency_key(customer_id: str, key: str, order_id: str) -> tables.RawItem:
    return {
        tables.PK: {"S": f"{IDEMPOTENCY_PREFIX}{customer_id}#{key}"},
        tables.SK: {"S": f"{COVERAGE_SK}#{order_id}"},
    }


def business_day(moment: datetime) -> date:
    """The calendar day ``moment`` falls on where the business reports its days."""
    return moment.astimezone(ZoneInfo(get_settings().business_time_zone)).date()


def _listing_position(request: AfterSalesRequest) -> str:
    return f"{timestamp(request.created_at)}#{request.request_id}"


# --- requests ------------------------------------------------------------------------------


def request_item(request: AfterSalesRequest) -> tables.RawItem:
    values: dict[str, Any] = {
        tables.PK: REQUEST_PREFIX + request.request_id,
        tables.SK: REQUEST_SK,
        "entity": "after_sales_request",
        "gsi1pk": DAY_PREFIX + business_day(request.created_at).isoformat(),
        "gsi1sk": _listing_position(request),
        "gsi2pk": STATUS_PREFIX + request.status.value,
        "gsi2sk": _listing_position(request),
        "request_id": request.request_id,
        "order_id": request.order_id,
        "customer_id": request.customer_id,
        "type": request.type.value,
        "status": request.status.value,
        "lines": [line.as_dict() for line in request.lines],
        "description": request.description,
        "photos": list(request.photos),
        "refund_estimate": request.refund_estimate.as_dict() if request.refund_estimate else None,
        "return_shipment": dict(request.return_shipment) if request.return_shipment else None,
        "return_warehouse": request.return_warehouse,
        "replacement": [
            held.as_dict() | ({"shard": held.shard} if held.shard else {})
            for held in request.replacement
        ],
        "received": [line.as_dict() for line in request.received],
        "refund_id": request.refund_id,
        "refund_amount": request.refund_amount.as_dict() if request.refund_amount else None,
        "outbound_shipment": (
            dict(request.outbound_shipment) if request.outbound_shipment else None
        ),
        "created_at": timestamp(request.created_at),
        "updated_at": timestamp(request.updated_at),
        "timeline": [
            {
                "from": entry.from_status,
                "status": entry.status,
                "at": timestamp(entry.at),
                "actor": entry.actor,
                "note": entry.note,
            }
            for entry in request.timeline
        ],
        "version": request.version,
    }
    if request.is_due_to_close(request.updated_at + CLOSE_AFTER):
        close_at = request.updated_at + CLOSE_AFTER
        values["gsi3pk"] = DUE_PARTITION
        values["gsi3sk"] = f"{timestamp(close_at)}#{request.request_id}"
    done = request.completed_at
    if done is not None:
        values["gsi3pk"] = DONE_PREFIX + business_day(done).isoformat()
        values["gsi3sk"] = f"{timestamp(done)}#{request.request_id}"
    return tables.to_item(values)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value)
    return value


def request_from_item(raw: Mapping[str, Any]) -> AfterSalesRequest:
    item = tables.from_item(raw)
    estimate = item.get("refund_estimate")
    return AfterSalesRequest(
        request_id=item["request_id"],
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        type=AfterSalesType(item["type"]),
        status=AfterSalesStatus(item["status"]),
        lines=tuple(
            RequestLine(
                line["sku"], int(line["quantity"]), Reason(line["reason"]), line.get("exchange_sku")
            )
            for line in item["lines"]
        ),
        description=item.get("description") or "",
        photos=tuple(item.get("photos") or ()),
        refund_estimate=Money.from_dict(estimate) if estimate else None,
        return_shipment=_plain(item.get("return_shipment")),
        return_warehouse=item.get("return_warehouse"),
        replacement=tuple(
            Held(h["sku"], h["warehouse"], int(h["quantity"]), int(h.get("shard", 0)))
            for h in item.get("replacement", [])
        ),
        received=tuple(
            ReceivedLine(r["sku"], int(r["quantity"]), Disposition(r["disposition"]))
            for r in item.get("received", [])
        ),
        refund_id=item.get("refund_id"),
        refund_amount=Money.from_dict(item["refund_amount"]) if item.get("refund_amount") else None,
        outbound_shipment=_plain(item.get("outbound_shipment")),
        created_at=_parse(item["created_at"]),
        updated_at=_parse(item["updated_at"]),
        timeline=tuple(
            TimelineEntry(
                status=e["status"],
                at=_parse(e["at"]),
                actor=e["actor"],
                note=e.get("note"),
                from_status=e.get("from"),
            )
            for e in item["timeline"]
        ),
        version=int(item.get("version", 1)),
    )


def add_new_request(uow: UnitOfWork, request: AfterSalesRequest) -> None:
    uow.put(
        request_item(request),
        tag=("after_sales", request.request_id),
        condition="attribute_not_exists(pk)",
    )


def add_request_change(
    uow: UnitOfWork, request: AfterSalesRequest, *, previous: AfterSalesRequest
) -> None:
    """Write ``request`` if the stored one still has ``previous``'s status and version."""
    uow.put(
        request_item(request),
        tag=("after_sales", request.request_id),
        condition="#status = :status AND #version = :version",
        names={"#status": "status", "#version": "version"},
        values={
            ":status": {"S": previous.status.value},
            ":version": {"N": str(previous.version)},
        },
    )


def get_request(request_id: str) -> AfterSalesRequest | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=request_key(request_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return request_from_item(raw) if raw else None


def get_requests(request_ids: Sequence[str]) -> list[AfterSalesRequest]:
    """The requests asked for, newest first (consistent reads by key)."""
    found = tables.batch_get([request_key(rid) for rid in request_ids], consistent=True)
    requests = [request_from_item(raw) for raw in found]
    return sorted(requests, key=_listing_position, reverse=True)


# --- coverage ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """What an order's requests hold: ids, units covered, units refunded by returns."""

    order_id: str
    request_ids: tuple[str, ...] = ()
    covered: Mapping[str, int] = field(default_factory=dict)
    returned: Mapping[str, int] = field(default_factory=dict)
    version: int = 0  # 0: never written


def get_coverage(order_id: str) -> Coverage:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=coverage_key(order_id), ConsistentRead=True
    )
    raw = response.get("Item")
    if not raw:
        return Coverage(order_id)
    item = tables.from_item(raw)
    return Coverage(
        order_id=order_id,
        request_ids=tuple(item.get("request_ids") or ()),
        covered={k: int(v) for k, v in (item.get("covered") or {}).items()},
        returned={k: int(v) for k, v in (item.get("returned") or {}).items()},
        version=int(item.get("version", 0)),
    )


def add_coverage_change(uow: UnitOfWork, new: Coverage, *, previous: Coverage) -> None:
    item = tables.to_item(
        {
            tables.PK: ORDER_PREFIX + new.order_id,
            tables.SK: COVERAGE_SK,
            "entity": "after_sales_coverage",
            "order_id": new.order_id,
            "request_ids": list(new.request_ids),
            "covered": {k: v for k, v in new.covered.items() if v},
            "returned": {k: v for k, v in new.returned.items() if v},
            "version": previous.version + 1,
        }
    )
    if previous.version == 0:
        uow.put(
            item, tag=("after_sales_coverage", new.order_id), condition="attribute_not_exists(pk)"
        )
        return
    uow.put(
        item,
        tag=("after_sales_coverage", new.order_id),
        condition="#version = :version",
        names={"#version": "version"},
        values={":version": {"N": str(previous.version)}},
    )


# --- idempotency ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreationKey:
    customer_id: str
    key: str
    order_id: str
    request_hash: str
    request_id: str
    response: dict[str, Any]
    expires_at: datetime


def add_creation_key(uow: UnitOfWork, record: CreationKey, *, at: datetime) -> None:
    body = json.dumps(record.response, separators=(",", ":"), ensure_ascii=False)
    item = {
        **_idempotency_key(record.customer_id, record.key, record.order_id),
        **tables.to_item(
            {
                "entity": "idempotency",
                "request_hash": record.request_hash,
                "request_id": record.request_id,
                "response": zlib.compress(body.encode(), 6),
                tables.TTL_ATTRIBUTE: int(record.expires_at.timestamp()),
            }
        ),
    }
    uow.put(
        item,
        tag=("idempotency", record.customer_id, record.key),
        condition="attribute_not_exists(pk) OR #ttl < :now",
        names={"#ttl": tables.TTL_ATTRIBUTE},
        values={":now": {"N": str(int(at.timestamp()))}},
    )


def get_creation_key(customer_id: str, key: str, order_id: str) -> CreationKey | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_idempotency_key(customer_id, key, order_id),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    if not raw:
        return None
    item = tables.from_item(raw)
    data = item["response"]
    data = data.value if hasattr(data, "value") else bytes(data)
    return CreationKey(
        customer_id=customer_id,
        key=key,
        order_id=order_id,
        request_hash=item["request_hash"],
        request_id=item["request_id"],
        response=json.loads(zlib.decompress(data)),
        expires_at=datetime.fromtimestamp(int(item[tables.TTL_ATTRIBUTE]), UTC),
    )


# --- listings ------------------------------------------------------------------------------


def _query_status(
    status: str, *, wanted: int, before: str | None, kind: str | None
) -> list[AfterSalesRequest]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": tables.GSI2,
        "KeyConditionExpression": "gsi2pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": STATUS_PREFIX + status}},
        "ScanIndexForward": False,
    }
    if before is not None:
        query["KeyConditionExpression"] += " AND gsi2sk < :before"
        query["ExpressionAttributeValues"][":before"] = {"S": before}
    if kind is not None:
        query["FilterExpression"] = "#type = :type"
        query["ExpressionAttributeNames"] = {"#type": "type"}
        query["ExpressionAttributeValues"][":type"] = {"S": kind}
    return [request_from_item(raw) for raw in tables.query_up_to(query, wanted)]


def requests_page(
    statuses: Sequence[str], *, kind: str | None, limit: int, cursor: str | None
) -> Page[AfterSalesRequest]:
    """Requests in any of ``statuses`` (and of ``kind``), newest first: a merge of their
    status partitions, each read no further than one page."""
    scope = scope_of("after_sales.status", sorted(statuses), kind)
    before: str | None = None
    if cursor:
        before = decode_cursor(cursor, scope).get("before")
        if not isinstance(before, str) or not _POSITION.fullmatch(before):
            raise InvalidCursor()
    merged: dict[str, AfterSalesRequest] = {}
    for status in statuses:
        for request in _query_status(status, wanted=limit + 1, before=before, kind=kind):
            merged[request.request_id] = request
    ordered = sorted(merged.values(), key=_listing_position, reverse=True)[: limit + 1]
    page, more = ordered[:limit], len(ordered) > limit
    next_cursor = encode_cursor(scope, {"before": _listing_position(page[-1])}) if more else None
    return Page(items=page, next_cursor=next_cursor)


def iter_by_status(status: AfterSalesStatus) -> list[AfterSalesRequest]:
    """Every request in one status (for the stock audit)."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": tables.GSI2,
        "KeyConditionExpression": "gsi2pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": STATUS_PREFIX + status.value}},
    }
    found: list[AfterSalesRequest] = []
    while True:
        response = tables.client().query(**query)
        found.extend(request_from_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def due_to_close(now: datetime, *, limit: int) -> list[AfterSalesRequest]:
    """Approved requests with no return parcel whose seven days are up (index copies: the
    caller writes conditionally, so a stale one is skipped)."""
    response = tables.client().query(
        TableName=tables.table_name(),
        IndexName=tables.GSI3,
        KeyConditionExpression="gsi3pk = :pk AND gsi3sk <= :now",
        ExpressionAttributeValues={
            ":pk": {"S": DUE_PARTITION},
            ":now": {"S": timestamp(now) + "#~"},
        },
        Limit=limit,
    )
    return [request_from_item(raw) for raw in response.get("Items", [])]


def _query_all(index: str, partition: str) -> list[AfterSalesRequest]:
    pk_name, _ = tables.GSI_KEYS[index]
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": index,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": pk_name},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
    }
    found: list[AfterSalesRequest] = []
    while True:
        response = tables.client().query(**query)
        found.extend(request_from_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def created_on(day: date) -> list[AfterSalesRequest]:
    """Requests made on ``day`` (business calendar), one Query of that day's partition."""
    return _query_all(tables.GSI1, DAY_PREFIX + day.isoformat())


def completed_on(day: date) -> list[AfterSalesRequest]:
    """Requests refunded or completed on ``day``, one Query of that day's partition."""
    return _query_all(tables.GSI3, DONE_PREFIX + day.isoformat())
