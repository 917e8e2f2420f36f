"""Feedback aggregates for the nightly reports, kept up to date from review events.

Item shapes (the only place that knows them):

    product day   pk=AN#FEEDBACK#<sku>        sk=DAY#<business day>
                  s1..s5: net change that day of published reviews with that many stars
    reviewed      pk=AN#FEEDBACK#SKUS         sk=<sku>    every product ever reviewed
    term          pk=AN#COMPLAINTS#<day>      sk=TERM#<term>
                  reviews (the day's new 1-2 star reviews using it), examples (a few ids)

Each event's updates commit with its analytics claim (``store.analytics.add_claim``), so a
redelivered event changes nothing. The nightly job Queries one product-day range per
reviewed product and one partition of the day's terms: never a Scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from chalicelib.domain.feedback import EXAMPLES_PER_TERM, TermCount
from chalicelib.domain.reviews import STARS, RatingChange
from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork

FEEDBACK_PREFIX = "AN#FEEDBACK#"
REVIEWED_PK = "AN#FEEDBACK#SKUS"
DAY_PREFIX = "DAY#"
COMPLAINTS_PREFIX = "AN#COMPLAINTS#"
TERM_PREFIX = "TERM#"


def _bucket(stars: int) -> str:
    return f"s{stars}"


def add_rating_change(uow: UnitOfWork, sku: str, day: date, change: RatingChange) -> None:
    """Add ``change`` to the product's counters for ``day``, and list the product."""
    buckets = change.nonzero
    if not buckets:
        return
    adds = ", ".join(f"#{_bucket(s)} :{_bucket(s)}" for s in buckets)
    uow.update(
        {tables.PK: {"S": FEEDBACK_PREFIX + sku}, tables.SK: {"S": DAY_PREFIX + day.isoformat()}},
        f"ADD {adds} SET entity = :entity",
        tag=("feedback_day", sku, day.isoformat()),
        names={f"#{_bucket(s)}": _bucket(s) for s in buckets},
        values={
            **{f":{_bucket(s)}": {"N": str(n)} for s, n in buckets.items()},
            ":entity": {"S": "feedback_day"},
        },
    )
    uow.put(
        tables.to_item(
            {tables.PK: REVIEWED_PK, tables.SK: sku, "entity": "feedback_product", "sku": sku}
        ),
        tag=("feedback_product", sku),
    )


def add_complaint_terms(uow: UnitOfWork, day: date, terms: Iterable[str], review_id: str) -> None:
    """Count one more low-rated review for each term; keep the first few review ids."""
    for term in terms:
        uow.update(
            {
                tables.PK: {"S": COMPLAINTS_PREFIX + day.isoformat()},
                tables.SK: {"S": TERM_PREFIX + term},
            },
            "ADD #reviews :one, examples :example SET term = :term",
            tag=("complaint_term", day.isoformat(), term),
            names={"#reviews": "reviews"},
            values={
                ":one": {"N": "1"},
                ":example": {"SS": [review_id]},
                ":term": {"S": term},
            },
        )


def reviewed_skus() -> list[str]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": REVIEWED_PK}},
        "ProjectionExpression": "sk",
    }
    return [raw[tables.SK]["S"] for raw in _query_all(query)]


def daily_changes(sku: str, since: date) -> dict[date, dict[int, int]]:
    """The product's counters from ``since`` on (every later day there is, too)."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk AND sk >= :since",
        "ExpressionAttributeValues": {
            ":pk": {"S": FEEDBACK_PREFIX + sku},
            ":since": {"S": DAY_PREFIX + since.isoformat()},
        },
    }
    changes: dict[date, dict[int, int]] = {}
    for raw in _query_all(query):
        item = tables.from_item(raw)
        day = date.fromisoformat(item[tables.SK][len(DAY_PREFIX) :])
        changes[day] = {s: int(item.get(_bucket(s), 0)) for s in STARS}
    return changes


def day_terms(day: date) -> list[TermCount]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": COMPLAINTS_PREFIX + day.isoformat()}},
    }
    counts = []
    for raw in _query_all(query):
        item: Mapping[str, Any] = tables.from_item(raw)
        examples = tuple(sorted(item.get("examples") or ()))[:EXAMPLES_PER_TERM]
        counts.append(TermCount(item["term"], int(item["reviews"]), examples))
    return counts


def window_start(day: date, days: int) -> date:
    return day - timedelta(days=days - 1)


def _query_all(query: dict[str, Any]) -> list[tables.RawItem]:
    items: list[tables.RawItem] = []
    while True:
        response = tables.client().query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
