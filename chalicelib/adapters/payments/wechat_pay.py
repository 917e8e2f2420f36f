"""WeChat Pay APIv3: Native (QR code) payments, refunds, trade bills and notifications.

Our own small client on the standard library's HTTP and ``cryptography``. The wire rules:

- Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``: SHA256withRSA (PKCS#1 v1.5) with the
  merchant key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
- Every API answer and every notification is signed with WeChat Pay's platform key over
  ``TIMESTAMP\\nNONCE\\nBODY\\n`` (headers ``Wechatpay-Timestamp``, ``-Nonce``,
  ``-Signature``, ``-Serial``). Only the platform keys configured here are trusted, chosen
  by serial: the WeChat Pay public key (by its ``PUB_KEY_ID_…``) and any platform
  certificates (by their serial numbers), so a merchant moving from certificates to the
  public key keeps verifying both kinds of signature. An unknown serial is rejected and
  never looked up over the network, and a timestamp 300 s or more away from our clock is
  stale.
- Every request names the key we verify with in ``Wechatpay-Serial`` (the public key's id
  when one is configured, else the newest certificate's serial), as the official SDK does:
  WeChat Pay signs its answer with that key.
- A notification's ``resource`` is AEAD_AES_256_GCM-encrypted with the APIv3 key.
- The bill file is the one answer WeChat Pay does not sign: the signed bill API answer
  carries the file's SHA1, which the downloaded bytes must match; its rows are read in
  ``wechat_pay_bill``.

The signature scheme and the keys are in ``wechat_pay_signing``, the strict reading of
WeChat Pay's JSON and its id and state vocabulary in ``wechat_pay_fields``, and the reading
of notifications in ``wechat_pay_notifications``; this module is the configuration, the
signed HTTP calls and the provider.

Amounts are integers in fen and WeChat Pay takes CNY only. Our ``payment_id`` is the
merchant reference ``out_trade_no`` and our ``refund_id`` is ``out_refund_no``; WeChat Pay's
``transaction_id`` exists only once the shopper has paid, so until then the provider
payment id is the ``out_trade_no``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.payments import (
    WECHAT_PAY,
    Notification,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    SettlementRecord,
    WebhookReply,
)
from chalicelib.adapters.payments.wechat_pay_fields import (
    CURRENCY,
    OUT_REFUND_NO,
    OUT_TRADE_NO,
    PROVIDER_ID,
    REFUND_STATUSES,
    STATE,
    TRADE_STATES,
    Reader,
    json_object,
)
from chalicelib.adapters.payments.wechat_pay_notifications import read_notification
from chalicelib.adapters.payments.wechat_pay_signing import (
    SignatureRejected,
    build_authorization,
    load_merchant_key,
    load_platform_key,
    not_configured,
    platform_certificates,
    verify_signature,
)
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.settings import Settings

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
APIV3_KEY_BYTES = 32
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a busy day's bill file
MAX_DESCRIPTION_CHARS = 127
MAX_REASON_CHARS = 80
MAX_NOTIFY_URL_CHARS = 255
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CONFIG_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # mchid, appid, serials (go inside quotes)
SHA1_HEX = re.compile(r"[0-9A-Fa-f]{40}")
RETRYABLE_CODES = frozenset(
    {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "STATEMENT_CREATING"}
)


def _malformed_response(message: str) -> ProviderError:
    return ProviderError(
        f"WeChat Pay sent an unexpected answer: {message}", code="malformed_response"
    )


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class WeChatPayConfig:
    mchid: str
    appid: str
    merchant_private_key_pem: str = field(repr=False)
    merchant_serial_no: str
    apiv3_key: str = field(repr=False)
    platform_public_keys: Mapping[str, str]  # serial -> public key (or certificate) PEM
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 10.0
    request_serial: str = ""  # sent as Wechatpay-Serial; empty = the first platform key's

    @classmethod
    def from_settings(cls, settings: Settings) -> WeChatPayConfig:
        required = {
            "WECHATPAY_MCHID": settings.wechatpay_mchid,
            "WECHATPAY_APPID": settings.wechatpay_appid,
            "WECHATPAY_MERCHANT_PRIVATE_KEY": settings.wechatpay_merchant_private_key,
            "WECHATPAY_MERCHANT_SERIAL": settings.wechatpay_merchant_serial,
            "WECHATPAY_APIV3_KEY": settings.wechatpay_apiv3_key,
        }
        certificates = platform_certificates(settings.wechatpay_platform_certificates)
        public_key = settings.wechatpay_platform_public_key.strip()
        public_key_id = settings.wechatpay_platform_serial.strip()
        if public_key or public_key_id or not certificates:
            # The public key and its id go together; one of the two kinds is needed.
            required["WECHATPAY_PLATFORM_PUBLIC_KEY"] = public_key
            required["WECHATPAY_PLATFORM_SERIAL"] = public_key_id
        missing = sorted(name for name, value in required.items() if not value.strip())
        if missing:
            raise ProviderError(
                f"WeChat Pay is not configured: {', '.join(missing)} unset", code="not_configured"
            )
        keys = dict(certificates)
        if public_key_id:
            keys[public_key_id] = public_key
        return cls(
            mchid=settings.wechatpay_mchid.strip(),
            appid=settings.wechatpay_appid.strip(),
            merchant_private_key_pem=settings.wechatpay_merchant_private_key,
            merchant_serial_no=settings.wechatpay_merchant_serial.strip(),
            apiv3_key=settings.wechatpay_apiv3_key.strip(),
            platform_public_keys=keys,
            base_url=settings.wechatpay_base_url.strip() or DEFAULT_BASE_URL,
            # The SDK's choice: the public key's id, else the newest certificate.
            request_serial=public_key_id or next(reversed(certificates), ""),
        )


# --- HTTP ----------------------------------------------------------------------------------


class WeChatPayApiError(ProviderError):
    """WeChat Pay answered with an error; ``signed`` says whether that answer verified."""

    def __init__(
        self, message: str, *, code: str, status: int, retryable: bool, signed: bool
    ) -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.status = status
        self.signed = signed


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would resend our Authorization header somewhere we did not sign for.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Any  # http.client.HTTPMessage: case-insensitive, keeps repeated headers
    body: bytes


def _read_capped(response: Any) -> bytes:
    body: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ProviderError("WeChat Pay's answer is too large", code="malformed_response")
    return body


# --- the provider --------------------------------------------------------------------------


class WeChatPayProvider:
    """WeChat Pay Native payments behind the ``PaymentProvider`` interface."""

    name = WECHAT_PAY
    refund_needs_notify_url = True

    def __init__(self, config: WeChatPayConfig, *, clock: Callable[[], float] = time.time) -> None:
        for label, value in (
            ("mchid", config.mchid),
            ("appid", config.appid),
            ("merchant serial", config.merchant_serial_no),
        ):
            if not CONFIG_ID.fullmatch(value):
                raise not_configured(f"{label} is malformed")
        apiv3_key = config.apiv3_key.encode("utf-8")
        if len(apiv3_key) != APIV3_KEY_BYTES:
            raise not_configured(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes")
        if not config.platform_public_keys:
            raise not_configured("no platform public key")
        platform_keys: dict[str, rsa.RSAPublicKey] = {}
        for serial, pem in config.platform_public_keys.items():
            if not CONFIG_ID.fullmatch(serial):
                raise not_configured("a platform key serial is malformed")
            platform_keys[serial] = load_platform_key(pem)
        base = urllib.parse.urlsplit(config.base_url.rstrip("/"))
        if base.scheme not in ("https", "http") or not base.netloc or base.query or base.fragment:
            raise not_configured("the base URL must be an http(s) URL without a query")
        self.config = config
        self.mchid = config.mchid
        self.appid = config.appid
        self._merchant_key = load_merchant_key(config.merchant_private_key_pem)
        self._apiv3_key = apiv3_key
        self._platform_keys = platform_keys
        self._request_serial = config.request_serial or next(iter(platform_keys))
        if self._request_serial not in platform_keys:
            raise not_configured("the request serial names no configured platform key")
        self._origin = f"{base.scheme}://{base.netloc}"
        self._base_path = base.path
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects())

    @classmethod
    def from_settings(cls, settings: Settings) -> WeChatPayProvider:
        return cls(WeChatPayConfig.from_settings(settings))

    # -- payments --

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """A Native order: WeChat Pay answers a ``code_url`` for the shopper to scan; with
        ``expires_at`` the order can no longer be paid after that time (``time_expire``)."""
        _require_cny(request.amount)
        if request.amount.amount < 1:
            raise ProviderError(
                "A WeChat Pay payment must be at least 1 fen.", code="invalid_amount"
            )
        out_trade_no = _out_trade_no(request.payment_id)
        payload = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": (request.description.strip() or request.order_id)[
                :MAX_DESCRIPTION_CHARS
            ],
            "out_trade_no": out_trade_no,
            "notify_url": _notify_url(request.notify_url),
            "amount": {"total": request.amount.amount, "currency": CURRENCY},
        }
        if request.expires_at is not None:
            # WeChat Pay refuses payment after time_expire (RFC 3339 with offset); cut to
            # the second, so it never outlives the order's hold.
            payload["time_expire"] = (
                request.expires_at.astimezone(CHINA_TIME).replace(microsecond=0).isoformat()
            )
        try:
            answer = self._call("POST", "/v3/pay/transactions/native", payload)
        except WeChatPayApiError as error:
            if error.code == "ORDERPAID":  # a retry after the shopper already paid
                return self.retrieve_payment(request.payment_id, out_trade_no)
            raise
        code_url = answer.text("code_url", max_length=512)
        if not code_url.startswith("weixin://"):
            answer.fail("code_url")
        return ProviderPayment(
            provider_payment_id=out_trade_no,
            status=ProviderStatus.PENDING,
            amount=request.amount,
            next_action={"type": "qr_code", "code_url": code_url},
        )

    def retrieve_payment(self, payment_id: str, provider_payment_id: str) -> ProviderPayment:
        """Query by our ``out_trade_no`` (the only id known before the shopper pays)."""
        out_trade_no = _out_trade_no(payment_id)
        path = (
            f"/v3/pay/transactions/out-trade-no/{urllib.parse.quote(out_trade_no, safe='')}"
            f"?mchid={urllib.parse.quote(self.mchid, safe='')}"
        )
        answer = self._call("GET", path)
        answer.equals("mchid", self.mchid)
        answer.equals("appid", self.appid)
        answer.equals("out_trade_no", out_trade_no)
        trade_state = answer.text("trade_state", pattern=STATE)
        status = TRADE_STATES.get(trade_state)
        if status is None:
            answer.fail("trade_state", "is unknown")
        amount = answer.child("amount")
        total = amount.integer("total", minimum=1)
        currency = amount.optional_text("currency") or CURRENCY
        if currency != CURRENCY:
            amount.fail("currency", "is not CNY")
        transaction_id = answer.optional_text("transaction_id", pattern=PROVIDER_ID)
        failed = status is ProviderStatus.FAILED
        return ProviderPayment(
            provider_payment_id=transaction_id or out_trade_no,
            status=status,
            amount=Money(total, CURRENCY),
            failure_code=trade_state if failed else None,
            failure_message=answer.optional_text("trade_state_desc") if failed else None,
        )

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """A refund of part or all of a paid order; the same ``refund_id`` is idempotent."""
        _require_cny(request.amount)
        _require_cny(request.payment_amount)
        if not 1 <= request.amount.amount <= request.payment_amount.amount:
            raise ProviderError(
                "A refund must be at least 1 fen and at most the payment.", code="invalid_amount"
            )
        out_trade_no = _out_trade_no(request.payment_id)
        if not OUT_REFUND_NO.fullmatch(request.refund_id):
            raise ProviderError(
                "The refund id is not a valid WeChat Pay out_refund_no.", code="invalid_request"
            )
        payload: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": request.refund_id,
            "notify_url": _notify_url(request.notify_url),
            "amount": {
                "refund": request.amount.amount,
                "total": request.payment_amount.amount,
                "currency": CURRENCY,
            },
        }
        reason = request.reason.strip()[:MAX_REASON_CHARS]
        if reason:
            payload["reason"] = reason
        answer = self._call("POST", "/v3/refund/domestic/refunds", payload)
        answer.equals("out_refund_no", request.refund_id)
        answer.equals("out_trade_no", out_trade_no)
        refund_id = answer.text("refund_id", pattern=PROVIDER_ID)
        status_text = answer.text("status", pattern=STATE)
        status = REFUND_STATUSES.get(status_text)
        if status is None:
            answer.fail("status", "is unknown")
        refunded = answer.child("amount").integer("refund", minimum=1)
        if refunded != request.amount.amount:
            raise ProviderError(
                "WeChat Pay holds this refund id for a different amount.", code="refund_mismatch"
            )
        return ProviderRefund(
            provider_refund_id=refund_id, status=status, amount=Money(refunded, CURRENCY)
        )

    # -- settlement --

    def settlement(self, day: date) -> list[SettlementRecord]:
        """The day's trade bill (China time); an empty day has no bill, hence no lines."""
        path = f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL"
        try:
            answer = self._call("GET", path)
        except WeChatPayApiError as error:
            if error.code == "NO_STATEMENT_EXIST" and error.signed:
                return []
            raise
        if answer.text("hash_type") != "SHA1":
            answer.fail("hash_type", "is not SHA1")
        expected_hash = answer.text("hash_value", pattern=SHA1_HEX).lower()
        download = urllib.parse.urlsplit(answer.text("download_url", max_length=2048))
        if f"{download.scheme}://{download.netloc}" != self._origin or not download.path:
            answer.fail("download_url", "is not on the WeChat Pay API host")
        target = download.path + (f"?{download.query}" if download.query else "")
        bill = self._send_signed("GET", target, "")
        if bill.status != 200:
            raise self._api_error(bill)
        if not hmac.compare_digest(hashlib.sha1(bill.body).hexdigest(), expected_hash):
            raise ProviderError("The bill file does not match its SHA1.", code="invalid_bill")
        from chalicelib.adapters.payments.wechat_pay_bill import parse_trade_bill

        return parse_trade_bill(bill.body, mchid=self.mchid)

    # -- notifications --

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return read_notification(
            headers,
            body,
            mchid=self.mchid,
            appid=self.appid,
            apiv3_key=self._apiv3_key,
            platform_keys=self._platform_keys,
            clock=self._clock,
        )

    def acknowledge(self) -> WebhookReply:
        # APIv3 takes 200 or 204 with no body as "received".
        return WebhookReply(200, "", "text/plain")

    def reject(self, message: str) -> WebhookReply:
        body = json.dumps({"code": "FAIL", "message": message[:256]}, ensure_ascii=False)
        return WebhookReply(401, body, "application/json")

    # -- internals --

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Reader:
        """One signed API call whose answer must verify; returns the answer's JSON."""
        body = (
            ""
            if payload is None
            else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        )
        answer = self._send_signed(method, self._base_path + path, body)
        if not 200 <= answer.status < 300:
            raise self._api_error(answer)
        self._verify_answer(answer)
        if answer.status == 204 or not answer.body:
            return Reader({}, "answer", _malformed_response)
        return Reader(
            json_object(answer.body, "answer", _malformed_response), "answer", _malformed_response
        )

    def _send_signed(self, method: str, path_with_query: str, body: str) -> _Answer:
        timestamp = str(int(self._clock()))
        nonce = secrets.token_hex(16).upper()
        headers = {
            "Authorization": build_authorization(
                mchid=self.mchid,
                serial_no=self.config.merchant_serial_no,
                private_key=self._merchant_key,
                method=method,
                path_with_query=path_with_query,
                body=body,
                timestamp=timestamp,
                nonce=nonce,
            ),
            "Accept": "application/json",
            "User-Agent": "orderdesk-wechatpay/1",  # WeChat Pay refuses requests without one
            # The key WeChat Pay signs its answer with: one we trust.
            "Wechatpay-Serial": self._request_serial,
        }
        data = None
        if method != "GET":
            headers["Content-Type"] = "application/json"
            data = body.encode("utf-8")
        request = urllib.request.Request(
            self._origin + path_with_query, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self.config.timeout_seconds) as response:
                return _Answer(response.status, response.headers, _read_capped(response))
        except urllib.error.HTTPError as error:
            with error:
                return _Answer(error.code, error.headers, _read_capped(error))
        except (OSError, http.client.HTTPException) as error:
            raise ProviderError(
                f"WeChat Pay could not be reached: {type(error).__name__}",
                code="unreachable",
                retryable=True,
            ) from None

    def _verify_answer(self, answer: _Answer) -> None:
        try:
            verify_signature(answer.headers, answer.body, self._platform_keys, now=self._clock())
        except SignatureRejected as error:
            raise ProviderError(
                f"WeChat Pay's answer failed verification: {error.reason}", code="invalid_signature"
            ) from None

    def _api_error(self, answer: _Answer) -> WeChatPayApiError:
        try:
            self._verify_answer(answer)
            signed = True
        except ProviderError:
            signed = False
        code, message = f"http_{answer.status}", ""
        try:
            error = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            error = None
        if isinstance(error, dict):
            if isinstance(error.get("code"), str) and STATE.fullmatch(error["code"]):
                code = error["code"]
            if isinstance(error.get("message"), str):
                message = error["message"][:200]
        retryable = answer.status >= 500 or answer.status == 429 or code in RETRYABLE_CODES
        return WeChatPayApiError(
            f"WeChat Pay answered {answer.status} {code}: {message}".rstrip(": "),
            code=code,
            status=answer.status,
            retryable=retryable,
            signed=signed,
        )


def _require_cny(amount: Money) -> None:
    if amount.currency != CURRENCY:
        raise ProviderError(
            f"WeChat Pay takes CNY only, not {amount.currency}.", code="unsupported_currency"
        )


def _out_trade_no(payment_id: str) -> str:
    if not OUT_TRADE_NO.fullmatch(payment_id):
        raise ProviderError(
            "The payment id is not a valid WeChat Pay out_trade_no.", code="invalid_request"
        )
    return payment_id


def _notify_url(url: str) -> str:
    """WeChat Pay takes only an https notify URL without a query string; plain http is
    allowed here for a loopback host alone (the local stack's emulator)."""
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in LOOPBACK_HOSTS
    if (
        parts.scheme not in ("https", "http")
        or not parts.netloc
        or len(url) > MAX_NOTIFY_URL_CHARS
        or (parts.scheme == "http" and not loopback)
        or ((parts.query or parts.fragment) and not loopback)
    ):
        raise ProviderError(
            "The WeChat Pay notify URL must be an absolute https:// URL without a query "
            "(set PUBLIC_API_URL to the API's https address).",
            code="invalid_notify_url",
        )
    return url
