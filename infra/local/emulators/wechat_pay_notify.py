"""The WeChat Pay emulator's notifications: the envelope as WeChat Pay sends it (its
``resource`` AES-256-GCM-encrypted with the APIv3 key, the body signed with the platform
key), posted from a background thread and retried until the receiver answers 200 or 204.
Every delivery and its attempts are kept, so that a test can read them back.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass
class Outgoing:
    """A notification exactly as sent, so that it can be sent again byte for byte."""

    url: str
    headers: dict[str, str]
    body: bytes
    event_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None = None


@dataclass
class Delivery:
    number: int
    outgoing: Outgoing
    replay: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False
    finished: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "event_id": self.outgoing.event_id,
            "event_type": self.outgoing.event_type,
            "out_trade_no": self.outgoing.out_trade_no,
            "out_refund_no": self.outgoing.out_refund_no,
            "url": self.outgoing.url,
            "replay": self.replay,
            "attempts": list(self.attempts),
            "delivered": self.delivered,
            "finished": self.finished,
        }


def seal(
    apiv3_key: str,
    *,
    url: str,
    event_type: str,
    summary: str,
    original_type: str,
    resource: dict[str, Any],
    out_trade_no: str,
    out_refund_no: str | None = None,
    created_at: datetime,
    sign: Callable[[bytes], dict[str, str]],
) -> Outgoing:
    """The notification's envelope, its resource sealed with the APIv3 key, and signed."""
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
    nonce = secrets.token_urlsafe(9)  # 12 characters, like WeChat Pay's
    associated_data = original_type
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    event_id = str(uuid.uuid4())
    envelope = {
        "id": event_id,
        "create_time": created_at.isoformat(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(sealed).decode(),
            "associated_data": associated_data,
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **sign(body)}
    return Outgoing(url, headers, body, event_id, event_type, out_trade_no, out_refund_no)


class Notifier:
    """Posts notifications and keeps every delivery; ``lock`` is the emulator's own."""

    def __init__(self, lock: threading.RLock, retry_delays: Sequence[float]) -> None:
        self._lock = lock
        self.retry_delays = tuple(retry_delays)
        self._deliveries: list[Delivery] = []
        # Notifications go straight to the receiver, never through a proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [delivery.as_dict() for delivery in self._deliveries]

    def deliver(self, outgoing: Outgoing, *, replay: bool) -> int:
        with self._lock:
            delivery = Delivery(len(self._deliveries) + 1, outgoing, replay)
            self._deliveries.append(delivery)
        thread = threading.Thread(
            target=self._post_until_accepted,
            args=(delivery,),
            name=f"wechat-pay-notify-{delivery.number}",
            daemon=True,
        )
        thread.start()
        return delivery.number

    def _post_until_accepted(self, delivery: Delivery) -> None:
        outgoing = delivery.outgoing
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            if attempt:
                time.sleep(delay)
            status: int | None = None
            error: str | None = None
            request = urllib.request.Request(
                outgoing.url, data=outgoing.body, headers=outgoing.headers, method="POST"
            )
            try:
                with self._opener.open(request, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as failure:
                status = failure.code
                failure.close()
            except OSError as failure:
                error = f"{type(failure).__name__}: {failure}"
            with self._lock:
                delivery.attempts.append({"status": status, "error": error})
                if status in (200, 204):
                    delivery.delivered = True
                    delivery.finished = True
                    return
        with self._lock:
            delivery.finished = True
