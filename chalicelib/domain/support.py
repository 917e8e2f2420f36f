"""Support conversations: statuses, message rules, the first-response SLA, ratings.

A conversation is ``open`` while it waits for support, ``waiting_on_customer`` after a
support reply, ``resolved`` when support (or the customer's silence) settles it, and
``closed`` seven days after it was resolved. A customer message moves
``waiting_on_customer`` or ``resolved`` back to ``open``; nothing moves a ``closed`` one.

A conversation handed to support (the assistant did not recognise the question, or the
customer asked for a person) gets ``first_response_due_at``; until the first human reply
it waits for a person, and past that moment it is overdue. The due time is kept after the
reply, so reports can tell whether it was met.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.domain.errors import Conflict, InvalidInput, InvalidTransition, TooManyRequests

MAX_BODY_CHARS = 2000
MAX_SUBJECT_CHARS = 200
MAX_COMMENT_CHARS = 2000
MAX_PHOTOS = 6
MAX_OPEN_CONVERSATIONS = 5
MESSAGES_PER_MINUTE = 30
DEFAULT_FIRST_RESPONSE = timedelta(minutes=15)
AUTO_CLOSE_AFTER = timedelta(days=7)
CANNED_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LOCALES = ("zh-CN", "en")
# Control characters other than tab and newlines have no place in a chat message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ConversationStatus(StrEnum):
    OPEN = "open"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Author(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    ASSISTANT = "assistant"


_C = ConversationStatus
TRANSITIONS: dict[ConversationStatus, frozenset[ConversationStatus]] = {
    _C.OPEN: frozenset({_C.WAITING_ON_CUSTOMER, _C.RESOLVED}),
    _C.WAITING_ON_CUSTOMER: frozenset({_C.OPEN, _C.RESOLVED}),
    _C.RESOLVED: frozenset({_C.OPEN, _C.CLOSED}),
    _C.CLOSED: frozenset(),
}
# Statuses that count against a customer's limit of open conversations.
ACTIVE_STATUSES = frozenset({_C.OPEN, _C.WAITING_ON_CUSTOMER})


class ConversationClosed(Conflict):
    code = "conversation_closed"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            "This conversation is closed; start a new one.", {"conversation_id": conversation_id}
        )


class AlreadyRated(Conflict):
    code = "already_rated"


class TooManyOpenConversations(TooManyRequests):
    code = "too_many_open_conversations"

    def __init__(self) -> None:
        super().__init__(
            f"At most {MAX_OPEN_CONVERSATIONS} conversations may be open at once; "
            "wait for one to be resolved.",
            {"limit": MAX_OPEN_CONVERSATIONS},
            retry_after_seconds=60,
        )


def clean_text(value: str, *, field: str, limit: int) -> str:
    """``value`` as stored and shown (plain text): 1..limit characters after trimming."""
    text = _CONTROL.sub("", value).strip() if isinstance(value, str) else ""
    if not 1 <= len(text) <= limit:
        raise InvalidInput(
            f"{field} must be 1 to {limit} characters of text.",
            [{"field": field, "message": f"1-{limit} characters"}],
        )
    return text


def clean_body(value: str) -> str:
    return clean_text(value, field="body", limit=MAX_BODY_CHARS)


def clean_photos(upload_ids: Sequence[str]) -> tuple[str, ...]:
    """A message's photos (upload ids): at most ``MAX_PHOTOS``, none twice. Whose they are
    is the upload service's question."""
    photos = tuple(upload_ids)
    if len(photos) > MAX_PHOTOS or len(set(photos)) != len(photos):
        raise InvalidInput(
            f"At most {MAX_PHOTOS} different photos.",
            [{"field": "photos", "message": f"at most {MAX_PHOTOS}, no repeats"}],
        )
    return photos


def rate_window(at: datetime) -> tuple[str, int]:
    """The one-minute window ``at`` falls in (its key) and seconds until it ends."""
    start = at.replace(second=0, microsecond=0)
    remaining = (start + timedelta(minutes=1) - at).total_seconds()
    return start.strftime("%Y%m%dT%H%M"), max(1, int(remaining + 0.999))


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    conversation_id: str
    author: Author
    author_id: str
    body: str
    created_at: datetime
    photos: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "author": self.author.value,
            "author_id": self.author_id,
            "body": self.body,
            "photos": list(self.photos),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    customer_id: str
    subject: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    order_id: str | None = None
    locale: str = "en"
    intent: str | None = None
    handed_over: bool = False
    first_response_due_at: datetime | None = None
    first_human_response_at: datetime | None = None
    assigned_to: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = None
    rating_comment: str | None = None
    version: int = 1

    @classmethod
    def start(
        cls,
        *,
        conversation_id: str,
        customer_id: str,
        subject: str,
        order_id: str | None,
        locale: str,
        at: datetime,
    ) -> Conversation:
        return cls(
            conversation_id=conversation_id,
            customer_id=customer_id,
            subject=clean_text(subject, field="subject", limit=MAX_SUBJECT_CHARS),
            status=_C.OPEN,
            created_at=at,
            updated_at=at,
            order_id=order_id,
            locale=locale,
        )

    # -- questions --------------------------------------------------------------------------

    def is_owned_by(self, user_id: str) -> bool:
        return self.customer_id == user_id

    @property
    def waiting_for_first_human(self) -> bool:
        return self.status is _C.OPEN and self.handed_over and self.first_human_response_at is None

    def is_overdue(self, now: datetime) -> bool:
        due = self.first_response_due_at
        return self.waiting_for_first_human and due is not None and now >= due

    def missed_first_response(self, now: datetime) -> bool:
        """Whether a person answered (or the conversation ended) only after it was due."""
        due = self.first_response_due_at
        if due is None:
            return False
        settled = self.first_human_response_at or self.resolved_at or now
        return settled > due

    @property
    def assistant_may_answer(self) -> bool:
        """The assistant answers until a person has replied or the customer asked for one."""
        return self.first_human_response_at is None and not self.handed_over

    @property
    def resolved_by_assistant(self) -> bool:
        return self.resolved_at is not None and self.first_human_response_at is None

    @property
    def close_due_at(self) -> datetime | None:
        if self.status is _C.RESOLVED and self.resolved_at is not None:
            return self.resolved_at + AUTO_CLOSE_AFTER
        return None

    # -- changes ----------------------------------------------------------------------------

    def _moved(self, to: ConversationStatus, at: datetime, **changes: object) -> Conversation:
        if to is not self.status and to not in TRANSITIONS[self.status]:
            if self.status is _C.CLOSED:
                raise ConversationClosed(self.conversation_id)
            raise InvalidTransition.between(self.status, to)
        return replace(self, status=to, updated_at=at, version=self.version + 1, **changes)  # type: ignore[arg-type]

    def customer_wrote(self, at: datetime) -> Conversation:
        if self.status is _C.CLOSED:
            raise ConversationClosed(self.conversation_id)
        return self._moved(_C.OPEN, at, resolved_at=None)

    def support_wrote(self, agent_id: str, at: datetime) -> Conversation:
        if self.status is _C.CLOSED:
            raise ConversationClosed(self.conversation_id)
        first = self.first_human_response_at or at
        return self._moved(
            _C.WAITING_ON_CUSTOMER,
            at,
            first_human_response_at=first,
            assigned_to=self.assigned_to or agent_id,
            resolved_at=None,
        )

    def hand_over(self, intent: str, at: datetime, sla: timedelta) -> Conversation:
        """Give the conversation to support; the first-response clock starts once."""
        due = self.first_response_due_at
        if self.first_human_response_at is None and due is None:
            due = at + sla
        return replace(
            self,
            handed_over=True,
            intent=intent,
            first_response_due_at=due,
            updated_at=at,
            version=self.version + 1,
        )

    def noted_intent(self, intent: str, at: datetime) -> Conversation:
        return replace(self, intent=intent, updated_at=at, version=self.version + 1)

    def assign(self, agent_id: str, at: datetime) -> Conversation:
        if self.status is _C.CLOSED:
            raise ConversationClosed(self.conversation_id)
        return replace(self, assigned_to=agent_id, updated_at=at, version=self.version + 1)

    def resolve(self, at: datetime) -> Conversation:
        if self.status is _C.RESOLVED:
            return self
        return self._moved(_C.RESOLVED, at, resolved_at=at)

    def close(self, at: datetime) -> Conversation:
        due = self.close_due_at
        if due is None or at < due:
            raise InvalidTransition.between(self.status, _C.CLOSED, "not resolved for 7 days")
        return self._moved(_C.CLOSED, at, closed_at=at)

    def rate(self, score: int, comment: str | None, at: datetime) -> Conversation:
        if self.status not in (_C.RESOLVED, _C.CLOSED):
            raise InvalidTransition(
                "A conversation can be rated once it is resolved.",
                {"from": self.status.value, "to": "rated"},
            )
        if self.rating is not None:
            raise AlreadyRated("This conversation was already rated.")
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidInput("score must be 1 to 5.", [{"field": "score", "message": "1-5"}])
        text = clean_text(comment, field="comment", limit=MAX_COMMENT_CHARS) if comment else None
        return replace(
            self, rating=score, rating_comment=text, updated_at=at, version=self.version + 1
        )


@dataclass(frozen=True, slots=True)
class CannedReply:
    key: str
    texts: dict[str, str]
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, key: str, texts: dict[str, str], *, at: datetime, by: str) -> CannedReply:
        if not CANNED_KEY.fullmatch(key or ""):
            raise InvalidInput(
                "key must be 1-64 lower-case letters, digits, '-' or '_'.",
                [{"field": "key", "message": "invalid key"}],
            )
        cleaned = {
            locale: clean_text(texts.get(locale, ""), field=locale, limit=MAX_BODY_CHARS)
            for locale in LOCALES
        }
        return cls(key=key, texts=cleaned, updated_at=at, updated_by=by)


@dataclass(frozen=True, slots=True)
class SupportSummary:
    """One business day's conversations, as the nightly ``support/summary`` reports them."""

    conversations: int
    handed_to_support: int
    resolved: int
    resolved_by_assistant: int
    median_first_human_response_seconds: int | None
    overdue: int
    ratings: int
    average_satisfaction: float | None

    @classmethod
    def of(cls, conversations: list[Conversation], now: datetime) -> SupportSummary:
        resolved = [c for c in conversations if c.resolved_at is not None or c.status is _C.CLOSED]
        waits = sorted(
            (c.first_human_response_at - c.created_at).total_seconds()
            for c in conversations
            if c.first_human_response_at is not None
        )
        scores = [c.rating for c in conversations if c.rating is not None]
        return cls(
            conversations=len(conversations),
            handed_to_support=sum(1 for c in conversations if c.handed_over),
            resolved=len(resolved),
            resolved_by_assistant=sum(1 for c in resolved if c.first_human_response_at is None),
            median_first_human_response_seconds=_median_seconds(waits),
            overdue=sum(1 for c in conversations if c.missed_first_response(now)),
            ratings=len(scores),
            average_satisfaction=round(sum(scores) / len(scores), 2) if scores else None,
        )

    @property
    def resolved_by_assistant_share(self) -> float | None:
        if not self.resolved:
            return None
        return round(self.resolved_by_assistant / self.resolved, 4)

    def row(self) -> dict[str, object]:
        return {
            "conversations": self.conversations,
            "handed_to_support": self.handed_to_support,
            "resolved": self.resolved,
            "resolved_by_assistant": self.resolved_by_assistant,
            "resolved_by_assistant_share": self.resolved_by_assistant_share,
            "median_first_human_response_seconds": self.median_first_human_response_seconds,
            "overdue": self.overdue,
            "ratings": self.ratings,
            "average_satisfaction": self.average_satisfaction,
        }


def _median_seconds(values: list[float]) -> int | None:
    if not values:
        return None
    middle = len(values) // 2
    value = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return round(value)
