"""Reviews, their votes, the moderation queue, the daily quota and product ratings.

Item shapes (the only place that knows them):

    review       pk=REVIEW#<review_id>   sk=REVIEW
                 sku, order_id, customer_id, rating, title, body, photos, status, helpful,
                 reply {body, author_id, created_at, updated_at}, hidden_reason,
                 created_at, updated_at, version
                 while published (a sparse index: hidden reviews are in none of them):
                 gsi1pk=REVIEWS#<sku>  gsi1sk=<created_at>#<review_id>             recent
                 gsi2pk=REVIEWS#<sku>  gsi2sk=R<rating>#<created_at>#<review_id>   by rating
                 gsi3pk=REVIEWS#<sku>  gsi3sk=H<helpful:010>#<created_at>#<id>     by helpful
    moderation   pk=REVIEW#<review_id>   sk=MODERATION
                 gsi1pk=REVIEWSTATUS#<status>        gsi1sk=<created_at>#<review_id>
                 gsi2pk=REVIEWSTATUS#<status>#<sku>  gsi2sk=<created_at>#<review_id>
    vote         pk=REVIEW#<review_id>   sk=VOTE#<customer_id>
    quota        pk=REVIEWQUOTA#<customer_id>#<business day>  sk=QUOTA   written, expires_ttl
    rating       pk=RATING#<sku>         sk=RATING   s1..s5 (reviews per number of stars)

The review's id is derived from (order, SKU), so "one review per order line" is the
review's own ``attribute_not_exists`` condition. Every change rewrites the review
conditionally on its version, together with its moderation entry, and moves the rating
with ``ADD`` increments in the same transaction; the rating item is never rebuilt from
reviews, and the product item (which ``PUT /products`` replaces) never holds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.reviews import (
    STARS,
    Rating,
    RatingChange,
    Reply,
    Review,
    ReviewContent,
    ReviewSort,
    ReviewStatus,
)
from chalicelib.store import tables
from chalicelib.store.orders import timestamp
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

REVIEW_PREFIX = "REVIEW#"
REVIEW_SK = "REVIEW"
MODERATION_SK = "MODERATION"
VOTE_PREFIX = "VOTE#"
LISTING_PREFIX = "REVIEWS#"
STATUS_PREFIX = "REVIEWSTATUS#"
QUOTA_PREFIX = "REVIEWQUOTA#"
QUOTA_SK = "QUOTA"
RATING_PREFIX = "RATING#"
RATING_SK = "RATING"
QUOTA_RETENTION_SECONDS = 3 * 24 * 3600

_POSITION = re.compile(r"[A-Za-z0-9:.#_-]{1,160}")
_REVIEW_ID = re.compile(r"rev_[0-9a-f]{24}")


def review_key(review_id: str) -> tables.RawItem:
    return {tables.PK: {"S": REVIEW_PREFIX + review_id}, tables.SK: {"S": REVIEW_SK}}


def rating_key(sku: str) -> tables.RawItem:
    return {tables.PK: {"S": RATING_PREFIX + sku}, tables.SK: {"S": RATING_SK}}


def _bucket(stars: int) -> str:
    return f"s{stars}"


# --- reviews ------------------------------------------------------------------------------------


def _recent_key(review: Review) -> str:
    return f"{timestamp(review.created_at)}#{review.review_id}"


def _listing_keys(review: Review) -> dict[str, Any]:
    if not review.is_published:
        return {}
    partition = LISTING_PREFIX + review.sku
    recent = _recent_key(review)
    return {
        "gsi1pk": partition,
        "gsi1sk": recent,
        "gsi2pk": partition,
        "gsi2sk": f"R{review.rating}#{recent}",
        "gsi3pk": partition,
        "gsi3sk": f"H{review.helpful:010d}#{recent}",
    }


def review_item(review: Review) -> tables.RawItem:
    reply = review.reply
    return tables.to_item(
        {
            tables.PK: REVIEW_PREFIX + review.review_id,
            tables.SK: REVIEW_SK,
            "entity": "review",
            **_listing_keys(review),
            "review_id": review.review_id,
            "sku": review.sku,
            "order_id": review.order_id,
            "customer_id": review.customer_id,
            "rating": review.rating,
            "title": review.content.title,
            "body": review.content.body,
            "photos": list(review.content.photos),
            "status": review.status.value,
            "helpful": review.helpful,
            "reply": None
            if reply is None
            else {
                "body": reply.body,
                "author_id": reply.author_id,
                "created_at": timestamp(reply.created_at),
                "updated_at": timestamp(reply.updated_at),
            },
            "hidden_reason": review.hidden_reason,
            "created_at": timestamp(review.created_at),
            "updated_at": timestamp(review.updated_at),
            "version": review.version,
        }
    )


def review_from_item(raw: Mapping[str, Any]) -> Review:
    item = tables.from_item(raw)
    reply = item.get("reply")
    return Review(
        review_id=item["review_id"],
        sku=item["sku"],
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        content=ReviewContent(
            rating=int(item["rating"]),
            title=item.get("title"),
            body=item["body"],
            photos=tuple(item.get("photos") or ()),
        ),
        status=ReviewStatus(item["status"]),
        helpful=int(item.get("helpful", 0)),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        reply=None
        if not reply
        else Reply(
            body=reply["body"],
            author_id=reply["author_id"],
            created_at=datetime.fromisoformat(reply["created_at"]),
            updated_at=datetime.fromisoformat(reply["updated_at"]),
        ),
        hidden_reason=item.get("hidden_reason"),
        version=int(item.get("version", 1)),
    )


def _moderation_item(review: Review) -> tables.RawItem:
    status = STATUS_PREFIX + review.status.value
    recent = _recent_key(review)
    return tables.to_item(
        {
            tables.PK: REVIEW_PREFIX + review.review_id,
            tables.SK: MODERATION_SK,
            "entity": "review_moderation",
            "gsi1pk": status,
            "gsi1sk": recent,
            "gsi2pk": f"{status}#{review.sku}",
            "gsi2sk": recent,
            "review_id": review.review_id,
        }
    )


def get_review(review_id: str, *, consistent: bool = False) -> Review | None:
    if not _REVIEW_ID.fullmatch(review_id):
        return None
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=review_key(review_id), ConsistentRead=consistent
    )
    raw = response.get("Item")
    return review_from_item(raw) if raw else None


def get_reviews(review_ids: Iterable[str]) -> dict[str, Review]:
    keys = [review_key(review_id) for review_id in sorted(set(review_ids))]
    reviews = (review_from_item(raw) for raw in tables.batch_get(keys))
    return {review.review_id: review for review in reviews}


def add_new_review(uow: UnitOfWork, review: Review) -> None:
    """The review (refused if that order line has one already) and its moderation entry."""
    uow.put(
        review_item(review),
        tag=("review", review.review_id),
        condition="attribute_not_exists(pk)",
    )
    uow.put(_moderation_item(review), tag=("review_moderation", review.review_id))
    add_rating_change(uow, review.sku, review.rating_change(None))


def add_review_change(uow: UnitOfWork, review: Review, *, previous: Review) -> None:
    """The changed review (if nobody changed it since ``previous``), its moderation entry
    and what the change does to the product's rating."""
    uow.put_versioned(
        review_item(review), tag=("review", review.review_id), previous_version=previous.version
    )
    if review.status is not previous.status:
        uow.put(_moderation_item(review), tag=("review_moderation", review.review_id))
    add_rating_change(uow, review.sku, review.rating_change(previous))


def failed_on(cancelled: TransactionCancelled, kind: str) -> bool:
    """Whether the condition of an action of ``kind`` (review, vote, quota) refused it."""
    return any(reason.tag[0] == kind for reason in cancelled.failed() if reason.condition_failed)


# --- votes and quota ------------------------------------------------------------------------------


def add_vote(uow: UnitOfWork, review_id: str, customer_id: str, *, at: datetime) -> None:
    """One helpful vote per customer: refused (tag ``vote``) when they voted already."""
    item = tables.to_item(
        {
            tables.PK: REVIEW_PREFIX + review_id,
            tables.SK: VOTE_PREFIX + customer_id,
            "entity": "review_vote",
            "voted_at": timestamp(at),
        }
    )
    uow.put(item, tag=("vote", review_id, customer_id), condition="attribute_not_exists(pk)")


def has_voted(review_id: str, customer_id: str) -> bool:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key={
            tables.PK: {"S": REVIEW_PREFIX + review_id},
            tables.SK: {"S": VOTE_PREFIX + customer_id},
        },
        ConsistentRead=True,
    )
    return "Item" in response


def add_quota_use(uow: UnitOfWork, customer_id: str, day: str, *, limit: int, at: datetime) -> None:
    """Count one more review for ``customer_id`` on ``day``; refused (tag ``quota``) at
    ``limit``."""
    uow.update(
        {tables.PK: {"S": f"{QUOTA_PREFIX}{customer_id}#{day}"}, tables.SK: {"S": QUOTA_SK}},
        "ADD #written :one SET #ttl = :ttl",
        tag=("quota", customer_id, day),
        condition="attribute_not_exists(#written) OR #written < :limit",
        names={"#written": "written", "#ttl": tables.TTL_ATTRIBUTE},
        values={
            ":one": {"N": "1"},
            ":limit": {"N": str(limit)},
            ":ttl": {"N": str(int(at.timestamp()) + QUOTA_RETENTION_SECONDS)},
        },
    )


# --- ratings --------------------------------------------------------------------------------------


def add_rating_change(uow: UnitOfWork, sku: str, change: RatingChange) -> None:
    """Move the product's rating by ``change`` (nothing to write when it does not move)."""
    buckets = change.nonzero
    if not buckets:
        return
    names = {f"#{_bucket(stars)}": _bucket(stars) for stars in buckets}
    values: dict[str, Any] = {f":{_bucket(s)}": {"N": str(n)} for s, n in buckets.items()}
    values[":sku"] = {"S": sku}
    values[":entity"] = {"S": "product_rating"}
    adds = ", ".join(f"#{_bucket(stars)} :{_bucket(stars)}" for stars in buckets)
    uow.update(
        rating_key(sku),
        f"ADD {adds} SET sku = :sku, entity = :entity",
        tag=("rating", sku),
        names=names,
        values=values,
    )


def _rating_from_item(raw: Mapping[str, Any] | None) -> Rating:
    if not raw:
        return Rating()
    item = tables.from_item(raw)
    return Rating({stars: int(item.get(_bucket(stars), 0)) for stars in STARS})


def get_rating(sku: str, *, consistent: bool = False) -> Rating:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=rating_key(sku), ConsistentRead=consistent
    )
    return _rating_from_item(response.get("Item"))


def get_ratings(skus: Iterable[str]) -> dict[str, Rating]:
    """Every SKU's rating (an empty one for SKUs never reviewed)."""
    wanted = sorted(set(skus))
    found = {
        tables.from_item(raw)["sku"]: _rating_from_item(raw)
        for raw in tables.batch_get([rating_key(sku) for sku in wanted])
    }
    return {sku: found.get(sku, Rating()) for sku in wanted}


# --- listings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listing:
    index: str
    partition: str
    newest_first: bool
    prefix: str | None = None  # begins_with on the index sort key
    rating_filter: int | None = None  # a filter on what the key cannot narrow


def _product_listing(sku: str, sort: ReviewSort, rating: int | None) -> _Listing:
    partition = LISTING_PREFIX + sku
    if sort is ReviewSort.HELPFUL:
        # Helpfulness is the sort key; a star filter is applied to what the Query reads.
        return _Listing(tables.GSI3, partition, newest_first=True, rating_filter=rating)
    if rating is not None:
        # One number of stars: its reviews are one range of the by-rating index, newest first.
        return _Listing(tables.GSI2, partition, newest_first=True, prefix=f"R{rating}#")
    if sort is ReviewSort.RECENT:
        return _Listing(tables.GSI1, partition, newest_first=True)
    return _Listing(tables.GSI2, partition, newest_first=sort is ReviewSort.RATING_HIGH)


def product_reviews_page(
    sku: str, *, sort: ReviewSort, rating: int | None, limit: int, cursor: str | None
) -> Page[Review]:
    """Published reviews of ``sku`` in ``sort`` order (only ``rating`` stars, if given)."""
    scope = scope_of("reviews.product", sku, sort.value, rating)
    listing = _product_listing(sku, sort, rating)
    items, next_cursor = _query_page(listing, limit=limit, cursor=cursor, scope=scope)
    return Page(items=[review_from_item(raw) for raw in items], next_cursor=next_cursor)


def moderation_page(
    status: ReviewStatus, *, sku: str | None, limit: int, cursor: str | None
) -> Page[Review]:
    """Reviews with ``status`` (of ``sku`` only, if given), newest first."""
    scope = scope_of("reviews.moderation", status.value, sku)
    partition = STATUS_PREFIX + status.value
    listing = (
        _Listing(tables.GSI2, f"{partition}#{sku}", newest_first=True)
        if sku
        else _Listing(tables.GSI1, partition, newest_first=True)
    )
    entries, next_cursor = _query_page(listing, limit=limit, cursor=cursor, scope=scope)
    ids = [tables.from_item(raw)["review_id"] for raw in entries]
    found = get_reviews(ids)
    # An entry whose review moved on since the index was read is left out of this page.
    reviews = [found[i] for i in ids if i in found and found[i].status is status]
    return Page(items=reviews, next_cursor=next_cursor)


def _query_page(
    listing: _Listing, *, limit: int, cursor: str | None, scope: str
) -> tuple[list[tables.RawItem], str | None]:
    pk_name, sk_name = tables.GSI_KEYS[listing.index]
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": listing.index,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": pk_name},
        "ExpressionAttributeValues": {":pk": {"S": listing.partition}},
        "ScanIndexForward": not listing.newest_first,
        # One extra item tells whether another page exists without an empty last page.
        "Limit": limit + 1,
    }
    if listing.prefix:
        query["KeyConditionExpression"] += " AND begins_with(#sk, :prefix)"
        query["ExpressionAttributeNames"]["#sk"] = sk_name
        query["ExpressionAttributeValues"][":prefix"] = {"S": listing.prefix}
    if listing.rating_filter is not None:
        query["FilterExpression"] = "#rating = :rating"
        query["ExpressionAttributeNames"]["#rating"] = "rating"
        query["ExpressionAttributeValues"][":rating"] = {"N": str(listing.rating_filter)}
    if cursor:
        position = decode_cursor(cursor, scope)
        after, pk, sk = position.get("after"), position.get("pk"), position.get("sk")
        if not all(isinstance(v, str) and _POSITION.fullmatch(v) for v in (after, pk, sk)):
            raise InvalidCursor()
        if listing.prefix and not str(after).startswith(listing.prefix):
            raise InvalidCursor()
        query["ExclusiveStartKey"] = {
            pk_name: {"S": listing.partition},
            sk_name: {"S": after},
            tables.PK: {"S": pk},
            tables.SK: {"S": sk},
        }
    items: list[tables.RawItem] = []
    while len(items) <= limit:
        response = tables.client().query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    page, more = items[:limit], len(items) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor(
            scope,
            {
                "after": last[sk_name]["S"],
                "pk": last[tables.PK]["S"],
                "sk": last[tables.SK]["S"],
            },
        )
    return page, next_cursor
