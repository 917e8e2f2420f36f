"""What every provider of the local carrier shares: parcels, their journeys, and times.

A parcel is a waybill number with a script of steps still to come (collected, through two
hubs, into the destination city, out for delivery, delivered) and the events so far. Who
booked it (``booked_by``) and which provider pushes its tracking (``push_format``) are the
providers' business (``kuaidi100``, ``easypost``, ``aftership`` beside this module).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
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
DELIVERY_DAYS = 2


@dataclass(frozen=True)
class City:
    name: str  # 上海市
    region: str  # 上海 / 广东
    area_code: str  # Kuaidi100's: country + administrative division code


CITIES = (
    City("上海市", "上海", "CN310000000000"),
    City("北京市", "北京", "CN110000000000"),
    City("广州市", "广东", "CN440100000000"),
    City("深圳市", "广东", "CN440300000000"),
    City("杭州市", "浙江", "CN330100000000"),
    City("南京市", "江苏", "CN320100000000"),
    City("苏州市", "江苏", "CN320500000000"),
    City("武汉市", "湖北", "CN420100000000"),
    City("成都市", "四川", "CN510100000000"),
    City("重庆市", "重庆", "CN500000000000"),
    City("西安市", "陕西", "CN610100000000"),
    City("郑州市", "河南", "CN410100000000"),
    City("长沙市", "湖南", "CN430100000000"),
    City("天津市", "天津", "CN120000000000"),
)
CITY_BY_NAME = {city.name: city for city in CITIES} | {city.name[:-1]: city for city in CITIES}
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
COURIERS = ("张师傅", "李师傅", "王师傅", "刘师傅", "陈师傅", "赵师傅")

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


@dataclass
class Parcel:
    tracking_number: str
    carrier: str
    push_format: str
    shipment_id: str | None = None  # the booking's order id (reference)
    label_reference: str | None = None
    booked_by: str = KUAIDI100
    label_url: str | None = None
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
            "booked_by": self.booked_by,
            "label_url": self.label_url,
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


# Waybill number prefixes per carrier, for the numbers the carriers' desks hand out.
WAYBILL_PREFIXES = {
    "shunfeng": "SF",
    "yuantong": "YT",
    "zhongtong": "ZT",
    "shentong": "ST",
    "yunda": "YD",
    "jd": "JD",
    "ems": "EM",
    "jtexpress": "JT",
    "dhl": "",
    "ups": "1Z",
    "fedex": "",
    "usps": "94",
}


def waybill_number(carrier: str, reference: str) -> str:
    """The number a carrier's desk gives the order ``reference``: the same every time."""
    digest = hashlib.sha256(f"{carrier}:{reference}".encode()).digest()
    digits = int.from_bytes(digest[:8], "big") % 10**12
    return f"{WAYBILL_PREFIXES.get(carrier, 'LC')}{digits:012d}"


def event(status: str, code: str, description: str, place: City) -> dict[str, Any]:
    return {
        "status": status,
        "code": code,
        "description": description,
        "city": place.name,
        "region": place.region,
        "area_code": place.area_code,
    }


def script(number: str, carrier: str) -> list[dict[str, Any]]:
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
            event(
                "in_transit",
                "1002",
                f"快件已从【{previous.name[:-1]}转运中心】发出，下一站【{hub.name[:-1]}转运中心】",
                previous,
            )
        )
        hub_events.append(
            event("in_transit", "1002", f"快件已到达【{hub.name[:-1]}转运中心】", hub)
        )
        previous = hub
    return [
        event("info_received", "101", f"【{origin.name}】商家已下单，等待{name}揽收", origin),
        event("in_transit", "103", f"【{origin.name}】{name} 已揽收", origin),
        *hub_events,
        event(
            "in_transit",
            "1001",
            f"快件已从【{previous.name[:-1]}转运中心】发出，到达【{destination.name[:-1]}转运中心】",
            destination,
        ),
        event(
            "out_for_delivery",
            "5",
            f"【{destination.name}】快递员{courier}（电话 {phone}）正在为您派件",
            destination,
        ),
        event(
            "delivered",
            "301",
            f"【{destination.name}】您的快件已签收，签收人：本人。感谢使用{name}",
            destination,
        ),
    ]


def default_description(status: str, place: City) -> str:
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


def last_place(parcel: Parcel) -> City:
    if parcel.events:
        return CITY_BY_NAME.get(parcel.events[-1]["city"], CITIES[0])
    return CITIES[0]


def after(events: list[dict[str, Any]]) -> datetime:
    """Now in Beijing time, at least a second after the newest event so far."""
    now = datetime.now(BEIJING).replace(microsecond=0)
    if not events:
        return now
    newest = max(parse_time(event["occurred_at"]) for event in events)
    return max(now, newest + timedelta(seconds=1))


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise EmulatorError(400, f"not an ISO 8601 time: {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def occurred(event: dict[str, Any]) -> datetime:
    return parse_time(event["occurred_at"])


def utc(iso: str | None) -> str | None:
    if iso is None:
        return None
    return parse_time(iso).astimezone(UTC).isoformat().replace("+00:00", "Z")
