"""Shipping a packed parcel through the API against the local carrier's real wire formats:
Kuaidi100 e-waybills at home, EasyPost abroad, AfterShip as a tracker, and what happens
when a warehouse cannot send or a provider is down or says no."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chalicelib.adapters import alerts
from chalicelib.domain.catalogue import (
    LocalizedText,
    Location,
    PostalAddress,
    ProductDetails,
    WarehouseDetails,
)
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus
from chalicelib.services import catalogue, fulfilment, stock
from chalicelib.services.stock_audit import audit_stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory
from chalicelib.store import orders as order_store
from chalicelib.store import shipments as shipment_store
from chalicelib.store.unit_of_work import UnitOfWork
from infra.local import warehouse as warehouse_simulator
from infra.local.emulators.carrier import CarrierEmulator, journeys

if TYPE_CHECKING:
    from conftest import Api

SHANGHAI = Location(31.2304, 121.4737)
APP_URL = "http://127.0.0.1:9"
SENDER = {
    "address": PostalAddress("上海市", "上海市", "浦东新区张江路 88 号", "201203"),
    "contact_name": "王磊",
    "phone": "13800138001",
}
HOME = {
    "name": "王芳",
    "phone": "+8613700000000",
    "country": "CN",
    "region": "江苏",
    "city": "南京市",
    "line1": "中山路 1 号",
    "postcode": "210000",
}
ABROAD = {
    "name": "Ann Lee",
    "phone": "+14155550100",
    "country": "US",
    "region": "CA",
    "city": "San Francisco",
    "line1": "1 Main St",
    "postcode": "94105",
}


@dataclass
class World:
    api: Api
    emulator: CarrierEmulator
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def parcel(self, number: str) -> dict[str, Any]:
        return self.emulator.parcel(number)


@pytest.fixture
def world(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Nothing listens at APP_URL: the tests post pushes to the app themselves.
    emulator = CarrierEmulator(tmp_path, step_seconds=0, webhook_url=APP_URL)
    emulator.start()
    for name, value in emulator.app_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PUBLIC_API_URL", APP_URL)
    get_settings.cache_clear()
    state = World(api=api, emulator=emulator)

    def capture(subject: str, details: dict[str, Any], *, kind: str) -> bool:
        state.alerts.append({"subject": subject, "kind": kind, **details})
        return True

    monkeypatch.setattr(alerts, "publish", capture)
    catalogue.put_product(
        "MUG",
        ProductDetails(name=LocalizedText(en="Mug"), category="home", price=Money(12800, "CNY")),
    )
    yield state
    emulator.stop()
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def add_warehouse(**sender: Any) -> None:
    details = WarehouseDetails("Shanghai DC", "Shanghai", SHANGHAI, **sender)
    catalogue.put_warehouse("SH", details)
    stock.receive("MUG", "SH", 5, actor="test")


def packed_shipment(world: World, address: dict[str, str] = HOME) -> tuple[str, str]:
    """A paid order of one mug from SH, picked and packed: (order id, shipment id)."""
    body = {"lines": [{"sku": "MUG", "quantity": 1}], "shipping_address": address}
    placed = world.api.request("POST", "/orders", body, world.api.customer)
    assert placed.status_code == 201, placed.json_body
    order_id = placed.json_body["order_id"]
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    paid = order.transition(to=OrderStatus.PAID, at=datetime.now(UTC), actor="psp")
    uow = UnitOfWork()
    order_store.add_order_change(uow, paid, previous=order)
    uow.commit()
    (shipment_id,) = fulfilment.release_paid_order(order_id)
    for step in ("pick", "pack"):
        moved = world.api.request("POST", f"/shipments/{shipment_id}/{step}", None, world.api.ops)
        assert moved.status_code == 200, moved.json_body
    return order_id, shipment_id


def ship(world: World, shipment_id: str) -> Any:
    return world.api.request("POST", f"/shipments/{shipment_id}/ship", None, world.api.ops)


def on_hand(sku: str = "MUG", warehouse: str = "SH") -> int:
    level = inventory.get_levels_many([(sku, warehouse)], consistent=True)[(sku, warehouse)]
    return level.on_hand


def tracking(world: World, order_id: str) -> dict[str, Any]:
    response = world.api.request("GET", f"/orders/{order_id}/tracking", None, world.api.ops)
    assert response.status_code == 200, response.json_body
    (shipment,) = response.json_body["shipments"]
    return shipment


def test_a_domestic_parcel_gets_a_kuaidi100_e_waybill_and_a_push_subscription(world):
    add_warehouse(**SENDER)
    order_id, shipment_id = packed_shipment(world)

    shipped = ship(world, shipment_id)

    assert shipped.status_code == 200, shipped.json_body
    body = shipped.json_body
    assert (body["status"], body["carrier"]) == ("shipped", "shunfeng")
    assert (body["booking_provider"], body["tracking_provider"]) == ("kuaidi100", "kuaidi100")
    assert body["label_url"] and body["tracking_number"].startswith("SF")
    parcel = world.parcel(body["tracking_number"])
    assert parcel["shipment_id"] == shipment_id and parcel["booked_by"] == "kuaidi100"
    assert parcel["callback_url"] == f"{APP_URL}/webhooks/carriers/kuaidi100"
    page = tracking(world, order_id)
    assert page["tracking_number"] == body["tracking_number"]
    assert (page["booking_provider"], page["tracking_provider"]) == ("kuaidi100", "kuaidi100")
    assert on_hand() == 4


def test_a_parcel_abroad_is_booked_and_tracked_through_easypost(world):
    add_warehouse(**SENDER)
    order_id, shipment_id = packed_shipment(world, ABROAD)

    shipped = ship(world, shipment_id)

    assert shipped.status_code == 200, shipped.json_body
    body = shipped.json_body
    assert (body["carrier"], body["booking_provider"]) == ("dhl", "easypost")
    assert body["tracking_provider"] == "easypost"
    assert world.parcel(body["tracking_number"])["booked_by"] == "easypost"
    assert tracking(world, order_id)["booking_provider"] == "easypost"
    # The tracker's events move the parcel.
    parcel = world.emulator._parcels[body["tracking_number"]]
    while parcel.script:
        world.emulator._record(parcel, parcel.script.pop(0), journeys.after(parcel.events))
    event, headers = world.emulator.easypost_push(parcel)
    pushed = world.api.request("POST", "/webhooks/carriers/easypost", event, headers)
    assert pushed.status_code == 200, pushed.json_body
    assert tracking(world, order_id)["tracking_status"] == "delivered"


def test_a_carrier_tracked_by_aftership_is_registered_there(world, monkeypatch):
    configure(monkeypatch, CARRIER_CODE="yunda", CARRIER_ROUTES="yunda=kuaidi100/aftership")
    add_warehouse(**SENDER)
    _, shipment_id = packed_shipment(world)

    shipped = ship(world, shipment_id)

    assert shipped.status_code == 200, shipped.json_body
    body = shipped.json_body
    assert (body["booking_provider"], body["tracking_provider"]) == ("kuaidi100", "aftership")
    parcel = world.parcel(body["tracking_number"])
    assert parcel["format"] == "aftership" and parcel["subscribed"] is True


def test_a_warehouse_without_sender_details_keeps_its_parcel_packed_and_tells_ops(world):
    add_warehouse(address=SENDER["address"])  # no contact, no phone
    order_id, shipment_id = packed_shipment(world)

    refused = ship(world, shipment_id)
    again = ship(world, shipment_id)

    assert refused.status_code == 409, refused.json_body
    assert refused.json_body["error"] == "warehouse_incomplete"
    assert refused.json_body["details"]["missing"] == ["contact_name", "phone"]
    assert again.status_code == 409
    assert tracking(world, order_id)["status"] == "packed" and on_hand() == 5
    (alert,) = world.alerts  # once, not once per attempt
    assert alert["missing"] == ["contact_name", "phone"] and alert["shipment_id"] == shipment_id
    assert world.emulator.parcels() == []

    # Ops complete the warehouse; the booking schedule ships the parcel.
    put = world.api.request(
        "PUT",
        "/warehouses/SH",
        {
            "name": "Shanghai DC",
            "city": "Shanghai",
            "location": {"lat": SHANGHAI.lat, "lon": SHANGHAI.lon},
            "address": {
                "region": "上海市",
                "city": "上海市",
                "line1": "浦东新区张江路 88 号",
                "postcode": "201203",
            },
            "contact_name": "王磊",
            "phone": "13800138001",
        },
        world.api.ops,
    )
    assert put.status_code == 200 and put.json_body["can_book"] is True
    retried = fulfilment.retry_due_bookings(datetime.now(UTC) + timedelta(hours=3))

    assert retried == {"shipped": [shipment_id], "failed": []}
    assert tracking(world, order_id)["status"] == "shipped" and on_hand() == 4


def test_a_provider_outage_answers_502_and_the_schedule_books_the_parcel_later(world):
    add_warehouse(**SENDER)
    order_id, shipment_id = packed_shipment(world)
    world.emulator.fail_next("kuaidi100", 1)

    down = ship(world, shipment_id)

    assert down.status_code == 502, down.json_body
    assert down.json_body["error"] == "carrier_unavailable"
    assert down.json_body["details"]["provider"] == "kuaidi100"
    assert down.json_body["details"]["provider_message"] == "服务器错误"
    record = shipment_store.get_shipment(shipment_id)
    assert record is not None and record.booking_failure is not None
    assert record.status.value == "packed" and on_hand() == 5
    assert world.alerts[0]["reason"] == "carrier_unavailable"
    # The warehouse simulator leaves it to the schedule instead of asking again.
    assert warehouse_simulator.work_once(timedelta(0)) == 0
    assert tracking(world, order_id)["status"] == "packed"
    # Not due yet: nothing happens; once due, it ships.
    assert fulfilment.retry_due_bookings(datetime.now(UTC)) == {"shipped": [], "failed": []}
    later = record.booking_failure.retry_at + timedelta(seconds=1)
    assert fulfilment.retry_due_bookings(later) == {"shipped": [shipment_id], "failed": []}
    assert tracking(world, order_id)["status"] == "shipped"
    shipped = shipment_store.get_shipment(shipment_id)
    assert shipped is not None and shipped.booking_failure is None


def test_a_refusal_answers_409_with_the_providers_own_message(world, monkeypatch):
    configure(monkeypatch, CARRIER_CODE="pigeonpost", CARRIER_ROUTES="pigeonpost=kuaidi100")
    add_warehouse(**SENDER)
    order_id, shipment_id = packed_shipment(world)

    refused = ship(world, shipment_id)

    assert refused.status_code == 409, refused.json_body
    assert refused.json_body["error"] == "carrier_refused"
    assert "kuaidicom" in refused.json_body["details"]["provider_message"]
    assert tracking(world, order_id)["status"] == "packed"


def test_a_push_from_a_provider_that_does_not_track_the_parcel_is_acknowledged_and_ignored(
    world,
):
    add_warehouse(**SENDER)
    order_id, shipment_id = packed_shipment(world)
    number = ship(world, shipment_id).json_body["tracking_number"]
    parcel = world.emulator._parcels[number]

    body, headers = world.emulator.aftership_push(parcel)
    foreign = world.api.request("POST", "/webhooks/carriers/aftership", body, headers)

    assert foreign.status_code == 200
    assert tracking(world, order_id)["timeline"] == []
    body, headers = world.emulator.kuaidi100_push(parcel)
    own = world.api.request("POST", "/webhooks/carriers/kuaidi100", body, headers)
    assert own.status_code == 200
    assert tracking(world, order_id)["timeline"] != []


def test_warehouses_keep_their_sender_details_and_say_whether_they_can_book(world):
    api = world.api
    base = {"name": "DC", "city": "Hangzhou", "location": {"lat": 30.27, "lon": 120.15}}

    bare = api.request("PUT", "/warehouses/HZ", base, api.ops)
    bad = api.request(
        "PUT",
        "/warehouses/HZ",
        {**base, "address": {"region": "浙江", "city": "杭州市", "line1": "x"}},
        api.ops,
    )
    full = api.request(
        "PUT",
        "/warehouses/HZ",
        {
            **base,
            "address": {
                "region": "浙江",
                "city": "杭州市",
                "line1": "文一路 1 号",
                "postcode": "310000",
            },
            "contact_name": "赵敏",
            "phone": "13900000000",
        },
        api.ops,
    )

    assert bare.status_code == 201
    assert bare.json_body["can_book"] is False
    assert bare.json_body["missing_for_booking"] == ["address", "contact_name", "phone"]
    assert bad.status_code == 400
    assert full.status_code == 200 and full.json_body["can_book"] is True
    stored = api.request("GET", "/warehouses/HZ", None, api.ops).json_body
    assert stored["address"]["postcode"] == "310000" and stored["phone"] == "13900000000"


def test_the_warehouse_simulator_leaves_warehouses_named_manual_to_people(world):
    add_warehouse(**SENDER)
    order_id, _ = packed_shipment(world)

    assert warehouse_simulator.work_once(timedelta(0), manual=frozenset({"SH"})) == 0
    assert tracking(world, order_id)["status"] == "packed"
    assert warehouse_simulator.work_once(timedelta(0)) == 1
    assert tracking(world, order_id)["status"] == "shipped"


def test_a_parcel_from_a_sharded_level_leaves_the_shard_its_reservation_is_on(world):
    add_warehouse(**SENDER)
    stock.set_shards("MUG", "SH", 4, actor="ops-1")
    order_id, shipment_id = packed_shipment(world)
    order = order_store.get_order(order_id, consistent=True)
    (held,) = order.allocations

    shipped = ship(world, shipment_id)

    assert shipped.status_code == 200, shipped.json_body
    (level,) = inventory.existing_levels([("MUG", "SH")], consistent=True)
    assert (level.on_hand, level.reserved) == (4, 0)
    assert [shard.reserved for shard in level.shards] == [0, 0, 0, 0]
    spread = [2, 1, 1, 1]  # the 5 mugs over 4 shards
    spread[held.shard] -= 1
    assert [shard.on_hand for shard in level.shards] == spread
    report = audit_stock()
    assert report.balanced, report.as_dict()["mismatches"]
