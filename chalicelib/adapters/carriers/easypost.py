"""EasyPost: booking a parcel (shipment, rates, buy) and its tracker webhooks.

EasyPost posts an Event object; with a webhook secret set, it signs the raw body in
``X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256>``, keyed with the secret after Unicode
NFKD normalisation (as its own client libraries check it)::

    {"id": "evt_...", "object": "Event", "description": "tracker.updated",
     "result": {"object": "Tracker", "tracking_code", "carrier", "status",
                "est_delivery_date",
                "tracking_details": [{"datetime", "status", "message",
                                      "tracking_location": {"city", "state", "country",
                                                            "zip"}}, ...]}}

``tracker.created`` and ``tracker.updated`` are read; EasyPost sends every event of the
account to a webhook (batches, invoices...), and those give ``None``. ``event_id`` is the
Event's ``id``; ``est_delivery_date`` goes on the newest detail.

Statuses: pre_transit -> info_received; in_transit, out_for_delivery, delivered,
available_for_pickup as named; return_to_sender -> returned_to_sender (EasyPost has no
separate "returned" state, so its one return status is taken as the end); failure, cancelled
and error -> exception; a detail with status ``unknown`` (or any other) is left out.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.carriers import (
    EASYPOST,
    CarrierError,
    ParcelRequest,
    Party,
    TrackingUpdate,
    WebhookRejected,
    _call_json,
    _estimate_on_newest,
    _header,
    _json_acknowledge,
    _json_document,
    _json_objects,
    _json_reject,
    _moment,
    _require_secret,
    _required_text,
    _text,
)
from chalicelib.domain.tracking import Booking, TrackingEvent, TrackingLocation, TrackingStatus

if TYPE_CHECKING:
    from chalicelib.settings import Settings

NAME = EASYPOST
SIGNATURE_HEADER = "X-Hmac-Signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})

_S = TrackingStatus
STATUSES: Mapping[str, TrackingStatus] = {
    "pre_transit": _S.INFO_RECEIVED,
    "in_transit": _S.IN_TRANSIT,
    "out_for_delivery": _S.OUT_FOR_DELIVERY,
    "delivered": _S.DELIVERED,
    "available_for_pickup": _S.AVAILABLE_FOR_PICKUP,
    "return_to_sender": _S.RETURNED_TO_SENDER,
    "failure": _S.EXCEPTION,
    "cancelled": _S.EXCEPTION,
    "error": _S.EXCEPTION,
}


def verify_and_parse(headers: Mapping[str, str], body: bytes, secret: str) -> TrackingUpdate | None:
    _require_secret(secret, NAME)
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookRejected(f"{SIGNATURE_HEADER} header is missing", 401)
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    expected = SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRejected(f"{SIGNATURE_HEADER} does not match the body", 401)

    event = _json_document(body)
    if _text(event.get("description")) not in TRACKER_EVENTS:
        return None
    tracker = event.get("result")
    if not isinstance(tracker, dict):
        raise WebhookRejected("result is missing")
    return TrackingUpdate(
        source=NAME,
        carrier=_required_text(tracker, "carrier", "result"),
        tracking_number=_required_text(tracker, "tracking_code", "result"),
        events=_events(tracker),
        event_id=_required_text(event, "id", "event"),
    )


acknowledge = _json_acknowledge
reject = _json_reject


def _events(tracker: Mapping[str, Any]) -> tuple[TrackingEvent, ...]:
    details = _json_objects(tracker.get("tracking_details"), "result.tracking_details")
    events = [event for event in map(_event, details) if event is not None]
    try:
        eta = _moment(tracker.get("est_delivery_date"), UTC)
    except ValueError:
        eta = None
    return _estimate_on_newest(events, eta)


def _event(detail: Mapping[str, Any]) -> TrackingEvent | None:
    carrier_status = _text(detail.get("status")) or ""
    status = STATUSES.get(carrier_status)
    try:
        occurred_at = _moment(detail.get("datetime"), UTC)
    except ValueError:
        occurred_at = None
    if status is None or occurred_at is None:
        return None
    where = detail.get("tracking_location")
    where = where if isinstance(where, dict) else {}
    return TrackingEvent(
        status=status,
        occurred_at=occurred_at,
        description=_text(detail.get("message")) or "",
        location=TrackingLocation(
            city=_text(where.get("city")),
            region=_text(where.get("state")),
            country=_text(where.get("country")),
        ),
        carrier_status=carrier_status,
    )


# --- booking ------------------------------------------------------------------------------

DEFAULT_BASE_URL = "https://api.easypost.com/v2"
# Our carrier codes as EasyPost names carriers in rates.
CARRIER_NAMES: Mapping[str, str] = {
    "dhl": "DHLExpress",
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
    "shunfeng": "SFExpress",
    "ems": "ChinaEMS",
}
GRAMS_PER_OUNCE = Decimal("28.349523125")


class EasyPostClient:
    """Books parcels with EasyPost: create a Shipment (its rates come with it), buy the
    cheapest rate of the carrier, keep the tracking code and label. Buying creates the
    Tracker whose ``tracker.updated`` events then arrive at our webhook."""

    def __init__(self, api_key: str, base_url: str = "", *, timeout: float = 20.0) -> None:
        if not api_key:
            raise CarrierError(
                "no EasyPost API key is configured (EASYPOST_API_KEY)",
                code="not_configured",
                provider=NAME,
            )
        self.api_key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> EasyPostClient:
        return cls(settings.easypost_api_key, settings.easypost_base_url)

    def book(self, parcel: ParcelRequest) -> Booking:
        carrier_name = CARRIER_NAMES.get(parcel.carrier, parcel.carrier)
        shipment = self._call(
            "POST",
            "/shipments",
            {
                "shipment": {
                    "reference": parcel.reference,
                    "from_address": _address(parcel.sender),
                    "to_address": _address(parcel.recipient),
                    "parcel": {"weight": _ounces(parcel.weight_grams)},
                    "customs_info": _customs(parcel),
                }
            },
        )
        rates = [
            rate
            for rate in _json_objects_or_none(shipment.get("rates"))
            if _text(rate.get("carrier")) == carrier_name and _price(rate) is not None
        ]
        if not rates:
            raise CarrierError(
                f"EasyPost offered no {carrier_name} rate for this parcel",
                code="no_rates",
                provider=NAME,
            )
        cheapest = min(rates, key=lambda rate: _price(rate) or Decimal(0))
        bought = self._call(
            "POST", f"/shipments/{shipment.get('id')}/buy", {"rate": {"id": cheapest.get("id")}}
        )
        number = _text(bought.get("tracking_code"))
        if number is None:
            raise CarrierError(
                "EasyPost bought the label but gave no tracking code",
                code="bad_response",
                retryable=True,
                provider=NAME,
            )
        label = bought.get("postage_label")
        tracker = bought.get("tracker")
        return Booking(
            carrier=parcel.carrier,
            tracking_number=number,
            tracking_url=(_text(tracker.get("public_url")) if isinstance(tracker, dict) else None)
            or "",
            label_reference=_text(bought.get("id")) or "",
            booking_provider=NAME,
            tracking_provider=NAME,
            label_url=(_text(label.get("label_url")) if isinstance(label, dict) else None) or "",
        )

    def track(self, carrier: str, tracking_number: str) -> None:
        """Create a Tracker for a parcel booked elsewhere (EasyPost then pushes its events)."""
        self._call(
            "POST",
            "/trackers",
            {
                "tracker": {
                    "tracking_code": tracking_number,
                    "carrier": CARRIER_NAMES.get(carrier, carrier),
                }
            },
        )

    def _call(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        status, answer = _call_json(
            NAME,
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {self.api_key}"},
            body=body,
            timeout=self.timeout,
        )
        if status >= 400:
            error = answer.get("error")
            error = error if isinstance(error, dict) else {}
            fields = [
                f"{item.get('field')}: {item.get('message')}"
                for item in _json_objects_or_none(error.get("errors"))
            ]
            message = _text(error.get("message")) or f"EasyPost answered HTTP {status}"
            raise CarrierError(
                message + (f" ({'; '.join(fields)})" if fields else ""),
                code=_text(error.get("code")) or f"http_{status}",
                retryable=False,
                provider=NAME,
            )
        return answer


def _address(party: Party) -> dict[str, str]:
    return {
        "name": party.name,
        "company": party.company,
        "street1": party.line1,
        "city": party.city,
        "state": party.region,
        "zip": party.postcode,
        "country": party.country,
        "phone": party.phone,
    }


def _customs(parcel: ParcelRequest) -> dict[str, Any]:
    return {
        "contents_type": "merchandise",
        "customs_certify": True,
        "customs_signer": parcel.sender.name,
        "customs_items": [
            {
                "description": parcel.description[:50],
                "quantity": parcel.quantity,
                "weight": _ounces(parcel.weight_grams),
                "origin_country": parcel.sender.country,
            }
        ],
    }


def _ounces(grams: int) -> float:
    return float((Decimal(max(grams, 1)) / GRAMS_PER_OUNCE).quantize(Decimal("0.1")))


def _price(rate: Mapping[str, Any]) -> Decimal | None:
    try:
        return Decimal(str(rate.get("rate")))
    except (ArithmeticError, ValueError):
        return None


def _json_objects_or_none(items: Any) -> list[Mapping[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
