"""Alipay through its open-platform gateway (``alipay.trade.*``), RSA2-signed both ways.

Every request is a form POST of the common parameters plus a JSON ``biz_content``, signed
with the merchant app's private key (SHA256withRSA over the sorted ``k=v`` pairs). Every
answer is ``{"<method>_response": {...}, "sign": "..."}``, where the signature covers the
response node exactly as its characters appear in the body, so the node is cut out of the
raw text and verified before it is parsed. Notifications are form posts signed over every
parameter but ``sign`` and ``sign_type``, empty values included (requests leave empty values
out), and are verified with Alipay's public key before any field is read.

Alipay amounts are yuan strings with at most two decimals ("12.34"); here they are fen in
``Money("CNY")`` and are parsed strictly; Alipay's clock is China Standard Time.

The RSA2 scheme and the keys are in ``alipay_signing``, amounts, times and trade statuses in
``alipay_fields``, the reading of notifications in ``alipay_notifications`` and of the trade
bill (``settlement``) in ``alipay_bill``; this module is the configuration, the signed
gateway calls and the provider.
"""

from __future__ import annotations

import hmac
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.payments import (
    ALIPAY,
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
from chalicelib.adapters.payments.alipay_bill import MAX_BILL_BYTES, parse_trade_bill
from chalicelib.adapters.payments.alipay_fields import (
    CURRENCY,
    TIME_FORMAT,
    TRADE_STATUSES,
    parse_yuan,
    to_yuan,
)
from chalicelib.adapters.payments.alipay_notifications import read_notification
from chalicelib.adapters.payments.alipay_signing import (
    load_private_key,
    load_public_key,
    response_members,
    rsa2_verify,
    sign_params,
)
from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME

if TYPE_CHECKING:
    from chalicelib.settings import Settings

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
SUCCESS = "10000"
MAX_RESPONSE_BYTES = 1024 * 1024
SUBJECT_MAX_CHARS = 256

_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})


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
        return read_notification(
            headers, body, app_id=self.config.app_id, alipay_key=self._alipay_key
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
