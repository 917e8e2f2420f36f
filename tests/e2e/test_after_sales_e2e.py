"""After-sales over real HTTP against the local stack, its pump and its emulators.

One delivered order (paid by card through localstripe, shipped through the warehouse
steps, delivered by the carrier emulator) comes back every way there is: a partial return
with one line restocked and one written off, refunded through the card provider; a
refund-only line refunded on approval; an exchange whose replacement is held, then shipped
by the fulfilment queue; a repair sent back repaired. The order itself never changes, and
``check_stock`` proves every level against its ledger afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import requests
from test_fulfilment_e2e import ADDRESS, TIMEOUT, call, eventually

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

WAREHOUSE = "wh-sha"


def product(stack: LocalStackUnderTest, ops: dict[str, str], name: str, price: int) -> str:
    sku = f"AS-{name}-{uuid.uuid4().hex[:8]}"
    body = {
        "name": {"zh-CN": name, "en": name},
        "category": "home",
        "price": {"amount": price, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{sku}", ops, body).status_code == 201
    received = call(stack, "POST", f"/stock/{sku}/{WAREHOUSE}/receive", ops, {"quantity": 5})
    assert received.status_code == 201, received.text
    return sku


def waybill() -> str:
    """A number no earlier run has used (the carrier emulator keeps its parcels)."""
    return f"SF{uuid.uuid4().int % 10**12:012d}"


def level(stack: LocalStackUnderTest, ops: dict[str, str], sku: str) -> tuple[int, int]:
    for entry in call(stack, "GET", f"/stock/{sku}", ops).json()["warehouses"]:
        if entry["warehouse"] == WAREHOUSE:
            return entry["on_hand"], entry["reserved"]
    return 0, 0


def ledger_types(stack: LocalStackUnderTest, ops: dict[str, str], sku: str) -> list[str]:
    page = call(stack, "GET", f"/stock/{sku}/{WAREHOUSE}/ledger?limit=100", ops).json()
    return [entry["type"] for entry in page["items"]]


# How each method's emulator is told the shopper paid (card pays at once).
PAY_PATHS = {"alipay": "trades", "wechat_pay": "transactions"}


def delivered_order(
    stack: LocalStackUnderTest,
    ops: dict[str, str],
    shopper: dict[str, str],
    skus: list[str],
    method: str = "card",
) -> dict[str, Any]:
    lines = [{"sku": sku, "quantity": 1} for sku in skus]
    placed = call(stack, "POST", "/orders", shopper, {"lines": lines, "shipping_address": ADDRESS})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    paid = call(
        stack,
        "POST",
        f"/orders/{order['order_id']}/payments",
        {**shopper, "Idempotency-Key": uuid.uuid4().hex},
        {"method": "card", "payment_method": "pm_card_visa"}
        if method == "card"
        else {"method": method},
    )
    assert paid.status_code == 201, paid.text
    if method in PAY_PATHS:
        emulator = str(stack.data["emulators"][method]).rstrip("/")
        path = f"{emulator}/_emulator/{PAY_PATHS[method]}/{paid.json()['payment_id']}/pay"
        assert requests.post(path, json={}, timeout=TIMEOUT).ok
    else:
        assert paid.json()["status"] == "succeeded", paid.text
    (shipment,) = order["shipments"]

    def released() -> bool:
        page = call(stack, "GET", f"/warehouses/{WAREHOUSE}/shipments?status=pending", ops)
        return shipment["shipment_id"] in {i["shipment_id"] for i in page.json()["items"]}

    eventually(released, what="the shipment on its warehouse's work list")
    for step in ("pick", "pack", "ship"):
        moved = call(stack, "POST", f"/shipments/{shipment['shipment_id']}/{step}", ops)
        assert moved.status_code == 200, moved.text
    carrier = stack.data["emulators"]["carrier"]
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=2 * TIMEOUT).ok

    def delivered() -> dict[str, Any] | None:
        current = call(stack, "GET", f"/orders/{order['order_id']}", shopper).json()
        return current if current["status"] == "delivered" else None

    return eventually(delivered, what="the order to be delivered")


def ask(stack, shopper, order_id: str, kind: str, lines: list[dict[str, Any]]) -> str:
    body = {"type": kind, "lines": lines, "description": "见照片 / see photos"}
    headers = {**shopper, "Idempotency-Key": uuid.uuid4().hex}
    created = call(stack, "POST", f"/orders/{order_id}/after-sales", headers, body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/after-sales/{created.json()['request_id']}"
    return str(created.json()["request_id"])


def act(stack, headers, request_id: str, action: str, body: Any = None) -> dict[str, Any]:
    response = call(stack, "POST", f"/after-sales/{request_id}/{action}", headers, body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def status_becomes(stack, headers, request_id: str, wanted: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = call(stack, "GET", f"/after-sales/{request_id}", headers).json()
        return current if current["status"] == wanted else None

    return eventually(reached, timeout=90, what=f"request {request_id} to be {wanted}")


def test_each_after_sales_type_reaches_its_end_and_stock_still_balances(
    stack: LocalStackUnderTest,
) -> None:
    ops = stack.auth("ops-after-sales-e2e", "ops")
    support = stack.auth("support-after-sales-e2e", "support")
    shopper = stack.auth(f"buyer-{uuid.uuid4().hex[:8]}", "customers")
    mug, tea, vase, vase_blue, lamp, pen = (
        product(stack, ops, "mug", 2900),
        product(stack, ops, "tea", 4550),
        product(stack, ops, "vase", 5000),
        product(stack, ops, "vaseblue", 5000),
        product(stack, ops, "lamp", 9900),
        product(stack, ops, "pen", 800),
    )
    order = delivered_order(stack, ops, shopper, [mug, tea, vase, lamp, pen])
    order_id = order["order_id"]

    # Refused: an undelivered SKU, and a reason the type does not allow.
    refused = call(
        stack,
        "POST",
        f"/orders/{order_id}/after-sales",
        shopper,
        {
            "type": "refund_only",
            "lines": [{"sku": mug, "quantity": 1, "reason": "changed_mind"}],
            "description": "",
        },
    )
    assert refused.status_code == 409
    assert refused.json()["details"]["reason"] == "reason_not_allowed"

    # A partial return: the mug back on the shelf, the tea written off; refunded by card.
    returned = ask(
        stack,
        shopper,
        order_id,
        "return",
        [
            {"sku": mug, "quantity": 1, "reason": "defective"},
            {"sku": tea, "quantity": 1, "reason": "damaged_in_transit"},
        ],
    )
    act(stack, support, returned, "approve", {"note": "请寄回"})
    parcel = {"carrier": "shunfeng", "tracking_number": waybill()}
    assert act(stack, shopper, returned, "return-shipment", parcel)["status"] == (
        "return_in_transit"
    )
    mug_before, tea_before = level(stack, ops, mug), level(stack, ops, tea)
    act(
        stack,
        ops,
        returned,
        "receive",
        {
            "lines": [
                {"sku": mug, "quantity": 1, "disposition": "restock"},
                {"sku": tea, "quantity": 1, "disposition": "write_off"},
            ]
        },
    )
    assert level(stack, ops, mug) == (mug_before[0] + 1, mug_before[1])
    assert level(stack, ops, tea) == tea_before
    assert ledger_types(stack, ops, mug)[0] == "returned"
    assert ledger_types(stack, ops, tea)[0] == "written_off"
    refunded = status_becomes(stack, shopper, returned, "refunded")
    refunds = call(stack, "GET", f"/orders/{order_id}/refunds", shopper)
    assert refunds.status_code == 200, refunds.text
    (mine,) = [r for r in refunds.json()["items"] if r["refund_id"] == refunded["refund_id"]]
    assert mine["amount"] == {"amount": 2900 + 4550, "currency": "CNY"}
    assert mine["status"] == "succeeded"

    # Refund only: the pen never arrived; refunded on approval.
    missing = ask(
        stack,
        shopper,
        order_id,
        "refund_only",
        [{"sku": pen, "quantity": 1, "reason": "missing_item"}],
    )
    act(stack, support, missing, "approve")
    status_becomes(stack, shopper, missing, "refunded")

    # An exchange for another colour at the same price: held, then shipped by the queue.
    exchange = ask(
        stack,
        shopper,
        order_id,
        "exchange",
        [{"sku": vase, "quantity": 1, "reason": "wrong_item", "exchange_sku": vase_blue}],
    )
    act(stack, support, exchange, "approve", {"return_warehouse": WAREHOUSE})
    assert level(stack, ops, vase_blue) == (5, 1)
    act(
        stack,
        shopper,
        exchange,
        "return-shipment",
        {"carrier": "shunfeng", "tracking_number": waybill()},
    )
    act(
        stack,
        ops,
        exchange,
        "receive",
        {"lines": [{"sku": vase, "quantity": 1, "disposition": "restock"}]},
    )
    shipped = status_becomes(stack, shopper, exchange, "exchange_shipped")
    assert level(stack, ops, vase_blue) == (4, 0)
    assert shipped["outbound_shipment"]["tracking_number"]
    # The carrier emulator carries the replacement to the door: the exchange is complete.
    carrier = stack.data["emulators"]["carrier"]
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=2 * TIMEOUT).ok
    status_becomes(stack, shopper, exchange, "completed")

    # A repair: back, repaired, shipped back.
    repair = ask(
        stack, shopper, order_id, "repair", [{"sku": lamp, "quantity": 1, "reason": "defective"}]
    )
    act(stack, ops, repair, "approve")
    act(
        stack,
        shopper,
        repair,
        "return-shipment",
        {"carrier": "shunfeng", "tracking_number": waybill()},
    )
    received = act(
        stack,
        ops,
        repair,
        "receive",
        {"lines": [{"sku": lamp, "quantity": 1, "disposition": "write_off"}]},
    )
    assert received["status"] == "repairing"
    assert act(stack, ops, repair, "return-repaired")["status"] == "repair_shipped"
    assert requests.post(f"{carrier}/_emulator/fast-forward", timeout=2 * TIMEOUT).ok
    status_becomes(stack, shopper, repair, "completed")

    # The customer's own return parcel was subscribed, and its pushes are on the request.
    def return_tracked() -> dict[str, Any] | None:
        current = call(stack, "GET", f"/after-sales/{returned}", shopper).json()
        parcel = current["return_shipment"]
        return parcel if parcel.get("tracking_status") else None

    tracked = eventually(return_tracked, what="the return parcel's tracking on the request")
    assert tracked["subscribed"] is True

    # The order page lists the requests; the order itself did not move.
    listed = call(stack, "GET", f"/orders/{order_id}/after-sales", shopper).json()["items"]
    assert {r["request_id"] for r in listed} == {returned, missing, exchange, repair}
    after = call(stack, "GET", f"/orders/{order_id}", shopper).json()
    assert (after["status"], after["shipments"]) == (order["status"], order["shipments"])
    staff_list = call(stack, "GET", "/after-sales?type=return&status=refunded", support).json()
    assert returned in {r["request_id"] for r in staff_list["items"]}

    audit = subprocess.run(
        [sys.executable, "-m", "infra.local.check_stock", "--port", str(stack.port)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_returns_paid_by_alipay_and_wechat_pay_are_refunded_through_their_provider(
    stack: LocalStackUnderTest,
) -> None:
    ops = stack.auth("ops-after-sales-e2e", "ops")
    shopper = stack.auth(f"buyer-{uuid.uuid4().hex[:8]}", "customers")
    for method in ("alipay", "wechat_pay"):
        sku = product(stack, ops, f"cup{method.replace('_', '')}", 3900)
        order = delivered_order(stack, ops, shopper, [sku], method=method)
        request_id = ask(
            stack,
            shopper,
            order["order_id"],
            "return",
            [{"sku": sku, "quantity": 1, "reason": "not_as_described"}],
        )
        act(stack, ops, request_id, "approve")
        parcel = {"carrier": "shunfeng", "tracking_number": waybill()}
        act(stack, shopper, request_id, "return-shipment", parcel)
        lines = [{"sku": sku, "quantity": 1, "disposition": "restock"}]
        act(stack, ops, request_id, "receive", {"lines": lines})
        done = status_becomes(stack, shopper, request_id, "refunded")
        refunds = call(stack, "GET", f"/orders/{order['order_id']}/refunds", shopper).json()
        (refund,) = [r for r in refunds["items"] if r["refund_id"] == done["refund_id"]]
        # The whole order came back for the shop's fault: the shipping fee too.
        assert refund["amount"] == order["total"]
        assert refund["status"] == "succeeded"
        payments = call(stack, "GET", f"/orders/{order['order_id']}/payments", shopper).json()
        (payment,) = [p for p in payments["items"] if p["payment_id"] == refund["payment_id"]]
        assert (payment["method"], payment["refunded"]) == (method, order["total"])
