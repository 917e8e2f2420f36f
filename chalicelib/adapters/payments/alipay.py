"""Alipay through its open-platform gateway (``alipay.trade.*``), RSA2-signed both ways.

Every request is a form POST of the common parameters plus a JSON ``biz_content``, signed
with the merchant app's private key (SHA256withRSA over the sorted ``k=v`` pairs). Every
answer is ``{"<method>_response": {...}, "sign": "..."}``, where the signature covers the
response node exactly as its characters appear in the body, so the node is cut out of the
raw text and verified before it is parsed. Notifications are form posts signed over every
parameter but ``sign`` and ``sign_type``, empty values included (requests leave empty values
out), and are verified with Alipay's public key before any field is read.

Alipay amounts are yuan strings with at most two decimals ("12.34"); here they are fen in
``Money("CNY")`` and are parsed strictly. Alipay's clock is China Standard Time; China has
kept UTC+8 without daylight saving since 1991, so a fixed offset stands in for the
``Asia/Shanghai`` zone and no tz database is needed on Lambda.

Trade bill (``settlement``): the download URL gives a zip of GBK-encoded CSV files. The
detail file ("业务明细") has ``#`` comment lines, one header row and one row per payment
or refund. Columns read here, by header name: 支付宝交易号 (trade_no), 商户订单号
(out_trade_no), 业务类型 (交易 = payment, 退款 = refund), 商品名称, 创建时间, 完成时间,
订单金额（元） (negative on refund rows), 商家实收（元）, 退款批次号/请求号 (out_request_no)
and 服务费（元） (negative when charged, positive when a refund gives it back). Cells may
carry a trailing tab, which Alipay adds to keep spreadsheets from mangling long numbers.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hmac
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.adapters.payments import (
    ALIPAY,
    Notification,
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    SettlementKind,
    SettlementRecord,
    WebhookReply,
)
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME

if TYPE_CHECKING:
    from chalicelib.settings import Settings

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
CURRENCY = "CNY"
SUCCESS = "10000"
# Alipay's own bounds for one trade: [0.01, 100000000] yuan.
MAX_AMOUNT_FEN = 100_000_000_00
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_BILL_BYTES = 64 * 1024 * 1024
MAX_NOTIFICATION_BYTES = 64 * 1024
SUBJECT_MAX_CHARS = 256
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_SIGNED_AMOUNT = re.compile(r"(-?)(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})

TRADE_STATUSES: dict[str, ProviderStatus] = {
    "WAIT_BUYER_PAY": ProviderStatus.PENDING,
    "TRADE_SUCCESS": ProviderStatus.SUCCEEDED,
    "TRADE_FINISHED": ProviderStatus.SUCCEEDED,
    "TRADE_CLOSED": ProviderStatus.FAILED,
}

# Trade bill columns, by their header names.
COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_BUSINESS_TYPE = "业务类型"
COL_SUBJECT = "商品名称"
COL_CREATED = "创建时间"
COL_COMPLETED = "完成时间"
COL_ORDER_AMOUNT = "订单金额（元）"
COL_RECEIVED = "商家实收（元）"
COL_REFUND_REQUEST_NO = "退款批次号/请求号"
COL_FEE = "服务费（元）"
_BUSINESS_KINDS = {"交易": SettlementKind.PAYMENT, "退款": SettlementKind.REFUND}


# --- signing ---------------------------------------------------------------------------


def signing_content(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string a request is signed over: non-empty parameters but ``exclude``, sorted by
    key, as ``k=v`` joined with ``&`` (values not URL-encoded)."""
    return "&".join(
        f"{key}={value}" for key, value in sorted(params.items()) if key not in exclude and value
    )


def notification_signing_content(params: Mapping[str, str]) -> str:
    """The string a notification is verified over: every parameter but ``sign`` and
    ``sign_type``, empty values included (Alipay's documentation and SDK), sorted by key.
    Unlike ``signing_content``: leaving an empty one out would refuse a genuine notification."""
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in ("sign", "sign_type")
    )


def rsa2_sign(private_key: rsa.RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def sign_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> dict[str, str]:
    """``params`` with the request signature added (``sign_type`` is part of what is signed)."""
    return {**params, "sign": rsa2_sign(private_key, signing_content(params))}


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, or from the bare base64 DER the Alipay console shows."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise ValueError("the Alipay app private key is not a readable RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the Alipay app private key is not an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM, or from bare base64 DER (SubjectPublicKeyInfo)."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise ValueError("the Alipay public key is not a readable RSA key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key is not an RSA key")
    return key


def response_members(raw: str) -> dict[str, tuple[Any, str]]:
    """The top-level members of a JSON object: ``name -> (value, exact source text)``.

    Alipay signs a response node as the characters it sent, so the node's text is taken
    from the body as it is, never re-serialised. Raises ``ValueError`` for anything but
    one JSON object, or a repeated member name.
    """
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        match = _JSON_SPACE.match(raw, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    pos = skip(0)
    if raw[pos : pos + 1] != "{":
        raise ValueError("not a JSON object")
    members: dict[str, tuple[Any, str]] = {}
    pos = skip(pos + 1)
    if raw[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            if raw[pos : pos + 1] != '"':
                raise ValueError("expected a member name")
            name, pos = decoder.raw_decode(raw, pos)
            pos = skip(pos)
            if raw[pos : pos + 1] != ":":
                raise ValueError("expected ':'")
            start = skip(pos + 1)
            value, end = decoder.raw_decode(raw, start)
            if name in members:
                raise ValueError(f"member {name!r} appears twice")
            members[name] = (value, raw[start:end])
            pos = skip(end)
            if raw[pos : pos + 1] == ",":
                pos = skip(pos + 1)
                continue
            if raw[pos : pos + 1] == "}":
                pos += 1
                break
            raise ValueError("expected ',' or '}'")
    if skip(pos) != len(raw):
        raise ValueError("text after the JSON object")
    return members


# --- amounts and times -----------------------------------------------------------------


def to_yuan(amount: Money) -> str:
    """``Money`` in fen as Alipay's yuan string: ``Money(1234, "CNY")`` -> ``"12.34"``."""
    if amount.currency != CURRENCY:
        raise ProviderError(
            f"Alipay takes CNY only, not {amount.currency}.", code="unsupported_currency"
        )
    if not 0 < amount.amount <= MAX_AMOUNT_FEN:
        raise ProviderError(
            "An Alipay amount is between 0.01 and 100000000.00 yuan.", code="invalid_amount"
        )
    yuan, fen = divmod(amount.amount, 100)
    return f"{yuan}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """Fen from a positive yuan string with at most two decimals, within Alipay's bounds;
    ``ValueError`` for anything else ("1e3", "-1", " 1", "1.234", "0.00")."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("not a yuan amount with at most two decimals")
    fen = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if not 0 < fen <= MAX_AMOUNT_FEN:
        raise ValueError("amount out of range")
    return fen


def _parse_signed_yuan(text: str) -> int:
    match = _SIGNED_AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError("not a yuan amount with at most two decimals")
    fen = int(match[2]) * 100 + int((match[3] or "0").ljust(2, "0"))
    return -fen if match[1] else fen


def china_time(text: str) -> datetime:
    """An Alipay time ("2026-10-03 10:00:05", optionally with ".123") as aware UTC."""
    head, dot, fraction = text.partition(".")
    moment = datetime.strptime(head, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
    if dot:
        if not fraction.isdigit() or len(fraction) > 6:
            raise ValueError("bad fraction of a second")
        moment += timedelta(microseconds=int(fraction.ljust(6, "0")))
    return moment.astimezone(UTC)


def _now_in_china() -> datetime:
    return datetime.now(CHINA_TIME)


def _safe_code(value: Any, fallback: str) -> str:
    """A provider code fit for logs and error payloads (nothing else gets through)."""
    text = str(value) if value is not None else ""
    return text if _CODE.fullmatch(text) else fallback


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlipayConfig:
    app_id: str
    gateway_url: str
    app_private_key_pem: str
    alipay_public_key_pem: str
    timeout_seconds: float = 10.0

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"AlipayConfig(app_id={self.app_id!r}, gateway_url={self.gateway_url!r})"


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): urllib would otherwise follow one to ftp."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class AlipayProvider:
    """``PaymentProvider`` for Alipay: QR code (precreate) or redirect (page pay) payments,
    query, synchronous refunds, trade bills and RSA2-verified notifications."""

    name = ALIPAY
    refund_needs_notify_url = False

    def __init__(
        self, config: AlipayConfig, *, clock: Callable[[], datetime] = _now_in_china
    ) -> None:
        if not config.app_id:
            raise ProviderError("Alipay app id is not configured.", code="not_configured")
        if urllib.parse.urlsplit(config.gateway_url).scheme not in ("http", "https"):
            raise ProviderError("Alipay gateway URL must be http(s).", code="not_configured")
        try:
            self._private_key = load_private_key(config.app_private_key_pem)
            self._alipay_key = load_public_key(config.alipay_public_key_pem)
        except ValueError as error:
            raise ProviderError(str(error), code="not_configured") from None
        self.config = config
        self._clock = clock
        self._opener = urllib.request.build_opener(_HttpOnlyRedirects())

    @classmethod
    def from_settings(cls, settings: Settings) -> AlipayProvider:
        missing = [
            name
            for name, value in (
                ("ALIPAY_APP_ID", settings.alipay_app_id),
                ("ALIPAY_APP_PRIVATE_KEY", settings.alipay_app_private_key),
                ("ALIPAY_PUBLIC_KEY", settings.alipay_public_key),
            )
            if not value
        ]
        if missing:
            raise ProviderError(
                f"Alipay is not configured (missing {', '.join(missing)}).",
                code="not_configured",
            )
        return cls(
            AlipayConfig(
                app_id=settings.alipay_app_id,
                gateway_url=settings.alipay_gateway_url or GATEWAY_URL,
                app_private_key_pem=settings.alipay_app_private_key,
                alipay_public_key_pem=settings.alipay_public_key,
            )
        )

    # -- payments ------------------------------------------------------------------------

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """A QR code to scan (``alipay.trade.precreate``), or with ``return_url`` a signed
        cashier URL to send the shopper to (``alipay.trade.page.pay``). The same
        ``payment_id`` again gives the same trade (Alipay keys it on out_trade_no). With
        ``expires_at``, Alipay closes the trade unpaid at that time (``time_expire``)."""
        biz = {
            "out_trade_no": request.payment_id,
            "total_amount": to_yuan(request.amount),
            "subject": (request.description or request.order_id)[:SUBJECT_MAX_CHARS],
        }
        if request.expires_at is not None:
            # The absolute expiry (it wins over timeout_express): Alipay closes the trade
            # then. Cut to the second, so it never outlives the order's hold.
            biz["time_expire"] = request.expires_at.astimezone(CHINA_TIME).strftime(TIME_FORMAT)
        if request.return_url:
            biz["product_code"] = "FAST_INSTANT_TRADE_PAY"
            params = self._signed_params(
                "alipay.trade.page.pay",
                biz,
                notify_url=request.notify_url,
                return_url=request.return_url,
            )
            separator = "&" if "?" in self.config.gateway_url else "?"
            url = self.config.gateway_url + separator + urllib.parse.urlencode(params)
            return ProviderPayment(
                provider_payment_id=request.payment_id,
                status=ProviderStatus.PENDING,
                amount=request.amount,
                next_action={"type": "redirect", "url": url},
            )
        biz["product_code"] = "FACE_TO_FACE_PAYMENT"
        try:
            node = self._call("alipay.trade.precreate", biz, notify_url=request.notify_url)
        except ProviderError as error:
            if error.code == "ACQ.TRADE_HAS_SUCCESS":  # paid already: say how it stands
                return self.retrieve_payment(request.payment_id, request.payment_id)
            raise
        self._same_trade(node, request.payment_id)
        qr_code = node.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code:
            raise ProviderError("Alipay precreate gave no qr_code.", code="invalid_response")
        return ProviderPayment(
            provider_payment_id=request.payment_id,
            status=ProviderStatus.PENDING,
            amount=request.amount,
            next_action={"type": "qr_code", "code_url": qr_code},
        )

    def retrieve_payment(self, payment_id: str, provider_payment_id: str) -> ProviderPayment:
        """The trade as Alipay has it (``alipay.trade.query``). A precreated trade exists
        at Alipay only once the shopper has scanned its code; before that the query fails
        with ``ACQ.TRADE_NOT_EXIST``."""
        biz = {"out_trade_no": payment_id}
        if provider_payment_id and provider_payment_id != payment_id:
            biz["trade_no"] = provider_payment_id
        node = self._call("alipay.trade.query", biz)
        self._same_trade(node, payment_id)
        trade_status = node.get("trade_status")
        status = TRADE_STATUSES.get(trade_status) if isinstance(trade_status, str) else None
        if status is None:
            raise ProviderError(
                f"Alipay reported an unknown trade_status {_safe_code(trade_status, '?')}.",
                code="invalid_response",
            )
        trade_no = node.get("trade_no")
        return ProviderPayment(
            provider_payment_id=trade_no if isinstance(trade_no, str) and trade_no else payment_id,
            status=status,
            amount=Money(self._response_amount(node, "total_amount"), CURRENCY),
            failure_code="TRADE_CLOSED" if status is ProviderStatus.FAILED else None,
            failure_message=(
                "The trade was closed unpaid (or fully refunded)."
                if status is ProviderStatus.FAILED
                else None
            ),
        )

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """``alipay.trade.refund`` keyed by ``out_request_no = refund_id``. Alipay settles
        it synchronously: ``fund_change`` "Y" means the money moved now; "N" (for instance a
        repeat of the same request) is confirmed with ``alipay.trade.fastpay.refund.query``."""
        biz = {
            "out_trade_no": request.payment_id,
            "refund_amount": to_yuan(request.amount),
            "out_request_no": request.refund_id,
            "refund_reason": request.reason[:SUBJECT_MAX_CHARS],
        }
        if request.provider_payment_id and request.provider_payment_id != request.payment_id:
            biz["trade_no"] = request.provider_payment_id
        node = self._call("alipay.trade.refund", biz)
        self._same_trade(node, request.payment_id)
        if node.get("fund_change") == "Y":
            return ProviderRefund(request.refund_id, ProviderStatus.SUCCEEDED, request.amount)
        query = self._call(
            "alipay.trade.fastpay.refund.query",
            {"out_trade_no": request.payment_id, "out_request_no": request.refund_id},
        )
        if query.get("refund_status") != "REFUND_SUCCESS":
            return ProviderRefund(request.refund_id, ProviderStatus.PENDING, request.amount)
        refunded = self._response_amount(query, "refund_amount")
        if refunded != request.amount.amount:
            raise ProviderError(
                "Alipay already holds this refund id for a different amount.",
                code="refund_id_reused",
            )
        return ProviderRefund(request.refund_id, ProviderStatus.SUCCEEDED, request.amount)

    def settlement(self, day: date) -> list[SettlementRecord]:
        """The trade bill for ``day`` (China time): every payment and refund completed
        that day, from the bill file Alipay links to."""
        node = self._call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": day.isoformat()},
        )
        url = node.get("bill_download_url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in (
            "http",
            "https",
        ):
            raise ProviderError("Alipay gave no usable bill URL.", code="invalid_response")
        return parse_trade_bill(self._get(url, limit=MAX_BILL_BYTES))

    # -- notifications -------------------------------------------------------------------

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Check the RSA2 signature first, then our app id, then read the fields."""
        params = self._notification_params(headers, body)
        signature = params.get("sign", "")
        if not signature:
            raise NotificationRejected("notification has no signature")
        if params.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("notification sign_type is not RSA2")
        content = notification_signing_content(params)
        if not rsa2_verify(self._alipay_key, content, signature):
            raise NotificationRejected("notification signature does not verify")

        # Signed by Alipay from here on; still only the fields we expect, strictly read.
        if not hmac.compare_digest(params.get("app_id", "").encode(), self.config.app_id.encode()):
            raise NotificationRejected("notification is for another app_id")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise NotificationRejected("notification charset is not utf-8")
        notify_id = _required(params, "notify_id")
        out_trade_no = _required(params, "out_trade_no")
        trade_no = _required(params, "trade_no")
        trade_status = _required(params, "trade_status")
        status = TRADE_STATUSES.get(trade_status)
        if status is None:
            raise NotificationRejected("notification has an unknown trade_status")
        notified_at = _notification_time(params, "notify_time")
        event_type = f"{params.get('notify_type', 'trade_status_sync')}:{trade_status}"

        if _is_refund(params):
            return Notification(
                provider=self.name,
                event_id=notify_id,
                kind=NotificationKind.REFUND,
                status=ProviderStatus.SUCCEEDED,
                payment_id=out_trade_no,
                provider_payment_id=trade_no,
                # refund_fee is what the trade has had refunded in all, not this refund alone.
                amount=Money(_notification_amount(params, "refund_fee"), CURRENCY),
                refund_id=_required(params, "out_biz_no"),
                provider_refund_id=params["out_biz_no"],
                occurred_at=(
                    _notification_time(params, "gmt_refund")
                    if params.get("gmt_refund")
                    else notified_at
                ),
                event_type=event_type,
            )
        return Notification(
            provider=self.name,
            event_id=notify_id,
            kind=NotificationKind.PAYMENT,
            status=status,
            payment_id=out_trade_no,
            provider_payment_id=trade_no,
            # Left out, the amount is None: a success without one is not acknowledged.
            amount=(
                Money(_notification_amount(params, "total_amount"), CURRENCY)
                if params.get("total_amount")
                else None
            ),
            occurred_at=(
                _notification_time(params, "gmt_payment")
                if params.get("gmt_payment")
                else notified_at
            ),
            failure_code="TRADE_CLOSED" if status is ProviderStatus.FAILED else None,
            event_type=event_type,
        )

    def acknowledge(self) -> WebhookReply:
        # Alipay stops retrying only on a body of exactly "success".
        return WebhookReply(200, "success", "text/plain")

    def reject(self, message: str) -> WebhookReply:
        return WebhookReply(401, "failure", "text/plain")

    # -- the wire ------------------------------------------------------------------------

    def _signed_params(
        self, method: str, biz: Mapping[str, Any], **extra: str | None
    ) -> dict[str, str]:
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": self._clock().astimezone(CHINA_TIME).strftime(TIME_FORMAT),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params.update({key: value for key, value in extra.items() if value})
        return sign_params(self._private_key, params)

    def _call(
        self, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None
    ) -> dict[str, Any]:
        """POST one signed request; the verified response node, whose code is 10000."""
        params = self._signed_params(method, biz, notify_url=notify_url)
        body = urllib.parse.urlencode(params).encode("ascii")
        raw = self._post(body)
        try:
            text = raw.decode("utf-8")
            members = response_members(text)
        except (UnicodeDecodeError, ValueError):
            raise ProviderError(
                f"Alipay answered {method} with something that is not JSON.",
                code="invalid_response",
                retryable=True,
            ) from None
        node_name = method.replace(".", "_") + "_response"
        if node_name not in members and "error_response" in members:
            node_name = "error_response"
        if node_name not in members or not isinstance(members[node_name][0], dict):
            raise ProviderError(
                f"Alipay's answer to {method} has no {node_name}.", code="invalid_response"
            )
        node, node_text = members[node_name]
        signature = members.get("sign", (None, ""))[0]
        if not isinstance(signature, str) or not signature:
            raise ProviderError(
                f"Alipay's answer to {method} is not signed (unverified code "
                f"{_safe_code(node.get('code'), '?')}/{_safe_code(node.get('sub_code'), '-')}).",
                code="unsigned_response",
            )
        if not rsa2_verify(self._alipay_key, node_text, signature):
            raise ProviderError(
                f"Alipay's answer to {method} failed signature verification.",
                code="invalid_response_signature",
            )
        code = _safe_code(node.get("code"), "unknown")
        if code != SUCCESS:
            sub_code = _safe_code(node.get("sub_code"), code)
            sub_msg = str(node.get("sub_msg") or node.get("msg") or "")[:200]
            raise ProviderError(
                f"Alipay refused {method}: {sub_code} {sub_msg}".rstrip(),
                code=sub_code,
                retryable=code == "20000" or sub_code in _RETRYABLE_SUB_CODES,
            )
        return node

    def _post(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.config.gateway_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )
        return self._send(request, limit=MAX_RESPONSE_BYTES)

    def _get(self, url: str, *, limit: int) -> bytes:
        return self._send(urllib.request.Request(url, method="GET"), limit=limit)

    def _send(self, request: urllib.request.Request, *, limit: int) -> bytes:
        try:
            with self._opener.open(request, timeout=self.config.timeout_seconds) as response:
                data: bytes = response.read(limit + 1)
        except urllib.error.HTTPError as error:
            raise ProviderError(
                f"Alipay answered HTTP {error.code}.",
                code="http_error",
                retryable=error.code >= 500 or error.code == 429,
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise ProviderError(
                f"Alipay could not be reached ({type(error).__name__}).",
                code="unreachable",
                retryable=True,
            ) from None
        if len(data) > limit:
            raise ProviderError("Alipay's answer is too large.", code="invalid_response")
        return data

    def _same_trade(self, node: Mapping[str, Any], payment_id: str) -> None:
        out_trade_no = node.get("out_trade_no")
        if out_trade_no is not None and not hmac.compare_digest(
            str(out_trade_no).encode(), payment_id.encode()
        ):
            raise ProviderError("Alipay answered about another trade.", code="invalid_response")

    @staticmethod
    def _response_amount(node: Mapping[str, Any], field_name: str) -> int:
        value = node.get(field_name)
        try:
            return parse_yuan(value if isinstance(value, str) else "")
        except ValueError:
            raise ProviderError(
                f"Alipay's {field_name} is not a valid amount.", code="invalid_response"
            ) from None

    @staticmethod
    def _notification_params(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        content_type = next(
            (value for key, value in headers.items() if key.lower() == "content-type"), ""
        )
        if content_type and not content_type.lower().startswith(
            "application/x-www-form-urlencoded"
        ):
            raise NotificationRejected("notification is not form-encoded")
        if not body:
            raise NotificationRejected("notification body is empty")
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise NotificationRejected("notification body is too large")
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=True,
                errors="strict",
                max_num_fields=200,
            )
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("notification body is not a utf-8 form") from None
        params: dict[str, str] = {}
        for key, value in pairs:
            if key in params:
                raise NotificationRejected(f"notification repeats the field {key[:40]!r}")
            params[key] = value
        return params


def _is_refund(params: Mapping[str, str]) -> bool:
    """A refund notification names the refund request (``out_biz_no``, ``gmt_refund``) or
    carries a refunded total above zero. Alipay's own sample of a plain payment carries
    ``refund_fee=0.00`` (and ``gmt_close``): that is a payment."""
    if params.get("out_biz_no") or params.get("gmt_refund"):
        return True
    refund_fee = params.get("refund_fee", "")
    if not refund_fee:
        return False
    try:
        return _parse_signed_yuan(refund_fee) != 0
    except ValueError:
        raise NotificationRejected("notification refund_fee is not a valid amount") from None


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise NotificationRejected(f"notification lacks {name}")
    return value


def _notification_amount(params: Mapping[str, str], name: str) -> int:
    try:
        return parse_yuan(_required(params, name))
    except ValueError:
        raise NotificationRejected(f"notification {name} is not a valid amount") from None


def _notification_time(params: Mapping[str, str], name: str) -> datetime:
    try:
        return china_time(_required(params, name))
    except ValueError:
        raise NotificationRejected(f"notification {name} is not a valid time") from None


# --- trade bill ------------------------------------------------------------------------


def parse_trade_bill(archive: bytes) -> list[SettlementRecord]:
    """SettlementRecords from a trade bill zip: every detail file's payment and refund
    rows, in file order. Summary files and comment lines are skipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bill:
            members = [info for info in bill.infolist() if not info.is_dir()]
            if sum(info.file_size for info in members) > MAX_BILL_BYTES:
                raise ProviderError("Alipay's bill is too large.", code="invalid_bill")
            texts = [bill.read(info).decode("gb18030") for info in members]
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError, EOFError):
        raise ProviderError(
            "Alipay's bill is not a readable zip of GBK CSV.", code="invalid_bill"
        ) from None
    records: list[SettlementRecord] = []
    detail_files = 0
    for text in texts:
        rows = _bill_rows(text)
        if rows is None:
            continue
        detail_files += 1
        records.extend(_settlement_record(row) for row in rows)
    if detail_files == 0:
        raise ProviderError("Alipay's bill holds no detail file.", code="invalid_bill")
    return records


def _bill_rows(text: str) -> list[dict[str, str]] | None:
    """The rows of a detail file as ``header -> cell``; ``None`` for any other file."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        return None
    reader = csv.reader(lines)
    header = [cell.strip() for cell in next(reader)]
    if not header or header[0] != COL_TRADE_NO:
        return None
    rows = []
    for cells in reader:
        if len(cells) < len(header):
            raise ProviderError("Alipay's bill has a short row.", code="invalid_bill")
        rows.append({name: cell.strip() for name, cell in zip(header, cells, strict=False)})
    return rows


def _settlement_record(row: Mapping[str, str]) -> SettlementRecord:
    try:
        kind = _BUSINESS_KINDS[row[COL_BUSINESS_TYPE]]
        amount = abs(_parse_signed_yuan(row[COL_ORDER_AMOUNT]))
        fee = abs(_parse_signed_yuan(row.get(COL_FEE) or "0"))
        received = _parse_signed_yuan(row.get(COL_RECEIVED) or "0")
        settled_at = china_time(row[COL_COMPLETED]) if row.get(COL_COMPLETED) else None
        trade_no = row[COL_TRADE_NO]
    except (KeyError, ValueError):
        raise ProviderError(
            "Alipay's bill has a row that cannot be read.", code="invalid_bill"
        ) from None
    if not trade_no or amount == 0:
        raise ProviderError("Alipay's bill has a row without trade or amount.", code="invalid_bill")
    out_trade_no = row.get(COL_OUT_TRADE_NO) or None
    reference = (
        out_trade_no if kind is SettlementKind.PAYMENT else row.get(COL_REFUND_REQUEST_NO) or None
    )
    return SettlementRecord(
        provider=ALIPAY,
        kind=kind,
        reference=reference,
        provider_reference=trade_no,
        amount=Money(amount, CURRENCY),
        fee=Money(fee, CURRENCY),
        settled_at=settled_at,
        details={
            "out_trade_no": out_trade_no,
            "business_type": row[COL_BUSINESS_TYPE],
            "subject": row.get(COL_SUBJECT, ""),
            "created_at": row.get(COL_CREATED, ""),
            "merchant_received": received,
        },
    )
