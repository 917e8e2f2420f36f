"""Stock per (SKU, warehouse) through the real app over moto: movements, ledger, alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from chalicelib.domain import inventory as rules
from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    ProductDetails,
    WarehouseDetails,
)
from chalicelib.domain.money import Money
from chalicelib.services import catalogue, stock
from chalicelib.services.stock_audit import audit_stock
from chalicelib.store import inventory, tables
from chalicelib.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from conftest import Api

SHANGHAI = Location(31.2304, 121.4737)
BEIJING = Location(39.9042, 116.4074)
GUANGZHOU = Location(23.1291, 113.2644)
STOCK_ITEM_PREFIXES = ("STOCK#", "LEDGER#", "OUTBOX#")


# --- a small world -------------------------------------------------------------------------


def add_product(sku: str, *, active: bool = True) -> None:
    details = ProductDetails(
        name=LocalizedText(zh_cn="测试商品", en="Test product"),
        category="electronics",
        price=Money(1000, "CNY"),
        active=active,
    )
    catalogue.put_product(sku, details)


def add_warehouse(warehouse_id: str, city: str, location: Location) -> None:
    catalogue.put_warehouse(
        warehouse_id, WarehouseDetails(name=f"{city} DC", city=city, location=location)
    )


@pytest.fixture
def world(api: Api) -> Api:
    """Two SKUs and three warehouses (Shanghai, Beijing, Guangzhou), no stock yet."""
    add_product("SKU-1")
    add_product("SKU-2")
    add_warehouse("wh-sha", "Shanghai", SHANGHAI)
    add_warehouse("wh-pek", "Beijing", BEIJING)
    add_warehouse("wh-can", "Guangzhou", GUANGZHOU)
    return api


def post(api: Api, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return api.request("POST", path, body, api.ops if headers is None else headers)


def receive(api: Api, sku: str, warehouse: str, quantity: int, **extra: Any) -> Any:
    return post(api, f"/stock/{sku}/{warehouse}/receive", {"quantity": quantity, **extra})


def adjust(api: Api, sku: str, warehouse: str, delta: int, reason: str = "count") -> Any:
    return post(api, f"/stock/{sku}/{warehouse}/adjust", {"delta": delta, "reason": reason})


def transfer(api: Api, sku: str, source: str, destination: str, quantity: int) -> Any:
    body = {"sku": sku, "from": source, "to": destination, "quantity": quantity}
    return post(api, "/transfers", body)


def level(api: Api, sku: str, warehouse: str) -> dict[str, Any]:
    body = api.request("GET", f"/stock/{sku}", headers=api.ops).json_body
    return next(row for row in body["warehouses"] if row["warehouse"] == warehouse)


def ledger(api: Api, sku: str, warehouse: str, **params: Any) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    path = f"/stock/{sku}/{warehouse}/ledger" + (f"?{query}" if query else "")
    return api.request("GET", path, headers=api.ops)


def stock_items() -> list[dict[str, Any]]:
    """Every stored level, ledger entry and outbox event (a test-only look at the table)."""
    found: list[dict[str, Any]] = []
    for page in tables.client().get_paginator("scan").paginate(TableName=tables.table_name()):
        found += [i for i in page["Items"] if i["pk"]["S"].startswith(STOCK_ITEM_PREFIXES)]
    return sorted(found, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def outbox_events(event_type: str) -> list[dict[str, Any]]:
    events = [tables.from_item(i) for i in stock_items() if i["pk"]["S"].startswith("OUTBOX#")]
    return sorted((e for e in events if e["type"] == event_type), key=lambda e: e["occurred_at"])


def assert_balanced() -> None:
    report = audit_stock()
    assert report.balanced, report.as_dict()["mismatches"]


# --- receive -------------------------------------------------------------------------------


def test_receiving_creates_the_level_and_answers_201_with_it(world: Api) -> None:
    response = receive(world, "SKU-1", "wh-sha", 10, note="PO-77")
    assert response.status_code == 201
    assert response.json_body == {
        "sku": "SKU-1",
        "warehouse": "wh-sha",
        "on_hand": 10,
        "reserved": 0,
        "available": 10,
        "low_stock_threshold": 0,
    }
    again = receive(world, "SKU-1", "wh-sha", 5)
    assert again.json_body["on_hand"] == 15
    assert level(world, "SKU-1", "wh-sha")["available"] == 15

    entries = ledger(world, "SKU-1", "wh-sha").json_body["items"]
    assert [(e["type"], e["quantity"], e["on_hand"]) for e in entries] == [
        ("received", 5, 15),
        ("received", 10, 10),
    ]
    assert entries[1]["note"] == "PO-77"
    assert entries[1]["actor"] == "ops-1"
    assert_balanced()


def test_sku_stock_lists_every_warehouse_and_the_total_available(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 7)
    receive(world, "SKU-1", "wh-pek", 3)
    body = world.request("GET", "/stock/SKU-1", headers=world.support).json_body
    assert body["sku"] == "SKU-1"
    assert body["total_available"] == 10
    assert {row["warehouse"]: row["available"] for row in body["warehouses"]} == {
        "wh-can": 0,
        "wh-pek": 3,
        "wh-sha": 7,
    }


def receive_on_another_worker(sku: str, warehouse: str, quantity: int) -> None:
    """Stock received through a worker whose warehouse list this one has not seen."""
    before = inventory.get_levels(sku, [warehouse], consistent=True)[warehouse]
    after, movement = rules.receive(before, quantity, at=datetime.now(UTC), actor="ops-2")
    uow = UnitOfWork()
    stock.record_movement(uow, before, after, movement, creates_level=True)
    uow.commit()


def test_a_warehouse_opened_on_another_worker_is_seen_by_stock_reads_and_orders(
    world: Api,
) -> None:
    # This worker caches the three warehouses; the fourth is added behind its back.
    assert (
        len(world.request("GET", "/stock/SKU-1", headers=world.support).json_body["warehouses"])
        == 3
    )
    add_warehouse("wh-sha-2", "Shanghai", SHANGHAI)
    receive_on_another_worker("SKU-1", "wh-sha-2", 2)

    body = world.request("GET", "/stock/SKU-1", headers=world.support).json_body
    assert {row["warehouse"]: row["on_hand"] for row in body["warehouses"]}["wh-sha-2"] == 2

    stock.forget_cached_warehouses()
    world.request("GET", "/products/SKU-2")  # warms this worker's cache, still without wh-sha-3
    add_warehouse("wh-sha-3", "Shanghai", SHANGHAI)
    receive_on_another_worker("SKU-2", "wh-sha-3", 1)
    order_id = place_order(world, "SKU-2", 1)
    order = world.request("GET", f"/orders/{order_id}", headers=world.customer).json_body
    assert [s["warehouse"] for s in order["shipments"]] == ["wh-sha-3"]
    assert level(world, "SKU-2", "wh-sha-3")["reserved"] == 1
    assert_balanced()


# --- adjust --------------------------------------------------------------------------------


def test_adjusting_down_within_available_is_201_with_the_reason_in_the_ledger(
    world: Api,
) -> None:
    receive(world, "SKU-1", "wh-sha", 10)
    response = adjust(world, "SKU-1", "wh-sha", -3, reason="damage")
    assert response.status_code == 201
    assert response.json_body["on_hand"] == 7
    newest = ledger(world, "SKU-1", "wh-sha").json_body["items"][0]
    assert (newest["type"], newest["quantity"], newest["reason"]) == ("adjusted", -3, "damage")
    assert adjust(world, "SKU-1", "wh-sha", 2, reason="found").json_body["on_hand"] == 9
    assert_balanced()


def test_adjusting_below_available_is_409_and_changes_nothing(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    before = stock_items()
    response = adjust(world, "SKU-1", "wh-sha", -6, reason="loss")
    assert response.status_code == 409
    assert response.json_body["error"] == "insufficient_stock"
    assert response.json_body["details"]["available"] == 5
    assert stock_items() == before


def test_adjustment_may_not_eat_into_reservations(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    place_order(world, "SKU-1", 4)
    before = stock_items()
    assert adjust(world, "SKU-1", "wh-sha", -2, reason="count").status_code == 409
    assert stock_items() == before
    assert adjust(world, "SKU-1", "wh-sha", -1, reason="count").json_body == {
        "sku": "SKU-1",
        "warehouse": "wh-sha",
        "on_hand": 4,
        "reserved": 4,
        "available": 0,
        "low_stock_threshold": 0,
    }
    assert_balanced()


def reserve_directly(sku: str, warehouse: str, quantity: int, *, order_id: str) -> None:
    """A reservation written straight to the store, with no order behind it."""
    before = inventory.get_levels(sku, [warehouse], consistent=True)[warehouse]
    after, movement = rules.reserve(
        before, quantity, order_id=order_id, at=datetime.now(UTC), actor="customer-1"
    )
    uow = UnitOfWork()
    stock.record_movement(uow, before, after, movement)
    uow.commit()


def place_order(api: Api, sku: str, quantity: int, city: str = "Shanghai") -> str:
    """A real order through the API: it reserves stock the way shoppers do."""
    body = {
        "lines": [{"sku": sku, "quantity": quantity}],
        "shipping_address": {
            "name": "Li Wei",
            "phone": "+8613800000000",
            "country": "CN",
            "region": city,
            "city": city,
            "line1": "1 Test Road",
            "postcode": "200000",
        },
    }
    response = api.request("POST", "/orders", body, api.customer)
    assert response.status_code == 201, response.json_body
    return str(response.json_body["order_id"])


# --- transfers -----------------------------------------------------------------------------


def test_transfer_moves_stock_between_warehouses_in_one_go(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 10)
    response = transfer(world, "SKU-1", "wh-sha", "wh-pek", 4)
    assert response.status_code == 201
    body = response.json_body
    assert body["transfer_id"].startswith("trf_")
    assert (body["from"]["warehouse"], body["from"]["on_hand"]) == ("wh-sha", 6)
    assert (body["to"]["warehouse"], body["to"]["on_hand"]) == ("wh-pek", 4)
    outgoing = ledger(world, "SKU-1", "wh-sha").json_body["items"][0]
    incoming = ledger(world, "SKU-1", "wh-pek").json_body["items"][0]
    assert (outgoing["type"], outgoing["reference"]) == ("transferred_out", body["transfer_id"])
    assert (incoming["type"], incoming["reference"]) == ("transferred_in", body["transfer_id"])
    assert_balanced()


def test_transfer_of_more_than_available_is_409_and_changes_neither_side(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 3)
    receive(world, "SKU-1", "wh-pek", 1)
    before = stock_items()
    response = transfer(world, "SKU-1", "wh-sha", "wh-pek", 4)
    assert response.status_code == 409
    assert response.json_body["error"] == "insufficient_stock"
    assert stock_items() == before


def test_transfer_whose_source_runs_short_at_write_time_changes_neither_side(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read said there was enough; the write's own guard refuses, so nothing lands."""
    receive(world, "SKU-1", "wh-sha", 3)
    receive(world, "SKU-1", "wh-pek", 1)
    before = stock_items()
    real_get_levels = inventory.get_levels

    def stale_levels(sku: str, warehouses: Any, **kwargs: Any) -> dict[str, Any]:
        levels = real_get_levels(sku, warehouses, **kwargs)
        return {
            wh: rules.StockLevel(sku, wh, on_hand=100) if wh == "wh-sha" else lv
            for wh, lv in levels.items()
        }

    monkeypatch.setattr(inventory, "get_levels", stale_levels)
    monkeypatch.setattr(stock, "_pause", lambda attempt: None)
    response = transfer(world, "SKU-1", "wh-sha", "wh-pek", 50)
    assert response.status_code == 409
    assert stock_items() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "SKU-1", "from": "wh-sha", "to": "wh-sha", "quantity": 1}, "to"),
        ({"sku": "SKU-1", "from": "wh-sha", "to": "wh-nowhere", "quantity": 1}, "to"),
        ({"sku": "SKU-1", "from": "wh-nowhere", "to": "wh-sha", "quantity": 1}, "from"),
        ({"sku": "SKU-1", "from": "wh-sha", "to": "wh-pek", "quantity": 0}, "quantity"),
        ({"sku": "SKU-1", "from": "wh-sha", "to": "wh-pek", "quantity": 1_000_001}, "quantity"),
        ({"sku": "SKU-1", "from_": "wh-sha", "to": "wh-pek", "quantity": 1}, "from"),
    ],
)
def test_invalid_transfer_is_400_naming_the_field_and_changes_nothing(
    world: Api, body: dict[str, Any], field: str
) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    before = stock_items()
    response = post(world, "/transfers", body)
    assert response.status_code == 400
    assert field in json.dumps(response.json_body["details"])
    assert stock_items() == before


def test_transfer_of_an_unknown_sku_is_400_unknown_sku(world: Api) -> None:
    before = stock_items()
    response = transfer(world, "NOPE", "wh-sha", "wh-pek", 1)
    assert response.status_code == 400
    assert response.json_body["error"] == "unknown_sku"
    assert response.json_body["details"] == [{"sku": "NOPE"}]
    assert stock_items() == before


# --- thresholds and stock.low --------------------------------------------------------------


def test_threshold_is_set_with_put_and_shown_on_the_level(world: Api) -> None:
    response = world.request(
        "PUT", "/stock/SKU-1/wh-sha/threshold", {"low_stock_threshold": 4}, world.ops
    )
    assert response.status_code == 200
    assert response.json_body["low_stock_threshold"] == 4
    assert level(world, "SKU-1", "wh-sha")["low_stock_threshold"] == 4
    # Not a movement: no ledger entry.
    assert ledger(world, "SKU-1", "wh-sha").json_body["items"] == []


def test_stock_low_is_written_once_for_each_crossing_of_the_threshold(world: Api) -> None:
    world.request("PUT", "/stock/SKU-1/wh-sha/threshold", {"low_stock_threshold": 5}, world.ops)
    receive(world, "SKU-1", "wh-sha", 10)
    adjust(world, "SKU-1", "wh-sha", -3)  # 7: still above
    assert outbox_events("stock.low") == []
    adjust(world, "SKU-1", "wh-sha", -2)  # 5: crosses (to the threshold counts)
    adjust(world, "SKU-1", "wh-sha", -1)  # 4: already low, no second alert
    assert len(outbox_events("stock.low")) == 1
    receive(world, "SKU-1", "wh-sha", 10)  # 14: re-armed
    transfer(world, "SKU-1", "wh-sha", "wh-pek", 12)  # 2: crosses again
    place_order(world, "SKU-1", 2)  # 0: already low

    events = outbox_events("stock.low")
    assert len(events) == 2
    assert events[0]["payload"] == {
        "sku": "SKU-1",
        "warehouse": "wh-sha",
        "on_hand": 5,
        "reserved": 0,
        "available": 5,
        "low_stock_threshold": 5,
        "movement": "adjusted",
        "reference": None,
    }
    assert events[1]["payload"]["movement"] == "transferred_out"
    assert events[1]["payload"]["available"] == 2
    assert events[1]["expires_ttl"] > datetime.now(UTC).timestamp()


def test_a_movement_that_leaves_available_above_the_threshold_raises_no_alert(
    world: Api,
) -> None:
    receive(world, "SKU-1", "wh-sha", 10)
    adjust(world, "SKU-1", "wh-sha", -9)  # threshold 0: available 1 is still above it
    assert outbox_events("stock.low") == []
    adjust(world, "SKU-1", "wh-sha", -1)  # 0: sold out is low at threshold 0
    assert len(outbox_events("stock.low")) == 1


# --- the ledger ----------------------------------------------------------------------------


def test_ledger_pages_newest_first_with_the_counters_each_movement_left(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 10)
    order_id = place_order(world, "SKU-1", 3)
    adjust(world, "SKU-1", "wh-sha", -2, reason="damage")
    transfer(world, "SKU-1", "wh-sha", "wh-pek", 1)
    receive(world, "SKU-1", "wh-sha", 4)

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = ledger(world, "SKU-1", "wh-sha", **params)
        assert response.status_code == 200
        pages.append(response.json_body["items"])
        cursor = response.json_body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    entries = [entry for page in pages for entry in page]
    assert [(e["type"], e["quantity"], e["on_hand"], e["reserved"]) for e in entries] == [
        ("received", 4, 11, 3),
        ("transferred_out", 1, 7, 3),
        ("adjusted", -2, 8, 3),
        ("reserved", 3, 10, 3),
        ("received", 10, 10, 0),
    ]
    assert entries[3]["reference"] == order_id
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)


@pytest.mark.parametrize("cursor", ["garbage", "eyJzIjoieCJ9", "%%%"])
def test_tampered_ledger_cursor_is_400_naming_the_cursor(world: Api, cursor: str) -> None:
    receive(world, "SKU-1", "wh-sha", 1)
    response = ledger(world, "SKU-1", "wh-sha", cursor=cursor)
    assert response.status_code == 400
    assert "cursor" in json.dumps(response.json_body["details"])


def test_ledger_cursor_from_another_level_is_refused(world: Api) -> None:
    for _ in range(3):
        receive(world, "SKU-1", "wh-sha", 1)
    cursor = ledger(world, "SKU-1", "wh-sha", limit=1).json_body["next_cursor"]
    assert cursor
    assert ledger(world, "SKU-1", "wh-pek", cursor=cursor).status_code == 400


def test_ledger_balances_after_a_mixed_sequence_of_movements(world: Api) -> None:
    moves = [
        receive(world, "SKU-1", "wh-sha", 20),
        receive(world, "SKU-2", "wh-can", 8),
        transfer(world, "SKU-1", "wh-sha", "wh-can", 5),
    ]
    place_order(world, "SKU-1", 4, city="Guangzhou")
    cancelled = place_order(world, "SKU-1", 1, city="Guangzhou")
    moves += [
        adjust(world, "SKU-1", "wh-sha", -15, reason="loss"),
        adjust(world, "SKU-2", "wh-can", 3, reason="found"),
        transfer(world, "SKU-2", "wh-can", "wh-pek", 11),
    ]
    assert [move.status_code for move in moves] == [201] * 6
    cancel = world.request("POST", f"/orders/{cancelled}/cancel", None, world.customer)
    assert cancel.status_code == 200, cancel.json_body
    assert level(world, "SKU-1", "wh-can")["reserved"] == 4

    report = audit_stock()
    assert report.balanced, report.as_dict()
    assert report.levels_checked == 4
    # 2 receipts, 2 transfers of 2 sides, 2 reservations, 2 adjustments, 1 release.
    assert report.ledger_entries == 11


def test_audit_reports_a_reservation_that_no_order_holds(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    reserve_directly("SKU-1", "wh-sha", 2, order_id="ord_nobody")
    report = audit_stock()
    assert [(m.check, m.stored, m.expected) for m in report.mismatches] == [
        ("reserved == open order reservations", 2, 0)
    ]


def test_audit_reports_a_level_that_disagrees_with_its_ledger(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    # Tamper with the counter behind the ledger's back.
    tables.client().update_item(
        TableName=tables.table_name(),
        Key=inventory.level_key("SKU-1", "wh-sha"),
        UpdateExpression="SET on_hand = :n, available = :n",
        ExpressionAttributeValues={":n": {"N": "6"}},
    )
    report = audit_stock()
    assert not report.balanced
    assert [(m.sku, m.warehouse, m.check, m.stored, m.expected) for m in report.mismatches] == [
        ("SKU-1", "wh-sha", "on_hand == ledger", 6, 5)
    ]


# --- 4xx: unknown things, bad input, who may call ------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/stock/NOPE/wh-sha/receive", {"quantity": 1}),
        ("/stock/SKU-1/wh-nowhere/receive", {"quantity": 1}),
        ("/stock/NOPE/wh-sha/adjust", {"delta": 1, "reason": "found"}),
        ("/stock/SKU-1/wh-nowhere/adjust", {"delta": 1, "reason": "found"}),
    ],
)
def test_movement_for_an_unknown_sku_or_warehouse_is_404_and_writes_nothing(
    world: Api, path: str, body: dict[str, Any]
) -> None:
    response = post(world, path, body)
    assert response.status_code == 404
    assert response.json_body["error"] == "not_found"
    assert stock_items() == []


def test_reads_and_threshold_of_unknown_things_are_404(world: Api) -> None:
    assert world.request("GET", "/stock/NOPE", headers=world.ops).status_code == 404
    assert ledger(world, "SKU-1", "wh-nowhere").status_code == 404
    response = world.request(
        "PUT", "/stock/NOPE/wh-sha/threshold", {"low_stock_threshold": 1}, world.ops
    )
    assert response.status_code == 404
    assert stock_items() == []


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("receive", {"quantity": 0}, "quantity"),
        ("receive", {"quantity": -1}, "quantity"),
        ("receive", {"quantity": 1_000_001}, "quantity"),
        ("receive", {"quantity": "5"}, "quantity"),
        ("receive", {"quantity": 1.5}, "quantity"),
        ("receive", {"quantity": 1, "colour": "red"}, "colour"),
        ("receive", {"quantity": 1, "note": "x" * 501}, "note"),
        ("adjust", {"delta": 0, "reason": "count"}, "body"),
        ("adjust", {"delta": -1_000_001, "reason": "count"}, "delta"),
        ("adjust", {"delta": 1, "reason": "theft"}, "reason"),
        ("adjust", {"delta": 1}, "reason"),
    ],
)
def test_invalid_movement_is_400_naming_the_field_and_changes_nothing(
    world: Api, action: str, body: dict[str, Any], field: str
) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    before = stock_items()
    response = post(world, f"/stock/SKU-1/wh-sha/{action}", body)
    assert response.status_code == 400
    assert response.json_body["error"] == "validation_error"
    assert field in json.dumps(response.json_body["details"])
    assert stock_items() == before


@pytest.mark.parametrize("raw", ["", "{", "[1]", "null"])
def test_malformed_body_is_400_and_changes_nothing(world: Api, raw: str) -> None:
    response = world.request("POST", "/stock/SKU-1/wh-sha/receive", raw, world.ops)
    assert response.status_code == 400
    assert stock_items() == []


@pytest.mark.parametrize("threshold", [-1, 1_000_001, "3", None])
def test_invalid_threshold_is_400_and_changes_nothing(world: Api, threshold: Any) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    before = stock_items()
    response = world.request(
        "PUT", "/stock/SKU-1/wh-sha/threshold", {"low_stock_threshold": threshold}, world.ops
    )
    assert response.status_code == 400
    assert stock_items() == before


def test_malformed_ids_in_the_path_are_400(world: Api) -> None:
    assert post(world, "/stock/bad%20sku/wh-sha/receive", {"quantity": 1}).status_code == 400
    assert stock_items() == []


def test_only_ops_may_move_stock_and_customers_may_not_read_it(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 5)
    before = stock_items()
    for headers in (world.customer, world.support):
        assert (
            post(world, "/stock/SKU-1/wh-sha/receive", {"quantity": 1}, headers).status_code == 403
        )
        body = {"delta": -1, "reason": "count"}
        assert post(world, "/stock/SKU-1/wh-sha/adjust", body, headers).status_code == 403
        body = {"sku": "SKU-1", "from": "wh-sha", "to": "wh-pek", "quantity": 1}
        assert post(world, "/transfers", body, headers).status_code == 403
        threshold = {"low_stock_threshold": 1}
        response = world.request("PUT", "/stock/SKU-1/wh-sha/threshold", threshold, headers)
        assert response.status_code == 403
    assert world.request("GET", "/stock/SKU-1", headers=world.customer).status_code == 403
    assert (
        world.request("GET", "/stock/SKU-1/wh-sha/ledger", headers=world.customer).status_code
        == 403
    )
    assert (
        world.request("GET", "/stock/SKU-1/wh-sha/ledger", headers=world.support).status_code == 200
    )
    assert world.request("GET", "/stock/SKU-1").status_code == 401
    assert post(world, "/stock/SKU-1/wh-sha/receive", {"quantity": 1}, {}).status_code == 401
    assert stock_items() == before


# --- availability for shoppers -------------------------------------------------------------


def test_availability_totals_every_warehouse_and_estimates_from_the_nearest_with_stock(
    world: Api,
) -> None:
    receive(world, "SKU-1", "wh-pek", 3)
    receive(world, "SKU-1", "wh-can", 2)
    # Chinese evening of 1 March is still 1 March in UTC: the date counts in China time.
    now = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 March in Shanghai
    near_beijing = stock.availability("SKU-1", Location(39.95, 116.30), now=now)
    assert near_beijing == {
        "in_stock": True,
        "available": 5,
        "nearest_city": "Beijing",
        "delivery_estimate": {"earliest": "2026-03-03", "latest": "2026-03-04"},
    }
    # Shanghai has none: Beijing (~1,070 km) is nearer than Guangzhou (~1,210 km).
    from_shanghai = stock.availability("SKU-1", SHANGHAI, now=now)
    assert from_shanghai["nearest_city"] == "Beijing"
    assert from_shanghai["delivery_estimate"] == {"earliest": "2026-03-05", "latest": "2026-03-07"}
    assert stock.availability("SKU-1") == {"in_stock": True, "available": 5}


def test_availability_of_a_sku_without_stock_is_out_of_stock_without_an_estimate(
    world: Api,
) -> None:
    assert stock.availability("SKU-2", SHANGHAI) == {"in_stock": False, "available": 0}


@pytest.mark.parametrize(
    ("distance_km", "days"),
    [(0, (1, 2)), (49.9, (1, 2)), (50, (2, 3)), (499, (2, 3)), (1499, (3, 5)), (4000, (4, 7))],
)
def test_delivery_window_grows_with_distance(distance_km: float, days: tuple[int, int]) -> None:
    today = datetime(2026, 3, 1).date()
    earliest, latest = stock.delivery_window(distance_km, today)
    assert ((earliest - today).days, (latest - today).days) == days


def test_stocking_only_new_levels_can_run_twice_without_changing_anything(world: Api) -> None:
    receive(world, "SKU-1", "wh-sha", 2)
    created = stock.stock_if_new([("SKU-1", "wh-sha", 50), ("SKU-1", "wh-pek", 7)])
    assert [(lv.warehouse, lv.on_hand) for lv in created] == [("wh-pek", 7)]
    before = stock_items()
    assert stock.stock_if_new([("SKU-1", "wh-sha", 50), ("SKU-1", "wh-pek", 7)]) == []
    assert stock_items() == before
    assert level(world, "SKU-1", "wh-sha")["on_hand"] == 2


def test_openapi_describes_the_stock_routes_with_their_models(world: Api) -> None:
    spec = world.request("GET", "/openapi.json").json_body
    transfer_op = spec["paths"]["/transfers"]["post"]
    assert transfer_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TransferRequest"
    }
    assert set(spec["components"]["schemas"]["TransferRequest"]["properties"]) == {
        "sku",
        "from",
        "to",
        "quantity",
        "note",
    }
    receive_op = spec["paths"]["/stock/{sku}/{warehouse}/receive"]["post"]
    assert receive_op["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LevelBody"
    }
    ledger_op = spec["paths"]["/stock/{sku}/{warehouse}/ledger"]["get"]
    assert {p["name"] for p in ledger_op["parameters"]} == {"sku", "warehouse", "cursor", "limit"}


# --- availability on the product page ------------------------------------------------------


def test_product_page_shows_availability_across_warehouses(world: Api) -> None:
    before = world.request("GET", "/products/SKU-1").json_body["availability"]
    assert before == {
        "in_stock": False,
        "available": 0,
        "nearest_city": None,
        "delivery_estimate": None,
    }
    receive(world, "SKU-1", "wh-pek", 3)
    receive(world, "SKU-1", "wh-can", 4)
    after = world.request("GET", "/products/SKU-1").json_body["availability"]
    assert (after["in_stock"], after["available"]) == (True, 7)


def test_product_page_near_a_shopper_names_the_nearest_city_with_stock(world: Api) -> None:
    receive(world, "SKU-1", "wh-pek", 3)
    receive(world, "SKU-1", "wh-can", 4)
    # Shanghai has no stock: Beijing (~1,070 km) is nearer than Guangzhou (~1,210 km).
    response = world.request("GET", f"/products/SKU-1?lat={SHANGHAI.lat}&lon={SHANGHAI.lon}")
    availability = response.json_body["availability"]
    assert availability["nearest_city"] == "Beijing"
    estimate = availability["delivery_estimate"]
    assert estimate["earliest"] <= estimate["latest"]


def test_product_page_with_only_a_latitude_is_400(world: Api) -> None:
    response = world.request("GET", "/products/SKU-1?lat=31.2")
    assert response.status_code == 400
    assert response.json_body["error"] == "validation_error"
