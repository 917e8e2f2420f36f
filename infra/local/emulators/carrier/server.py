"""HTTP for the local carrier, and running it on its own.

    python -m infra.local.emulators.carrier --port 8400 --state-dir .local [--step-seconds 20]
                                            [--formats kuaidi100,aftership,easypost]
                                            [--webhook-url http://127.0.0.1:8000]

Routes: Kuaidi100 ``POST /poll``, ``POST /label/order``, ``GET /chaxun``; EasyPost
``/v2/...``; AfterShip ``POST /tracking/2024-04/trackings``; and the control API under
``/_emulator`` (``parcels``, ``parcels/{n}/advance|push``, ``fast-forward``, ``outage``).
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from infra.local.emulators.carrier.aftership import API_VERSION as AFTERSHIP_VERSION
from infra.local.emulators.carrier.journeys import FORMATS, KUAIDI100, EmulatorError

if TYPE_CHECKING:
    from infra.local.emulators.carrier.core import CarrierEmulator

# A 1x1 PNG: the labels the desks hand out are links, and something must be at the end.
LABEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def handler_for(emulator: CarrierEmulator) -> type[BaseHTTPRequestHandler]:
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
                elif segments[:1] == ["v2"]:
                    headers = dict(self.headers.items())
                    self._json(*emulator.easypost("GET", segments[1:], headers, b""))
                elif segments[:2] == ["label", "image"] or segments[:1] == ["labels"]:
                    self._send(200, LABEL_PNG, "image/png")  # what a printed label links to
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
                elif parts.path == "/label/order":
                    form = _form(raw)
                    # The method may come in the query string, as Kuaidi100's samples send it.
                    query = dict(urllib.parse.parse_qsl(parts.query))
                    if "method" not in form and "method" in query:
                        form["method"] = query["method"]
                    self._json(200, emulator.order_waybill(form))
                elif segments[:1] == ["v2"]:
                    headers = dict(self.headers.items())
                    self._json(*emulator.easypost("POST", segments[1:], headers, raw))
                elif segments == ["tracking", AFTERSHIP_VERSION, "trackings"]:
                    headers = dict(self.headers.items())
                    self._json(*emulator.aftership_create_tracking(headers, raw))
                elif segments == ["_emulator", "outage"]:
                    options = _json_object(raw)
                    provider = str(options.get("provider", ""))
                    requests = options.get("requests", 1)
                    self._json(200, {"outages": emulator.fail_next(provider, requests)})
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
    parser.add_argument(
        "--webhook-url", help="the app's base URL, for EasyPost and AfterShip webhooks"
    )
    options = parser.parse_args(argv)
    from infra.local.emulators.carrier.core import CarrierEmulator

    emulator = CarrierEmulator(
        options.state_dir,
        options.step_seconds,
        push_formats=tuple(name.strip() for name in options.formats.split(",") if name.strip()),
        webhook_url=options.webhook_url,
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
