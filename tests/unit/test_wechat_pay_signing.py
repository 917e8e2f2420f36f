"""WeChat Pay APIv3 signatures, notification decryption and parsing, and the trade bill.

``wechatpayv3`` (a development-only dependency) is the oracle: our request signature must
equal its signature for the same inputs, our decryption must match its decryption, and our
verifier must accept what it signs and reject everything else.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import wechatpayv3.utils as oracle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3.core import Core

from chalicelib.adapters.payments import (
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderStatus,
    SettlementKind,
)
from chalicelib.adapters.payments.wechat_pay import WeChatPayConfig, WeChatPayProvider
from chalicelib.adapters.payments.wechat_pay_bill import parse_trade_bill
from chalicelib.adapters.payments.wechat_pay_signing import (
    build_authorization,
    decrypt_resource,
    sign_message,
)
from chalicelib.domain.money import Money
from chalicelib.settings import Settings

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "R7fQ2mK9xW4pL8sT1vB6nC3jH5gD0aZe"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "PUB_KEY_ID_0114232134912410000000000000"
NOW = 1_700_000_000
NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"


def _pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def platform_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def stranger_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def config(merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey) -> WeChatPayConfig:
    return WeChatPayConfig(
        mchid=MCHID,
        appid=APPID,
        merchant_private_key_pem=_pem_private(merchant_key),
        merchant_serial_no=MERCHANT_SERIAL,
        apiv3_key=APIV3_KEY,
        platform_public_keys={PLATFORM_SERIAL: _pem_public(platform_key)},
        base_url="https://api.mch.weixin.qq.com",
    )


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to open a connection, each refused: these tests stay offline."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError("no network call is allowed here")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", refuse)
    return attempts


@pytest.fixture
def provider(config: WeChatPayConfig, network_attempts: list[Any]) -> WeChatPayProvider:
    return WeChatPayProvider(config, clock=lambda: NOW)


# --- building notifications the way WeChat Pay does (signed by the oracle) -----------------


def transaction(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "transaction_id": "4200001234202401150123456789",
        "amount": {
            "payer_total": 12900,
            "total": 12900,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
        "mchid": MCHID,
        "trade_state": "SUCCESS",
        "bank_type": "CMC",
        "success_time": "2024-01-15T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "out_trade_no": "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J",
        "appid": APPID,
        "trade_state_desc": "支付成功",
        "trade_type": "NATIVE",
        "attach": "",
    }
    resource.update(changes)
    return resource


def refund_resource(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "mchid": MCHID,
        "transaction_id": "4200001234202401150123456789",
        "out_trade_no": "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J",
        "refund_id": "50300908092024011512345678901",
        "out_refund_no": "ref_01HMB4A2B3C4D5E6F7G8H9J0KM",
        "refund_status": "SUCCESS",
        "success_time": "2024-01-16T09:00:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 12900, "refund": 2900, "payer_total": 12900, "payer_refund": 2900},
    }
    resource.update(changes)
    return resource


def seal(
    plaintext: dict[str, Any] | bytes,
    *,
    key: str = APIV3_KEY,
    nonce: str = "fdasflkja484",
    associated_data: str = "transaction",
    original_type: str = "transaction",
) -> dict[str, Any]:
    data = plaintext if isinstance(plaintext, bytes) else json.dumps(plaintext).encode()
    sealed = AESGCM(key.encode()).encrypt(nonce.encode(), data, associated_data.encode())
    return {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def envelope(
    sealed: dict[str, Any], event_type: str = "TRANSACTION.SUCCESS", **changes: Any
) -> bytes:
    document: dict[str, Any] = {
        "id": "EV-2018022511223320873",
        "create_time": "2024-01-15T10:35:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": sealed,
    }
    document.update(changes)
    return json.dumps(document, ensure_ascii=False).encode()


def signed(
    body: bytes,
    key: rsa.RSAPrivateKey,
    *,
    timestamp: int = NOW,
    nonce: str = NONCE,
    serial: str = PLATFORM_SERIAL,
) -> dict[str, str]:
    signature = oracle.rsa_sign(key, f"{timestamp}\n{nonce}\n{body.decode()}\n")
    return {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Content-Type": "application/json",
    }


# --- the oracle agrees ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/v3/pay/transactions/native",
            json.dumps(
                {"description": "深圳分店-茶叶", "amount": {"total": 100}}, ensure_ascii=False
            ),
        ),
        ("GET", "/v3/pay/transactions/out-trade-no/pay_01HMB3ZK8Q2W5X7Y9A1C?mchid=1900000109", ""),
    ],
)
def test_request_authorization_equals_wechatpayv3s(
    monkeypatch: pytest.MonkeyPatch,
    merchant_key: rsa.RSAPrivateKey,
    method: str,
    path: str,
    body: str,
) -> None:
    monkeypatch.setattr(oracle.time, "time", lambda: NOW)
    theirs = oracle.build_authorization(
        path, method, MCHID, MERCHANT_SERIAL, merchant_key, data=body or None, nonce_str=NONCE
    )
    ours = build_authorization(
        mchid=MCHID,
        serial_no=MERCHANT_SERIAL,
        private_key=merchant_key,
        method=method,
        path_with_query=path,
        body=body,
        timestamp=str(NOW),
        nonce=NONCE,
    )
    assert ours == theirs
    assert ours.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="')


def test_our_signature_verifies_with_wechatpayv3(platform_key: rsa.RSAPrivateKey) -> None:
    body = '{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}'
    signature = sign_message(platform_key, f"{NOW}\n{NONCE}\n{body}\n")
    assert signature == oracle.rsa_sign(platform_key, f"{NOW}\n{NONCE}\n{body}\n")
    assert oracle.rsa_verify(str(NOW), NONCE, body, signature, platform_key.public_key())
    assert not oracle.rsa_verify(str(NOW), NONCE, body + " ", signature, platform_key.public_key())


@pytest.mark.parametrize("associated_data", ["transaction", ""])
def test_decryption_matches_wechatpayv3s(associated_data: str) -> None:
    resource = seal(transaction(), associated_data=associated_data)
    ours = decrypt_resource(
        APIV3_KEY.encode(),
        nonce=resource["nonce"],
        ciphertext=resource["ciphertext"],
        associated_data=resource["associated_data"],
    )
    theirs = oracle.aes_decrypt(
        resource["nonce"], resource["ciphertext"], resource["associated_data"], APIV3_KEY
    )
    assert ours.decode() == theirs
    assert json.loads(ours) == transaction()


def test_payment_notification_signed_by_the_oracle_is_verified_and_parsed(
    provider: WeChatPayProvider,
    merchant_key: rsa.RSAPrivateKey,
    platform_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key)

    notification = provider.verify_notification(headers, body)

    assert notification.provider == "wechat_pay"
    assert notification.event_id == "EV-2018022511223320873"
    assert notification.event_type == "TRANSACTION.SUCCESS"
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.payment_id == "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J"
    assert notification.provider_payment_id == "4200001234202401150123456789"
    assert notification.amount == Money(12900, "CNY")
    assert notification.occurred_at == datetime(2024, 1, 15, 2, 34, 56, tzinfo=UTC)
    # The oracle reads the very same notification the same way.
    monkeypatch.setattr("wechatpayv3.utils.time.time", lambda: NOW)
    core = Core(
        MCHID,
        MERCHANT_SERIAL,
        _pem_private(merchant_key),
        APIV3_KEY,
        public_key=_pem_public(platform_key),
        public_key_id=PLATFORM_SERIAL,
    )
    assert core.callback(headers, body)["resource"] == transaction()


def test_header_names_are_matched_whatever_their_case(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key)
    for transform in (str.lower, str.upper):
        renamed = {transform(name): value for name, value in headers.items()}
        assert provider.verify_notification(renamed, body).payment_id is not None


def test_refund_success_notification_names_our_refund_and_the_amount_refunded(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(
        seal(refund_resource(), associated_data="refund", original_type="refund"),
        "REFUND.SUCCESS",
        summary="退款成功",
    )

    notification = provider.verify_notification(signed(body, platform_key), body)

    assert notification.kind is NotificationKind.REFUND
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.refund_id == "ref_01HMB4A2B3C4D5E6F7G8H9J0KM"
    assert notification.provider_refund_id == "50300908092024011512345678901"
    assert notification.payment_id == "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J"
    assert notification.amount == Money(2900, "CNY")
    assert notification.occurred_at == datetime(2024, 1, 16, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("outcome", ["ABNORMAL", "CLOSED"])
def test_refund_that_did_not_go_through_is_failed(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey, outcome: str
) -> None:
    resource = refund_resource(refund_status=outcome)
    del resource["success_time"]
    body = envelope(
        seal(resource, associated_data="refund", original_type="refund"), f"REFUND.{outcome}"
    )

    notification = provider.verify_notification(signed(body, platform_key), body)

    assert notification.status is ProviderStatus.FAILED
    assert notification.failure_code == outcome


def test_verified_notification_of_another_kind_is_passed_on_as_other(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(seal({"anything": 1}, original_type="profitsharing"), "PROFITSHARING.SUCCESS")
    notification = provider.verify_notification(signed(body, platform_key), body)
    assert notification.kind is NotificationKind.OTHER
    assert notification.payment_id is None


# --- rejections ---------------------------------------------------------------------------


def test_signature_by_another_key_is_rejected(
    provider: WeChatPayProvider, stranger_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(seal(transaction()))
    with pytest.raises(NotificationRejected, match="does not verify"):
        provider.verify_notification(signed(body, stranger_key), body)


def test_tampered_body_is_rejected(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key)
    tampered = body.replace(b'"summary": "', b'"summary": "x', 1)
    assert tampered != body
    with pytest.raises(NotificationRejected, match="does not verify"):
        provider.verify_notification(headers, tampered)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-299, True), (299, True), (-300, False), (300, False)]
)
def test_timestamp_must_be_within_300_seconds_of_now(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey, offset: int, accepted: bool
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key, timestamp=NOW + offset)
    if accepted:
        assert provider.verify_notification(headers, body).event_id
    else:
        with pytest.raises(NotificationRejected, match="stale timestamp"):
            provider.verify_notification(headers, body)


@pytest.mark.parametrize(
    "header", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]
)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_each_signature_header_is_required(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey, header: str, how: str
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key)
    if how == "absent":
        del headers[header]
    else:
        headers[header] = ""
    with pytest.raises(NotificationRejected, match=f"missing {header.lower()}"):
        provider.verify_notification(headers, body)


def test_unknown_serial_is_rejected_without_any_network_call(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey, network_attempts: list[Any]
) -> None:
    body = envelope(seal(transaction()))
    headers = signed(body, platform_key, serial="PUB_KEY_ID_0114232134912410000000000001")
    with pytest.raises(NotificationRejected, match="unknown platform key serial"):
        provider.verify_notification(headers, body)
    assert network_attempts == []


def test_other_signature_type_is_rejected(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey
) -> None:
    body = envelope(seal(transaction()))
    headers = {**signed(body, platform_key), "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}
    with pytest.raises(NotificationRejected, match="signature type"):
        provider.verify_notification(headers, body)


@pytest.mark.parametrize(
    ("resource", "event_type"),
    [
        (transaction(mchid="1900000110"), "TRANSACTION.SUCCESS"),
        (transaction(appid="wx0000000000000000"), "TRANSACTION.SUCCESS"),
        (refund_resource(mchid="1900000110"), "REFUND.SUCCESS"),
    ],
    ids=["payment-mchid", "payment-appid", "refund-mchid"],
)
def test_notification_for_another_merchant_is_rejected(
    provider: WeChatPayProvider,
    platform_key: rsa.RSAPrivateKey,
    resource: dict[str, Any],
    event_type: str,
) -> None:
    kind = "refund" if event_type.startswith("REFUND") else "transaction"
    body = envelope(seal(resource, associated_data=kind, original_type=kind), event_type)
    with pytest.raises(NotificationRejected, match="is not ours"):
        provider.verify_notification(signed(body, platform_key), body)


def _resource_with(**changes: Any) -> dict[str, Any]:
    return {**seal(transaction()), **changes}


MALFORMED_BODIES: dict[str, bytes] = {
    "wrong-apiv3-key": envelope(seal(transaction(), key="X" * 32)),
    "wrong-associated-data": envelope({**seal(transaction()), "associated_data": "certificate"}),
    "ciphertext-not-base64": envelope(_resource_with(ciphertext="@@not base64@@")),
    "ciphertext-truncated": envelope(
        _resource_with(ciphertext=seal(transaction())["ciphertext"][:-8])
    ),
    "nonce-too-short": envelope(_resource_with(nonce="abc")),
    "algorithm": envelope(_resource_with(algorithm="AEAD_SM4_GCM")),
    "resource-type": envelope(seal(transaction()), resource_type="plain"),
    "resource-missing": envelope(seal(transaction()), resource=None),
    "original-type": envelope(seal(transaction(), original_type="refund")),
    "plaintext-not-json": envelope(seal(b"trade_state=SUCCESS")),
    "plaintext-a-list": envelope(seal(b"[1, 2]")),
    "total-as-text": envelope(seal(transaction(amount={"total": "12900", "currency": "CNY"}))),
    "total-as-bool": envelope(seal(transaction(amount={"total": True, "currency": "CNY"}))),
    "total-negative": envelope(seal(transaction(amount={"total": -1, "currency": "CNY"}))),
    "total-huge": envelope(seal(transaction(amount={"total": 10**15, "currency": "CNY"}))),
    "currency": envelope(seal(transaction(amount={"total": 12900, "currency": "USD"}))),
    "out-trade-no-missing": envelope(seal(transaction(out_trade_no=None))),
    "out-trade-no-pattern": envelope(seal(transaction(out_trade_no="pay 1; drop"))),
    "trade-state-unknown": envelope(seal(transaction(trade_state="MAYBE"))),
    "trade-state-vs-event": envelope(seal(transaction(trade_state="NOTPAY"))),
    "success-time": envelope(seal(transaction(success_time="yesterday"))),
    "transaction-id": envelope(seal(transaction(transaction_id=4200001234))),
    "event-id": envelope(seal(transaction()), id=""),
    "create-time": envelope(seal(transaction()), create_time=1705286100),
    "not-json": b"event_type=TRANSACTION.SUCCESS",
    "duplicate-keys": envelope(seal(transaction())).replace(
        b'"id": "EV-2018022511223320873"', b'"id": "EV-1", "id": "EV-2"'
    ),
    "refund-more-than-total": envelope(
        seal(
            refund_resource(amount={"total": 100, "refund": 200}),
            associated_data="refund",
            original_type="refund",
        ),
        "REFUND.SUCCESS",
    ),
    "refund-status-vs-event": envelope(
        seal(refund_resource(), associated_data="refund", original_type="refund"),
        "REFUND.CLOSED",
    ),
}


# Why each one is refused: all of them are correctly signed.
MALFORMED_REASONS = {
    "wrong-apiv3-key": "does not decrypt",
    "wrong-associated-data": "does not decrypt",
    "ciphertext-not-base64": "does not decrypt",
    "ciphertext-truncated": "does not decrypt",
    "nonce-too-short": "resource.nonce",
    "algorithm": "algorithm is not",
    "resource-type": "resource_type",
    "resource-missing": "resource is not an object",
    "original-type": "original_type",
    "plaintext-not-json": "resource is not valid JSON",
    "plaintext-a-list": "resource is not a JSON object",
    "total-as-text": "amount.total",
    "total-as-bool": "amount.total",
    "total-negative": "amount.total is out of range",
    "total-huge": "amount.total is out of range",
    "currency": "currency is not CNY",
    "out-trade-no-missing": "out_trade_no",
    "out-trade-no-pattern": "out_trade_no",
    "trade-state-unknown": "trade_state is unknown",
    "trade-state-vs-event": "trade_state does not match",
    "success-time": "success_time",
    "transaction-id": "transaction_id",
    "event-id": "notification.id",
    "create-time": "create_time",
    "not-json": "notification is not valid JSON",
    "duplicate-keys": "notification is not valid JSON",
    "refund-more-than-total": "amount.refund is out of range",
    "refund-status-vs-event": "refund_status does not match",
}


@pytest.mark.parametrize("case", MALFORMED_BODIES)
def test_correctly_signed_but_malformed_notification_is_rejected(
    provider: WeChatPayProvider, platform_key: rsa.RSAPrivateKey, case: str
) -> None:
    body = MALFORMED_BODIES[case]
    with pytest.raises(NotificationRejected, match=re.escape(MALFORMED_REASONS[case])):
        provider.verify_notification(signed(body, platform_key), body)


def test_oversized_notification_is_rejected_before_anything_else(
    provider: WeChatPayProvider,
) -> None:
    with pytest.raises(NotificationRejected, match="too large"):
        provider.verify_notification({}, b"{" + b" " * 70_000 + b"}")


# --- replies, requests refused before sending, configuration ------------------------------


def test_acknowledge_and_reject_are_in_wechat_pays_shape(provider: WeChatPayProvider) -> None:
    ack = provider.acknowledge()
    assert (ack.status_code, ack.body) == (200, "")
    reply = provider.reject("签名错误")
    assert reply.status_code == 401
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {"code": "FAIL", "message": "签名错误"}


def test_only_cny_payments_are_sent(
    provider: WeChatPayProvider, network_attempts: list[Any]
) -> None:
    request = PaymentRequest(
        payment_id="pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J",
        order_id="ord_01HMB3ZK8Q2W5X7Y9A1C3E5G7J",
        amount=Money(1000, "USD"),
        description="Tea",
        notify_url="https://shop.example/webhooks/wechat_pay",
    )
    with pytest.raises(ProviderError) as raised:
        provider.create_payment(request)
    assert raised.value.code == "unsupported_currency"
    with pytest.raises(ProviderError) as raised:
        provider.create_payment(replace(request, amount=Money(1000, "CNY"), payment_id="p 1"))
    assert raised.value.code == "invalid_request"
    assert network_attempts == []


def _settings(**values: str) -> Settings:
    base = Settings.from_environment()
    return replace(base, **values)


def test_from_settings_names_what_is_missing() -> None:
    with pytest.raises(ProviderError) as raised:
        WeChatPayProvider.from_settings(_settings(wechatpay_mchid="", wechatpay_apiv3_key=""))
    assert raised.value.code == "not_configured"
    assert "WECHATPAY_MCHID" in str(raised.value)
    assert "WECHATPAY_APIV3_KEY" in str(raised.value)


def test_from_settings_reads_one_line_pems_and_defaults_to_the_real_gateway(
    merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    settings = _settings(
        wechatpay_mchid=MCHID,
        wechatpay_appid=APPID,
        wechatpay_base_url="",
        wechatpay_merchant_private_key=_pem_private(merchant_key).replace("\n", "\\n"),
        wechatpay_merchant_serial=MERCHANT_SERIAL,
        wechatpay_apiv3_key=APIV3_KEY,
        wechatpay_platform_public_key=_pem_public(platform_key),
        wechatpay_platform_serial=PLATFORM_SERIAL,
    )
    provider = WeChatPayProvider.from_settings(settings)
    assert provider.config.base_url == "https://api.mch.weixin.qq.com"
    assert APIV3_KEY not in repr(provider.config)
    assert "PRIVATE KEY" not in repr(provider.config)


def test_apiv3_key_must_be_32_bytes(config: WeChatPayConfig) -> None:
    with pytest.raises(ProviderError, match="32 bytes"):
        WeChatPayProvider(replace(config, apiv3_key="short"))


# --- the trade bill -----------------------------------------------------------------------

BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)


def _bill_line(*fields: str) -> str:
    return "`" + ",`".join(fields)


PAYMENT_ROW = _bill_line(
    "2024-01-15 10:34:56", APPID, MCHID, "0", "", "4200001234202401150123456789",
    "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS",
    "OTHERS", "CNY", "129.00", "0.00", "0", "0", "0.00", "0.00", "", "",
    "龙井, 250g", "", "0.77", "0.60%", "129.00", "0.00", "",
)  # fmt: skip
REFUND_ROW = _bill_line(
    "2024-01-15 18:00:01", APPID, MCHID, "0", "", "4200001234202401150123456789",
    "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "REFUND",
    "OTHERS", "CNY", "0.00", "0.00", "50300908092024011512345678901",
    "ref_01HMB4A2B3C4D5E6F7G8H9J0KM", "29.00", "0.00", "ORIGINAL", "SUCCESS",
    "龙井, 250g", "", "-0.17", "0.60%", "0.00", "29.00", "",
)  # fmt: skip
REVOKED_ROW = _bill_line(
    "2024-01-15 19:00:00", APPID, MCHID, "0", "", "4200001234202401150999999999",
    "pay_01HMB5ZZZZZZZZZZZZZZZZZZZZ", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "MICROPAY", "REVOKED",
    "OTHERS", "CNY", "0.00", "0.00", "0", "0", "0.00", "0.00", "", "",
    "Tea", "", "0.00", "0.60%", "5.00", "0.00", "",
)  # fmt: skip
SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def _bill(*rows: str, count: int | None = None) -> bytes:
    summary = _bill_line(str(len(rows) if count is None else count), "129.00", "29.00", "0.00",
                         "0.60", "134.00", "29.00")  # fmt: skip
    return ("\r\n".join([BILL_HEADER, *rows, SUMMARY_HEADER, summary]) + "\r\n").encode()


def test_trade_bill_gives_a_record_per_payment_and_refund_in_fen() -> None:
    records = parse_trade_bill(_bill(PAYMENT_ROW, REFUND_ROW, REVOKED_ROW), mchid=MCHID)

    payment, refund = records
    assert payment.kind is SettlementKind.PAYMENT
    assert payment.reference == "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J"
    assert payment.provider_reference == "4200001234202401150123456789"
    assert payment.amount == Money(12900, "CNY")
    assert payment.fee == Money(77, "CNY")
    assert payment.settled_at == datetime(2024, 1, 15, 2, 34, 56, tzinfo=UTC)
    assert payment.details["order_total"] == 12900
    assert refund.kind is SettlementKind.REFUND
    assert refund.reference == "ref_01HMB4A2B3C4D5E6F7G8H9J0KM"
    assert refund.provider_reference == "50300908092024011512345678901"
    assert refund.amount == Money(2900, "CNY")
    assert refund.fee == Money(17, "CNY")
    assert refund.details["out_trade_no"] == "pay_01HMB3ZK8Q2W5X7Y9A1C3E5G7J"


@pytest.mark.parametrize(
    "content",
    [
        _bill(PAYMENT_ROW, count=2),
        _bill(PAYMENT_ROW.replace(MCHID, "1900000110")),
        _bill(PAYMENT_ROW.replace("`129.00", "`129.5", 1)),
        _bill(PAYMENT_ROW.replace(",`NATIVE", "")),
        BILL_HEADER.replace("应结订单金额,", "").encode() + b"\r\n",
        _bill(PAYMENT_ROW).split(SUMMARY_HEADER.encode())[0],
    ],
    ids=["count", "other-merchant", "amount", "short-row", "missing-column", "no-summary"],
)
def test_malformed_trade_bill_is_refused(content: bytes) -> None:
    with pytest.raises(ProviderError) as raised:
        parse_trade_bill(content, mchid=MCHID)
    assert raised.value.code == "invalid_bill"


# --- the public key and platform certificates, side by side ------------------------------------


def _certificate(key: rsa.RSAPrivateKey, serial_number: int, days_ago: int) -> str:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    start = datetime.now(UTC) - timedelta(days=days_ago)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial_number)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1825))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _settings_with_keys(merchant_key: rsa.RSAPrivateKey, **keys: str) -> Settings:
    return _settings(
        wechatpay_mchid=MCHID,
        wechatpay_appid=APPID,
        wechatpay_merchant_private_key=_pem_private(merchant_key),
        wechatpay_merchant_serial=MERCHANT_SERIAL,
        wechatpay_apiv3_key=APIV3_KEY,
        **keys,
    )


def test_a_merchant_in_the_switch_verifies_callbacks_signed_with_either_key(
    merchant_key: rsa.RSAPrivateKey,
    platform_key: rsa.RSAPrivateKey,
    stranger_key: rsa.RSAPrivateKey,
    network_attempts: list[Any],
) -> None:
    certificate_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    serial_number = 0x5C3A0B1D2E4F60718293A4B5C6D7E8F901234567
    settings = _settings_with_keys(
        merchant_key,
        wechatpay_platform_public_key=_pem_public(platform_key),
        wechatpay_platform_serial=PLATFORM_SERIAL,
        wechatpay_platform_certificates=_certificate(certificate_key, serial_number, 30),
    )
    provider = WeChatPayProvider(WeChatPayConfig.from_settings(settings), clock=lambda: NOW)
    body = envelope(seal(transaction()))

    by_public_key = provider.verify_notification(signed(body, platform_key), body)
    # WeChat Pay writes certificate serials in upper case; its case does not matter.
    by_certificate = provider.verify_notification(
        signed(body, certificate_key, serial=format(serial_number, "x")), body
    )

    assert by_public_key.event_id == by_certificate.event_id
    assert provider._request_serial == PLATFORM_SERIAL  # the public key wins, as in the SDK
    with pytest.raises(NotificationRejected):
        provider.verify_notification(
            signed(body, stranger_key, serial=format(serial_number, "X")), body
        )


def test_a_merchant_on_certificates_names_the_newest_in_wechatpay_serial(
    merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    bundle = _certificate(platform_key, 0xA1, 400) + _certificate(platform_key, 0xB2, 10)
    provider = WeChatPayProvider.from_settings(
        _settings_with_keys(merchant_key, wechatpay_platform_certificates=bundle)
    )

    assert provider._request_serial == "B2"
    assert set(provider.config.platform_public_keys) == {"A1", "B2"}


def test_a_public_key_without_its_id_is_not_configured(
    merchant_key: rsa.RSAPrivateKey, platform_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(ProviderError, match="WECHATPAY_PLATFORM_SERIAL"):
        WeChatPayProvider.from_settings(
            _settings_with_keys(
                merchant_key, wechatpay_platform_public_key=_pem_public(platform_key)
            )
        )
