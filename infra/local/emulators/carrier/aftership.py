"""AfterShip at the local carrier: registering a parcel, and its tracking webhooks.

- ``POST /tracking/2024-04/trackings`` with the ``as-api-key`` header and
  ``{"tracking_number", "slug", ...}``: 201 ``{"meta": {"code": 201, ...}, "data": {...}}``.
  Refusals in AfterShip's shape, ``{"meta": {"code", "message", "type"}, "data": {}}``: 401
  a wrong key, 4007 no tracking number, 4005 an unknown slug, 4003 a tracking that already
  exists; 503 during an outage.
- From then on every step of the parcel is posted as a ``tracking_update`` webhook, signed
  in ``aftership-hmac-sha256``, to the app's ``/webhooks/carriers/aftership``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from infra.local.emulators.carrier.journeys import AFTERSHIP, Parcel, occurred

API_VERSION = "2024-04"
AFTERSHIP_SLUGS = {
    "shunfeng": "sf-express",
    "yuantong": "yto",
    "zhongtong": "zto-express",
    "shentong": "sto",
    "yunda": "yunda",
    "jd": "jd",
    "ems": "china-ems",
    "jtexpress": "jtexpress",
}
OUR_CODES = {slug: code for code, slug in AFTERSHIP_SLUGS.items()}
AFTERSHIP_TAGS = {
    "info_received": ("InfoReceived", "InfoReceived_001"),
    "in_transit": ("InTransit", "InTransit_001"),
    "out_for_delivery": ("OutForDelivery", "OutForDelivery_001"),
    "attempt_fail": ("AttemptFail", "AttemptFail_001"),
    "available_for_pickup": ("AvailableForPickup", "AvailableForPickup_001"),
    "delivered": ("Delivered", "Delivered_001"),
    "exception": ("Exception", "Exception_001"),
    "returned_to_sender": ("Exception", "Exception_011"),
}


class AfterShipDesk:
    """AfterShip's side of the carrier emulator (mixed into ``CarrierEmulator``)."""

    _secrets: dict[str, str]
    _lock: threading.RLock
    _parcels: dict[str, Parcel]

    def _new_parcel(
        self, number: str, company: str, shipment_id: str | None, *, push_format: str | None = None
    ) -> Parcel:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    def _outage(self, provider: str) -> bool:
        raise NotImplementedError

    def _start_tracking(self, parcel: Parcel, push_format: str) -> None:
        raise NotImplementedError

    def aftership_create_tracking(
        self, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """``POST /trackings``: (HTTP status, answer)."""
        if self._outage(AFTERSHIP):
            return _meta(503, 503, "Service Unavailable", "ServiceUnavailable")
        key = next((v for k, v in headers.items() if k.lower() == "as-api-key"), "")
        if not hmac.compare_digest(key, self._secrets["aftership_api_key"]):
            return _meta(401, 401, "Invalid API key.", "Unauthorized")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _meta(400, 400, "Invalid JSON data.", "BadRequest")
        if isinstance(body, dict) and isinstance(body.get("tracking"), dict):
            body = body["tracking"]  # the older {"tracking": {...}} envelope
        if not isinstance(body, dict):
            return _meta(400, 400, "Invalid JSON data.", "BadRequest")
        number = str(body.get("tracking_number") or "").strip()
        if not number:
            return _meta(400, 4007, "`tracking_number` is required.", "BadRequest")
        slug = str(body.get("slug") or "").strip()
        if slug not in OUR_CODES:
            return _meta(400, 4005, "The value of `slug` is invalid.", "BadRequest")
        with self._lock:
            parcel = self._parcels.get(number)
            if parcel is not None and parcel.push_format == AFTERSHIP and parcel.callback_url:
                return _meta(400, 4003, "Tracking already exists.", "BadRequest")
            if parcel is None:
                parcel = self._new_parcel(
                    number, OUR_CODES[slug], shipment_id=None, push_format=AFTERSHIP
                )
            self._start_tracking(parcel, AFTERSHIP)
            self._save()
            tracking = {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, number).hex,
                "tracking_number": number,
                "slug": slug,
                "tag": AFTERSHIP_TAGS[parcel.events[-1]["status"]][0]
                if parcel.events
                else "Pending",
                "order_id": body.get("order_id"),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        return 201, {"meta": {"code": 201, "message": "", "type": "Created"}, "data": tracking}

    def aftership_push(self, parcel: Parcel) -> tuple[bytes, dict[str, str]]:
        oldest_first = sorted(parcel.events, key=occurred)
        current = parcel.events[-1]
        first_of_its_tag = sum(e["status"] == current["status"] for e in parcel.events) == 1
        tag, subtag = AFTERSHIP_TAGS[current["status"]]
        document = {
            "event": "tracking_update",
            "event_id": str(uuid.uuid4()),
            "is_tracking_first_tag": first_of_its_tag,
            "ts": int(time.time()),
            "msg": {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, parcel.tracking_number).hex,
                "tracking_number": parcel.tracking_number,
                "slug": AFTERSHIP_SLUGS.get(parcel.carrier, parcel.carrier),
                "tag": tag,
                "subtag": subtag,
                "origin_country_iso3": "CHN",
                "destination_country_iso3": "CHN",
                "expected_delivery": parcel.estimated_delivery,
                "checkpoints": [
                    {
                        "checkpoint_time": event["occurred_at"],
                        "city": event["city"],
                        "state": event["region"],
                        "country_iso3": "CHN",
                        "country_name": "China",
                        "message": event["description"],
                        "tag": AFTERSHIP_TAGS[event["status"]][0],
                        "subtag": AFTERSHIP_TAGS[event["status"]][1],
                    }
                    for event in oldest_first
                ],
            },
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        secret = self._secrets["aftership_webhook_secret"].encode()
        signature = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
        return body, {"Content-Type": "application/json", "aftership-hmac-sha256": signature}


def _meta(status: int, code: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    return status, {"meta": {"code": code, "message": message, "type": kind}, "data": {}}
