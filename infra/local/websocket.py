"""The local stand-in for API Gateway's WebSocket API and its ``@connections`` endpoint.

Neither Chalice nor moto serves a WebSocket (moto's management API accepts posts and delivers
nothing), so this process does what API Gateway does:

* accepts WebSocket connections on ``--ws-port`` and calls the app's own ``$connect``,
  ``$default`` and ``$disconnect`` handlers with API Gateway-shaped events. A ``$connect``
  answering anything but 2xx refuses the handshake with that status, as API Gateway does;
* serves the management API on ``--callback-port`` (``SUPPORT_SOCKET_CALLBACK_URL``):
  ``POST /@connections/{id}`` sends the body to that connection, ``GET`` describes it,
  ``DELETE`` closes it. As in AWS, an unsigned request is 403 ``ForbiddenException``, an
  unknown connection 410 ``GoneException``, and a body over 128 KB 413
  ``PayloadTooLargeException``.

    python -m infra.local.websocket --ws-port 8202 --callback-port 8203
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from infra.local.gateway import lambda_context, load_app, read_env_file, set_parent_death_signal

log = logging.getLogger("infra.local.websocket")

HOST = "127.0.0.1"
API_ID = "localws"
MAX_POST_BYTES = 128 * 1024  # API Gateway's limit for a WebSocket message
HANDLER_TIMEOUT_SECONDS = 29.0
Handler = Callable[[dict[str, Any], Any], Any]


def _connection_id() -> str:
    # API Gateway's ids are 12 random bytes, base64 ("L0SM9cOFvHcCIhw=" style).
    return base64.b64encode(secrets.token_bytes(10)).decode()


class SocketServer:
    def __init__(self, app: Any, *, stage: str, ws_port: int, callback_port: int) -> None:
        self.stage = stage
        self.ws_port = ws_port
        self.callback_port = callback_port
        self.handlers: dict[str, tuple[str, Handler]] = {
            route: (config.name, app.handler_map[config.name])
            for route, config in app.websocket_handlers.items()
        }
        self.app_name = app.app_name
        self.connections: dict[str, ServerConnection] = {}
        self.connected_at: dict[str, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- the app's handlers ----------------------------------------------------------------

    def _event(self, route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
        now = time.time()
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        context = {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(self.connected_at.get(connection_id, now) * 1000),
            "requestTimeEpoch": int(now * 1000),
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestId": uuid.uuid4().hex,
            "extendedRequestId": uuid.uuid4().hex,
            "identity": {"sourceIp": HOST},
            "domainName": f"{HOST}:{self.ws_port}",
            "connectionId": connection_id,
            "apiId": API_ID,
        }
        if event_type == "MESSAGE":
            context["messageId"] = base64.b64encode(secrets.token_bytes(10)).decode()
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        event.update(extra)
        return event

    def _call(self, route: str, event: dict[str, Any]) -> int:
        entry = self.handlers.get(route)
        if entry is None:
            return 200
        name, handler = entry
        context = lambda_context(f"{self.app_name}-{self.stage}-{name}", HANDLER_TIMEOUT_SECONDS)
        try:
            result = handler(event, context)
        except Exception:
            log.exception("%s handler failed", route)
            return 500
        status = (result or {}).get("statusCode", 200) if isinstance(result, dict) else 200
        return int(status)

    # --- WebSocket side --------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        connection_id = _connection_id()
        self.connected_at[connection_id] = time.time()
        query = parse_qs(urlsplit(request.path).query)
        headers = {name: value for name, value in request.headers.raw_items()}
        event = self._event(
            "$connect",
            connection_id,
            headers=headers,
            queryStringParameters={k: v[-1] for k, v in query.items()} or None,
            multiValueQueryStringParameters=query or None,
        )
        status = await asyncio.to_thread(self._call, "$connect", event)
        if not 200 <= status < 300:
            self.connected_at.pop(connection_id, None)
            return connection.respond(HTTPStatus(status), f"{HTTPStatus(status).phrase}\n")
        connection.connection_id = connection_id  # type: ignore[attr-defined]
        return None

    async def _session(self, connection: ServerConnection) -> None:
        connection_id: str = connection.connection_id  # type: ignore[attr-defined]
        self.connections[connection_id] = connection
        try:
            async for message in connection:
                body = message if isinstance(message, str) else message.decode("utf-8", "replace")
                event = self._event("$default", connection_id, body=body)
                await asyncio.to_thread(self._call, "$default", event)
        except Exception:  # noqa: BLE001 - the client went away mid-message
            pass
        finally:
            self.connections.pop(connection_id, None)
            event = self._event(
                "$disconnect",
                connection_id,
                disconnectStatusCode=connection.close_code or 1006,
                disconnectReason=connection.close_reason or "",
            )
            await asyncio.to_thread(self._call, "$disconnect", event)
            self.connected_at.pop(connection_id, None)

    # --- the @connections management API ---------------------------------------------------

    def send(self, connection_id: str, data: bytes) -> bool:
        connection = self.connections.get(connection_id)
        if connection is None or self.loop is None:
            return False
        text = data.decode("utf-8", "replace")
        future = asyncio.run_coroutine_threadsafe(connection.send(text), self.loop)
        try:
            future.result(timeout=5)
        except Exception:  # noqa: BLE001 - a closed socket is a gone connection
            return False
        return True

    def close(self, connection_id: str) -> bool:
        connection = self.connections.get(connection_id)
        if connection is None or self.loop is None:
            return False
        asyncio.run_coroutine_threadsafe(connection.close(), self.loop)
        return True

    def management_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Management(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _reply(
                self, status: int, body: dict[str, Any] | None = None, error: str = ""
            ) -> None:
                payload = json.dumps(body if body is not None else {"message": error}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _connection_id(self) -> str | None:
                path = unquote(urlsplit(self.path).path)
                marker = "/@connections/"
                if marker not in path:
                    return None
                return path.split(marker, 1)[1]

            def _authorised(self) -> bool:
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("AWS4-HMAC-SHA256 "):
                    self._reply(403, error="ForbiddenException")
                    return False
                return True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                connection_id = self._connection_id()
                if not self._authorised():
                    return
                if connection_id is None:
                    self._reply(404, error="NotFoundException")
                elif length > MAX_POST_BYTES:
                    self._reply(413, error="PayloadTooLargeException")
                elif not server.send(connection_id, data):
                    self._reply(410, error="GoneException")
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_GET(self) -> None:
                connection_id = self._connection_id()
                if not self._authorised():
                    return
                if connection_id not in server.connections:
                    self._reply(410, error="GoneException")
                    return
                connected = datetime.fromtimestamp(server.connected_at[connection_id], UTC)
                self._reply(
                    200,
                    {
                        "connectedAt": connected.isoformat(),
                        "identity": {"sourceIp": HOST},
                        "lastActiveAt": datetime.now(UTC).isoformat(),
                    },
                )

            def do_DELETE(self) -> None:
                connection_id = self._connection_id()
                if not self._authorised():
                    return
                if connection_id is None or not server.close(connection_id):
                    self._reply(410, error="GoneException")
                    return
                self.send_response(204)
                self.end_headers()

        return Management

    # --- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.loop = asyncio.get_running_loop()
        http = ThreadingHTTPServer((HOST, self.callback_port), self.management_handler())
        threading.Thread(target=http.serve_forever, name="connections-api", daemon=True).start()
        async with serve(self._session, HOST, self.ws_port, process_request=self._process_request):
            log.info(
                "WebSocket API on ws://%s:%d, @connections on http://%s:%d",
                HOST,
                self.ws_port,
                HOST,
                self.callback_port,
            )
            await stop.wait()
        http.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.websocket")
    parser.add_argument("--app", default="app:app")
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--callback-port", type=int, required=True)
    parser.add_argument("--env-file", type=Path)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s websocket[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(logging.INFO)
    if args.parent_pid:
        set_parent_death_signal()
        if os.getppid() != args.parent_pid:
            return 1
    if args.env_file:
        os.environ.update(read_env_file(args.env_file))
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = load_app(args.app)
    server = SocketServer(
        app,
        stage=os.environ.get("STAGE", "local"),
        ws_port=args.ws_port,
        callback_port=args.callback_port,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if args.parent_pid:

            async def watch_parent() -> None:
                while not stop.is_set():
                    await asyncio.sleep(1.0)
                    if os.getppid() != args.parent_pid:
                        stop.set()

            watcher = loop.create_task(watch_parent())
            await server.run(stop)
            watcher.cancel()
            return
        await server.run(stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
