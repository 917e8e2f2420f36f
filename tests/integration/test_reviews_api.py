"""Reviews over the Chalice test client and moto: who may write them, what they do to the
product's rating, moderation, replies and helpful votes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from test_orders_api import add_product, items_with_prefix

from chalicelib.domain.allocation import Allocation
from chalicelib.domain.money import Money
from chalicelib.domain.orders import (
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    ShippingAddress,
)
from chalicelib.domain.reviews import ReviewContent, review_id_for
from chalicelib.services import reviews as review_service
from chalicelib.store import orders as order_store
from chalicelib.store import outbox
from chalicelib.store import reviews as review_store
from chalicelib.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from conftest import Api

BODY = "Sturdy, keeps tea hot for hours."
ADDRESS = ShippingAddress(
    "李雷", "+8613800000000", "CN", "上海", "上海市", "人民大道 1 号", "200003"
)


# --- a small world ------------------------------------------------------------------------------


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    add_product("MUG", 2900)
    add_product("TEA", 4550)
    yield api


def an_order(
    order_id: str,
    customer_id: str,
    *,
    delivered: tuple[str, ...] = ("MUG",),
    undelivered: tuple[str, ...] = (),
) -> Order:
    """An order written straight to the table: one parcel delivered, one still travelling."""
    at = datetime(2026, 5, 1, 8, tzinfo=UTC)
    skus = delivered + undelivered
    lines = tuple(
        OrderLine(sku, 1, Money(1000, "CNY"), (Allocation(sku, "SH", 1),)) for sku in skus
    )
    shipments = []
    if delivered:
        shipments.append(
            Shipment(
                f"{order_id}-1",
                "SH",
                ShipmentStatus.DELIVERED,
                tuple(ShipmentLine(s, 1) for s in delivered),
            )
        )
    if undelivered:
        shipments.append(
            Shipment(
                f"{order_id}-2",
                "SH",
                ShipmentStatus.SHIPPED,
                tuple(ShipmentLine(s, 1) for s in undelivered),
            )
        )
    total = Money(1000 * len(skus), "CNY")
    order = Order(
        order_id=order_id,
        customer_id=customer_id,
        status=OrderStatus.SHIPPED if undelivered else OrderStatus.DELIVERED,
        lines=lines,
        shipments=tuple(shipments),
        shipping_address=ADDRESS,
        subtotal=total,
        shipping_fee=Money(0, "CNY"),
        total=total,
        created_at=at,
        updated_at=at,
        expires_at=at + timedelta(minutes=30),
        history=(),
    )
    uow = UnitOfWork()
    order_store.add_new_order(uow, order)
    uow.commit()
    return order


def customer(api: Api, user_id: str) -> dict[str, str]:
    return api.token(user_id, "customers")


def review(
    api: Api, user_id: str, order_id: str, sku: str = "MUG", rating: int = 5, **extra: Any
) -> Any:
    body = {"order_id": order_id, "rating": rating, "body": BODY, **extra}
    return api.request("POST", f"/products/{sku}/reviews", body, customer(api, user_id))


def rating(api: Api, sku: str = "MUG") -> dict[str, Any]:
    response = api.request("GET", f"/products/{sku}")
    assert response.status_code == 200, response.json_body
    return response.json_body["rating"]


def listed(api: Api, sku: str = "MUG", query: str = "") -> list[dict[str, Any]]:
    response = api.request("GET", f"/products/{sku}/reviews{query}")
    assert response.status_code == 200, response.json_body
    return response.json_body["items"]


def reviews_in_table() -> list[dict[str, Any]]:
    return [i for i in items_with_prefix(review_store.REVIEW_PREFIX) if i["sk"]["S"] == "REVIEW"]


# --- writing ------------------------------------------------------------------------------------


def test_a_delivered_line_is_reviewed_and_the_rating_moves_with_it(world: Api) -> None:
    an_order("o-1", "alice")
    assert rating(world) == {
        "average": None,
        "count": 0,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
    }

    response = review(world, "alice", "o-1", rating=4, title="  Good mug ")

    assert response.status_code == 201, response.json_body
    body = response.json_body
    assert body["review_id"] == review_id_for("o-1", "MUG")
    assert {k: body[k] for k in ("sku", "order_id", "customer_id", "rating", "title")} == {
        "sku": "MUG",
        "order_id": "o-1",
        "customer_id": "alice",
        "rating": 4,
        "title": "Good mug",
    }
    assert body["status"] == "published"
    assert body["helpful"] == 0 and body["reply"] is None and body["photos"] == []
    assert rating(world) == {
        "average": 4.0,
        "count": 1,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
    }
    events = [outbox.event_from_item(i) for i in items_with_prefix(outbox.OUTBOX_PREFIX)]
    assert [e.type for e in events if e.type.startswith("review.")] == ["review.created"]


def test_the_product_list_carries_each_products_rating(world: Api) -> None:
    an_order("o-1", "alice", delivered=("MUG", "TEA"))
    assert review(world, "alice", "o-1", "MUG", rating=5).status_code == 201
    assert review(world, "alice", "o-1", "TEA", rating=2).status_code == 201

    items = world.request("GET", "/products").json_body["items"]

    by_sku = {item["sku"]: item["rating"] for item in items}
    assert by_sku["MUG"]["average"] == 5.0 and by_sku["TEA"]["average"] == 2.0


def test_a_second_review_of_the_same_line_is_409_and_changes_nothing(world: Api) -> None:
    an_order("o-1", "alice")
    assert review(world, "alice", "o-1", rating=5).status_code == 201

    again = review(world, "alice", "o-1", rating=1)

    assert again.status_code == 409
    assert again.json_body["error"] == "already_reviewed"
    # The 409 names the review to edit instead.
    assert again.json_body["details"]["review_id"] == review_id_for("o-1", "MUG")
    assert rating(world)["count"] == 1 and rating(world)["average"] == 5.0
    assert len(reviews_in_table()) == 1


@pytest.mark.parametrize(
    ("order_owner", "sku", "why"),
    [
        ("alice", "TEA", "TEA is still travelling"),
        ("alice", "PEN", "PEN was never bought"),
        ("bob", "MUG", "another customer's order"),
    ],
)
def test_anything_but_a_delivered_line_of_ones_own_order_is_403(
    world: Api, order_owner: str, sku: str, why: str
) -> None:
    add_product("PEN", 800)
    an_order("o-1", order_owner, delivered=("MUG",), undelivered=("TEA",))

    response = review(world, "alice", "o-1", sku)

    assert response.status_code == 403, why
    assert response.json_body["error"] == "not_a_verified_purchase"
    assert reviews_in_table() == []
    assert rating(world, "MUG")["count"] == 0


def test_an_unknown_order_gets_the_same_403(world: Api) -> None:
    response = review(world, "alice", "no-such-order")
    assert response.status_code == 403
    assert response.json_body["error"] == "not_a_verified_purchase"


@pytest.mark.parametrize(
    "changes",
    [
        {"body": "too short"},
        {"body": "x" * 2001},
        {"title": "t" * 101},
        {"rating": 0},
        {"rating": 6},
        {"rating": "5"},
        {"body": "ten chars\x00 with a NUL"},
        {"photos": ["upl_" + "0" * 32]},
        {"surprise": True},
    ],
)
def test_invalid_reviews_are_400_and_write_nothing(world: Api, changes: dict[str, Any]) -> None:
    an_order("o-1", "alice")
    body = {"order_id": "o-1", "rating": 5, "body": BODY, **changes}

    response = world.request("POST", "/products/MUG/reviews", body, customer(world, "alice"))

    assert response.status_code == 400, response.json_body
    assert reviews_in_table() == []


def test_text_is_kept_as_text(world: Api) -> None:
    an_order("o-1", "alice")
    text = 'See <a href="https://evil.example">here</a> & <script>x</script>'

    response = review(world, "alice", "o-1", body=text)

    assert response.status_code == 201
    assert listed(world)[0]["body"] == text


def test_a_sixth_review_in_a_day_is_429_with_retry_after(world: Api) -> None:
    for n in range(6):
        an_order(f"o-{n}", "alice")
    for n in range(5):
        assert review(world, "alice", f"o-{n}").status_code == 201

    sixth = review(world, "alice", "o-5")

    assert sixth.status_code == 429
    assert sixth.json_body["error"] == "rate_limited"
    assert 0 < int(sixth.headers["Retry-After"]) <= 24 * 3600
    assert rating(world)["count"] == 5


def test_only_customers_write_reviews(world: Api) -> None:
    an_order("o-1", "alice")
    body = {"order_id": "o-1", "rating": 5, "body": BODY}
    assert world.request("POST", "/products/MUG/reviews", body).status_code == 401
    assert world.request("POST", "/products/MUG/reviews", body, world.ops).status_code == 403


# --- editing ------------------------------------------------------------------------------------


def test_editing_the_stars_moves_the_rating_exactly(world: Api) -> None:
    an_order("o-1", "alice")
    an_order("o-2", "bob")
    review_id = review(world, "alice", "o-1", rating=5).json_body["review_id"]
    assert review(world, "bob", "o-2", rating=4).status_code == 201

    body = {"order_id": "o-1", "rating": 1, "body": "Cracked after a week, sadly."}
    edited = world.request("PUT", f"/reviews/{review_id}", body, customer(world, "alice"))

    assert edited.status_code == 200, edited.json_body
    assert edited.json_body["rating"] == 1
    assert rating(world) == {
        "average": 2.5,
        "count": 2,
        "histogram": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 0},
    }


def test_only_the_author_edits_and_only_within_thirty_days(world: Api) -> None:
    order = an_order("o-1", "alice")
    written = review_service.write_review(
        "alice",
        "MUG",
        order_id=order.order_id,
        content=ReviewContent.of(rating=5, title=None, body=BODY),
        now=datetime.now(UTC) - timedelta(days=31),
    )
    body = {"order_id": "o-1", "rating": 3, "body": BODY}

    by_bob = world.request("PUT", f"/reviews/{written.review_id}", body, customer(world, "bob"))
    late = world.request("PUT", f"/reviews/{written.review_id}", body, customer(world, "alice"))

    assert by_bob.status_code == 404
    assert late.status_code == 409
    assert late.json_body["error"] == "edit_window_closed"
    assert rating(world)["histogram"]["5"] == 1


# --- reading ------------------------------------------------------------------------------------


def test_reviews_are_listed_in_each_sort_order_and_page_by_page(world: Api) -> None:
    stars = [3, 5, 1, 4, 2]
    for n, value in enumerate(stars):
        an_order(f"o-{n}", f"c-{n}")
        assert review(world, f"c-{n}", f"o-{n}", rating=value).status_code == 201
    third = review_id_for("o-2", "MUG")
    assert world.request("POST", f"/reviews/{third}/helpful", None, customer(world, "c-0"))

    recent = [r["rating"] for r in listed(world)]
    high = [r["rating"] for r in listed(world, query="?sort=rating_high")]
    low = [r["rating"] for r in listed(world, query="?sort=rating_low")]
    helpful = listed(world, query="?sort=helpful")
    only_fives = listed(world, query="?rating=5")

    assert recent == list(reversed(stars))
    assert high == [5, 4, 3, 2, 1] and low == [1, 2, 3, 4, 5]
    assert helpful[0]["review_id"] == third and helpful[0]["helpful"] == 1
    assert [r["rating"] for r in only_fives] == [5]

    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = world.request("GET", f"/products/MUG/reviews{query}").json_body
        seen += [r["review_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))


def test_a_cursor_from_another_listing_is_400(world: Api) -> None:
    for n in range(3):
        an_order(f"o-{n}", f"c-{n}")
        review(world, f"c-{n}", f"o-{n}")
    cursor = world.request("GET", "/products/MUG/reviews?limit=1").json_body["next_cursor"]

    response = world.request("GET", f"/products/MUG/reviews?sort=helpful&cursor={cursor}")

    assert response.status_code == 400


# --- moderation -----------------------------------------------------------------------------------


def test_hiding_takes_a_review_out_of_the_rating_and_publishing_puts_it_back(world: Api) -> None:
    an_order("o-1", "alice")
    an_order("o-2", "bob")
    spam = review(world, "alice", "o-1", rating=1).json_body["review_id"]
    review(world, "bob", "o-2", rating=5)

    hidden = world.request("POST", f"/reviews/{spam}/hide", {"reason": "spam"}, world.ops)
    again = world.request("POST", f"/reviews/{spam}/hide", {"reason": "spam"}, world.ops)

    assert hidden.status_code == 200 and hidden.json_body["status"] == "hidden"
    assert again.status_code == 200
    assert rating(world) == {
        "average": 5.0,
        "count": 1,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1},
    }
    assert [r["review_id"] for r in listed(world)] == [review_id_for("o-2", "MUG")]
    queue = world.request("GET", "/reviews?status=hidden", headers=world.ops).json_body
    assert [(r["review_id"], r["hidden_reason"]) for r in queue["items"]] == [(spam, "spam")]
    by_sku = world.request("GET", "/reviews?status=hidden&sku=TEA", headers=world.ops)
    assert by_sku.json_body["items"] == []

    published = world.request("POST", f"/reviews/{spam}/publish", None, world.ops)

    assert published.status_code == 200
    assert rating(world)["count"] == 2 and rating(world)["average"] == 3.0
    assert (
        world.request("GET", "/reviews?status=hidden", headers=world.ops).json_body["items"] == []
    )


def test_moderation_is_for_ops_only(world: Api) -> None:
    an_order("o-1", "alice")
    review_id = review(world, "alice", "o-1").json_body["review_id"]
    assert world.request("GET", "/reviews", headers=customer(world, "alice")).status_code == 403
    hide = world.request("POST", f"/reviews/{review_id}/hide", {"reason": "x"}, world.support)
    assert hide.status_code == 403
    assert rating(world)["count"] == 1


# --- replies and votes ------------------------------------------------------------------------


def test_one_merchant_reply_is_shown_edited_and_announced_once(world: Api) -> None:
    an_order("o-1", "alice")
    review_id = review(world, "alice", "o-1").json_body["review_id"]

    first = world.request(
        "POST", f"/reviews/{review_id}/reply", {"body": "Thank you!"}, world.support
    )
    second = world.request("POST", f"/reviews/{review_id}/reply", {"body": "Thanks!"}, world.ops)
    by_customer = world.request(
        "POST", f"/reviews/{review_id}/reply", {"body": "me too"}, customer(world, "bob")
    )

    assert first.status_code == 200 and second.status_code == 200
    assert by_customer.status_code == 403
    assert listed(world)[0]["reply"]["body"] == "Thanks!"
    events = [outbox.event_from_item(i) for i in items_with_prefix(outbox.OUTBOX_PREFIX)]
    replied = [e for e in events if e.type == "review.replied"]
    assert len(replied) == 1
    assert replied[0].payload["customer_id"] == "alice"
    assert replied[0].payload["order_id"] == "o-1"


def test_a_helpful_vote_counts_once_and_never_on_ones_own_review(world: Api) -> None:
    an_order("o-1", "alice")
    review_id = review(world, "alice", "o-1").json_body["review_id"]
    path = f"/reviews/{review_id}/helpful"

    first = world.request("POST", path, None, customer(world, "bob"))
    second = world.request("POST", path, None, customer(world, "bob"))
    other = world.request("POST", path, None, customer(world, "carol"))
    own = world.request("POST", path, None, customer(world, "alice"))

    assert (first.status_code, first.json_body) == (200, {"helpful": 1})
    assert (second.status_code, second.json_body) == (200, {"helpful": 1})
    assert other.json_body == {"helpful": 2}
    assert own.status_code == 403 and own.json_body["error"] == "own_review"
    assert listed(world)[0]["helpful"] == 2


def test_put_product_keeps_the_rating(world: Api) -> None:
    an_order("o-1", "alice")
    review(world, "alice", "o-1", rating=3)
    product = world.request("GET", "/products/MUG").json_body
    body = {
        "name": product["name"],
        "description": product["description"],
        "category": product["category"],
        "price": {"amount": 3100, "currency": "CNY"},
        "images": [],
        "active": True,
    }

    replaced = world.request("PUT", "/products/MUG", body, world.ops)

    assert replaced.status_code == 200, replaced.json_body
    assert replaced.json_body["rating"]["count"] == 1
    assert rating(world)["average"] == 3.0


# --- notifications --------------------------------------------------------------------------------


def _notify(event_type: str, order_id: str) -> None:
    from chalicelib.services import notifications

    for item in items_with_prefix(outbox.OUTBOX_PREFIX):
        event = outbox.event_from_item(item)
        if event.type == event_type and event.payload.get("order_id") == order_id:
            notifications.notify(
                notifications.NotificationEvent(event.event_id, event.type, event.payload)
            )
            return
    raise AssertionError(f"no {event_type} for {order_id}")


def test_the_author_hears_about_the_first_reply_in_the_inbox(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_me_api import configure_messaging, signed_in

    configure_messaging(monkeypatch)
    profile = {"email": "alice@example.com", "phone": None, "locale": "en", "name": "Alice"}
    verified = signed_in(world, "alice", email="alice@example.com", email_verified=True)
    assert world.request("GET", "/me", headers=verified).status_code == 200  # verified email
    assert world.request("PUT", "/me", profile, signed_in(world, "alice")).status_code == 200
    an_order("o-1", "alice")
    review_id = review(world, "alice", "o-1").json_body["review_id"]
    world.request("POST", f"/reviews/{review_id}/reply", {"body": "Thank you!"}, world.support)

    _notify("review.replied", "o-1")

    inbox = world.request("GET", "/me/notifications", headers=signed_in(world, "alice"))
    entries = [e for e in inbox.json_body["items"] if e["event_type"] == "review.replied"]
    assert [e["channel"] for e in entries] == ["email"]
    assert "replied to your review" in entries[0]["subject"]
    assert "Mug" in entries[0]["body"] and "Tea" not in entries[0]["body"]


def test_every_review_and_upload_route_is_in_the_published_spec(world: Api) -> None:
    paths = world.request("GET", "/openapi.json").json_body["paths"]

    assert set(paths["/products/{sku}/reviews"]) >= {"get", "post"}
    assert set(paths["/reviews/{review_id}"]) >= {"put"}
    for action in ("hide", "publish", "reply", "helpful"):
        assert "post" in paths["/reviews/{review_id}/" + action]
    assert "get" in paths["/reviews"] and "post" in paths["/uploads"]
    created = paths["/products/{sku}/reviews"]["post"]["responses"]
    assert {"201", "403", "409", "429"} <= set(created)


def test_the_delivered_message_links_each_delivered_line_to_its_review_page(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_me_api import STOREFRONT, configure_messaging, signed_in

    from chalicelib.services import notifications

    configure_messaging(monkeypatch)
    profile = {"email": "alice@example.com", "phone": None, "locale": "en", "name": "Alice"}
    verified = signed_in(world, "alice", email="alice@example.com", email_verified=True)
    assert world.request("GET", "/me", headers=verified).status_code == 200  # verified email
    assert world.request("PUT", "/me", profile, signed_in(world, "alice")).status_code == 200
    an_order("o-1", "alice", delivered=("MUG",), undelivered=("TEA",))
    payload = {"order_id": "o-1", "customer_id": "alice", "shipment_id": "o-1-1"}

    notifications.notify(notifications.NotificationEvent("evt_d1", "shipment.delivered", payload))

    inbox = world.request("GET", "/me/notifications", headers=signed_in(world, "alice"))
    [email] = [e for e in inbox.json_body["items"] if e["event_type"] == "shipment.delivered"]
    base = STOREFRONT.rstrip("/")
    assert f"{base}/orders/o-1/review?sku=MUG" in email["body"]
    assert "sku=TEA" not in email["body"]
