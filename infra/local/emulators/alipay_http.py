"""The Alipay emulator's HTTP side: ``/gateway.do`` (form POST or GET query, answers signed,
or a fault a test injected), the cashier pages behind a QR code or page pay, the bill
download, and the ``/_emulator`` controls a test uses in place of the shopper.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from infra.local.emulators.alipay_notify import is_loopback_url
from infra.local.emulators.alipay_requests import TradeConflict
from infra.local.emulators.cny import yuan

if TYPE_CHECKING:
    from infra.local.emulators.alipay import AlipayEmulator, Trade

MAX_BODY_BYTES = 1024 * 1024

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;color:#222}}
.amount{{font-size:2rem;color:#1677ff}}button{{font-size:1.1rem;padding:.6rem 1.6rem;
background:#1677ff;color:#fff;border:0;border-radius:6px;cursor:pointer}}</style></head>
<body><h1>支付宝 · {title}</h1>{content}
<p><small>Local Alipay emulator — no money moves.</small></p></body></html>
"""


def _page(title: str, content: str) -> bytes:
    return _PAGE.format(title=html.escape(title), content=content).encode("utf-8")


def _cashier(trade: Trade) -> bytes:
    details = (
        f"<p>{html.escape(trade.subject)}</p>"
        f'<p class="amount">¥{yuan(trade.total_fen)}</p>'
        f"<p>商户订单号 {html.escape(trade.out_trade_no)}</p>"
    )
    if trade.status not in (None, "WAIT_BUYER_PAY"):
        return _page("订单状态", details + f"<p>{html.escape(trade.status or '')}</p>")
    form = (
        f'<form method="post" action="/qr/{html.escape(trade.token)}/pay">'
        '<button type="submit" id="pay">确认付款 Pay</button></form>'
    )
    return _page("收银台", details + form)


def handler_for(emulator: AlipayEmulator) -> type[BaseHTTPRequestHandler]:
    class AlipayHandler(BaseHTTPRequestHandler):
        server_version = "AlipayEmulator/1.0"

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def _route(self, verb: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path
            try:
                body = self._body()
            except ValueError as error:
                self._send(400, "text/plain; charset=utf-8", str(error).encode())
                return
            segments = [s for s in path.split("/") if s]
            if path == "/gateway.do":
                self._gateway(parts.query, body)
            elif verb == "GET" and len(segments) == 2 and segments[0] == "qr":
                self._scan(segments[1])
            elif verb == "POST" and len(segments) == 3 and segments[::2] == ["qr", "pay"]:
                self._pay_page(segments[1])
            elif verb == "GET" and path == "/downloadBillFile.resource":
                self._bill(parts.query)
            elif segments[:1] == ["_emulator"]:
                self._control(verb, segments[1:], body)
            else:
                self._send_json(404, {"error": "not_found", "message": path})

        def _gateway(self, query: str, body: bytes) -> None:
            try:
                params = self._form(query, body)
            except ValueError as error:
                self._send(400, "text/plain; charset=utf-8", str(error).encode())
                return
            if emulator.take_outage():
                self._send(503, "text/plain; charset=utf-8", b"Service Unavailable")
                return
            node_name, node = emulator.gateway(params)
            if params.get("method") == "alipay.trade.page.pay":
                if node.get("code") != "10000":
                    message = f"{node.get('sub_code')}: {node.get('sub_msg')}"
                    self._send_html(400, _page("错误", f"<p>{html.escape(message)}</p>"))
                    return
                self._send_html(200, _cashier(emulator.scan(node["token"])))
                return
            self._send(200, "text/html;charset=utf-8", emulator.signed_json(node_name, node))

        def _scan(self, token: str) -> None:
            try:
                trade = emulator.scan(token)
            except KeyError:
                self._send_html(404, _page("二维码无效", "<p>二维码已失效</p>"))
                return
            self._send_html(200, _cashier(trade))

        def _pay_page(self, token: str) -> None:
            try:
                trade = emulator.scan(token)
                emulator.pay(trade.out_trade_no)
            except KeyError:
                self._send_html(404, _page("二维码无效", "<p>二维码已失效</p>"))
                return
            except TradeConflict:
                self._send_html(409, _cashier(trade))
                return
            if trade.return_url and is_loopback_url(trade.return_url):
                separator = "&" if "?" in trade.return_url else "?"
                target = (
                    trade.return_url
                    + separator
                    + urllib.parse.urlencode(emulator.return_params(trade))
                )
                self.send_response(303)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send_html(200, _page("支付成功", f"<p>已支付 ¥{yuan(trade.total_fen)}</p>"))

        def _bill(self, query: str) -> None:
            token = urllib.parse.parse_qs(query).get("token", [""])[0]
            try:
                name, archive = emulator.bill_archive(token)
            except KeyError:
                self._send(404, "text/plain; charset=utf-8", b"bill link expired")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header(
                "Content-Disposition",
                f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}",
            )
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive)

        def _control(self, verb: str, segments: list[str], body: bytes) -> None:
            if verb == "GET" and segments == ["notifications"]:
                self._send_json(200, {"notifications": emulator.notifications()})
                return
            if verb == "POST" and segments == ["faults"]:
                try:
                    fault = json.loads(body or b"{}").get("fault")
                    emulator.inject_fault(fault)
                except (ValueError, AttributeError) as error:
                    self._send_json(400, {"error": "bad_request", "message": str(error)})
                    return
                self._send_json(202, {"fault": fault})
                return
            if len(segments) < 2 or segments[0] != "trades":
                self._send_json(404, {"error": "not_found"})
                return
            out_trade_no, action = segments[1], segments[2:]
            try:
                if verb == "GET" and not action:
                    self._send_json(200, emulator.trade(out_trade_no))
                elif verb == "POST" and action == ["pay"]:
                    options = json.loads(body) if body.strip() else {}
                    if not isinstance(options, dict):
                        raise ValueError("expected a JSON object")
                    amount = options.get("total_amount")
                    if amount is not None and not isinstance(amount, str):
                        raise ValueError("total_amount is a yuan string")
                    self._send_json(200, emulator.pay(out_trade_no, amount))
                elif verb == "POST" and action == ["notify"]:
                    notify_id = emulator.resend_notification(out_trade_no)
                    self._send_json(202, {"notify_id": notify_id})
                else:
                    self._send_json(404, {"error": "not_found"})
            except KeyError:
                self._send_json(404, {"error": "trade_not_found", "message": out_trade_no})
            except LookupError as error:
                self._send_json(404, {"error": "no_notification", "message": str(error)})
            except TradeConflict as error:
                self._send_json(409, {"error": "trade_not_payable", "message": str(error)})
            except ValueError as error:
                self._send_json(400, {"error": "bad_request", "message": str(error)})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("request body too large")
            return self.rfile.read(length) if length > 0 else b""

        @staticmethod
        def _form(query: str, body: bytes) -> dict[str, str]:
            params: dict[str, str] = {}
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            pairs += urllib.parse.parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, errors="strict"
            )
            for key, value in pairs:
                if key in params:
                    raise ValueError(f"parameter {key} given twice")
                params[key] = value
            return params

        def _send_json(self, status: int, document: Any) -> None:
            self._send(status, "application/json", json.dumps(document).encode())

        def _send_html(self, status: int, page: bytes) -> None:
            self._send(status, "text/html; charset=utf-8", page)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return AlipayHandler
