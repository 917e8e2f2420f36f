"""Feedback analytics over moto: review events counted once, and the nightly tables
``feedback/ratings_by_product`` and ``feedback/complaint_terms`` agree with the reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from test_orders_api import items_with_prefix
from test_reviews_api import an_order, world  # noqa: F401 - the fixture is used by name

from chalicelib.domain.report_schemas import check_table
from chalicelib.domain.reviews import ReviewContent
from chalicelib.services import analytics
from chalicelib.services import reviews as review_service
from chalicelib.store import outbox

if TYPE_CHECKING:
    from conftest import Api

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai
DAY = NOW.astimezone(SHANGHAI).date()


def write(order_id: str, customer: str, stars: int, body: str, at: datetime) -> str:
    an_order(order_id, customer)
    content = ReviewContent.of(rating=stars, title=None, body=body)
    return review_service.write_review(
        customer, "MUG", order_id=order_id, content=content, now=at
    ).review_id


def count_events() -> list[analytics.Outcome]:
    outcomes = []
    for item in items_with_prefix(outbox.OUTBOX_PREFIX):
        event = outbox.event_from_item(item)
        if event.type.startswith("review.") and event.type != "review.replied":
            parsed = analytics.AnalyticsEvent(
                event.event_id, event.type, event.occurred_at, event.payload
            )
            outcomes.append(analytics.record_event(parsed))
    return outcomes


def table(day_reports: Any, name: str) -> list[dict[str, Any]]:
    found = day_reports.table(name)
    check_table(found)
    return [dict(row) for row in found.rows]


def test_ratings_and_complaint_terms_of_the_day(world: Api) -> None:  # noqa: F811
    old = write("o-old", "dan", 5, "Lovely mug, love it.", NOW - timedelta(days=40))
    write("o-1", "alice", 5, "Great mug, keeps tea hot.", NOW)
    first = write("o-2", "bob", 1, "The lid leaks and the handle broke.", NOW)
    second = write("o-3", "carol", 2, "Lid leaks everywhere. 杯盖漏水", NOW)
    hidden = write("o-4", "erin", 1, "Terrible terrible spam spam.", NOW)
    review_service.hide_review(hidden, "spam", now=NOW)
    assert old

    outcomes = count_events()
    again = count_events()

    assert set(outcomes) == {analytics.Outcome.RECORDED}
    assert set(again) == {analytics.Outcome.DUPLICATE}
    reports = analytics.build_daily_reports(DAY, now=NOW + timedelta(days=1))

    [mug] = table(reports, "feedback/ratings_by_product")
    assert mug["sku"] == "MUG" and mug["name_en"] == "Mug"
    # At the day's end: 5, 5, 1, 2 (the hidden one is out) -> 13 / 4 = 3.25 -> 3.3.
    assert (mug["reviews"], mug["average"], mug["low_rating_share"]) == (4, 3.3, 0.5)
    assert (mug["reviews_30d_ago"], mug["average_30d_ago"]) == (1, 5.0)
    assert mug["average_change_30d"] == -1.7

    terms = {row["term"]: row for row in table(reports, "feedback/complaint_terms")}
    assert terms["lid"]["reviews"] == 2 and terms["leaks"]["reviews"] == 2
    assert set(terms["lid"]["example_review_ids"].split()) == {first, second}
    assert terms["漏水"]["reviews"] == 1
    assert "the" not in terms and "and" not in terms
    assert terms["lid"]["rank"] < terms["漏水"]["rank"]


def test_a_review_written_after_the_day_is_not_in_its_report(world: Api) -> None:  # noqa: F811
    write("o-1", "alice", 4, "Nice and sturdy mug.", NOW)
    write("o-2", "bob", 2, "Handle broke quickly.", NOW + timedelta(days=1))
    count_events()

    reports = analytics.build_daily_reports(DAY, now=NOW + timedelta(days=2))

    [mug] = table(reports, "feedback/ratings_by_product")
    assert (mug["reviews"], mug["average"]) == (1, 4.0)
    assert table(reports, "feedback/complaint_terms") == []


@pytest.mark.parametrize("rating", [0, "5", None])
def test_an_unreadable_review_event_is_refused(rating: Any, world: Api) -> None:  # noqa: F811
    event = analytics.AnalyticsEvent(
        "evt_x", "review.created", NOW, {"sku": "MUG", "review_id": "r", "rating": rating}
    )
    with pytest.raises(analytics.MalformedEvent):
        analytics.record_event(event)
