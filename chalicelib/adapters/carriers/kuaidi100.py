"""Kuaidi100 (快递100): the tracking subscription, its signed pushes, and booking a parcel.

Subscription (real wire format): ``POST {base_url}/poll`` (https://poll.kuaidi100.com/poll),
form-encoded ``schema=json`` and ``param={"company", "number", "key", "parameters":
{"callbackurl", "salt", "resultv2": "1", "phone"}}``; the answer ``{"result": true,
"returnCode": "200"}`` means subscribed and ``501`` means already subscribed (fine for a
retried booking). Kuaidi100 then pushes to ``callbackurl`` whenever the parcel's track changes.

Push (real wire format): form-encoded ``param`` (JSON) and ``sign``, the upper-case hex MD5 of
``param + salt`` where ``salt`` is the one we gave at subscription::

    {"status": "polling" | "shutdown" | "abort" | "updateall", "message": "...",
     "lastResult": {"state": "0", "ischeck": "0", "com": "shunfeng", "nu": "SF...",
                    "arrivalTime": "2024-05-10 18",              # map-track pushes only
                    "data": [{"context", "time", "ftime", "status", "statusCode",
                              "areaCode", "areaName", "location"}, ...]}}   # newest first

``data`` is the whole history every time. Times are Beijing time without an offset. ``status``
per record is the state's name (在途, 签收...), ``statusCode`` the (sub-)state code (resultv2).
The reply it expects is ``{"result": true, "returnCode": "200", "message": "成功"}``; anything
else makes it retry. ``destResult`` (the destination country's carrier, international mode)
is not read.

Status mapping (``lastResult.state`` and per-record codes):

    0 在途 in transit, 1001 到达派件城市, 1002 干线, 1003 转递      -> in_transit
    1 揽收 collected, 103 已揽收                                  -> in_transit (it has left
                                                                     us: the order is shipped)
    101 已下单 ordered, 102 待揽收 awaiting pickup                -> info_received
    2 疑难 problem and its 2xx sub-states                         -> exception, except
        204 派件异常 delivery failed, 206 无法联系 unreachable       -> attempt_fail
    3 签收 signed for, 301 本人 302 异常后 303 代签 304 投柜或站签收 -> delivered
    4 退签 signed for by the sender, 401 已销单                    -> returned_to_sender
    5 派件 out for delivery                                       -> out_for_delivery
    501 投柜或驿站 in a locker / pickup station                    -> available_for_pickup
    6 退回 on its way back                                        -> exception (not terminal:
                                                                     returned_to_sender waits
                                                                     for 4, the sender's signature)
    7 转投 handed to another carrier, 8 清关 and 10/11/12 customs -> in_transit
    13 清关异常 customs problem, 14 拒签 refused                   -> exception

A record without a known code (resultv2 off) is in_transit, except the newest, which takes
``lastResult.state``.

Booking (real wire format, 电子面单下单): ``POST https://api.kuaidi100.com/label/order``,
form-encoded ``method=order``, ``key``, ``t`` (milliseconds), ``sign`` (upper-case MD5 of
``param + t + key + secret``) and ``param`` = ``{"printType", "partnerId", "partnerKey",
"kuaidicom", "recMan": {"name", "mobile", "printAddr", "company"}, "sendMan": {...},
"cargo", "count", "weight", "payType", "expType", "orderId"}``. The answer is
``{"success": true, "code": 200, "message", "data": {"taskId", "kuaidinum", "kuaidicom",
"label"}}``; a refusal is ``{"success": false, "code": 30001 (parameters) | 30002 (sign) |
30003 (account) | 30004 (no waybills left) | -1 (server error), "message"}``. Only -1 (and
HTTP or network failures) are worth retrying. The partner account the merchant holds with
each carrier (``partnerId``, ``partnerKey``...) comes from ``KUAIDI100_PARTNERS``. The
waybill's number is then subscribed with ``/poll`` as above.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.carriers import (
    KUAIDI100,
    CarrierError,
    ParcelRequest,
    Party,
    TrackingUpdate,
    Waybill,
    WebhookRejected,
    WebhookReply,
    _json_document,
    _json_objects,
    _moment,
    _reply_json,
    _require_secret,
    _required_text,
    _text,
)
from chalicelib.domain import places
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.domain.tracking import Booking, TrackingEvent, TrackingLocation, TrackingStatus

if TYPE_CHECKING:
    from chalicelib.settings import Settings

NAME = KUAIDI100
DEFAULT_BASE_URL = "https://poll.kuaidi100.com"
DEFAULT_LABEL_BASE_URL = "https://api.kuaidi100.com"
DEFAULT_TRACKING_URL_TEMPLATE = (
    "https://www.kuaidi100.com/chaxun?com={carrier}&nu={tracking_number}"
)
ACCEPTED = "200"
DUPLICATE_SUBSCRIPTION = "501"
SUBSCRIPTION_ENDED = frozenset({"shutdown", "abort"})
# A push is param + sign; its full history of a few hundred scans stays far below 256 KB.
MAX_PUSH_BYTES = 256 * 1024
MAX_PUSH_FIELDS = 10

_S = TrackingStatus
STATE_CODES: Mapping[str, TrackingStatus] = {
    "0": _S.IN_TRANSIT,
    "1001": _S.IN_TRANSIT,
    "1002": _S.IN_TRANSIT,
    "1003": _S.IN_TRANSIT,
    "1": _S.IN_TRANSIT,
    "101": _S.INFO_RECEIVED,
    "102": _S.INFO_RECEIVED,
    "103": _S.IN_TRANSIT,
    "2": _S.EXCEPTION,
    "201": _S.EXCEPTION,  # 超时未签收 not signed for in time
    "202": _S.EXCEPTION,  # 超时未更新 no update in time
    "203": _S.EXCEPTION,  # 拒收 refused (being returned)
    "204": _S.ATTEMPT_FAIL,  # 派件异常 delivery failed
    "205": _S.EXCEPTION,  # 柜或驿站超时未取 not collected from the locker in time
    "206": _S.ATTEMPT_FAIL,  # 无法联系 recipient unreachable
    "207": _S.EXCEPTION,  # 超区 outside the delivery area
    "208": _S.EXCEPTION,  # 滞留 held
    "209": _S.EXCEPTION,  # 破损 damaged
    "210": _S.EXCEPTION,  # 销单 waybill cancelled
    "3": _S.DELIVERED,
    "301": _S.DELIVERED,
    "302": _S.DELIVERED,
    "303": _S.DELIVERED,
    "304": _S.DELIVERED,
    "4": _S.RETURNED_TO_SENDER,
    "401": _S.RETURNED_TO_SENDER,
    "5": _S.OUT_FOR_DELIVERY,
    "501": _S.AVAILABLE_FOR_PICKUP,
    "6": _S.EXCEPTION,
    "7": _S.IN_TRANSIT,
    "8": _S.IN_TRANSIT,
    "10": _S.IN_TRANSIT,
    "11": _S.IN_TRANSIT,
    "12": _S.IN_TRANSIT,
    "13": _S.EXCEPTION,
    "14": _S.EXCEPTION,
}
STATE_NAMES: Mapping[str, str] = {
    "在途": "0",
    "到达派件城市": "1001",
    "干线": "1002",
    "转递": "1003",
    "揽收": "1",
    "已下单": "101",
    "待揽收": "102",
    "已揽收": "103",
    "疑难": "2",
    "超时未签收": "201",
    "超时未更新": "202",
    "拒收": "203",
    "派件异常": "204",
    "柜或驿站超时未取": "205",
    "无法联系": "206",
    "超区": "207",
    "滞留": "208",
    "破损": "209",
    "销单": "210",
    "签收": "3",
    "本人签收": "301",
    "派件异常后签收": "302",
    "代签": "303",
    "投柜或站签收": "304",
    "退签": "4",
    "已销单": "401",
    "派件": "5",
    "投柜或驿站": "501",
    "退回": "6",
    "转投": "7",
    "清关": "8",
    "待清关": "10",
    "清关中": "11",
    "已清关": "12",
    "清关异常": "13",
    "拒签": "14",
}

# --- pushes -----------------------------------------------------------------------------


def verify_and_parse(headers: Mapping[str, str], body: bytes, secret: str) -> TrackingUpdate | None:
    """Check ``sign`` against ``param`` + ``secret`` (our salt), then read ``param``."""
    _require_secret(secret, NAME)
    form = _form_fields(body)
    sign = form.get("sign")
    if not sign:
        raise WebhookRejected("sign is missing", 401)
    param = form.get("param")
    if param is None:
        raise WebhookRejected("param is missing", 401)
    expected = hashlib.md5((param + secret).encode("utf-8")).hexdigest().upper()
    if not hmac.compare_digest(expected.encode(), sign.strip().upper().encode()):
        raise WebhookRejected("sign does not match", 401)

    push = _json_document(param)
    result = push.get("lastResult")
    if not isinstance(result, dict):
        raise WebhookRejected("param.lastResult is missing")
    carrier = _required_text(result, "com", "lastResult")
    number = _required_text(result, "nu", "lastResult")
    status = _text(push.get("status")) or ""
    return TrackingUpdate(
        source=NAME,
        carrier=carrier,
        tracking_number=number,
        events=_events(result),
        subscription_ended=status in SUBSCRIPTION_ENDED,
        message=_text(push.get("message")) or "",
    )


def acknowledge() -> WebhookReply:
    return _reply_json(200, {"result": True, "returnCode": ACCEPTED, "message": "成功"})


def reject(message: str, status_code: int = 500) -> WebhookReply:
    return _reply_json(status_code, {"result": False, "returnCode": "500", "message": message})


def _form_fields(body: bytes) -> dict[str, str]:
    # Checked before any parsing: an anonymous caller must not make us decode megabytes.
    if len(body) > MAX_PUSH_BYTES:
        raise WebhookRejected(f"body is larger than {MAX_PUSH_BYTES} bytes", 413)
    if body.count(b"&") + 1 > MAX_PUSH_FIELDS:
        raise WebhookRejected(f"form has more than {MAX_PUSH_FIELDS} fields", 400)
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=MAX_PUSH_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("body is not a form", 400) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise WebhookRejected(f"{name} appears more than once", 400)
        fields[name] = value
    return fields


def _events(result: Mapping[str, Any]) -> tuple[TrackingEvent, ...]:
    dated = []
    for record in _json_objects(result.get("data"), "lastResult.data"):
        try:
            occurred_at = _moment(record.get("time") or record.get("ftime"), CHINA_TIME)
        except ValueError:
            occurred_at = None
        if occurred_at is not None:  # a record we cannot place in time tells us nothing
            dated.append((occurred_at, record))
    if not dated:
        return ()
    newest = max(dated, key=lambda pair: pair[0])[1]
    state = _text(result.get("state"))
    try:
        eta = _moment(result.get("arrivalTime"), CHINA_TIME)
    except ValueError:
        eta = None

    events = []
    for occurred_at, record in dated:
        code = _record_code(record)
        if code is None and record is newest and state in STATE_CODES:
            code = state
        status = STATE_CODES.get(code or "", TrackingStatus.IN_TRANSIT)
        event = TrackingEvent(
            status=status,
            occurred_at=occurred_at,
            description=_text(record.get("context")) or "",
            location=_location(record),
            carrier_status=code or _text(record.get("status")) or "",
        )
        if record is newest and eta is not None:
            event = replace(event, estimated_delivery=eta)
        events.append(event)
    return tuple(events)


def _record_code(record: Mapping[str, Any]) -> str | None:
    code = _text(record.get("statusCode"))
    if code in STATE_CODES:
        return code
    name = _text(record.get("status"))
    return STATE_NAMES.get(name or "")


def _location(record: Mapping[str, Any]) -> TrackingLocation:
    # areaName is "省,市[,区]" ("广东,深圳市,南山区"), or one name for a municipality ("上海").
    parts = [part.strip() for part in re.split(r"[,，]", _text(record.get("areaName")) or "")]
    parts = [part for part in parts if part]
    code = _text(record.get("areaCode")) or ""
    country = code[:2].upper() if code[:2].isalpha() else ("CN" if code or parts else None)
    if len(parts) >= 2:
        return TrackingLocation(city=parts[1], region=parts[0], country=country)
    if parts:
        name = parts[0]
        if places.find_city(name) is None and places.find_region(name) is not None:
            return TrackingLocation(region=name, country=country)
        return TrackingLocation(city=name, country=country)
    return TrackingLocation(city=_text(record.get("location")), country=country)


# --- booking and subscription ------------------------------------------------------------

LABEL_PATH = "/label/order"
MOBILE_DIGITS = 11
# The e-waybill API's codes that say "try again later" rather than "this request is wrong".
LABEL_RETRYABLE_CODES = frozenset({"-1", "500"})


def label_sign(param: str, t: str, key: str, secret: str) -> str:
    """The e-waybill API's ``sign``: upper-case hex MD5 of param + t + key + secret."""
    return hashlib.md5((param + t + key + secret).encode("utf-8")).hexdigest().upper()


def partner_accounts(text: str) -> dict[str, dict[str, str]]:
    """``KUAIDI100_PARTNERS``: the e-waybill account the merchant holds with each carrier,
    ``{"shunfeng": {"partnerId": "...", "partnerKey": "...", "net": "..."}, ...}``."""
    if not text.strip():
        return {}
    document = json.loads(text)
    if not isinstance(document, dict) or not all(
        isinstance(account, dict) for account in document.values()
    ):
        raise ValueError("KUAIDI100_PARTNERS must be a JSON object of objects")
    return {
        str(carrier): {str(name): str(value) for name, value in account.items()}
        for carrier, account in document.items()
    }


class Kuaidi100Client:
    """Orders e-waybills (``label_base_url``) and subscribes parcels to tracking pushes
    (``base_url``) with our ``key``; the e-waybill API also signs with ``secret``."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        secret: str = "",
        label_base_url: str = "",
        partners: Mapping[str, Mapping[str, str]] | None = None,
        tracking_url_template: str = DEFAULT_TRACKING_URL_TEMPLATE,
        timeout: float = 10.0,
        clock: Any = None,
    ) -> None:
        if not base_url or not key:
            raise ValueError("Kuaidi100Client needs a base URL and a key")
        self.base_url = base_url.rstrip("/")
        self.label_base_url = (label_base_url or DEFAULT_LABEL_BASE_URL).rstrip("/")
        self.key = key
        self.secret = secret
        self.partners = dict(partners or {})
        self.tracking_url_template = tracking_url_template or DEFAULT_TRACKING_URL_TEMPLATE
        self.timeout = timeout
        self._clock = clock or time.time

    @classmethod
    def from_settings(cls, settings: Settings) -> Kuaidi100Client:
        return cls(
            settings.carrier_base_url or DEFAULT_BASE_URL,
            settings.carrier_key,
            secret=settings.carrier_secret,
            label_base_url=settings.carrier_label_base_url,
            partners=partner_accounts(settings.kuaidi100_partners),
            tracking_url_template=settings.carrier_tracking_url_template,
        )

    def book(self, parcel: ParcelRequest, callback_url: str, salt: str) -> Booking:
        """Order the e-waybill, then subscribe its number for pushes to ``callback_url``."""
        waybill = self.order_waybill(parcel)
        self.subscribe(
            parcel.carrier, waybill.tracking_number, callback_url, salt, parcel.recipient.phone
        )
        return self.booking_for(waybill, tracking_provider=NAME)

    def booking_for(self, waybill: Waybill, *, tracking_provider: str) -> Booking:
        return Booking(
            carrier=waybill.carrier,
            tracking_number=waybill.tracking_number,
            tracking_url=self.tracking_url(waybill.carrier, waybill.tracking_number),
            label_reference=waybill.reference,
            booking_provider=NAME,
            tracking_provider=tracking_provider,
            label_url=waybill.label_url,
        )

    def order_waybill(self, parcel: ParcelRequest) -> Waybill:
        """电子面单下单: ``POST /label/order`` with ``method=order``; the carrier's number."""
        if not self.secret:
            raise CarrierError(
                "no Kuaidi100 secret is configured (CARRIER_SECRET)",
                code="not_configured",
                provider=NAME,
            )
        account = self.partners.get(parcel.carrier, {})
        param = {
            "printType": "IMAGE",
            **{name: value for name, value in account.items() if value},
            "kuaidicom": parcel.carrier,
            "recMan": _man(parcel.recipient),
            "sendMan": _man(parcel.sender),
            "cargo": parcel.description[:50],
            "count": str(parcel.quantity),
            "weight": f"{max(parcel.weight_grams, 1) / 1000:.2f}",
            "payType": "SHIPPER",
            "expType": "标准快递",
            "orderId": parcel.reference,
            "needSubscribe": False,
        }
        param_text = _compact(param)
        t = str(int(self._clock() * 1000))
        form = {
            "method": "order",
            "key": self.key,
            "t": t,
            "sign": label_sign(param_text, t, self.key, self.secret),
            "param": param_text,
        }
        answer = self._post(self.label_base_url + LABEL_PATH, form)
        code = str(answer.get("code", ""))
        data = answer.get("data")
        if answer.get("success") is not True or code != ACCEPTED or not isinstance(data, dict):
            raise CarrierError(
                _text(answer.get("message")) or f"Kuaidi100 answered code {code or 'none'}",
                code=code or "unknown",
                retryable=code in LABEL_RETRYABLE_CODES,
                provider=NAME,
            )
        number = _text(data.get("kuaidinum"))
        if number is None:
            raise CarrierError(
                "Kuaidi100 answered the e-waybill order without a waybill number",
                code="bad_response",
                retryable=True,
                provider=NAME,
            )
        return Waybill(
            carrier=_text(data.get("kuaidicom")) or parcel.carrier,
            tracking_number=number,
            label_url=_text(data.get("label")) or "",
            reference=_text(data.get("taskId")) or number,
        )

    def subscribe(
        self,
        company: str,
        number: str,
        callback_url: str,
        salt: str,
        phone: str | None = None,
    ) -> None:
        """Ask for pushes about ``number`` to ``callback_url``, signed with ``salt``."""
        if not company or not number:
            raise ValueError("company and number are required")
        if not callback_url.startswith(("http://", "https://")):
            raise ValueError("callback_url must be an http(s) URL")
        if not salt:
            raise ValueError("a salt is required: unsigned pushes could not be trusted")
        parameters = {"callbackurl": callback_url, "salt": salt, "resultv2": "1"}
        if phone:
            parameters["phone"] = phone  # SF Express only answers with the phone number
        param = {"company": company, "number": number, "key": self.key, "parameters": parameters}
        answer = self._post(self.base_url + "/poll", {"schema": "json", "param": _compact(param)})
        code = str(answer.get("returnCode", ""))
        if (answer.get("result") is True and code == ACCEPTED) or code == DUPLICATE_SUBSCRIPTION:
            return
        raise CarrierError(
            f"kuaidi100 refused the subscription: {answer.get('message', '')}",
            code=code or "unknown",
            retryable=code == "500",
            provider=NAME,
        )

    def tracking_url(self, carrier: str, tracking_number: str) -> str:
        return self.tracking_url_template.format(
            carrier=urllib.parse.quote(carrier, safe=""),
            tracking_number=urllib.parse.quote(tracking_number, safe=""),
        )

    def _post(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        path = urllib.parse.urlsplit(url).path
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise CarrierError(
                f"kuaidi100 answered HTTP {error.code} to {path}",
                code=f"http_{error.code}",
                retryable=error.code >= 500 or error.code == 429,
                provider=NAME,
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise CarrierError(
                f"kuaidi100 could not be reached: {error}",
                code="unreachable",
                retryable=True,
                provider=NAME,
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CarrierError(
                f"kuaidi100 answered {path} with something that is not a JSON object",
                code="bad_response",
                retryable=True,
                provider=NAME,
            )
        return answer


def _man(party: Party) -> dict[str, str]:
    """A sender or recipient as the e-waybill API's ``sendMan`` / ``recMan``."""
    number = re.sub(r"[\s-]", "", party.phone)
    if number.startswith("+86"):
        number = number[3:]  # the e-waybill API takes a mainland mobile as its 11 digits
    is_mobile = len(number) == MOBILE_DIGITS and number.startswith("1") and number.isdigit()
    return {
        "name": party.name,
        "mobile": number if is_mobile else "",
        "tel": "" if is_mobile else party.phone.strip(),
        "printAddr": party.printed_address,
        "company": party.company,
    }


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
