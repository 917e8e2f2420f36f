"""AfterShip: registering a parcel for tracking, and its tracking webhooks.

The body is JSON, signed in the ``aftership-hmac-sha256`` header: the base64 HMAC-SHA256 of
the raw body keyed with the webhook secret from AfterShip's settings page::

    {"event": "tracking_update", "event_id": "<uuid>", "ts": 1715140800,
     "msg": {"tracking_number", "slug", "tag", "subtag", "expected_delivery",
             "checkpoints": [{"checkpoint_time", "city", "state", "country_iso3",
                              "country_name", "message", "tag", "subtag"}, ...]}}

``tracking_update`` and ``edd_revise`` (a new delivery estimate) are read; other events are
authentic but not about a parcel's progress and give ``None``. The estimate
(``expected_delivery``, else the newer ``courier_estimated_delivery_date``) is put on the
newest checkpoint. ``checkpoint_time`` is the checkpoint's local time and may lack an offset:
such times in China are taken as Beijing time, elsewhere as UTC.

Tags map one to one onto ours; ``Pending`` (no information yet) counts as info_received,
``Expired`` (no news for 30 days) as exception, and the Exception subtag ``Exception_011``
("returned to sender": the sender has it back) as returned_to_sender. A checkpoint with an
unknown tag or no readable time is left out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.carriers import (
    AFTERSHIP,
    CarrierError,
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
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.domain.tracking import TrackingEvent, TrackingLocation, TrackingStatus

if TYPE_CHECKING:
    from chalicelib.settings import Settings

NAME = AFTERSHIP
SIGNATURE_HEADER = "aftership-hmac-sha256"
TRACKING_EVENTS = frozenset({"tracking_update", "edd_revise"})

_S = TrackingStatus
TAGS: Mapping[str, TrackingStatus] = {
    "Pending": _S.INFO_RECEIVED,
    "InfoReceived": _S.INFO_RECEIVED,
    "InTransit": _S.IN_TRANSIT,
    "OutForDelivery": _S.OUT_FOR_DELIVERY,
    "AttemptFail": _S.ATTEMPT_FAIL,
    "AvailableForPickup": _S.AVAILABLE_FOR_PICKUP,
    "Delivered": _S.DELIVERED,
    "Exception": _S.EXCEPTION,
    "Expired": _S.EXCEPTION,
}
SUBTAGS: Mapping[str, TrackingStatus] = {
    "Exception_011": _S.RETURNED_TO_SENDER,
}
_CHINA_TIME_COUNTRIES = frozenset({"CHN", "HKG", "MAC", "TWN", "CN", "HK", "MO", "TW"})


def verify_and_parse(headers: Mapping[str, str], body: bytes, secret: str) -> TrackingUpdate | None:
    _require_secret(secret, NAME)
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookRejected(f"{SIGNATURE_HEADER} header is missing", 401)
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature.strip().encode()):
        raise WebhookRejected(f"{SIGNATURE_HEADER} does not match the body", 401)

    document = _json_document(body)
    if _text(document.get("event")) not in TRACKING_EVENTS:
        return None
    tracking = document.get("msg")
    if not isinstance(tracking, dict):
        raise WebhookRejected("msg is missing")
    return TrackingUpdate(
        source=NAME,
        carrier=_required_text(tracking, "slug", "msg"),
        tracking_number=_required_text(tracking, "tracking_number", "msg"),
        events=_events(tracking),
        event_id=_text(document.get("event_id")),
    )


acknowledge = _json_acknowledge
reject = _json_reject


def _events(tracking: Mapping[str, Any]) -> tuple[TrackingEvent, ...]:
    checkpoints = _json_objects(tracking.get("checkpoints"), "msg.checkpoints")
    events = [event for event in map(_event, checkpoints) if event is not None]
    eta = _estimated_delivery(tracking)
    return _estimate_on_newest(events, eta)


def _event(checkpoint: Mapping[str, Any]) -> TrackingEvent | None:
    tag = _text(checkpoint.get("tag")) or ""
    subtag = _text(checkpoint.get("subtag")) or ""
    status = SUBTAGS.get(subtag) or TAGS.get(tag)
    country = _text(checkpoint.get("country_iso3")) or _text(checkpoint.get("country_region"))
    try:
        occurred_at = _moment(checkpoint.get("checkpoint_time"), _zone(country))
    except ValueError:
        occurred_at = None
    if status is None or occurred_at is None:
        return None
    return TrackingEvent(
        status=status,
        occurred_at=occurred_at,
        description=_text(checkpoint.get("message")) or "",
        location=TrackingLocation(
            city=_text(checkpoint.get("city")),
            region=_text(checkpoint.get("state")),
            country=country or _text(checkpoint.get("country_name")),
        ),
        carrier_status=subtag or tag,
    )


def _estimated_delivery(tracking: Mapping[str, Any]) -> datetime | None:
    candidates = [tracking.get("expected_delivery")]
    for key in ("courier_estimated_delivery_date", "aftership_estimated_delivery_date"):
        estimate = tracking.get(key)
        if isinstance(estimate, dict):
            candidates.append(estimate.get("estimated_delivery_date"))
    zone = _zone(
        _text(tracking.get("destination_country_iso3"))
        or _text(tracking.get("destination_country_region"))
    )
    for candidate in candidates:
        try:
            moment = _moment(candidate, zone)
        except ValueError:
            continue
        if moment is not None:
            return moment
    return None


def _zone(country: str | None) -> tzinfo:
    return CHINA_TIME if (country or "").upper() in _CHINA_TIME_COUNTRIES else UTC


# --- registering a parcel -------------------------------------------------------------------

DEFAULT_BASE_URL = "https://api.aftership.com/tracking/2024-04"
API_KEY_HEADER = "as-api-key"
ALREADY_TRACKED = 4003
# Our carrier codes (Kuaidi100's company codes) as AfterShip's courier slugs.
SLUGS: Mapping[str, str] = {
    "shunfeng": "sf-express",
    "zhongtong": "zto-express",
    "yuantong": "yto",
    "shentong": "sto",
    "yunda": "yunda",
    "ems": "china-ems",
    "jd": "jd",
    "jtexpress": "jtexpress",
    "dhl": "dhl",
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
}


class AfterShipClient:
    """Registers parcels with AfterShip (``POST /trackings``): from then on AfterShip
    follows the carrier and posts ``tracking_update`` webhooks to our endpoint."""

    def __init__(self, api_key: str, base_url: str = "", *, timeout: float = 10.0) -> None:
        if not api_key:
            raise CarrierError(
                "no AfterShip API key is configured (AFTERSHIP_API_KEY)",
                code="not_configured",
                provider=NAME,
            )
        self.api_key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> AfterShipClient:
        return cls(settings.aftership_api_key, settings.aftership_base_url)

    def register(self, carrier: str, tracking_number: str, *, order_id: str = "") -> None:
        """Track ``tracking_number``; one AfterShip already tracks counts as done."""
        body = {"tracking_number": tracking_number, "slug": SLUGS.get(carrier, carrier)}
        if order_id:
            body["order_id"] = order_id
        status, answer = _call_json(
            NAME,
            "POST",
            f"{self.base_url}/trackings",
            headers={API_KEY_HEADER: self.api_key},
            body=body,
            timeout=self.timeout,
        )
        meta = answer.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        code = meta.get("code")
        if status < 300 or code == ALREADY_TRACKED:
            return
        raise CarrierError(
            _text(meta.get("message")) or f"AfterShip answered HTTP {status}",
            code=str(code or f"http_{status}"),
            retryable=False,
            provider=NAME,
        )
