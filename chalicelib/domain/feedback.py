"""Feedback analytics: what reviews say about products, as nightly report tables.

Pure Python. Review events move per-product, per-day counters of published reviews by
number of stars (``RatingChange``); the nightly job reads a product's current rating and
its last days of changes and reports the rating as it stood at the end of the day, and
as it stood 30 days before (``ratings_by_product``). The day's new 1-2 star reviews add to
a count per term, with the terms found as search finds them (``search.description_terms``:
CJK bigrams and whole words), and ``complaint_terms`` ranks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from chalicelib.domain import search
from chalicelib.domain.reports import ReportTable
from chalicelib.domain.reviews import STARS, Rating, RatingChange

AREA = "feedback"
WINDOW_DAYS = 30
# Enough for any review's words while a term's counter updates still fit one transaction.
MAX_TERMS_PER_REVIEW = 60
TOP_COMPLAINT_TERMS = 50
EXAMPLES_PER_TERM = 3

# Words that say nothing about what went wrong.
_STOP_WORDS_TEXT = (
    "a an and are as at be been but by did do does for from had has have he her him "
    "his i if in into is it its me my no not of on or our she so than that the their "
    "them then there they this to too very was we were what when which who will with "
    "would you your just also all any can could get got one only out some such up 的 了 "
    "和 是 我 也 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 这个 那个 还是 但是"
)
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

RATINGS_COLUMNS = (
    "sku",
    "name_zh",
    "name_en",
    "reviews",
    "average",
    "low_rating_share",
    "reviews_30d_ago",
    "average_30d_ago",
    "average_change_30d",
)
COMPLAINT_COLUMNS = ("rank", "term", "reviews", "example_review_ids")


def complaint_terms(text: str) -> list[str]:
    """The distinct search terms of ``text`` worth counting, in the order they appear."""
    seen: dict[str, None] = {}
    for _is_cjk, run in search.segments(text):
        # One run at a time keeps the text's order.
        for term in sorted(search.description_terms(run), key=run.find):
            if term in STOP_WORDS or term.isdigit() or term in seen:
                continue
            seen[term] = None
            if len(seen) == MAX_TERMS_PER_REVIEW:
                return list(seen)
    return list(seen)


def change_of(
    *, rating: int, counted: bool, previous_rating: int | None, was_counted: bool
) -> RatingChange:
    """What one review event did to its product's published reviews by stars."""
    change = RatingChange()
    if was_counted and previous_rating in STARS:
        change = change.without(previous_rating)  # type: ignore[arg-type]
    if counted and rating in STARS:
        change = change.with_(rating)
    return change


def total_change(changes: Iterable[Mapping[int, int]]) -> RatingChange:
    buckets: dict[int, int] = {}
    for change in changes:
        for stars, n in change.items():
            buckets[stars] = buckets.get(stars, 0) + n
    return RatingChange(buckets)


def _undone(rating: Rating, change: RatingChange) -> Rating:
    return rating.applied(RatingChange({s: -n for s, n in change.buckets.items()}))


@dataclass(frozen=True, slots=True)
class ProductFeedback:
    """One product's rating now and its daily changes from the window's start onwards."""

    sku: str
    current: Rating
    daily: Mapping[date, Mapping[int, int]] = field(default_factory=dict)
    name_zh: str | None = None
    name_en: str | None = None

    def as_of(self, day: date) -> Rating:
        """The rating at the end of ``day``: now, less what changed after it."""
        later = total_change(change for d, change in self.daily.items() if d > day)
        return _undone(self.current, later)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def ratings_by_product(day: date, products: Sequence[ProductFeedback]) -> ReportTable:
    rows = []
    for product in sorted(products, key=lambda p: p.sku):
        at_end = product.as_of(day)
        window = total_change(
            change
            for d, change in product.daily.items()
            if (day - d).days < WINDOW_DAYS and d <= day
        )
        before = _undone(at_end, window)
        low = sum(at_end.histogram.get(s, 0) for s in (1, 2))
        change = (
            round(at_end.average - before.average, 1)
            if at_end.average is not None and before.average is not None
            else None
        )
        rows.append(
            {
                "sku": product.sku,
                "name_zh": product.name_zh,
                "name_en": product.name_en,
                "reviews": at_end.count,
                "average": at_end.average,
                "low_rating_share": _share(low, at_end.count),
                "reviews_30d_ago": before.count,
                "average_30d_ago": before.average,
                "average_change_30d": change,
            }
        )
    return ReportTable(AREA, "ratings_by_product", RATINGS_COLUMNS, tuple(rows))


@dataclass(frozen=True, slots=True)
class TermCount:
    term: str
    reviews: int
    examples: tuple[str, ...]


def complaint_terms_table(terms: Iterable[TermCount]) -> ReportTable:
    ranked = sorted(terms, key=lambda t: (-t.reviews, t.term))[:TOP_COMPLAINT_TERMS]
    rows = tuple(
        {
            "rank": rank,
            "term": term.term,
            "reviews": term.reviews,
            "example_review_ids": " ".join(sorted(term.examples)[:EXAMPLES_PER_TERM]),
        }
        for rank, term in enumerate(ranked, start=1)
    )
    return ReportTable(AREA, "complaint_terms", COMPLAINT_COLUMNS, rows)
