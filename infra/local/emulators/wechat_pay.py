"""A local WeChat Pay APIv3 gateway, speaking the real wire format over HTTP.

The app's WeChat Pay adapter talks to it by base URL exactly as it talks to
api.mch.weixin.qq.com. It runs in-process on a daemon thread (like the local identity
provider) or alone: ``python -m infra.local.emulators.wechat_pay --port 8090 --state-dir .local``.

What it does, as WeChat Pay does:
- checks every ``/v3`` request's ``Authorization`` (merchant signature, serial, mchid,
  a fresh timestamp) and answers 401 ``SIGN_ERROR`` otherwise; signs every API answer with
  the platform key (``Wechatpay-*`` headers); the bill file itself is unsigned and carries
  its SHA1 in the signed bill answer instead;
- Native orders (``code_url = weixin://wxpay/bizpayurl?pr=<token>``), whose optional
  ``time_expire`` closes them unpaid (``CLOSED``) once the clock (``_now``) passes it,
  checked whenever the order is read or paid; query by ``out_trade_no``, refunds (never
  more than paid less refunded; an ``out_refund_no`` is idempotent; answered PROCESSING,
  then REFUND.SUCCESS is posted shortly afterwards), query by ``out_refund_no``, the trade
  bill and its download;
- notifications: AES-256-GCM encrypted with the APIv3 key, signed with the platform key,
  posted from a background thread and retried a few times until the receiver answers 200
  or 204.

What a person or a test does in place of the shopper's phone (no authentication: local only):
- ``GET  /_emulator/qr/{token}``: a page with a Pay button for the order behind a code_url;
- ``POST /_emulator/transactions/{out_trade_no}/pay``: pay, optionally ``{"total": n}``
  to report a different amount than ordered;
- ``POST /_emulator/transactions/{out_trade_no}/notify``: resend that order's last
  notification byte for byte (a replay);
- ``GET  /_emulator/notifications``: every delivery and its attempts.

Keys (platform and merchant RSA pairs, serials, merchant ids, APIv3 key) are generated once
per state directory into files only the owner can read. Orders live in memory.

The signing and encryption here are written independently of the app's adapter, on purpose:
the emulator plays the other side of the wire, so a shared mistake must not pass unnoticed.

This module holds the merchant's orders and refunds and what the API does with them; the
HTTP routing is in ``wechat_pay_http``, the checks on a request's fields in
``wechat_pay_requests``, the notifications and their delivery in ``wechat_pay_notify``, the
trade bill file in ``wechat_pay_bill``, and the keys and answer signing in ``wechat_pay_keys``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import secrets
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.local.emulators.cny import CHINA_TIME
from infra.local.emulators.wechat_pay_bill import trade_bill
from infra.local.emulators.wechat_pay_http import handler_for
from infra.local.emulators.wechat_pay_keys import (
    CERTIFICATE,
    MERCHANT_KEY_FILE,
    PUBLIC_KEY,
    STATE_FILE,
    PlatformKeys,
    check_authorization,
    load_or_create_identity,
    pem_private,
)
from infra.local.emulators.wechat_pay_notify import Notifier, Outgoing, seal
from infra.local.emulators.wechat_pay_requests import (
    ApiError,
    parse_json,
    parse_time_expire,
    require_amount,
    require_text,
    require_url,
)
from infra.local.identity import load_or_create_key

BILL_LIFETIME_SECONDS = 300
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
BILL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "订单已关闭",
}
REFUND_SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


@dataclass
class Order:
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    notify_url: str
    total: int
    token: str
    created_at: datetime
    time_expire: str | None = None  # as the merchant sent it
    expires_at: datetime | None = None  # closed unpaid from then on
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    paid_total: int | None = None  # what the shopper paid (a test may make it differ)
    payer_openid: str | None = None
    refunded: int = 0  # refunds processing or succeeded

    @property
    def trade_state_desc(self) -> str:
        return TRADE_STATE_DESC[self.trade_state]


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    order: Order
    refund: int
    reason: str
    notify_url: str
    create_time: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None


def _now() -> datetime:
    return datetime.now(CHINA_TIME).replace(microsecond=0)


def _close_if_expired(order: Order) -> None:
    """Close an unpaid order whose time_expire has passed, as WeChat Pay does at that time
    (here only when the order is next looked at: no timer runs)."""
    if (
        order.trade_state == "NOTPAY"
        and order.expires_at is not None
        and _now() >= order.expires_at
    ):
        order.trade_state = "CLOSED"


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


class WeChatPayEmulator:
    """WeChat Pay's merchant API for one merchant, with a shopper's Pay button."""

    def __init__(
        self,
        state_dir: Path,
        *,
        refund_delay: float = 0.3,
        retry_delays: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
    ) -> None:
        self.state_dir = Path(state_dir)
        identity = load_or_create_identity(self.state_dir / STATE_FILE)
        self.mchid = identity["mchid"]
        self.appid = identity["appid"]
        self.merchant_serial = identity["merchant_serial"]
        self.platform_serial = identity["platform_serial"]
        self.apiv3_key = identity["apiv3_key"]
        self.platform_keys = PlatformKeys(self.state_dir, self.platform_serial, self.mchid)
        self._merchant_key = load_or_create_key(self.state_dir / MERCHANT_KEY_FILE)
        self.refund_delay = refund_delay
        self.refund_outcome = "SUCCESS"  # SUCCESS, ABNORMAL or CLOSED for the next refunds
        self._lock = threading.RLock()
        self._orders: dict[str, Order] = {}
        self._tokens: dict[str, str] = {}
        self._refunds: dict[str, Refund] = {}
        self._bills: dict[str, tuple[bytes, float, str]] = {}
        self._last_notification: dict[str, Outgoing] = {}
        self._notifier = Notifier(self._lock, retry_delays)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle --

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the WeChat Pay emulator has no URL until start() is called")
        return self._url

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("the WeChat Pay emulator is already running")
        server = ThreadingHTTPServer((host, port), handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._url = f"http://{host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="wechat-pay-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def app_env(self) -> dict[str, str]:
        """The app's WeChat Pay settings for this emulator."""
        return {
            "WECHATPAY_MCHID": self.mchid,
            "WECHATPAY_APPID": self.appid,
            "WECHATPAY_BASE_URL": self.url,
            "WECHATPAY_MERCHANT_PRIVATE_KEY": pem_private(self._merchant_key),
            "WECHATPAY_MERCHANT_SERIAL": self.merchant_serial,
            "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_PLATFORM_PUBLIC_KEY": self.platform_keys.public_key_pem,
            "WECHATPAY_PLATFORM_SERIAL": self.platform_serial,
            "WECHATPAY_PLATFORM_CERTIFICATES": self.platform_keys.certificate_pem,
        }

    def sign_callbacks_with(self, kind: str) -> None:
        """Sign notifications with the public key or the platform certificate from now on
        (WeChat Pay switches a merchant over from one to the other)."""
        if kind not in (PUBLIC_KEY, CERTIFICATE):
            raise ApiError(400, "PARAM_ERROR", f"key: {PUBLIC_KEY} or {CERTIFICATE}")
        self.platform_keys.callback_key = kind

    # -- what a shopper or a test does --

    def qr_page_url(self, code_url: str) -> str:
        """The Pay page for a ``code_url`` (what scanning it would open)."""
        query = urllib.parse.urlsplit(code_url).query
        token = urllib.parse.parse_qs(query).get("pr", [""])[0]
        return f"{self.url}/_emulator/qr/{urllib.parse.quote(token, safe='')}"

    def pay(self, out_trade_no: str, *, total: int | None = None) -> dict[str, Any]:
        """The shopper pays; the TRANSACTION.SUCCESS notification goes out in the background."""
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            _close_if_expired(order)
            if order.trade_state == "CLOSED":
                raise ApiError(409, "ORDER_CLOSED", "the order is CLOSED, not NOTPAY")
            if order.trade_state != "NOTPAY":
                raise ApiError(409, "ORDERPAID", f"the order is {order.trade_state}, not NOTPAY")
            order.trade_state = "SUCCESS"
            order.transaction_id = "42000" + _now().strftime("%Y%m%d") + _digits(15)
            order.success_time = _now()
            order.paid_total = order.total if total is None else total
            order.payer_openid = "o" + secrets.token_urlsafe(20)[:27]
            transaction = self._transaction(order)
            outgoing = self._notification(
                url=order.notify_url,
                event_type="TRANSACTION.SUCCESS",
                summary="支付成功",
                original_type="transaction",
                resource=transaction,
                out_trade_no=order.out_trade_no,
            )
        self._notifier.deliver(outgoing, replay=False)
        return transaction

    def replay(self, out_trade_no: str) -> int:
        """Send the order's last notification again, byte for byte; returns its delivery
        number."""
        with self._lock:
            outgoing = self._last_notification.get(out_trade_no)
        if outgoing is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "no notification was sent for this order")
        return self._notifier.deliver(outgoing, replay=True)

    def deliveries(self) -> list[dict[str, Any]]:
        return self._notifier.deliveries()

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` deliveries once all of them have finished (or timed out)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.deliveries()
            if len(found) >= count and all(d["finished"] for d in found[:count]):
                return found[:count]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} deliveries, wanted {count} finished")
            time.sleep(0.02)

    def order(self, out_trade_no: str) -> dict[str, Any] | None:
        """The order as the query API would answer it."""
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None:
                return None
            _close_if_expired(order)
            return self._transaction(order)

    def time_expire(self, out_trade_no: str) -> str | None:
        """The ``time_expire`` the order was created with, as sent (None: none was)."""
        with self._lock:
            order = self._orders.get(out_trade_no)
            return None if order is None else order.time_expire

    # -- the API --

    def handle_api(
        self, method: str, target: str, body: bytes, authorization: str | None
    ) -> tuple[int, dict[str, Any] | None]:
        """One ``/v3`` request; returns the status and the JSON answer (None for none)."""
        self._check_authorization(method, target, body, authorization)
        parts = urllib.parse.urlsplit(target)
        path, query = parts.path, urllib.parse.parse_qs(parts.query)
        if method == "POST" and path == "/v3/pay/transactions/native":
            return 200, self._create_native(parse_json(body))
        match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path)
        if method == "GET" and match:
            return 200, self._query_order(urllib.parse.unquote(match.group(1)), query)
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return 200, self._create_refund(parse_json(body))
        match = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)
        if method == "GET" and match:
            return 200, self._query_refund(urllib.parse.unquote(match.group(1)))
        if method == "GET" and path == "/v3/bill/tradebill":
            return 200, self._trade_bill(query)
        raise ApiError(404, "NOT_FOUND", f"no such API: {method} {path}")

    def download_bill(self, target: str, authorization: str | None) -> tuple[bytes, str]:
        self._check_authorization("GET", target, b"", authorization)
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("token", [""])[0]
        with self._lock:
            found = self._bills.get(token)
        if found is None or found[1] < time.time():
            raise ApiError(400, "PARAM_ERROR", "the download link is unknown or expired")
        return found[0], found[2]

    def _check_authorization(
        self, method: str, target: str, body: bytes, authorization: str | None
    ) -> None:
        check_authorization(
            method,
            target,
            body,
            authorization,
            mchid=self.mchid,
            merchant_serial=self.merchant_serial,
            merchant_key=self._merchant_key.public_key(),
        )

    def _create_native(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("appid") != self.appid or request.get("mchid") != self.mchid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")
        description = require_text(request, "description", 127)
        out_trade_no = require_text(request, "out_trade_no", 32)
        if not OUT_TRADE_NO.fullmatch(out_trade_no):
            raise ApiError(400, "PARAM_ERROR", "out_trade_no: 6-32 of 0-9 A-Z a-z _ - | *")
        notify_url = require_url(request, "notify_url")
        amount = request.get("amount")
        total = require_amount(amount, "total")
        time_expire = request.get("time_expire")
        expires_at = None if time_expire is None else parse_time_expire(time_expire)
        with self._lock:
            existing = self._orders.get(out_trade_no)
            if existing is not None:
                _close_if_expired(existing)
                if existing.trade_state in ("SUCCESS", "REFUND"):
                    raise ApiError(400, "ORDERPAID", "该订单已支付")
                if existing.trade_state == "CLOSED":
                    raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
                # A different time_expire on a repeat is not a change of terms: the order
                # keeps the expiry it was created with (a later hold does not reopen it).
                same = (existing.total, existing.description, existing.notify_url) == (
                    total,
                    description,
                    notify_url,
                )
                if not same:
                    raise ApiError(400, "INVALID_REQUEST", "商户订单号重复 (different parameters)")
                return {"code_url": self._code_url(existing.token)}
            if expires_at is not None and expires_at <= _now():
                raise ApiError(400, "PARAM_ERROR", "time_expire: already past")
            token = secrets.token_urlsafe(12)
            self._orders[out_trade_no] = Order(
                out_trade_no=out_trade_no,
                appid=self.appid,
                mchid=self.mchid,
                description=description,
                notify_url=notify_url,
                total=total,
                token=token,
                created_at=_now(),
                time_expire=time_expire,
                expires_at=expires_at,
            )
            self._tokens[token] = out_trade_no
        return {"code_url": self._code_url(token)}

    @staticmethod
    def _code_url(token: str) -> str:
        return f"weixin://wxpay/bizpayurl?pr={token}"

    def _query_order(self, out_trade_no: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if query.get("mchid") != [self.mchid]:
            raise ApiError(400, "PARAM_ERROR", "mchid is missing or not ours")
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            _close_if_expired(order)
            return self._transaction(order)

    def _transaction(self, order: Order) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "appid": order.appid,
            "mchid": order.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "NATIVE",
            "trade_state": order.trade_state,
            "trade_state_desc": order.trade_state_desc,
            "attach": "",
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if order.success_time is not None:
            total = order.paid_total if order.paid_total is not None else order.total
            answer.update(
                transaction_id=order.transaction_id,
                bank_type="OTHERS",
                success_time=order.success_time.isoformat(),
                payer={"openid": order.payer_openid},
                amount={
                    "total": total,
                    "payer_total": total,
                    "currency": "CNY",
                    "payer_currency": "CNY",
                },
            )
        return answer

    def _create_refund(self, request: dict[str, Any]) -> dict[str, Any]:
        out_refund_no = require_text(request, "out_refund_no", 64)
        if not OUT_REFUND_NO.fullmatch(out_refund_no):
            raise ApiError(400, "PARAM_ERROR", "out_refund_no: 1-64 of 0-9 A-Z a-z _ - | * @")
        reason = request.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 80:
            raise ApiError(400, "PARAM_ERROR", "reason: a string of at most 80 characters")
        notify_url = require_url(request, "notify_url") if "notify_url" in request else None
        amount = request.get("amount")
        refund = require_amount(amount, "refund")
        total = require_amount(amount, "total")
        with self._lock:
            order = self._find_order(request)
            existing = self._refunds.get(out_refund_no)
            if existing is not None:
                if existing.order is not order or existing.refund != refund:
                    raise ApiError(
                        400, "INVALID_REQUEST", "out_refund_no is used for another refund"
                    )
                return self._refund_answer(existing)
            if order.trade_state not in ("SUCCESS", "REFUND") or order.paid_total is None:
                raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
            if total != order.paid_total:
                raise ApiError(400, "INVALID_REQUEST", "订单金额与原订单金额不一致")
            if refund > order.paid_total - order.refunded:
                raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            record = Refund(
                out_refund_no=out_refund_no,
                refund_id="50" + _digits(28),
                order=order,
                refund=refund,
                reason=reason,
                notify_url=notify_url or order.notify_url,
                create_time=_now(),
            )
            self._refunds[out_refund_no] = record
            order.refunded += refund
            order.trade_state = "REFUND"
            outcome = self.refund_outcome
        timer = threading.Timer(self.refund_delay, self._finish_refund, args=(record, outcome))
        timer.daemon = True
        timer.start()
        return self._refund_answer(record)

    def _find_order(self, request: dict[str, Any]) -> Order:
        out_trade_no = request.get("out_trade_no")
        transaction_id = request.get("transaction_id")
        order = None
        if isinstance(out_trade_no, str):
            order = self._orders.get(out_trade_no)
        elif isinstance(transaction_id, str):
            order = next(
                (o for o in self._orders.values() if o.transaction_id == transaction_id), None
            )
        else:
            raise ApiError(400, "PARAM_ERROR", "out_trade_no or transaction_id is required")
        if order is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        return order

    def _finish_refund(self, record: Refund, outcome: str) -> None:
        with self._lock:
            if record.status != "PROCESSING":
                return
            record.status = outcome
            if outcome == "SUCCESS":
                record.success_time = _now()
            else:
                record.order.refunded -= record.refund
            order = record.order
            resource: dict[str, Any] = {
                "mchid": self.mchid,
                "out_trade_no": order.out_trade_no,
                "transaction_id": order.transaction_id,
                "out_refund_no": record.out_refund_no,
                "refund_id": record.refund_id,
                "refund_status": outcome,
                "user_received_account": "支付用户零钱",
                "amount": {
                    "total": order.paid_total,
                    "refund": record.refund,
                    "payer_total": order.paid_total,
                    "payer_refund": record.refund,
                },
            }
            if record.success_time is not None:
                resource["success_time"] = record.success_time.isoformat()
            outgoing = self._notification(
                url=record.notify_url,
                event_type=f"REFUND.{outcome}",
                summary=REFUND_SUMMARY[outcome],
                original_type="refund",
                resource=resource,
                out_trade_no=order.out_trade_no,
                out_refund_no=record.out_refund_no,
            )
        self._notifier.deliver(outgoing, replay=False)

    def _query_refund(self, out_refund_no: str) -> dict[str, Any]:
        with self._lock:
            record = self._refunds.get(out_refund_no)
            if record is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return self._refund_answer(record)

    def _refund_answer(self, record: Refund) -> dict[str, Any]:
        order = record.order
        answer: dict[str, Any] = {
            "refund_id": record.refund_id,
            "out_refund_no": record.out_refund_no,
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": record.create_time.isoformat(),
            "status": record.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": order.paid_total,
                "refund": record.refund,
                "payer_total": order.paid_total,
                "payer_refund": record.refund,
                "settlement_total": order.paid_total,
                "settlement_refund": record.refund,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
        }
        if record.success_time is not None:
            answer["success_time"] = record.success_time.isoformat()
        return answer

    def _trade_bill(self, query: dict[str, list[str]]) -> dict[str, Any]:
        bill_date = query.get("bill_date", [""])[0]
        bill_type = query.get("bill_type", ["ALL"])[0]
        tar_type = query.get("tar_type", [""])[0]
        if not BILL_DATE.fullmatch(bill_date):
            raise ApiError(400, "PARAM_ERROR", "bill_date must be YYYY-MM-DD")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise ApiError(400, "PARAM_ERROR", "bill_date is not a date") from None
        if bill_type not in ("ALL", "SUCCESS", "REFUND") or tar_type not in ("", "GZIP"):
            raise ApiError(400, "PARAM_ERROR", "bill_type or tar_type is not supported")
        content = self.trade_bill(day, bill_type)
        if content is None:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        content_type = "text/plain; charset=utf-8"
        if tar_type == "GZIP":
            content, content_type = gzip.compress(content), "application/gzip"
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._bills[token] = (content, time.time() + BILL_LIFETIME_SECONDS, content_type)
        return {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(content).hexdigest(),
            "download_url": f"{self.url}/v3/billdownload/file?token={token}",
        }

    def trade_bill(self, day: date, bill_type: str = "ALL") -> bytes | None:
        """The day's trade bill (China time) as WeChat Pay writes it; None when empty."""
        with self._lock:
            return trade_bill(self._orders.values(), self._refunds.values(), day, bill_type)

    # -- signing and notifications --

    def signed_headers(self, body: bytes, serial: str | None = None) -> dict[str, str]:
        """WeChat Pay's signature headers for ``body``: with the key ``serial`` names (an
        answer: the one the request asked for), else the one callbacks are signed with."""
        return self.platform_keys.signed_headers(body, serial)

    def _notification(
        self,
        *,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
        out_trade_no: str,
        out_refund_no: str | None = None,
    ) -> Outgoing:
        outgoing = seal(
            self.apiv3_key,
            url=url,
            event_type=event_type,
            summary=summary,
            original_type=original_type,
            resource=resource,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            created_at=_now(),
            sign=self.signed_headers,
        )
        self._last_notification[out_trade_no] = outgoing
        return outgoing

    # -- the Pay page --

    def qr_order(self, token: str) -> Order | None:
        """A copy of the order behind a QR code's token, closed first if it has expired;
        None for an unknown token."""
        with self._lock:
            out_trade_no = self._tokens.get(token)
            order = self._orders.get(out_trade_no) if out_trade_no else None
            if order is None:
                return None
            _close_if_expired(order)
            return replace(order)

    def pay_by_token(self, token: str) -> None:
        with self._lock:
            out_trade_no = self._tokens.get(token)
        if out_trade_no is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "unknown QR code")
        self.pay(out_trade_no)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local WeChat Pay APIv3 emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument(
        "--print-env", action="store_true", help="print the app's WECHATPAY_* settings as JSON"
    )
    args = parser.parse_args(argv)
    emulator = WeChatPayEmulator(args.state_dir)
    emulator.start(args.host, args.port)
    print(f"WeChat Pay emulator on {emulator.url} (state in {args.state_dir})", flush=True)
    if args.print_env:
        print(json.dumps(emulator.app_env(), indent=2), flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
