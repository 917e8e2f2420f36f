"""After-sales through the real app over moto: asking, deciding, the parcel back, stock per
line, the refund owed, exchanges holding their replacement, and the stock proof after it all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from test_orders_api import (
    SHANGHAI,
    add_product,
    build_world,
    levels,
    outbox_events,
    receive,
    table_snapshot,
)

from chalicelib.adapters import uploads_bucket
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus, ShippingAddress
from chalicelib.domain.payments import Payment
from chalicelib.services import (
    after_sales,
    after_sales_parcels,
    after_sales_reports,
    orders,
    payments,
    stock,
    stock_audit,
)
from chalicelib.settings import get_settings
from chalicelib.store import inventory, stock_ledger, tables
from chalicelib.store import orders as order_store
from chalicelib.store import payments as payment_store
from chalicelib.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from conftest import Api

CUSTOMER = "customer-1"
ADDRESS = ShippingAddress(
    "李雷", "+8613800000000", "CN", "上海", "上海市", "人民大道 200 号", "200003", SHANGHAI
)


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    add_product("MUG-BLUE", 2900)
    add_product("VASE", 5000)
    for sku in ("MUG", "TEA", "PEN", "MUG-BLUE"):
        receive(sku, "SH", 10)
    yield api
    stock.forget_cached_warehouses()


def delivered_order(lines: dict[str, int], *, method: str = "card", customer: str = CUSTOMER):
    """An order placed, paid, shipped (stock leaves with its ledger entries) and delivered."""
    placement = orders.place_order(
        customer, [RequestedLine(s, q) for s, q in lines.items()], ADDRESS
    )
    order = order_store.get_order(placement.order_id, consistent=True)
    assert order is not None
    payment = Payment.start(
        payment_id=sortable_id("pay_"),
        order_id=order.order_id,
        customer_id=customer,
        method=method,
        amount=order.total,
        at=datetime.now(UTC),
    )
    uow = UnitOfWork()
    payment_store.add_new_payment(uow, payment)
    uow.commit()
    payments.capture(payment.payment_id, order.total, provider_payment_id=f"p-{payment.payment_id}")
    for status in (OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED):
        order = order_store.get_order(order.order_id, consistent=True)
        assert order is not None
        now = datetime.now(UTC)
        changed = order.transition(to=status, at=now, actor="ops-1")
        uow = UnitOfWork()
        order_store.add_order_change(uow, changed, previous=order)
        if status is OrderStatus.SHIPPED:
            for held in order.allocations:
                (before,) = inventory.get_levels(
                    held.sku, [held.warehouse], consistent=True
                ).values()
                after, movement = stock_rules.ship(
                    before, held.quantity, order_id=order.order_id, at=now, actor="ops-1"
                )
                stock.record_movement(uow, before, after, movement)
        uow.commit()
    order = order_store.get_order(order.order_id, consistent=True)
    assert order is not None
    delivered = order.transition(to=OrderStatus.DELIVERED, at=datetime.now(UTC), actor="carrier")
    uow = UnitOfWork()
    order_store.add_order_change(uow, delivered, previous=order)
    uow.commit()
    return delivered


def ask(api: Api, order_id: str, body: dict[str, Any], *, user: str = CUSTOMER, key=None):
    headers = api.token(user, "customers")
    if key:
        headers["Idempotency-Key"] = key
    return api.request("POST", f"/orders/{order_id}/after-sales", body, headers)


def body(kind: str, *lines: tuple, description: str = "see photos") -> dict[str, Any]:
    out = []
    for line in lines:
        entry = {"sku": line[0], "quantity": line[1], "reason": line[2]}
        if len(line) > 3:
            entry["exchange_sku"] = line[3]
        out.append(entry)
    return {"type": kind, "lines": out, "description": description}


def act(api: Api, request_id: str, action: str, payload: Any = None, headers=None):
    return api.request("POST", f"/after-sales/{request_id}/{action}", payload, headers or api.ops)


def pending_refunds(order_id: str) -> list:
    return [r for r in payment_store.refunds_of_order(order_id)]


def outbound_delivered(request_id: str) -> str:
    """The carrier reports the outbound parcel delivered; the request's status after it."""
    from chalicelib.adapters.carriers import TrackingUpdate
    from chalicelib.domain.tracking import TrackingEvent, TrackingStatus

    event = TrackingEvent(TrackingStatus.DELIVERED, datetime.now(UTC))
    update = TrackingUpdate("kuaidi100", "shunfeng", "SF0", (event,))
    assert after_sales_parcels.record_parcel_tracking(request_id + "-out", update)
    return after_sales.get_request(request_id, viewer_id="x", staff=True).status.value


def assert_stock_balanced() -> None:
    audit = stock_audit.audit_stock()
    assert audit.balanced, audit.as_dict()["mismatches"]


# --- asking --------------------------------------------------------------------------------


def test_customer_asks_for_a_return_and_gets_201_with_location_and_estimate(world: Api) -> None:
    order = delivered_order({"MUG": 2, "TEA": 1})
    response = ask(world, order.order_id, body("return", ("MUG", 1, "changed_mind")))
    assert response.status_code == 201, response.json_body
    created = response.json_body
    assert response.headers["Location"] == f"/after-sales/{created['request_id']}"
    assert created["status"] == "requested"
    assert created["refund_estimate"] == {"amount": 2900, "currency": "CNY"}
    assert created["return_shipment"] is None
    assert [e["status"] for e in created["timeline"]] == ["requested"]
    assert len(outbox_events("after_sales.requested")) == 1
    # The order is untouched by after-sales.
    assert order_store.get_order(order.order_id, consistent=True) == order


def test_idempotency_key_replays_the_first_request(world: Api) -> None:
    order = delivered_order({"MUG": 2})
    first = ask(world, order.order_id, body("return", ("MUG", 1, "defective")), key="k-1")
    again = ask(world, order.order_id, body("return", ("MUG", 1, "defective")), key="k-1")
    assert again.status_code == 201
    assert again.json_body["request_id"] == first.json_body["request_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = ask(world, order.order_id, body("return", ("MUG", 2, "defective")), key="k-1")
    assert other.status_code == 422


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (body("refund_only", ("MUG", 1, "changed_mind")), "reason_not_allowed"),
        (body("return", ("MUG", 3, "defective")), "quantity_exceeds_eligible"),
        (body("exchange", ("MUG", 1, "defective", "VASE")), "different_price"),
        (body("return", ("PEN", 1, "defective")), "not_delivered"),
    ],
)
def test_ineligible_requests_are_409_and_write_nothing(world: Api, payload, reason) -> None:
    order = delivered_order({"MUG": 2})
    before = table_snapshot()
    response = ask(world, order.order_id, payload)
    assert response.status_code == 409
    assert response.json_body["error"] == "not_eligible"
    assert response.json_body["details"]["reason"] == reason
    assert table_snapshot() == before


def test_units_under_an_open_request_cannot_be_asked_about_again(world: Api) -> None:
    order = delivered_order({"MUG": 2})
    assert ask(world, order.order_id, body("return", ("MUG", 2, "defective"))).status_code == 201
    again = ask(world, order.order_id, body("exchange", ("MUG", 1, "defective")))
    assert again.json_body["details"] == {
        "reason": "quantity_exceeds_eligible",
        "sku": "MUG",
        "eligible": 0,
    }


def test_window_closes_after_the_reasons_days(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    with pytest.raises(Exception) as raised:
        after_sales.create_request(
            CUSTOMER,
            order.order_id,
            kind=after_sales.AfterSalesType.RETURN,
            lines=[after_sales.RequestLine("MUG", 1, after_sales.rules.Reason.CHANGED_MIND)],
            description="",
            now=datetime.now(UTC) + timedelta(days=8),
        )
    assert raised.value.details["reason"] == "window_closed"


def test_undelivered_order_is_not_eligible(world: Api) -> None:
    placement = orders.place_order(CUSTOMER, [RequestedLine("MUG", 1)], ADDRESS)
    response = ask(world, placement.order_id, body("return", ("MUG", 1, "defective")))
    assert response.json_body["details"]["reason"] == "not_delivered"


def test_others_orders_are_404_staff_403_and_bad_bodies_400(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    payload = body("return", ("MUG", 1, "defective"))
    assert ask(world, order.order_id, payload, user="someone-else").status_code == 404
    staff = world.request("POST", f"/orders/{order.order_id}/after-sales", payload, world.ops)
    assert staff.status_code == 403
    bad = ask(world, order.order_id, {"type": "return", "lines": []})
    assert bad.status_code == 400
    assert bad.json_body["error"] == "validation_error"


# --- the flows -----------------------------------------------------------------------------


def test_partial_return_restocks_one_line_writes_off_another_and_owes_its_refund(
    world: Api,
) -> None:
    order = delivered_order({"MUG": 2, "TEA": 1})
    before_mug, before_tea = levels("MUG")["SH"], levels("TEA")["SH"]
    created = ask(
        world,
        order.order_id,
        body("return", ("MUG", 1, "defective"), ("TEA", 1, "damaged_in_transit")),
    ).json_body
    request_id = created["request_id"]
    assert act(world, request_id, "approve", {"note": "ok"}, world.support).status_code == 200
    parcel = {"carrier": "shunfeng", "tracking_number": "SF1234567890"}
    sent = act(world, request_id, "return-shipment", parcel, world.customer)
    assert sent.json_body["status"] == "return_in_transit"
    received = act(
        world,
        request_id,
        "receive",
        {
            "lines": [
                {"sku": "MUG", "quantity": 1, "disposition": "restock"},
                {"sku": "TEA", "quantity": 1, "disposition": "write_off"},
            ]
        },
    )
    assert received.status_code == 200, received.json_body
    assert received.json_body["status"] == "received"
    assert levels("MUG")["SH"][0] == before_mug[0] + 1
    assert levels("TEA")["SH"] == before_tea
    types = [m.type.value for m in stock_ledger.iter_ledger("TEA", "SH")]
    assert types[-1] == "written_off"
    assert [m.type.value for m in stock_ledger.iter_ledger("MUG", "SH")][-1] == "returned"
    (refund,) = pending_refunds(order.order_id)
    assert refund.amount == Money(2900 + 4550, "CNY")  # not the whole order: no shipping back
    assert refund.status.value == "pending"
    assert len(outbox_events("refund.pending")) == 1
    # The refund settles: the request is refunded.
    after_sales.on_refund_settled(order.order_id, refund.refund_id)
    done = world.request("GET", f"/after-sales/{request_id}", headers=world.customer).json_body
    assert done["status"] == "refunded"
    assert [e["status"] for e in done["timeline"]] == [
        "requested",
        "approved",
        "return_in_transit",
        "received",
        "refunded",
    ]
    assert order_store.get_order(order.order_id, consistent=True) == order
    assert_stock_balanced()


def test_refund_only_is_owed_on_approval(world: Api) -> None:
    order = delivered_order({"MUG": 1}, method="alipay")
    request_id = ask(world, order.order_id, body("refund_only", ("MUG", 1, "missing_item")))
    request_id = request_id.json_body["request_id"]
    approved = act(world, request_id, "approve", None, world.support).json_body
    assert approved["status"] == "approved"
    (refund,) = pending_refunds(order.order_id)
    # The whole order, for the shop's fault: the shipping fee comes back too.
    assert refund.amount == order.total
    assert approved["refund_id"] == refund.refund_id
    after_sales.on_refund_settled(order.order_id, refund.refund_id)
    assert after_sales.get_request(request_id, viewer_id="x", staff=True).status.value == "refunded"


def test_exchange_holds_its_replacement_until_it_ships_and_the_audit_counts_it(
    world: Api,
) -> None:
    order = delivered_order({"MUG": 1})
    request_id = ask(
        world, order.order_id, body("exchange", ("MUG", 1, "defective", "MUG-BLUE"))
    ).json_body["request_id"]
    approved = act(world, request_id, "approve", {"return_warehouse": "SH"}).json_body
    assert approved["replacement"] == [{"sku": "MUG-BLUE", "warehouse": "SH", "quantity": 1}]
    assert levels("MUG-BLUE")["SH"] == (10, 1, 9)
    assert_stock_balanced()
    act(
        world,
        request_id,
        "return-shipment",
        {"carrier": "yto", "tracking_number": "YT12345"},
        world.customer,
    )
    act(
        world,
        request_id,
        "receive",
        {"lines": [{"sku": "MUG", "quantity": 1, "disposition": "write_off"}]},
    )
    shipped = after_sales_parcels.ship_replacement(request_id)
    assert shipped is not None and shipped.status.value == "exchange_shipped"
    assert levels("MUG-BLUE")["SH"] == (9, 0, 9)
    assert outbound_delivered(request_id) == "completed"
    assert_stock_balanced()


def test_exchange_without_replacement_in_stock_is_409_out_of_stock(world: Api) -> None:
    add_product("MUG-RED", 2900)
    order = delivered_order({"MUG": 1})
    request_id = ask(
        world, order.order_id, body("exchange", ("MUG", 1, "defective", "MUG-RED"))
    ).json_body["request_id"]
    refused = act(world, request_id, "approve", {})
    assert refused.status_code == 409
    assert refused.json_body["error"] == "out_of_stock"
    assert "refund" in refused.json_body["message"]


def test_cancelling_an_exchange_releases_its_replacement(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    request_id = ask(world, order.order_id, body("exchange", ("MUG", 1, "wrong_item")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    cancelled = act(world, request_id, "cancel", None, world.customer)
    assert cancelled.json_body["status"] == "cancelled"
    assert levels("MUG")["SH"][1] == 0
    assert_stock_balanced()
    # Its units may be asked about again.
    assert ask(world, order.order_id, body("return", ("MUG", 1, "defective"))).status_code == 201


def test_repair_goes_out_and_comes_back(world: Api) -> None:
    order = delivered_order({"MUG": 1}, method="wechat_pay")
    request_id = ask(world, order.order_id, body("repair", ("MUG", 1, "defective")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    act(
        world,
        request_id,
        "return-shipment",
        {"carrier": "sf", "tracking_number": "SF9999"},
        world.customer,
    )
    received = act(
        world,
        request_id,
        "receive",
        {"lines": [{"sku": "MUG", "quantity": 1, "disposition": "write_off"}]},
    ).json_body
    assert received["status"] == "repairing"
    assert act(world, request_id, "return-repaired", None).json_body["status"] == "repair_shipped"
    assert outbound_delivered(request_id) == "completed"
    assert not pending_refunds(order.order_id)


def test_moves_outside_the_flow_are_409_invalid_transition(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    request_id = ask(world, order.order_id, body("return", ("MUG", 1, "defective")))
    request_id = request_id.json_body["request_id"]
    before = table_snapshot()
    early = act(
        world,
        request_id,
        "receive",
        {"lines": [{"sku": "MUG", "quantity": 1, "disposition": "restock"}]},
    )
    assert early.status_code == 409
    assert early.json_body["error"] == "invalid_transition"
    assert table_snapshot() == before
    act(world, request_id, "reject", {"note": "no defect visible"}, world.support)
    assert act(world, request_id, "approve", {}).json_body["error"] == "invalid_transition"


def test_approved_request_without_a_parcel_closes_after_seven_days(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    request_id = ask(world, order.order_id, body("exchange", ("MUG", 1, "defective")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    assert after_sales.close_overdue(datetime.now(UTC) + timedelta(days=6)).closed == []
    report = after_sales.close_overdue(datetime.now(UTC) + timedelta(days=7, minutes=1))
    assert report.closed == [request_id]
    assert levels("MUG")["SH"][1] == 0
    assert_stock_balanced()


def test_reading_is_for_the_owner_and_staff_and_staff_list_newest_first(world: Api) -> None:
    order = delivered_order({"MUG": 2})
    first = ask(world, order.order_id, body("return", ("MUG", 1, "defective"))).json_body
    second = ask(world, order.order_id, body("repair", ("MUG", 1, "defective"))).json_body
    path = f"/orders/{order.order_id}/after-sales"
    mine = world.request("GET", path, headers=world.customer).json_body["items"]
    assert [r["request_id"] for r in mine] == [second["request_id"], first["request_id"]]
    assert world.request("GET", path, headers=world.token("x", "customers")).status_code == 404
    assert (
        world.request(
            "GET", f"/after-sales/{first['request_id']}", headers=world.support
        ).status_code
        == 200
    )
    assert world.request("GET", "/after-sales", headers=world.customer).status_code == 403
    page = world.request("GET", "/after-sales?limit=1", headers=world.support).json_body
    assert [r["request_id"] for r in page["items"]] == [second["request_id"]]
    rest = world.request(
        "GET", f"/after-sales?limit=1&cursor={page['next_cursor']}", headers=world.support
    ).json_body
    assert [r["request_id"] for r in rest["items"]] == [first["request_id"]]
    repairs = world.request("GET", "/after-sales?type=repair&status=requested", headers=world.ops)
    assert [r["request_id"] for r in repairs.json_body["items"]] == [second["request_id"]]


# --- the fulfilment queue ------------------------------------------------------------------


def consume(api: Api, event_type: str) -> None:
    """Hand every recorded ``event_type`` event to the fulfilment queue's consumer."""
    from chalicelib.store import outbox

    records = [
        {
            "messageId": f"m-{number}",
            "receiptHandle": f"h-{number}",
            "body": outbox.message_body(outbox.event_from_item(raw)),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orderdesk-test-fulfilment",
            "awsRegion": "us-east-1",
        }
        for number, raw in enumerate(tables.to_item(item) for item in outbox_events(event_type))
    ]
    result = api.client.lambda_.invoke("fulfil_orders", {"Records": records}).payload
    assert result == {"batchItemFailures": []}


def test_received_exchange_ships_through_the_fulfilment_queue_once(world: Api) -> None:
    order = delivered_order({"MUG": 1})
    request_id = ask(world, order.order_id, body("exchange", ("MUG", 1, "damaged_in_transit")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    parcel = {"carrier": "sf", "tracking_number": "SF55555"}
    act(world, request_id, "return-shipment", parcel, world.customer)
    lines = [{"sku": "MUG", "quantity": 1, "disposition": "restock"}]
    act(world, request_id, "receive", {"lines": lines})
    consume(world, "after_sales.received")
    consume(world, "after_sales.received")  # a redelivery changes nothing
    shipped = after_sales.get_request(request_id, viewer_id="x", staff=True)
    assert shipped.status.value == "exchange_shipped"
    assert [m.type.value for m in stock_ledger.iter_ledger("MUG", "SH")].count("shipped") == 2
    assert len(outbox_events("after_sales.exchange_shipped")) == 1
    assert_stock_balanced()


def test_nightly_tables_read_the_days_requests(world: Api) -> None:
    from chalicelib.store.after_sales import business_day

    order = delivered_order({"MUG": 2})
    request_id = ask(world, order.order_id, body("refund_only", ("MUG", 2, "damaged_in_transit")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    (refund,) = pending_refunds(order.order_id)
    after_sales.on_refund_settled(order.order_id, refund.refund_id)
    by_product, summary = after_sales_reports.report_tables(
        business_day(datetime.now(UTC)), currency="CNY"
    )
    (row,) = by_product.rows
    assert (row["sku"], row["type"], row["units"]) == ("MUG", "refund_only", 2)
    assert row["refunds_minor"] == refund.amount.amount
    assert row["return_rate"] == 0.0  # a refund without a return sends nothing back
    done = {r["type"]: r for r in summary.rows}["refund_only"]
    assert (done["requests"], done["completions"]) == (1, 1)


def test_carrier_push_of_the_outbound_parcel_completes_the_repair(world: Api) -> None:
    from chalicelib.adapters.carriers import TrackingUpdate
    from chalicelib.domain.tracking import Booking, TrackingEvent, TrackingStatus
    from chalicelib.services import fulfilment
    from chalicelib.store import shipments

    order = delivered_order({"MUG": 1})
    request_id = ask(world, order.order_id, body("repair", ("MUG", 1, "defective")))
    request_id = request_id.json_body["request_id"]
    act(world, request_id, "approve", {})
    parcel = {"carrier": "sf", "tracking_number": "SF4242"}
    act(world, request_id, "return-shipment", parcel, world.customer)
    lines = [{"sku": "MUG", "quantity": 1, "disposition": "write_off"}]
    act(world, request_id, "receive", {"lines": lines})
    act(world, request_id, "return-repaired", None)
    # The parcel's number, as booking it with the carrier records it.
    uow = UnitOfWork()
    shipments.add_tracking_number(uow, Booking("shunfeng", "SF7777", "", ""), request_id + "-out")
    uow.commit()
    now = datetime.now(UTC)
    moving = TrackingUpdate(
        "kuaidi100", "shunfeng", "SF7777", (TrackingEvent(TrackingStatus.IN_TRANSIT, now),)
    )
    assert fulfilment.record_tracking(moving)
    current = after_sales.get_request(request_id, viewer_id="x", staff=True)
    assert current.status.value == "repair_shipped"
    assert current.outbound_shipment["tracking_status"] == "in_transit"
    arrived = TrackingUpdate(
        "kuaidi100",
        "shunfeng",
        "SF7777",
        (
            TrackingEvent(TrackingStatus.IN_TRANSIT, now),
            TrackingEvent(TrackingStatus.DELIVERED, now + timedelta(hours=5)),
        ),
    )
    assert fulfilment.record_tracking(arrived)
    assert fulfilment.record_tracking(arrived)  # a repeated push changes nothing more
    done = after_sales.get_request(request_id, viewer_id="x", staff=True)
    assert done.status.value == "completed"
    assert [e.status for e in done.timeline].count("completed") == 1
    assert order_store.get_order(order.order_id, consistent=True) == order


def test_photos_must_be_the_customers_own_and_staff_see_them_through_short_lived_links(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="orderdesk-test-uploads")
    monkeypatch.setenv("UPLOADS_BUCKET", "orderdesk-test-uploads")
    get_settings.cache_clear()
    uploads_bucket.reset()
    order = delivered_order({"MUG": 1})

    def upload(user: str) -> str:
        answer = world.request(
            "POST",
            "/uploads",
            {"content_type": "image/jpeg", "bytes": 1000},
            world.token(user, "customers"),
        )
        assert answer.status_code == 201, answer.json_body
        return str(answer.json_body["upload_id"])

    mine, theirs = upload(CUSTOMER), upload("customer-2")
    request = body("return", ("MUG", 1, "defective"))

    refused = ask(world, order.order_id, {**request, "photos": [theirs]})
    assert refused.status_code == 400, refused.json_body
    assert refused.json_body["error"] == "unknown_upload"
    listed = world.request(
        "GET", f"/orders/{order.order_id}/after-sales", None, world.token(CUSTOMER, "customers")
    )
    assert listed.json_body["items"] == []

    created = ask(world, order.order_id, {**request, "photos": [mine]})
    assert created.status_code == 201, created.json_body
    path = f"/after-sales/{created.json_body['request_id']}"
    [link] = world.request("GET", path, None, world.support).json_body["photo_urls"]
    assert link["upload_id"] == mine
    assert f"/uploads/{CUSTOMER}/{mine}.jpg" in link["url"]
    assert "X-Amz-Expires=300" in link["url"]
    own = world.request("GET", path, None, world.token(CUSTOMER, "customers")).json_body
    assert own["photos"] == [mine] and "photo_urls" not in own
    uploads_bucket.reset()


def test_an_exchange_from_a_sharded_level_holds_and_ships_its_replacement_on_one_shard(
    world: Api,
) -> None:
    stock.set_shards("MUG-BLUE", "SH", 4, actor="ops-1")
    order = delivered_order({"MUG": 1})
    request_id = ask(
        world, order.order_id, body("exchange", ("MUG", 1, "defective", "MUG-BLUE"))
    ).json_body["request_id"]
    approved = act(world, request_id, "approve", {"return_warehouse": "SH"}).json_body
    assert approved["replacement"] == [{"sku": "MUG-BLUE", "warehouse": "SH", "quantity": 1}]
    (held,) = after_sales.get_request(request_id, viewer_id="x", staff=True).replacement
    (level,) = inventory.existing_levels([("MUG-BLUE", "SH")], consistent=True)
    assert level.shards[held.shard].reserved == 1
    act(
        world,
        request_id,
        "return-shipment",
        {"carrier": "yto", "tracking_number": "YT12345"},
        world.customer,
    )
    act(
        world,
        request_id,
        "receive",
        {"lines": [{"sku": "MUG", "quantity": 1, "disposition": "write_off"}]},
    )

    shipped = after_sales_parcels.ship_replacement(request_id)

    assert shipped is not None and shipped.status.value == "exchange_shipped"
    assert levels("MUG-BLUE")["SH"] == (9, 0, 9)
    assert_stock_balanced()
