"""Review use cases: write, edit, list, moderate, reply, vote; and the product ratings.

Each change is one transaction: the review (conditional on its version, or on not existing
yet), its moderation entry, the product rating's counter increments and the outbox event.
So the rating always equals what the published reviews say, under any concurrency, without
ever being recomputed. A transaction another one collided with is planned again from fresh
reads; one that keeps colliding answers 503 ``busy``.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.analytics import business_zone
from chalicelib.domain.errors import Busy, InvalidInput
from chalicelib.domain.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chalicelib.domain.reviews import (
    DAILY_REVIEW_LIMIT,
    MAX_REASON_CHARS,
    MAX_REPLY_CHARS,
    AlreadyReviewed,
    DailyReviewLimit,
    OwnReview,
    Rating,
    Review,
    ReviewContent,
    ReviewNotFound,
    ReviewSort,
    ReviewStatus,
    clean_text,
)
from chalicelib.services import catalogue
from chalicelib.services import uploads as upload_service
from chalicelib.settings import get_settings
from chalicelib.store import orders as order_store
from chalicelib.store import outbox, tables
from chalicelib.store import reviews as store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ATTEMPTS = 8

REVIEW_CREATED = "review.created"
REVIEW_EDITED = "review.edited"
REVIEW_HIDDEN = "review.hidden"
REVIEW_PUBLISHED = "review.published"
REVIEW_REPLIED = "review.replied"


def _now() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


# Throttling is contention too: busy, not refused.
_THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


class _Retry(Exception):
    """The plan lost a race (a version moved, a transaction collided): plan again."""


def _commit(uow: UnitOfWork, refused: Callable[[TransactionCancelled], None]) -> None:
    """Commit; ``refused`` turns a failed condition into the caller's answer (or a retry)."""
    try:
        uow.commit()
    except TransactionCancelled as cancelled:
        if cancelled.condition_failed:
            refused(cancelled)
            raise _Retry() from None  # a version moved under us: read again
        if cancelled.conflicted:
            raise _Retry() from None
        raise
    except Exception as exc:
        if tables.error_code(exc) in _THROTTLED:
            raise _Retry() from None
        raise


def _attempts(what: str, plan: Callable[[], Review | None]) -> Review | None:
    for attempt in range(ATTEMPTS):
        try:
            return plan()
        except _Retry:
            _pause(attempt)
    raise Busy(f"{what} is being changed by many people at once; try again.")


def _event_payload(review: Review, before: Review | None) -> dict[str, object]:
    return {
        "review_id": review.review_id,
        "sku": review.sku,
        "order_id": review.order_id,
        "customer_id": review.customer_id,
        "rating": review.rating,
        "counted": review.is_published,
        "previous_rating": before.rating if before else None,
        "was_counted": bool(before and before.is_published),
        "text": " ".join(filter(None, (review.content.title, review.content.body))),
    }


# --- the author -------------------------------------------------------------------------------


def _business_day(now: datetime) -> tuple[str, int]:
    """Today's business day, and the seconds until the next one starts."""
    local = now.astimezone(business_zone(get_settings().business_time_zone))
    next_day = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date().isoformat(), max(1, math.ceil((next_day - local).total_seconds()))


def write_review(
    customer_id: str,
    sku: str,
    *,
    order_id: str,
    content: ReviewContent,
    now: datetime | None = None,
) -> Review:
    """A published review of a delivered line of the customer's own order."""
    moment = now or _now()
    upload_service.require_own_uploads(customer_id, content.photos)
    day, retry_after = _business_day(moment)

    def refused(cancelled: TransactionCancelled) -> None:
        if store.failed_on(cancelled, "review"):
            raise AlreadyReviewed(order_id, sku)
        if store.failed_on(cancelled, "quota"):
            raise DailyReviewLimit(retry_after)

    def plan() -> Review:
        order = order_store.get_order(order_id, consistent=True)
        review = Review.write(
            order=order, customer_id=customer_id, sku=sku, content=content, at=moment
        )
        uow = UnitOfWork()
        store.add_new_review(uow, review)
        store.add_quota_use(uow, customer_id, day, limit=DAILY_REVIEW_LIMIT, at=moment)
        outbox.add_event(uow, REVIEW_CREATED, _event_payload(review, None), occurred_at=moment)
        _commit(uow, refused)
        return review

    review = _attempts(f"Reviews of {sku}", plan)
    assert review is not None
    return review


def _own_review(review_id: str, customer_id: str) -> Review:
    review = store.get_review(review_id, consistent=True)
    # Another customer's review is as unknown as a missing one.
    if review is None or not review.is_by(customer_id):
        raise ReviewNotFound(review_id)
    return review


def edit_review(
    customer_id: str,
    review_id: str,
    *,
    order_id: str,
    content: ReviewContent,
    now: datetime | None = None,
) -> Review:
    """The author's new words or stars, within the edit window; the rating follows."""
    moment = now or _now()
    upload_service.require_own_uploads(customer_id, content.photos)

    def plan() -> Review:
        before = _own_review(review_id, customer_id)
        if order_id != before.order_id:
            raise InvalidInput(
                "A review stays with the order it was written for.",
                [{"field": "order_id", "message": f"must be {before.order_id}"}],
            )
        if content == before.content:
            return before
        after = before.edited(content, moment)
        uow = UnitOfWork()
        store.add_review_change(uow, after, previous=before)
        outbox.add_event(uow, REVIEW_EDITED, _event_payload(after, before), occurred_at=moment)
        _commit(uow, lambda cancelled: None)
        return after

    review = _attempts(f"Review {review_id}", plan)
    assert review is not None
    return review


# --- reading ------------------------------------------------------------------------------------


def list_product_reviews(
    sku: str,
    *,
    sort: ReviewSort = ReviewSort.RECENT,
    rating: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Review]:
    """Published reviews of a product shoppers can see."""
    catalogue.get_product(sku)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    return store.product_reviews_page(sku, sort=sort, rating=rating, limit=limit, cursor=cursor)


def get_review(review_id: str) -> Review:
    review = store.get_review(review_id)
    if review is None:
        raise ReviewNotFound(review_id)
    return review


def rating_of(sku: str) -> Rating:
    return store.get_rating(sku)


def ratings_of(skus: Iterable[str]) -> dict[str, Rating]:
    return store.get_ratings(skus)


# --- moderation, replies and votes ------------------------------------------------------------


def moderation_queue(
    status: ReviewStatus,
    *,
    sku: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Review]:
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    return store.moderation_page(status, sku=sku, limit=limit, cursor=cursor)


def _moderate(review_id: str, to: ReviewStatus, reason: str | None, now: datetime | None) -> Review:
    moment = now or _now()
    event = REVIEW_HIDDEN if to is ReviewStatus.HIDDEN else REVIEW_PUBLISHED

    def plan() -> Review:
        before = store.get_review(review_id, consistent=True)
        if before is None:
            raise ReviewNotFound(review_id)
        if before.status is to:
            return before  # asked twice: nothing moves, the rating least of all
        after = (
            before.hidden(reason or "", moment)
            if to is ReviewStatus.HIDDEN
            else before.published(moment)
        )
        uow = UnitOfWork()
        store.add_review_change(uow, after, previous=before)
        outbox.add_event(uow, event, _event_payload(after, before), occurred_at=moment)
        _commit(uow, lambda cancelled: None)
        return after

    review = _attempts(f"Review {review_id}", plan)
    assert review is not None
    return review


def hide_review(review_id: str, reason: str, *, now: datetime | None = None) -> Review:
    """Out of the product's listings and rating, in one transaction."""
    text = clean_text(reason, "reason", min_chars=1, max_chars=MAX_REASON_CHARS)
    return _moderate(review_id, ReviewStatus.HIDDEN, text, now)


def publish_review(review_id: str, *, now: datetime | None = None) -> Review:
    """Back into the listings and the rating."""
    return _moderate(review_id, ReviewStatus.PUBLISHED, None, now)


def reply_to_review(
    review_id: str, body: str, *, author_id: str, now: datetime | None = None
) -> Review:
    """The merchant's one reply (a second call edits it); the first one tells the author."""
    moment = now or _now()
    text = clean_text(body, "body", min_chars=1, max_chars=MAX_REPLY_CHARS)

    def plan() -> Review:
        before = store.get_review(review_id, consistent=True)
        if before is None:
            raise ReviewNotFound(review_id)
        if before.reply is not None and before.reply.body == text:
            return before
        after = before.replied(text, author_id, moment)
        uow = UnitOfWork()
        store.add_review_change(uow, after, previous=before)
        if before.reply is None:
            payload = {
                "review_id": after.review_id,
                "sku": after.sku,
                "order_id": after.order_id,
                "customer_id": after.customer_id,
            }
            outbox.add_event(uow, REVIEW_REPLIED, payload, occurred_at=moment)
        _commit(uow, lambda cancelled: None)
        return after

    review = _attempts(f"Review {review_id}", plan)
    assert review is not None
    return review


def vote_helpful(review_id: str, customer_id: str, *, now: datetime | None = None) -> int:
    """Count the customer's vote once; the review's helpful count either way."""
    moment = now or _now()
    counted: list[int] = []

    def refused(cancelled: TransactionCancelled) -> None:
        if store.failed_on(cancelled, "vote"):
            current = store.get_review(review_id, consistent=True)
            counted.append(current.helpful if current else 0)
            raise _Voted() from None

    def plan() -> Review | None:
        review = store.get_review(review_id, consistent=True)
        if review is None or not review.is_published:
            raise ReviewNotFound(review_id)
        if review.is_by(customer_id):
            raise OwnReview()
        if store.has_voted(review_id, customer_id):
            counted.append(review.helpful)
            return review
        after = review.with_vote()
        uow = UnitOfWork()
        store.add_vote(uow, review_id, customer_id, at=moment)
        store.add_review_change(uow, after, previous=review)
        _commit(uow, refused)
        counted.append(after.helpful)
        return after

    with contextlib.suppress(_Voted):
        _attempts(f"Review {review_id}", plan)
    return counted[-1]


class _Voted(Exception):
    """The customer's vote was already counted."""
