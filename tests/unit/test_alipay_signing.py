"""Alipay RSA2 signing and notification checks, with Alipay's Python SDK as the oracle.

``python-alipay-sdk`` (dev only) implements the same documented scheme independently: a
request we sign must carry exactly the signature the SDK computes for the same parameters
and key, and a notification signed the SDK's way must pass our verifier.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.payments import (
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderStatus,
    SettlementKind,
)
from chalicelib.adapters.payments.alipay import CHINA_TIME, AlipayConfig, AlipayProvider
from chalicelib.adapters.payments.alipay_bill import parse_trade_bill
from chalicelib.adapters.payments.alipay_fields import parse_yuan, to_yuan
from chalicelib.adapters.payments.alipay_signing import (
    response_members,
    rsa2_sign,
    rsa2_verify,
    signing_content,
)
from chalicelib.domain.money import Money
from chalicelib.settings import Settings

APP_ID = "2021000000000042"
FIXED_NOW = datetime(2026, 10, 3, 10, 15, 30, tzinfo=CHINA_TIME)


# --- small factories -------------------------------------------------------------------


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture(scope="module")
def stranger_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture
def provider(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> AlipayProvider:
    config = AlipayConfig(
        app_id=APP_ID,
        gateway_url="http://127.0.0.1:9/gateway.do",  # never called in these tests
        app_private_key_pem=_private_pem(app_key),
        alipay_public_key_pem=_public_pem(alipay_key),
    )
    return AlipayProvider(config, clock=lambda: FIXED_NOW)


def _sdk(signing_key: rsa.RSAPrivateKey, verifying_key: rsa.RSAPrivateKey) -> AliPay:
    return AliPay(
        appid=APP_ID,
        app_private_key_string=_private_pem(signing_key),
        alipay_public_key_string=_public_pem(verifying_key),
        sign_type="RSA2",
    )


def _sdk_signature(sdk: AliPay, params: Mapping[str, str]) -> str:
    signed = urllib.parse.parse_qs(sdk.sign_data(dict(params)))
    return signed["sign"][0]


def _payment_notification(**overrides: str) -> dict[str, str]:
    fields = {
        "notify_time": "2026-10-03 10:16:02",
        "notify_type": "trade_status_sync",
        "notify_id": "2026100300222101602000123456789",
        "app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2026100322001412340000123456",
        "out_trade_no": "pay_0001",
        "buyer_id": "2088102177846880",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "128.80",
        "receipt_amount": "128.80",
        "subject": "绿茶 250g × 2 & 杯子",
        "gmt_create": "2026-10-03 10:15:31",
        "gmt_payment": "2026-10-03 10:16:01",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def _signed_the_sdk_way(fields: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Sign as Alipay signs notifications: everything but sign and sign_type."""
    sdk = _sdk(key, key)
    return {**fields, "sign_type": "RSA2", "sign": _sdk_signature(sdk, fields)}


def _form(params: Mapping[str, str]) -> bytes:
    return urllib.parse.urlencode(params).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


# --- request signing -------------------------------------------------------------------


def test_request_signature_equals_the_sdk_signature(
    provider: AlipayProvider, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    biz = {"out_trade_no": "pay_0001", "total_amount": "128.80", "subject": "绿茶 & {杯子}"}
    ours = provider._signed_params(
        "alipay.trade.precreate", biz, notify_url="https://api.example.com/webhooks/alipay"
    )
    unsigned = {key: value for key, value in ours.items() if key != "sign"}

    assert ours["timestamp"] == "2026-10-03 10:15:30"
    assert ours["sign_type"] == "RSA2" and ours["charset"] == "utf-8"
    assert json.loads(ours["biz_content"]) == biz
    assert ours["sign"] == _sdk_signature(_sdk(app_key, alipay_key), unsigned)


def test_request_signature_skips_empty_values_and_sorts_by_key(
    app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    params = {"method": "alipay.trade.query", "app_id": APP_ID, "notify_url": "", "b": "2"}

    assert signing_content(params) == f"app_id={APP_ID}&b=2&method=alipay.trade.query"
    without_empty = {key: value for key, value in params.items() if value}
    sdk_signature = _sdk_signature(_sdk(app_key, alipay_key), without_empty)
    assert rsa2_sign(app_key, signing_content(params)) == sdk_signature


def test_page_pay_url_is_signed_for_the_gateway(
    provider: AlipayProvider, app_key: rsa.RSAPrivateKey
) -> None:
    request = PaymentRequest(
        payment_id="pay_0002",
        order_id="ord_0002",
        amount=Money(1999, "CNY"),
        description="茶具",
        notify_url="https://api.example.com/webhooks/alipay",
        return_url="https://shop.example.com/orders/ord_0002",
    )
    payment = provider.create_payment(request)

    assert payment.status is ProviderStatus.PENDING
    assert payment.next_action is not None and payment.next_action["type"] == "redirect"
    url = urllib.parse.urlsplit(payment.next_action["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://127.0.0.1:9/gateway.do"
    params = dict(urllib.parse.parse_qsl(url.query))
    assert params["method"] == "alipay.trade.page.pay"
    assert params["return_url"] == "https://shop.example.com/orders/ord_0002"
    assert json.loads(params["biz_content"])["total_amount"] == "19.99"
    assert rsa2_verify(app_key.public_key(), signing_content(params), params["sign"])


# --- notifications ---------------------------------------------------------------------


def test_notification_signed_the_sdk_way_is_accepted(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    body = _form(_signed_the_sdk_way(_payment_notification(), alipay_key))

    notification = provider.verify_notification(FORM, body)

    assert notification.provider == "alipay"
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.event_id == "2026100300222101602000123456789"
    assert notification.payment_id == "pay_0001"
    assert notification.provider_payment_id == "2026100322001412340000123456"
    assert notification.amount == Money(12880, "CNY")
    assert notification.occurred_at == datetime(2026, 10, 3, 2, 16, 1, tzinfo=UTC)


def test_our_signature_check_agrees_with_the_sdk_verifier(
    alipay_key: rsa.RSAPrivateKey, app_key: rsa.RSAPrivateKey
) -> None:
    fields = _payment_notification()
    signed = _signed_the_sdk_way(fields, alipay_key)
    content = signing_content(signed, exclude=("sign", "sign_type"))

    assert rsa2_verify(alipay_key.public_key(), content, signed["sign"])
    sdk = _sdk(app_key, alipay_key)
    assert sdk.verify({k: v for k, v in signed.items() if k != "sign"}, signed["sign"])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("WAIT_BUYER_PAY", ProviderStatus.PENDING),
        ("TRADE_FINISHED", ProviderStatus.SUCCEEDED),
        ("TRADE_CLOSED", ProviderStatus.FAILED),
    ],
)
def test_trade_status_maps_to_our_status(
    provider: AlipayProvider,
    alipay_key: rsa.RSAPrivateKey,
    status: str,
    expected: ProviderStatus,
) -> None:
    fields = _payment_notification(trade_status=status)
    body = _form(_signed_the_sdk_way(fields, alipay_key))

    assert provider.verify_notification(FORM, body).status is expected


def test_refund_notification_is_a_refund_for_our_refund_id(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    fields = _payment_notification(
        refund_fee="28.80", out_biz_no="ref_0007", gmt_refund="2026-10-04 09:00:01.250"
    )
    notification = provider.verify_notification(
        FORM, _form(_signed_the_sdk_way(fields, alipay_key))
    )

    assert notification.kind is NotificationKind.REFUND
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.refund_id == "ref_0007"
    assert notification.payment_id == "pay_0001"
    assert notification.amount == Money(2880, "CNY")
    assert notification.occurred_at == datetime(2026, 10, 4, 1, 0, 1, 250000, tzinfo=UTC)


def test_documented_payment_sample_with_zero_refund_fee_and_gmt_close_is_a_payment(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    # Alipay's own async-notify sample of a payment carries refund_fee=0.00 and gmt_close.
    fields = _payment_notification(
        refund_fee="0.00",
        gmt_close="2026-10-03 10:16:01",
        buyer_pay_amount="128.80",
        invoice_amount="128.80",
        point_amount="0.00",
        fund_bill_list='[{"amount":"128.80","fundChannel":"ALIPAYACCOUNT"}]',
    )
    notification = provider.verify_notification(
        FORM, _form(_signed_the_sdk_way(fields, alipay_key))
    )

    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.amount == Money(12880, "CNY")
    assert notification.refund_id is None


def test_notification_signed_over_an_empty_value_is_accepted(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    fields = _payment_notification(body="", passback_params="")
    signed = _signed_the_sdk_way(fields, alipay_key)

    notification = provider.verify_notification(FORM, _form(signed))

    assert notification.kind is NotificationKind.PAYMENT
    assert notification.amount == Money(12880, "CNY")


def test_notification_with_an_empty_value_dropped_after_signing_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(body=""), alipay_key)
    del signed["body"]

    with pytest.raises(NotificationRejected):
        provider.verify_notification(FORM, _form(signed))


def test_verified_success_without_an_amount_carries_no_amount(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    fields = _payment_notification(total_amount=None)
    notification = provider.verify_notification(
        FORM, _form(_signed_the_sdk_way(fields, alipay_key))
    )

    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.amount is None


def test_notification_signed_with_another_key_is_rejected(
    provider: AlipayProvider, stranger_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(), stranger_key)

    with pytest.raises(NotificationRejected, match="signature") as caught:
        provider.verify_notification(FORM, _form(signed))
    assert signed["sign"] not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("total_amount", "1.00"), ("out_trade_no", "pay_9999"), ("trade_status", "TRADE_CLOSED")],
)
def test_notification_with_a_field_changed_after_signing_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey, field: str, value: str
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(), alipay_key)
    signed[field] = value

    with pytest.raises(NotificationRejected, match="signature"):
        provider.verify_notification(FORM, _form(signed))


def test_notification_with_an_extra_field_after_signing_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(), alipay_key)
    signed["refund_fee"] = "128.80"

    with pytest.raises(NotificationRejected, match="signature"):
        provider.verify_notification(FORM, _form(signed))


def test_notification_without_signature_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(), alipay_key)
    del signed["sign"]

    with pytest.raises(NotificationRejected, match="no signature"):
        provider.verify_notification(FORM, _form(signed))


def test_notification_for_another_app_is_rejected_even_when_signed(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(app_id="2021000000009999"), alipay_key)

    with pytest.raises(NotificationRejected, match="app_id"):
        provider.verify_notification(FORM, _form(signed))


@pytest.mark.parametrize(
    "amount",
    ["12.345", "-1.00", "1e3", " 12.00", "12.00 ", "0.00", "0", "100000000.01", "12.", ".5",
     "１２.00", "012.00", "1,000.00", "NaN"],
)  # fmt: skip
def test_notification_with_a_malformed_amount_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey, amount: str
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(total_amount=amount), alipay_key)

    with pytest.raises(NotificationRejected, match="total_amount"):
        provider.verify_notification(FORM, _form(signed))


@pytest.mark.parametrize("missing", ["notify_id", "out_trade_no", "trade_no", "trade_status"])
def test_notification_missing_a_required_field_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey, missing: str
) -> None:
    fields = _payment_notification()
    del fields[missing]

    with pytest.raises(NotificationRejected, match=missing):
        provider.verify_notification(FORM, _form(_signed_the_sdk_way(fields, alipay_key)))


def test_notification_with_an_unknown_sign_type_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    signed = _signed_the_sdk_way(_payment_notification(), alipay_key)
    signed["sign_type"] = "RSA"

    with pytest.raises(NotificationRejected, match="sign_type"):
        provider.verify_notification(FORM, _form(signed))


def test_notification_repeating_a_field_is_rejected(
    provider: AlipayProvider, alipay_key: rsa.RSAPrivateKey
) -> None:
    body = _form(_signed_the_sdk_way(_payment_notification(), alipay_key))

    with pytest.raises(NotificationRejected, match="repeats"):
        provider.verify_notification(FORM, body + b"&total_amount=1.00")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (FORM, b""),
        (FORM, b"\xff\xfe=1"),
        (FORM, b"notify_id=%FF"),
        ({"content-type": "application/json"}, b'{"notify_id": "1"}'),
        (FORM, b"a" * 70_000),
    ],
)
def test_notification_body_that_is_not_a_utf8_form_is_rejected(
    provider: AlipayProvider, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, body)


def test_webhook_replies_are_alipays_plain_words(provider: AlipayProvider) -> None:
    ack = provider.acknowledge()
    no = provider.reject("bad signature")

    assert (ack.status_code, ack.body, ack.content_type) == (200, "success", "text/plain")
    assert (no.status_code, no.body, no.content_type) == (401, "failure", "text/plain")


# --- responses -------------------------------------------------------------------------


def test_response_node_is_taken_verbatim_from_the_body(alipay_key: rsa.RSAPrivateKey) -> None:
    # Escaped slashes, spacing and a brace inside a string: re-serialising would change
    # the text, and counting braces would cut it short.
    node_text = '{ "code":"10000","qr_code":"https:\\/\\/qr.alipay.com\\/bax1","subject":"a}b" }'
    sign = rsa2_sign(alipay_key, node_text)
    body = f'{{"alipay_trade_precreate_response":{node_text},\n "sign":"{sign}"}}'

    members = response_members(body)

    value, text = members["alipay_trade_precreate_response"]
    assert text == node_text
    assert value["qr_code"] == "https://qr.alipay.com/bax1"
    assert rsa2_verify(alipay_key.public_key(), text, members["sign"][0])
    assert not rsa2_verify(alipay_key.public_key(), json.dumps(value), members["sign"][0])


@pytest.mark.parametrize(
    "body",
    ['{"a":{},"a":{}}', '[{"a":1}]', '{"a":{}} trailing', '{"a" {}}', "", '{"a":{},}'],
)
def test_response_that_is_not_one_json_object_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        response_members(body)


# --- amounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(1, "0.01"), (5, "0.05"), (100, "1.00"), (1234, "12.34"), (10_000_000_000, "100000000.00")],
)
def test_money_in_fen_becomes_a_yuan_string_and_back(fen: int, yuan: str) -> None:
    assert to_yuan(Money(fen, "CNY")) == yuan
    assert parse_yuan(yuan) == fen


def test_short_decimals_are_read_exactly() -> None:
    assert parse_yuan("12.3") == 1230
    assert parse_yuan("7") == 700


@pytest.mark.parametrize(
    ("money", "code"),
    [
        (Money(1234, "USD"), "unsupported_currency"),
        (Money(0, "CNY"), "invalid_amount"),
        (Money(-100, "CNY"), "invalid_amount"),
        (Money(10_000_000_001, "CNY"), "invalid_amount"),
    ],
)
def test_amounts_alipay_cannot_take_are_refused(money: Money, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        to_yuan(money)
    assert caught.value.code == code


def test_payment_in_another_currency_is_refused_before_any_call(
    provider: AlipayProvider,
) -> None:
    request = PaymentRequest(
        payment_id="pay_usd",
        order_id="ord_usd",
        amount=Money(1000, "USD"),
        description="tea",
        notify_url="https://api.example.com/webhooks/alipay",
    )
    with pytest.raises(ProviderError) as caught:
        provider.create_payment(request)
    assert caught.value.code == "unsupported_currency"


# --- trade bill ------------------------------------------------------------------------

_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)


TRADE_NO = "2026100322001412340000000001"


def _bill_line(trade_no: str, out_trade_no: str, kind: str, amount: str, fee: str, req: str) -> str:
    cells = [f"{trade_no}\t", f"{out_trade_no}\t", kind, "绿茶", "2026-10-03 10:15:31",
             "2026-10-03 10:16:01", "", "", "", "", "b***@example.com", amount, amount,
             "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00",
             f"{req}\t" if req else "", fee, "0.00", ""]  # fmt: skip
    return ",".join(cells)


def _bill_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode("gbk"))
    return buffer.getvalue()


def test_trade_bill_rows_become_settlement_records() -> None:
    detail = "\r\n".join(
        [
            "#支付宝业务明细查询",
            "#账号：[20880000000001560156]",
            "#-----------------------------------------业务明细列表-----------------------",
            _HEADER,
            _bill_line(TRADE_NO, "pay_0001", "交易", "128.80", "-0.77", ""),
            _bill_line(TRADE_NO, "pay_0001", "退款", "-28.80", "0.17", "ref_7"),
            "#-----------------------------------------业务明细列表结束-------------------",
            "#交易合计：1笔，商家实收共128.80元，商家优惠共0.00元",
        ]
    )  # fmt: skip
    summary = "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数\r\n合计,,1\r\n"
    archive = _bill_zip({"2088_20261003_业务明细.csv": detail, "2088_20261003_汇总.csv": summary})

    payment, refund = parse_trade_bill(archive)

    assert payment.kind is SettlementKind.PAYMENT
    assert payment.reference == "pay_0001"
    assert payment.provider_reference == TRADE_NO
    assert payment.amount == Money(12880, "CNY") and payment.fee == Money(77, "CNY")
    assert payment.settled_at == datetime(2026, 10, 3, 2, 16, 1, tzinfo=UTC)
    assert refund.kind is SettlementKind.REFUND
    assert refund.reference == "ref_7"
    assert refund.details["out_trade_no"] == "pay_0001"
    assert refund.amount == Money(2880, "CNY") and refund.fee == Money(17, "CNY")


@pytest.mark.parametrize(
    "archive",
    [
        b"not a zip",
        _bill_zip({"summary.csv": "#汇总\r\n门店编号,门店名称\r\n"}),
        _bill_zip({"d.csv": f"{_HEADER}\r\n" + _bill_line("1", "p", "交易", "12.345", "0", "")}),
        _bill_zip({"d.csv": f"{_HEADER}\r\n" + _bill_line("1", "p", "转账", "1.00", "0", "")}),
    ],
)
def test_unreadable_trade_bill_is_a_provider_error(archive: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_trade_bill(archive)
    assert caught.value.code == "invalid_bill"


# --- configuration ---------------------------------------------------------------------


def _settings(**alipay: str) -> Settings:
    base: dict[str, Any] = {
        "stage": "test",
        "table_name": "t",
        "table_stream_arn": "",
        "fulfilment_queue_url": "",
        "notifications_queue_url": "",
        "reports_bucket": "",
        "alerts_topic_arn": "",
        "jwt_issuer": "",
        "jwks_url": "",
        "jwt_client_ids": (),
        "cors_allow_origins": (),
        "max_body_bytes": 1024,
    }
    return Settings(**base, **alipay)


def test_provider_is_built_from_settings_with_the_real_gateway_by_default(
    app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey
) -> None:
    bare_public_key = "".join(_public_pem(alipay_key).splitlines()[1:-1])  # console style
    provider = AlipayProvider.from_settings(
        _settings(
            alipay_app_id=APP_ID,
            alipay_app_private_key=_private_pem(app_key),
            alipay_public_key=bare_public_key,
        )
    )

    assert provider.name == "alipay"
    assert provider.config.gateway_url == "https://openapi.alipay.com/gateway.do"
    assert "PRIVATE" not in repr(provider.config)


def test_provider_without_keys_is_not_configured() -> None:
    with pytest.raises(ProviderError) as caught:
        AlipayProvider.from_settings(_settings(alipay_app_id=APP_ID))
    assert caught.value.code == "not_configured"
    assert "ALIPAY_APP_PRIVATE_KEY" in str(caught.value)


def test_unreadable_key_is_refused_without_echoing_it(alipay_key: rsa.RSAPrivateKey) -> None:
    secret_looking = base64.b64encode(b"not a key at all, but secret").decode()
    config = AlipayConfig(APP_ID, "https://gw.example", secret_looking, _public_pem(alipay_key))

    with pytest.raises(ProviderError) as caught:
        AlipayProvider(config)
    assert caught.value.code == "not_configured"
    assert secret_looking not in str(caught.value)
