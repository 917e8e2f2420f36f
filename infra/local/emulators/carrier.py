"""A local carrier: Kuaidi100's subscription API, a waybill desk, and signed tracking pushes.

    python -m infra.local.emulators.carrier --port 8400 --state-dir .local [--step-seconds 20]
                                            [--formats kuaidi100,aftership,easypost]

What it serves (the app talks to it through ``chalicelib.adapters.carriers.kuaidi100`` with
``CARRIER_BASE_URL`` pointing here):

- ``POST /poll`` — Kuaidi100's subscription, same form and answers (200 subscribed, 501
  already subscribed, 600 wrong key, 700 bad parameters).
- ``POST /label`` — a waybill for a shipment: form ``key`` + ``param={"kuaidicom",
  "kuaidinum", "orderId"}``; the same ``orderId`` always gets the same waybill.
- ``GET /chaxun?com=&nu=`` — a plain tracking page (what CARRIER_TRACKING_URL_TEMPLATE links to).

Each subscribed parcel then moves forward on its own, one step every ``step_seconds``:
collected -> through a couple of transit hubs -> arrived in the destination city -> out for
delivery -> delivered, with Chinese cities, Beijing times and a delivery estimate. After every
step it pushes the parcel's whole track to the subscription's ``callbackurl``, signed with the
subscription's salt, in the Kuaidi100 format — or, per parcel, as an AfterShip or EasyPost
webhook to the same URL with ``/kuaidi100`` replaced by ``/aftership`` or ``/easypost``,
signed with the secrets ``app_env()`` hands the app. New parcels take the formats in
``push_formats`` in turn. A push that does not get a 2xx (and, for Kuaidi100, its
``{"result": true, "returnCode": "200"}``) is retried a few times.

Control (for tests and demos):

- ``POST /_emulator/parcels/{tracking_number}/advance`` — one step now (body
  ``{"format": "aftership"}`` optionally switches the parcel's push format);
- ``POST /_emulator/fast-forward`` — every subscribed parcel to delivered, now;
- ``POST /_emulator/parcels/{tracking_number}/push`` — a raw push: ``{"status": <tracking
  status>, "occurred_at": ISO time, "description", "city", "format"}`` adds that event (an
  older ``occurred_at`` makes a late, out-of-order event); an empty body re-sends the last
  push byte for byte (a duplicate);
- ``GET /_emulator/parcels`` and ``GET /_emulator/parcels/{tracking_number}`` — state and
  the outcome of every push.

The key, the salt and the webhook secrets are generated on first start into
``<state_dir>/carrier-secrets.json`` (mode 0600) and reused; parcels are kept in
``<state_dir>/carrier-parcels.json`` so a restart carries on where it stopped.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import json
import os
import random
import secrets
import signal
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

KUAIDI100 = "kuaidi100"
AFTERSHIP = "aftership"
EASYPOST = "easypost"
FORMATS = (KUAIDI100, AFTERSHIP, EASYPOST)
STATUSES = (
    "info_received",
    "in_transit",
    "out_for_delivery",
    "attempt_fail",
    "available_for_pickup",
    "delivered",
    "exception",
    "returned_to_sender",
)
TERMINAL = frozenset({"delivered", "returned_to_sender"})
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
SECRETS_FILE = "carrier-secrets.json"
PARCELS_FILE = "carrier-parcels.json"
PUSH_ATTEMPTS = 4  # the first try and three retries
RETRY_DELAYS = (0.2, 0.5, 1.0)
PUSH_TIMEOUT_SECONDS = 5.0
PUSH_LOG_LENGTH = 20
DELIVERY_DAYS = 2


@dataclass(frozen=True)
class _City:
    name: str  # 上海市
    region: str  # 上海 / 广东
    area_code: str  # Kuaidi100's: country + administrative division code


CITIES = (
    _City("上海市", "上海", "CN310000000000"),
    _City("北京市", "北京", "CN110000000000"),
    _City("广州市", "广东", "CN440100000000"),
    _City("深圳市", "广东", "CN440300000000"),
    _City("杭州市", "浙江", "CN330100000000"),
    _City("南京市", "江苏", "CN320100000000"),
    _City("苏州市", "江苏", "CN320500000000"),
    _City("武汉市", "湖北", "CN420100000000"),
    _City("成都市", "四川", "CN510100000000"),
    _City("重庆市", "重庆", "CN500000000000"),
    _City("西安市", "陕西", "CN610100000000"),
    _City("郑州市", "河南", "CN410100000000"),
    _City("长沙市", "湖南", "CN430100000000"),
    _City("天津市", "天津", "CN120000000000"),
)
_CITY_BY_NAME = {city.name: city for city in CITIES} | {city.name[:-1]: city for city in CITIES}
CARRIER_NAMES = {
    "shunfeng": "顺丰速运",
    "yuantong": "圆通速递",
    "zhongtong": "中通快递",
    "shentong": "申通快递",
    "yunda": "韵达快递",
    "jd": "京东快递",
    "ems": "EMS",
    "jtexpress": "极兔速递",
}
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
EASYPOST_CARRIERS = {"shunfeng": "SFExpress", "ems": "ChinaEMS", "jd": "JDLogistics"}
COURIERS = ("张师傅", "李师傅", "王师傅", "刘师傅", "陈师傅", "赵师傅")

# Each tracking status in each format: Kuaidi100 (sub-)state code, AfterShip tag + subtag,
# EasyPost status.
KUAIDI100_CODES = {
    "info_received": "101",
    "in_transit": "0",
    "out_for_delivery": "5",
    "attempt_fail": "204",
    "available_for_pickup": "501",
    "delivered": "301",
    "exception": "2",
    "returned_to_sender": "4",
}
KUAIDI100_NAMES = {
    "0": "在途",
    "1": "揽收",
    "101": "已下单",
    "103": "已揽收",
    "1001": "到达派件城市",
    "1002": "干线",
    "2": "疑难",
    "204": "派件异常",
    "3": "签收",
    "301": "本人签收",
    "4": "退签",
    "5": "派件",
    "501": "投柜或驿站",
}
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


@dataclass
class _Parcel:
    tracking_number: str
    carrier: str
    push_format: str
    shipment_id: str | None = None
    label_reference: str | None = None
    callback_url: str | None = None
    salt: str | None = None
    # events are dicts: status, code, occurred_at (ISO, Beijing time), description, city,
    # region, area_code
    script: list[dict[str, Any]] = field(default_factory=list)  # steps still to come
    events: list[dict[str, Any]] = field(default_factory=list)  # what has happened
    estimated_delivery: str | None = None
    next_step_at: float | None = None  # epoch seconds
    last_push: dict[str, Any] | None = None  # {format, url, headers, body}
    pushes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return self.events[-1]["status"] if self.events else None

    def view(self) -> dict[str, Any]:
        return {
            "tracking_number": self.tracking_number,
            "carrier": self.carrier,
            "shipment_id": self.shipment_id,
            "label_reference": self.label_reference,
            "subscribed": self.callback_url is not None,
            "callback_url": self.callback_url,
            "format": self.push_format,
            "status": self.status,
            "estimated_delivery": self.estimated_delivery,
            "remaining_steps": len(self.script),
            "next_step_at": (
                None
                if self.next_step_at is None
                else datetime.fromtimestamp(self.next_step_at, BEIJING).isoformat()
            ),
            "events": list(self.events),
            "pushes": list(self.pushes),
        }


class EmulatorError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class CarrierEmulator:
    """The local carrier; ``start()`` serves it on a background thread."""

    def __init__(
        self,
        state_dir: Path,
        step_seconds: float = 20.0,
        *,
        push_formats: tuple[str, ...] = (KUAIDI100,),
    ) -> None:
        unknown = [name for name in push_formats if name not in FORMATS]
        if unknown or not push_formats:
            raise ValueError(f"push formats must be some of {FORMATS}, got {push_formats}")
        self.state_dir = Path(state_dir)
        self.step_seconds = step_seconds
        self.push_formats = push_formats
        self._secrets = _load_or_create_secrets(self.state_dir / SECRETS_FILE)
        self._lock = threading.RLock()
        self._parcel_locks: dict[str, threading.Lock] = {}
        self._parcels: dict[str, _Parcel] = self._load_parcels()
        self._next_format = len(self._parcels)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the carrier emulator has no URL until start() is called")
        return self._url

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            raise RuntimeError("the carrier emulator is already running")
        server = ThreadingHTTPServer((host, port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._url = f"http://{host}:{server.server_address[1]}"
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="carrier-emulator",
                daemon=True,
            ),
            threading.Thread(target=self._drive, name="carrier-emulator-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self._url

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._server = None
        self._threads = []

    def app_env(self) -> dict[str, str]:
        """The app's carrier settings for this emulator."""
        tracking_page = f"{self.url}/chaxun?com={{carrier}}&nu={{tracking_number}}"
        return {
            "CARRIER_BASE_URL": self.url,
            "CARRIER_KEY": self._secrets["key"],
            "CARRIER_WEBHOOK_SECRET": self._secrets["salt"],
            "AFTERSHIP_WEBHOOK_SECRET": self._secrets["aftership_webhook_secret"],
            "EASYPOST_WEBHOOK_SECRET": self._secrets["easypost_webhook_secret"],
            "CARRIER_TRACKING_URL_TEMPLATE": tracking_page,
        }

    # --- the carrier's API -------------------------------------------------------------

    def subscribe(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Kuaidi100 ``/poll``: the answer document (always HTTP 200, as the real one)."""
        if form.get("schema", "json") != "json":
            return _answer("700", "订阅参数错误：schema 只支持 json")
        try:
            param = json.loads(form.get("param") or "")
        except ValueError:
            param = None
        if not isinstance(param, dict):
            return _answer("700", "订阅参数错误：param 不是 JSON")
        if param.get("key") != self._secrets["key"]:
            return _answer("600", "您不是合法的订阅者（即授权Key出错）")
        company = str(param.get("company") or "").strip()
        number = str(param.get("number") or "").strip()
        parameters = param.get("parameters")
        if not isinstance(parameters, dict):
            parameters = {}
        callback = parameters.get("callbackurl")
        if not company or not number or not isinstance(callback, str) or not callback:
            return _answer("700", "订阅参数错误：company、number、callbackurl 为必填")
        with self._lock:
            parcel = self._parcels.get(number)
            if parcel is not None and parcel.callback_url is not None:
                return _answer("501", "重复订阅")
            if parcel is None:
                parcel = self._new_parcel(number, company, shipment_id=None)
            parcel.callback_url = callback
            parcel.salt = str(parameters.get("salt") or "") or None
            if self.step_seconds > 0:
                parcel.next_step_at = time.time() + self.step_seconds
            self._save()
        return _answer("200", "提交成功")

    def book_label(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The waybill desk: idempotent per ``orderId``."""
        if form.get("key") != self._secrets["key"]:
            return _answer("600", "授权Key错误")
        try:
            param = json.loads(form.get("param") or "")
        except ValueError:
            param = None
        if not isinstance(param, dict):
            return _answer("700", "参数错误：param 不是 JSON")
        company = str(param.get("kuaidicom") or "").strip()
        order_id = str(param.get("orderId") or "").strip()
        number = str(param.get("kuaidinum") or "").strip()
        if not company or not order_id:
            return _answer("700", "参数错误：kuaidicom、orderId 为必填")
        with self._lock:
            for parcel in self._parcels.values():
                if parcel.shipment_id == order_id and parcel.carrier == company:
                    return _label_answer(parcel)
            if not number:
                number = "LC" + hashlib.sha256(order_id.encode()).hexdigest()[:13].upper()
            if number in self._parcels:
                return _answer("700", "运单号已被占用")
            parcel = self._new_parcel(number, company, shipment_id=order_id)
            self._save()
            return _label_answer(parcel)

    def tracking_page(self, number: str) -> str:
        with self._lock:
            parcel = self._parcels.get(number)
            rows = list(reversed(parcel.events)) if parcel else []
            carrier = CARRIER_NAMES.get(parcel.carrier, parcel.carrier) if parcel else ""
        items = "".join(
            f"<li><time>{html.escape(event['occurred_at'][:19].replace('T', ' '))}</time> "
            f"{html.escape(event['description'])}</li>"
            for event in rows
        )
        body = items or "<li>暂无物流信息</li>"
        return (
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
            f"<title>{html.escape(number)} 物流跟踪</title>"
            f"<h1>{html.escape(carrier)} {html.escape(number)}</h1><ol>{body}</ol></html>"
        )

    # --- control -----------------------------------------------------------------------

    def parcels(self) -> list[dict[str, Any]]:
        with self._lock:
            return [parcel.view() for parcel in self._parcels.values()]

    def parcel(self, number: str) -> dict[str, Any]:
        with self._lock:
            return self._parcel(number).view()

    def advance(self, number: str, push_format: str | None = None) -> dict[str, Any]:
        """Take the parcel's next step and push it; the parcel's state and push outcome."""
        with self._parcel_lock(number):
            with self._lock:
                parcel = self._parcel(number)
                self._switch_format(parcel, push_format)
                if not parcel.script:
                    parcel.next_step_at = None
                    self._save()
                    return {"parcel": parcel.view(), "push": None}
                step = parcel.script.pop(0)
                self._record(parcel, step, _after(parcel.events))
                parcel.next_step_at = (
                    time.time() + self.step_seconds
                    if parcel.script and self.step_seconds > 0
                    else None
                )
                push = self._prepare_push(parcel)
                self._save()
            return self._send(number, push)

    def push(
        self,
        number: str,
        *,
        status: str | None = None,
        occurred_at: str | None = None,
        description: str | None = None,
        city: str | None = None,
        push_format: str | None = None,
    ) -> dict[str, Any]:
        """A raw push: one event with ``status``, or, without one, the last push again."""
        with self._parcel_lock(number):
            with self._lock:
                parcel = self._parcel(number)
                if status is None:
                    if parcel.last_push is None:
                        raise EmulatorError(409, f"nothing has been pushed for {number} yet")
                    push = parcel.last_push
                else:
                    if status not in STATUSES:
                        raise EmulatorError(400, f"status must be one of {', '.join(STATUSES)}")
                    self._switch_format(parcel, push_format)
                    when = _parse_time(occurred_at) if occurred_at else _after(parcel.events)
                    place = _CITY_BY_NAME.get(city or "") or _last_place(parcel)
                    event = _event(
                        status,
                        KUAIDI100_CODES[status],
                        description or _default_description(status, place),
                        place,
                    )
                    self._record(parcel, event, when)
                    push = self._prepare_push(parcel)
                self._save()
            return self._send(number, push)

    def fast_forward(self) -> list[dict[str, Any]]:
        """Every subscribed parcel to the end of its script, pushing each step."""
        with self._lock:
            pending = [
                parcel.tracking_number
                for parcel in self._parcels.values()
                if parcel.callback_url is not None and parcel.script
            ]
        outcomes = []
        for number in pending:
            outcome: dict[str, Any] = {}
            while True:
                with self._lock:
                    if not self._parcels[number].script:
                        break
                outcome = self.advance(number)
            outcomes.append(outcome)
        return outcomes

    # --- internals ---------------------------------------------------------------------

    def _new_parcel(self, number: str, company: str, shipment_id: str | None) -> _Parcel:
        push_format = self.push_formats[self._next_format % len(self.push_formats)]
        self._next_format += 1
        parcel = _Parcel(
            tracking_number=number,
            carrier=company,
            push_format=push_format,
            shipment_id=shipment_id,
            label_reference=f"task-{uuid.uuid5(uuid.NAMESPACE_URL, company + number).hex[:20]}",
            script=_script(number, company),
        )
        # The waybill exists from now: the first event is the order reaching the carrier.
        self._record(parcel, parcel.script.pop(0), _after([]))
        first = _parse_time(parcel.events[0]["occurred_at"])
        eta = (first + timedelta(days=DELIVERY_DAYS)).replace(
            hour=18, minute=0, second=0, microsecond=0
        )
        parcel.estimated_delivery = eta.isoformat()
        self._parcels[number] = parcel
        return parcel

    def _record(self, parcel: _Parcel, event: dict[str, Any], when: datetime) -> None:
        parcel.events.append({**event, "occurred_at": when.astimezone(BEIJING).isoformat()})

    def _switch_format(self, parcel: _Parcel, push_format: str | None) -> None:
        if push_format is None:
            return
        if push_format not in FORMATS:
            raise EmulatorError(400, f"format must be one of {', '.join(FORMATS)}")
        parcel.push_format = push_format

    def _parcel(self, number: str) -> _Parcel:
        parcel = self._parcels.get(number)
        if parcel is None:
            raise EmulatorError(404, f"no parcel {number}")
        return parcel

    def _parcel_lock(self, number: str) -> threading.Lock:
        with self._lock:
            return self._parcel_locks.setdefault(number, threading.Lock())

    def _prepare_push(self, parcel: _Parcel) -> dict[str, Any] | None:
        """The signed request for the parcel's track now (``None`` if nobody subscribed)."""
        if parcel.callback_url is None:
            return None
        push_format = parcel.push_format
        url = _callback_for(push_format, parcel.callback_url)
        if push_format == KUAIDI100:
            body, headers = self._kuaidi100_push(parcel)
        elif push_format == AFTERSHIP:
            body, headers = self._aftership_push(parcel)
        else:
            body, headers = self._easypost_push(parcel)
        push = {"format": push_format, "url": url, "headers": headers, "body": body.decode()}
        parcel.last_push = push
        return push

    def _send(self, number: str, push: dict[str, Any] | None) -> dict[str, Any]:
        outcome = None if push is None else _deliver(push, self._stopping)
        with self._lock:
            parcel = self._parcels[number]
            if outcome is not None:
                parcel.pushes = [*parcel.pushes, outcome][-PUSH_LOG_LENGTH:]
                self._save()
            return {"parcel": parcel.view(), "push": outcome}

    def _kuaidi100_push(self, parcel: _Parcel) -> tuple[bytes, dict[str, str]]:
        newest_first = sorted(parcel.events, key=_occurred, reverse=True)
        current = parcel.events[-1]
        state = _main_state(current["code"])
        finished = current["status"] in TERMINAL
        result: dict[str, Any] = {
            "message": "ok",
            "state": state,
            "status": "200",
            "condition": "F00",
            "ischeck": "1" if current["status"] == "delivered" else "0",
            "com": parcel.carrier,
            "nu": parcel.tracking_number,
            "data": [
                {
                    "context": event["description"],
                    "time": _kuaidi100_time(event["occurred_at"]),
                    "ftime": _kuaidi100_time(event["occurred_at"]),
                    "status": KUAIDI100_NAMES.get(event["code"], ""),
                    "statusCode": event["code"],
                    "areaCode": event["area_code"],
                    "areaName": f"{event['region']},{event['city']}",
                }
                for event in newest_first
            ],
        }
        if parcel.estimated_delivery and not finished:
            result["arrivalTime"] = _kuaidi100_time(parcel.estimated_delivery)[:13]
        param = json.dumps(
            {
                "status": "shutdown" if finished else "polling",
                "billstatus": "got",
                "message": "",
                "autoCheck": "0",
                "comOld": "",
                "comNew": "",
                "lastResult": result,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        form = {"param": param}
        if parcel.salt:
            form["sign"] = hashlib.md5((param + parcel.salt).encode()).hexdigest().upper()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return urllib.parse.urlencode(form).encode(), headers

    def _aftership_push(self, parcel: _Parcel) -> tuple[bytes, dict[str, str]]:
        oldest_first = sorted(parcel.events, key=_occurred)
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

    def _easypost_push(self, parcel: _Parcel) -> tuple[bytes, dict[str, str]]:
        oldest_first = sorted(parcel.events, key=_occurred)
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
                "est_delivery_date": _utc(parcel.estimated_delivery),
                "tracking_details": [
                    {
                        "object": "TrackingDetail",
                        "message": event["description"],
                        "status": EASYPOST_STATUSES[event["status"]],
                        "datetime": _utc(event["occurred_at"]),
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

    def _drive(self) -> None:
        """Move due parcels forward until stopped."""
        tick = min(1.0, max(0.05, self.step_seconds / 4)) if self.step_seconds > 0 else 1.0
        while not self._stopping.wait(tick):
            if self.step_seconds <= 0:
                continue
            now = time.time()
            with self._lock:
                due = [
                    parcel.tracking_number
                    for parcel in self._parcels.values()
                    if parcel.next_step_at is not None and parcel.next_step_at <= now
                ]
            for number in due:
                if self._stopping.is_set():
                    return
                with contextlib.suppress(EmulatorError):
                    self.advance(number)

    def _load_parcels(self) -> dict[str, _Parcel]:
        path = self.state_dir / PARCELS_FILE
        if not path.exists():
            return {}
        stored = json.loads(path.read_text())
        return {item["tracking_number"]: _Parcel(**item) for item in stored}

    def _save(self) -> None:
        path = self.state_dir / PARCELS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(
            json.dumps([asdict(p) for p in self._parcels.values()], ensure_ascii=False, indent=1)
        )
        temp.replace(path)


# --- parcels' journeys -------------------------------------------------------------------


def _event(status: str, code: str, description: str, place: _City) -> dict[str, Any]:
    return {
        "status": status,
        "code": code,
        "description": description,
        "city": place.name,
        "region": place.region,
        "area_code": place.area_code,
    }


def _script(number: str, carrier: str) -> list[dict[str, Any]]:
    """The parcel's journey, the same for the same tracking number."""
    chooser = random.Random(hashlib.sha256(number.encode()).digest())
    origin, *hubs, destination = chooser.sample(CITIES, 4)
    name = CARRIER_NAMES.get(carrier, "快递")
    courier = chooser.choice(COURIERS)
    phone = f"1{chooser.choice('3589')}{chooser.randint(0, 9)}****{chooser.randint(0, 9999):04d}"
    hub_events = []
    previous = origin
    for hub in hubs:
        hub_events.append(
            _event(
                "in_transit",
                "1002",
                f"快件已从【{previous.name[:-1]}转运中心】发出，下一站【{hub.name[:-1]}转运中心】",
                previous,
            )
        )
        hub_events.append(
            _event("in_transit", "1002", f"快件已到达【{hub.name[:-1]}转运中心】", hub)
        )
        previous = hub
    return [
        _event("info_received", "101", f"【{origin.name}】商家已下单，等待{name}揽收", origin),
        _event("in_transit", "103", f"【{origin.name}】{name} 已揽收", origin),
        *hub_events,
        _event(
            "in_transit",
            "1001",
            f"快件已从【{previous.name[:-1]}转运中心】发出，到达【{destination.name[:-1]}转运中心】",
            destination,
        ),
        _event(
            "out_for_delivery",
            "5",
            f"【{destination.name}】快递员{courier}（电话 {phone}）正在为您派件",
            destination,
        ),
        _event(
            "delivered",
            "301",
            f"【{destination.name}】您的快件已签收，签收人：本人。感谢使用{name}",
            destination,
        ),
    ]


def _default_description(status: str, place: _City) -> str:
    words = {
        "info_received": "商家已下单",
        "in_transit": "快件运输中",
        "out_for_delivery": "快件正在派送",
        "attempt_fail": "派件不成功，收件人电话无人接听，将再次派送",
        "available_for_pickup": "快件已放入快递柜，请凭取件码取件",
        "delivered": "您的快件已签收",
        "exception": "快件异常，正在处理",
        "returned_to_sender": "快件已退回寄件人并签收",
    }
    return f"【{place.name}】{words[status]}"


def _last_place(parcel: _Parcel) -> _City:
    if parcel.events:
        return _CITY_BY_NAME.get(parcel.events[-1]["city"], CITIES[0])
    return CITIES[0]


def _after(events: list[dict[str, Any]]) -> datetime:
    """Now in Beijing time, at least a second after the newest event so far."""
    now = datetime.now(BEIJING).replace(microsecond=0)
    if not events:
        return now
    newest = max(_parse_time(event["occurred_at"]) for event in events)
    return max(now, newest + timedelta(seconds=1))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise EmulatorError(400, f"not an ISO 8601 time: {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def _occurred(event: dict[str, Any]) -> datetime:
    return _parse_time(event["occurred_at"])


def _kuaidi100_time(iso: str) -> str:
    return _parse_time(iso).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _utc(iso: str | None) -> str | None:
    if iso is None:
        return None
    return _parse_time(iso).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _main_state(code: str) -> str:
    """A (sub-)state code's main state: 1002 -> 0, 301 -> 3, 5 -> 5."""
    if code.startswith("100") and len(code) == 4:
        return "0"
    return code[0] if len(code) == 3 else code


def _callback_for(push_format: str, callback_url: str) -> str:
    if push_format == KUAIDI100:
        return callback_url
    parts = urllib.parse.urlsplit(callback_url)
    head, found, tail = parts.path.rpartition(f"/{KUAIDI100}")
    path = f"{head}/{push_format}{tail}" if found else f"{parts.path.rstrip('/')}/{push_format}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def _deliver(push: dict[str, Any], stopping: threading.Event) -> dict[str, Any]:
    """POST the push, retrying a few times; what happened."""
    outcome: dict[str, Any] = {
        "format": push["format"],
        "url": push["url"],
        "at": datetime.now(BEIJING).isoformat(timespec="seconds"),
        "attempts": 0,
        "status_code": None,
        "ok": False,
        "error": None,
    }
    for attempt in range(PUSH_ATTEMPTS):
        if attempt and stopping.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]):
            break  # stopping: give up the retries
        outcome["attempts"] = attempt + 1
        request = urllib.request.Request(
            push["url"], data=push["body"].encode(), headers=push["headers"], method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            outcome.update(status_code=None, error=str(error))
            continue
        outcome.update(status_code=status, error=None)
        if 200 <= status < 300 and _accepted(push["format"], answer):
            outcome["ok"] = True
            break
        outcome["error"] = answer.decode(errors="replace")[:200]
    return outcome


def _accepted(push_format: str, answer: bytes) -> bool:
    if push_format != KUAIDI100:
        return True
    try:
        document = json.loads(answer)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and document.get("result") is True
        and str(document.get("returnCode")) == "200"
    )


def _answer(code: str, message: str) -> dict[str, Any]:
    return {"result": code == "200", "returnCode": code, "message": message}


def _label_answer(parcel: _Parcel) -> dict[str, Any]:
    return {
        **_answer("200", "提交成功"),
        "data": {
            "taskId": parcel.label_reference,
            "kuaidinum": parcel.tracking_number,
            "kuaidicom": parcel.carrier,
        },
    }


def _load_or_create_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = {
            "key": secrets.token_hex(16),
            "salt": secrets.token_hex(16),  # Kuaidi100 salts are 32-character strings
            "aftership_webhook_secret": secrets.token_urlsafe(32),
            "easypost_webhook_secret": secrets.token_urlsafe(32),
        }
        # Write a private temp file and link it into place: complete or absent, and when two
        # emulators start at once, the first file wins for both.
        temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(generated, handle)
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    stored: dict[str, str] = json.loads(path.read_text())
    return stored


# --- HTTP ----------------------------------------------------------------------------------


def _handler_for(emulator: CarrierEmulator) -> type[BaseHTTPRequestHandler]:
    class CarrierHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            segments = [s for s in parts.path.split("/") if s]
            try:
                if parts.path == "/chaxun":
                    query = dict(urllib.parse.parse_qsl(parts.query))
                    page = emulator.tracking_page(query.get("nu", ""))
                    self._send(200, page.encode(), "text/html; charset=utf-8")
                elif segments == ["_emulator", "parcels"]:
                    self._json(200, {"parcels": emulator.parcels()})
                elif len(segments) == 3 and segments[:2] == ["_emulator", "parcels"]:
                    self._json(200, emulator.parcel(urllib.parse.unquote(segments[2])))
                else:
                    self._json(404, {"message": "not found"})
            except EmulatorError as error:
                self._json(error.status_code, {"message": str(error)})

        def do_POST(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            segments = [s for s in parts.path.split("/") if s]
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if parts.path == "/poll":
                    self._json(200, emulator.subscribe(_form(raw)))
                elif parts.path == "/label":
                    self._json(200, emulator.book_label(_form(raw)))
                elif segments == ["_emulator", "fast-forward"]:
                    self._json(200, {"parcels": emulator.fast_forward()})
                elif len(segments) == 4 and segments[:2] == ["_emulator", "parcels"]:
                    number = urllib.parse.unquote(segments[2])
                    options = _json_object(raw)
                    if segments[3] == "advance":
                        self._json(200, emulator.advance(number, options.get("format")))
                    elif segments[3] == "push":
                        self._json(
                            200,
                            emulator.push(
                                number,
                                status=options.get("status"),
                                occurred_at=options.get("occurred_at"),
                                description=options.get("description"),
                                city=options.get("city"),
                                push_format=options.get("format"),
                            ),
                        )
                    else:
                        self._json(404, {"message": "not found"})
                else:
                    self._json(404, {"message": "not found"})
            except EmulatorError as error:
                self._json(error.status_code, {"message": str(error)})

        def _json(self, status: int, document: Any) -> None:
            body = json.dumps(document, ensure_ascii=False).encode()
            self._send(status, body, "application/json; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the stack's console for the app's own logs

    return CarrierHandler


def _form(raw: bytes) -> dict[str, str]:
    try:
        return dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as error:
        raise EmulatorError(400, "the form is not UTF-8") from error


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise EmulatorError(400, f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise EmulatorError(400, "body must be a JSON object")
    return document


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument(
        "--formats",
        default=KUAIDI100,
        help=f"push formats new parcels take in turn, comma-separated: {','.join(FORMATS)}",
    )
    options = parser.parse_args(argv)
    emulator = CarrierEmulator(
        options.state_dir,
        options.step_seconds,
        push_formats=tuple(name.strip() for name in options.formats.split(",") if name.strip()),
    )
    emulator.start(options.host, options.port)
    print(f"carrier emulator on {emulator.url}", flush=True)
    print(json.dumps(emulator.app_env(), indent=2), flush=True)

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stop.wait()
    emulator.stop()


if __name__ == "__main__":
    main()
