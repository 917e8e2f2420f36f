"""Review rules and the rating arithmetic, without AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.reviews import (
    EditWindowClosed,
    Rating,
    RatingChange,
    Review,
    ReviewContent,
    ReviewStatus,
    average_of,
    review_id_for,
)

AT = datetime(2026, 5, 1, tzinfo=UTC)


def a_review(stars: int = 4, status: ReviewStatus = ReviewStatus.PUBLISHED) -> Review:
    return Review(
        review_id=review_id_for("o-1", "MUG"),
        sku="MUG",
        order_id="o-1",
        customer_id="alice",
        content=ReviewContent.of(rating=stars, title=None, body="A fine mug indeed."),
        status=status,
        helpful=0,
        created_at=AT,
        updated_at=AT,
    )


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(0, 0, None), (5, 1, 5.0), (9, 2, 4.5), (13, 3, 4.3), (14, 3, 4.7), (7, 4, 1.8)],
)
def test_the_average_is_rounded_half_up_to_one_decimal(total, count, expected) -> None:
    assert average_of(total, count) == expected


@settings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=200))
def test_the_rating_is_exactly_what_its_reviews_say(stars: list[int]) -> None:
    rating = Rating()
    for value in stars:
        rating = rating.applied(RatingChange().with_(value))
    assert rating.count == len(stars)
    assert rating.stars_total == sum(stars)
    assert abs(rating.average - sum(stars) / len(stars)) <= 0.05 + 1e-9


def test_editing_the_stars_moves_one_review_between_buckets() -> None:
    before = a_review(5)
    after = before.edited(ReviewContent.of(rating=2, title=None, body="Chipped on day two."), AT)
    assert after.rating_change(before).nonzero == {2: 1, 5: -1}


def test_hiding_and_publishing_take_the_review_out_and_back() -> None:
    published = a_review(3)
    hidden = published.hidden("spam", AT)
    assert hidden.rating_change(published).nonzero == {3: -1}
    assert hidden.published(AT).rating_change(hidden).nonzero == {3: 1}
    assert not hidden.edited(
        ReviewContent.of(rating=1, title=None, body="Changed my mind."), AT
    ).rating_change(hidden)


def test_edits_close_thirty_days_after_writing() -> None:
    review = a_review()
    review.edited(review.content, AT + timedelta(days=30))
    with pytest.raises(EditWindowClosed):
        review.edited(review.content, AT + timedelta(days=30, seconds=1))


@pytest.mark.parametrize(
    "fields",
    [
        {"rating": 0, "body": "long enough body"},
        {"rating": True, "body": "long enough body"},
        {"rating": 3, "body": "   short   "},
        {"rating": 3, "body": "long enough\x07 body"},
        {"rating": 3, "body": "long enough body", "title": "t" * 101},
    ],
)
def test_content_outside_the_rules_is_refused(fields) -> None:
    with pytest.raises(InvalidInput):
        ReviewContent.of(title=fields.pop("title", None), **fields)


def test_one_review_id_per_order_line() -> None:
    assert review_id_for("o-1", "MUG") == review_id_for("o-1", "MUG")
    assert review_id_for("o-1", "MUG") != review_id_for("o-1", "TEA")
    assert review_id_for("o-1", "MUG") != review_id_for("o-2", "MUG")
