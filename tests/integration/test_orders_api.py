"""Orders through the real app over moto: placing, idempotency, reading, listing, cancelling.

Every refused request is checked against a snapshot of the whole table: a 4xx must leave
stock levels, ledger, orders, idempotency records and outbox exactly as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    PostalAddress,
    ProductDetails,
    WarehouseDetails,
)
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus, ShipmentStatus
from chalicelib.services import catalogue, stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory, stock_ledger, tables
from chalicelib.store import orders as order_store
from chalicelib.store.unit_of_work import CancellationReason, TransactionCancelled, UnitOfWork

if TYPE_CHECKING:
    from conftest import Api

SHANGHAI = Location(31.2304, 121.4737)
HANGZHOU = Location(30.2741, 120.1551)
BEIJING = Location(39.9042, 116.4074)
PRICES = {"MUG": 2900, "TEA": 4550, "PEN": 800}


# --- a small world ---------------------------------------------------------------------------


def add_warehouse(warehouse_id: str, city: str, location: Location) -> None:
    """A warehouse with what a carrier needs to collect from it, as the demo ones have."""
    catalogue.put_warehouse(
        warehouse_id,
        WarehouseDetails(
            f"{city} DC",
            city,
            location,
            address=PostalAddress(region=city, city=city, line1="1 Depot Road", postcode="200000"),
            contact_name="Dock manager",
            phone="+8613900000000",
        ),
    )


def add_product(sku: str, price: int, *, active: bool = True) -> None:
    details = ProductDetails(
        name=LocalizedText(en=sku.title()),
        category="home",
        price=Money(price, "CNY"),
        active=active,
    )
    catalogue.put_product(sku, details)


def receive(sku: str, warehouse: str, quantity: int) -> None:
    stock.receive(sku, warehouse, quantity, actor="test")


def build_world() -> None:
    """Warehouses in Shanghai, Hangzhou and Beijing; MUG, TEA, PEN priced; nothing stocked."""
    stock.forget_cached_warehouses()
    add_warehouse("SH", "Shanghai", SHANGHAI)
    add_warehouse("HZ", "Hangzhou", HANGZHOU)
    add_warehouse("BJ", "Beijing", BEIJING)
    for sku, price in PRICES.items():
        add_product(sku, price)


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    yield api
    stock.forget_cached_warehouses()


def address(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "李雷",
        "phone": "+8613800000000",
        "country": "CN",
        "region": "上海",
        "city": "上海市",
        "line1": "人民大道 200 号",
        "postcode": "200003",
        **overrides,
    }


def order_body(lines: dict[str, int], **overrides: Any) -> dict[str, Any]:
    return {
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
        "shipping_address": address(),
        **overrides,
    }


def customer(api: Api, user_id: str = "customer-1") -> dict[str, str]:
    return api.token(user_id, "customers")


def place(
    api: Api,
    body: dict[str, Any],
    *,
    user: str = "customer-1",
    key: str | None = None,
) -> Any:
    headers = customer(api, user)
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.request("POST", "/orders", body, headers)


def levels(sku: str) -> dict[str, tuple[int, int, int]]:
    """(on_hand, reserved, available) per warehouse, for warehouses that have a level."""
    found = inventory.existing_levels([(sku, w) for w in ("SH", "HZ", "BJ")], consistent=True)
    return {lv.warehouse: (lv.on_hand, lv.reserved, lv.available) for lv in found}


def table_snapshot() -> list[tuple[str, str, str]]:
    """Every item in the table (a test-only Scan), to prove a request changed nothing."""
    items = []
    for page in (
        tables.client()
        .get_paginator("scan")
        .paginate(TableName=tables.table_name(), ConsistentRead=True)
    ):
        items += [
            (item["pk"]["S"], item["sk"]["S"], json.dumps(item, sort_keys=True, default=repr))
            for item in page["Items"]
        ]
    return sorted(items)


def items_with_prefix(prefix: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for pk, _, raw in table_snapshot() if pk.startswith(prefix)]


def outbox_events(event_type: str) -> list[dict[str, Any]]:
    return [
        tables.from_item(item)
        for item in items_with_prefix("OUTBOX#")
        if item["type"]["S"] == event_type
    ]


def ledger_types(sku: str, warehouse: str) -> list[str]:
    return [movement.type.value for movement in stock_ledger.iter_ledger(sku, warehouse)]


# --- placing ---------------------------------------------------------------------------------


def test_order_is_placed_from_the_nearest_warehouse_at_catalogue_prices(world: Api) -> None:
    receive("MUG", "SH", 10)
    receive("MUG", "BJ", 10)
    receive("TEA", "SH", 5)

    response = place(world, order_body({"MUG": 2, "TEA": 1}, note="leave at the door"))

    assert response.status_code == 201
    order = response.json_body
    assert response.headers["Location"] == f"/orders/{order['order_id']}"
    assert order["order_id"].startswith("ord_")
    assert order["status"] == "pending_payment"
    assert order["customer_id"] == "customer-1"
    assert order["lines"] == [
        {
            "sku": "MUG",
            "quantity": 2,
            "unit_price": {"amount": 2900, "currency": "CNY"},
            "line_total": {"amount": 5800, "currency": "CNY"},
            "allocations": [{"warehouse": "SH", "quantity": 2}],
        },
        {
            "sku": "TEA",
            "quantity": 1,
            "unit_price": {"amount": 4550, "currency": "CNY"},
            "line_total": {"amount": 4550, "currency": "CNY"},
            "allocations": [{"warehouse": "SH", "quantity": 1}],
        },
    ]
    assert [(s["warehouse"], s["status"]) for s in order["shipments"]] == [("SH", "pending")]
    assert order["shipments"][0]["lines"] == [
        {"sku": "MUG", "quantity": 2},
        {"sku": "TEA", "quantity": 1},
    ]
    # 103.50 is above the default free-shipping threshold of 99.00.
    assert order["subtotal"] == {"amount": 10350, "currency": "CNY"}
    assert order["shipping_fee"] == {"amount": 0, "currency": "CNY"}
    assert order["total"] == {"amount": 10350, "currency": "CNY"}
    created = datetime.fromisoformat(order["created_at"])
    assert (datetime.fromisoformat(order["expires_at"]) - created).total_seconds() == 15 * 60
    assert [(h["from"], h["to"]) for h in order["history"]] == [(None, "pending_payment")]

    assert levels("MUG") == {"SH": (10, 2, 8), "BJ": (10, 0, 10)}
    assert levels("TEA") == {"SH": (5, 1, 4)}
    assert ledger_types("MUG", "SH") == ["received", "reserved"]
    placed = outbox_events("order.placed")
    assert [event["payload"]["order_id"] for event in placed] == [order["order_id"]]


def test_shipping_fee_is_charged_per_shipment_below_the_free_threshold(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPPING_FLAT_FEE", "800")
    monkeypatch.setenv("SHIPPING_FREE_ABOVE", "50000")
    get_settings.cache_clear()
    receive("MUG", "SH", 1)
    receive("PEN", "BJ", 1)

    order = place(world, order_body({"MUG": 1, "PEN": 1})).json_body

    assert [s["warehouse"] for s in order["shipments"]] == ["SH", "BJ"]
    assert order["subtotal"]["amount"] == 3700
    assert order["shipping_fee"]["amount"] == 1600
    assert order["total"]["amount"] == 5300


def test_a_line_is_split_over_the_two_nearest_warehouses_that_have_it(world: Api) -> None:
    receive("MUG", "SH", 3)
    receive("MUG", "HZ", 4)
    receive("MUG", "BJ", 5)  # no warehouse has all 6

    order = place(world, order_body({"MUG": 6})).json_body

    assert order["lines"][0]["allocations"] == [
        {"warehouse": "SH", "quantity": 3},
        {"warehouse": "HZ", "quantity": 3},
    ]
    assert [(s["warehouse"], s["lines"]) for s in order["shipments"]] == [
        ("SH", [{"sku": "MUG", "quantity": 3}]),
        ("HZ", [{"sku": "MUG", "quantity": 3}]),
    ]
    assert levels("MUG") == {"SH": (3, 3, 0), "HZ": (4, 3, 1), "BJ": (5, 0, 5)}


def test_without_a_location_the_city_decides_which_warehouse_is_nearest(world: Api) -> None:
    receive("TEA", "SH", 5)
    receive("TEA", "BJ", 5)

    in_beijing = order_body({"TEA": 1}, shipping_address=address(region="北京", city="北京市"))
    order = place(world, in_beijing).json_body

    assert order["lines"][0]["allocations"] == [{"warehouse": "BJ", "quantity": 1}]


def test_an_explicit_location_wins_over_the_city(world: Api) -> None:
    receive("TEA", "SH", 5)
    receive("TEA", "BJ", 5)

    near_beijing = address(location={"lat": 39.9, "lon": 116.4})  # city still says Shanghai
    order = place(world, order_body({"TEA": 1}, shipping_address=near_beijing)).json_body

    assert order["lines"][0]["allocations"] == [{"warehouse": "BJ", "quantity": 1}]


def test_taking_a_level_to_its_threshold_records_a_low_stock_event(world: Api) -> None:
    receive("MUG", "SH", 5)
    stock.set_threshold("MUG", "SH", 2)

    place(world, order_body({"MUG": 2}))
    assert outbox_events("stock.low") == []
    place(world, order_body({"MUG": 1}))

    (low,) = outbox_events("stock.low")
    assert low["payload"]["sku"] == "MUG"
    assert low["payload"]["warehouse"] == "SH"
    assert low["payload"]["available"] == 2


def test_the_largest_order_fits_one_transaction_even_when_every_level_runs_low(
    world: Api,
) -> None:
    # 20 lines, each split over two warehouses that both sell out (threshold 0): 40 stock
    # movements with their ledger entries leave no room in 100 actions for 40 alerts too.
    skus = [f"BULK-{n:02d}" for n in range(20)]
    for sku in skus:
        add_product(sku, 100)
        receive(sku, "SH", 1)
        receive(sku, "HZ", 1)

    response = place(world, order_body(dict.fromkeys(skus, 2)))

    assert response.status_code == 201, response.json_body
    assert all(len(line["allocations"]) == 2 for line in response.json_body["lines"])
    low = {(e["payload"]["sku"], e["payload"]["warehouse"]) for e in outbox_events("stock.low")}
    assert low == {(sku, warehouse) for sku in skus for warehouse in ("SH", "HZ")}


# --- refused requests change nothing -----------------------------------------------------------


def test_unknown_sku_is_400_naming_it_and_changes_nothing(world: Api) -> None:
    receive("MUG", "SH", 5)
    before = table_snapshot()

    response = place(world, order_body({"MUG": 1, "NOPE": 1}))

    assert response.status_code == 400
    assert response.json_body["error"] == "unknown_sku"
    assert response.json_body["details"] == [{"sku": "NOPE"}]
    assert "NOPE" in response.json_body["message"]
    assert table_snapshot() == before


def test_inactive_sku_is_400_unknown_sku_and_changes_nothing(world: Api) -> None:
    add_product("OLD", 100, active=False)
    receive("OLD", "SH", 5)
    before = table_snapshot()

    response = place(world, order_body({"OLD": 1}))

    assert response.status_code == 400
    assert response.json_body["error"] == "unknown_sku"
    assert response.json_body["details"] == [{"sku": "OLD"}]
    assert table_snapshot() == before


def test_not_enough_stock_is_409_with_what_is_available_and_changes_nothing(world: Api) -> None:
    receive("MUG", "SH", 2)
    receive("MUG", "BJ", 1)
    receive("TEA", "SH", 9)
    before = table_snapshot()

    response = place(world, order_body({"MUG": 4, "TEA": 1}))

    assert response.status_code == 409
    assert response.json_body["error"] == "out_of_stock"
    assert response.json_body["details"] == [{"sku": "MUG", "requested": 4, "available": 3}]
    assert table_snapshot() == before


def test_stock_beyond_two_warehouses_per_line_is_out_of_stock(world: Api) -> None:
    for warehouse in ("SH", "HZ", "BJ"):
        receive("MUG", warehouse, 1)
    before = table_snapshot()

    response = place(world, order_body({"MUG": 3}))

    assert response.status_code == 409
    assert response.json_body["details"] == [{"sku": "MUG", "requested": 3, "available": 3}]
    assert table_snapshot() == before


def _lines(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{n}", "quantity": 1} for n in range(count)]


INVALID_BODIES = {
    "no lines": {"lines": [], "shipping_address": address()},
    "21 lines": {"lines": _lines(21), "shipping_address": address()},
    "quantity 0": order_body({"MUG": 0}),
    "quantity 1000": order_body({"MUG": 1000}),
    "quantity as text": {
        "lines": [{"sku": "MUG", "quantity": "1"}],
        "shipping_address": address(),
    },
    "sku twice": {
        "lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}],
        "shipping_address": address(),
    },
    "bad sku": order_body({"MUG/../x": 1}),
    "no address": {"lines": [{"sku": "MUG", "quantity": 1}]},
    "address without city": order_body(
        {"MUG": 1}, shipping_address={k: v for k, v in address().items() if k != "city"}
    ),
    "blank name": order_body({"MUG": 1}, shipping_address=address(name="   ")),
    "name too long": order_body({"MUG": 1}, shipping_address=address(name="x" * 101)),
    "bad phone": order_body({"MUG": 1}, shipping_address=address(phone="call me")),
    "bad country": order_body({"MUG": 1}, shipping_address=address(country="China")),
    "latitude 91": order_body(
        {"MUG": 1}, shipping_address=address(location={"lat": 91, "lon": 121})
    ),
    "longitude -181": order_body(
        {"MUG": 1}, shipping_address=address(location={"lat": 31, "lon": -181})
    ),
    "unknown field": {**order_body({"MUG": 1}), "discount": 100},
    "unknown address field": order_body({"MUG": 1}, shipping_address=address(floor=3)),
    "client price": {
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": {"amount": 1, "currency": "CNY"}}],
        "shipping_address": address(),
    },
    "note too long": order_body({"MUG": 1}, note="x" * 501),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_order_is_400_and_changes_nothing(world: Api, body: dict[str, Any]) -> None:
    receive("MUG", "SH", 5)
    before = table_snapshot()

    response = place(world, body)

    assert response.status_code == 400, response.json_body
    assert response.json_body["error"] == "validation_error"
    assert table_snapshot() == before


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]"], ids=["empty", "not json", "a list"])
def test_a_body_that_is_not_an_order_is_400_and_changes_nothing(world: Api, raw: bytes) -> None:
    receive("MUG", "SH", 5)
    before = table_snapshot()

    response = world.request("POST", "/orders", raw, customer(world))

    assert response.status_code == 400
    assert table_snapshot() == before


def test_placing_needs_a_customer_token(world: Api) -> None:
    receive("MUG", "SH", 5)
    before = table_snapshot()

    anonymous = world.request("POST", "/orders", order_body({"MUG": 1}))
    as_ops = world.request("POST", "/orders", order_body({"MUG": 1}), world.ops)

    assert anonymous.status_code == 401
    assert as_ops.status_code == 403
    assert as_ops.json_body["error"] == "forbidden"
    assert table_snapshot() == before


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ"])
def test_a_malformed_idempotency_key_is_400(world: Api, key: str) -> None:
    receive("MUG", "SH", 5)
    before = table_snapshot()

    response = place(world, order_body({"MUG": 1}), key=key)

    assert response.status_code == 400
    assert response.json_body["details"][0]["field"] == "Idempotency-Key"
    assert table_snapshot() == before


# --- idempotency -------------------------------------------------------------------------------


def test_same_key_and_body_replays_the_original_order_without_a_second_one(world: Api) -> None:
    receive("MUG", "SH", 5)
    body = order_body({"MUG": 2})

    first = place(world, body, key="key-1")
    after_first = table_snapshot()
    # The same JSON with its keys in another order is the same request.
    again = place(world, json.loads(json.dumps(body)) | {}, key="key-1")

    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json_body == first.json_body
    assert table_snapshot() == after_first
    assert levels("MUG") == {"SH": (5, 2, 3)}


def test_the_replay_is_the_original_response_even_after_the_order_changed(world: Api) -> None:
    receive("MUG", "SH", 5)
    body = order_body({"MUG": 1})
    first = place(world, body, key="key-1")
    world.request("POST", f"/orders/{first.json_body['order_id']}/cancel", None, customer(world))

    again = place(world, body, key="key-1")

    assert again.status_code == 201
    assert again.json_body == first.json_body
    assert again.json_body["status"] == "pending_payment"


def test_same_key_with_another_body_is_422_and_changes_nothing(world: Api) -> None:
    receive("MUG", "SH", 5)
    place(world, order_body({"MUG": 1}), key="key-1")
    before = table_snapshot()

    response = place(world, order_body({"MUG": 2}), key="key-1")

    assert response.status_code == 422
    assert response.json_body["error"] == "idempotency_key_reused"
    assert table_snapshot() == before


def test_keys_belong_to_one_customer(world: Api) -> None:
    receive("MUG", "SH", 5)
    body = order_body({"MUG": 1})

    mine = place(world, body, user="customer-1", key="shared-key")
    theirs = place(world, body, user="customer-2", key="shared-key")

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json_body["order_id"] != mine.json_body["order_id"]
    assert levels("MUG") == {"SH": (5, 2, 3)}


def test_a_request_that_failed_does_not_use_up_its_key(world: Api) -> None:
    body = order_body({"MUG": 1})
    refused = place(world, body, key="key-1")
    receive("MUG", "SH", 1)

    accepted = place(world, body, key="key-1")

    assert refused.status_code == 409
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted.headers


# --- reading -----------------------------------------------------------------------------------


def test_owner_and_staff_read_an_order_and_everyone_else_gets_404(world: Api) -> None:
    receive("MUG", "SH", 5)
    placed = place(world, order_body({"MUG": 1})).json_body
    path = f"/orders/{placed['order_id']}"

    assert world.request("GET", path, headers=customer(world)).json_body == placed
    assert world.request("GET", path, headers=world.support).status_code == 200
    assert world.request("GET", path, headers=world.ops).status_code == 200
    someone_else = world.request("GET", path, headers=customer(world, "customer-2"))
    assert someone_else.status_code == 404
    assert someone_else.json_body["error"] == "not_found"
    finance = world.request("GET", path, headers=world.token("fin-1", "finance"))
    assert finance.status_code == 404
    assert world.request("GET", "/orders/ord_missing", headers=world.ops).status_code == 404
    assert world.request("GET", path).status_code == 401


def list_orders(api: Api, headers: dict[str, str], **params: Any) -> Any:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return api.request("GET", f"/orders?{query}" if query else "/orders", headers=headers)


def order_ids(response: Any) -> list[str]:
    return [order["order_id"] for order in response.json_body["items"]]


def test_customers_list_their_own_orders_newest_first_a_page_at_a_time(world: Api) -> None:
    receive("MUG", "SH", 20)
    mine = [place(world, order_body({"MUG": 1})).json_body["order_id"] for _ in range(5)]
    place(world, order_body({"MUG": 1}), user="customer-2")

    first = list_orders(world, customer(world), limit=2)
    second = list_orders(world, customer(world), limit=2, cursor=first.json_body["next_cursor"])
    third = list_orders(world, customer(world), limit=2, cursor=second.json_body["next_cursor"])

    assert order_ids(first) + order_ids(second) + order_ids(third) == mine[::-1]
    assert third.json_body["next_cursor"] is None


def test_a_customer_may_not_list_someone_elses_orders(world: Api) -> None:
    own = list_orders(world, customer(world), customer="customer-1")
    other = list_orders(world, customer(world), customer="customer-2")

    assert own.status_code == 200
    assert other.status_code == 403


def test_staff_list_everyones_orders_by_status_and_customer(world: Api) -> None:
    receive("MUG", "SH", 20)
    a1 = place(world, order_body({"MUG": 1}), user="a").json_body["order_id"]
    b1 = place(world, order_body({"MUG": 1}), user="b").json_body["order_id"]
    a2 = place(world, order_body({"MUG": 1}), user="a").json_body["order_id"]
    world.request("POST", f"/orders/{b1}/cancel", None, customer(world, "b"))

    everyone = list_orders(world, world.support)
    pending = list_orders(world, world.ops, status="pending_payment")
    cancelled = list_orders(world, world.ops, status="cancelled")
    of_a = list_orders(world, world.ops, customer="a")
    a_cancelled = list_orders(world, world.ops, customer="a", status="cancelled")

    assert order_ids(everyone) == [a2, b1, a1]
    assert order_ids(pending) == [a2, a1]
    assert order_ids(cancelled) == [b1]
    assert order_ids(of_a) == [a2, a1]
    assert order_ids(a_cancelled) == []


def test_staff_pages_merge_every_status_without_gaps_or_repeats(world: Api) -> None:
    receive("MUG", "SH", 20)
    placed = [place(world, order_body({"MUG": 1})).json_body["order_id"] for _ in range(5)]
    for order_id in placed[1::2]:
        world.request("POST", f"/orders/{order_id}/cancel", None, customer(world))

    seen: list[str] = []
    cursor = None
    while True:
        page = list_orders(world, world.ops, limit=2, cursor=cursor)
        seen += order_ids(page)
        cursor = page.json_body["next_cursor"]
        if cursor is None:
            break

    assert seen == placed[::-1]


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}],
    ids=["unknown status", "limit 0", "limit 101", "bad cursor"],
)
def test_bad_list_parameters_are_400(world: Api, params: dict[str, Any]) -> None:
    assert list_orders(world, world.ops, **params).status_code == 400


def test_a_cursor_from_another_listing_is_400(world: Api) -> None:
    receive("MUG", "SH", 5)
    for _ in range(2):
        place(world, order_body({"MUG": 1}))
    cursor = list_orders(world, customer(world), limit=1).json_body["next_cursor"]

    response = list_orders(world, customer(world, "customer-2"), limit=1, cursor=cursor)

    assert response.status_code == 400


# --- cancelling ----------------------------------------------------------------------------------


def cancel(api: Api, order_id: str, headers: dict[str, str], body: Any = None) -> Any:
    return api.request("POST", f"/orders/{order_id}/cancel", body, headers)


def test_owner_cancels_and_the_stock_is_released_with_the_event_and_history(world: Api) -> None:
    receive("MUG", "SH", 3)
    receive("MUG", "HZ", 3)
    order_id = place(world, order_body({"MUG": 5})).json_body["order_id"]
    assert levels("MUG") == {"SH": (3, 3, 0), "HZ": (3, 2, 1)}

    response = cancel(world, order_id, customer(world), {"reason": "changed my mind"})

    assert response.status_code == 200
    assert response.json_body["status"] == "cancelled"
    assert {s["status"] for s in response.json_body["shipments"]} == {"cancelled"}
    assert [(h["from"], h["to"]) for h in response.json_body["history"]][-1] == (
        "pending_payment",
        "cancelled",
    )
    assert response.json_body["history"][-1]["reason"] == "changed my mind"
    assert levels("MUG") == {"SH": (3, 0, 3), "HZ": (3, 0, 3)}
    assert ledger_types("MUG", "HZ") == ["received", "reserved", "released"]
    (event,) = outbox_events("order.cancelled")
    assert event["payload"]["order_id"] == order_id
    fetched = world.request("GET", f"/orders/{order_id}", headers=customer(world))
    assert fetched.json_body == response.json_body


def test_cancelling_twice_is_a_no_op(world: Api) -> None:
    receive("MUG", "SH", 3)
    order_id = place(world, order_body({"MUG": 1})).json_body["order_id"]
    first = cancel(world, order_id, customer(world))
    after_first = table_snapshot()

    again = cancel(world, order_id, customer(world))

    assert again.status_code == 200
    assert again.json_body == first.json_body
    assert table_snapshot() == after_first


def test_only_the_owner_or_ops_may_cancel(world: Api) -> None:
    receive("MUG", "SH", 3)
    order_id = place(world, order_body({"MUG": 1})).json_body["order_id"]
    before = table_snapshot()

    other_customer = cancel(world, order_id, customer(world, "customer-2"))
    support = cancel(world, order_id, world.support)

    assert other_customer.status_code == 404
    assert support.status_code == 403
    assert table_snapshot() == before
    by_ops = cancel(world, order_id, world.ops)
    assert by_ops.status_code == 200
    assert by_ops.json_body["history"][-1]["actor"] == "ops-1"


def _advance_directly(order_id: str, *steps: OrderStatus | ShipmentStatus) -> None:
    """Move an order along its state machine through the store, as later use cases will
    (payment and fulfilment are not part of this API yet)."""
    for step in steps:
        order = order_store.get_order(order_id, consistent=True)
        assert order is not None
        at = datetime.now(UTC)
        if isinstance(step, ShipmentStatus):
            changed = order.advance_shipment(
                order.shipments[0].shipment_id, to=step, at=at, actor="ops-1"
            )
        else:
            changed = order.transition(to=step, at=at, actor="ops-1")
        uow = UnitOfWork()
        order_store.add_order_change(uow, changed, previous=order)
        uow.commit()


def test_nothing_can_be_cancelled_once_a_parcel_has_shipped(world: Api) -> None:
    receive("MUG", "SH", 3)
    receive("TEA", "BJ", 3)
    order_id = place(world, order_body({"MUG": 1, "TEA": 1})).json_body["order_id"]
    _advance_directly(
        order_id,
        OrderStatus.PAID,
        ShipmentStatus.PICKING,
        ShipmentStatus.PACKED,
        ShipmentStatus.SHIPPED,
    )
    before = table_snapshot()

    by_owner = cancel(world, order_id, customer(world))
    by_ops = cancel(world, order_id, world.ops)

    assert by_owner.status_code == by_ops.status_code == 409
    assert by_owner.json_body["error"] == "invalid_transition"
    assert table_snapshot() == before


def test_a_paid_order_can_still_be_cancelled_before_shipping(world: Api) -> None:
    receive("MUG", "SH", 3)
    order_id = place(world, order_body({"MUG": 2})).json_body["order_id"]
    _advance_directly(order_id, OrderStatus.PAID)

    response = cancel(world, order_id, customer(world))

    assert response.status_code == 200
    assert levels("MUG") == {"SH": (3, 0, 3)}


def test_cancelling_an_unknown_order_is_404(world: Api) -> None:
    assert cancel(world, "ord_missing", world.ops).status_code == 404


def test_a_cancel_body_with_unknown_fields_is_400(world: Api) -> None:
    receive("MUG", "SH", 3)
    order_id = place(world, order_body({"MUG": 1})).json_body["order_id"]
    before = table_snapshot()

    response = cancel(world, order_id, customer(world), {"refund": True})

    assert response.status_code == 400
    assert table_snapshot() == before


# --- the published contract ----------------------------------------------------------------------


def test_openapi_describes_the_order_routes_with_what_they_really_send(world: Api) -> None:
    from jsonschema import Draft202012Validator

    spec = world.request("GET", "/openapi.json").json_body

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        )

    receive("MUG", "SH", 5)
    placed = place(world, order_body({"MUG": 1}))
    validator("OrderBody").validate(placed.json_body)
    validator("OrderPage").validate(list_orders(world, customer(world)).json_body)
    assert validator("PlaceOrderIn").is_valid(order_body({"MUG": 1}))
    assert not validator("PlaceOrderIn").is_valid({**order_body({"MUG": 1}), "discount": 1})
    post = spec["paths"]["/orders"]["post"]
    assert {"201", "400", "401", "403", "409", "422"} <= set(post["responses"])
    assert set(spec["paths"]["/orders/{order_id}/cancel"]["post"]["responses"]) >= {"404", "409"}


# --- contention is not shortage ---------------------------------------------------------------


def _refuse_every_commit(monkeypatch: pytest.MonkeyPatch, code: str) -> list[int]:
    """Every transaction is cancelled for contention (``code`` on each action), as DynamoDB
    does under a flash sale; returns a list counting the attempts."""
    attempts: list[int] = []

    def contended(self: UnitOfWork, **_: Any) -> None:
        attempts.append(1)
        raise TransactionCancelled([CancellationReason(tag=t, code=code) for t in self.tags])

    monkeypatch.setattr(UnitOfWork, "commit", contended)
    return attempts


@pytest.mark.parametrize("code", ["TransactionConflict", "ThrottlingError"])
def test_a_store_contended_for_the_whole_budget_is_503_busy_with_retry_after_never_409(
    world: Api, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    receive("MUG", "SH", 5)
    monkeypatch.setenv("PLACEMENT_BUDGET_SECONDS", "0.3")
    get_settings.cache_clear()
    before = table_snapshot()
    attempts = _refuse_every_commit(monkeypatch, code)

    response = place(world, order_body({"MUG": 1}))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json_body["error"] == "busy"
    assert len(attempts) > 1  # retried with backoff inside the budget
    assert table_snapshot() == before
    assert levels("MUG") == {"SH": (5, 0, 5)}


def test_a_throttled_read_past_botocores_retries_is_busy_not_out_of_stock(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive("MUG", "SH", 5)
    monkeypatch.setenv("PLACEMENT_BUDGET_SECONDS", "0.2")
    get_settings.cache_clear()

    def throttled(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "BatchGetItem"
        )

    monkeypatch.setattr(order_store, "read_for_placement", throttled)

    response = place(world, order_body({"MUG": 1}))

    assert response.status_code == 503
    assert response.json_body["error"] == "busy"


def test_when_contention_ends_with_the_stock_gone_the_fresh_read_answers_409(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive("MUG", "SH", 1)
    real_commit = UnitOfWork.commit
    throttled_once: list[int] = []

    def throttled_then_sold_out(self: UnitOfWork, **kwargs: Any) -> None:
        if not throttled_once:
            throttled_once.append(1)
            # Meanwhile the last unit goes (this commit is the real one).
            stock.adjust("MUG", "SH", -1, reason="damage", actor="test")
            raise TransactionCancelled(
                [CancellationReason(tag=t, code="ThrottlingError") for t in self.tags]
            )
        real_commit(self, **kwargs)

    monkeypatch.setattr(UnitOfWork, "commit", throttled_then_sold_out)

    response = place(world, order_body({"MUG": 1}))

    assert response.status_code == 409
    assert response.json_body["error"] == "out_of_stock"
    assert response.json_body["details"] == [{"sku": "MUG", "requested": 1, "available": 0}]
