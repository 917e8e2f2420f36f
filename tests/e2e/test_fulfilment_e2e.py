"""From payment to doorstep over real HTTP against the local stack and its event pump.

A split order (two warehouses) is paid; the fulfilment handler releases both shipments to
their warehouses; staff pick, pack and ship them (booking the parcels with the emulated
carrier, which then pushes signed tracking); the order is delivered only when both parcels
are; the tracking timeline is complete; late, duplicate and forged pushes change nothing;
and the customer's inbox holds every expected notification exactly once. A poison message
on the fulfilment queue ends in its dead-letter queue while the rest is processed, and
``make redrive`` brings it back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
ADDRESS = {
    "name": "王芳",
    "phone": "+8613700000000",
    "country": "CN",
    "region": "江苏",
    "city": "南京市",
    "line1": "中山路 1 号",
    "postcode": "210000",
}


def call(
    stack: LocalStackUnderTest, method: str, path: str, headers: dict[str, str], body: Any = None
) -> requests.Response:
    return requests.request(method, stack.url(path), json=body, headers=headers, timeout=TIMEOUT)


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def sqs(stack: LocalStackUnderTest) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def ops(stack: LocalStackUnderTest) -> dict[str, str]:
    return stack.auth("ops-fulfilment-e2e", "ops")


def split_order_product(stack: LocalStackUnderTest, ops: dict[str, str]) -> str:
    """One unit in Shanghai and one in Beijing: an order of two ships in two parcels."""
    sku = f"SHIP-{uuid.uuid4().hex[:10]}"
    product = {
        "name": {"zh-CN": "紫砂壶", "en": "Yixing teapot"},
        "category": "home",
        "price": {"amount": 12800, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{sku}", ops, product).status_code == 201
    for warehouse in ("wh-sha", "wh-pek"):
        received = call(stack, "POST", f"/stock/{sku}/{warehouse}/receive", ops, {"quantity": 1})
        assert received.status_code == 201, received.text
    return sku


def verify_contact(
    stack: LocalStackUnderTest, shopper: dict[str, str], channel: str, value: str
) -> None:
    """Confirm a typed-in contact with the code read where the stack lists sent messages."""
    started = call(
        stack, "POST", "/me/contact-verifications", shopper, {"channel": channel, "value": value}
    )
    assert started.status_code == 202, started.text
    sent = requests.get(f"{stack.moto_url}/_emulator/sent-messages", timeout=TIMEOUT).json()
    [body] = [m["body"] for m in sent["messages"] if m["to"] == [value]][-1:]
    [code] = re.findall(r"\b\d{6}\b", body)
    path = f"/me/contact-verifications/{started.json()['verification_id']}/confirm"
    confirmed = call(stack, "POST", path, shopper, {"code": code})
    assert confirmed.status_code == 200, confirmed.text


def inbox(stack: LocalStackUnderTest, shopper: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        page = call(stack, "GET", f"/me/notifications{query}", shopper).json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_a_paid_split_order_is_picked_packed_shipped_tracked_and_delivered(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    shopper = stack.auth(f"buyer-{uuid.uuid4().hex[:8]}", "customers")
    profile = {
        "email": "buyer@example.com",
        "phone": "+8613700000000",
        "locale": "zh-CN",
        "name": "王芳",
    }
    assert call(stack, "PUT", "/me", shopper, profile).status_code == 200
    verify_contact(stack, shopper, "email", profile["email"])
    verify_contact(stack, shopper, "sms", profile["phone"])
    sku = split_order_product(stack, ops)
    placed = call(
        stack,
        "POST",
        "/orders",
        shopper,
        {"lines": [{"sku": sku, "quantity": 2}], "shipping_address": ADDRESS},
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    order_id = order["order_id"]
    shipment_ids = [s["shipment_id"] for s in order["shipments"]]
    assert len(shipment_ids) == 2

    paid = call(
        stack,
        "POST",
        f"/orders/{order_id}/payments",
        {**shopper, "Idempotency-Key": uuid.uuid4().hex},
        {"method": "card", "payment_method": "pm_card_visa"},
    )
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded", paid.text

    # order.paid -> outbox -> SQS -> the fulfilment handler releases both shipments.
    def released() -> bool:
        listed = set()
        for warehouse in ("wh-sha", "wh-pek"):
            page = call(stack, "GET", f"/warehouses/{warehouse}/shipments?status=pending", ops)
            assert page.status_code == 200, page.text
            listed |= {item["shipment_id"] for item in page.json()["items"]}
        return set(shipment_ids) <= listed

    eventually(released, what="both shipments on their warehouses' work lists")
    assert call(stack, "POST", f"/shipments/{shipment_ids[0]}/ship", ops).status_code == 409
    assert call(stack, "POST", f"/shipments/{shipment_ids[0]}/pick", shopper).status_code == 403

    held = call(stack, "GET", f"/stock/{sku}", ops).json()["warehouses"]
    assert {(w["warehouse"], w["on_hand"], w["reserved"]) for w in held if w["on_hand"]} == {
        ("wh-sha", 1, 1),
        ("wh-pek", 1, 1),
    }
    tracking_numbers = []
    for shipment_id in shipment_ids:
        for step in ("pick", "pack", "ship"):
            response = call(stack, "POST", f"/shipments/{shipment_id}/{step}", ops)
            assert response.status_code == 200, response.text
        shipped = response.json()
        assert shipped["status"] == "shipped"
        assert shipped["tracking_number"] and shipped["tracking_url"].startswith("http")
        tracking_numbers.append(shipped["tracking_number"])
    again = call(stack, "POST", f"/shipments/{shipment_ids[0]}/pick", ops)
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"
    # The goods left: on_hand and reserved dropped together.
    for level in call(stack, "GET", f"/stock/{sku}", ops).json()["warehouses"]:
        assert (level["on_hand"], level["reserved"]) == (0, 0)

    # The carrier pushes every step; fast-forward the rest.
    carrier = stack.data["emulators"]["carrier"]
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=2 * TIMEOUT).ok

    def delivered() -> dict[str, Any] | None:
        current = call(stack, "GET", f"/orders/{order_id}", shopper).json()
        return current if current["status"] == "delivered" else None

    final = eventually(delivered, what="the order to be delivered")
    assert all(s["status"] == "delivered" for s in final["shipments"])

    tracking = call(stack, "GET", f"/orders/{order_id}/tracking", shopper)
    assert tracking.status_code == 200, tracking.text
    parcels = tracking.json()["shipments"]
    assert {p["tracking_number"] for p in parcels} == set(tracking_numbers)
    for parcel in parcels:
        assert parcel["tracking_status"] == "delivered"
        timeline = parcel["timeline"]
        assert len(timeline) >= 4
        assert [e["occurred_at"] for e in timeline] == sorted(e["occurred_at"] for e in timeline)
        assert {"in_transit", "out_for_delivery", "delivered"} <= {e["status"] for e in timeline}
        assert all(e["location"]["city"] for e in timeline if e["status"] == "in_transit")
    stranger = stack.auth("stranger-tracking", "customers")
    assert call(stack, "GET", f"/orders/{order_id}/tracking", stranger).status_code == 404

    # A late in_transit scan and a repeated push are history, never a step back.
    late = requests.post(
        f"{carrier}/_emulator/parcels/{tracking_numbers[0]}/push",
        json={"status": "in_transit", "occurred_at": "2026-01-01T08:00:00+08:00", "city": "上海"},
        timeout=TIMEOUT,
    )
    assert late.ok, late.text
    repeat = requests.post(
        f"{carrier}/_emulator/parcels/{tracking_numbers[0]}/push", json={}, timeout=TIMEOUT
    )
    assert repeat.ok, repeat.text

    def late_scan_recorded() -> list[dict[str, Any]] | None:
        parcel = next(
            p
            for p in call(stack, "GET", f"/orders/{order_id}/tracking", shopper).json()["shipments"]
            if p["tracking_number"] == tracking_numbers[0]
        )
        late_events = [e for e in parcel["timeline"] if e["occurred_at"].startswith("2026-01-01")]
        return parcel if late_events else None

    parcel = eventually(late_scan_recorded, what="the late scan in the timeline")
    assert parcel["tracking_status"] == "delivered"
    assert parcel["timeline"][0]["occurred_at"].startswith("2026-01-01")  # kept in time order
    assert call(stack, "GET", f"/orders/{order_id}", shopper).json()["status"] == "delivered"

    # Every expected notification, each exactly once per channel.
    expected = Counter(
        {
            "order.placed": 1,
            "order.paid": 1,
            "shipment.shipped": 2,
            "shipment.out_for_delivery": 2,
            "shipment.delivered": 2,
        }
    )

    def by_channel(entries: list[dict[str, Any]], channel: str) -> Counter[str]:
        return Counter(e["event_type"] for e in entries if e["channel"] == channel)

    def all_sent() -> list[dict[str, Any]] | None:
        entries = [e for e in inbox(stack, shopper) if e.get("order_id") == order_id]
        done = by_channel(entries, "email") == by_channel(entries, "sms") == expected
        return entries if done else None

    entries = eventually(all_sent, what="every notification by email and SMS in the inbox")
    time.sleep(2)  # anything sent twice would show up now
    entries = [e for e in inbox(stack, shopper) if e.get("order_id") == order_id]
    assert by_channel(entries, "email") == by_channel(entries, "sms") == expected
    per_event_channel = Counter((e["event_id"], e["channel"]) for e in entries)
    assert max(per_event_channel.values()) == 1
    shipped_mail = next(e for e in entries if e["event_type"] == "shipment.shipped")
    assert any(number in shipped_mail["body"] for number in tracking_numbers)


ABROAD = {
    "name": "Ann Lee",
    "phone": "+14155550100",
    "country": "US",
    "region": "CA",
    "city": "San Francisco",
    "line1": "1 Main St",
    "postcode": "94105",
}


def test_one_parcel_through_each_booking_provider_is_followed_to_delivered(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    """At home the parcel gets a Kuaidi100 e-waybill and Kuaidi100 pushes; abroad EasyPost
    books it and its tracker's events arrive. Both are followed to delivered."""
    shopper = stack.auth(f"providers-{uuid.uuid4().hex[:8]}", "customers")
    sku = f"PROV-{uuid.uuid4().hex[:10]}"
    product = {
        "name": {"zh-CN": "茶叶", "en": "Tea"},
        "category": "home",
        "price": {"amount": 6800, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{sku}", ops, product).status_code == 201
    received = call(stack, "POST", f"/stock/{sku}/wh-sha/receive", ops, {"quantity": 2})
    assert received.status_code == 201, received.text

    orders = {}
    for address in (ADDRESS, ABROAD):
        placed = call(
            stack,
            "POST",
            "/orders",
            shopper,
            {"lines": [{"sku": sku, "quantity": 1}], "shipping_address": address},
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        paid = call(
            stack,
            "POST",
            f"/orders/{order['order_id']}/payments",
            {**shopper, "Idempotency-Key": uuid.uuid4().hex},
            {"method": "card", "payment_method": "pm_card_visa"},
        )
        assert paid.json()["status"] == "succeeded", paid.text
        orders[address["country"]] = (order["order_id"], order["shipments"][0]["shipment_id"])

    def released() -> bool:
        page = call(stack, "GET", "/warehouses/wh-sha/shipments?status=pending&limit=100", ops)
        listed = {item["shipment_id"] for item in page.json()["items"]}
        return all(shipment_id in listed for _, shipment_id in orders.values())

    eventually(released, what="both shipments on the warehouse's work list")
    booked = {}
    for country, (_, shipment_id) in orders.items():
        for step in ("pick", "pack", "ship"):
            response = call(stack, "POST", f"/shipments/{shipment_id}/{step}", ops)
            assert response.status_code == 200, response.text
        booked[country] = response.json()
    assert (booked["CN"]["booking_provider"], booked["CN"]["carrier"]) == ("kuaidi100", "shunfeng")
    assert (booked["US"]["booking_provider"], booked["US"]["carrier"]) == ("easypost", "dhl")
    assert booked["US"]["label_url"] and booked["CN"]["label_url"]

    carrier = stack.data["emulators"]["carrier"]
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=2 * TIMEOUT).ok

    for country, (order_id, _) in orders.items():

        def delivered(order_id: str = order_id) -> dict[str, Any] | None:
            page = call(stack, "GET", f"/orders/{order_id}/tracking", shopper).json()
            return page if page["status"] == "delivered" else None

        page = eventually(delivered, what=f"the {country} parcel to be delivered")
        (parcel,) = page["shipments"]
        provider = booked[country]["booking_provider"]
        assert (parcel["booking_provider"], parcel["tracking_provider"]) == (provider, provider)
        assert parcel["tracking_number"] == booked[country]["tracking_number"]
        assert parcel["tracking_status"] == "delivered"
        assert {"in_transit", "out_for_delivery", "delivered"} <= {
            e["status"] for e in parcel["timeline"]
        }


def test_the_warehouse_simulator_moves_paid_orders_through_the_same_steps(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    shopper = stack.auth(f"sim-{uuid.uuid4().hex[:8]}", "customers")
    sku = split_order_product(stack, ops)
    body = {"lines": [{"sku": sku, "quantity": 1}], "shipping_address": ADDRESS}
    order = call(stack, "POST", "/orders", shopper, body).json()
    paid = call(
        stack,
        "POST",
        f"/orders/{order['order_id']}/payments",
        shopper,
        {"method": "card", "payment_method": "pm_card_visa"},
    )
    assert paid.json()["status"] == "succeeded", paid.text
    [shipment_id] = [s["shipment_id"] for s in order["shipments"]]
    warehouse = order["shipments"][0]["warehouse"]

    def released() -> bool:
        page = call(stack, "GET", f"/warehouses/{warehouse}/shipments?status=pending", ops)
        return shipment_id in {item["shipment_id"] for item in page.json()["items"]}

    eventually(released, what="the shipment to be released")
    # The fulfilment handler logged under the id of the request that paid (API Gateway's).
    paying_request = paid.headers["x-amzn-RequestId"]

    def fulfilment_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in log_lines(stack)
            if line.get("correlation_id") == paying_request
            and line.get("event_type") == "order.paid"
        ]

    assert eventually(fulfilment_lines, what="the fulfilment handler's lines for this payment")
    statuses = []
    for _ in range(3):  # pick, pack, ship: one step per round
        ran = subprocess.run(
            [sys.executable, "-m", "infra.local.warehouse", "--delay", "0", "--once"],
            cwd=REPO_ROOT,
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        current = call(stack, "GET", f"/orders/{order['order_id']}", shopper).json()
        statuses.append(current["shipments"][0]["status"])
    assert statuses == ["picking", "packed", "shipped"]
    tracking = call(stack, "GET", f"/orders/{order['order_id']}/tracking", shopper).json()
    assert tracking["shipments"][0]["tracking_number"]


def log_lines(stack: LocalStackUnderTest) -> list[dict[str, Any]]:
    """The stack's structured (JSON) log lines."""
    lines = []
    for text in stack.log().splitlines():
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(text))
    return lines


def _kuaidi100_push(number: str, salt: str) -> dict[str, str]:
    param = json.dumps(
        {
            "status": "polling",
            "message": "",
            "lastResult": {
                "state": "0",
                "ischeck": "0",
                "com": "shunfeng",
                "nu": number,
                "data": [
                    {
                        "context": "运输中",
                        "time": "2026-11-25 10:00:00",
                        "ftime": "2026-11-25 10:00:00",
                        "areaName": "上海",
                    }
                ],
            },
        },
        ensure_ascii=False,
    )
    sign = hashlib.md5((param + salt).encode()).hexdigest().upper()
    return {"param": param, "sign": sign}


def test_forged_carrier_pushes_are_rejected_and_unknown_parcels_acknowledged(
    stack: LocalStackUnderTest,
) -> None:
    salt = stack.env["CARRIER_WEBHOOK_SECRET"]
    genuine = _kuaidi100_push("SF000000000000000", salt)
    unknown = requests.post(
        stack.url("/webhooks/carriers/kuaidi100"), data=genuine, timeout=TIMEOUT
    )
    assert unknown.status_code == 200 and unknown.json()["result"] is True

    forged = _kuaidi100_push("SF000000000000000", "not-the-salt")
    rejected = requests.post(
        stack.url("/webhooks/carriers/kuaidi100"), data=forged, timeout=TIMEOUT
    )
    assert rejected.status_code == 401 and rejected.json()["result"] is False

    body = b'{"event": "tracking_update", "msg": {"tracking_number": "X", "tag": "Delivered"}}'
    aftership = requests.post(
        stack.url("/webhooks/carriers/aftership"),
        data=body,
        headers={"Content-Type": "application/json", "aftership-hmac-sha256": "Zm9yZ2Vk"},
        timeout=TIMEOUT,
    )
    assert aftership.status_code == 401
    easypost = requests.post(
        stack.url("/webhooks/carriers/easypost"),
        data=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert easypost.status_code == 401
    assert (
        requests.post(stack.url("/webhooks/carriers/dhl"), data=b"{}", timeout=TIMEOUT).status_code
        == 404
    )


def test_a_poison_message_ends_in_the_dead_letter_queue_and_can_be_redriven(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    client = sqs(stack)
    queue_url = stack.env["FULFILMENT_QUEUE_URL"]
    dlq_url = stack.env["FULFILMENT_DLQ_URL"]
    poison = f"not json {uuid.uuid4().hex}"
    fine = json.dumps(
        {"event_id": "evt_fine", "type": "order.placed", "payload": {"order_id": "ord_x"}}
    )
    client.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": "poison", "MessageBody": poison}, {"Id": "fine", "MessageBody": fine}],
    )

    def dead_letters() -> list[str]:
        received = client.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=1, WaitTimeSeconds=0
        ).get("Messages", [])
        return [m["Body"] for m in received]

    def poison_dead_lettered() -> list[str] | None:
        bodies = dead_letters()
        return bodies if poison in bodies else None

    bodies = eventually(poison_dead_lettered, timeout=120, what="the poison in the DLQ")
    assert fine not in bodies  # the rest of its batch was processed, not dead-lettered

    depths = call(stack, "GET", "/ops/queues", ops)
    assert depths.status_code == 200, depths.text
    fulfilment = next(q for q in depths.json()["items"] if q["queue"] == "fulfilment")
    assert fulfilment["dead_letters"] is not None

    time.sleep(1.5)  # let the DLQ message become visible again
    redriven = subprocess.run(
        [sys.executable, "-m", "infra.local.redrive", "--port", str(stack.port), "fulfilment"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert redriven.returncode == 0, redriven.stderr
    assert "moved 1 message" in redriven.stdout
