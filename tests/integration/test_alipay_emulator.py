"""The Alipay adapter against the local Alipay gateway emulator, over HTTP on 127.0.0.1.

A tiny receiver stands in for our webhook: it verifies every notification with the
adapter and answers what the adapter says to answer. Alipay's Python SDK (dev only) is a
second, independent client: what the emulator signs must verify there too.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
from chalicelib.adapters.payments.alipay import (
    CHINA_TIME,
    AlipayConfig,
    AlipayProvider,
)
from chalicelib.domain.money import Money
from chalicelib.settings import Settings
from infra.local.emulators.alipay import AlipayEmulator
from infra.local.emulators.alipay_keys import APP_KEY_FILE, PLATFORM_KEY_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- a webhook stand-in ----------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    notification: Notification | None
    error: str | None


@dataclass
class Receiver:
    """Collects notifications; ``replies`` (if any) overrides the next answers."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    replies: list[tuple[int, str]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            assert len(self.received) >= count, f"only {len(self.received)} notifications"
            return list(self.received)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir per module: its keys are made once, as on a developer's machine."""
    return tmp_path_factory.mktemp("alipay-state")


@pytest.fixture
def emulator(state_dir: Path) -> Iterator[AlipayEmulator]:
    gateway = AlipayEmulator(state_dir)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def provider(emulator: AlipayEmulator) -> AlipayProvider:
    env = emulator.app_env()
    return AlipayProvider(
        AlipayConfig(
            app_id=env["ALIPAY_APP_ID"],
            gateway_url=env["ALIPAY_GATEWAY_URL"],
            app_private_key_pem=env["ALIPAY_APP_PRIVATE_KEY"],
            alipay_public_key_pem=env["ALIPAY_PUBLIC_KEY"],
        )
    )


@pytest.fixture
def receiver(provider: AlipayProvider) -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            try:
                notification: Notification | None = provider.verify_notification(headers, body)
                reply, error = provider.acknowledge(), None
            except NotificationRejected as rejected:
                notification, error = None, str(rejected)
                reply = provider.reject(error)
            status, text = (reply.status_code, reply.body)
            with state.arrived:
                if state.replies:
                    status, text = state.replies.pop(0)
                state.received.append(Received(headers, body, notification, error))
                state.arrived.notify_all()
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/alipay"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- small helpers ---------------------------------------------------------------------


def _payment(receiver: Receiver, payment_id: str, fen: int, **extra: Any) -> PaymentRequest:
    return PaymentRequest(
        payment_id=payment_id,
        order_id=f"ord_{payment_id}",
        amount=Money(fen, "CNY"),
        description="龙井茶 250g",
        notify_url=receiver.url,
        **extra,
    )


def _refund(receiver: Receiver, refund_id: str, payment_id: str, fen: int) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id,
        payment_id=payment_id,
        provider_payment_id=payment_id,
        amount=Money(fen, "CNY"),
        payment_amount=Money(fen, "CNY"),
        reason="商品破损",
        notify_url=receiver.url,
    )


def _http(
    method: str, url: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _sdk(emulator: AlipayEmulator, private_key_pem: str | None = None) -> AliPay:
    env = emulator.app_env()
    client = AliPay(
        appid=env["ALIPAY_APP_ID"],
        app_private_key_string=private_key_pem or env["ALIPAY_APP_PRIVATE_KEY"],
        alipay_public_key_string=env["ALIPAY_PUBLIC_KEY"],
        sign_type="RSA2",
    )
    client._gateway = env["ALIPAY_GATEWAY_URL"]  # the SDK knows only Alipay's own hosts
    return client


def _china_now() -> str:
    return datetime.now(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


def _stranger_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# --- payments --------------------------------------------------------------------------


def test_precreate_then_pay_posts_a_notification_that_verifies(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    payment = provider.create_payment(_payment(receiver, "pay_qr_1", 12880))

    assert payment.status is ProviderStatus.PENDING
    assert payment.provider_payment_id == "pay_qr_1"
    assert payment.next_action is not None and payment.next_action["type"] == "qr_code"
    assert payment.next_action["code_url"].startswith(f"{emulator.url}/qr/")

    status, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_qr_1/pay")
    assert status == 200

    (received,) = receiver.wait_for(1)
    notification = received.notification
    assert notification is not None, received.error
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.payment_id == "pay_qr_1"
    assert notification.amount == Money(12880, "CNY")
    assert notification.provider_payment_id == emulator.trade("pay_qr_1")["trade_no"]
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    (delivery,) = emulator.wait_for_deliveries(1)
    assert delivery["notify_id"] == notification.event_id
    assert (delivery["status"], delivery["body"]) == (200, "success")
    _, _, listed = _http("GET", f"{emulator.url}/_emulator/notifications")
    assert json.loads(listed)["notifications"][0]["notify_id"] == notification.event_id


def test_emulator_notification_also_verifies_with_the_sdk(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_sdk_1", 990))
    emulator.pay("pay_sdk_1")

    (received,) = receiver.wait_for(1)
    fields = dict(urllib.parse.parse_qsl(received.body.decode(), keep_blank_values=True))
    signature = fields.pop("sign")

    assert _sdk(emulator).verify(fields, signature)
    assert fields["subject"] == "龙井茶 250g" and fields["notify_type"] == "trade_status_sync"


def test_payment_notification_carries_alipays_real_fields_and_is_a_payment(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_real_1", 990))
    emulator.pay("pay_real_1")

    (received,) = receiver.wait_for(1)
    fields = dict(urllib.parse.parse_qsl(received.body.decode(), keep_blank_values=True))

    # As in Alipay's documented sample: a zero refund_fee, gmt_close, and an empty value.
    assert fields["refund_fee"] == "0.00" and fields["gmt_close"]
    assert "" in fields.values()
    assert received.notification is not None, received.error
    assert received.notification.kind is NotificationKind.PAYMENT
    assert received.notification.amount == Money(990, "CNY")


def test_scanning_the_code_shows_a_pay_page_that_pays(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    payment = provider.create_payment(_payment(receiver, "pay_page_1", 5000))
    assert payment.next_action is not None
    code_url = payment.next_action["code_url"]

    status, _, page = _http("GET", code_url)
    assert status == 200
    assert "¥50.00" in page.decode() and 'method="post"' in page.decode()
    action = re.search(r'action="([^"]+)"', page.decode())
    assert action is not None

    status, _, _ = _http("POST", emulator.url + action.group(1), b"")
    assert status == 200

    (received,) = receiver.wait_for(1)
    assert received.notification is not None
    assert received.notification.amount == Money(5000, "CNY")


def test_query_follows_the_trade_from_scan_to_payment(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    payment = provider.create_payment(_payment(receiver, "pay_q_1", 2500))
    assert payment.next_action is not None

    with pytest.raises(ProviderError) as caught:  # Alipay has no trade before the scan
        provider.retrieve_payment("pay_q_1", "pay_q_1")
    assert caught.value.code == "ACQ.TRADE_NOT_EXIST"

    _http("GET", payment.next_action["code_url"])
    scanned = provider.retrieve_payment("pay_q_1", "pay_q_1")
    assert scanned.status is ProviderStatus.PENDING

    emulator.pay("pay_q_1")
    paid = provider.retrieve_payment("pay_q_1", "pay_q_1")
    assert paid.status is ProviderStatus.SUCCEEDED
    assert paid.amount == Money(2500, "CNY")
    assert paid.provider_payment_id == emulator.trade("pay_q_1")["trade_no"]


def test_precreate_again_gives_the_same_code_and_refuses_changed_terms(
    provider: AlipayProvider, receiver: Receiver
) -> None:
    first = provider.create_payment(_payment(receiver, "pay_again", 1000))
    again = provider.create_payment(_payment(receiver, "pay_again", 1000))

    assert first.next_action == again.next_action
    with pytest.raises(ProviderError) as caught:
        provider.create_payment(_payment(receiver, "pay_again", 1001))
    assert caught.value.code == "ACQ.CONTEXT_INCONSISTENT"


def test_precreate_of_a_paid_trade_reports_it_paid(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_done", 1000))
    emulator.pay("pay_done")

    repeated = provider.create_payment(_payment(receiver, "pay_done", 1000))

    assert repeated.status is ProviderStatus.SUCCEEDED


def test_page_pay_redirects_back_with_signed_parameters(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    return_url = "http://127.0.0.1:9/orders/ord_pp/paid"
    payment = provider.create_payment(_payment(receiver, "pay_pp", 8800, return_url=return_url))
    assert payment.next_action is not None and payment.next_action["type"] == "redirect"

    status, _, page = _http("GET", payment.next_action["url"])
    assert status == 200 and "¥88.00" in page.decode()
    action = re.search(r'action="([^"]+)"', page.decode())
    assert action is not None
    status, headers, _ = _http("POST", emulator.url + action.group(1), b"")

    assert status == 303
    target = urllib.parse.urlsplit(headers["Location"])
    assert target.path == "/orders/ord_pp/paid"
    back = dict(urllib.parse.parse_qsl(target.query))
    assert back["out_trade_no"] == "pay_pp" and back["total_amount"] == "88.00"
    signature = back.pop("sign")
    assert _sdk(emulator).verify(back, signature)
    assert receiver.wait_for(1)[0].notification is not None


def test_paying_a_different_amount_is_what_the_notification_says(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_odd", 10000))

    status, _, _ = _http(
        "POST",
        f"{emulator.url}/_emulator/trades/pay_odd/pay",
        json.dumps({"total_amount": "1.00"}).encode(),
        "application/json",
    )

    assert status == 200
    (received,) = receiver.wait_for(1)
    assert received.notification is not None
    assert received.notification.amount == Money(100, "CNY")


def test_paying_twice_is_a_conflict(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_twice", 100))

    first, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_twice/pay")
    second, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_twice/pay")
    unknown, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/nope/pay")

    assert (first, second, unknown) == (200, 409, 404)


# --- notifications ---------------------------------------------------------------------


def test_notification_is_retried_until_the_answer_is_success(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    receiver.replies = [(500, "oops"), (200, "ok")]  # neither is exactly "success"
    provider.create_payment(_payment(receiver, "pay_retry", 700))
    emulator.pay("pay_retry")

    received = receiver.wait_for(3)
    deliveries = emulator.wait_for_deliveries(3)

    assert [d["body"] for d in deliveries] == ["oops", "ok", "success"]
    assert len({r.body for r in received}) == 1  # the same notification each time
    assert len({d["notify_id"] for d in deliveries}) == 1


def test_replayed_notification_is_byte_for_byte_the_same_event(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_replay", 4200))
    emulator.pay("pay_replay")
    receiver.wait_for(1)

    status, _, answer = _http("POST", f"{emulator.url}/_emulator/trades/pay_replay/notify")

    assert status == 202
    first, replay = receiver.wait_for(2)
    assert replay.body == first.body
    assert replay.notification is not None and first.notification is not None
    assert replay.notification.event_id == first.notification.event_id
    assert json.loads(answer)["notify_id"] == first.notification.event_id


def test_notifications_go_only_to_loopback_addresses(
    emulator: AlipayEmulator, provider: AlipayProvider
) -> None:
    request = PaymentRequest(
        payment_id="pay_far",
        order_id="ord_far",
        amount=Money(100, "CNY"),
        description="tea",
        notify_url="http://192.0.2.10/webhooks/alipay",
    )
    provider.create_payment(request)
    emulator.pay("pay_far")

    (delivery,) = emulator.wait_for_deliveries(1)

    assert delivery["status"] is None and "not a local" in delivery["body"]


# --- refunds ---------------------------------------------------------------------------


def test_partial_refund_then_over_refund_is_refused(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_rf", 10000))
    emulator.pay("pay_rf")
    receiver.wait_for(1)

    partial = provider.refund(_refund(receiver, "ref_rf_1", "pay_rf", 3000))
    repeat = provider.refund(_refund(receiver, "ref_rf_1", "pay_rf", 3000))

    assert (partial.status, partial.amount) == (ProviderStatus.SUCCEEDED, Money(3000, "CNY"))
    assert partial.provider_refund_id == "ref_rf_1"
    assert repeat.status is ProviderStatus.SUCCEEDED
    assert emulator.trade("pay_rf")["refunded_amount"] == "30.00"

    with pytest.raises(ProviderError) as caught:
        provider.refund(_refund(receiver, "ref_rf_2", "pay_rf", 7001))
    assert caught.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert emulator.trade("pay_rf")["refunded_amount"] == "30.00"

    rest = provider.refund(_refund(receiver, "ref_rf_3", "pay_rf", 7000))
    assert rest.status is ProviderStatus.SUCCEEDED
    assert emulator.trade("pay_rf")["trade_status"] == "TRADE_CLOSED"


def test_refund_posts_a_refund_notification(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_rn", 10000))
    emulator.pay("pay_rn")
    receiver.wait_for(1)

    provider.refund(_refund(receiver, "ref_rn_1", "pay_rn", 2500))

    refund_notice = receiver.wait_for(2)[1].notification
    assert refund_notice is not None
    assert refund_notice.kind is NotificationKind.REFUND
    assert refund_notice.refund_id == "ref_rn_1"
    assert refund_notice.amount == Money(2500, "CNY")


def test_reusing_a_refund_id_for_another_amount_is_an_error(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_reuse", 10000))
    emulator.pay("pay_reuse")
    provider.refund(_refund(receiver, "ref_reuse", "pay_reuse", 1000))

    with pytest.raises(ProviderError) as caught:
        provider.refund(_refund(receiver, "ref_reuse", "pay_reuse", 2000))

    assert caught.value.code == "refund_id_reused"
    assert emulator.trade("pay_reuse")["refunded_amount"] == "10.00"


def test_refund_of_an_unpaid_trade_is_refused(
    provider: AlipayProvider, receiver: Receiver, emulator: AlipayEmulator
) -> None:
    payment = provider.create_payment(_payment(receiver, "pay_unpaid", 1000))
    assert payment.next_action is not None
    _http("GET", payment.next_action["code_url"])

    with pytest.raises(ProviderError) as caught:
        provider.refund(_refund(receiver, "ref_unpaid", "pay_unpaid", 1000))

    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"


# --- the trade bill --------------------------------------------------------------------


def test_bill_download_is_parsed_into_settlement_records(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    for payment_id, fen in (("pay_bill_1", 12880), ("pay_bill_2", 5000)):
        provider.create_payment(_payment(receiver, payment_id, fen))
        emulator.pay(payment_id)
    provider.refund(_refund(receiver, "ref_bill_1", "pay_bill_1", 2880))
    today = datetime.now(CHINA_TIME).date()

    records = provider.settlement(today)

    by_reference = {record.reference: record for record in records}
    assert set(by_reference) == {"pay_bill_1", "pay_bill_2", "ref_bill_1"}
    first, refund = by_reference["pay_bill_1"], by_reference["ref_bill_1"]
    assert first.kind is SettlementKind.PAYMENT and refund.kind is SettlementKind.REFUND
    assert first.amount == Money(12880, "CNY")
    assert first.fee == Money(77, "CNY")  # 0.6% of 128.80, rounded
    assert first.provider_reference == emulator.trade("pay_bill_1")["trade_no"]
    assert refund.amount == Money(2880, "CNY")
    assert refund.provider_reference == first.provider_reference
    assert refund.details["out_trade_no"] == "pay_bill_1"
    assert by_reference["pay_bill_2"].amount == Money(5000, "CNY")
    assert all(record.settled_at is not None for record in records)


def test_bill_is_a_zip_of_gbk_csv_as_alipay_sends_it(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_gbk", 100))
    emulator.pay("pay_gbk")
    today = datetime.now(CHINA_TIME).date().isoformat()

    # The SDK as the client: it signs its own way and verifies the emulator's answer.
    answer = _sdk(emulator).server_api(
        "alipay.data.dataservice.bill.downloadurl.query",
        {"bill_type": "trade", "bill_date": today},
        timestamp=_china_now(),
    )
    status, _, archive = _http("GET", answer["bill_download_url"])

    assert answer["code"] == "10000" and status == 200
    with zipfile.ZipFile(io.BytesIO(archive)) as bill:
        infos = bill.infolist()
        names = [info.filename.encode("cp437").decode("gbk") for info in infos]
        assert all(info.flag_bits & 0x800 == 0 for info in infos)  # GBK, not UTF-8, names
        detail_name = next(name for name in names if name.endswith("_业务明细.csv"))
        detail = bill.read(infos[names.index(detail_name)]).decode("gbk")
    lines = detail.splitlines()
    assert lines[0].startswith("#支付宝业务明细查询")
    header = next(line for line in lines if not line.startswith("#"))
    assert header.startswith("支付宝交易号,商户订单号,业务类型")
    assert any("pay_gbk\t" in line and ",交易," in line for line in lines)


def test_bill_for_a_future_day_does_not_exist(provider: AlipayProvider) -> None:
    tomorrow = datetime.now(CHINA_TIME).date() + timedelta(days=1)

    with pytest.raises(ProviderError) as caught:
        provider.settlement(tomorrow)

    assert caught.value.code == "isp.bill_not_exist"


# --- signatures on the wire ------------------------------------------------------------


def test_emulator_refuses_a_request_signed_with_a_wrong_key(
    emulator: AlipayEmulator, provider: AlipayProvider
) -> None:
    env = emulator.app_env()
    impostor = AlipayProvider(
        AlipayConfig(
            app_id=env["ALIPAY_APP_ID"],
            gateway_url=env["ALIPAY_GATEWAY_URL"],
            app_private_key_pem=_stranger_key_pem(),
            alipay_public_key_pem=env["ALIPAY_PUBLIC_KEY"],
        )
    )

    with pytest.raises(ProviderError) as caught:
        impostor.retrieve_payment("pay_x", "pay_x")
    assert caught.value.code == "isv.invalid-signature"

    # The same refusal on the wire, in Alipay's error shape.
    params = impostor._signed_params("alipay.trade.query", {"out_trade_no": "pay_x"})
    status, _, raw = _http(
        "POST",
        env["ALIPAY_GATEWAY_URL"],
        urllib.parse.urlencode(params).encode(),
        "application/x-www-form-urlencoded;charset=utf-8",
    )
    node = json.loads(raw)["alipay_trade_query_response"]
    assert status == 200
    assert (node["code"], node["sub_code"]) == ("40002", "isv.invalid-signature")


def test_emulator_refuses_an_unknown_app_and_a_stale_timestamp(
    emulator: AlipayEmulator, provider: AlipayProvider
) -> None:
    params = provider._signed_params("alipay.trade.query", {"out_trade_no": "pay_x"})
    stale = provider._signed_params("alipay.trade.query", {"out_trade_no": "pay_x"})
    stale["timestamp"] = "2020-01-01 00:00:00"  # the gateway checks the time before the sign
    other_app = {**params, "app_id": "2021000000009999"}

    answers = []
    for form in (other_app, stale):
        _, _, raw = _http(
            "POST",
            emulator.gateway_url,
            urllib.parse.urlencode(form).encode(),
            "application/x-www-form-urlencoded",
        )
        answers.append(json.loads(raw)["alipay_trade_query_response"]["sub_code"])

    assert answers == ["isv.invalid-app-id", "isv.invalid-timestamp"]


def test_tampered_response_is_detected_by_the_adapter(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    provider.create_payment(_payment(receiver, "pay_tamper", 100))
    emulator.pay("pay_tamper")

    emulator.inject_fault("tamper_response")
    with pytest.raises(ProviderError) as tampered:
        provider.retrieve_payment("pay_tamper", "pay_tamper")
    emulator.inject_fault("drop_signature")
    with pytest.raises(ProviderError) as unsigned:
        provider.retrieve_payment("pay_tamper", "pay_tamper")
    untouched = provider.retrieve_payment("pay_tamper", "pay_tamper")

    assert tampered.value.code == "invalid_response_signature"
    assert unsigned.value.code == "unsigned_response"
    assert untouched.status is ProviderStatus.SUCCEEDED


def test_response_signed_by_another_key_is_refused(
    emulator: AlipayEmulator, receiver: Receiver
) -> None:
    env = emulator.app_env()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong_public = (
        stranger.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    misled = AlipayProvider(
        AlipayConfig(
            env["ALIPAY_APP_ID"],
            env["ALIPAY_GATEWAY_URL"],
            env["ALIPAY_APP_PRIVATE_KEY"],
            wrong_public,
        )
    )

    with pytest.raises(ProviderError) as caught:
        misled.create_payment(_payment(receiver, "pay_misled", 100))

    assert caught.value.code == "invalid_response_signature"


def test_unreachable_gateway_is_a_retryable_error(emulator: AlipayEmulator) -> None:
    env = emulator.app_env()
    emulator.stop()
    provider = AlipayProvider(
        AlipayConfig(
            env["ALIPAY_APP_ID"],
            env["ALIPAY_GATEWAY_URL"],
            env["ALIPAY_APP_PRIVATE_KEY"],
            env["ALIPAY_PUBLIC_KEY"],
            timeout_seconds=2,
        )
    )

    with pytest.raises(ProviderError) as caught:
        provider.retrieve_payment("pay_x", "pay_x")

    assert caught.value.code == "unreachable" and caught.value.retryable


# --- keys and running it alone ---------------------------------------------------------


def test_keys_are_private_files_reused_across_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = AlipayEmulator(tmp_path / "keys")
    second = AlipayEmulator(tmp_path / "keys")

    for name in (APP_KEY_FILE, PLATFORM_KEY_FILE):
        mode = stat.S_IMODE(os.stat(tmp_path / "keys" / name).st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
    first.start()
    try:
        env = first.app_env()
        second.start()
        second_env = second.app_env()
        second.stop()
        keys = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY")
        assert [second_env[k] for k in keys] == [env[k] for k in keys]
        assert env["ALIPAY_APP_PRIVATE_KEY"] != env["ALIPAY_PUBLIC_KEY"]

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_environment()
        built = AlipayProvider.from_settings(settings)
        assert built.config.gateway_url == f"{first.url}/gateway.do"
    finally:
        first.stop()


def test_emulator_runs_alone_from_the_command_line(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "infra.local.emulators.alipay"),
            *("--port", "0", "--state-dir", str(tmp_path / "cli")),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first_line)
        assert match is not None, first_line + (process.stderr.read() if process.stderr else "")
        status, _, body = _http("GET", f"{match.group(1)}/_emulator/notifications")
        assert status == 200 and json.loads(body) == {"notifications": []}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --- time_expire: the trade closes when the order stops waiting ------------------------


def _expiring_in(minutes: float) -> datetime:
    """An order hold ``minutes`` from now, in UTC with microseconds, as the service has it."""
    return datetime.now(UTC) + timedelta(minutes=minutes, microseconds=123_456)


def _as_alipay_time(moment: datetime) -> str:
    # China time is UTC+8 all year round; worked out here without the adapter's helpers.
    return (moment.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def _move_emulator_clock(monkeypatch: pytest.MonkeyPatch, minutes: float) -> None:
    # Within the gateway's 15 minutes of timestamp tolerance, so the adapter still gets in.
    later = datetime.now(CHINA_TIME) + timedelta(minutes=minutes)
    monkeypatch.setattr(AlipayEmulator, "_now", staticmethod(lambda: later))


def test_precreate_sends_time_expire_in_china_time_and_is_payable_until_then(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    expires_at = _expiring_in(30)

    provider.create_payment(_payment(receiver, "pay_te_qr", 1500, expires_at=expires_at))

    assert emulator.trade("pay_te_qr")["time_expire"] == _as_alipay_time(expires_at)
    status, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_te_qr/pay")
    assert status == 200
    assert emulator.trade("pay_te_qr")["trade_status"] == "TRADE_SUCCESS"


def test_page_pay_sends_time_expire_too(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    expires_at = _expiring_in(30)
    payment = provider.create_payment(
        _payment(
            receiver,
            "pay_te_page",
            8800,
            return_url="http://127.0.0.1:9/orders/ord_te/paid",
            expires_at=expires_at,
        )
    )
    assert payment.next_action is not None

    status, _, _ = _http("GET", payment.next_action["url"])  # the browser opens the cashier

    assert status == 200
    assert emulator.trade("pay_te_page")["time_expire"] == _as_alipay_time(expires_at)


def test_sdk_precreate_with_time_expire_is_accepted_as_alipay_documents_it(
    emulator: AlipayEmulator,
) -> None:
    time_expire = _as_alipay_time(_expiring_in(30))

    answer = _sdk(emulator).server_api(
        "alipay.trade.precreate",
        {
            "out_trade_no": "pay_te_sdk",
            "total_amount": "9.90",
            "subject": "tea",
            "time_expire": time_expire,
        },
        timestamp=_china_now(),
    )

    assert answer["code"] == "10000" and answer["qr_code"].startswith(f"{emulator.url}/qr/")
    assert emulator.trade("pay_te_sdk")["time_expire"] == time_expire


def test_scanned_trade_past_its_time_expire_is_closed_and_cannot_be_paid(
    emulator: AlipayEmulator,
    provider: AlipayProvider,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _payment(receiver, "pay_te_closed", 2500, expires_at=_expiring_in(2))
    payment = provider.create_payment(request)
    assert payment.next_action is not None
    code_url = payment.next_action["code_url"]
    status, _, page = _http("GET", code_url)
    assert status == 200 and 'method="post"' in page.decode()
    assert provider.retrieve_payment("pay_te_closed", "pay_te_closed").status is (
        ProviderStatus.PENDING
    )

    _move_emulator_clock(monkeypatch, 3)

    queried = provider.retrieve_payment("pay_te_closed", "pay_te_closed")
    assert queried.status is ProviderStatus.FAILED
    assert queried.failure_code == "TRADE_CLOSED"
    assert emulator.trade("pay_te_closed")["trade_status"] == "TRADE_CLOSED"
    control, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_te_closed/pay")
    assert control == 409
    status, _, page = _http("GET", code_url)
    assert status == 200 and "TRADE_CLOSED" in page.decode()
    assert 'method="post"' not in page.decode()
    token = code_url.rsplit("/", 1)[1]
    status, _, _ = _http("POST", f"{emulator.url}/qr/{token}/pay", b"")
    assert status == 409
    with pytest.raises(ProviderError) as again:
        provider.create_payment(request)
    assert again.value.code == "ACQ.TRADE_HAS_CLOSE"
    assert emulator.trade("pay_te_closed")["trade_status"] == "TRADE_CLOSED"
    assert emulator.notifications() == []


def test_page_pay_past_its_time_expire_is_refused_at_the_cashier(
    emulator: AlipayEmulator,
    provider: AlipayProvider,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment = provider.create_payment(
        _payment(
            receiver,
            "pay_te_cashier",
            3000,
            return_url="http://127.0.0.1:9/orders/ord_te/paid",
            expires_at=_expiring_in(2),
        )
    )
    assert payment.next_action is not None
    _, _, page = _http("GET", payment.next_action["url"])
    action = re.search(r'action="([^"]+)"', page.decode())
    assert action is not None

    _move_emulator_clock(monkeypatch, 3)
    status, _, refused = _http("POST", emulator.url + action.group(1), b"")

    assert status == 409 and "TRADE_CLOSED" in refused.decode()
    queried = provider.retrieve_payment("pay_te_cashier", "pay_te_cashier")
    assert queried.status is ProviderStatus.FAILED
    assert emulator.trade("pay_te_cashier")["trade_status"] == "TRADE_CLOSED"


def test_code_never_scanned_before_its_time_expire_cannot_be_paid_and_never_existed(
    emulator: AlipayEmulator,
    provider: AlipayProvider,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment = provider.create_payment(
        _payment(receiver, "pay_te_unscanned", 1200, expires_at=_expiring_in(2))
    )
    assert payment.next_action is not None

    _move_emulator_clock(monkeypatch, 3)

    control, _, _ = _http("POST", f"{emulator.url}/_emulator/trades/pay_te_unscanned/pay")
    assert control == 409
    status, _, page = _http("GET", payment.next_action["code_url"])
    assert status == 200 and 'method="post"' not in page.decode()
    with pytest.raises(ProviderError) as caught:  # as at Alipay: no trade was ever opened
        provider.retrieve_payment("pay_te_unscanned", "pay_te_unscanned")
    assert caught.value.code == "ACQ.TRADE_NOT_EXIST"


def test_repeat_with_another_time_expire_keeps_the_first(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    first_expiry = _expiring_in(30)
    first = provider.create_payment(
        _payment(receiver, "pay_te_again", 1000, expires_at=first_expiry)
    )
    again = provider.create_payment(
        _payment(receiver, "pay_te_again", 1000, expires_at=_expiring_in(45))
    )

    assert again.next_action == first.next_action
    assert emulator.trade("pay_te_again")["time_expire"] == _as_alipay_time(first_expiry)


@pytest.mark.parametrize(
    "time_expire",
    [
        "2099-11-26T10:34:56+08:00",  # WeChat Pay's format, not Alipay's
        "2099/11/26 10:34:56",
        "2099-11-26 10:34",
        "2099-2-6 10:34:56",
        "2099-02-30 10:00:00",
        "",
    ],
)
def test_badly_written_time_expire_is_a_parameter_error(
    emulator: AlipayEmulator, provider: AlipayProvider, time_expire: str
) -> None:
    biz = {
        "out_trade_no": "pay_te_bad",
        "total_amount": "1.00",
        "subject": "tea",
        "product_code": "FACE_TO_FACE_PAYMENT",
        "time_expire": time_expire,
    }

    with pytest.raises(ProviderError) as caught:
        provider._call("alipay.trade.precreate", biz)

    assert caught.value.code == "ACQ.INVALID_PARAMETER"
    with pytest.raises(KeyError):
        emulator.trade("pay_te_bad")


def test_time_expire_already_past_is_a_parameter_error(
    emulator: AlipayEmulator, provider: AlipayProvider, receiver: Receiver
) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.create_payment(
            _payment(receiver, "pay_te_past", 1000, expires_at=_expiring_in(-1))
        )

    assert caught.value.code == "ACQ.INVALID_PARAMETER"
    with pytest.raises(KeyError):
        emulator.trade("pay_te_past")
