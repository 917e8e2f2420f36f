"""Reviews: verified buyers write and edit them, anyone reads the published ones, ops
moderate, support and ops reply, customers vote them helpful."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from chalice import Blueprint, Response
from pydantic import Field, StringConstraints

from chalicelib.api import models
from chalicelib.api.auth import CUSTOMERS, OPS, SUPPORT, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain.catalogue import require_id
from chalicelib.domain.reviews import (
    MAX_BODY_CHARS,
    MAX_PHOTOS,
    MAX_REASON_CHARS,
    MAX_REPLY_CHARS,
    MAX_TITLE_CHARS,
    MIN_BODY_CHARS,
    Review,
    ReviewContent,
    ReviewSort,
    ReviewStatus,
)
from chalicelib.services import reviews, uploads

blueprint = Blueprint(__name__)

SKU_PARAMETER = {"sku": {"type": "string", "pattern": models.ID_PATTERN}}
REVIEW_PARAMETER = {"review_id": {"type": "string", "pattern": models.ID_PATTERN}}
TAGS = ("reviews",)

Id = Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]


# --- request models ---------------------------------------------------------------------------


class ReviewIn(models.RequestModel):
    order_id: Id = Field(description="Your order whose delivered line this reviews.")
    rating: models.JsonInt = Field(ge=1, le=5, description="Stars, 1 to 5.")
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    body: str = Field(
        min_length=MIN_BODY_CHARS,
        max_length=MAX_BODY_CHARS,
        description="Plain text; shown as text, never as markup or links.",
    )
    photos: list[Id] = Field(
        default_factory=list, max_length=MAX_PHOTOS, description="Your upload ids (POST /uploads)."
    )

    def content(self) -> ReviewContent:
        return ReviewContent.of(
            rating=self.rating, title=self.title, body=self.body, photos=self.photos
        )


class HideIn(models.RequestModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class ReplyIn(models.RequestModel):
    body: str = Field(min_length=1, max_length=MAX_REPLY_CHARS)


class ProductReviewsQuery(models.QueryModel):
    sort: Literal["recent", "rating_high", "rating_low", "helpful"] = "recent"
    rating: int | None = Field(default=None, ge=1, le=5, description="Only this many stars.")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class ModerationQuery(models.QueryModel):
    status: Literal["hidden", "published"] = "published"
    sku: Id | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


# --- response models --------------------------------------------------------------------------


class ReplyBody(models.ResponseModel):
    body: str
    created_at: datetime
    updated_at: datetime


class ReviewBody(models.ResponseModel):
    review_id: str
    sku: str
    order_id: str
    customer_id: str
    rating: int = Field(ge=1, le=5)
    title: str | None
    body: str
    photos: list[str]
    status: Literal["published", "hidden"]
    helpful: int = Field(ge=0)
    created_at: datetime
    updated_at: datetime
    reply: ReplyBody | None

    @classmethod
    def of(cls, review: Review) -> ReviewBody:
        reply = review.reply
        reply_body = None
        if reply is not None:
            reply_body = ReplyBody(
                body=reply.body, created_at=reply.created_at, updated_at=reply.updated_at
            )
        return cls(
            review_id=review.review_id,
            sku=review.sku,
            order_id=review.order_id,
            customer_id=review.customer_id,
            rating=review.rating,
            title=review.content.title,
            body=review.content.body,
            photos=list(review.content.photos),
            status=review.status.value,  # type: ignore[arg-type]
            helpful=review.helpful,
            created_at=review.created_at,
            updated_at=review.updated_at,
            reply=reply_body,
        )


class ModeratedReviewBody(ReviewBody):
    hidden_reason: str | None = None

    @classmethod
    def of(cls, review: Review) -> ModeratedReviewBody:
        return cls(**ReviewBody.of(review).model_dump(), hidden_reason=review.hidden_reason)


class ListedReviewBody(ReviewBody):
    photo_urls: list[models.PhotoLink] = Field(
        default_factory=list,
        description="Short-lived GET URLs of the review's photos, for showing them with it.",
    )


class ReviewPage(models.ResponseModel):
    items: list[ListedReviewBody]
    next_cursor: str | None


class ModerationPage(models.ResponseModel):
    items: list[ModeratedReviewBody]
    next_cursor: str | None


class HelpfulBody(models.ResponseModel):
    helpful: int = Field(ge=0)


# --- routes -----------------------------------------------------------------------------------


@blueprint.route("/products/{sku}/reviews", methods=["POST"], authorizer=authorizer)
@operation(
    "Review a delivered product",
    description="Only for a delivered line of that SKU in the caller's own order (else 403 "
    "not_a_verified_purchase), once per order and SKU (409 already_reviewed), at most five "
    "a day (429 rate_limited with Retry-After). The rating changes in the same transaction.",
    tags=TAGS,
    request=ReviewIn,
    responses={201: ReviewBody},
    errors=(429, 503),
    path_params=SKU_PARAMETER,
)
def write_review(sku: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, ReviewIn)
    review = reviews.write_review(
        caller.user_id, require_id(sku, "sku"), order_id=body.order_id, content=body.content()
    )
    return Response(
        body=models.dump(ReviewBody.of(review)),
        status_code=201,
        headers={"Content-Type": "application/json", "Location": f"/reviews/{review.review_id}"},
    )


@blueprint.route("/products/{sku}/reviews", methods=["GET"])
@operation(
    "A product's published reviews",
    description="sort: recent (default), rating_high, rating_low or helpful; rating narrows "
    "to one number of stars.",
    tags=TAGS,
    query=ProductReviewsQuery,
    responses={200: ReviewPage},
    auth="none",
    path_params=SKU_PARAMETER,
)
def list_product_reviews(sku: str) -> dict[str, Any]:
    params = ProductReviewsQuery.model_validate(blueprint.current_request.query_params or {})
    page = reviews.list_product_reviews(
        require_id(sku, "sku"),
        sort=ReviewSort(params.sort),
        rating=params.rating,
        limit=params.limit,
        cursor=params.cursor,
    )
    # One batch read for every photo on the page.
    links = uploads.photo_links([photo for r in page.items for photo in r.content.photos])
    by_upload = {link["upload_id"]: link for link in links}
    items = [
        ListedReviewBody(
            **ReviewBody.of(r).model_dump(),
            photo_urls=[by_upload[p] for p in r.content.photos if p in by_upload],
        )
        for r in page.items
    ]
    body = ReviewPage(items=items, next_cursor=page.next_cursor)
    return models.dump(body)


@blueprint.route("/reviews/{review_id}", methods=["PUT"], authorizer=authorizer)
@operation(
    "Edit your review",
    description="The author only, within 30 days of writing it (else 409 edit_window_closed).",
    tags=TAGS,
    request=ReviewIn,
    responses={200: ReviewBody},
    errors=(503,),
    path_params=REVIEW_PARAMETER,
)
def edit_review(review_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, ReviewIn)
    review = reviews.edit_review(
        caller.user_id, review_id, order_id=body.order_id, content=body.content()
    )
    return models.dump(ReviewBody.of(review))


@blueprint.route("/reviews", methods=["GET"], authorizer=authorizer)
@operation(
    "The moderation queue",
    description="Reviews with one status (published by default), newest first.",
    tags=TAGS,
    query=ModerationQuery,
    responses={200: ModerationPage},
)
def moderation_queue() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS)
    params = ModerationQuery.model_validate(request.query_params or {})
    page = reviews.moderation_queue(
        ReviewStatus(params.status), sku=params.sku, limit=params.limit, cursor=params.cursor
    )
    body = ModerationPage(
        items=[ModeratedReviewBody.of(r) for r in page.items], next_cursor=page.next_cursor
    )
    return models.dump(body)


@blueprint.route("/reviews/{review_id}/hide", methods=["POST"], authorizer=authorizer)
@operation(
    "Hide a review",
    description="Out of the product's listings and rating at once; hiding twice changes nothing.",
    tags=TAGS,
    request=HideIn,
    responses={200: ModeratedReviewBody},
    errors=(503,),
    path_params=REVIEW_PARAMETER,
)
def hide_review(review_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS)
    body = parse_body(request, HideIn)
    return models.dump(ModeratedReviewBody.of(reviews.hide_review(review_id, body.reason)))


@blueprint.route("/reviews/{review_id}/publish", methods=["POST"], authorizer=authorizer)
@operation(
    "Publish a hidden review again",
    description="Back into the listings and the rating.",
    tags=TAGS,
    responses={200: ModeratedReviewBody},
    errors=(503,),
    path_params=REVIEW_PARAMETER,
)
def publish_review(review_id: str) -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS)
    return models.dump(ModeratedReviewBody.of(reviews.publish_review(review_id)))


@blueprint.route("/reviews/{review_id}/reply", methods=["POST"], authorizer=authorizer)
@operation(
    "Reply to a review",
    description="One reply per review, shown under it; replying again edits it. The first "
    "reply notifies the author.",
    tags=TAGS,
    request=ReplyIn,
    responses={200: ReviewBody},
    errors=(503,),
    path_params=REVIEW_PARAMETER,
)
def reply_to_review(review_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, OPS, SUPPORT)
    body = parse_body(request, ReplyIn)
    review = reviews.reply_to_review(review_id, body.body, author_id=caller.user_id)
    return models.dump(ReviewBody.of(review))


@blueprint.route("/reviews/{review_id}/helpful", methods=["POST"], authorizer=authorizer)
@operation(
    "Vote a review helpful",
    description="One vote per customer (a second changes nothing); not on your own review "
    "(403 own_review).",
    tags=TAGS,
    responses={200: HelpfulBody},
    errors=(503,),
    path_params=REVIEW_PARAMETER,
)
def vote_helpful(review_id: str) -> dict[str, Any]:
    caller = require_groups(blueprint.current_request, CUSTOMERS)
    return models.dump(HelpfulBody(helpful=reviews.vote_helpful(review_id, caller.user_id)))
