"""Uploads: a presigned S3 POST whose policy fixes the key under the customer's prefix, the
content type and the size (moto does not enforce policies, so the policy itself is checked),
and only an upload's owner can attach it to a review."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from test_reviews_api import BODY, an_order, reviews_in_table, world  # noqa: F401

from chalicelib.adapters import uploads_bucket
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from conftest import Api

BUCKET = "orderdesk-test-uploads"


@pytest.fixture
def bucket(world: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:  # noqa: F811
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("UPLOADS_BUCKET", BUCKET)
    get_settings.cache_clear()
    uploads_bucket.reset()
    yield world
    uploads_bucket.reset()


def ask(api: Api, user_id: str, **body: Any) -> Any:
    return api.request("POST", "/uploads", body, api.token(user_id, "customers"))


def policy_of(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(answer["fields"]["policy"]))


def test_the_presigned_post_pins_key_type_and_size(bucket: Api) -> None:
    response = ask(bucket, "alice", content_type="image/png", bytes=123_456)

    assert response.status_code == 201, response.json_body
    answer = response.json_body
    assert answer["upload_id"].startswith("upl_")
    assert answer["fields"]["key"] == f"uploads/alice/{answer['upload_id']}.png"
    conditions = policy_of(answer)["conditions"]
    assert {"bucket": BUCKET} in conditions
    assert {"key": f"uploads/alice/{answer['upload_id']}.png"} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 123_456] in conditions
    expires = datetime.fromisoformat(answer["expires_at"])
    signed_until = datetime.fromisoformat(policy_of(answer)["expiration"].replace("Z", "+00:00"))
    assert abs((signed_until - expires).total_seconds()) < 5


@pytest.mark.parametrize(
    "body",
    [
        {"content_type": "image/gif", "bytes": 10},
        {"content_type": "text/html", "bytes": 10},
        {"content_type": "image/png", "bytes": 5 * 1024 * 1024 + 1},
        {"content_type": "image/png", "bytes": 0},
        {"content_type": "image/png"},
    ],
)
def test_other_types_and_sizes_are_400(bucket: Api, body: dict[str, Any]) -> None:
    assert ask(bucket, "alice", **body).status_code == 400


def test_only_customers_upload(bucket: Api) -> None:
    body = {"content_type": "image/png", "bytes": 10}
    assert bucket.request("POST", "/uploads", body, bucket.ops).status_code == 403


def test_a_review_attaches_only_its_authors_uploads(bucket: Api) -> None:
    an_order("o-1", "alice")
    mine = ask(bucket, "alice", content_type="image/jpeg", bytes=1000).json_body["upload_id"]
    theirs = ask(bucket, "bob", content_type="image/jpeg", bytes=1000).json_body["upload_id"]
    headers = bucket.token("alice", "customers")

    refused = bucket.request(
        "POST",
        "/products/MUG/reviews",
        {"order_id": "o-1", "rating": 5, "body": BODY, "photos": [mine, theirs]},
        headers,
    )
    assert refused.status_code == 400 and refused.json_body["error"] == "unknown_upload"
    assert [d["upload_id"] for d in refused.json_body["details"]] == [theirs]
    assert reviews_in_table() == []

    accepted = bucket.request(
        "POST",
        "/products/MUG/reviews",
        {"order_id": "o-1", "rating": 5, "body": BODY, "photos": [mine]},
        headers,
    )
    assert accepted.status_code == 201, accepted.json_body
    assert accepted.json_body["photos"] == [mine]


def test_a_listed_review_links_to_its_photos_for_a_short_while(bucket: Api) -> None:
    an_order("o-1", "alice")
    headers = bucket.token("alice", "customers")
    first = ask(bucket, "alice", content_type="image/png", bytes=2000).json_body["upload_id"]
    second = ask(bucket, "alice", content_type="image/jpeg", bytes=1000).json_body["upload_id"]
    written = bucket.request(
        "POST",
        "/products/MUG/reviews",
        {"order_id": "o-1", "rating": 4, "body": BODY, "photos": [second, first]},
        headers,
    )
    assert written.status_code == 201, written.json_body

    [listed] = bucket.request("GET", "/products/MUG/reviews").json_body["items"]

    assert [link["upload_id"] for link in listed["photo_urls"]] == [second, first]
    assert f"/uploads/alice/{second}.jpg" in listed["photo_urls"][0]["url"]
    assert f"/uploads/alice/{first}.png" in listed["photo_urls"][1]["url"]
    assert all("X-Amz-Expires=300" in link["url"] for link in listed["photo_urls"])
