"""EasyPost at the local carrier: shipments, rates, buying a label, trackers, and events.

The documented v2 API under ``/v2`` (JSON bodies, ``Authorization: Bearer <key>`` or Basic
with the key as user name), so the official ``easypost`` SDK can be pointed at it:

- ``POST /v2/shipments`` ``{"shipment": {"to_address", "from_address", "parcel", ...}}`` ->
  the Shipment with its ``rates`` (one per carrier service); ``GET /v2/shipments/{id}``;
- ``POST /v2/shipments/{id}/buy`` ``{"rate": {"id"}}`` -> the Shipment with
  ``tracking_code``, ``postage_label.label_url``, ``selected_rate`` and its ``tracker``;
- ``POST /v2/trackers`` ``{"tracker": {"tracking_code", "carrier"}}`` and
  ``GET /v2/trackers/{id}``.

Refusals have EasyPost's shape, ``{"error": {"code", "message", "errors": [{"field",
"message"}]}}``: 401 a wrong key; 422 an address without ``street1``, ``city`` or
``country`` (``ADDRESS.COUNTRY.INVALID`` for no country), a parcel without a weight, a
second purchase (``SHIPMENT.POSTAGE.EXISTS``), an unknown rate; 404 an unknown id; 503
during an outage. Bought parcels are tracked at once, and every step is posted as a
``tracker.updated`` Event, signed with the webhook secret, to the app's
``/webhooks/carriers/easypost``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from infra.local.emulators.carrier.journeys import (
    EASYPOST,
    Parcel,
    occurred,
    utc,
    waybill_number,
)

# Our carrier codes as EasyPost names them, and the services each one quotes.
EASYPOST_CARRIERS = {
    "shunfeng": "SFExpress",
    "ems": "ChinaEMS",
    "jd": "JDLogistics",
    "dhl": "DHLExpress",
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
}
OUR_CODES = {name: code for code, name in EASYPOST_CARRIERS.items()}
SERVICES = {
    "DHLExpress": (("ExpressWorldwideNonDoc", Decimal("38.50")), ("ExpressEasy", Decimal("46.10"))),
    "UPS": (("Expedited", Decimal("41.20")), ("Saver", Decimal("52.80"))),
    "FedEx": (("INTERNATIONAL_ECONOMY", Decimal("39.90")),),
    "USPS": (("PriorityMailInternational", Decimal("33.75")),),
    "SFExpress": (("Standard", Decimal("12.00")),),
}
ADDRESS_FIELDS = ("street1", "city", "country")
EASYPOST_STATUSES = {
    "info_received": "pre_transit",
    "in_transit": "in_transit",
    "out_for_delivery": "out_for_delivery",
    "attempt_fail": "failure",
    "available_for_pickup": "available_for_pickup",
    "delivered": "delivered",
    "exception": "failure",
    "returned_to_sender": "return_to_sender",
}


class EasyPostDesk:
    """EasyPost's side of the carrier emulator (mixed into ``CarrierEmulator``)."""

    url: str
    step_seconds: float
    webhook_url: str | None
    _secrets: dict[str, str]
    _lock: threading.RLock
    _parcels: dict[str, Parcel]
    _easypost_shipments: dict[str, dict[str, Any]]

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

    def easypost(
        self, method: str, segments: list[str], headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """One call under ``/v2``: (HTTP status, answer)."""
        if self._outage(EASYPOST):
            return _error(503, "SERVICE.UNAVAILABLE", "EasyPost is temporarily unavailable.")
        if not self._easypost_authorised(headers):
            return _error(401, "APIKEY.INVALID", "The API key provided is invalid.")
        body: dict[str, Any] = {}
        if method == "POST":
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError:
                return _error(400, "PARAMETER.INVALID", "The request body is not JSON.")
            if not isinstance(parsed, dict):
                return _error(400, "PARAMETER.INVALID", "The request body is not an object.")
            body = parsed
        route = (method, *segments)
        if route == ("POST", "shipments"):
            return self._create_shipment(body.get("shipment"))
        if len(segments) == 2 and route[:2] == ("GET", "shipments"):
            return self._get_shipment(segments[1])
        if len(segments) == 3 and route[:2] == ("POST", "shipments") and segments[2] == "buy":
            return self._buy(segments[1], body.get("rate"))
        if route == ("POST", "trackers"):
            return self._create_tracker(body.get("tracker"))
        if len(segments) == 2 and route[:2] == ("GET", "trackers"):
            return self._get_tracker(segments[1])
        return _error(404, "NOT_FOUND", "The requested resource could not be found.")

    def _easypost_authorised(self, headers: Mapping[str, str]) -> bool:
        given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credential = given.partition(" ")
        key = self._secrets["easypost_api_key"]
        if scheme.lower() == "bearer":
            return hmac.compare_digest(credential.strip(), key)
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credential.strip()).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user, key)
        return False

    def _create_shipment(self, shipment: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(shipment, dict):
            return _error(422, "PARAMETER.REQUIRED", "Missing required parameter: shipment.")
        for role in ("to_address", "from_address"):
            problem = _address_problem(shipment.get(role), role)
            if problem is not None:
                return problem
        parcel = shipment.get("parcel")
        weight = parcel.get("weight") if isinstance(parcel, dict) else None
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            return _field_error("shipment.parcel.weight", "must be a positive number of ounces")
        shipment_id = f"shp_{uuid.uuid4().hex}"
        now = _now()
        rates = [
            {
                "id": f"rate_{uuid.uuid4().hex}",
                "object": "Rate",
                "mode": "test",
                "carrier": carrier,
                "service": service,
                "rate": str((price + Decimal(str(weight)) / 16).quantize(Decimal("0.01"))),
                "currency": "USD",
                "shipment_id": shipment_id,
                "carrier_account_id": f"ca_{hashlib.sha256(carrier.encode()).hexdigest()[:16]}",
                "created_at": now,
                "updated_at": now,
            }
            for carrier, services in SERVICES.items()
            for service, price in services
        ]
        document = {
            "id": shipment_id,
            "object": "Shipment",
            "mode": "test",
            "reference": shipment.get("reference"),
            "status": "unknown",
            "to_address": _address(shipment["to_address"]),
            "from_address": _address(shipment["from_address"]),
            "parcel": {"object": "Parcel", "id": f"prcl_{uuid.uuid4().hex}", **parcel},
            "customs_info": shipment.get("customs_info"),
            "rates": rates,
            "selected_rate": None,
            "tracking_code": None,
            "postage_label": None,
            "tracker": None,
            "messages": [],
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._easypost_shipments[shipment_id] = document
        return 201, document

    def _get_shipment(self, shipment_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            document = self._easypost_shipments.get(shipment_id)
        if document is None:
            return _error(404, "SHIPMENT.NOT_FOUND", "The requested shipment could not be found.")
        return 200, document

    def _buy(self, shipment_id: str, rate: Any) -> tuple[int, dict[str, Any]]:
        rate_id = rate.get("id") if isinstance(rate, dict) else None
        if not rate_id:
            return _field_error("rate.id", "is required")
        with self._lock:
            document = self._easypost_shipments.get(shipment_id)
            if document is None:
                return _error(
                    404, "SHIPMENT.NOT_FOUND", "The requested shipment could not be found."
                )
            if document["tracking_code"] is not None:
                return _error(
                    422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment."
                )
            chosen = next((r for r in document["rates"] if r["id"] == rate_id), None)
            if chosen is None:
                return _error(
                    422, "SHIPMENT.RATE.INVALID", "The rate is not one of this shipment's."
                )
            carrier = OUR_CODES.get(chosen["carrier"], chosen["carrier"].lower())
            number = waybill_number(carrier, shipment_id)
            parcel = self._new_parcel(
                number, carrier, shipment_id=document.get("reference"), push_format=EASYPOST
            )
            parcel.booked_by = EASYPOST
            parcel.label_reference = shipment_id
            parcel.label_url = f"{self.url}/labels/{shipment_id}.png"
            self._start_tracking(parcel, EASYPOST)
            now = _now()
            document.update(
                status="pre_transit",
                selected_rate=chosen,
                tracking_code=number,
                postage_label={
                    "object": "PostageLabel",
                    "id": f"pl_{uuid.uuid4().hex}",
                    "label_url": parcel.label_url,
                    "label_file_type": "image/png",
                    "created_at": now,
                },
                tracker=self._tracker(parcel),
                updated_at=now,
            )
            self._save()
            return 200, document

    def _create_tracker(self, tracker: Any) -> tuple[int, dict[str, Any]]:
        code = tracker.get("tracking_code") if isinstance(tracker, dict) else None
        if not isinstance(code, str) or not code.strip():
            return _field_error("tracker.tracking_code", "is required")
        carrier_name = str(tracker.get("carrier") or "")
        with self._lock:
            parcel = self._parcels.get(code)
            if parcel is None:
                carrier = OUR_CODES.get(carrier_name, carrier_name.lower() or "usps")
                parcel = self._new_parcel(code, carrier, shipment_id=None, push_format=EASYPOST)
            self._start_tracking(parcel, EASYPOST)
            self._save()
            return 201, self._tracker(parcel)

    def _get_tracker(self, tracker_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            parcel = next((p for p in self._parcels.values() if _tracker_id(p) == tracker_id), None)
            if parcel is None:
                return _error(404, "TRACKER.NOT_FOUND", "The requested tracker could not be found.")
            return 200, self._tracker(parcel)

    def _tracker(self, parcel: Parcel) -> dict[str, Any]:
        document = json.loads(self.easypost_push(parcel)[0])["result"]
        document["public_url"] = (
            f"{self.url}/chaxun?com={parcel.carrier}&nu={parcel.tracking_number}"
        )
        return dict(document)

    def easypost_push(self, parcel: Parcel) -> tuple[bytes, dict[str, str]]:
        oldest_first = sorted(parcel.events, key=occurred)
        current = parcel.events[-1]
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        carrier = EASYPOST_CARRIERS.get(parcel.carrier, parcel.carrier)
        document = {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "Event",
            "mode": "test",
            "description": "tracker.updated",
            "status": "pending",
            "created_at": now,
            "updated_at": now,
            "result": {
                "id": f"trk_{uuid.uuid5(uuid.NAMESPACE_URL, parcel.tracking_number).hex}",
                "object": "Tracker",
                "mode": "test",
                "tracking_code": parcel.tracking_number,
                "status": EASYPOST_STATUSES[current["status"]],
                "carrier": carrier,
                "est_delivery_date": utc(parcel.estimated_delivery),
                "tracking_details": [
                    {
                        "object": "TrackingDetail",
                        "message": event["description"],
                        "status": EASYPOST_STATUSES[event["status"]],
                        "datetime": utc(event["occurred_at"]),
                        "source": carrier,
                        "tracking_location": {
                            "object": "TrackingLocation",
                            "city": event["city"],
                            "state": event["region"],
                            "country": "CN",
                            "zip": None,
                        },
                    }
                    for event in oldest_first
                ],
            },
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        key = unicodedata.normalize("NFKD", self._secrets["easypost_webhook_secret"]).encode()
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        return body, {
            "Content-Type": "application/json",
            "X-Hmac-Signature": f"hmac-sha256-hex={digest}",
        }


def _tracker_id(parcel: Parcel) -> str:
    return f"trk_{uuid.uuid5(uuid.NAMESPACE_URL, parcel.tracking_number).hex}"


def _address_problem(address: Any, role: str) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(address, dict):
        return _field_error(f"shipment.{role}", "is required")
    if not str(address.get("country") or "").strip():
        return _error(
            422,
            "ADDRESS.COUNTRY.INVALID",
            "Invalid 'country', please provide a 2 character ISO country code.",
            [{"field": f"shipment.{role}.country", "message": "cannot be blank"}],
        )
    for name in ADDRESS_FIELDS:
        if not str(address.get(name) or "").strip():
            return _field_error(f"shipment.{role}.{name}", "cannot be blank")
    return None


def _address(address: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": f"adr_{uuid.uuid4().hex}", "object": "Address", "mode": "test", **address}


def _field_error(field: str, message: str) -> tuple[int, dict[str, Any]]:
    return _error(
        422, "PARAMETER.INVALID", "Invalid parameters.", [{"field": field, "message": message}]
    )


def _error(
    status: int, code: str, message: str, errors: list[dict[str, str]] | None = None
) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message, "errors": errors or []}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
