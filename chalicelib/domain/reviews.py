"""Product reviews by verified buyers, and the product rating they add up to.

Pure Python. A review may be written only for a *delivered* line of that SKU in the
reviewer's own order (``verify_purchase``), once per (order, SKU): its id is derived from
the pair (``review_id_for``), so the store's "must not exist yet" condition is the
one-review rule. Text is kept as text: surrounding spaces trimmed, control characters
refused, nothing turned into markup or links.

``Rating`` keeps only integers: how many reviews gave each number of stars. The count, the
total of stars and the average follow from them, so adding and removing a review is exact
and the store can apply the same change as atomic counter increments
(``Rating.change``) in the transaction that moves the review.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from chalicelib.domain.orders import Order, ShipmentStatus

STARS = (1, 2, 3, 4, 5)
MIN_BODY_CHARS = 10
MAX_BODY_CHARS = 2000
MAX_TITLE_CHARS = 100
MAX_REPLY_CHARS = 2000
MAX_REASON_CHARS = 500
MAX_PHOTOS = 6
DAILY_REVIEW_LIMIT = 5
EDIT_WINDOW = timedelta(days=30)
# Complaints: the reviews the feedback analytics look into.
LOW_RATINGS = frozenset({1, 2})

# Control characters other than tab and newline have no place in text people read.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ReviewSort(StrEnum):
    """The orders a product's reviews can be listed in."""

    RECENT = "recent"
    RATING_HIGH = "rating_high"
    RATING_LOW = "rating_low"
    HELPFUL = "helpful"


class ReviewStatus(StrEnum):
    PUBLISHED = "published"
    HIDDEN = "hidden"


# --- errors ---------------------------------------------------------------------------------


class NotAVerifiedPurchase(Forbidden):
    """No delivered line of that SKU in an order of the caller's (the same for any reason)."""

    code = "not_a_verified_purchase"

    def __init__(self) -> None:
        super().__init__(
            "Only a customer whose order delivered this product can review it for that order."
        )


class AlreadyReviewed(Conflict):
    code = "already_reviewed"

    def __init__(self, order_id: str, sku: str) -> None:
        super().__init__(
            f"{sku} of order {order_id} has been reviewed already; edit that review instead.",
            {"order_id": order_id, "sku": sku, "review_id": review_id_for(order_id, sku)},
        )


class EditWindowClosed(Conflict):
    code = "edit_window_closed"

    def __init__(self, review_id: str, closed_at: datetime) -> None:
        super().__init__(
            f"Review {review_id} can no longer be edited (only within "
            f"{EDIT_WINDOW.days} days of writing it).",
            {"review_id": review_id, "closed_at": closed_at.isoformat()},
        )


class OwnReview(Forbidden):
    code = "own_review"

    def __init__(self) -> None:
        super().__init__("You cannot vote for your own review.")


class ReviewNotFound(NotFound):
    def __init__(self, review_id: str) -> None:
        super().__init__(f"Review {review_id} does not exist.", {"review_id": review_id})


class DailyReviewLimit(TooManyRequests):
    """The customer wrote ``DAILY_REVIEW_LIMIT`` reviews today (HTTP 429)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"At most {DAILY_REVIEW_LIMIT} reviews a day; try again tomorrow.",
            {"limit": DAILY_REVIEW_LIMIT},
            retry_after_seconds=retry_after_seconds,
        )


# --- identity and eligibility ---------------------------------------------------------------


def review_id_for(order_id: str, sku: str) -> str:
    """The one id a review of ``sku`` in ``order_id`` can have."""
    return "rev_" + hashlib.sha256(f"{order_id}\n{sku}".encode()).hexdigest()[:24]


def delivered_skus(order: Order) -> frozenset[str]:
    """SKUs of the order that are in a delivered parcel."""
    return frozenset(
        line.sku
        for shipment in order.shipments
        if shipment.status is ShipmentStatus.DELIVERED
        for line in shipment.lines
    )


def verify_purchase(order: Order | None, customer_id: str, sku: str) -> Order:
    """The order, if it is ``customer_id``'s and delivered ``sku``; else one answer for all."""
    if order is None or not order.is_owned_by(customer_id) or sku not in delivered_skus(order):
        raise NotAVerifiedPurchase()
    return order


# --- text -----------------------------------------------------------------------------------


def clean_text(value: str, field_name: str, *, min_chars: int, max_chars: int) -> str:
    """``value`` trimmed, if it is plain text of ``min_chars``-``max_chars`` characters."""
    text = value.strip()
    if _CONTROL.search(text):
        raise InvalidInput(
            f"The {field_name} contains control characters.",
            [{"field": field_name, "message": "control characters are not allowed"}],
        )
    if not min_chars <= len(text) <= max_chars:
        raise InvalidInput(
            f"The {field_name} must be {min_chars} to {max_chars} characters.",
            [{"field": field_name, "message": f"{min_chars}-{max_chars} characters"}],
        )
    return text


@dataclass(frozen=True, slots=True)
class ReviewContent:
    """What the author writes (and may change within the edit window)."""

    rating: int
    title: str | None
    body: str
    photos: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, *, rating: int, title: str | None, body: str, photos: Sequence[str] = ()
    ) -> ReviewContent:
        if isinstance(rating, bool) or rating not in STARS:
            raise InvalidInput(
                "The rating is 1 to 5 stars.", [{"field": "rating", "message": "1-5"}]
            )
        clean_title = None
        if title is not None and title.strip():
            clean_title = clean_text(title, "title", min_chars=1, max_chars=MAX_TITLE_CHARS)
        clean_body = clean_text(body, "body", min_chars=MIN_BODY_CHARS, max_chars=MAX_BODY_CHARS)
        if len(photos) > MAX_PHOTOS or len(set(photos)) != len(photos):
            raise InvalidInput(
                f"At most {MAX_PHOTOS} different photos.",
                [{"field": "photos", "message": f"at most {MAX_PHOTOS}, no repeats"}],
            )
        return cls(rating=rating, title=clean_title, body=clean_body, photos=tuple(photos))


@dataclass(frozen=True, slots=True)
class Reply:
    """The merchant's one answer under a review (edited in place)."""

    body: str
    author_id: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# --- the review -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    sku: str
    order_id: str
    customer_id: str
    content: ReviewContent
    status: ReviewStatus
    helpful: int
    created_at: datetime
    updated_at: datetime
    reply: Reply | None = None
    hidden_reason: str | None = None
    version: int = 1

    @classmethod
    def write(
        cls,
        *,
        order: Order | None,
        customer_id: str,
        sku: str,
        content: ReviewContent,
        at: datetime,
    ) -> Review:
        """A new published review, for a verified purchase only."""
        verified = verify_purchase(order, customer_id, sku)
        return cls(
            review_id=review_id_for(verified.order_id, sku),
            sku=sku,
            order_id=verified.order_id,
            customer_id=customer_id,
            content=content,
            status=ReviewStatus.PUBLISHED,
            helpful=0,
            created_at=at,
            updated_at=at,
        )

    @property
    def rating(self) -> int:
        return self.content.rating

    @property
    def is_published(self) -> bool:
        return self.status is ReviewStatus.PUBLISHED

    @property
    def edit_window_closes_at(self) -> datetime:
        return self.created_at + EDIT_WINDOW

    def is_by(self, customer_id: str) -> bool:
        return self.customer_id == customer_id

    def edited(self, content: ReviewContent, at: datetime) -> Review:
        if at > self.edit_window_closes_at:
            raise EditWindowClosed(self.review_id, self.edit_window_closes_at)
        return self._changed(at, content=content)

    def hidden(self, reason: str, at: datetime) -> Review:
        return self._changed(at, status=ReviewStatus.HIDDEN, hidden_reason=reason)

    def published(self, at: datetime) -> Review:
        return self._changed(at, status=ReviewStatus.PUBLISHED, hidden_reason=None)

    def replied(self, body: str, author_id: str, at: datetime) -> Review:
        created = self.reply.created_at if self.reply else at
        reply = Reply(body=body, author_id=author_id, created_at=created, updated_at=at)
        # A reply is the merchant's, not the author's: the review's own time stays.
        return replace(self, reply=reply, version=self.version + 1)

    def with_vote(self) -> Review:
        return replace(self, helpful=self.helpful + 1, version=self.version + 1)

    def _changed(self, at: datetime, **changes: Any) -> Review:
        return replace(self, **changes, updated_at=at, version=self.version + 1)

    def rating_change(self, before: Review | None) -> RatingChange:
        """What moving from ``before`` (None: nothing) to this review does to the rating."""
        change = RatingChange()
        if before is not None and before.is_published:
            change = change.without(before.rating)
        if self.is_published:
            change = change.with_(self.rating)
        return change

    def as_dict(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "sku": self.sku,
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "rating": self.rating,
            "title": self.content.title,
            "body": self.content.body,
            "photos": list(self.content.photos),
            "status": self.status.value,
            "helpful": self.helpful,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "reply": self.reply.as_dict() if self.reply else None,
        }


# --- the product rating ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatingChange:
    """How many reviews each number of stars gains (or loses): counter increments."""

    buckets: Mapping[int, int] = field(default_factory=dict)

    def with_(self, stars: int) -> RatingChange:
        return RatingChange({**self.buckets, stars: self.buckets.get(stars, 0) + 1})

    def without(self, stars: int) -> RatingChange:
        return RatingChange({**self.buckets, stars: self.buckets.get(stars, 0) - 1})

    @property
    def nonzero(self) -> dict[int, int]:
        return {stars: n for stars, n in sorted(self.buckets.items()) if n}

    def __bool__(self) -> bool:
        return bool(self.nonzero)


@dataclass(frozen=True, slots=True)
class Rating:
    """How many published reviews gave each number of stars."""

    histogram: Mapping[int, int] = field(default_factory=lambda: dict.fromkeys(STARS, 0))

    @property
    def count(self) -> int:
        return sum(self.histogram.get(stars, 0) for stars in STARS)

    @property
    def stars_total(self) -> int:
        return sum(stars * self.histogram.get(stars, 0) for stars in STARS)

    @property
    def average(self) -> float | None:
        """The mean, rounded half up to one decimal with integer maths; None for no reviews."""
        return average_of(self.stars_total, self.count)

    def applied(self, change: RatingChange) -> Rating:
        return Rating({s: self.histogram.get(s, 0) + change.buckets.get(s, 0) for s in STARS})

    def as_dict(self) -> dict[str, Any]:
        return {
            "average": self.average,
            "count": self.count,
            "histogram": {str(s): self.histogram.get(s, 0) for s in STARS},
        }


def average_of(stars_total: int, count: int) -> float | None:
    """``stars_total / count`` rounded half up to one decimal (None when ``count`` is 0)."""
    if count <= 0:
        return None
    tenths = (stars_total * 20 + count) // (2 * count)
    return tenths / 10
