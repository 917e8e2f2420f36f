"""Payments over real HTTP against the local stack, with the providers' notifications coming
from the emulators: card (localstripe: a new card saved for later, the saved card, 3-D
Secure), Alipay and WeChat Pay; a partial refund and a refund race; a paid order cancelled
and refunded; money that arrives for an order that can no longer take it; forged and
replayed webhooks; and no card number anywhere in what the stack logged or stored.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests
import stripe

from infra.local.emulators.localstripe_server import register_webhook

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
CHINA = ZoneInfo("Asia/Shanghai")
CARD_REQUIRING_3DS = "4000000000003220"
CARD_DECLINED = "4000000000000341"
SHANGHAI_ADDRESS = {
    "name": "李雷",
    "phone": "+8613800000000",
    "country": "CN",
    "region": "上海",
    "city": "上海市",
    "line1": "人民大道 100 号",
    "postcode": "200003",
}


# --- helpers -------------------------------------------------------------------------------


def call(
    stack: LocalStackUnderTest,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
) -> requests.Response:
    return requests.request(method, stack.url(path), json=body, headers=headers, timeout=TIMEOUT)


def eventually(check: Callable[[], Any], timeout: float = 45, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ops(stack: LocalStackUnderTest) -> dict[str, str]:
    return stack.auth("ops-payments-e2e", "ops")


@pytest.fixture(scope="module")
def sku(stack: LocalStackUnderTest, ops: dict[str, str]) -> str:
    """A product of 59.00 CNY with plenty of stock in Shanghai, for this module only."""
    code = f"PAY-{uuid.uuid4().hex[:10]}"
    product = {
        "name": {"zh-CN": "青花瓷茶杯", "en": "Blue and white teacup"},
        "category": "home",
        "price": {"amount": 5900, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{code}", ops, product).status_code == 201
    received = call(stack, "POST", f"/stock/{code}/wh-sha/receive", ops, {"quantity": 500})
    assert received.status_code == 201, received.text
    return code


@pytest.fixture
def shopper(stack: LocalStackUnderTest) -> dict[str, str]:
    return stack.auth(f"shopper-{uuid.uuid4().hex[:8]}", "customers")


def place_order(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str, quantity: int = 2
) -> dict[str, Any]:
    body = {"lines": [{"sku": sku, "quantity": quantity}], "shipping_address": SHANGHAI_ADDRESS}
    response = call(stack, "POST", "/orders", shopper, body)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def pay(
    stack: LocalStackUnderTest,
    shopper: dict[str, str],
    order_id: str,
    body: dict[str, Any],
    key: str | None = None,
) -> requests.Response:
    headers = {**shopper, "Idempotency-Key": key or uuid.uuid4().hex}
    return call(stack, "POST", f"/orders/{order_id}/payments", headers, body)


def order_of(stack: LocalStackUnderTest, who: dict[str, str], order_id: str) -> dict[str, Any]:
    response = call(stack, "GET", f"/orders/{order_id}", who)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


def wait_for_status(
    stack: LocalStackUnderTest, who: dict[str, str], order_id: str, status: str
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = order_of(stack, who, order_id)
        return order if order["status"] == status else None

    result: dict[str, Any] = eventually(reached, what=f"order {order_id} to be {status}")
    return result


def payments_of(
    stack: LocalStackUnderTest, who: dict[str, str], order_id: str
) -> list[dict[str, Any]]:
    response = call(stack, "GET", f"/orders/{order_id}/payments", who)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def refunds_of(
    stack: LocalStackUnderTest, who: dict[str, str], order_id: str
) -> list[dict[str, Any]]:
    response = call(stack, "GET", f"/orders/{order_id}/refunds", who)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def paid_transitions(order: dict[str, Any]) -> int:
    return sum(
        1 for change in order["history"] if change["to"] == "paid" and not change.get("shipment_id")
    )


def emulator(stack: LocalStackUnderTest, name: str) -> str:
    url: str = stack.data["emulators"][name]
    return url.rstrip("/")


def card_method(stack: LocalStackUnderTest, number: str) -> str:
    """A PaymentMethod for one of Stripe's public test card numbers, made at the emulator
    as a storefront's Stripe.js would: the number never reaches our API."""
    client = stripe.StripeClient(
        stack.env["STRIPE_API_KEY"], base_addresses={"api": emulator(stack, "stripe")}
    )
    card = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    method = client.v1.payment_methods.create({"type": "card", "card": card})
    return str(method.id)


def table_items(stack: LocalStackUnderTest) -> list[dict[str, Any]]:
    """Every item of the main table (a Scan is fine in a test, never in the app)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=stack.env["TABLE_NAME"]):
        items.extend(page["Items"])
    return items


def order_events(stack: LocalStackUnderTest, order_id: str, event_type: str) -> int:
    return sum(
        1
        for item in table_items(stack)
        if item["pk"]["S"].startswith("OUTBOX#")
        and item.get("type", {}).get("S") == event_type
        and order_id in str(item.get("payload", {}))
    )


class WebhookCopies:
    """A second endpoint registered with localstripe: it gets a copy of every card event,
    so the test can replay them to the API exactly as they were signed."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        copies = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                copies.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/copies"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def card_webhook_copies(stack: LocalStackUnderTest) -> Iterator[WebhookCopies]:
    copies = WebhookCopies()
    register_webhook(
        emulator(stack, "stripe"),
        f"copies-{uuid.uuid4().hex[:6]}",
        copies.url,
        stack.env["STRIPE_WEBHOOK_SECRET"],
    )
    yield copies
    copies.stop()


# --- card ----------------------------------------------------------------------------------


def test_a_card_pays_at_once_is_saved_and_the_saved_card_pays_in_one_call(
    stack: LocalStackUnderTest,
    shopper: dict[str, str],
    sku: str,
    card_webhook_copies: WebhookCopies,
) -> None:
    order = place_order(stack, shopper, sku)
    body = {"method": "card", "payment_method": "pm_card_visa", "save_for_later": True}
    key = uuid.uuid4().hex
    first = pay(stack, shopper, order["order_id"], body, key)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["status"] == "succeeded"
    assert payment["amount"] == order["total"]
    assert payment["failure"] is None and payment["next_action"] is None
    assert order_of(stack, shopper, order["order_id"])["status"] == "paid"

    again = pay(stack, shopper, order["order_id"], body, key)
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["payment_id"] == payment["payment_id"]

    saved = call(stack, "GET", "/me/payment-methods", shopper).json()["items"]
    assert len(saved) == 1
    assert saved[0]["last4"] == "4242" and saved[0]["brand"] == "visa"
    assert set(saved[0]) == {"id", "brand", "last4", "exp_month", "exp_year"}

    # localstripe's own payment_intent.succeeded arrives a moment later: nothing changes.
    eventually(
        lambda: any(
            b"payment_intent.succeeded" in body for _, body in card_webhook_copies.received
        ),
        what="localstripe's success webhook",
    )
    time.sleep(2)
    settled = order_of(stack, shopper, order["order_id"])
    assert settled["status"] in ("paid", "picking", "packed", "shipped")
    assert paid_transitions(settled) == 1
    assert order_events(stack, order["order_id"], "order.paid") == 1

    second_order = place_order(stack, shopper, sku, quantity=1)
    quick = pay(
        stack,
        shopper,
        second_order["order_id"],
        {"method": "card", "saved_payment_method_id": saved[0]["id"]},
    )
    assert quick.status_code == 201, quick.text
    assert quick.json()["status"] == "succeeded"
    assert order_of(stack, shopper, second_order["order_id"])["status"] == "paid"

    removed = call(stack, "DELETE", f"/me/payment-methods/{saved[0]['id']}", shopper)
    assert removed.status_code == 204
    assert call(stack, "GET", "/me/payment-methods", shopper).json()["items"] == []
    gone = call(stack, "DELETE", f"/me/payment-methods/{saved[0]['id']}", shopper)
    assert gone.status_code == 404


def test_a_3d_secure_card_needs_the_shopper_then_the_webhook_pays_the_order(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    method = card_method(stack, CARD_REQUIRING_3DS)
    response = pay(stack, shopper, order["order_id"], {"method": "card", "payment_method": method})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "requires_action"
    action = payment["next_action"]
    assert action["type"] == "redirect" and action["url"].startswith("http")
    held = order_of(stack, shopper, order["order_id"])
    assert held["status"] == "pending_payment"
    assert held["expires_at"] > order["expires_at"]  # the hold was extended

    # The shopper completes the challenge on the page the redirect leads to.
    page = urllib.parse.urlsplit(action["url"])
    secret = urllib.parse.parse_qs(page.query)["client_secret"][0]
    completed = requests.post(
        f"{page.scheme}://{page.netloc}{page.path}",
        data={"client_secret": secret, "outcome": "complete"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    # ... and comes back to the storefront's page for the order, which the server set.
    assert completed.status_code == 303, completed.text
    back = urllib.parse.urlsplit(completed.headers["Location"])
    storefront = stack.env["STOREFRONT_URL"].rstrip("/")
    assert f"{back.scheme}://{back.netloc}{back.path}" == (
        f"{storefront}/orders/{order['order_id']}"
    )
    assert urllib.parse.parse_qs(back.query)["redirect_status"] == ["succeeded"]
    wait_for_status(stack, shopper, order["order_id"], "paid")
    [recorded] = payments_of(stack, shopper, order["order_id"])
    assert recorded["status"] == "succeeded"


def test_a_declined_card_fails_with_the_providers_code_and_the_order_stays_unpaid(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    method = card_method(stack, CARD_DECLINED)
    response = pay(stack, shopper, order["order_id"], {"method": "card", "payment_method": method})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "failed"
    assert payment["failure"]["code"]
    assert order_of(stack, shopper, order["order_id"])["status"] == "pending_payment"


# --- Alipay and WeChat Pay -----------------------------------------------------------------


def test_alipay_pays_by_qr_code_and_a_replayed_notification_changes_nothing(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    response = pay(stack, shopper, order["order_id"], {"method": "alipay"})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "pending"
    assert payment["next_action"]["type"] == "qr_code"
    assert payment["next_action"]["code_url"]

    base = emulator(stack, "alipay")
    trade = f"{base}/_emulator/trades/{payment['payment_id']}"
    assert requests.post(f"{trade}/pay", json={}, timeout=TIMEOUT).status_code == 200
    paid = wait_for_status(stack, shopper, order["order_id"], "paid")
    assert paid_transitions(paid) == 1

    assert requests.post(f"{trade}/notify", timeout=TIMEOUT).ok  # the same one, again

    def both_answered() -> list[dict[str, Any]]:
        deliveries = requests.get(f"{base}/_emulator/notifications", timeout=TIMEOUT).json()
        mine = [
            d for d in deliveries["notifications"] if d["out_trade_no"] == payment["payment_id"]
        ]
        return mine if len(mine) >= 2 else []

    mine = eventually(both_answered, what="both copies of the notification to be answered")
    # Each copy was answered with the plain text "success" (after it was recorded).
    assert len(mine) == 2 and all(d["body"] == "success" for d in mine)
    assert paid_transitions(order_of(stack, shopper, order["order_id"])) == 1
    assert order_events(stack, order["order_id"], "order.paid") == 1


def test_wechat_pay_pays_by_qr_code_and_a_replayed_notification_changes_nothing(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    response = pay(stack, shopper, order["order_id"], {"method": "wechat_pay"})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "pending"
    assert payment["next_action"]["code_url"].startswith("weixin://")

    transaction = f"{emulator(stack, 'wechat_pay')}/_emulator/transactions/{payment['payment_id']}"
    assert requests.post(f"{transaction}/pay", json={}, timeout=TIMEOUT).status_code == 200
    # Two more copies of the same notification race the first one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        copies = list(
            pool.map(lambda _: requests.post(f"{transaction}/notify", timeout=TIMEOUT), range(2))
        )
    assert all(copy.ok for copy in copies)
    wait_for_status(stack, shopper, order["order_id"], "paid")
    time.sleep(2)
    assert paid_transitions(order_of(stack, shopper, order["order_id"])) == 1
    assert order_events(stack, order["order_id"], "order.paid") == 1


def test_a_notification_for_another_amount_is_flagged_and_the_order_stays_unpaid(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    payment = pay(stack, shopper, order["order_id"], {"method": "alipay"}).json()
    trade = f"{emulator(stack, 'alipay')}/_emulator/trades/{payment['payment_id']}"
    assert requests.post(f"{trade}/pay", json={"total_amount": "0.01"}, timeout=TIMEOUT).ok

    def flagged() -> dict[str, Any] | None:
        [recorded] = payments_of(stack, shopper, order["order_id"])
        return recorded if recorded["review"] else None

    recorded = eventually(flagged, what="the payment to be flagged")
    assert recorded["review"]["reason"] == "amount_mismatch"
    assert recorded["captured"] == {"amount": 1, "currency": "CNY"}
    assert order_of(stack, shopper, order["order_id"])["status"] == "pending_payment"
    assert order_events(stack, order["order_id"], "order.paid") == 0


def test_money_for_a_cancelled_order_is_refunded_automatically(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    payment = pay(stack, shopper, order["order_id"], {"method": "alipay"}).json()
    cancelled = call(stack, "POST", f"/orders/{order['order_id']}/cancel", shopper)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    trade = f"{emulator(stack, 'alipay')}/_emulator/trades/{payment['payment_id']}"
    assert requests.post(f"{trade}/pay", json={}, timeout=TIMEOUT).ok

    def refunded() -> list[dict[str, Any]]:
        return [
            r for r in refunds_of(stack, shopper, order["order_id"]) if r["status"] == "succeeded"
        ]

    [refund] = eventually(refunded, what="the automatic refund")
    assert refund["automatic"] is True
    assert refund["amount"] == order["total"]
    assert order_of(stack, shopper, order["order_id"])["status"] == "cancelled"
    [recorded] = payments_of(stack, shopper, order["order_id"])
    assert recorded["status"] == "refunded"


# --- refunds -------------------------------------------------------------------------------


def test_ops_refund_part_of_a_payment_and_never_more_than_was_captured(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str, ops: dict[str, str]
) -> None:
    order = place_order(stack, shopper, sku)
    pay(stack, shopper, order["order_id"], {"method": "card", "payment_method": "pm_card_visa"})
    total = order["total"]["amount"]
    path = f"/orders/{order['order_id']}/refunds"

    part = {"amount": {"amount": 1000, "currency": "CNY"}, "reason": "scratched cup"}
    key = uuid.uuid4().hex
    first = call(stack, "POST", path, {**ops, "Idempotency-Key": key}, part)
    assert first.status_code == 201, first.text
    refund = first.json()
    assert refund["status"] == "succeeded" and refund["amount"]["amount"] == 1000
    replay = call(stack, "POST", path, {**ops, "Idempotency-Key": key}, part)
    assert replay.status_code == 201 and replay.json()["refund_id"] == refund["refund_id"]
    assert call(stack, "POST", path, shopper, part).status_code == 403

    too_much = {"amount": {"amount": total, "currency": "CNY"}, "reason": "everything"}
    refused = call(stack, "POST", path, ops, too_much)
    assert refused.status_code == 409
    assert refused.json()["error"] == "refund_exceeds_captured"

    # Two refunds of 60 % of what is left, at once: one goes through, one is refused.
    left = total - 1000
    share = {"amount": {"amount": left * 6 // 10, "currency": "CNY"}, "reason": "race"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        racing = list(pool.map(lambda _: call(stack, "POST", path, ops, share), range(2)))
    assert sorted(r.status_code for r in racing) == [201, 409]

    [recorded] = payments_of(stack, shopper, order["order_id"])
    assert recorded["status"] == "partially_refunded"
    assert recorded["refunded"]["amount"] == 1000 + left * 6 // 10
    assert recorded["refunded"]["amount"] <= recorded["captured"]["amount"]


def test_cancelling_a_paid_order_refunds_it_in_full(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    payment = pay(stack, shopper, order["order_id"], {"method": "wechat_pay"}).json()
    transaction = f"{emulator(stack, 'wechat_pay')}/_emulator/transactions/{payment['payment_id']}"
    assert requests.post(f"{transaction}/pay", json={}, timeout=TIMEOUT).ok
    wait_for_status(stack, shopper, order["order_id"], "paid")

    cancelled = call(stack, "POST", f"/orders/{order['order_id']}/cancel", shopper)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    def refunded() -> dict[str, Any] | None:
        [recorded] = payments_of(stack, shopper, order["order_id"])
        return recorded if recorded["status"] == "refunded" else None

    recorded = eventually(refunded, what="the WeChat Pay refund to settle")
    assert recorded["refunded"] == order["total"]
    [refund] = refunds_of(stack, shopper, order["order_id"])
    assert refund["automatic"] and refund["status"] == "succeeded"


# --- webhooks that must not be believed -----------------------------------------------------


def tick(stack: LocalStackUnderTest, job: str, *options: str) -> dict[str, Any]:
    """``make tick JOB=job`` against the stack: the job's own report."""
    ran = subprocess.run(
        [sys.executable, "-m", "infra.local.tick", "--port", str(stack.port), job, *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    report: dict[str, Any] = json.loads(ran.stdout)
    return report


def test_a_refund_the_provider_could_not_take_is_asked_again_and_made_once(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str, ops: dict[str, str]
) -> None:
    order = place_order(stack, shopper, sku)
    payment = pay(stack, shopper, order["order_id"], {"method": "alipay"}).json()
    alipay = emulator(stack, "alipay")
    trade = f"{alipay}/_emulator/trades/{payment['payment_id']}"
    assert requests.post(f"{trade}/pay", json={}, timeout=TIMEOUT).ok
    wait_for_status(stack, shopper, order["order_id"], "paid")

    outage = requests.post(f"{alipay}/_emulator/faults", json={"fault": "unavailable"}, timeout=5)
    assert outage.status_code == 202
    part = {"amount": {"amount": 1000, "currency": "CNY"}, "reason": "late delivery"}
    asked = call(stack, "POST", f"/orders/{order['order_id']}/refunds", ops, part)
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "pending"
    assert requests.get(trade, timeout=TIMEOUT).json()["refunds"] == []

    def refund_status() -> str:
        [refund] = refunds_of(stack, ops, order["order_id"])
        return str(refund["status"])

    tick(stack, "retry_pending_refunds")  # too soon: the first call may still be under way
    assert refund_status() == "pending"

    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    report = tick(stack, "retry_pending_refunds", "--at", later)
    assert report["settled"] >= 1
    assert refund_status() == "succeeded"
    tick(stack, "retry_pending_refunds", "--at", later)  # a settled refund is not asked again
    made = requests.get(trade, timeout=TIMEOUT).json()
    assert made["refunds"] == [
        {"out_request_no": asked.json()["refund_id"], "refund_amount": "10.00"}
    ]
    [recorded] = payments_of(stack, shopper, order["order_id"])
    assert (recorded["status"], recorded["refunded"]["amount"]) == ("partially_refunded", 1000)


def test_forged_notifications_are_rejected_before_anything_changes(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    payment = pay(stack, shopper, order["order_id"], {"method": "alipay"}).json()
    forged_alipay = urllib.parse.urlencode(
        {
            "notify_id": secrets.token_hex(8),
            "app_id": stack.env["ALIPAY_APP_ID"],
            "out_trade_no": payment["payment_id"],
            "trade_no": "2026112622001400000000000001",
            "trade_status": "TRADE_SUCCESS",
            "total_amount": f"{order['total']['amount'] / 100:.2f}",
            "sign_type": "RSA2",
            "sign": "Zm9yZ2Vk",
        }
    )
    answer = requests.post(
        stack.url("/webhooks/payments/alipay"),
        data=forged_alipay,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 401 and answer.text != "success"

    stripe_event = (
        b'{"id": "evt_forged", "type": "payment_intent.succeeded", "data": {"object": {}}}'
    )
    for headers in (
        {},
        {"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"},
        {"Stripe-Signature": f"t={int(time.time()) - 3600},v1={'0' * 64}"},
    ):
        card = requests.post(
            stack.url("/webhooks/payments/card"),
            data=stripe_event,
            headers={"Content-Type": "application/json", **headers},
            timeout=TIMEOUT,
        )
        assert card.status_code == 401

    wechat = requests.post(
        stack.url("/webhooks/payments/wechat_pay"),
        data=b'{"id": "forged", "event_type": "TRANSACTION.SUCCESS"}',
        headers={
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": str(int(time.time()) - 600),
            "Wechatpay-Nonce": "n",
            "Wechatpay-Signature": "Zm9yZ2Vk",
            "Wechatpay-Serial": stack.env["WECHATPAY_PLATFORM_SERIAL"],
        },
        timeout=TIMEOUT,
    )
    assert wechat.status_code == 401
    assert wechat.json()["code"] == "FAIL"

    unknown = requests.post(stack.url("/webhooks/payments/paypal"), data=b"{}", timeout=TIMEOUT)
    assert unknown.status_code == 404
    [recorded] = payments_of(stack, shopper, order["order_id"])
    assert recorded["status"] == "pending"
    assert order_of(stack, shopper, order["order_id"])["status"] == "pending_payment"


def test_every_card_webhook_replayed_changes_nothing(
    stack: LocalStackUnderTest, card_webhook_copies: WebhookCopies
) -> None:
    eventually(lambda: card_webhook_copies.received, what="card webhooks")
    before = {
        item["pk"]["S"]: item.get("version", {}).get("N")
        for item in table_items(stack)
        if item["pk"]["S"].startswith(("ORDER#", "PAYMENT#", "REFUND#"))
    }
    for headers, body in list(card_webhook_copies.received):
        replay = requests.post(
            stack.url("/webhooks/payments/card"),
            data=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": headers.get("Stripe-Signature", ""),
            },
            timeout=TIMEOUT,
        )
        # Signatures older than five minutes are stale by design; younger ones are replays.
        assert replay.status_code in (200, 401), replay.text
    time.sleep(1)
    after = {
        item["pk"]["S"]: item.get("version", {}).get("N")
        for item in table_items(stack)
        if item["pk"]["S"] in before
    }
    assert after == before


def test_someone_elses_order_cannot_be_paid_and_a_paid_order_cannot_be_paid_again(
    stack: LocalStackUnderTest, shopper: dict[str, str], sku: str
) -> None:
    order = place_order(stack, shopper, sku)
    stranger = stack.auth("stranger", "customers")
    assert pay(stack, stranger, order["order_id"], {"method": "alipay"}).status_code == 404
    bad = pay(stack, shopper, order["order_id"], {"method": "card"})
    assert bad.status_code == 400
    both = pay(
        stack,
        shopper,
        order["order_id"],
        {"method": "card", "payment_method": "pm_card_visa", "saved_payment_method_id": "x"},
    )
    assert both.status_code == 400
    assert pay(stack, shopper, order["order_id"], {"method": "bitcoin"}).status_code == 400
    paid = pay(
        stack, shopper, order["order_id"], {"method": "card", "payment_method": "pm_card_visa"}
    )
    assert paid.json()["status"] == "succeeded"
    again = pay(
        stack, shopper, order["order_id"], {"method": "card", "payment_method": "pm_card_visa"}
    )
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"


# --- reconciliation ---------------------------------------------------------------------------


def test_the_days_settlement_data_matches_every_payment_and_refund(
    stack: LocalStackUnderTest,
) -> None:
    """Runs after the flows above: every provider's settlement lines for today match ours."""
    today = datetime.now(CHINA).date().isoformat()
    if datetime.now(UTC).date().isoformat() != today:
        pytest.skip("the card (UTC) and China days differ at this hour")
    tick(stack, "reconcile_payments", "--date", today)
    finance = stack.auth("finance-1", "finance")
    report = call(stack, "GET", f"/ops/reconciliation?date={today}", finance)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["items"] == [], body["items"]
    assert body["failed_providers"] == {}
    for provider in ("card", "alipay", "wechat_pay"):
        assert body["providers"][provider]["matched"] >= 2  # payments and refunds
    customer = stack.auth("nosy", "customers")
    assert call(stack, "GET", f"/ops/reconciliation?date={today}", customer).status_code == 403
    assert call(stack, "GET", "/ops/reconciliation?date=2020-01-01", finance).status_code == 404
    assert call(stack, "GET", "/ops/reconciliation?date=nope", finance).status_code == 400


# --- no card number anywhere -----------------------------------------------------------------

# 13-19 digits standing alone (not the tail of a waybill like SF123..., nor the decimals of
# a coordinate, nor the head of a hex id like evt_54808183336347ab... or LEDGER#...),
# starting as card numbers do (2-6: Mastercard, Amex, Visa, Discover, UnionPay...), passing
# the Luhn check.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z._#-])[2-6][0-9]{12,18}(?![0-9A-Za-z])")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_like_numbers(text: str) -> set[str]:
    return {run for run in _DIGIT_RUN.findall(text) if _luhn_valid(run)}


def test_the_luhn_scan_finds_card_numbers_and_ignores_other_digits() -> None:
    assert card_like_numbers("paid with 4242424242424242 today") == {"4242424242424242"}
    assert card_like_numbers("t=1795657748123 4242424242424241 SF4242424242424242") == set()
    assert card_like_numbers("lon 121.4242424242424242") == set()
    assert card_like_numbers("4000000000003220,") == {"4000000000003220"}
    assert card_like_numbers("evt_54808183336347ab90 #54808183336347cd") == set()


def test_no_card_number_is_ever_logged_or_stored(stack: LocalStackUnderTest) -> None:
    """Runs after the card flows above (same module, same stack)."""
    items = table_items(stack)
    stored = card_like_numbers(str(items))
    logged = card_like_numbers(stack.log())
    holding = [str(item)[:600] for item in items if card_like_numbers(str(item))]
    assert stored == set(), f"card-like numbers stored: {sorted(stored)} in {holding}"
    assert logged == set(), f"card-like numbers logged: {sorted(logged)}"
