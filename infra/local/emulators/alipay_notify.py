"""The Alipay emulator's notifications: what a ``trade_status_sync`` notification says about
a payment or a refund, and posting it to a loopback notify_url from a background thread,
retried until the answer is exactly ``success``. Every attempt is kept for a test to read.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from infra.local.emulators.alipay_requests import TIME_FORMAT
from infra.local.emulators.cny import yuan

if TYPE_CHECKING:
    from infra.local.emulators.alipay import Refund, Trade

NOTIFY_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0)  # Alipay's own spread over 25 hours, shortened


def trade_notification(
    trade: Trade, now: datetime, *, app_id: str, seller_id: str
) -> dict[str, str]:
    """The parameters of a ``trade_status_sync`` notification about a paid trade."""
    assert trade.paid_at is not None
    return {
        "notify_time": now.strftime(TIME_FORMAT),
        "notify_type": "trade_status_sync",
        "notify_id": uuid.uuid4().hex,
        "app_id": app_id,
        "auth_app_id": app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "seller_id": seller_id,
        "buyer_id": trade.buyer_id,
        "trade_status": trade.status or "",
        "total_amount": yuan(trade.total_fen),
        "receipt_amount": yuan(trade.total_fen),
        "buyer_pay_amount": yuan(trade.total_fen),
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


def refund_notification(
    trade: Trade, refund: Refund, now: datetime, *, app_id: str, seller_id: str
) -> dict[str, str]:
    """The same notification once ``refund`` is made: it names the refund request."""
    params = trade_notification(trade, now, app_id=app_id, seller_id=seller_id)
    params.update(
        {
            "notify_id": uuid.uuid4().hex,
            "refund_fee": yuan(trade.refunded_fen),  # all refunded so far, as Alipay
            "out_biz_no": refund.out_request_no,
            "gmt_refund": refund.at.strftime(TIME_FORMAT) + f".{refund.at:%f}"[:4],
        }
    )
    if trade.status == "TRADE_CLOSED":
        params["gmt_close"] = refund.at.strftime(TIME_FORMAT)
    return params


class Notifier:
    """Posts notifications and keeps every attempt; ``lock`` is the emulator's own, and
    ``clock`` its clock (attempts are stamped with it)."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._deliveries: list[dict[str, Any]] = []
        self._delivered = threading.Condition(lock)
        self._stopping = threading.Event()
        self._senders: list[threading.Thread] = []

    def resume(self) -> None:
        self._stopping.clear()

    def halt(self) -> None:
        """Stop retrying: a sender waiting for its next attempt gives up."""
        self._stopping.set()

    def join(self) -> None:
        for sender in list(self._senders):
            sender.join(timeout=5)

    def notifications(self) -> list[dict[str, Any]]:
        with self._delivered:
            return [dict(delivery) for delivery in self._deliveries]

    def wait_for_deliveries(self, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._delivered:
            while len(self._deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._delivered.wait(remaining)
            return [dict(delivery) for delivery in self._deliveries]

    def send_in_background(
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
        if not is_loopback_url(notify_url):
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
            self._deliveries.append({**delivery, "at": self._clock().isoformat()})
            self._delivered.notify_all()


def is_loopback_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
