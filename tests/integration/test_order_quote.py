"""POST /orders/quote: the order POST /orders would place, priced and allocated, nothing held."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from test_orders_api import (
    address,
    build_world,
    levels,
    order_body,
    place,
    receive,
    table_snapshot,
)

from chalicelib.services import stock
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from conftest import Api


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    yield api
    stock.forget_cached_warehouses()


def quote(api: Api, body: Any, *, user: str = "customer-1") -> Any:
    return api.request("POST", "/orders/quote", body, api.token(user, "customers"))


def test_quote_prices_allocates_and_estimates_delivery_without_writing(world: Api) -> None:
    receive("MUG", "SH", 5)
    receive("TEA", "BJ", 5)
    before = table_snapshot()

    response = quote(world, order_body({"MUG": 2, "TEA": 1}))

    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert set(body) == {"lines", "shipments", "subtotal", "shipping_fee", "total"}
    mug, tea = body["lines"]
    assert mug["unit_price"] == {"amount": 2900, "currency": "CNY"}
    assert mug["allocations"] == [{"warehouse": "SH", "quantity": 2}]
    assert tea["allocations"] == [{"warehouse": "BJ", "quantity": 1}]
    assert body["subtotal"] == {"amount": 2 * 2900 + 4550, "currency": "CNY"}
    fee = get_settings().shipping_flat_fee
    free_above = get_settings().shipping_free_above
    expected_fee = 0 if free_above is not None and free_above <= 10350 else 2 * fee
    assert body["shipping_fee"]["amount"] == expected_fee
    assert body["total"]["amount"] == 10350 + expected_fee
    by_warehouse = {s["warehouse"]: s for s in body["shipments"]}
    assert by_warehouse["SH"]["city"] == "Shanghai" and by_warehouse["BJ"]["city"] == "Beijing"
    near = by_warehouse["SH"]["estimated_delivery"]
    far = by_warehouse["BJ"]["estimated_delivery"]
    assert date.fromisoformat(near["earliest"]) <= date.fromisoformat(far["earliest"])
    assert date.fromisoformat(far["latest"]) - date.today() < timedelta(days=10)
    # Nothing reserved, nothing written.
    assert table_snapshot() == before
    assert levels("MUG")["SH"] == (5, 0, 5)


def test_quote_totals_match_the_order_then_placed(world: Api) -> None:
    receive("MUG", "SH", 5)
    receive("PEN", "HZ", 5)
    body = order_body({"MUG": 1, "PEN": 3})

    quoted = quote(world, body).json_body
    placed = place(world, body).json_body

    for field in ("lines", "subtotal", "shipping_fee", "total"):
        assert quoted[field] == placed[field]
    assert [s["warehouse"] for s in quoted["shipments"]] == [
        s["warehouse"] for s in placed["shipments"]
    ]


def test_quote_shortage_is_409_out_of_stock_exactly_as_placing(world: Api) -> None:
    receive("MUG", "SH", 2)
    receive("MUG", "BJ", 1)
    body = order_body({"MUG": 4})
    before = table_snapshot()

    quoted = quote(world, body)
    placed = place(world, body)

    assert quoted.status_code == placed.status_code == 409
    assert quoted.json_body == placed.json_body
    assert quoted.json_body["details"] == [{"sku": "MUG", "requested": 4, "available": 3}]
    assert table_snapshot() == before


def test_quote_for_an_unknown_place_has_no_delivery_estimate(world: Api) -> None:
    receive("MUG", "SH", 1)
    body = order_body({"MUG": 1}, shipping_address=address(city="Atlantis", region="Nowhere"))

    response = quote(world, body)

    assert response.status_code == 200
    assert response.json_body["shipments"] == [
        {"warehouse": "SH", "city": "Shanghai", "estimated_delivery": None}
    ]


def test_quote_refuses_unknown_skus_and_bad_bodies(world: Api) -> None:
    unknown = quote(world, order_body({"NOPE": 1}))
    assert unknown.status_code == 400 and unknown.json_body["error"] == "unknown_sku"

    malformed = quote(world, {"lines": []})
    assert malformed.status_code == 400
    assert malformed.json_body["error"] == "validation_error"


def test_quote_is_for_customers(world: Api) -> None:
    staff = world.request("POST", "/orders/quote", order_body({"MUG": 1}), world.ops)

    assert staff.status_code == 403
