"""The WeChat Pay emulator's HTTP side: ``/v3`` API calls (answers signed with the key the
request named in ``Wechatpay-Serial``), the unsigned bill download, and the ``/_emulator``
controls a person or a test uses in place of the shopper's phone.
"""

from __future__ import annotations

import contextlib
import html
import json
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from infra.local.emulators.cny import yuan
from infra.local.emulators.wechat_pay_keys import CERTIFICATE, UnknownSerial
from infra.local.emulators.wechat_pay_requests import ApiError, parse_json

if TYPE_CHECKING:
    from infra.local.emulators.wechat_pay import Order, WeChatPayEmulator

MAX_BODY_BYTES = 1024 * 1024


def handler_for(emulator: WeChatPayEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            self._answer_serial: str | None = None
            try:
                try:
                    self._answer_serial = emulator.platform_keys.answer_serial(
                        self.headers.get("Wechatpay-Serial")
                    )
                except UnknownSerial:
                    raise ApiError(
                        400, "PARAM_ERROR", "Wechatpay-Serial names no platform key"
                    ) from None
                body = self._body()
                path = urllib.parse.urlsplit(self.path).path
                if path == "/v3/billdownload/file" and method == "GET":
                    content, content_type = emulator.download_bill(
                        self.path, self.headers.get("Authorization")
                    )
                    self._send(200, content, content_type)  # unsigned, as WeChat Pay does
                elif path.startswith("/v3/"):
                    status, answer = emulator.handle_api(
                        method, self.path, body, self.headers.get("Authorization")
                    )
                    self._send_signed(status, answer)
                elif path.startswith("/_emulator/"):
                    self._control(method, path, body)
                else:
                    self._send_signed(404, {"code": "NOT_FOUND", "message": "no such path"})
            except ApiError as error:
                self._send_signed(error.status, {"code": error.code, "message": error.message})
            except Exception as error:  # noqa: BLE001 - answer as WeChat Pay does, keep serving
                message = f"{type(error).__name__}: {error}"
                self._send_signed(500, {"code": "SYSTEM_ERROR", "message": message})

        def _control(self, method: str, path: str, body: bytes) -> None:
            segments = [urllib.parse.unquote(part) for part in path.split("/")[2:]]
            match method, segments:
                case "GET", ["notifications"]:
                    self._send_json(200, {"deliveries": emulator.deliveries()})
                case "POST", ["transactions", out_trade_no, "pay"]:
                    total = None
                    if body.strip():
                        override = parse_json(body)
                        total = override.get("total")
                        if total is not None and (
                            not isinstance(total, int) or isinstance(total, bool) or total < 1
                        ):
                            raise ApiError(400, "PARAM_ERROR", "total: a positive integer")
                    self._send_json(200, emulator.pay(out_trade_no, total=total))
                case "POST", ["callback-key"]:
                    emulator.sign_callbacks_with(str(parse_json(body).get("key")))
                    self._send_json(200, {"key": emulator.platform_keys.callback_key})
                case "POST", ["transactions", out_trade_no, "notify"]:
                    self._send_json(202, {"delivery": emulator.replay(out_trade_no)})
                case "GET", ["qr", token]:
                    status, page = pay_page(emulator.qr_order(token), token)
                    self._send(status, page.encode(), "text/html; charset=utf-8")
                case "POST", ["qr", token, "pay"]:
                    with contextlib.suppress(ApiError):  # the page shows the order's state
                        emulator.pay_by_token(token)
                    self.send_response(303)
                    self.send_header("Location", f"/_emulator/qr/{urllib.parse.quote(token)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                case _:
                    self._send_json(404, {"code": "NOT_FOUND", "message": "no such path"})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ApiError(413, "PARAM_ERROR", "the body is too large")
            return self.rfile.read(length) if length > 0 else b""

        def _send_signed(self, status: int, answer: dict[str, Any] | None) -> None:
            body = b"" if answer is None else json.dumps(answer, ensure_ascii=False).encode()
            serial = self._answer_serial or emulator.platform_keys.serial_for(CERTIFICATE)
            self._send(status, body, "application/json", emulator.signed_headers(body, serial))

        def _send_json(self, status: int, answer: dict[str, Any]) -> None:
            self._send(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-ID", uuid.uuid4().hex)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the stack's console for the app's own logs

    return Handler


def pay_page(order: Order | None, token: str, message: str = "") -> tuple[int, str]:
    """What scanning a code_url opens: the order and a Pay button while it is unpaid."""
    if order is None:
        return 404, _page("WeChat Pay", "<p>This QR code is unknown or has expired.</p>")
    state, description, total = order.trade_state, order.description, order.total
    escaped_token = html.escape(urllib.parse.quote(token, safe=""))
    button = (
        f'<form method="post" action="/_emulator/qr/{escaped_token}/pay">'
        '<button type="submit">Pay</button></form>'
        if state == "NOTPAY"
        else f"<p><strong>{html.escape(order.trade_state_desc)}</strong> ({state})</p>"
    )
    content = (
        f"<p>{html.escape(description)}</p>"
        f"<p class='amount'>¥{yuan(total)}</p>"
        f"<p>Order {html.escape(order.out_trade_no or '')}</p>"
        f"{f'<p>{html.escape(message)}</p>' if message else ''}{button}"
    )
    return 200, _page("WeChat Pay", content)


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:24rem;margin:3rem auto;text-align:center}"
        ".amount{font-size:2rem}button{font-size:1.2rem;padding:.5rem 2rem;background:#07c160;"
        "color:#fff;border:0;border-radius:4px}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{content}</body></html>"
    )
