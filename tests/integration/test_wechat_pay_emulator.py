"""The WeChat Pay adapter against the local WeChat Pay emulator, over HTTP on 127.0.0.1.

A small webhook receiver stands in for the app: it verifies every notification with the
adapter and answers with the adapter's own replies, as the app's webhook route does.
"""

from __future__ import annotations

import http.client
import json
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.core import Core
from wechatpayv3.type import RequestType

from chalicelib.adapters.payments import (
    Notification,
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderStatus,
    RefundRequest,
    SettlementKind,
)
from chalicelib.adapters.payments.wechat_pay import (
    CHINA_TIME,
    WeChatPayApiError,
    WeChatPayProvider,
)
from chalicelib.adapters.payments.wechat_pay_signing import (
    load_platform_key,
    platform_certificates,
    verify_signature,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.settings import Settings
from infra.local.emulators import wechat_pay as wechat_pay_emulator
from infra.local.emulators.wechat_pay import WeChatPayEmulator


@dataclass
class Receiver:
    """A merchant webhook endpoint that verifies with the adapter."""

    provider: WeChatPayProvider
    fail_next: int = 0  # answer 500 to this many deliveries first
    verified: list[Notification] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/wechat_pay"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    return self._answer(500, b"", "text/plain")
                try:
                    notification = receiver.provider.verify_notification(self.headers, body)
                except NotificationRejected as error:
                    receiver.rejected.append(str(error))
                    reply = receiver.provider.reject(str(error))
                else:
                    receiver.verified.append(notification)
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers.items()))
                    reply = receiver.provider.acknowledge()
                self._answer(reply.status_code, reply.body.encode(), reply.content_type)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def settings_for(env: dict[str, str]) -> Settings:
    # WECHATPAY_MCHID -> Settings.wechatpay_mchid, and so on.
    return replace(
        Settings.from_environment(), **{name.lower(): value for name, value in env.items()}
    )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeChatPayEmulator]:
    running = WeChatPayEmulator(
        tmp_path_factory.mktemp("wechatpay"), refund_delay=0.1, retry_delays=(0.05, 0.1, 0.2)
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def provider(emulator: WeChatPayEmulator) -> WeChatPayProvider:
    return WeChatPayProvider.from_settings(settings_for(emulator.app_env()))


@pytest.fixture
def receiver(provider: WeChatPayProvider) -> Iterator[Receiver]:
    running = Receiver(provider)
    running.start()
    yield running
    running.stop()


def payment_request(receiver: Receiver, total: int = 12900) -> PaymentRequest:
    payment_id = sortable_id("pay_")
    return PaymentRequest(
        payment_id=payment_id,
        order_id=sortable_id("ord_"),
        amount=Money(total, "CNY"),
        description="西湖龙井 250g",
        notify_url=receiver.url,
    )


def post(url: str, payload: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = b"" if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def paid(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver, total: int = 12900
) -> PaymentRequest:
    """A Native order the shopper has paid, its notification delivered."""
    request = payment_request(receiver, total)
    provider.create_payment(request)
    before = len(emulator.deliveries())
    status, _ = post(f"{emulator.url}/_emulator/transactions/{request.payment_id}/pay")
    assert status == 200
    emulator.wait_for_deliveries(before + 1)
    return request


def test_native_order_paid_by_the_shopper_is_notified_and_verified(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = payment_request(receiver)

    payment = provider.create_payment(request)

    assert payment.status is ProviderStatus.PENDING
    assert payment.amount == Money(12900, "CNY")
    assert payment.next_action is not None and payment.next_action["type"] == "qr_code"
    assert payment.next_action["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    waiting = provider.retrieve_payment(request.payment_id, payment.provider_payment_id)
    assert waiting.status is ProviderStatus.PENDING

    before = len(emulator.deliveries())
    status, transaction = post(f"{emulator.url}/_emulator/transactions/{request.payment_id}/pay")
    assert status == 200
    [delivery] = emulator.wait_for_deliveries(before + 1)[before:]

    assert delivery["delivered"] and delivery["attempts"] == [{"status": 200, "error": None}]
    [notification] = receiver.verified
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.payment_id == request.payment_id
    assert notification.provider_payment_id == transaction["transaction_id"]
    assert notification.amount == Money(12900, "CNY")
    assert notification.event_id == delivery["event_id"]
    now = provider.retrieve_payment(request.payment_id, payment.provider_payment_id)
    assert now.status is ProviderStatus.SUCCEEDED
    assert now.provider_payment_id == transaction["transaction_id"]


def test_wechatpayv3_reads_the_emulators_notifications_too(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = paid(emulator, provider, receiver)
    env = emulator.app_env()
    core = Core(
        env["WECHATPAY_MCHID"],
        env["WECHATPAY_MERCHANT_SERIAL"],
        env["WECHATPAY_MERCHANT_PRIVATE_KEY"],
        env["WECHATPAY_APIV3_KEY"],
        public_key=env["WECHATPAY_PLATFORM_PUBLIC_KEY"],
        public_key_id=env["WECHATPAY_PLATFORM_SERIAL"],
    )
    decoded = core.callback(receiver.headers[-1], receiver.bodies[-1])
    assert decoded is not None
    assert decoded["resource"]["out_trade_no"] == request.payment_id
    assert decoded["resource"]["amount"]["total"] == 12900


def test_creating_the_same_payment_again_is_idempotent(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = payment_request(receiver)
    first = provider.create_payment(request)
    again = provider.create_payment(request)
    assert again.next_action == first.next_action

    emulator.pay(request.payment_id)
    after_paying = provider.create_payment(request)

    assert after_paying.status is ProviderStatus.SUCCEEDED
    assert after_paying.provider_payment_id == emulator.order(request.payment_id)["transaction_id"]


def test_notification_is_retried_until_the_merchant_accepts_it(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    receiver.fail_next = 2
    request = payment_request(receiver)
    provider.create_payment(request)
    before = len(emulator.deliveries())

    emulator.pay(request.payment_id)
    [delivery] = emulator.wait_for_deliveries(before + 1)[before:]

    assert [attempt["status"] for attempt in delivery["attempts"]] == [500, 500, 200]
    assert delivery["delivered"]
    assert [n.payment_id for n in receiver.verified] == [request.payment_id]


def test_replay_resends_the_same_bytes(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = paid(emulator, provider, receiver)
    before = len(emulator.deliveries())

    status, answer = post(f"{emulator.url}/_emulator/transactions/{request.payment_id}/notify")
    assert status == 202
    [replayed] = emulator.wait_for_deliveries(before + 1)[before:]

    assert replayed["replay"] and replayed["number"] == answer["delivery"]
    assert receiver.bodies[0] == receiver.bodies[1]
    assert receiver.verified[0].event_id == receiver.verified[1].event_id
    status, listing = _get_json(f"{emulator.url}/_emulator/notifications")
    assert status == 200
    assert listing["deliveries"][-1]["event_id"] == replayed["event_id"]


def test_paid_amount_can_differ_from_the_order_to_test_mismatches(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = payment_request(receiver)
    provider.create_payment(request)
    before = len(emulator.deliveries())

    status, _ = post(
        f"{emulator.url}/_emulator/transactions/{request.payment_id}/pay", {"total": 1}
    )
    assert status == 200
    emulator.wait_for_deliveries(before + 1)

    assert receiver.verified[-1].amount == Money(1, "CNY")
    assert provider.retrieve_payment(request.payment_id, "").amount == Money(1, "CNY")


def test_refunds_never_exceed_what_was_paid_and_succeed_by_notification(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = paid(emulator, provider, receiver)
    transaction_id = emulator.order(request.payment_id)["transaction_id"]
    partial = RefundRequest(
        refund_id=sortable_id("ref_"),
        payment_id=request.payment_id,
        provider_payment_id=transaction_id,
        amount=Money(2900, "CNY"),
        payment_amount=Money(12900, "CNY"),
        reason="缺货",
        notify_url=receiver.url,
    )
    before = len(emulator.deliveries())

    refund = provider.refund(partial)
    again = provider.refund(partial)

    assert refund.status is ProviderStatus.PENDING  # PROCESSING
    assert refund.amount == Money(2900, "CNY")
    assert again.provider_refund_id == refund.provider_refund_id
    too_much = replace(partial, refund_id=sortable_id("ref_"), amount=Money(10001, "CNY"))
    with pytest.raises(ProviderError) as refused:
        provider.refund(too_much)
    assert refused.value.code == "INVALID_REQUEST"
    assert not refused.value.retryable

    [delivery] = emulator.wait_for_deliveries(before + 1)[before:]
    assert delivery["event_type"] == "REFUND.SUCCESS"
    notification = receiver.verified[-1]
    assert notification.kind is NotificationKind.REFUND
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.refund_id == partial.refund_id
    assert notification.provider_refund_id == refund.provider_refund_id
    assert notification.payment_id == request.payment_id
    assert notification.amount == Money(2900, "CNY")
    rest = provider.refund(replace(too_much, amount=Money(10000, "CNY")))
    assert rest.status is ProviderStatus.PENDING


def test_trade_bill_lists_the_days_payments_and_refunds(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = paid(emulator, provider, receiver, total=5000)
    transaction = emulator.order(request.payment_id)
    refund_request = RefundRequest(
        refund_id=sortable_id("ref_"),
        payment_id=request.payment_id,
        provider_payment_id=transaction["transaction_id"],
        amount=Money(1234, "CNY"),
        payment_amount=Money(5000, "CNY"),
        reason="",
        notify_url=receiver.url,
    )
    before = len(emulator.deliveries())
    refund = provider.refund(refund_request)
    emulator.wait_for_deliveries(before + 1)
    paid_on = datetime.fromisoformat(transaction["success_time"]).date()
    refunded_on = receiver.verified[-1].occurred_at.astimezone(CHINA_TIME).date()

    lines = provider.settlement(paid_on)
    if refunded_on != paid_on:  # the test ran across midnight, China time
        lines += provider.settlement(refunded_on)

    [payment_line] = [line for line in lines if line.reference == request.payment_id]
    assert payment_line.kind is SettlementKind.PAYMENT
    assert payment_line.provider_reference == transaction["transaction_id"]
    assert payment_line.amount == Money(5000, "CNY")
    assert payment_line.fee == Money(30, "CNY")  # 0.60%
    [refund_line] = [line for line in lines if line.reference == refund_request.refund_id]
    assert refund_line.kind is SettlementKind.REFUND
    assert refund_line.provider_reference == refund.provider_refund_id
    assert refund_line.amount == Money(1234, "CNY")
    assert provider.settlement(date(2001, 1, 1)) == []  # no bill that day


def test_tampered_answer_is_detected(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = payment_request(receiver)
    provider.create_payment(request)
    proxy = TamperingProxy(emulator.url, b'"NOTPAY"', b'"SUCCESS"')
    proxy.start()
    try:
        forged = WeChatPayProvider(replace(provider.config, base_url=proxy.url))
        with pytest.raises(ProviderError) as detected:
            forged.retrieve_payment(request.payment_id, request.payment_id)
    finally:
        proxy.stop()
    assert detected.value.code == "invalid_signature"
    assert proxy.tampered == 1


def test_emulator_refuses_a_badly_signed_request(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = WeChatPayProvider(
        replace(
            provider.config,
            merchant_private_key_pem=other_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )
    )
    request = payment_request(receiver)
    with pytest.raises(ProviderError) as refused:
        impostor.create_payment(request)
    assert refused.value.code == "SIGN_ERROR"
    assert emulator.order(request.payment_id) is None

    unsigned = urllib.request.Request(
        f"{emulator.url}/v3/pay/transactions/out-trade-no/{request.payment_id}"
        f"?mchid={provider.mchid}"
    )
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(unsigned, timeout=5)
    with answered.value as error:
        body = error.read()
        assert error.code == 401
        assert json.loads(body)["code"] == "SIGN_ERROR"
        # Even the refusal is signed: without Wechatpay-Serial, by the platform certificate.
        env = emulator.app_env()
        keys = {
            serial: load_platform_key(pem)
            for serial, pem in platform_certificates(env["WECHATPAY_PLATFORM_CERTIFICATES"]).items()
        }
        verify_signature(error.headers, body, keys, now=time.time())


def test_pay_page_pays_the_order_behind_a_code_url(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = payment_request(receiver, total=990)
    code_url = provider.create_payment(request).next_action["code_url"]  # type: ignore[index]
    page_url = emulator.qr_page_url(code_url)
    status, page = _get_text(page_url)
    assert status == 200 and "¥9.90" in page and "<button" in page
    before = len(emulator.deliveries())

    parts = urllib.parse.urlsplit(page_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("POST", parts.path + "/pay", body=b"")
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 303
    emulator.wait_for_deliveries(before + 1)
    assert provider.retrieve_payment(request.payment_id, "").status is ProviderStatus.SUCCEEDED
    status, page = _get_text(page_url)
    assert "<button" not in page and "支付成功" in page


# --- time_expire: the order closes when ours stops waiting ---------------------------------


def _expiring_in(minutes: float) -> datetime:
    """An order hold ``minutes`` from now, in UTC with microseconds, as the service has it."""
    return datetime.now(UTC) + timedelta(minutes=minutes, microseconds=123_456)


def _as_wechat_time(moment: datetime) -> str:
    # China time is UTC+8 all year round; worked out here without the adapter's helpers.
    china = moment.astimezone(UTC) + timedelta(hours=8)
    return china.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"


def _move_emulator_clock(monkeypatch: pytest.MonkeyPatch, minutes: float) -> None:
    later = datetime.now(CHINA_TIME).replace(microsecond=0) + timedelta(minutes=minutes)
    monkeypatch.setattr(wechat_pay_emulator, "_now", lambda: later)


def _native_payload(
    provider: WeChatPayProvider, receiver: Receiver, **extra: Any
) -> dict[str, Any]:
    return {
        "appid": provider.appid,
        "mchid": provider.mchid,
        "description": "西湖龙井 250g",
        "out_trade_no": sortable_id("pay_"),
        "notify_url": receiver.url,
        "amount": {"total": 100, "currency": "CNY"},
        **extra,
    }


def test_native_order_sends_time_expire_in_rfc3339_and_is_payable_until_then(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    expires_at = _expiring_in(30)
    request = replace(payment_request(receiver), expires_at=expires_at)

    provider.create_payment(request)

    assert emulator.time_expire(request.payment_id) == _as_wechat_time(expires_at)
    before = len(emulator.deliveries())
    status, _ = post(f"{emulator.url}/_emulator/transactions/{request.payment_id}/pay")
    assert status == 200
    emulator.wait_for_deliveries(before + 1)
    paid_now = provider.retrieve_payment(request.payment_id, "")
    assert paid_now.status is ProviderStatus.SUCCEEDED


def test_wechatpayv3_native_order_with_time_expire_is_accepted(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    env = emulator.app_env()
    core = Core(
        env["WECHATPAY_MCHID"],
        env["WECHATPAY_MERCHANT_SERIAL"],
        env["WECHATPAY_MERCHANT_PRIVATE_KEY"],
        env["WECHATPAY_APIV3_KEY"],
        public_key=env["WECHATPAY_PLATFORM_PUBLIC_KEY"],
        public_key_id=env["WECHATPAY_PLATFORM_SERIAL"],
        timeout=5,
    )
    core._gate_way = emulator.url  # the SDK knows only WeChat Pay's own host
    time_expire = _as_wechat_time(_expiring_in(30))
    payload = _native_payload(provider, receiver, time_expire=time_expire)

    status, text = core.request(
        "/v3/pay/transactions/native", method=RequestType.POST, data=payload
    )

    assert status == 200, text
    assert json.loads(text)["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert emulator.time_expire(payload["out_trade_no"]) == time_expire


def test_order_past_its_time_expire_is_closed_and_cannot_be_paid(
    emulator: WeChatPayEmulator,
    provider: WeChatPayProvider,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = replace(payment_request(receiver), expires_at=_expiring_in(2))
    code_url = provider.create_payment(request).next_action["code_url"]  # type: ignore[index]
    page_url = emulator.qr_page_url(code_url)
    assert "<button" in _get_text(page_url)[1]
    assert provider.retrieve_payment(request.payment_id, "").status is ProviderStatus.PENDING
    before = len(emulator.deliveries())

    _move_emulator_clock(monkeypatch, 3)

    queried = provider.retrieve_payment(request.payment_id, "")
    assert queried.status is ProviderStatus.FAILED
    assert queried.failure_code == "CLOSED"
    status, answer = post(f"{emulator.url}/_emulator/transactions/{request.payment_id}/pay")
    assert (status, answer["code"]) == (409, "ORDER_CLOSED")
    parts = urllib.parse.urlsplit(page_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("POST", parts.path + "/pay", body=b"")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 303  # back to the page, which shows the order closed
    status, page = _get_text(page_url)
    assert "<button" not in page and "订单已关闭" in page
    with pytest.raises(ProviderError) as again:
        provider.create_payment(request)
    assert again.value.code == "ORDER_CLOSED"
    assert emulator.order(request.payment_id)["trade_state"] == "CLOSED"  # type: ignore[index]
    assert len(emulator.deliveries()) == before


def test_repeat_with_another_time_expire_keeps_the_first(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    first_expiry = _expiring_in(30)
    request = replace(payment_request(receiver), expires_at=first_expiry)
    first = provider.create_payment(request)

    again = provider.create_payment(replace(request, expires_at=_expiring_in(45)))

    assert again.next_action == first.next_action
    assert emulator.time_expire(request.payment_id) == _as_wechat_time(first_expiry)


@pytest.mark.parametrize(
    "time_expire",
    [
        "2099-11-26 10:34:56",  # Alipay's format, not WeChat Pay's
        "2099-11-26T10:34:56",  # no offset
        "2099-11-26T10:34:56.123+08:00",
        "2099-02-30T10:00:00+08:00",
        "",
        1_700_000_000,
    ],
)
def test_badly_written_time_expire_is_a_parameter_error(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver, time_expire: Any
) -> None:
    payload = _native_payload(provider, receiver, time_expire=time_expire)

    with pytest.raises(WeChatPayApiError) as caught:
        provider._call("POST", "/v3/pay/transactions/native", payload)

    assert (caught.value.status, caught.value.code) == (400, "PARAM_ERROR")
    assert emulator.order(payload["out_trade_no"]) is None


def test_time_expire_already_past_is_a_parameter_error(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = replace(payment_request(receiver), expires_at=_expiring_in(-1))

    with pytest.raises(ProviderError) as caught:
        provider.create_payment(request)

    assert caught.value.code == "PARAM_ERROR"
    assert emulator.order(request.payment_id) is None


def test_keys_are_generated_once_per_state_dir_and_private(tmp_path: Path) -> None:
    first = WeChatPayEmulator(tmp_path)
    second = WeChatPayEmulator(tmp_path)
    first.start()
    second.start()
    try:
        first_env, second_env = first.app_env(), second.app_env()
    finally:
        first.stop()
        second.stop()
    del first_env["WECHATPAY_BASE_URL"], second_env["WECHATPAY_BASE_URL"]
    assert first_env == second_env
    assert len(first_env["WECHATPAY_APIV3_KEY"]) == 32
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    elsewhere = WeChatPayEmulator(tmp_path / "elsewhere")
    assert elsewhere.apiv3_key != first.apiv3_key
    assert elsewhere.merchant_serial != first.merchant_serial


# --- helpers ------------------------------------------------------------------------------


def _get_text(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def _get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, text = _get_text(url)
    return status, json.loads(text)


class TamperingProxy:
    """Forwards to the emulator and rewrites ``find`` in its answers, keeping the headers."""

    def __init__(self, upstream: str, find: bytes, replacement: bytes) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.find = find
        self.replacement = replacement
        self.tampered = 0
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=5
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(method, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                content = answer.read()
                if proxy.find in content:
                    content = content.replace(proxy.find, proxy.replacement)
                    proxy.tampered += 1
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                upstream.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- notify URLs as WeChat Pay takes them ----------------------------------------------------


def _sdk_core(emulator: WeChatPayEmulator) -> Core:
    env = emulator.app_env()
    core = Core(
        env["WECHATPAY_MCHID"],
        env["WECHATPAY_MERCHANT_SERIAL"],
        env["WECHATPAY_MERCHANT_PRIVATE_KEY"],
        env["WECHATPAY_APIV3_KEY"],
        public_key=env["WECHATPAY_PLATFORM_PUBLIC_KEY"],
        public_key_id=env["WECHATPAY_PLATFORM_SERIAL"],
        timeout=5,
    )
    core._gate_way = emulator.url  # the SDK knows only WeChat Pay's own host
    return core


@pytest.mark.parametrize(
    "notify_url",
    [
        "http://api.example.com/webhooks/payments/wechat_pay",
        "https://api.example.com/webhooks/payments/wechat_pay?order=1",
        "/webhooks/payments/wechat_pay",
    ],
)
def test_emulator_refuses_a_notify_url_wechat_pay_refuses(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver, notify_url: str
) -> None:
    payload = _native_payload(provider, receiver, notify_url=notify_url)

    status, text = _sdk_core(emulator).request(
        "/v3/pay/transactions/native", method=RequestType.POST, data=payload
    )

    assert status == 400, text
    assert json.loads(text)["code"] == "PARAM_ERROR"
    assert emulator.order(payload["out_trade_no"]) is None


@pytest.mark.parametrize(
    "notify_url",
    [
        "https://api.example.com/webhooks/payments/wechat_pay",
        "http://127.0.0.1:9/webhooks/payments/wechat_pay",
        "http://localhost:9/webhooks/payments/wechat_pay?local=1",
    ],
)
def test_emulator_takes_https_and_loopback_notify_urls(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver, notify_url: str
) -> None:
    payload = _native_payload(provider, receiver, notify_url=notify_url)

    status, text = _sdk_core(emulator).request(
        "/v3/pay/transactions/native", method=RequestType.POST, data=payload
    )

    assert status == 200, text


def test_adapter_refuses_a_plain_http_notify_url_before_calling(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    request = replace(
        payment_request(receiver), notify_url="http://api.example.com/webhooks/payments/wechat_pay"
    )

    with pytest.raises(ProviderError) as refused:
        provider.create_payment(request)

    assert refused.value.code == "invalid_notify_url"
    assert emulator.order(request.payment_id) is None


# --- public key and platform certificates, by serial -----------------------------------------


def _provider_trusting(
    emulator: WeChatPayEmulator, *, public_key: bool, certificate: bool
) -> WeChatPayProvider:
    env = emulator.app_env()
    if not public_key:
        env["WECHATPAY_PLATFORM_PUBLIC_KEY"] = env["WECHATPAY_PLATFORM_SERIAL"] = ""
    if not certificate:
        env["WECHATPAY_PLATFORM_CERTIFICATES"] = ""
    return WeChatPayProvider.from_settings(settings_for(env))


@pytest.mark.parametrize(
    ("public_key", "certificate"), [(True, False), (False, True), (True, True)]
)
def test_answers_are_signed_with_the_key_the_request_names_and_verify(
    emulator: WeChatPayEmulator, receiver: Receiver, public_key: bool, certificate: bool
) -> None:
    provider = _provider_trusting(emulator, public_key=public_key, certificate=certificate)
    request = payment_request(receiver)

    payment = provider.create_payment(request)  # the answer verified, or this raised

    assert payment.status is ProviderStatus.PENDING
    expected = emulator.platform_serial if public_key else emulator.platform_keys.certificate_serial
    assert provider._request_serial == expected


def test_callbacks_signed_with_either_key_verify_during_the_switch(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    serials = []
    try:
        for kind in ("certificate", "public_key"):
            status, _ = post(f"{emulator.url}/_emulator/callback-key", {"key": kind})
            assert status == 200
            paid(emulator, provider, receiver)
            deadline = time.monotonic() + 5
            while len(receiver.verified) < len(serials) + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            serials.append(receiver.headers[-1]["Wechatpay-Serial"])
    finally:
        emulator.sign_callbacks_with("public_key")

    assert receiver.rejected == []
    assert serials == [emulator.platform_keys.certificate_serial, emulator.platform_serial]


def test_a_merchant_without_the_certificate_refuses_a_callback_signed_with_it(
    emulator: WeChatPayEmulator, receiver: Receiver
) -> None:
    receiver.provider = _provider_trusting(emulator, public_key=True, certificate=False)
    emulator.sign_callbacks_with("certificate")
    try:
        paid(emulator, receiver.provider, receiver)
        deadline = time.monotonic() + 5
        while not receiver.rejected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        emulator.sign_callbacks_with("public_key")

    assert receiver.rejected and "unknown platform key serial" in receiver.rejected[0]


def test_sdk_naming_an_unknown_serial_is_refused(
    emulator: WeChatPayEmulator, provider: WeChatPayProvider, receiver: Receiver
) -> None:
    env = emulator.app_env()
    core = Core(
        env["WECHATPAY_MCHID"],
        env["WECHATPAY_MERCHANT_SERIAL"],
        env["WECHATPAY_MERCHANT_PRIVATE_KEY"],
        env["WECHATPAY_APIV3_KEY"],
        public_key=env["WECHATPAY_PLATFORM_PUBLIC_KEY"],
        public_key_id="PUB_KEY_ID_0199999999999999999999999999999999",
        timeout=5,
    )
    core._gate_way = emulator.url

    status, text = core.request(
        "/v3/pay/transactions/native",
        method=RequestType.POST,
        data=_native_payload(provider, receiver),
    )

    assert status == 400 and json.loads(text)["code"] == "PARAM_ERROR"
