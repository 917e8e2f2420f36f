"""Support conversations in DynamoDB (the only place that knows their keys and attributes).

Item shapes:

    conversation  pk=SUPPORTCONV#<id>  sk=CONVERSATION   (versioned; status changes are
                  conditional on the version read)
                  gsi1pk=SUPPORTCUSTOMER#<customer_id>  gsi1sk=<created_at>#<id>
                  gsi2pk=SUPPORTSTATUS#<status>          gsi2sk=<created_at>#<id>
                  gsi3pk=SUPPORTTIMER#due    gsi3sk=<first_response_due_at>#<id>
                         (only while it waits for a first human reply)
                  gsi3pk=SUPPORTTIMER#close  gsi3sk=<resolved_at + 7 days>#<id>
                         (only while resolved)
    message       pk=SUPPORTCONV#<id>  sk=MSG#<message_id>   (message ids sort by time)
    open count    pk=SUPPORTCUSTOMER#<customer_id>  sk=OPENCOUNT  open_count
    rate window   pk=SUPPORTRATE#<customer_id>  sk=<minute>  count, expires_ttl
    canned reply  pk=SUPPORTCANNED  sk=<key>
    socket ticket pk=SUPPORTTICKET#<sha256 of ticket>  sk=TICKET  user_id, groups, expires_at
    connection    pk=SUPPORTSOCKET#<connection_id>  sk=CONNECTION  user_id
                  gsi1pk=SUPPORTSOCKETUSER#<user_id>  gsi1sk=<connection_id>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.support import (
    MAX_OPEN_CONVERSATIONS,
    MESSAGES_PER_MINUTE,
    Author,
    CannedReply,
    Conversation,
    ConversationStatus,
    Message,
)
from chalicelib.store import tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import UnitOfWork

CONVERSATION_PREFIX = "SUPPORTCONV#"
CONVERSATION_SK = "CONVERSATION"
MESSAGE_PREFIX = "MSG#"
CUSTOMER_PREFIX = "SUPPORTCUSTOMER#"
OPEN_COUNT_SK = "OPENCOUNT"
STATUS_PREFIX = "SUPPORTSTATUS#"
DUE_TIMER = "SUPPORTTIMER#due"
CLOSE_TIMER = "SUPPORTTIMER#close"
RATE_PREFIX = "SUPPORTRATE#"
CANNED_PK = "SUPPORTCANNED"
TICKET_PREFIX = "SUPPORTTICKET#"
TICKET_SK = "TICKET"
SOCKET_PREFIX = "SUPPORTSOCKET#"
SOCKET_SK = "CONNECTION"
SOCKET_USER_PREFIX = "SUPPORTSOCKETUSER#"
SOCKET_RETENTION = timedelta(hours=3)  # API Gateway closes a WebSocket after 2 hours

_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[A-Za-z0-9._-]{1,64}")
MESSAGE_ID = re.compile(r"msg_[0-9A-Z]{26}")
CONVERSATION_ID = re.compile(r"cnv_[0-9A-Z]{26}")


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def conversation_key(conversation_id: str) -> tables.RawItem:
    return {tables.PK: _s(CONVERSATION_PREFIX + conversation_id), tables.SK: _s(CONVERSATION_SK)}


def _listing_key(c: Conversation) -> str:
    return f"{timestamp(c.created_at)}#{c.conversation_id}"


def conversation_item(c: Conversation) -> tables.RawItem:
    values: dict[str, Any] = {
        tables.PK: CONVERSATION_PREFIX + c.conversation_id,
        tables.SK: CONVERSATION_SK,
        "entity": "support_conversation",
        "conversation_id": c.conversation_id,
        "customer_id": c.customer_id,
        "subject": c.subject,
        "status": c.status.value,
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
        "order_id": c.order_id,
        "locale": c.locale,
        "intent": c.intent,
        "handed_over": c.handed_over,
        "first_response_due_at": timestamp(c.first_response_due_at)
        if c.first_response_due_at
        else None,
        "first_human_response_at": timestamp(c.first_human_response_at)
        if c.first_human_response_at
        else None,
        "assigned_to": c.assigned_to,
        "resolved_at": timestamp(c.resolved_at) if c.resolved_at else None,
        "closed_at": timestamp(c.closed_at) if c.closed_at else None,
        "rating": c.rating,
        "rating_comment": c.rating_comment,
        "version": c.version,
        "gsi1pk": CUSTOMER_PREFIX + c.customer_id,
        "gsi1sk": _listing_key(c),
        "gsi2pk": STATUS_PREFIX + c.status.value,
        "gsi2sk": _listing_key(c),
    }
    if c.waiting_for_first_human and c.first_response_due_at is not None:
        values["gsi3pk"] = DUE_TIMER
        values["gsi3sk"] = f"{timestamp(c.first_response_due_at)}#{c.conversation_id}"
    elif c.close_due_at is not None:
        values["gsi3pk"] = CLOSE_TIMER
        values["gsi3sk"] = f"{timestamp(c.close_due_at)}#{c.conversation_id}"
    return tables.to_item(values)


def conversation_from_item(raw: Mapping[str, Any]) -> Conversation:
    item = tables.from_item(raw)
    return Conversation(
        conversation_id=item["conversation_id"],
        customer_id=item["customer_id"],
        subject=item["subject"],
        status=ConversationStatus(item["status"]),
        created_at=_time(item["created_at"]),  # type: ignore[arg-type]
        updated_at=_time(item["updated_at"]),  # type: ignore[arg-type]
        order_id=item.get("order_id"),
        locale=item.get("locale", "en"),
        intent=item.get("intent"),
        handed_over=bool(item.get("handed_over", False)),
        first_response_due_at=_time(item.get("first_response_due_at")),
        first_human_response_at=_time(item.get("first_human_response_at")),
        assigned_to=item.get("assigned_to"),
        resolved_at=_time(item.get("resolved_at")),
        closed_at=_time(item.get("closed_at")),
        rating=int(item["rating"]) if item.get("rating") is not None else None,
        rating_comment=item.get("rating_comment"),
        version=int(item.get("version", 1)),
    )


def message_item(m: Message) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: CONVERSATION_PREFIX + m.conversation_id,
            tables.SK: MESSAGE_PREFIX + m.message_id,
            "entity": "support_message",
            "message_id": m.message_id,
            "conversation_id": m.conversation_id,
            "author": m.author.value,
            "author_id": m.author_id,
            "body": m.body,
            "photos": list(m.photos) or None,
            "created_at": timestamp(m.created_at),
        }
    )


def message_from_item(raw: Mapping[str, Any]) -> Message:
    item = tables.from_item(raw)
    return Message(
        message_id=item["message_id"],
        conversation_id=item["conversation_id"],
        author=Author(item["author"]),
        author_id=item["author_id"],
        body=item["body"],
        created_at=_time(item["created_at"]),  # type: ignore[arg-type]
        photos=tuple(item.get("photos") or ()),
    )


# --- writes --------------------------------------------------------------------------------


def add_conversation(uow: UnitOfWork, c: Conversation, *, previous: Conversation | None) -> None:
    """The conversation, new or changed from ``previous`` (conditional on its version)."""
    uow.put_versioned(
        conversation_item(c),
        tag=("support_conversation", c.conversation_id),
        previous_version=previous.version if previous else None,
    )


def add_message(uow: UnitOfWork, m: Message) -> None:
    uow.put(
        message_item(m),
        tag=("support_message", m.message_id),
        condition="attribute_not_exists(pk)",
    )


def _open_count_key(customer_id: str) -> tables.RawItem:
    return {tables.PK: _s(CUSTOMER_PREFIX + customer_id), tables.SK: _s(OPEN_COUNT_SK)}


def add_open_conversation(uow: UnitOfWork, customer_id: str, *, limited: bool) -> None:
    """One more open conversation; ``limited`` refuses it past the per-customer limit."""
    uow.update(
        _open_count_key(customer_id),
        "ADD open_count :one",
        tag=("support_open_count", customer_id),
        condition="attribute_not_exists(open_count) OR open_count < :max" if limited else None,
        values={
            ":one": {"N": "1"},
            **({":max": {"N": str(MAX_OPEN_CONVERSATIONS)}} if limited else {}),
        },
    )


def remove_open_conversation(uow: UnitOfWork, customer_id: str) -> None:
    uow.update(
        _open_count_key(customer_id),
        "ADD open_count :minus",
        tag=("support_open_count", customer_id),
        condition="open_count > :zero",
        values={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
    )


def add_rate_hit(uow: UnitOfWork, customer_id: str, window: str, *, at: datetime) -> None:
    """Count one message in the customer's minute ``window``; refused past the limit."""
    uow.update(
        {tables.PK: _s(RATE_PREFIX + customer_id), tables.SK: _s(window)},
        "ADD #count :one SET #ttl = :ttl",
        tag=("support_rate", customer_id),
        condition="attribute_not_exists(#count) OR #count < :max",
        names={"#count": "count", "#ttl": tables.TTL_ATTRIBUTE},
        values={
            ":one": {"N": "1"},
            ":max": {"N": str(MESSAGES_PER_MINUTE)},
            ":ttl": {"N": str(int((at + timedelta(minutes=5)).timestamp()))},
        },
    )


# --- reads ---------------------------------------------------------------------------------


def get_conversation(conversation_id: str) -> Conversation | None:
    raw = (
        tables.client()
        .get_item(
            TableName=tables.table_name(),
            Key=conversation_key(conversation_id),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return conversation_from_item(raw) if raw else None


def messages_of(
    conversation_id: str, *, after: str | None = None, limit: int = 500
) -> list[Message]:
    """The conversation's messages in order, only those after message ``after`` if given."""
    start = MESSAGE_PREFIX + (after or "")
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk AND sk > :start",
        "ExpressionAttributeValues": {
            ":pk": _s(CONVERSATION_PREFIX + conversation_id),
            ":start": _s(start),
        },
        "ConsistentRead": True,
    }
    if after is None:
        query["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :start)"
    return [message_from_item(raw) for raw in tables.query_up_to(query, limit)]


def _before(cursor: str | None, scope: str) -> str | None:
    if not cursor:
        return None
    before = decode_cursor(cursor, scope).get("before")
    if not isinstance(before, str) or not _POSITION.fullmatch(before):
        raise InvalidCursor()
    return before


def _query(
    index: str,
    partition: str,
    *,
    wanted: int,
    before: str | None = None,
    newest_first: bool = True,
    up_to: str | None = None,
    assigned_to: str | None = None,
) -> list[Conversation]:
    pk_name, sk_name = tables.GSI_KEYS[index]
    names = {"#pk": pk_name}
    values: dict[str, Any] = {":pk": _s(partition)}
    condition = "#pk = :pk"
    if before is not None:
        condition += " AND #sk < :before"
        names["#sk"] = sk_name
        values[":before"] = _s(before)
    elif up_to is not None:
        condition += " AND #sk <= :upto"
        names["#sk"] = sk_name
        values[":upto"] = _s(up_to)
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ScanIndexForward": not newest_first,
    }
    if assigned_to is not None:
        query["FilterExpression"] = "#assigned = :assigned"
        names["#assigned"] = "assigned_to"
        values[":assigned"] = _s(assigned_to)
    query["ExpressionAttributeNames"] = names
    query["ExpressionAttributeValues"] = values
    found: list[Conversation] = []
    while len(found) < wanted:
        response = tables.client().query(**query, Limit=max(wanted - len(found), 10))
        found.extend(conversation_from_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found[:wanted]


def _page(found: list[Conversation], limit: int, scope: str) -> Page[Conversation]:
    page, more = found[:limit], len(found) > limit
    cursor = encode_cursor(scope, {"before": _listing_key(page[-1])}) if more else None
    return Page(items=page, next_cursor=cursor)


def customer_conversations_page(
    customer_id: str, *, status: str | None, limit: int, cursor: str | None
) -> Page[Conversation]:
    scope = scope_of("support.customer", customer_id, status)
    found = _query(
        tables.GSI1, CUSTOMER_PREFIX + customer_id, wanted=limit + 1, before=_before(cursor, scope)
    )
    if status is not None:
        found = [c for c in found if c.status.value == status]
    return _page(found, limit, scope)


def conversations_by_status_page(
    statuses: list[str], *, assigned_to: str | None, limit: int, cursor: str | None
) -> Page[Conversation]:
    scope = scope_of("support.status", sorted(statuses), assigned_to)
    before = _before(cursor, scope)
    merged: dict[str, Conversation] = {}
    for status in statuses:
        for c in _query(
            tables.GSI2,
            STATUS_PREFIX + status,
            wanted=limit + 1,
            before=before,
            assigned_to=assigned_to,
        ):
            merged[c.conversation_id] = c
    ordered = sorted(merged.values(), key=_listing_key, reverse=True)
    return _page(ordered[: limit + 1], limit, scope)


def overdue_conversations(now: datetime, *, limit: int) -> list[Conversation]:
    """Conversations whose first-response time passed without a human reply, most overdue
    first (the sparse timer index holds only those still waiting)."""
    up_to = f"{timestamp(now)}#~"
    found = _query(tables.GSI3, DUE_TIMER, wanted=limit, newest_first=False, up_to=up_to)
    return [c for c in found if c.is_overdue(now)]


def conversations_due_to_close(now: datetime, *, limit: int) -> list[Conversation]:
    up_to = f"{timestamp(now)}#~"
    return _query(tables.GSI3, CLOSE_TIMER, wanted=limit, newest_first=False, up_to=up_to)


def conversations_started_between(start: datetime, end: datetime) -> list[Conversation]:
    """Every conversation created in [start, end): a key-range Query per status partition."""
    found: list[Conversation] = []
    for status in ConversationStatus:
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": tables.GSI2,
            "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": _s(STATUS_PREFIX + status.value),
                ":from": _s(timestamp(start)),
                ":to": _s(timestamp(end - timedelta(microseconds=1)) + "#~"),
            },
        }
        while True:
            response = tables.client().query(**query)
            found.extend(conversation_from_item(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    unique = {c.conversation_id: c for c in found}  # an index copy may lag a status change
    return sorted(unique.values(), key=_listing_key)


# --- canned replies ------------------------------------------------------------------------


def put_canned_reply(reply: CannedReply) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: CANNED_PK,
                tables.SK: reply.key,
                "entity": "support_canned_reply",
                "key": reply.key,
                "texts": dict(reply.texts),
                "updated_at": timestamp(reply.updated_at),
                "updated_by": reply.updated_by,
            }
        ),
    )


def canned_replies() -> list[CannedReply]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": _s(CANNED_PK)},
    }
    replies: list[CannedReply] = []
    while True:
        response = tables.client().query(**query)
        for raw in response.get("Items", []):
            item = tables.from_item(raw)
            replies.append(
                CannedReply(
                    key=item["key"],
                    texts=dict(item["texts"]),
                    updated_at=_time(item["updated_at"]),  # type: ignore[arg-type]
                    updated_by=item["updated_by"],
                )
            )
        if "LastEvaluatedKey" not in response:
            return replies
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- WebSocket tickets and connections -----------------------------------------------------


def put_ticket(digest: str, user_id: str, groups: list[str], expires_at: datetime) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: TICKET_PREFIX + digest,
                tables.SK: TICKET_SK,
                "entity": "support_socket_ticket",
                "user_id": user_id,
                "groups": ",".join(groups),
                "expires_at": timestamp(expires_at),
                tables.TTL_ATTRIBUTE: int(expires_at.timestamp()) + 60,
            }
        ),
        ConditionExpression="attribute_not_exists(pk)",
    )


def take_ticket(digest: str, now: datetime) -> tuple[str, list[str]] | None:
    """Consume the ticket (a conditional delete, so it works once) if it has not expired."""
    try:
        response = tables.client().delete_item(
            TableName=tables.table_name(),
            Key={tables.PK: _s(TICKET_PREFIX + digest), tables.SK: _s(TICKET_SK)},
            ConditionExpression="attribute_exists(pk) AND expires_at > :now",
            ExpressionAttributeValues={":now": _s(timestamp(now))},
            ReturnValues="ALL_OLD",
        )
    except Exception as exc:
        if tables.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    item = tables.from_item(response.get("Attributes") or {})
    if not item:
        return None
    return item["user_id"], [g for g in str(item.get("groups", "")).split(",") if g]


def put_connection(connection_id: str, user_id: str, groups: list[str], at: datetime) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: SOCKET_PREFIX + connection_id,
                tables.SK: SOCKET_SK,
                "entity": "support_socket",
                "connection_id": connection_id,
                "user_id": user_id,
                "groups": ",".join(groups),
                "connected_at": timestamp(at),
                tables.TTL_ATTRIBUTE: int((at + SOCKET_RETENTION).timestamp()),
                "gsi1pk": SOCKET_USER_PREFIX + user_id,
                "gsi1sk": connection_id,
            }
        ),
    )


def delete_connection(connection_id: str) -> None:
    tables.client().delete_item(
        TableName=tables.table_name(),
        Key={tables.PK: _s(SOCKET_PREFIX + connection_id), tables.SK: _s(SOCKET_SK)},
    )


def connections_of(user_id: str) -> list[str]:
    response = tables.client().query(
        TableName=tables.table_name(),
        IndexName=tables.GSI1,
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": _s(SOCKET_USER_PREFIX + user_id)},
    )
    return [tables.from_item(raw)["connection_id"] for raw in response.get("Items", [])]
