"""EasyPost tracker webhooks.

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
from typing import Any

from chalicelib.adapters.carriers import (
    EASYPOST,
    TrackingUpdate,
    WebhookRejected,
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
from chalicelib.domain.tracking import TrackingEvent, TrackingLocation, TrackingStatus

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
