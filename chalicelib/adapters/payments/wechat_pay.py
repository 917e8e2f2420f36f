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

Amounts are integers in fen and WeChat Pay takes CNY only. Our ``payment_id`` is the
merchant reference ``out_trade_no`` and our ``refund_id`` is ``out_refund_no``; WeChat Pay's
``transaction_id`` exists only once the shopper has paid, so until then the provider
payment id is the ``out_trade_no``.
"""

from __future__ import annotations

import base64
import binascii
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
from datetime import date, datetime
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.adapters.payments import (
    WECHAT_PAY,
    Notification,
    NotificationKind,
    NotificationRejected,
    PaymentRequest,
    ProviderError,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    RefundRequest,
    SettlementRecord,
    WebhookReply,
)
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.settings import Settings

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
CURRENCY = "CNY"
TIMESTAMP_TOLERANCE_SECONDS = 300
MIN_KEY_BITS = 2048
APIV3_KEY_BYTES = 32
MAX_FEN = 10**12  # far above any single payment; a bound against absurd values
MAX_NOTIFICATION_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a busy day's bill file
MAX_DESCRIPTION_CHARS = 127
MAX_REASON_CHARS = 80
MAX_NOTIFY_URL_CHARS = 255
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# WeChat Pay's own rules for merchant references and ids.
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
PROVIDER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # transaction_id, refund_id
CONFIG_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # mchid, appid, serials (go inside quotes)
EVENT_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")
EVENT_TYPE = re.compile(r"[A-Z_.]{1,64}")
STATE = re.compile(r"[A-Z_]{1,32}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
NONCE = re.compile(r"[!-~]{1,64}")  # printable ASCII, no spaces or newlines
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
SHA1_HEX = re.compile(r"[0-9A-Fa-f]{40}")

TRADE_STATES = {
    "SUCCESS": ProviderStatus.SUCCEEDED,
    "REFUND": ProviderStatus.SUCCEEDED,  # paid, then (partly) refunded
    "NOTPAY": ProviderStatus.PENDING,
    "USERPAYING": ProviderStatus.PENDING,
    "ACCEPT": ProviderStatus.PENDING,
    "CLOSED": ProviderStatus.FAILED,
    "PAYERROR": ProviderStatus.FAILED,
    "REVOKED": ProviderStatus.FAILED,
}
REFUND_STATUSES = {
    "SUCCESS": ProviderStatus.SUCCEEDED,
    "PROCESSING": ProviderStatus.PENDING,
    "ABNORMAL": ProviderStatus.FAILED,
    "CLOSED": ProviderStatus.FAILED,
}
# A refund notification's event type names the refund status it reports.
REFUND_EVENTS = {
    "REFUND.SUCCESS": "SUCCESS",
    "REFUND.ABNORMAL": "ABNORMAL",
    "REFUND.CLOSED": "CLOSED",
}
RETRYABLE_CODES = frozenset(
    {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "STATEMENT_CREATING"}
)
SIGNATURE_HEADERS = (
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
)


# --- signatures and encryption (pure functions) -------------------------------------------


def request_message(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: str
) -> str:
    """What the merchant signs for a request."""
    return f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n"


def sign_message(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) over ``message`` in UTF-8."""
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def build_authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    path_with_query: str,
    body: str,
    timestamp: str,
    nonce: str,
) -> str:
    """The ``Authorization`` header value for one request."""
    signature = sign_message(
        private_key, request_message(method, path_with_query, timestamp, nonce, body)
    )
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


class SignatureRejected(Exception):
    """A WeChat Pay signature that must not be trusted; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_signature(
    headers: Mapping[str, str] | Any,
    body: bytes,
    platform_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    now: float,
) -> str:
    """Check a WeChat Pay answer's or notification's signature; returns the key serial.

    ``headers`` is any mapping with ``items()`` (names matched case-insensitively). Raises
    ``SignatureRejected``; never touches the network.
    """
    found = _lower_headers(headers)
    values: dict[str, str] = {}
    for name in SIGNATURE_HEADERS:
        value = found.get(name, "").strip()
        if not value:
            raise SignatureRejected(f"missing {name} header")
        values[name] = value
    signature_type = found.get("wechatpay-signature-type")
    if signature_type is not None and signature_type.strip() != AUTH_SCHEME:
        raise SignatureRejected("unsupported signature type")
    timestamp = values["wechatpay-timestamp"]
    nonce = values["wechatpay-nonce"]
    if not TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("malformed timestamp")
    if abs(now - int(timestamp)) >= TIMESTAMP_TOLERANCE_SECONDS:
        raise SignatureRejected("stale timestamp")
    if not NONCE.fullmatch(nonce):
        raise SignatureRejected("malformed nonce")
    serial = values["wechatpay-serial"]
    # A certificate serial is hex: its case does not matter.
    key = _find_by_serial(platform_keys, serial) or _find_by_serial(platform_keys, serial.upper())
    if key is None:
        raise SignatureRejected("unknown platform key serial")
    try:
        signature = base64.b64decode(values["wechatpay-signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("malformed signature") from None
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRejected("signature does not verify") from None
    return serial


def decrypt_resource(
    apiv3_key: bytes, *, nonce: str, ciphertext: str, associated_data: str
) -> bytes:
    """Open an AEAD_AES_256_GCM resource (ciphertext is base64 of ciphertext + tag)."""
    return AESGCM(apiv3_key).decrypt(
        nonce.encode("utf-8"),
        base64.b64decode(ciphertext, validate=True),
        associated_data.encode("utf-8"),
    )


def _lower_headers(headers: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower()
        if key in found and found[key] != value:
            raise SignatureRejected(f"conflicting {key} headers")
        found[key] = str(value)
    return found


def _find_by_serial(keys: Mapping[str, rsa.RSAPublicKey], serial: str) -> rsa.RSAPublicKey | None:
    # Compare against every serial, in constant time each, whatever matches first.
    wanted = serial.encode("utf-8", "replace")
    match = None
    for known, key in keys.items():
        if hmac.compare_digest(known.encode("utf-8"), wanted):
            match = key
    return match


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


# --- strict reading of decoded JSON --------------------------------------------------------


def _json_object(raw: bytes, where: str, error: Callable[[str], Exception]) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> NoReturn:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(f"{where} is not valid JSON") from None
    if not isinstance(value, dict):
        raise error(f"{where} is not a JSON object")
    return value


class _Reader:
    """Typed, bounded reads from a decoded JSON object; any surprise raises ``error``."""

    def __init__(self, data: Any, where: str, error: Callable[[str], Exception]) -> None:
        if not isinstance(data, dict):
            raise error(f"{where} is not an object")
        self._data = data
        self._where = where
        self._error = error

    def fail(self, key: str, what: str = "is missing or malformed") -> NoReturn:
        raise self._error(f"{self._where}.{key} {what}")

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def text(
        self,
        key: str,
        *,
        pattern: re.Pattern[str] | None = None,
        max_length: int = 256,
        allow_empty: bool = False,
    ) -> str:
        value = self._data.get(key)
        if not isinstance(value, str) or len(value) > max_length:
            self.fail(key)
        if not value and not allow_empty:
            self.fail(key)
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key)
        return value

    def optional_text(
        self, key: str, *, pattern: re.Pattern[str] | None = None, max_length: int = 256
    ) -> str | None:
        return self.text(key, pattern=pattern, max_length=max_length) if self.has(key) else None

    def integer(self, key: str, *, minimum: int = 0, maximum: int = MAX_FEN) -> int:
        value = self._data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key)
        if not minimum <= value <= maximum:
            self.fail(key, "is out of range")
        return value

    def instant(self, key: str) -> datetime:
        value = self.text(key, pattern=RFC3339, max_length=40)
        return datetime.fromisoformat(value)

    def child(self, key: str) -> _Reader:
        return _Reader(self._data.get(key), f"{self._where}.{key}", self._error)

    def equals(self, key: str, expected: str) -> None:
        if not _same(self.text(key), expected):
            self.fail(key, "is not ours")


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


def certificate_serial(certificate: x509.Certificate) -> str:
    """A platform certificate's serial as WeChat Pay writes it: upper-case hex."""
    return format(certificate.serial_number, "X")


def platform_certificates(bundle: str) -> dict[str, str]:
    """serial -> PEM for each certificate in ``bundle`` (PEM text, one or more), oldest
    first by the start of their validity."""
    text = bundle.strip().replace("\\n", "\n")
    if not text:
        return {}
    try:
        loaded = x509.load_pem_x509_certificates(text.encode("ascii", "replace"))
    except ValueError:
        raise _not_configured("a platform certificate cannot be read") from None
    loaded.sort(key=lambda cert: cert.not_valid_before_utc)
    return {
        certificate_serial(cert): cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        for cert in loaded
    }


def _pem(text: str, label: str) -> bytes:
    """PEM text as configured: literal ``\\n`` (one-line env values) and bare base64 allowed."""
    text = text.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        text = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return text.encode("ascii", "replace")


def _not_configured(message: str) -> ProviderError:
    return ProviderError(f"WeChat Pay is misconfigured: {message}", code="not_configured")


def load_merchant_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(_pem(pem, "PRIVATE KEY"), password=None)
    except (ValueError, TypeError):
        raise _not_configured("the merchant private key cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise _not_configured(f"the merchant key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def load_platform_key(pem: str) -> rsa.RSAPublicKey:
    """A platform public key, or the public key of a platform certificate."""
    try:
        if "CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(_pem(pem, "CERTIFICATE")).public_key()
        else:
            key = serialization.load_pem_public_key(_pem(pem, "PUBLIC KEY"))
    except (ValueError, TypeError):
        raise _not_configured("a platform public key cannot be read") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise _not_configured(f"platform keys must be RSA of at least {MIN_KEY_BITS} bits")
    return key


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
                raise _not_configured(f"{label} is malformed")
        apiv3_key = config.apiv3_key.encode("utf-8")
        if len(apiv3_key) != APIV3_KEY_BYTES:
            raise _not_configured(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes")
        if not config.platform_public_keys:
            raise _not_configured("no platform public key")
        platform_keys: dict[str, rsa.RSAPublicKey] = {}
        for serial, pem in config.platform_public_keys.items():
            if not CONFIG_ID.fullmatch(serial):
                raise _not_configured("a platform key serial is malformed")
            platform_keys[serial] = load_platform_key(pem)
        base = urllib.parse.urlsplit(config.base_url.rstrip("/"))
        if base.scheme not in ("https", "http") or not base.netloc or base.query or base.fragment:
            raise _not_configured("the base URL must be an http(s) URL without a query")
        self.config = config
        self.mchid = config.mchid
        self.appid = config.appid
        self._merchant_key = load_merchant_key(config.merchant_private_key_pem)
        self._apiv3_key = apiv3_key
        self._platform_keys = platform_keys
        self._request_serial = config.request_serial or next(iter(platform_keys))
        if self._request_serial not in platform_keys:
            raise _not_configured("the request serial names no configured platform key")
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
        if len(body) > MAX_NOTIFICATION_BYTES:
            raise NotificationRejected("notification body too large")
        try:
            verify_signature(headers, body, self._platform_keys, now=self._clock())
        except SignatureRejected as error:
            raise NotificationRejected(error.reason) from None
        envelope = _Reader(
            _json_object(body, "notification", NotificationRejected),
            "notification",
            NotificationRejected,
        )
        event_id = envelope.text("id", pattern=EVENT_ID)
        event_type = envelope.text("event_type", pattern=EVENT_TYPE)
        created_at = envelope.instant("create_time")
        if envelope.text("resource_type") != "encrypt-resource":
            envelope.fail("resource_type", "is not encrypt-resource")
        resource = envelope.child("resource")
        if resource.text("algorithm") != AEAD_ALGORITHM:
            resource.fail("algorithm", f"is not {AEAD_ALGORITHM}")
        original_type = resource.text("original_type", max_length=64)
        data = _Reader(
            _json_object(self._open(resource), "resource", NotificationRejected),
            "resource",
            NotificationRejected,
        )
        if event_type.startswith("TRANSACTION."):
            if original_type != "transaction":
                resource.fail("original_type", "does not match the event type")
            return self._payment_notification(event_id, event_type, created_at, data)
        if event_type in REFUND_EVENTS:
            if original_type != "refund":
                resource.fail("original_type", "does not match the event type")
            return self._refund_notification(event_id, event_type, created_at, data)
        return Notification(
            provider=self.name,
            event_id=event_id,
            kind=NotificationKind.OTHER,
            status=ProviderStatus.PENDING,
            payment_id=None,
            provider_payment_id=None,
            amount=None,
            occurred_at=created_at,
            event_type=event_type,
        )

    def acknowledge(self) -> WebhookReply:
        # APIv3 takes 200 or 204 with no body as "received".
        return WebhookReply(200, "", "text/plain")

    def reject(self, message: str) -> WebhookReply:
        body = json.dumps({"code": "FAIL", "message": message[:256]}, ensure_ascii=False)
        return WebhookReply(401, body, "application/json")

    # -- internals --

    def _open(self, resource: _Reader) -> bytes:
        nonce = resource.text("nonce", max_length=32)
        if len(nonce.encode("utf-8")) < 8:  # AES-GCM needs at least 8 nonce bytes
            resource.fail("nonce")
        try:
            return decrypt_resource(
                self._apiv3_key,
                nonce=nonce,
                ciphertext=resource.text("ciphertext", max_length=MAX_NOTIFICATION_BYTES),
                associated_data=(
                    resource.text("associated_data", allow_empty=True)
                    if resource.has("associated_data")
                    else ""
                ),
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise NotificationRejected("resource does not decrypt with our APIv3 key") from None

    def _require_ours(self, data: _Reader, *, with_appid: bool) -> None:
        data.equals("mchid", self.mchid)
        if with_appid:
            data.equals("appid", self.appid)

    def _payment_notification(
        self, event_id: str, event_type: str, created_at: datetime, data: _Reader
    ) -> Notification:
        self._require_ours(data, with_appid=True)
        out_trade_no = data.text("out_trade_no", pattern=OUT_TRADE_NO)
        trade_state = data.text("trade_state", pattern=STATE)
        status = TRADE_STATES.get(trade_state)
        if status is None:
            data.fail("trade_state", "is unknown")
        succeeded = trade_state == "SUCCESS"
        if (event_type == "TRANSACTION.SUCCESS") != succeeded:
            data.fail("trade_state", "does not match the event type")
        amount = data.child("amount")
        total = amount.integer("total", minimum=1)
        if amount.text("currency") != CURRENCY:
            amount.fail("currency", "is not CNY")
        if succeeded:
            transaction_id: str | None = data.text("transaction_id", pattern=PROVIDER_ID)
            occurred_at = data.instant("success_time")
        else:
            transaction_id = data.optional_text("transaction_id", pattern=PROVIDER_ID)
            occurred_at = created_at
        failed = status is ProviderStatus.FAILED
        return Notification(
            provider=self.name,
            event_id=event_id,
            kind=NotificationKind.PAYMENT,
            status=status,
            payment_id=out_trade_no,
            provider_payment_id=transaction_id,
            amount=Money(total, CURRENCY),
            occurred_at=occurred_at,
            failure_code=trade_state if failed else None,
            failure_message=data.optional_text("trade_state_desc") if failed else None,
            event_type=event_type,
        )

    def _refund_notification(
        self, event_id: str, event_type: str, created_at: datetime, data: _Reader
    ) -> Notification:
        self._require_ours(data, with_appid=False)
        refund_status = data.text("refund_status", pattern=STATE)
        if refund_status != REFUND_EVENTS[event_type]:
            data.fail("refund_status", "does not match the event type")
        status = REFUND_STATUSES[refund_status]
        amount = data.child("amount")
        total = amount.integer("total", minimum=1)
        refunded = amount.integer("refund", minimum=1, maximum=total)
        succeeded = refund_status == "SUCCESS"
        return Notification(
            provider=self.name,
            event_id=event_id,
            kind=NotificationKind.REFUND,
            status=status,
            payment_id=data.text("out_trade_no", pattern=OUT_TRADE_NO),
            provider_payment_id=data.text("transaction_id", pattern=PROVIDER_ID),
            amount=Money(refunded, CURRENCY),
            refund_id=data.text("out_refund_no", pattern=OUT_REFUND_NO),
            provider_refund_id=data.text("refund_id", pattern=PROVIDER_ID),
            occurred_at=data.instant("success_time") if succeeded else created_at,
            failure_code=None if succeeded else refund_status,
            event_type=event_type,
        )

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> _Reader:
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
            return _Reader({}, "answer", _malformed_response)
        return _Reader(
            _json_object(answer.body, "answer", _malformed_response), "answer", _malformed_response
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
