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
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import html
import io
import ipaddress
import json
import re
import secrets
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from infra.local.identity import load_or_create_key

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000156"  # the merchant's Alipay partner id
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PLATFORM_KEY_FILE = "alipay-platform-key.pem"
APP_KEY_FILE = "alipay-app-key.pem"
SERVICE_FEE_PER_MILLE = 6  # Alipay's standard 0.6% rate
TIMESTAMP_TOLERANCE = timedelta(minutes=15)
BILL_URL_SECONDS = 30
NOTIFY_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0)  # Alipay's own spread over 25 hours, shortened
MAX_BODY_BYTES = 1024 * 1024
MAX_FEN = 100_000_000_00

_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?")
_BILL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

BILL_HEADER = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]
SUMMARY_HEADER = [
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "卡消费金额（元）",
    "服务费（元）",
    "分润（元）",
    "实收净额（元）",
]

PAYMENT_METHODS = ("alipay.trade.precreate", "alipay.trade.page.pay")
SUPPORTED_METHODS = (
    *PAYMENT_METHODS,
    "alipay.trade.query",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
)
FAULTS = ("tamper_response", "drop_signature", "unavailable")


class GatewayError(Exception):
    """An answer in Alipay's error shape: code, msg, sub_code, sub_msg."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.node = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _missing(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40001", "Missing Required Arguments", sub_code, sub_msg)


def _invalid(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40002", "Invalid Arguments", sub_code, sub_msg)


def _business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", "Business Failed", sub_code, sub_msg)


class TradeConflict(Exception):
    """A test asked to pay a trade that cannot be paid (already paid or closed)."""


@dataclass
class _Refund:
    out_request_no: str
    amount_fen: int
    reason: str
    at: datetime
    fee_back_fen: int


@dataclass
class _Trade:
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
    refunds: dict[str, _Refund] = field(default_factory=dict)
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
            "total_amount": _yuan(self.total_fen),
            "subject": self.subject,
            "notify_url": self.notify_url,
            "refunded_amount": _yuan(self.refunded_fen),
            "refunds": [
                {"out_request_no": r.out_request_no, "refund_amount": _yuan(r.amount_fen)}
                for r in self.refunds.values()
            ],
        }


class AlipayEmulator:
    def __init__(self, state_dir: Path, *, app_id: str = APP_ID) -> None:
        self.state_dir = Path(state_dir)
        self.app_id = app_id
        self._platform_key = load_or_create_key(self.state_dir / PLATFORM_KEY_FILE)
        self._app_key = load_or_create_key(self.state_dir / APP_KEY_FILE)
        self._merchant_public_key = self._app_key.public_key()
        self._lock = threading.RLock()
        self._trades: dict[str, _Trade] = {}
        self._bill_tokens: dict[str, tuple[date, float]] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._delivered = threading.Condition(self._lock)
        self._faults: list[str] = []
        self._stopping = threading.Event()
        self._senders: list[threading.Thread] = []
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
        server = ThreadingHTTPServer((host, port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._url = f"http://{host}:{server.server_address[1]}"
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="alipay-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sender in list(self._senders):
            sender.join(timeout=5)
        self._server = None
        self._thread = None

    def app_env(self) -> dict[str, str]:
        """The app's Alipay settings for this gateway (PEM text)."""
        return {
            "ALIPAY_APP_ID": self.app_id,
            "ALIPAY_GATEWAY_URL": self.gateway_url,
            "ALIPAY_APP_PRIVATE_KEY": _private_pem(self._app_key),
            "ALIPAY_PUBLIC_KEY": _public_pem(self._platform_key.public_key()),
        }

    # -- what tests and the pages do -----------------------------------------------------

    def trade(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            trade = self._trades[out_trade_no]
            self._close_if_expired(trade)
            return trade.snapshot()

    def scan(self, token: str) -> _Trade:
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
                trade.total_fen = _parse_yuan(total_amount)
            now = self._now()
            trade.status = "TRADE_SUCCESS"
            trade.scanned = True
            trade.paid_at = now
            trade.buyer_id = "2088" + "".join(secrets.choice("0123456789") for _ in range(12))
            trade.buyer_logon_id = "sho***@example.com"
            trade.fee_fen = _fee(trade.total_fen)
            self._notify(trade, self._trade_notification(trade, now))
            return trade.snapshot()

    def resend_notification(self, out_trade_no: str) -> str:
        """Post the trade's last notification again, byte for byte; its notify_id."""
        with self._lock:
            trade = self._trades[out_trade_no]
            if trade.last_notification is None:
                raise LookupError(f"trade {out_trade_no} has sent no notification")
            params = dict(trade.last_notification)
            self._send_in_background(trade.notify_url, out_trade_no, params)
            return params["notify_id"]

    def notifications(self) -> list[dict[str, Any]]:
        """Every delivery attempt: out_trade_no, notify_id, attempt, status, body."""
        with self._lock:
            return [dict(delivery) for delivery in self._deliveries]

    def wait_for_deliveries(self, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The delivery attempts once at least ``count`` were made (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len(self._deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._delivered.wait(remaining)
            return [dict(delivery) for delivery in self._deliveries]

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
        signature = self._sign(node_text)
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
            raise _missing("isv.missing-app-id", "缺少AppID参数")
        if not method:
            raise _missing("isv.missing-method", "缺少方法名参数")
        if not params.get("sign"):
            raise _missing("isv.missing-signature", "缺少签名参数")
        if params["app_id"] != self.app_id:
            raise _invalid("isv.invalid-app-id", "无效的AppID参数")
        if method not in SUPPORTED_METHODS:
            raise _invalid("isv.invalid-method", "不存在的方法名")
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "无效的签名类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise _invalid("isv.invalid-charset", "字符集错误")
        if params.get("version") != "1.0":
            raise _invalid("isv.invalid-version", "无效的版本号")
        try:
            sent_at = datetime.strptime(params.get("timestamp", ""), TIME_FORMAT)
        except ValueError:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        if abs(sent_at.replace(tzinfo=CHINA_TIME) - self._now()) > TIMESTAMP_TOLERANCE:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数")
        content = _signing_content(params, exclude=("sign",))
        if not self._verify_merchant(content, params["sign"]):
            raise _invalid(
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
                + content,
            )
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            raise _invalid("isv.invalid-biz-content", "biz_content 不是 JSON 对象")
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
        out_trade_no = _text(biz, "out_trade_no")
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 只能包含字母、数字、下划线")
        total_fen = _biz_amount(biz, "total_amount")
        subject = _text(biz, "subject")
        if not subject or len(subject) > 256:
            raise _business("ACQ.INVALID_PARAMETER", "subject 必填且不超过256个字符")
        time_expire = _biz_time(biz, "time_expire")
        trade = self._trades.get(out_trade_no)
        if trade is not None:
            self._close_if_expired(trade)
            if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.status == "TRADE_CLOSED":
                raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            # A different time_expire on a repeat is not a change of terms: the trade
            # keeps the expiry it was created with (a later hold does not reopen it).
            if (trade.total_fen, trade.subject) != (total_fen, subject):
                raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        else:
            now = self._now()
            if time_expire is not None and time_expire <= now:
                raise _business("ACQ.INVALID_PARAMETER", "time_expire 不能早于当前时间")
            trade = _Trade(
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
            raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        paid = trade.paid_at is not None
        node: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "trade_status": trade.status,
            "total_amount": _yuan(trade.total_fen),
            "buyer_pay_amount": _yuan(trade.total_fen if paid else 0),
            "point_amount": "0.00",
            "invoice_amount": _yuan(trade.total_fen if paid else 0),
            "receipt_amount": _yuan(trade.total_fen if paid else 0),
        }
        if trade.paid_at is not None:
            node["send_pay_date"] = trade.paid_at.strftime(TIME_FORMAT)
            node["buyer_user_id"] = trade.buyer_id
        return node

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find_trade(biz)
        amount_fen = _biz_amount(biz, "refund_amount")
        out_request_no = _text(biz, "out_request_no") or trade.trade_no
        now = self._now()
        repeat = out_request_no in trade.refunds
        if not repeat:
            if trade.status != "TRADE_SUCCESS":
                raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.refunded_fen + amount_fen > trade.total_fen:
                raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = _Refund(
                out_request_no=out_request_no,
                amount_fen=amount_fen,
                reason=_text(biz, "refund_reason"),
                at=now,
                fee_back_fen=_fee(amount_fen),
            )
            trade.refunds[out_request_no] = refund
            if trade.refunded_fen == trade.total_fen:
                trade.status = "TRADE_CLOSED"
            self._notify(trade, self._refund_notification(trade, refund, now))
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "fund_change": "N" if repeat else "Y",
            "refund_fee": _yuan(trade.refunded_fen),
            "gmt_refund_pay": trade.refunds[out_request_no].at.strftime(TIME_FORMAT),
            "buyer_user_id": trade.buyer_id,
        }

    def _refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find_trade(biz)
        out_request_no = _text(biz, "out_request_no") or trade.trade_no
        refund = trade.refunds.get(out_request_no)
        if refund is None:
            return {}  # Alipay: success, no refund_status = no such refund (yet)
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": out_request_no,
            "total_amount": _yuan(trade.total_fen),
            "refund_amount": _yuan(refund.amount_fen),
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": refund.at.strftime(TIME_FORMAT),
        }

    def _bill_url(self, biz: dict[str, Any]) -> dict[str, Any]:
        if _text(biz, "bill_type") != "trade":
            raise _business("isv.invalid-bill-type", "账单类型不支持")
        bill_date = _text(biz, "bill_date")
        try:
            if not _BILL_DATE.fullmatch(bill_date):
                raise ValueError(bill_date)
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise _business("isv.invalid-bill-date", "账单日期格式不正确") from None
        if day > self._now().date():
            raise _business("isp.bill_not_exist", "账单不存在")
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

    def _find_trade(self, biz: dict[str, Any]) -> _Trade:
        trade_no = _text(biz, "trade_no")
        out_trade_no = _text(biz, "out_trade_no")
        if not trade_no and not out_trade_no:
            raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 与 trade_no 不能同时为空")
        if trade_no:  # Alipay prefers trade_no when both are given
            trade = next((t for t in self._trades.values() if t.trade_no == trade_no), None)
        else:
            trade = self._trades.get(out_trade_no)
        if trade is None or (out_trade_no and trade.out_trade_no != out_trade_no):
            raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        self._close_if_expired(trade)
        return trade

    def _trade_by_token(self, token: str) -> _Trade:
        for trade in self._trades.values():
            if secrets.compare_digest(trade.token, token):
                self._close_if_expired(trade)
                return trade
        raise KeyError(token)

    def _close_if_expired(self, trade: _Trade) -> None:
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
            return f"{SELLER_ID}_{day:%Y%m%d}.csv.zip", self._bill_zip(day)

    def _bill_zip(self, day: date) -> bytes:
        rows: list[tuple[datetime, list[str]]] = []
        for trade in self._trades.values():
            if trade.paid_at is not None and trade.paid_at.date() == day:
                rows.append((trade.paid_at, _bill_row(trade, None)))
            for refund in trade.refunds.values():
                if refund.at.date() == day:
                    rows.append((refund.at, _bill_row(trade, refund)))
        rows.sort(key=lambda item: item[0])
        stem = f"{SELLER_ID}_{day:%Y%m%d}"
        detail = _bill_detail(day, [row for _, row in rows], self._now())
        summary = _bill_summary(day, [row for _, row in rows], self._now())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in (
                (f"{stem}_业务明细.csv", detail),
                (f"{stem}_业务明细(汇总).csv", summary),
            ):
                entry = _GbkNamedEntry(name, date_time=self._now().timetuple()[:6])
                entry.compress_type = zipfile.ZIP_DEFLATED
                # Characters GBK lacks (emoji in a subject) become "?".
                archive.writestr(entry, text.encode("gbk", errors="replace"))
        return buffer.getvalue()

    # -- notifications -------------------------------------------------------------------

    def _trade_notification(self, trade: _Trade, now: datetime) -> dict[str, str]:
        assert trade.paid_at is not None
        return {
            "notify_time": now.strftime(TIME_FORMAT),
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "seller_id": SELLER_ID,
            "buyer_id": trade.buyer_id,
            "trade_status": trade.status or "",
            "total_amount": _yuan(trade.total_fen),
            "receipt_amount": _yuan(trade.total_fen),
            "buyer_pay_amount": _yuan(trade.total_fen),
            "subject": trade.subject,
            "gmt_create": trade.created_at.strftime(TIME_FORMAT),
            "gmt_payment": trade.paid_at.strftime(TIME_FORMAT),
            # As in Alipay's documented sample of a payment: nothing refunded yet, and the
            # trade's close time. Neither makes it a refund.
            "refund_fee": "0.00",
            "gmt_close": trade.paid_at.strftime(TIME_FORMAT),
            # Empty when the merchant gave no body; signed all the same.
            "body": "",
        }

    def _refund_notification(self, trade: _Trade, refund: _Refund, now: datetime) -> dict[str, str]:
        params = self._trade_notification(trade, now)
        params.update(
            {
                "notify_id": uuid.uuid4().hex,
                "refund_fee": _yuan(trade.refunded_fen),  # all refunded so far, as Alipay
                "out_biz_no": refund.out_request_no,
                "gmt_refund": refund.at.strftime(TIME_FORMAT) + f".{refund.at:%f}"[:4],
            }
        )
        if trade.status == "TRADE_CLOSED":
            params["gmt_close"] = refund.at.strftime(TIME_FORMAT)
        return params

    def _notify(self, trade: _Trade, params: dict[str, str]) -> None:
        # Notifications are signed over every parameter, empty ones too (requests are not).
        content = "&".join(
            f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type")
        )
        signed = {**params, "sign": self._sign(content)}
        trade.last_notification = signed
        self._send_in_background(trade.notify_url, trade.out_trade_no, signed)

    def _send_in_background(
        self, notify_url: str, out_trade_no: str, params: dict[str, str]
    ) -> None:
        sender = threading.Thread(
            target=self._deliver,
            args=(notify_url, out_trade_no, params),
            name=f"alipay-notify-{out_trade_no}",
            daemon=True,
        )
        self._senders = [thread for thread in self._senders if thread.is_alive()] + [sender]
        sender.start()

    def _deliver(self, notify_url: str, out_trade_no: str, params: dict[str, str]) -> None:
        body = urllib.parse.urlencode(params).encode("utf-8")
        base = {"out_trade_no": out_trade_no, "notify_id": params["notify_id"]}
        if not _is_loopback_url(notify_url):
            self._record({**base, "attempt": 0, "status": None, "body": "not a local notify_url"})
            return
        for attempt, delay in enumerate(NOTIFY_DELAYS, start=1):
            if self._stopping.wait(delay):
                return
            request = urllib.request.Request(
                notify_url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
            status: int | None
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status, text = response.status, response.read(4096).decode("utf-8", "replace")
            except urllib.error.HTTPError as error:
                status, text = error.code, error.read(4096).decode("utf-8", "replace")
            except (urllib.error.URLError, OSError) as error:
                status, text = None, f"{type(error).__name__}: {error}"
            self._record({**base, "attempt": attempt, "status": status, "body": text})
            if text == "success":
                return

    def _record(self, delivery: dict[str, Any]) -> None:
        with self._delivered:
            self._deliveries.append({**delivery, "at": self._now().isoformat()})
            self._delivered.notify_all()

    def return_params(self, trade: _Trade) -> dict[str, str]:
        """What page pay appends to return_url when it sends the shopper back (signed)."""
        params = {
            "charset": "utf-8",
            "out_trade_no": trade.out_trade_no,
            "method": "alipay.trade.page.pay.return",
            "total_amount": _yuan(trade.total_fen),
            "trade_no": trade.trade_no,
            "auth_app_id": self.app_id,
            "version": "1.0",
            "app_id": self.app_id,
            "sign_type": "RSA2",
            "seller_id": SELLER_ID,
            "timestamp": self._now().strftime(TIME_FORMAT),
        }
        content = _signing_content(params, exclude=("sign", "sign_type"))
        return {**params, "sign": self._sign(content)}

    # -- keys and time -------------------------------------------------------------------

    def _sign(self, content: str) -> str:
        signature = self._platform_key.sign(
            content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
        return base64.b64encode(signature).decode("ascii")

    def _verify_merchant(self, content: str, signature: str) -> bool:
        try:
            self._merchant_public_key.verify(
                base64.b64decode(signature, validate=True),
                content.encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @staticmethod
    def _now() -> datetime:
        return datetime.now(CHINA_TIME)


# --- helpers ---------------------------------------------------------------------------


class _GbkNamedEntry(zipfile.ZipInfo):
    """A zip entry whose name is stored as GBK bytes without the UTF-8 flag, as in
    Alipay's bill archives (readers that assume cp437 show it garbled)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _signing_content(params: dict[str, str], *, exclude: tuple[str, ...]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k not in exclude and v != "")
    return "&".join(f"{k}={v}" for k, v in pairs)


def _text(biz: dict[str, Any], name: str) -> str:
    value = biz.get(name, "")
    return value if isinstance(value, str) else str(value)


def _parse_yuan(text: str) -> int:
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a yuan amount: {text!r}")
    fen = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if not 0 < fen <= MAX_FEN:
        raise ValueError(f"amount out of range: {text!r}")
    return fen


def _biz_time(biz: dict[str, Any], name: str) -> datetime | None:
    """An optional ``yyyy-MM-dd HH:mm:ss`` China time from biz_content."""
    if name not in biz:
        return None
    text = _text(biz, name)
    try:
        if not _TIME.fullmatch(text):
            raise ValueError(text)
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
    except ValueError:
        raise _business(
            "ACQ.INVALID_PARAMETER", f"{name} 格式不正确，应为 yyyy-MM-dd HH:mm:ss"
        ) from None


def _biz_amount(biz: dict[str, Any], name: str) -> int:
    try:
        return _parse_yuan(_text(biz, name))
    except ValueError:
        raise _business("ACQ.INVALID_PARAMETER", f"{name} 金额格式不正确") from None


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    major, minor = divmod(abs(fen), 100)
    return f"{sign}{major}.{minor:02d}"


def _fee(fen: int) -> int:
    return (fen * SERVICE_FEE_PER_MILLE + 500) // 1000  # half up, in fen


def _bill_row(trade: _Trade, refund: _Refund | None) -> list[str]:
    assert trade.paid_at is not None
    if refund is None:
        kind, amount, fee, request_no, done = (
            "交易",
            trade.total_fen,
            -trade.fee_fen,
            "",
            trade.paid_at,
        )
    else:
        kind, amount, fee, request_no, done = (
            "退款",
            -refund.amount_fen,
            refund.fee_back_fen,
            refund.out_request_no,
            refund.at,
        )
    cells = {name: "0.00" if name.endswith("（元）") else "" for name in BILL_HEADER}
    cells.update(
        {
            "支付宝交易号": trade.trade_no + "\t",
            "商户订单号": trade.out_trade_no + "\t",
            "业务类型": kind,
            "商品名称": trade.subject,
            "创建时间": trade.created_at.strftime(TIME_FORMAT),
            "完成时间": done.strftime(TIME_FORMAT),
            "对方账户": trade.buyer_logon_id,
            "订单金额（元）": _yuan(amount),
            "商家实收（元）": _yuan(amount),
            "退款批次号/请求号": request_no + "\t" if request_no else "",
            "服务费（元）": _yuan(fee),
        }
    )
    return [cells[name] for name in BILL_HEADER]


def _bill_period(day: date) -> str:
    end = day + timedelta(days=1)
    return f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{end:%Y年%m月%d日} 00:00:00]"


def _csv_lines(rows: list[list[str]]) -> list[str]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().splitlines()


def _bill_detail(day: date, rows: list[list[str]], now: datetime) -> str:
    payments = [row for row in rows if row[2] == "交易"]
    refunds = [row for row in rows if row[2] == "退款"]
    received = BILL_HEADER.index("商家实收（元）")
    paid_total = sum(_signed_fen(row[received]) for row in payments)
    refunded_total = sum(_signed_fen(row[received]) for row in refunds)
    lines = [
        "#支付宝业务明细查询",
        f"#账号：[{SELLER_ID}0156]",
        _bill_period(day),
        "#-----------------------------------------业务明细列表----------------------------------------",
        *_csv_lines([BILL_HEADER, *rows]),
        "#-----------------------------------------业务明细列表结束------------------------------------",
        f"#交易合计：{len(payments)}笔，商家实收共{_yuan(paid_total)}元，商家优惠共0.00元",
        f"#退款合计：{len(refunds)}笔，商家实收退款共{_yuan(refunded_total)}元，商家优惠退款共0.00元",
        f"#导出时间：[{now:%Y年%m月%d日 %H:%M:%S}]",
    ]
    return "\r\n".join(lines) + "\r\n"


def _bill_summary(day: date, rows: list[list[str]], now: datetime) -> str:
    amount = BILL_HEADER.index("订单金额（元）")
    fee = BILL_HEADER.index("服务费（元）")
    total = sum(_signed_fen(row[amount]) for row in rows)
    fees = sum(_signed_fen(row[fee]) for row in rows)
    payments = sum(1 for row in rows if row[2] == "交易")
    totals = ["合计", "", str(payments), str(len(rows) - payments), _yuan(total), _yuan(total)]
    totals += ["0.00", "0.00", "0.00", _yuan(fees), "0.00", _yuan(total + fees)]
    lines = [
        "#支付宝业务汇总查询",
        f"#账号：[{SELLER_ID}0156]",
        _bill_period(day),
        "#-----------------------------------------业务汇总列表----------------------------------------",
        *_csv_lines([SUMMARY_HEADER, totals]),
        "#-----------------------------------------业务汇总列表结束------------------------------------",
        f"#导出时间：[{now:%Y年%m月%d日 %H:%M:%S}]",
    ]
    return "\r\n".join(lines) + "\r\n"


def _signed_fen(text: str) -> int:
    """Fen from a bill cell this emulator wrote ("-12.30", "0.00")."""
    major, _, minor = text.lstrip("-").partition(".")
    fen = int(major) * 100 + int(minor.ljust(2, "0"))
    return -fen if text.startswith("-") else fen


def _is_loopback_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# --- HTTP ------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;color:#222}}
.amount{{font-size:2rem;color:#1677ff}}button{{font-size:1.1rem;padding:.6rem 1.6rem;
background:#1677ff;color:#fff;border:0;border-radius:6px;cursor:pointer}}</style></head>
<body><h1>支付宝 · {title}</h1>{content}
<p><small>Local Alipay emulator — no money moves.</small></p></body></html>
"""


def _page(title: str, content: str) -> bytes:
    return _PAGE.format(title=html.escape(title), content=content).encode("utf-8")


def _cashier(trade: _Trade) -> bytes:
    details = (
        f"<p>{html.escape(trade.subject)}</p>"
        f'<p class="amount">¥{_yuan(trade.total_fen)}</p>'
        f"<p>商户订单号 {html.escape(trade.out_trade_no)}</p>"
    )
    if trade.status not in (None, "WAIT_BUYER_PAY"):
        return _page("订单状态", details + f"<p>{html.escape(trade.status or '')}</p>")
    form = (
        f'<form method="post" action="/qr/{html.escape(trade.token)}/pay">'
        '<button type="submit" id="pay">确认付款 Pay</button></form>'
    )
    return _page("收银台", details + form)


def _handler_for(emulator: AlipayEmulator) -> type[BaseHTTPRequestHandler]:
    class AlipayHandler(BaseHTTPRequestHandler):
        server_version = "AlipayEmulator/1.0"

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, verb: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path
            try:
                body = self._body()
            except ValueError as error:
                self._send(400, "text/plain; charset=utf-8", str(error).encode())
                return
            segments = [s for s in path.split("/") if s]
            if path == "/gateway.do":
                self._gateway(parts.query, body)
            elif verb == "GET" and len(segments) == 2 and segments[0] == "qr":
                self._scan(segments[1])
            elif verb == "POST" and len(segments) == 3 and segments[::2] == ["qr", "pay"]:
                self._pay_page(segments[1])
            elif verb == "GET" and path == "/downloadBillFile.resource":
                self._bill(parts.query)
            elif segments[:1] == ["_emulator"]:
                self._control(verb, segments[1:], body)
            else:
                self._send_json(404, {"error": "not_found", "message": path})

        def _gateway(self, query: str, body: bytes) -> None:
            try:
                params = self._form(query, body)
            except ValueError as error:
                self._send(400, "text/plain; charset=utf-8", str(error).encode())
                return
            if emulator.take_outage():
                self._send(503, "text/plain; charset=utf-8", b"Service Unavailable")
                return
            node_name, node = emulator.gateway(params)
            if params.get("method") == "alipay.trade.page.pay":
                if node.get("code") != "10000":
                    message = f"{node.get('sub_code')}: {node.get('sub_msg')}"
                    self._send_html(400, _page("错误", f"<p>{html.escape(message)}</p>"))
                    return
                self._send_html(200, _cashier(emulator.scan(node["token"])))
                return
            self._send(200, "text/html;charset=utf-8", emulator.signed_json(node_name, node))

        def _scan(self, token: str) -> None:
            try:
                trade = emulator.scan(token)
            except KeyError:
                self._send_html(404, _page("二维码无效", "<p>二维码已失效</p>"))
                return
            self._send_html(200, _cashier(trade))

        def _pay_page(self, token: str) -> None:
            try:
                trade = emulator.scan(token)
                emulator.pay(trade.out_trade_no)
            except KeyError:
                self._send_html(404, _page("二维码无效", "<p>二维码已失效</p>"))
                return
            except TradeConflict:
                self._send_html(409, _cashier(trade))
                return
            if trade.return_url and _is_loopback_url(trade.return_url):
                separator = "&" if "?" in trade.return_url else "?"
                target = (
                    trade.return_url
                    + separator
                    + urllib.parse.urlencode(emulator.return_params(trade))
                )
                self.send_response(303)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send_html(200, _page("支付成功", f"<p>已支付 ¥{_yuan(trade.total_fen)}</p>"))

        def _bill(self, query: str) -> None:
            token = urllib.parse.parse_qs(query).get("token", [""])[0]
            try:
                name, archive = emulator.bill_archive(token)
            except KeyError:
                self._send(404, "text/plain; charset=utf-8", b"bill link expired")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header(
                "Content-Disposition",
                f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}",
            )
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive)

        def _control(self, verb: str, segments: list[str], body: bytes) -> None:
            if verb == "GET" and segments == ["notifications"]:
                self._send_json(200, {"notifications": emulator.notifications()})
                return
            if verb == "POST" and segments == ["faults"]:
                try:
                    fault = json.loads(body or b"{}").get("fault")
                    emulator.inject_fault(fault)
                except (ValueError, AttributeError) as error:
                    self._send_json(400, {"error": "bad_request", "message": str(error)})
                    return
                self._send_json(202, {"fault": fault})
                return
            if len(segments) < 2 or segments[0] != "trades":
                self._send_json(404, {"error": "not_found"})
                return
            out_trade_no, action = segments[1], segments[2:]
            try:
                if verb == "GET" and not action:
                    self._send_json(200, emulator.trade(out_trade_no))
                elif verb == "POST" and action == ["pay"]:
                    options = json.loads(body) if body.strip() else {}
                    if not isinstance(options, dict):
                        raise ValueError("expected a JSON object")
                    amount = options.get("total_amount")
                    if amount is not None and not isinstance(amount, str):
                        raise ValueError("total_amount is a yuan string")
                    self._send_json(200, emulator.pay(out_trade_no, amount))
                elif verb == "POST" and action == ["notify"]:
                    notify_id = emulator.resend_notification(out_trade_no)
                    self._send_json(202, {"notify_id": notify_id})
                else:
                    self._send_json(404, {"error": "not_found"})
            except KeyError:
                self._send_json(404, {"error": "trade_not_found", "message": out_trade_no})
            except LookupError as error:
                self._send_json(404, {"error": "no_notification", "message": str(error)})
            except TradeConflict as error:
                self._send_json(409, {"error": "trade_not_payable", "message": str(error)})
            except ValueError as error:
                self._send_json(400, {"error": "bad_request", "message": str(error)})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("request body too large")
            return self.rfile.read(length) if length > 0 else b""

        @staticmethod
        def _form(query: str, body: bytes) -> dict[str, str]:
            params: dict[str, str] = {}
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            pairs += urllib.parse.parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, errors="strict"
            )
            for key, value in pairs:
                if key in params:
                    raise ValueError(f"parameter {key} given twice")
                params[key] = value
            return params

        def _send_json(self, status: int, document: Any) -> None:
            self._send(status, "application/json", json.dumps(document).encode())

        def _send_html(self, status: int, page: bytes) -> None:
            self._send(status, "text/html; charset=utf-8", page)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return AlipayHandler


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
