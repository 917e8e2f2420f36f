"""Kuaidi100 at the local carrier: the push subscription, the e-waybill desk, its pushes.

- ``POST /poll`` — the subscription (form ``schema=json`` + ``param``): 200 subscribed, 501
  already subscribed, 600 wrong key, 700 bad parameters. Always HTTP 200, as the real one.
- ``POST /label/order`` — 电子面单下单, as documented: form ``method=order``, ``key``,
  ``t``, ``sign`` (upper-case MD5 of param + t + key + secret), ``param`` with
  ``kuaidicom``, ``partnerId``, ``recMan`` and ``sendMan`` (``name``, ``mobile`` or ``tel``,
  ``printAddr``), ``printType``, ``orderId``... Answers ``{"success", "code", "message",
  "time", "data": {"taskId", "kuaidinum", "kuaidicom", "label"}}``; refusals use the
  documented codes: 30001 bad parameters (an unknown ``kuaidicom``, a missing sender or
  recipient field, SF Express without the recipient's mobile, a repeated ``orderId``), 30002
  bad sign, 30003 wrong key, -1 server error (during an outage the control API starts).
- ``GET /chaxun?com=&nu=`` — a plain tracking page.
- Pushes: form ``param`` (the whole track, newest first) + ``sign`` (MD5 of param + salt).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

from infra.local.emulators.carrier.journeys import (
    BEIJING,
    CARRIER_NAMES,
    KUAIDI100,
    KUAIDI100_NAMES,
    TERMINAL,
    Parcel,
    occurred,
    parse_time,
    waybill_number,
)

# The carriers whose e-waybills this desk issues (Kuaidi100 company codes).
COMPANIES = frozenset(CARRIER_NAMES)
PRINT_TYPES = frozenset({"NON", "IMAGE", "HTML", "CLOUD", "ORDERFIRST"})
MOBILE_DIGITS = 11


class Kuaidi100Desk:
    """Kuaidi100's side of the carrier emulator (mixed into ``CarrierEmulator``)."""

    url: str
    step_seconds: float
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
        if self._outage(KUAIDI100):
            return _answer("500", "服务器错误")
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

    def order_waybill(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``/label/order`` with ``method=order``: a waybill for the order, or the refusal."""
        if self._outage(KUAIDI100):
            return _label_answer(-1, "服务器错误")
        if form.get("method") != "order":
            return _label_answer(30001, "参数错误：method 只支持 order")
        if form.get("key") != self._secrets["key"]:
            return _label_answer(30003, "账号信息不正确")
        t, sign, param_text = form.get("t", ""), form.get("sign", ""), form.get("param", "")
        if not t.isdigit() or not sign or not param_text:
            return _label_answer(30001, "参数错误：t、sign、param 为必填")
        expected = hashlib.md5(
            (param_text + t + self._secrets["key"] + self._secrets["secret"]).encode()
        ).hexdigest()
        if not hmac.compare_digest(expected.upper(), sign):
            return _label_answer(30002, "验证签名失败")
        try:
            param = json.loads(param_text)
        except ValueError:
            param = None
        if not isinstance(param, dict):
            return _label_answer(30001, "参数错误：param 不是 JSON 对象")
        problem = _order_problem(param)
        if problem:
            return _label_answer(30001, f"参数错误：{problem}")
        company = str(param["kuaidicom"])
        order_id = str(param.get("orderId") or "").strip() or uuid.uuid4().hex
        with self._lock:
            if any(p.shipment_id == order_id for p in self._parcels.values()):
                return _label_answer(30001, f"参数错误：orderId {order_id} 重复下单")
            number = waybill_number(company, order_id)
            parcel = self._new_parcel(number, company, shipment_id=order_id)
            if param.get("printType", "NON") in ("IMAGE", "HTML"):
                parcel.label_url = f"{self.url}/label/image/{parcel.label_reference}"
            self._save()
        return {
            **_label_answer(200, "success"),
            "data": {
                "taskId": parcel.label_reference,
                "kuaidinum": parcel.tracking_number,
                "kuaidicom": company,
                "label": parcel.label_url,
                "kdComOrderNum": order_id,
            },
        }

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

    def kuaidi100_push(self, parcel: Parcel) -> tuple[bytes, dict[str, str]]:
        newest_first = sorted(parcel.events, key=occurred, reverse=True)
        current = parcel.events[-1]
        state = main_state(current["code"])
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
                    "time": kuaidi100_time(event["occurred_at"]),
                    "ftime": kuaidi100_time(event["occurred_at"]),
                    "status": KUAIDI100_NAMES.get(event["code"], ""),
                    "statusCode": event["code"],
                    "areaCode": event["area_code"],
                    "areaName": f"{event['region']},{event['city']}",
                }
                for event in newest_first
            ],
        }
        if parcel.estimated_delivery and not finished:
            result["arrivalTime"] = kuaidi100_time(parcel.estimated_delivery)[:13]
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


def _order_problem(param: Mapping[str, Any]) -> str | None:
    """What the e-waybill API refuses in an order's ``param`` (``None``: nothing)."""
    company = param.get("kuaidicom")
    if not isinstance(company, str) or not company:
        return "kuaidicom 为必填"
    if company not in COMPANIES:
        return f"kuaidicom 不支持：{company}"
    if not str(param.get("partnerId") or "").strip():
        return "partnerId 为必填（电子面单客户账户或月结账号）"
    print_type = param.get("printType", "NON")
    if print_type not in PRINT_TYPES:
        return f"printType 不支持：{print_type}"
    if print_type in ("CLOUD", "ORDERFIRST") and not param.get("siid"):
        return "printType 为 CLOUD 或 ORDERFIRST 时 siid 为必填"
    for role, label in (("sendMan", "寄件人"), ("recMan", "收件人")):
        man = param.get(role)
        if not isinstance(man, dict):
            return f"{role}（{label}信息）为必填"
        for name in ("name", "printAddr"):
            if not str(man.get(name) or "").strip():
                return f"{role}.{name}（{label}）为必填"
        if not str(man.get("mobile") or "").strip() and not str(man.get("tel") or "").strip():
            return f"{role}.mobile 与 {role}.tel 不能同时为空（{label}电话）"
    mobile = str(param["recMan"].get("mobile") or "").strip()
    if company == "shunfeng" and not (mobile.isdigit() and len(mobile) == MOBILE_DIGITS):
        return "顺丰速运要求收件人手机号 recMan.mobile（11 位）"
    return None


def _label_answer(code: int, message: str) -> dict[str, Any]:
    return {
        "success": code == 200,
        "code": code,
        "message": message,
        "time": int(time.time() * 1000),
        "data": None,
    }


def _answer(code: str, message: str) -> dict[str, Any]:
    return {"result": code == "200", "returnCode": code, "message": message}


def main_state(code: str) -> str:
    """A (sub-)state code's main state: 1002 -> 0, 301 -> 3, 5 -> 5."""
    if code.startswith("100") and len(code) == 4:
        return "0"
    return code[0] if len(code) == 3 else code


def kuaidi100_time(iso: str) -> str:
    return parse_time(iso).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
