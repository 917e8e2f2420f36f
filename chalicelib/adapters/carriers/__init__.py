"""Carriers: booking a parcel, subscribing to its tracking, and reading their signed pushes.

Three push formats arrive at ``POST /webhooks/carriers/{format}``, one module each:

- ``kuaidi100`` — form-encoded ``param`` + ``sign`` (MD5 of param + our subscription salt);
- ``aftership`` — JSON signed with ``aftership-hmac-sha256`` (base64 HMAC-SHA256);
- ``easypost`` — a JSON Event signed with ``X-Hmac-Signature: hmac-sha256-hex=...``.

Each module has the same three functions (see ``WebhookFormat``): ``verify_and_parse``
checks the signature over the raw body before reading anything in it and returns a
``TrackingUpdate`` (or ``None`` for an authentic event that is not about a parcel, which is
acknowledged and ignored); ``acknowledge`` and ``reject`` give the reply in the shape that
carrier expects. A webhook route does::

    fmt = carriers.webhook_format(name)           # UnknownWebhookFormat -> 404
    try:
        update = fmt.verify_and_parse(headers, body, carriers.webhook_secret(name, settings))
    except carriers.WebhookRejected as rejected:
        return fmt.reject(str(rejected), rejected.status_code)
    if update is not None:
        ...record it (idempotent: the Timeline drops events it already has)...
    return fmt.acknowledge()

Booking lives beside each format: ``kuaidi100.Kuaidi100Client`` (e-waybill order and the
push subscription), ``easypost.EasyPostClient`` (shipment, cheapest rate, buy, trackers) and
``aftership.AfterShipClient`` (registering a tracking); ``routes`` says which provider books
and which tracks each carrier. Every client raises ``CarrierError`` with the provider's own
message, ``retryable`` when the provider was down rather than saying no.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

from chalicelib.domain.tracking import TrackingEvent

if TYPE_CHECKING:
    from chalicelib.settings import Settings

KUAIDI100 = "kuaidi100"
AFTERSHIP = "aftership"
EASYPOST = "easypost"
WEBHOOK_FORMATS = (KUAIDI100, AFTERSHIP, EASYPOST)


class WebhookRejected(Exception):
    """A push that is not provably from the carrier (401) or that cannot be read (400)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class UnknownWebhookFormat(LookupError):
    pass


class CarrierError(Exception):
    """A provider refused a request (``retryable`` False: asking again the same way will not
    help) or could not be reached or failed on its side (``retryable`` True). ``code`` is the
    provider's own code; the message is the provider's own words where it gave any."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "carrier_error",
        retryable: bool = False,
        provider: str = "",
    ):
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.provider = provider


@dataclass(frozen=True, slots=True)
class Party:
    """A sender or recipient on a waybill: a person with a phone at an address."""

    name: str
    phone: str
    country: str  # ISO 3166-1 alpha-2
    region: str
    city: str
    line1: str
    postcode: str
    company: str = ""

    @property
    def printed_address(self) -> str:
        """The one-line address a Chinese waybill prints (省市 + street)."""
        city = "" if self.city == self.region else self.city
        return f"{self.region}{city}{self.line1}"


@dataclass(frozen=True, slots=True)
class ParcelRequest:
    """What a booking provider is asked to carry: one shipment, from a warehouse to a
    shopper. ``reference`` is our id for it (the shipment id, or one attempt of it)."""

    reference: str
    carrier: str  # our carrier code (kuaidi100's company codes; dhl, ups... abroad)
    sender: Party
    recipient: Party
    description: str
    quantity: int
    weight_grams: int


@dataclass(frozen=True, slots=True)
class Waybill:
    """What a booking provider answered: the number the parcel travels under, its label
    (a URL, or the provider's reference to print it), and the provider's id for the order."""

    carrier: str
    tracking_number: str
    label_url: str
    reference: str


@dataclass(frozen=True, slots=True)
class TrackingUpdate:
    """A verified push, reduced to the parcel's events in our words.

    ``carrier`` is the carrier's code as the format names it (kuaidi100 ``com``, AfterShip
    ``slug``, EasyPost ``carrier``). ``event_id`` is the push's own id where the format has
    one (AfterShip, EasyPost); kuaidi100 pushes have none and carry the full history, so the
    timeline's dedupe is what makes them idempotent. ``subscription_ended`` means the carrier
    will push no more for this parcel (kuaidi100 ``shutdown`` / ``abort``).
    """

    source: str  # which push format: kuaidi100, aftership, easypost
    carrier: str
    tracking_number: str
    events: tuple[TrackingEvent, ...]
    event_id: str | None = None
    subscription_ended: bool = False
    message: str = ""  # the carrier's note on the subscription, e.g. "3天查询无记录"


class WebhookReply(NamedTuple):
    status_code: int
    content_type: str
    body: str


class WebhookFormat(Protocol):
    NAME: str

    def verify_and_parse(
        self, headers: Mapping[str, str], body: bytes, secret: str
    ) -> TrackingUpdate | None: ...

    def acknowledge(self) -> WebhookReply: ...

    def reject(self, message: str, status_code: int = 500) -> WebhookReply: ...


def webhook_format(name: str) -> WebhookFormat:
    """The module that reads pushes in format ``name`` (``UnknownWebhookFormat`` if none)."""
    if name not in WEBHOOK_FORMATS:
        raise UnknownWebhookFormat(name)
    return cast(WebhookFormat, importlib.import_module(f"{__name__}.{name}"))


def webhook_secret(name: str, settings: Settings) -> str:
    """The secret that format's pushes are signed with (empty when not configured)."""
    secrets = {
        KUAIDI100: settings.carrier_webhook_secret,
        AFTERSHIP: settings.aftership_webhook_secret,
        EASYPOST: settings.easypost_webhook_secret,
    }
    if name not in secrets:
        raise UnknownWebhookFormat(name)
    return secrets[name]


# Helpers for the format modules.


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _require_secret(secret: str, name: str) -> None:
    # An empty key would make every signature "valid" for anyone who knows the scheme.
    if not secret:
        raise WebhookRejected(f"no webhook secret is configured for {name}", 401)


def _json_document(raw: bytes | str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise WebhookRejected(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise WebhookRejected("body is not a JSON object")
    return document


def _text(value: Any) -> str | None:
    """A non-empty string from a JSON string or number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def _required_text(document: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(document.get(key)) if isinstance(document, Mapping) else None
    if value is None:
        raise WebhookRejected(f"{where}.{key} is missing")
    return value


def _estimate_on_newest(
    events: list[TrackingEvent], estimate: datetime | None
) -> tuple[TrackingEvent, ...]:
    """The events, with the carrier's parcel-level delivery estimate on the newest one."""
    if events and estimate is not None:
        newest = max(range(len(events)), key=lambda i: events[i].occurred_at)
        events[newest] = replace(events[newest], estimated_delivery=estimate)
    return tuple(events)


def _reply_json(status_code: int, document: Mapping[str, Any]) -> WebhookReply:
    return WebhookReply(status_code, "application/json", json.dumps(document, ensure_ascii=False))


def _json_objects(items: Any, where: str) -> list[Mapping[str, Any]]:
    """The objects of the JSON list ``items`` (absent: none); ``where`` names it in errors."""
    items = [] if items is None else items
    if not isinstance(items, list):
        raise WebhookRejected(f"{where} is not a list")
    if not all(isinstance(item, dict) for item in items):
        raise WebhookRejected(f"{where} holds a non-object")
    return items


# The acknowledgement and refusal of the formats that expect no particular reply body
# (AfterShip, EasyPost): any 2xx stops their retries.
def _json_acknowledge() -> WebhookReply:
    return _reply_json(200, {"ok": True})


def _json_reject(message: str, status_code: int = 500) -> WebhookReply:
    return _reply_json(
        status_code, {"error": "webhook_rejected", "message": message, "details": None}
    )


def _moment(value: Any, default_zone: tzinfo) -> datetime | None:
    """An aware datetime from ISO 8601 text ("2024-05-08T10:20:00Z", "2024-05-08 10:20:00",
    "2024-05-08"); naive values are taken in ``default_zone``. ``None`` when absent;
    ``ValueError`` when present but not a time."""
    text = _text(value)
    if text is None:
        return None
    if len(text) == 13 and text[10] == " ":  # kuaidi100's hour-precision "YYYY-MM-DD HH"
        text += ":00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=default_zone)


def _call_json(
    provider: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, Any]]:
    """A JSON API call: (HTTP status, answer object) for any answer in JSON, 4xx included.
    Unreachable, 5xx and 429 are ``CarrierError(retryable=True)``."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise CarrierError(
            f"{provider} could not be reached: {error}",
            code="unreachable",
            retryable=True,
            provider=provider,
        ) from None
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = None
    if status >= 500 or status == 429 or not isinstance(answer, dict):
        raise CarrierError(
            f"{provider} answered HTTP {status}",
            code=f"http_{status}",
            retryable=True,
            provider=provider,
        )
    return status, answer
