"""Reviews over real HTTP against the local stack: only delivered lines can be reviewed, the
product's rating moves at once, hiding takes a review out of it, and twenty customers
reviewing one product at the same moment leave an exact rating."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import requests
from test_fulfilment_e2e import ADDRESS, call, eventually

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

BUYERS = 20
WAREHOUSE = "wh-sha"
BODY = "Arrived quickly and works as described."


@dataclass(frozen=True)
class Purchase:
    shopper: dict[str, str]
    user_id: str
    order_id: str


@dataclass(frozen=True)
class World:
    ops: dict[str, str]
    first: str  # SKU every buyer received; buyer 0 reviews it
    crowd: str  # SKU every buyer received; all of them review it at once
    unshipped: str  # SKU of an order that was paid but never shipped
    purchases: list[Purchase]
    waiting: Purchase


def _product(stack: LocalStackUnderTest, ops: dict[str, str], name: str, units: int) -> str:
    sku = f"REV-{uuid.uuid4().hex[:10]}"
    product = {
        "name": {"zh-CN": name, "en": name},
        "category": "home",
        "price": {"amount": 1990, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{sku}", ops, product).status_code == 201
    received = call(stack, "POST", f"/stock/{sku}/{WAREHOUSE}/receive", ops, {"quantity": units})
    assert received.status_code == 201, received.text
    return sku


def _buy(stack: LocalStackUnderTest, skus: list[str]) -> Purchase:
    user_id = f"reviewer-{uuid.uuid4().hex[:8]}"
    shopper = stack.auth(user_id, "customers")
    lines = [{"sku": sku, "quantity": 1} for sku in skus]
    placed = call(stack, "POST", "/orders", shopper, {"lines": lines, "shipping_address": ADDRESS})
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    paid = call(
        stack,
        "POST",
        f"/orders/{order_id}/payments",
        {**shopper, "Idempotency-Key": uuid.uuid4().hex},
        {"method": "card", "payment_method": "pm_card_visa"},
    )
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded", paid.text
    return Purchase(shopper=shopper, user_id=user_id, order_id=order_id)


def _order(stack: LocalStackUnderTest, purchase: Purchase) -> dict[str, Any]:
    return call(stack, "GET", f"/orders/{purchase.order_id}", purchase.shopper).json()


@pytest.fixture(scope="module")
def world(stack: LocalStackUnderTest) -> World:
    ops = stack.auth("ops-reviews-e2e", "ops")
    first = _product(stack, ops, "保温杯", BUYERS + 1)
    crowd = _product(stack, ops, "茶叶罐", BUYERS + 1)
    unshipped = _product(stack, ops, "竹筷", 1)
    purchases = [_buy(stack, [first, crowd]) for _ in range(BUYERS)]
    waiting = _buy(stack, [unshipped])

    for purchase in purchases:
        for shipment in _order(stack, purchase)["shipments"]:
            path = f"/shipments/{shipment['shipment_id']}"
            # Picking works once order.paid has released the parcel to its warehouse.
            eventually(
                lambda path=path: call(stack, "POST", f"{path}/pick", ops).status_code == 200,
                timeout=120,
                what="the parcel released to its warehouse",
            )
            for step in ("pack", "ship"):
                moved = call(stack, "POST", f"{path}/{step}", ops)
                assert moved.status_code == 200, moved.text
    carrier = stack.data["emulators"]["carrier"]
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=120).ok

    def delivered() -> bool:
        return all(_order(stack, p)["status"] == "delivered" for p in purchases)

    eventually(delivered, timeout=120, what="every parcel delivered")
    return World(ops, first, crowd, unshipped, purchases, waiting)


def _review(stack: LocalStackUnderTest, purchase: Purchase, sku: str, stars: int) -> Any:
    body = {"order_id": purchase.order_id, "rating": stars, "body": BODY}
    return call(stack, "POST", f"/products/{sku}/reviews", purchase.shopper, body)


def _rating(stack: LocalStackUnderTest, sku: str) -> dict[str, Any]:
    return requests.get(stack.url(f"/products/{sku}"), timeout=30).json()["rating"]


def test_a_delivered_line_is_reviewed_and_the_rating_changes_at_once(
    stack: LocalStackUnderTest, world: World
) -> None:
    buyer = world.purchases[0]
    written = _review(stack, buyer, world.first, 4)

    assert written.status_code == 201, written.text
    assert written.json()["status"] == "published"
    assert _rating(stack, world.first) == {
        "average": 4.0,
        "count": 1,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
    }
    listed = requests.get(stack.url(f"/products/{world.first}/reviews"), timeout=30).json()
    assert [r["review_id"] for r in listed["items"]] == [written.json()["review_id"]]

    again = _review(stack, buyer, world.first, 1)

    assert again.status_code == 409 and again.json()["error"] == "already_reviewed"
    assert _rating(stack, world.first)["count"] == 1


def test_an_undelivered_or_unbought_product_cannot_be_reviewed(
    stack: LocalStackUnderTest, world: World
) -> None:
    undelivered = _review(stack, world.waiting, world.unshipped, 5)
    unbought = _review(stack, world.purchases[1], world.unshipped, 5)
    someone_elses = _review(stack, world.waiting, world.first, 5)

    for response in (undelivered, unbought):
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "not_a_verified_purchase"
    # Another customer's order: the same answer, nothing revealed.
    theirs = {"order_id": world.purchases[2].order_id, "rating": 5, "body": BODY}
    other = call(stack, "POST", f"/products/{world.first}/reviews", world.waiting.shopper, theirs)
    assert (other.status_code, other.json()["error"]) == (403, "not_a_verified_purchase")
    assert someone_elses.status_code == 403
    assert _rating(stack, world.unshipped)["count"] == 0


def test_ops_hide_a_review_and_the_rating_drops_it(
    stack: LocalStackUnderTest, world: World
) -> None:
    buyer = world.purchases[3]
    review_id = _review(stack, buyer, world.first, 1).json()["review_id"]
    before = _rating(stack, world.first)

    hidden = call(stack, "POST", f"/reviews/{review_id}/hide", world.ops, {"reason": "abuse"})

    assert hidden.status_code == 200, hidden.text
    after = _rating(stack, world.first)
    assert after["count"] == before["count"] - 1
    assert after["histogram"]["1"] == before["histogram"]["1"] - 1
    queue = call(stack, "GET", f"/reviews?status=hidden&sku={world.first}", world.ops).json()
    assert [r["review_id"] for r in queue["items"]] == [review_id]


def test_twenty_customers_reviewing_at_once_leave_an_exact_rating(
    stack: LocalStackUnderTest, world: World
) -> None:
    stars = [1 + n % 5 for n in range(BUYERS)]
    stars[0] = 2  # a total that does not divide evenly: 61 / 20 = 3.05 -> 3.1
    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        responses = list(
            pool.map(
                lambda pair: _review(stack, pair[0], world.crowd, pair[1]),
                zip(world.purchases, stars, strict=True),
            )
        )

    assert [r.status_code for r in responses] == [201] * BUYERS, [r.text for r in responses]
    rating = _rating(stack, world.crowd)
    assert rating["count"] == BUYERS
    assert sum(int(k) * v for k, v in rating["histogram"].items()) == sum(stars) == 61
    assert rating["average"] == 3.1
    assert rating["histogram"] == {str(s): stars.count(s) for s in range(1, 6)}
