"""A local Alipay open-platform gateway: the wire format of ``/gateway.do``, cashier pages,
signed notifications and trade bills, in-process on a background thread.

    python -m infra.local.emulators.alipay --port 8030 --state-dir .local

It keeps two RSA key pairs under the state dir (created once, mode 0600): "Alipay's", which
signs responses and notifications, and the merchant app's, whose public half the gateway
uses to check requests as if the merchant had uploaded it. ``app_env()`` hands the app the
other halves. Signing here is written from Alipay's documentation on its own, not shared
with the app's client, so a mistake on one side shows up as a failed check on the other.

What it serves:
- ``/gateway.do`` (POST form or GET query): ``alipay.trade.precreate`` (QR code),
  ``alipay.trade.page.pay`` (the cashier page), ``alipay.trade.query``,
  ``alipay.trade.refund`` (never more than paid minus refunded; the same out_request_no
  again changes nothing and answers ``fund_change`` "N"), ``alipay.trade.fastpay.refund.query``
  and ``alipay.data.dataservice.bill.downloadurl.query``; every answer signed.
- ``GET /qr/{token}`` (what scanning the code opens) with a Pay button posting to
  ``/qr/{token}/pay``; page pay returns to ``return_url`` with signed parameters.
- ``GET /downloadBillFile.resource?token=...``: the day's trade bill, a zip of GBK CSV.
- ``POST /_emulator/trades/{out_trade_no}/pay`` (optional JSON ``{"total_amount": "9.99"}``
  to pay a different amount), ``POST /_emulator/trades/{out_trade_no}/notify`` (re-send the
  last notification verbatim), ``GET /_emulator/trades/{out_trade_no}``,
  ``GET /_emulator/notifications``, ``POST /_emulator/faults`` (``{"fault": "unavailable"}``
  and the others of ``FAULTS`` spoil the next gateway answer).

Like Alipay, a precreated trade does not exist for ``alipay.trade.query`` until its code is
scanned (or it is paid). A ``time_expire`` (China time) closes the trade unpaid
(``TRADE_CLOSED``) once the emulator's clock (``_now``) passes it, checked whenever the trade
is read or paid; a code never scanned stays unknown to the query. Paying, and every refund,
posts a signed ``trade_status_sync`` notification to the trade's notify_url from a
background thread, retried a few times until the answer is exactly ``success``; only
loopback notify URLs are called. Bills are served for any day up to today (Alipay's are
ready the next morning). State lives in memory.

This module holds the trades and what the gateway does with them; the HTTP routing and the
pages are in ``alipay_http``, the gateway's errors and ``biz_content`` checks in
``alipay_requests``, the notifications and their delivery in ``alipay_notify``, the trade
bill archive in ``alipay_bill``, and the keys and RSA2 signing in ``alipay_keys``.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from infra.local.emulators.alipay_bill import bill_zip, fee
from infra.local.emulators.alipay_http import handler_for
from infra.local.emulators.alipay_keys import (
    APP_KEY_FILE,
    PLATFORM_KEY_FILE,
    AlipayKeys,
    notification_content,
    signing_content,
)
from infra.local.emulators.alipay_notify import (
    Notifier,
    refund_notification,
    trade_notification,
)
from infra.local.emulators.alipay_requests import (
    TIME_FORMAT,
    GatewayError,
    TradeConflict,
    biz_amount,
    biz_text,
    biz_time,
    business,
    invalid,
    missing,
    parse_yuan,
)
from infra.local.emulators.cny import CHINA_TIME, yuan

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000156"  # the merchant's Alipay partner id
TIMESTAMP_TOLERANCE = timedelta(minutes=15)
BILL_URL_SECONDS = 30

_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")
_BILL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

PAYMENT_METHODS = ("alipay.trade.precreate", "alipay.trade.page.pay")
SUPPORTED_METHODS = (
    *PAYMENT_METHODS,
    "alipay.trade.query",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
)
FAULTS = ("tamper_response", "drop_signature", "unavailable")


@dataclass
class Refund:
    out_request_no: str
    amount_fen: int
    reason: str
    at: datetime
    fee_back_fen: int


@dataclass
class Trade:
    out_trade_no: str
    trade_no: str
    token: str
    method: str
    subject: str
    total_fen: int
    notify_url: str
    return_url: str
    created_at: datetime
    status: str | None = None  # None: precreated, not yet scanned (Alipay has no trade)
    time_expire: datetime | None = None  # closed unpaid from then on
    scanned: bool = False  # Alipay has a trade (query finds it) once the code was scanned
    paid_at: datetime | None = None
    buyer_id: str = ""
    buyer_logon_id: str = ""
    fee_fen: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)
    last_notification: dict[str, str] | None = None

    @property
    def refunded_fen(self) -> int:
        return sum(refund.amount_fen for refund in self.refunds.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "trade_status": self.status,
            "time_expire": self.time_expire.strftime(TIME_FORMAT) if self.time_expire else None,
            "total_amount": yuan(self.total_fen),
            "subject": self.subject,
            "notify_url": self.notify_url,
            "refunded_amount": yuan(self.refunded_fen),
            "refunds": [
                {"out_request_no": r.out_request_no, "refund_amount": yuan(r.amount_fen)}
                for r in self.refunds.values()
            ],
        }


class AlipayEmulator:
    def __init__(self, state_dir: Path, *, app_id: str = APP_ID) -> None:
        self.state_dir = Path(state_dir)
        self.app_id = app_id
        self._keys = AlipayKeys(self.state_dir)
        self._lock = threading.RLock()
        self._trades: dict[str, Trade] = {}
        self._bill_tokens: dict[str, tuple[date, float]] = {}
        self._notifier = Notifier(self._lock, lambda: self._now())
        self._faults: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the Alipay emulator has no URL until start() is called")
        return self._url

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/gateway.do"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("the Alipay emulator is already running")
        server = ThreadingHTTPServer((host, port), handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._url = f"http://{host}:{server.server_address[1]}"
        self._notifier.resume()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="alipay-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._notifier.halt()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._notifier.join()
        self._server = None
        self._thread = None

    def app_env(self) -> dict[str, str]:
        """The app's Alipay settings for this gateway (PEM text)."""
        return {
            "ALIPAY_APP_ID": self.app_id,
            "ALIPAY_GATEWAY_URL": self.gateway_url,
            "ALIPAY_APP_PRIVATE_KEY": self._keys.app_private_pem(),
            "ALIPAY_PUBLIC_KEY": self._keys.platform_public_pem(),
        }

    # -- what tests and the pages do -----------------------------------------------------

    def trade(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            trade = self._trades[out_trade_no]
            self._close_if_expired(trade)
            return trade.snapshot()

    def scan(self, token: str) -> Trade:
        """The shopper opened the QR code: Alipay now has a trade waiting for payment."""
        with self._lock:
            trade = self._trade_by_token(token)
            if trade.status is None:
                trade.status = "WAIT_BUYER_PAY"
                trade.scanned = True
            return trade

    def pay(self, out_trade_no: str, total_amount: str | None = None) -> dict[str, Any]:
        """The shopper pays (``total_amount`` overrides what is paid, for mismatch tests).
        Raises ``KeyError`` for an unknown trade, ``TradeConflict`` if it is not payable."""
        with self._lock:
            trade = self._trades[out_trade_no]
            self._close_if_expired(trade)
            if trade.status not in (None, "WAIT_BUYER_PAY"):
                raise TradeConflict(f"trade {out_trade_no} is {trade.status}")
            if total_amount is not None:
                trade.total_fen = parse_yuan(total_amount)
            now = self._now()
            trade.status = "TRADE_SUCCESS"
            trade.scanned = True
            trade.paid_at = now
            trade.buyer_id = "2088" + "".join(secrets.choice("0123456789") for _ in range(12))
            trade.buyer_logon_id = "sho***@example.com"
            trade.fee_fen = fee(trade.total_fen)
            self._notify(
                trade, trade_notification(trade, now, app_id=self.app_id, seller_id=SELLER_ID)
            )
            return trade.snapshot()

    def resend_notification(self, out_trade_no: str) -> str:
        """Post the trade's last notification again, byte for byte; its notify_id."""
        with self._lock:
            trade = self._trades[out_trade_no]
            if trade.last_notification is None:
                raise LookupError(f"trade {out_trade_no} has sent no notification")
            params = dict(trade.last_notification)
            self._notifier.send_in_background(trade.notify_url, out_trade_no, params)
            return params["notify_id"]

    def notifications(self) -> list[dict[str, Any]]:
        """Every delivery attempt: out_trade_no, notify_id, attempt, status, body."""
        return self._notifier.notifications()

    def wait_for_deliveries(self, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The delivery attempts once at least ``count`` were made (or ``timeout`` passed)."""
        return self._notifier.wait_for_deliveries(count, timeout=timeout)

    def inject_fault(self, fault: str) -> None:
        """Spoil the next gateway answer: ``tamper_response`` (changed after signing),
        ``drop_signature`` (no ``sign``) or ``unavailable`` (HTTP 503, nothing done)."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        with self._lock:
            self._faults.append(fault)

    def take_outage(self) -> bool:
        """Whether the next gateway request is to be refused as unavailable."""
        with self._lock:
            if self._faults[:1] == ["unavailable"]:
                self._faults.pop(0)
                return True
            return False

    # -- the gateway ---------------------------------------------------------------------

    def gateway(self, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """Check a request and run its method: (response node name, node)."""
        method = params.get("method", "")
        node_name = (
            method.replace(".", "_") + "_response"
            if method in SUPPORTED_METHODS
            else "error_response"
        )
        try:
            biz = self._check_request(params)
            with self._lock:
                node = self._run(method, params, biz)
            return node_name, {"code": "10000", "msg": "Success", **node}
        except GatewayError as error:
            return node_name, dict(error.node)

    def signed_json(self, node_name: str, node: dict[str, Any]) -> bytes:
        node_text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        signature = self._keys.sign(node_text)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault == "tamper_response":
            node_text = node_text[:-1] + ',"tampered":"yes"}'
        document = f'{{"{node_name}":{node_text}'
        if fault != "drop_signature":
            document += f',"sign":"{signature}"'
        return (document + "}").encode("utf-8")

    def _check_request(self, params: dict[str, str]) -> dict[str, Any]:
        method = params.get("method", "")
        if not params.get("app_id"):
            raise missing("isv.missing-app-id", "缺少AppID参数")
        if not method:
            raise missing("isv.missing-method", "缺少方法名参数")
        if not params.get("sign"):
            raise missing("isv.missing-signature", "缺少签名参数")
        if params["app_id"] != self.app_id:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        if method not in SUPPORTED_METHODS:
            raise invalid("isv.invalid-method", "不存在的方法名")
        if params.get("sign_type") != "RSA2":
            raise invalid("isv.invalid-signature-type", "无效的签名类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise invalid("isv.invalid-charset", "字符集错误")
        if params.get("version") != "1.0":
            raise invalid("isv.invalid-version", "无效的版本号")
        try:
            sent_at = datetime.strptime(params.get("timestamp", ""), TIME_FORMAT)
        except ValueError:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        if abs(sent_at.replace(tzinfo=CHINA_TIME) - self._now()) > TIMESTAMP_TOLERANCE:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数")
        content = signing_content(params, exclude=("sign",))
        if not self._keys.verify_merchant(content, params["sign"]):
            raise invalid(
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
                + content,
            )
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            raise invalid("isv.invalid-biz-content", "biz_content 不是 JSON 对象")
        return biz

    def _run(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        if method in PAYMENT_METHODS:
            return self._create_trade(method, params, biz)
        if method == "alipay.trade.query":
            return self._query(biz)
        if method == "alipay.trade.refund":
            return self._refund(biz)
        if method == "alipay.trade.fastpay.refund.query":
            return self._refund_query(biz)
        return self._bill_url(biz)

    def _create_trade(
        self, method: str, params: dict[str, str], biz: dict[str, Any]
    ) -> dict[str, Any]:
        out_trade_no = biz_text(biz, "out_trade_no")
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise business("ACQ.INVALID_PARAMETER", "out_trade_no 只能包含字母、数字、下划线")
        total_fen = biz_amount(biz, "total_amount")
        subject = biz_text(biz, "subject")
        if not subject or len(subject) > 256:
            raise business("ACQ.INVALID_PARAMETER", "subject 必填且不超过256个字符")
        time_expire = biz_time(biz, "time_expire")
        trade = self._trades.get(out_trade_no)
        if trade is not None:
            self._close_if_expired(trade)
            if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.status == "TRADE_CLOSED":
                raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            # A different time_expire on a repeat is not a change of terms: the trade
            # keeps the expiry it was created with (a later hold does not reopen it).
            if (trade.total_fen, trade.subject) != (total_fen, subject):
                raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        else:
            now = self._now()
            if time_expire is not None and time_expire <= now:
                raise business("ACQ.INVALID_PARAMETER", "time_expire 不能早于当前时间")
            trade = Trade(
                out_trade_no=out_trade_no,
                trade_no=now.strftime("%Y%m%d")
                + "22001"
                + "".join(secrets.choice("0123456789") for _ in range(15)),
                token="bax" + secrets.token_hex(10),
                method=method,
                subject=subject,
                total_fen=total_fen,
                notify_url=params.get("notify_url", ""),
                return_url=params.get("return_url", ""),
                created_at=now,
                time_expire=time_expire,
            )
            self._trades[out_trade_no] = trade
        if method == "alipay.trade.page.pay":
            trade.return_url = params.get("return_url", "") or trade.return_url
            return {"out_trade_no": out_trade_no, "token": trade.token}
        return {"out_trade_no": out_trade_no, "qr_code": f"{self.url}/qr/{trade.token}"}

    def _query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find_trade(biz)
        if not trade.scanned:  # a code never scanned, even one since expired
            raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        paid = trade.paid_at is not None
        node: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "trade_status": trade.status,
            "total_amount": yuan(trade.total_fen),
            "buyer_pay_amount": yuan(trade.total_fen if paid else 0),
            "point_amount": "0.00",
            "invoice_amount": yuan(trade.total_fen if paid else 0),
            "receipt_amount": yuan(trade.total_fen if paid else 0),
        }
        if trade.paid_at is not None:
            node["send_pay_date"] = trade.paid_at.strftime(TIME_FORMAT)
            node["buyer_user_id"] = trade.buyer_id
        return node

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find_trade(biz)
        amount_fen = biz_amount(biz, "refund_amount")
        out_request_no = biz_text(biz, "out_request_no") or trade.trade_no
        now = self._now()
        repeat = out_request_no in trade.refunds
        if not repeat:
            if trade.status != "TRADE_SUCCESS":
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.refunded_fen + amount_fen > trade.total_fen:
                raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = Refund(
                out_request_no=out_request_no,
                amount_fen=amount_fen,
                reason=biz_text(biz, "refund_reason"),
                at=now,
                fee_back_fen=fee(amount_fen),
            )
            trade.refunds[out_request_no] = refund
            if trade.refunded_fen == trade.total_fen:
                trade.status = "TRADE_CLOSED"
            self._notify(
                trade,
                refund_notification(trade, refund, now, app_id=self.app_id, seller_id=SELLER_ID),
            )
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "fund_change": "N" if repeat else "Y",
            "refund_fee": yuan(trade.refunded_fen),
            "gmt_refund_pay": trade.refunds[out_request_no].at.strftime(TIME_FORMAT),
            "buyer_user_id": trade.buyer_id,
        }

    def _refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find_trade(biz)
        out_request_no = biz_text(biz, "out_request_no") or trade.trade_no
        refund = trade.refunds.get(out_request_no)
        if refund is None:
            return {}  # Alipay: success, no refund_status = no such refund (yet)
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": out_request_no,
            "total_amount": yuan(trade.total_fen),
            "refund_amount": yuan(refund.amount_fen),
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": refund.at.strftime(TIME_FORMAT),
        }

    def _bill_url(self, biz: dict[str, Any]) -> dict[str, Any]:
        if biz_text(biz, "bill_type") != "trade":
            raise business("isv.invalid-bill-type", "账单类型不支持")
        bill_date = biz_text(biz, "bill_date")
        try:
            if not _BILL_DATE.fullmatch(bill_date):
                raise ValueError(bill_date)
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise business("isv.invalid-bill-date", "账单日期格式不正确") from None
        if day > self._now().date():
            raise business("isp.bill_not_exist", "账单不存在")
        token = secrets.token_hex(16)
        self._bill_tokens[token] = (day, time.monotonic() + BILL_URL_SECONDS)
        query = urllib.parse.urlencode(
            {
                "bizType": "trade",
                "userId": SELLER_ID,
                "fileType": "csv.zip",
                "bizDates": day.strftime("%Y%m%d"),
                "downloadFileName": f"{SELLER_ID}_{day:%Y%m%d}.csv.zip",
                "token": token,
            }
        )
        return {"bill_download_url": f"{self.url}/downloadBillFile.resource?{query}"}

    def _find_trade(self, biz: dict[str, Any]) -> Trade:
        trade_no = biz_text(biz, "trade_no")
        out_trade_no = biz_text(biz, "out_trade_no")
        if not trade_no and not out_trade_no:
            raise business("ACQ.INVALID_PARAMETER", "out_trade_no 与 trade_no 不能同时为空")
        if trade_no:  # Alipay prefers trade_no when both are given
            trade = next((t for t in self._trades.values() if t.trade_no == trade_no), None)
        else:
            trade = self._trades.get(out_trade_no)
        if trade is None or (out_trade_no and trade.out_trade_no != out_trade_no):
            raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        self._close_if_expired(trade)
        return trade

    def _trade_by_token(self, token: str) -> Trade:
        for trade in self._trades.values():
            if secrets.compare_digest(trade.token, token):
                self._close_if_expired(trade)
                return trade
        raise KeyError(token)

    def _close_if_expired(self, trade: Trade) -> None:
        """Close an unpaid trade whose time_expire has passed, as Alipay does at that time
        (here only when the trade is next looked at: no timer runs)."""
        if (
            trade.status in (None, "WAIT_BUYER_PAY")
            and trade.time_expire is not None
            and self._now() >= trade.time_expire
        ):
            trade.status = "TRADE_CLOSED"

    # -- bills ---------------------------------------------------------------------------

    def bill_archive(self, token: str) -> tuple[str, bytes]:
        """The zip for a download token: (file name, bytes). ``KeyError`` when the token
        is unknown or older than Alipay's 30 seconds."""
        with self._lock:
            day, expires = self._bill_tokens[token]
            if time.monotonic() > expires:
                del self._bill_tokens[token]
                raise KeyError(token)
            return f"{SELLER_ID}_{day:%Y%m%d}.csv.zip", bill_zip(
                self._trades.values(), day, seller_id=SELLER_ID, clock=self._now
            )

    # -- notifications -------------------------------------------------------------------

    def _notify(self, trade: Trade, params: dict[str, str]) -> None:
        signed = {**params, "sign": self._keys.sign(notification_content(params))}
        trade.last_notification = signed
        self._notifier.send_in_background(trade.notify_url, trade.out_trade_no, signed)

    def return_params(self, trade: Trade) -> dict[str, str]:
        """What page pay appends to return_url when it sends the shopper back (signed)."""
        params = {
            "charset": "utf-8",
            "out_trade_no": trade.out_trade_no,
            "method": "alipay.trade.page.pay.return",
            "total_amount": yuan(trade.total_fen),
            "trade_no": trade.trade_no,
            "auth_app_id": self.app_id,
            "version": "1.0",
            "app_id": self.app_id,
            "sign_type": "RSA2",
            "seller_id": SELLER_ID,
            "timestamp": self._now().strftime(TIME_FORMAT),
        }
        content = signing_content(params, exclude=("sign", "sign_type"))
        return {**params, "sign": self._keys.sign(content)}

    # -- time --------------------------------------------------------------------------

    @staticmethod
    def _now() -> datetime:
        return datetime.now(CHINA_TIME)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the local Alipay gateway emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    args = parser.parse_args(argv)
    emulator = AlipayEmulator(args.state_dir)
    emulator.start(args.host, args.port)
    stopped = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(f"Alipay emulator on {emulator.url}", flush=True)
    print(f"  ALIPAY_APP_ID={emulator.app_id}", flush=True)
    print(f"  ALIPAY_GATEWAY_URL={emulator.gateway_url}", flush=True)
    print(f"  keys: {args.state_dir / APP_KEY_FILE}, {args.state_dir / PLATFORM_KEY_FILE}")
    try:
        stopped.wait()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
