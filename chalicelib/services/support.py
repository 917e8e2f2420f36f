"""Support conversations: start, reply, read, list, assign, resolve, rate, close, SLA.

Each use case reads the conversation, asks the domain for the change, and commits one
transaction: the conversation (conditional on the version read), its new messages, the
customer's per-minute message count and open-conversation count where they move, and an
outbox event for every status change. A concurrent change to the same conversation makes
the condition fail; the use case then reads again and retries.

The assistant answers a customer message while no person has replied and the customer has
not asked for one, from the orders and tracking as they stand (``_order_facts``). After the
commit, new messages and status changes are pushed to the customer's and the assigned
person's open WebSockets; a support reply to a customer without one also goes to their
notification channels through the outbox (``support.reply_posted``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from chalicelib.adapters import live_connections
from chalicelib.domain import support_assistant as assistant
from chalicelib.domain.errors import InvalidInput, NotFound, TooManyRequests
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.orders import Order
from chalicelib.domain.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chalicelib.domain.report_schemas import REPORT_SCHEMAS
from chalicelib.domain.reports import ReportTable
from chalicelib.domain.support import (
    ACTIVE_STATUSES,
    Author,
    CannedReply,
    Conversation,
    ConversationStatus,
    Message,
    SupportSummary,
    TooManyOpenConversations,
    clean_body,
    clean_photos,
    rate_window,
)
from chalicelib.observability import logger, metrics
from chalicelib.services import orders as order_service
from chalicelib.services import uploads
from chalicelib.settings import get_settings
from chalicelib.store import customers as customers_store
from chalicelib.store import orders as orders_store
from chalicelib.store import outbox
from chalicelib.store import shipments as shipments_store
from chalicelib.store import support as store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

STATUS_CHANGED = "support.conversation_status_changed"
STARTED = "support.conversation_started"
REPLY_POSTED = "support.reply_posted"
ATTEMPTS = 4
TICKET_SECONDS = 60
TIMER_BATCH = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    staff: bool
    locale: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Posted:
    conversation: Conversation
    message: Message
    replies: list[Message]


class ConversationNotFound(NotFound):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"Conversation {conversation_id} was not found.", {"conversation_id": conversation_id}
        )


def _now() -> datetime:
    return datetime.now(UTC)


def current_time() -> datetime:
    """The service's clock (what "overdue" is measured against)."""
    return _now()


def new_conversation_id(at: datetime) -> str:
    return sortable_id("cnv_", at)


def new_message_id(at: datetime) -> str:
    return sortable_id("msg_", at)


def first_response_window() -> timedelta:
    return timedelta(minutes=max(1, get_settings().support_first_response_minutes))


# --- the assistant's live facts ------------------------------------------------------------


def _facts_for(order: Order) -> assistant.OrderFacts:
    records = shipments_store.get_shipments([s.shipment_id for s in order.shipments])
    parcels = []
    for shipment in order.shipments:
        record = records.get(shipment.shipment_id)
        booking = record.booking if record else None
        latest = record.timeline.latest if record else None
        parcels.append(
            assistant.ParcelFacts(
                carrier=booking.carrier if booking else None,
                tracking_number=booking.tracking_number if booking else None,
                status=shipment.status.value,
                latest_description=latest.description if latest else None,
                latest_place=str(latest.location) or None if latest else None,
                latest_at=latest.occurred_at if latest else None,
                estimated_delivery=record.timeline.estimated_delivery if record else None,
            )
        )
    return assistant.OrderFacts(
        order_id=order.order_id,
        status=order.status.value,
        can_cancel=order.can_cancel_by_owner,
        expires_at=order.expires_at,
        parcels=tuple(parcels),
    )


def _order_facts(conversation: Conversation, text: str) -> assistant.OrderFacts | None:
    """The order the question is about: the conversation's, one named in the text (if the
    customer's own), else their most recent one."""
    owner = conversation.customer_id
    order: Order | None = None
    for candidate in (conversation.order_id, assistant.order_id_in(text)):
        if candidate:
            found = orders_store.get_order(candidate, consistent=True)
            if found is not None and found.is_owned_by(owner):
                order = found
                break
    if order is None:
        page = orders_store.customer_orders_page(owner, status=None, limit=1, cursor=None)
        order = page.items[0] if page.items else None
    return _facts_for(order) if order is not None else None


def _profile_locale(caller: Caller) -> str | None:
    """The customer's profile locale when they have a profile, else their token's claim."""
    profile = customers_store.get_profile(caller.user_id)
    return profile.locale if profile is not None else caller.locale


def _assistant_turn(
    conversation: Conversation, text: str, at: datetime, profile_locale: str | None
) -> tuple[Conversation, list[Message]]:
    """The assistant's answer to ``text`` (if it may answer) and the conversation after it."""
    if not conversation.assistant_may_answer:
        return conversation, []
    intent = assistant.recognise(text)
    facts = None
    if intent not in (assistant.Intent.HUMAN, assistant.Intent.UNKNOWN):
        facts = _order_facts(conversation, text)
    language = assistant.language_of(text, profile_locale)
    reply = assistant.answer(intent, language, facts, time_zone=get_settings().business_time_zone)
    if reply.hand_over:
        changed = conversation.hand_over(intent.value, at, first_response_window())
    else:
        changed = conversation.noted_intent(intent.value, at)
    replies = []
    if reply.body:
        moment = at + timedelta(milliseconds=1)  # sorts after the customer's message
        replies.append(
            Message(
                message_id=new_message_id(moment),
                conversation_id=conversation.conversation_id,
                author=Author.ASSISTANT,
                author_id="assistant",
                body=reply.body,
                created_at=moment,
            )
        )
    return changed, replies


# --- transactions --------------------------------------------------------------------------


def _status_event(uow: UnitOfWork, before: Conversation | None, after: Conversation) -> None:
    if before is not None and before.status is after.status:
        return
    outbox.add_event(
        uow,
        STATUS_CHANGED,
        {
            "conversation_id": after.conversation_id,
            "customer_id": after.customer_id,
            "from": before.status.value if before else None,
            "to": after.status.value,
        },
        occurred_at=after.updated_at,
    )


def _open_count_moves(uow: UnitOfWork, before: Conversation, after: Conversation) -> None:
    was, now = before.status in ACTIVE_STATUSES, after.status in ACTIVE_STATUSES
    if now and not was:
        store.add_open_conversation(uow, after.customer_id, limited=False)
    elif was and not now:
        store.remove_open_conversation(uow, after.customer_id)


def _commit(uow: UnitOfWork, *, at: datetime) -> None:
    try:
        uow.commit()
    except TransactionCancelled as cancelled:
        failed = {tag[0] for tag in cancelled.failed_tags()}
        if "support_rate" in failed:
            _, retry_after = rate_window(at)
            raise TooManyRequests(
                "Too many messages; wait a moment before sending more.",
                retry_after_seconds=retry_after,
            ) from None
        if "support_open_count" in failed and "support_conversation" not in failed:
            raise TooManyOpenConversations() from None
        raise


def _retrying(work: Callable[[], T]) -> T:
    for attempt in range(ATTEMPTS):
        try:
            return work()
        except TransactionCancelled as cancelled:
            if attempt == ATTEMPTS - 1:
                raise
            if not (cancelled.conflicted or cancelled.condition_failed):
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def _readable(conversation_id: str, caller: Caller) -> Conversation:
    known = store.CONVERSATION_ID.fullmatch(conversation_id or "")
    conversation = store.get_conversation(conversation_id) if known else None
    if conversation is None or not (caller.staff or conversation.is_owned_by(caller.user_id)):
        raise ConversationNotFound(conversation_id)
    return conversation


# --- use cases -----------------------------------------------------------------------------


def _own_photos(caller: Caller, photos: Sequence[str]) -> tuple[str, ...]:
    """The message's photos once they are known to be the caller's own uploads (400
    ``unknown_upload`` otherwise, before anything is written)."""
    attached = clean_photos(photos)
    uploads.require_own_uploads(caller.user_id, attached)
    return attached


def start_conversation(
    caller: Caller,
    *,
    subject: str,
    message: str,
    order_id: str | None,
    photos: Sequence[str] = (),
) -> tuple[Conversation, list[Message]]:
    body = clean_body(message)
    if order_id is not None:
        order_service.get_order(order_id, viewer_id=caller.user_id, staff=False)  # 404 if not
    attached = _own_photos(caller, photos)
    profile_locale = _profile_locale(caller)
    at = _now()
    started = Conversation.start(
        conversation_id=new_conversation_id(at),
        customer_id=caller.user_id,
        subject=subject,
        order_id=order_id,
        locale=assistant.language_of(body, profile_locale),
        at=at,
    )
    first = Message(
        message_id=new_message_id(at),
        conversation_id=started.conversation_id,
        author=Author.CUSTOMER,
        author_id=caller.user_id,
        body=body,
        created_at=at,
        photos=attached,
    )
    conversation, replies = _assistant_turn(started, body, at, profile_locale)
    uow = UnitOfWork()
    store.add_conversation(uow, conversation, previous=None)
    store.add_open_conversation(uow, caller.user_id, limited=True)
    store.add_rate_hit(uow, caller.user_id, rate_window(at)[0], at=at)
    for item in (first, *replies):
        store.add_message(uow, item)
    outbox.add_event(
        uow,
        STARTED,
        {
            "conversation_id": conversation.conversation_id,
            "customer_id": caller.user_id,
            "order_id": order_id,
            "intent": conversation.intent,
            "handed_over": conversation.handed_over,
        },
        occurred_at=at,
    )
    _commit(uow, at=at)
    _push(conversation, [first, *replies], status_changed=False)
    return conversation, [first, *replies]


def post_message(
    conversation_id: str, caller: Caller, body: str, photos: Sequence[str] = ()
) -> Posted:
    """A message from the conversation's customer or from support/ops; photos are the
    writer's own uploads (customers upload them; staff only where they have uploads)."""
    text = clean_body(body)
    attached = _own_photos(caller, photos)

    def attempt() -> Posted:
        before = _readable(conversation_id, caller)
        at = _now()
        by_customer = before.is_owned_by(caller.user_id)
        message = Message(
            message_id=new_message_id(at),
            conversation_id=before.conversation_id,
            author=Author.CUSTOMER if by_customer else Author.AGENT,
            author_id=caller.user_id,
            body=text,
            created_at=at,
            photos=attached,
        )
        replies: list[Message] = []
        if by_customer:
            after = before.customer_wrote(at)
            after, replies = _assistant_turn(after, text, at, _profile_locale(caller))
        else:
            after = before.support_wrote(caller.user_id, at)
        uow = UnitOfWork()
        store.add_conversation(uow, after, previous=before)
        if by_customer:
            store.add_rate_hit(uow, caller.user_id, rate_window(at)[0], at=at)
        for item in (message, *replies):
            store.add_message(uow, item)
        _open_count_moves(uow, before, after)
        _status_event(uow, before, after)
        customer_online = bool(store.connections_of(before.customer_id))
        if not by_customer and not customer_online:
            outbox.add_event(
                uow,
                REPLY_POSTED,
                {
                    "conversation_id": after.conversation_id,
                    "customer_id": after.customer_id,
                    "message_id": message.message_id,
                    "order_id": after.order_id,
                    "subject": after.subject,
                    "body": text[:500],
                },
                occurred_at=at,
            )
        _commit(uow, at=at)
        return Posted(after, message, replies)

    posted = _retrying(attempt)
    _push(posted.conversation, [posted.message, *posted.replies], status_changed=True)
    return posted


def get_conversation(
    conversation_id: str, caller: Caller, *, after: str | None = None
) -> tuple[Conversation, list[Message]]:
    if after is not None and not store.MESSAGE_ID.fullmatch(after):
        raise InvalidInput(
            "after must be a message id.", [{"field": "after", "message": "not a message id"}]
        )
    conversation = _readable(conversation_id, caller)
    return conversation, store.messages_of(conversation.conversation_id, after=after)


def list_conversations(
    caller: Caller,
    *,
    status: str | None = None,
    assigned_to: str | None = None,
    overdue: bool = False,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page[Conversation]:
    """Staff: every conversation, overdue ones first, then newest first (by status, and
    assignee); ``overdue`` lists only those, most overdue first. Customers: their own."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if status is not None and status not in {s.value for s in ConversationStatus}:
        allowed = ", ".join(s.value for s in ConversationStatus)
        raise InvalidInput(
            f"status must be one of {allowed}.", [{"field": "status", "message": "unknown"}]
        )
    now = _now()
    if not caller.staff:
        return store.customer_conversations_page(
            caller.user_id, status=status, limit=limit, cursor=cursor
        )
    if overdue:
        found = [
            c
            for c in store.overdue_conversations(now, limit=MAX_PAGE_SIZE)
            if (status is None or c.status.value == status)
            and (assigned_to is None or c.assigned_to == assigned_to)
        ]
        return Page(items=found[:limit], next_cursor=None)
    statuses = [status] if status else [s.value for s in ConversationStatus]
    page = store.conversations_by_status_page(
        statuses, assigned_to=assigned_to, limit=limit, cursor=cursor
    )
    if cursor is None:
        # The first page leads with every overdue conversation, most overdue first.
        late = [
            c
            for c in store.overdue_conversations(now, limit=limit)
            if c.status.value in statuses and (assigned_to is None or c.assigned_to == assigned_to)
        ]
        late_ids = {c.conversation_id for c in late}
        rest = [c for c in page.items if c.conversation_id not in late_ids]
        return Page(items=late + rest, next_cursor=page.next_cursor)
    return page


def _change(
    conversation_id: str,
    caller: Caller,
    change: Callable[[Conversation, datetime], Conversation],
) -> Conversation:
    def attempt() -> tuple[Conversation, Conversation]:
        before = _readable(conversation_id, caller)
        at = _now()
        after = change(before, at)
        if after is before:
            return before, after
        uow = UnitOfWork()
        store.add_conversation(uow, after, previous=before)
        _open_count_moves(uow, before, after)
        _status_event(uow, before, after)
        _commit(uow, at=at)
        return before, after

    before, after = _retrying(attempt)
    if after.status is not before.status:
        _push(after, [], status_changed=True)
    return after


def assign(conversation_id: str, caller: Caller, agent_id: str) -> Conversation:
    return _change(conversation_id, caller, lambda c, at: c.assign(agent_id, at))


def resolve(conversation_id: str, caller: Caller) -> Conversation:
    return _change(conversation_id, caller, lambda c, at: c.resolve(at))


def rate(conversation_id: str, caller: Caller, score: int, comment: str | None) -> Conversation:
    conversation = _readable(conversation_id, caller)
    if not conversation.is_owned_by(caller.user_id):
        raise ConversationNotFound(conversation_id)
    return _change(conversation_id, caller, lambda c, at: c.rate(score, comment, at))


def canned_replies() -> list[CannedReply]:
    return sorted(store.canned_replies(), key=lambda reply: reply.key)


def put_canned_reply(key: str, texts: dict[str, str], caller: Caller) -> CannedReply:
    reply = CannedReply.of(key, texts, at=_now(), by=caller.user_id)
    store.put_canned_reply(reply)
    return reply


# --- schedules -----------------------------------------------------------------------------


def close_resolved(now: datetime) -> int:
    """Close conversations resolved 7 days ago or more (read from the sparse timer index)."""
    closed = 0
    for candidate in store.conversations_due_to_close(now, limit=TIMER_BATCH):
        try:
            _change(
                candidate.conversation_id,
                Caller(user_id="system", staff=True),
                lambda c, at: c.close(max(at, now)),
            )
            closed += 1
        except Exception:  # noqa: BLE001 - one conversation must not stop the rest
            logger.exception(
                "could not close a conversation", extra={"id": candidate.conversation_id}
            )
    return closed


def check_overdue(now: datetime) -> int:
    """How many conversations are past their first-response time; recorded as a metric
    (the alarm on it fires when any are overdue)."""
    count = len(store.overdue_conversations(now, limit=1000))
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name="SupportConversationsOverdue", unit=MetricUnit.Count, value=count)
    return count


# --- the nightly report ---------------------------------------------------------------------


def summary_table(day: date, zone: tzinfo, *, now: datetime | None = None) -> ReportTable:
    """``support/summary`` for the conversations started on business day ``day``."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    conversations = store.conversations_started_between(start, start + timedelta(days=1))
    summary = SupportSummary.of(conversations, now or _now())
    columns = tuple(column for column, _ in REPORT_SCHEMAS["support/summary"])
    return ReportTable("support", "summary", columns, (summary.row(),))


# --- live delivery -------------------------------------------------------------------------


def _message_payload(conversation: Conversation, message: Message) -> dict[str, Any]:
    body = message.as_dict()
    body["created_at"] = store.timestamp(message.created_at)
    return {"type": "message", "conversation_id": conversation.conversation_id, "message": body}


def _push(conversation: Conversation, messages: list[Message], *, status_changed: bool) -> None:
    """Best effort: the messages are stored; a client that misses a push polls ``?after=``."""
    if not live_connections.configured():
        return
    people = {conversation.customer_id}
    if conversation.assigned_to:
        people.add(conversation.assigned_to)
    payloads = [_message_payload(conversation, m) for m in messages]
    if status_changed:
        payloads.append(
            {
                "type": "status",
                "conversation_id": conversation.conversation_id,
                "status": conversation.status.value,
            }
        )
    for person in people:
        for connection_id in store.connections_of(person):
            for payload in payloads:
                sent = live_connections.post(connection_id, payload)
                if sent is False:
                    store.delete_connection(connection_id)
                    break


def issue_socket_ticket(caller: Caller) -> dict[str, Any]:
    ticket = secrets.token_urlsafe(32)
    expires_at = _now() + timedelta(seconds=TICKET_SECONDS)
    store.put_ticket(_digest(ticket), caller.user_id, list(caller.groups), expires_at)
    return {
        "ticket": ticket,
        "url": get_settings().support_socket_url,
        "expires_in": TICKET_SECONDS,
    }


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def connect(connection_id: str, ticket: str | None) -> bool:
    """``$connect``: accept the connection if ``ticket`` is a live, unused ticket."""
    if not ticket or len(ticket) > 128:
        return False
    owner = store.take_ticket(_digest(ticket), _now())
    if owner is None:
        return False
    user_id, groups = owner
    store.put_connection(connection_id, user_id, groups, _now())
    return True


def disconnect(connection_id: str) -> None:
    store.delete_connection(connection_id)
