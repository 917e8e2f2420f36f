"""Sharded stock levels (flash sales) through the real app over moto: the shards route,
reservations on one shard and their release to it, rebalancing, merging back, the ledger
balancing per level, and low stock decided from the summed shards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from chalicelib.domain import inventory as rules
from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    PostalAddress,
    ProductDetails,
    WarehouseDetails,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.money import Money
from chalicelib.domain.payments import Payment
from chalicelib.services import catalogue, low_stock, payments, stock
from chalicelib.services.stock_audit import audit_stock
from chalicelib.store import inventory, stock_ledger, stock_shards, tables
from chalicelib.store import low_stock as low_stock_store
from chalicelib.store import orders as order_store
from chalicelib.store import payments as payment_store
from chalicelib.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Api

SHANGHAI = Location(31.2304, 121.4737)


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    """One warehouse (SH), another with nothing in it (BJ), and the flash-sale SKU."""
    stock.forget_cached_warehouses()
    for warehouse, city in (("SH", "Shanghai"), ("BJ", "Beijing")):
        catalogue.put_warehouse(
            warehouse,
            WarehouseDetails(
                f"{city} DC",
                city,
                SHANGHAI,
                address=PostalAddress(
                    region=city, city=city, line1="1 Depot Rd", postcode="200000"
                ),
                contact_name="Dock manager",
                phone="+8613900000000",
            ),
        )
    catalogue.put_product(
        "DROP",
        ProductDetails(name=LocalizedText(en="Drop"), category="home", price=Money(9900, "CNY")),
    )
    yield api
    stock.forget_cached_warehouses()


def put_shards(api: Api, body: Any, sku: str = "DROP", warehouse: str = "SH") -> Any:
    return api.request("PUT", f"/stock/{sku}/{warehouse}/shards", body, api.ops)


def level() -> StockLevel:
    (found,) = inventory.existing_levels([("DROP", "SH")], consistent=True)
    return found


def shard_available() -> list[int]:
    return [shard.available for shard in level().shards]


def place(api: Api, quantity: int, user: str) -> Any:
    body = {
        "lines": [{"sku": "DROP", "quantity": quantity}],
        "shipping_address": {
            "name": "李雷",
            "phone": "+8613800000000",
            "country": "CN",
            "region": "上海",
            "city": "上海市",
            "line1": "人民大道 200 号",
            "postcode": "200003",
        },
    }
    return api.request("POST", "/orders", body, api.token(user, "customers"))


def cancel(api: Api, order_id: str, user: str) -> Any:
    return api.request("POST", f"/orders/{order_id}/cancel", None, api.token(user, "customers"))


def assert_balanced() -> None:
    report = audit_stock()
    assert report.balanced, report.as_dict()["mismatches"]


def level_item() -> dict[str, Any]:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=inventory.level_key("DROP", "SH"), ConsistentRead=True
    )
    return response["Item"]


# --- the route ---------------------------------------------------------------------------------


def test_sharding_a_level_answers_it_with_its_shards_and_spreads_its_stock(world: Api) -> None:
    stock.receive("DROP", "SH", 100, actor="ops-1")

    response = put_shards(world, {"shards": 4})

    assert response.status_code == 200
    assert response.json_body == {
        "sku": "DROP",
        "warehouse": "SH",
        "shards": 4,
        "on_hand": 100,
        "reserved": 0,
        "available": 100,
        "low_stock_threshold": 0,
    }
    assert shard_available() == [25, 25, 25, 25]
    assert_balanced()


@pytest.mark.parametrize("value", [0, 33, -1, "4", 2.5, True, None])
def test_a_shard_count_out_of_range_or_not_an_integer_is_400_and_writes_nothing(
    world: Api, value: Any
) -> None:
    stock.receive("DROP", "SH", 10, actor="ops-1")

    response = put_shards(world, {"shards": value})

    assert response.status_code == 400
    assert set(response.json_body) == {"error", "message", "details"}
    assert not level().is_sharded
    assert "shard_slots" not in level_item()


def test_a_missing_shard_count_is_400(world: Api) -> None:
    stock.receive("DROP", "SH", 10, actor="ops-1")
    assert put_shards(world, {}).status_code == 400


def test_an_unknown_warehouse_is_404_warehouse_not_found(world: Api) -> None:
    response = put_shards(world, {"shards": 4}, warehouse="NOPE")
    assert response.status_code == 404
    assert response.json_body["error"] == "warehouse_not_found"


def test_a_sku_never_stocked_in_the_warehouse_is_404_stock_level_not_found(world: Api) -> None:
    stock.receive("DROP", "SH", 10, actor="ops-1")
    response = put_shards(world, {"shards": 4}, warehouse="BJ")
    assert response.status_code == 404
    assert response.json_body["error"] == "stock_level_not_found"


def test_only_ops_may_shard_a_level(world: Api) -> None:
    stock.receive("DROP", "SH", 10, actor="ops-1")
    response = world.request(
        "PUT", "/stock/DROP/SH/shards", {"shards": 4}, world.token("c-1", "customers")
    )
    assert response.status_code == 403
    assert not level().is_sharded


# --- one level, however many shards ---------------------------------------------------------------


def test_a_receipt_is_spread_over_the_shards_and_readers_see_one_level(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})

    stock.receive("DROP", "SH", 10, actor="ops-1")

    assert shard_available() == [5, 5, 4, 4]
    body = world.request("GET", "/stock/DROP", None, world.ops).json_body
    (sh,) = [row for row in body["warehouses"] if row["warehouse"] == "SH"]
    assert (sh["on_hand"], sh["reserved"], sh["available"]) == (18, 0, 18)
    assert stock.stock_of("DROP").total_available == 18
    assert_balanced()


def test_an_order_reserves_on_one_shard_and_a_cancel_releases_to_that_shard(world: Api) -> None:
    stock.receive("DROP", "SH", 40, actor="ops-1")
    put_shards(world, {"shards": 4})

    placed = place(world, 3, "c-1")

    assert placed.status_code == 201
    order = order_store.get_order(placed.json_body["order_id"], consistent=True)
    assert order is not None
    (held,) = order.allocations
    shards = level().shards
    assert shards[held.shard].reserved == 3
    assert sum(shard.reserved for shard in shards) == 3
    assert (level().on_hand, level().reserved) == (40, 3)
    assert "shard" not in placed.json_body["lines"][0]["allocations"][0]

    assert cancel(world, order.order_id, "c-1").status_code == 200
    assert [shard.reserved for shard in level().shards] == [0, 0, 0, 0]
    assert level().available == 40
    assert_balanced()


def test_orders_spread_over_the_shards_and_sell_exactly_the_stock(world: Api) -> None:
    stock.receive("DROP", "SH", 12, actor="ops-1")
    put_shards(world, {"shards": 4})

    answers = [place(world, 1, f"c-{n}").status_code for n in range(14)]

    assert answers.count(201) == 12
    assert answers[12:] == [409, 409]
    assert (level().on_hand, level().reserved, level().available) == (12, 12, 0)
    assert_balanced()


def test_an_order_bigger_than_any_shard_gathers_stock_on_one_shard_first(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})
    assert shard_available() == [2, 2, 2, 2]

    placed = place(world, 5, "c-1")

    assert placed.status_code == 201
    assert sorted(shard.reserved for shard in level().shards) == [0, 0, 0, 5]
    assert (level().on_hand, level().reserved) == (8, 5)
    assert_balanced()


def test_an_adjustment_down_takes_from_a_shard_that_covers_it(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})

    after = stock.adjust("DROP", "SH", -3, reason="damage", actor="ops-1")

    assert after.on_hand == 5
    assert level().on_hand == 5
    assert_balanced()


def test_a_rebalance_moves_stock_between_shards_with_ledger_entries_and_keeps_the_level(
    world: Api,
) -> None:
    stock.receive("DROP", "SH", 20, actor="ops-1")
    put_shards(world, {"shards": 2})
    for n in range(6):
        place(world, 1, f"c-{n}")
    before = level()

    put_shards(world, {"shards": 4})

    after = level()
    assert (after.on_hand, after.reserved) == (before.on_hand, before.reserved)
    assert sorted(shard.available for shard in after.shards) == [3, 3, 4, 4]
    types = [movement.type.value for movement in stock_ledger.iter_ledger("DROP", "SH")]
    assert "rebalanced_out" in types and "rebalanced_in" in types
    assert types.count("rebalanced_out") == types.count("rebalanced_in")
    assert_balanced()


def test_merging_back_waits_for_reservations_on_dropped_shards_then_unshards(world: Api) -> None:
    stock.receive("DROP", "SH", 40, actor="ops-1")
    put_shards(world, {"shards": 4})
    orders = [place(world, 2, f"c-{n}").json_body["order_id"] for n in range(6)]
    held_off_zero = any(shard.reserved for shard in level().shards[1:])

    merged = put_shards(world, {"shards": 1})

    assert merged.status_code == 200
    assert merged.json_body["shards"] == 1
    assert (merged.json_body["on_hand"], merged.json_body["reserved"]) == (40, 12)
    assert level().shards[0].available == 28
    assert level().is_sharded is held_off_zero  # dropped shards still hold reservations
    assert_balanced()

    for n, order_id in enumerate(orders):
        assert cancel(world, order_id, f"c-{n}").status_code == 200
    put_shards(world, {"shards": 1})

    assert not level().is_sharded
    assert "shard_slots" not in level_item()
    assert (level().on_hand, level().reserved) == (40, 0)
    # Plain again: a movement is guarded exactly as before sharding.
    stock.receive("DROP", "SH", 1, actor="ops-1")
    assert level().on_hand == 41
    assert_balanced()


def test_resharding_between_placements_loses_nothing(world: Api) -> None:
    stock.receive("DROP", "SH", 30, actor="ops-1")
    sold = 0
    for n, count in enumerate([4, 16, 1, 8, 2, 32, 1]):
        put_shards(world, {"shards": count})
        for k in range(3):
            response = place(world, 1, f"c-{n}-{k}")
            assert response.status_code == 201
            sold += 1
        assert (level().on_hand, level().reserved) == (30, sold)
    assert_balanced()


def test_paying_commits_the_reservation_on_its_shard(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})
    order_id = place(world, 2, "c-1").json_body["order_id"]
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    at = datetime.now(UTC)
    payment = Payment.start(
        payment_id=sortable_id("pay_", at),
        order_id=order_id,
        customer_id=order.customer_id,
        method="card",
        amount=order.total,
        at=at,
    )
    uow = UnitOfWork()
    payment_store.add_new_payment(uow, payment)
    uow.commit()

    payments.capture(payment.payment_id, order.total, provider_payment_id=f"p-{order_id}")

    paid = order_store.get_order(order_id, consistent=True)
    assert paid is not None and paid.status.value == "paid"
    (held,) = paid.allocations
    committed = [
        movement
        for movement in stock_ledger.iter_ledger("DROP", "SH")
        if movement.type.value == "committed"
    ]
    assert [movement.reference for movement in committed] == [order_id]
    assert level().shards[held.shard].reserved == 2
    assert_balanced()


# --- low stock ------------------------------------------------------------------------------------


def test_low_stock_on_a_sharded_level_is_seen_once_from_the_summed_shards(world: Api) -> None:
    stock.receive("DROP", "SH", 12, actor="ops-1")
    stock.set_threshold("DROP", "SH", 5)
    put_shards(world, {"shards": 4})
    for n in range(6):
        assert place(world, 1, f"c-{n}").status_code == 201
    assert stock.sync_low_stock("DROP", "SH") == []  # 6 left: not low
    place(world, 1, "c-6")  # 5 left: low

    (event,) = stock.sync_low_stock("DROP", "SH")

    assert event.type == stock.STOCK_LOW
    assert event.payload["available"] == 5
    assert stock.sync_low_stock("DROP", "SH") == []  # the same crossing is not seen twice
    low = [lv for page in low_stock_store.low_levels() for lv in page]
    assert [(lv.sku, lv.available) for lv in low] == [("DROP", 5)]
    opened = low_stock.reconcile_level("DROP", "SH").opened
    assert opened is not None and opened.available == 5
    assert low_stock.reconcile_level("DROP", "SH").opened is None

    stock.receive("DROP", "SH", 10, actor="ops-1")
    (recovered,) = stock.sync_low_stock("DROP", "SH")
    assert recovered.type == stock.STOCK_RECOVERED
    assert [lv for page in low_stock_store.low_levels() for lv in page] == []


def test_a_sharded_movement_writes_no_in_transaction_low_stock_event(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    stock.set_threshold("DROP", "SH", 5)
    put_shards(world, {"shards": 4})

    stock.adjust("DROP", "SH", -2, reason="damage", actor="ops-1")

    outbox_types = [
        raw["type"]["S"]
        for raw in tables.client().scan(TableName=tables.table_name())["Items"]
        if raw["pk"]["S"].startswith("OUTBOX#")
    ]
    assert "stock.low" not in outbox_types


def test_a_stream_record_of_a_shard_names_its_level(world: Api) -> None:
    image = {
        "sku": {"S": "DROP"},
        "warehouse": {"S": "SH"},
        "available": {"N": "4"},
    }
    record = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": inventory.shard_key("DROP", "SH", 3),
            "NewImage": image,
            "OldImage": {**image, "available": {"N": "5"}},
        },
    }
    assert stock_shards.sharded_level_changed(record) == ("DROP", "SH")
    plain = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": inventory.level_key("DROP", "SH"),
            "NewImage": image,
            "OldImage": {**image, "available": {"N": "5"}},
        },
    }
    assert stock_shards.sharded_level_changed(plain) is None


def test_an_exact_read_of_a_sharded_level_is_one_snapshot_of_every_shard(world: Api) -> None:
    stock.receive("DROP", "SH", 9, actor="ops-1")
    assert stock_shards.exact_level("DROP", "SH") == level()  # unsharded: the level item
    put_shards(world, {"shards": 3})
    place(world, 2, "c-1")

    exact = stock_shards.exact_level("DROP", "SH")

    assert exact == level()
    assert exact is not None and (exact.on_hand, exact.reserved, len(exact.shards)) == (9, 2, 3)
    assert stock_shards.exact_level("DROP", "BJ") is None


def test_the_ledger_of_a_sharded_level_reads_as_one_ledger_newest_first(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})
    place(world, 2, "c-1")
    place(world, 1, "c-2")

    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = world.request("GET", f"/stock/DROP/SH/ledger{query}", None, world.ops).json_body
        entries.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(entries) == len(list(stock_ledger.iter_ledger("DROP", "SH")))
    assert [entry["at"] for entry in entries] == sorted(
        (entry["at"] for entry in entries), reverse=True
    )
    assert (entries[0]["on_hand"], entries[0]["reserved"]) == (8, 3)
    assert (entries[-1]["type"], entries[-1]["on_hand"], entries[-1]["reserved"]) == (
        "received",
        8,
        0,
    )
    assert [entry["type"] for entry in entries[:2]] == ["reserved", "reserved"]


def test_a_shard_that_ran_dry_is_refilled_after_the_write(world: Api) -> None:
    stock.receive("DROP", "SH", 16, actor="ops-1")
    put_shards(world, {"shards": 4})
    stock.adjust("DROP", "SH", -4, reason="damage", actor="ops-1")  # empties one shard
    assert sorted(shard_available()) == [0, 4, 4, 4]

    stock.sync_low_stock("DROP", "SH")  # what the stream consumer runs after the write

    assert sorted(shard_available()) == [3, 3, 3, 3]
    assert_balanced()


def test_a_sharded_level_running_out_and_back_is_told_to_analytics_once(world: Api) -> None:
    stock.receive("DROP", "SH", 2, actor="ops-1")
    put_shards(world, {"shards": 2})
    place(world, 1, "c-1")
    assert stock.sync_low_stock("DROP", "SH") == []  # 1 left (threshold 0)
    place(world, 1, "c-2")

    types = [event.type for event in stock.sync_low_stock("DROP", "SH")]

    assert types == ["stock.low", "stock.out"]
    assert stock.sync_low_stock("DROP", "SH") == []
    stock.receive("DROP", "SH", 5, actor="ops-1")
    assert sorted(e.type for e in stock.sync_low_stock("DROP", "SH")) == [
        "stock.recovered",
        "stock.restocked",
    ]


def test_a_level_sharded_while_sold_out_is_not_told_to_analytics_again(world: Api) -> None:
    stock.receive("DROP", "SH", 1, actor="ops-1")
    place(world, 1, "c-1")
    put_shards(world, {"shards": 4})

    assert [e.type for e in stock.sync_low_stock("DROP", "SH")] == []
    put_shards(world, {"shards": 1})
    assert "sold_out" not in level_item()


def test_a_customer_return_to_a_sharded_level_goes_to_one_shard(world: Api) -> None:
    stock.receive("DROP", "SH", 8, actor="ops-1")
    put_shards(world, {"shards": 4})
    before = level()
    after, movement = rules.return_to_stock(
        before, 3, reference="asr_1", at=datetime.now(UTC), actor="ops-1"
    )
    uow = UnitOfWork()
    stock.record_movement(uow, before, after, movement)
    uow.commit()

    assert sorted(shard_available()) == [2, 2, 2, 5]
    assert level().on_hand == 11
    assert_balanced()
