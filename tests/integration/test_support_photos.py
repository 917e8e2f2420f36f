"""Photos on support messages: only the writer's own uploads, refused whole before anything is
written otherwise, shown to support and ops through five-minute links and to the customer
as upload ids (as after-sales requests show them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from chalicelib.adapters import uploads_bucket
from chalicelib.settings import get_settings
from chalicelib.store import support as support_store

if TYPE_CHECKING:
    from conftest import Api

CUSTOMER = "customer-1"
BUCKET = "orderdesk-test-uploads"


@pytest.fixture
def world(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("UPLOADS_BUCKET", BUCKET)
    get_settings.cache_clear()
    uploads_bucket.reset()
    yield api
    uploads_bucket.reset()


def upload(api: Api, user: str) -> str:
    answer = api.request(
        "POST",
        "/uploads",
        {"content_type": "image/jpeg", "bytes": 1000},
        api.token(user, "customers"),
    )
    assert answer.status_code == 201, answer.json_body
    return str(answer.json_body["upload_id"])


def start(api: Api, photos: list[str], message: str = "杯子碎了，见照片") -> Any:
    body = {"subject": "破损", "message": message, "photos": photos}
    return api.request("POST", "/support/conversations", body, api.token(CUSTOMER, "customers"))


def conversations_of(customer: str) -> list[Any]:
    return support_store.customer_conversations_page(
        customer, status=None, limit=10, cursor=None
    ).items


def test_a_conversation_starts_with_the_customers_own_photo(world: Api) -> None:
    mine = upload(world, CUSTOMER)

    response = start(world, [mine])

    assert response.status_code == 201, response.json_body
    first = response.json_body["messages"][0]
    assert first["author"] == "customer" and first["photos"] == [mine]
    assert first["photo_urls"] is None
    stored = support_store.messages_of(response.json_body["conversation_id"])
    assert stored[0].photos == (mine,)


def test_someone_elses_photo_refuses_the_start_and_writes_nothing(world: Api) -> None:
    mine, theirs = upload(world, CUSTOMER), upload(world, "customer-2")

    response = start(world, [mine, theirs])

    assert response.status_code == 400, response.json_body
    assert response.json_body["error"] == "unknown_upload"
    assert [d["upload_id"] for d in response.json_body["details"]] == [theirs]
    assert conversations_of(CUSTOMER) == []


@pytest.mark.parametrize(
    ("photos", "error"),
    [
        (["upl_" + "0" * 32], "unknown_upload"),  # well formed, never uploaded
        (["not-an-upload"], "unknown_upload"),
        (["../etc/passwd"], "validation_error"),
        (["upl_" + f"{n:032x}" for n in range(7)], "validation_error"),
        ("upl_" + "0" * 32, "validation_error"),
    ],
)
def test_bad_photo_ids_are_400_and_nothing_is_written(world: Api, photos: Any, error: str) -> None:
    response = start(world, photos)

    assert response.status_code == 400, response.json_body
    assert response.json_body["error"] == error
    assert conversations_of(CUSTOMER) == []


def test_the_same_photo_twice_is_400(world: Api) -> None:
    mine = upload(world, CUSTOMER)

    response = start(world, [mine, mine])

    assert response.status_code == 400
    assert response.json_body["details"][0]["field"] == "photos"
    assert conversations_of(CUSTOMER) == []


def test_a_reply_carries_photos_and_support_sees_them_through_short_lived_links(
    world: Api,
) -> None:
    conversation_id = start(world, [], "转人工").json_body["conversation_id"]
    path = f"/support/conversations/{conversation_id}"
    customer = world.token(CUSTOMER, "customers")
    before = world.request("GET", path, None, customer).json_body["messages"]
    mine, theirs = upload(world, CUSTOMER), upload(world, "customer-2")

    refused = world.request(
        "POST", f"{path}/messages", {"body": "照片", "photos": [theirs]}, customer
    )
    assert refused.status_code == 400 and refused.json_body["error"] == "unknown_upload"
    assert world.request("GET", path, None, customer).json_body["messages"] == before

    posted = world.request("POST", f"{path}/messages", {"body": "照片", "photos": [mine]}, customer)
    assert posted.status_code == 201, posted.json_body
    assert posted.json_body["message"]["photos"] == [mine]
    assert posted.json_body["message"]["photo_urls"] is None

    seen_by_support = world.request("GET", path, None, world.support).json_body["messages"]
    [link] = seen_by_support[-1]["photo_urls"]
    assert link["upload_id"] == mine
    assert f"/uploads/{CUSTOMER}/{mine}.jpg" in link["url"]
    assert "X-Amz-Expires=300" in link["url"]
    assert seen_by_support[0]["photo_urls"] == []
    seen_by_customer = world.request("GET", path, None, customer).json_body["messages"]
    assert seen_by_customer[-1]["photos"] == [mine]
    assert seen_by_customer[-1]["photo_urls"] is None


def test_staff_cannot_attach_a_customers_upload(world: Api) -> None:
    conversation_id = start(world, [], "转人工").json_body["conversation_id"]
    path = f"/support/conversations/{conversation_id}"
    customers_photo = upload(world, CUSTOMER)

    refused = world.request(
        "POST", f"{path}/messages", {"body": "这张？", "photos": [customers_photo]}, world.support
    )

    assert refused.status_code == 400 and refused.json_body["error"] == "unknown_upload"
    conversation = world.request("GET", path, None, world.support).json_body
    assert [m["author"] for m in conversation["messages"]] == ["customer", "assistant"]
    assert conversation["status"] == "open"
