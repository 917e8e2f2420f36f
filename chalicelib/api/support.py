"""Support conversations: customers ask, the assistant answers at once, support replies.

Customers start conversations and write in their own; support and ops read and write in
any, assign, resolve, and keep the canned replies. Someone else's conversation is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from chalice import Blueprint, Response
from pydantic import Field, StringConstraints

from chalicelib.api import models
from chalicelib.api.auth import (
    CUSTOMERS,
    OPS,
    SUPPORT,
    Principal,
    authorizer,
    principal,
    require_groups,
)
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain import paging
from chalicelib.domain.support import (
    MAX_BODY_CHARS,
    MAX_COMMENT_CHARS,
    MAX_PHOTOS,
    MAX_SUBJECT_CHARS,
    CannedReply,
    Conversation,
    Message,
)
from chalicelib.services import support, uploads

blueprint = Blueprint(__name__)

TAGS = ("support",)
JSON = {"Content-Type": "application/json"}
CONVERSATION_PATH = {"conversation_id": {"type": "string", "pattern": models.ID_PATTERN}}
Status = Literal["open", "waiting_on_customer", "resolved", "closed"]
Photos = Annotated[
    list[Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]],
    Field(
        default_factory=list,
        max_length=MAX_PHOTOS,
        description="Your own upload ids (POST /uploads), at most 6.",
    ),
]


def _caller(p: Principal) -> support.Caller:
    return support.Caller(
        user_id=p.user_id,
        staff=p.in_any(SUPPORT, OPS),
        locale=p.locale,
        groups=tuple(sorted(p.groups)),
    )


class StartIn(models.RequestModel):
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_CHARS)
    message: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    order_id: str | None = Field(default=None, pattern=models.ID_PATTERN)
    photos: Photos


class MessageIn(models.RequestModel):
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    photos: Photos


class AssignIn(models.RequestModel):
    agent_id: str = Field(pattern=models.ID_PATTERN)


class RatingIn(models.RequestModel):
    score: models.JsonInt = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class CannedIn(models.RequestModel):
    zh_cn: str = Field(alias="zh-CN", min_length=1, max_length=MAX_BODY_CHARS)
    en: str = Field(min_length=1, max_length=MAX_BODY_CHARS)


class ListQuery(models.QueryModel):
    status: Status | None = None
    assigned_to: str | None = Field(default=None, pattern=models.ID_PATTERN)
    overdue: bool = False
    limit: int = Field(default=paging.DEFAULT_PAGE_SIZE, ge=1, le=paging.MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2048)


class ReadQuery(models.QueryModel):
    after: str | None = Field(default=None, max_length=64)


class MessageBody(models.ResponseModel):
    message_id: str
    author: Literal["customer", "agent", "assistant"]
    author_id: str
    body: str = Field(description="Plain text; show it as text, never as HTML.")
    photos: list[str] = Field(description="Upload ids of the photos attached.")
    photo_urls: list[models.PhotoLink] | None = Field(
        default=None, description="Support and ops only: short-lived GET URLs of the photos."
    )
    created_at: datetime

    @classmethod
    def of(cls, message: Message, links: dict[str, dict[str, Any]] | None = None) -> MessageBody:
        body = cls.model_validate(message.as_dict())
        if links is not None:
            found = [links[upload_id] for upload_id in message.photos if upload_id in links]
            body.photo_urls = [models.PhotoLink.model_validate(link) for link in found]
        return body


def _photo_links(caller: support.Caller, messages: Sequence[Message]) -> dict[str, Any] | None:
    """Staff see the messages' photos through short-lived links (one lookup for them all);
    customers get the upload ids only, as on after-sales requests."""
    if not caller.staff:
        return None
    ids = list(dict.fromkeys(upload_id for m in messages for upload_id in m.photos))
    return {link["upload_id"]: link for link in uploads.photo_links(ids)}


class ConversationBody(models.ResponseModel):
    conversation_id: str
    status: Status
    order_id: str | None
    subject: str
    customer_id: str
    assigned_to: str | None
    intent: str | None = Field(description="What the assistant recognised, if anything.")
    first_response_due_at: datetime | None = Field(
        description="While waiting for a first reply from a person: when it is due."
    )
    overdue: bool
    rating: int | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageBody] | None = None

    @classmethod
    def of(
        cls,
        c: Conversation,
        messages: list[Message] | None = None,
        links: dict[str, dict[str, Any]] | None = None,
    ) -> ConversationBody:
        return cls(
            conversation_id=c.conversation_id,
            status=c.status.value,
            order_id=c.order_id,
            subject=c.subject,
            customer_id=c.customer_id,
            assigned_to=c.assigned_to,
            intent=c.intent,
            first_response_due_at=c.first_response_due_at if c.waiting_for_first_human else None,
            overdue=c.is_overdue(support.current_time()),
            rating=c.rating,
            created_at=c.created_at,
            updated_at=c.updated_at,
            messages=(
                [MessageBody.of(m, links) for m in messages] if messages is not None else None
            ),
        )


class ConversationPage(models.ResponseModel):
    items: list[ConversationBody]
    next_cursor: str | None


class PostedBody(models.ResponseModel):
    message: MessageBody
    replies: list[MessageBody] = Field(description="The assistant's answers, if any.")
    status: Status


class CannedBody(models.ResponseModel):
    key: str
    zh_cn: str = Field(serialization_alias="zh-CN")
    en: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, reply: CannedReply) -> CannedBody:
        return cls(
            key=reply.key,
            zh_cn=reply.texts["zh-CN"],
            en=reply.texts["en"],
            updated_at=reply.updated_at,
            updated_by=reply.updated_by,
        )


class CannedList(models.ResponseModel):
    items: list[CannedBody]


class TicketBody(models.ResponseModel):
    ticket: str = Field(description="Single use, for one WebSocket connect within expires_in.")
    url: str = Field(description="Connect to url?ticket=<ticket>.")
    expires_in: int


def _created(body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=201, headers=dict(JSON))


@blueprint.route("/support/conversations", methods=["POST"], authorizer=authorizer)
@operation(
    "Start a support conversation",
    description=(
        "Customers only. The assistant answers at once when it recognises the question "
        "(its answer is already in messages); otherwise a person from support takes over. "
        "404 when order_id is not one of the caller's orders; 429 too_many_open_conversations "
        "past 5 open conversations; 429 rate_limited past 30 messages a minute; 400 "
        "unknown_upload when a photo is not one of the caller's uploads."
    ),
    tags=TAGS,
    request=StartIn,
    responses={201: ConversationBody},
    errors=(404, 429),
)
def start_conversation() -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, StartIn)
    conversation, messages = support.start_conversation(
        _caller(caller),
        subject=body.subject,
        message=body.message,
        order_id=body.order_id,
        photos=body.photos,
    )
    return _created(models.dump(ConversationBody.of(conversation, messages)))


@blueprint.route("/support/conversations", methods=["GET"], authorizer=authorizer)
@operation(
    "Support conversations",
    description=(
        "Support and ops see every conversation: overdue ones first, then newest first; "
        "overdue=true lists only overdue ones. A customer sees their own."
    ),
    tags=TAGS,
    query=ListQuery,
    responses={200: ConversationPage},
)
def list_conversations() -> dict[str, Any]:
    request = blueprint.current_request
    caller = _caller(principal(request))
    params = ListQuery.model_validate(request.query_params or {})
    page = support.list_conversations(
        caller,
        status=params.status,
        assigned_to=params.assigned_to,
        overdue=params.overdue,
        cursor=params.cursor,
        limit=params.limit,
    )
    items = [ConversationBody.of(c) for c in page.items]
    return models.dump(ConversationPage(items=items, next_cursor=page.next_cursor))


@blueprint.route("/support/conversations/{conversation_id}", methods=["GET"], authorizer=authorizer)
@operation(
    "A support conversation",
    description="With its messages, or only those after message `after` (for polling).",
    tags=TAGS,
    query=ReadQuery,
    responses={200: ConversationBody},
    path_params=CONVERSATION_PATH,
)
def get_conversation(conversation_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    params = ReadQuery.model_validate(request.query_params or {})
    caller = _caller(principal(request))
    conversation, messages = support.get_conversation(conversation_id, caller, after=params.after)
    links = _photo_links(caller, messages)
    return models.dump(ConversationBody.of(conversation, messages, links))


@blueprint.route(
    "/support/conversations/{conversation_id}/messages", methods=["POST"], authorizer=authorizer
)
@operation(
    "Write in a support conversation",
    description=(
        "By its customer or by support/ops. A customer message reopens a waiting or resolved "
        "conversation; a support reply makes it waiting_on_customer. 409 conversation_closed "
        "on a closed one. Photos must be the writer's own uploads (400 unknown_upload); staff "
        "get short-lived links to a message's photos here and on GET."
    ),
    tags=TAGS,
    request=MessageIn,
    responses={201: PostedBody},
    path_params=CONVERSATION_PATH,
    errors=(404, 409, 429),
)
def post_message(conversation_id: str) -> Response:
    request = blueprint.current_request
    caller = _caller(principal(request))
    body = parse_body(request, MessageIn)
    posted = support.post_message(conversation_id, caller, body.body, body.photos)
    result = PostedBody(
        message=MessageBody.of(posted.message, _photo_links(caller, [posted.message])),
        replies=[MessageBody.of(m) for m in posted.replies],
        status=posted.conversation.status.value,
    )
    return _created(models.dump(result))


def _staff() -> support.Caller:
    return _caller(require_groups(blueprint.current_request, SUPPORT, OPS))


@blueprint.route(
    "/support/conversations/{conversation_id}/assign", methods=["POST"], authorizer=authorizer
)
@operation(
    "Assign a support conversation",
    description="Support and ops.",
    tags=TAGS,
    request=AssignIn,
    responses={200: ConversationBody},
    path_params=CONVERSATION_PATH,
)
def assign(conversation_id: str) -> dict[str, Any]:
    caller = _staff()
    body = parse_body(blueprint.current_request, AssignIn)
    return models.dump(ConversationBody.of(support.assign(conversation_id, caller, body.agent_id)))


@blueprint.route(
    "/support/conversations/{conversation_id}/resolve", methods=["POST"], authorizer=authorizer
)
@operation(
    "Resolve a support conversation",
    description="Support and ops. It closes by itself 7 days later unless the customer writes.",
    tags=TAGS,
    responses={200: ConversationBody},
    path_params=CONVERSATION_PATH,
)
def resolve(conversation_id: str) -> dict[str, Any]:
    caller = _staff()
    return models.dump(ConversationBody.of(support.resolve(conversation_id, caller)))


@blueprint.route(
    "/support/conversations/{conversation_id}/rating", methods=["POST"], authorizer=authorizer
)
@operation(
    "Rate a support conversation",
    description="Its customer, once, after it is resolved.",
    tags=TAGS,
    request=RatingIn,
    responses={200: ConversationBody},
    path_params=CONVERSATION_PATH,
    errors=(404, 409),
)
def rate(conversation_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = _caller(require_groups(request, CUSTOMERS))
    body = parse_body(request, RatingIn)
    rated = support.rate(conversation_id, caller, body.score, body.comment)
    return models.dump(ConversationBody.of(rated))


@blueprint.route("/support/canned-replies", methods=["GET"], authorizer=authorizer)
@operation(
    "Canned replies",
    description="Support and ops.",
    tags=TAGS,
    responses={200: CannedList},
)
def canned_replies() -> dict[str, Any]:
    _staff()
    return models.dump(CannedList(items=[CannedBody.of(r) for r in support.canned_replies()]))


@blueprint.route("/support/canned-replies/{key}", methods=["PUT"], authorizer=authorizer)
@operation(
    "Save a canned reply",
    description="Support and ops; both languages are required.",
    tags=TAGS,
    request=CannedIn,
    responses={200: CannedBody},
    path_params={"key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}},
)
def put_canned_reply(key: str) -> dict[str, Any]:
    caller = _staff()
    body = parse_body(blueprint.current_request, CannedIn)
    reply = support.put_canned_reply(key, {"zh-CN": body.zh_cn, "en": body.en}, caller)
    return models.dump(CannedBody.of(reply))


@blueprint.route("/support/socket-tickets", methods=["POST"], authorizer=authorizer)
@operation(
    "A ticket for the live support WebSocket",
    description=(
        "Browsers cannot send a bearer token on a WebSocket: connect to url?ticket=<ticket> "
        "instead. The ticket works once, within expires_in seconds."
    ),
    tags=TAGS,
    responses={201: TicketBody},
)
def socket_ticket() -> Response:
    caller = _caller(principal(blueprint.current_request))
    return _created(support.issue_socket_ticket(caller))
