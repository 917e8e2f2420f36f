"""The local stand-in for API Gateway's WebSocket API: handlers called with API Gateway-shaped
events, a refused $connect refuses the handshake, and the @connections endpoint is as strict as
AWS's (signed requests only, 410 GoneException for an unknown connection)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from infra.local.websocket import SocketServer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FakeApp:
    """Three handlers that record their events; $connect wants ?ticket=good."""

    app_name = "orderdesk"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        routes = {"$connect": "connect", "$default": "message", "$disconnect": "disconnect"}
        self.websocket_handlers = {
            route: SimpleNamespace(name=name) for route, name in routes.items()
        }
        self.handler_map = {name: self._handler(route) for route, name in routes.items()}

    def _handler(self, route: str) -> Any:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.events.append(event)
            if route == "$connect":
                ticket = (event.get("queryStringParameters") or {}).get("ticket")
                return {"statusCode": 200 if ticket == "good" else 401}
            return {"statusCode": 200}

        return handle

    def connection_ids(self, route: str) -> list[str]:
        return [
            e["requestContext"]["connectionId"]
            for e in self.events
            if e["requestContext"]["routeKey"] == route
        ]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApp, SocketServer]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app = FakeApp()
    server = SocketServer(app, stage="local", ws_port=_free_port(), callback_port=_free_port())
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.run(stop),))
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.ws_port)) == 0:
                break
        time.sleep(0.05)
    yield app, server
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)
    loop.close()


def management(server: SocketServer) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://127.0.0.1:{server.callback_port}",
        region_name="us-east-1",
    )


def test_a_refused_connect_refuses_the_handshake(server: tuple[FakeApp, SocketServer]) -> None:
    app, socket_server = server
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{socket_server.ws_port}/?ticket=bad", open_timeout=5)
    assert refused.value.response.status_code == 401
    (event,) = app.events
    assert event["requestContext"]["eventType"] == "CONNECT"
    assert event["queryStringParameters"] == {"ticket": "bad"}


def test_posts_reach_the_socket_and_messages_reach_the_handler(
    server: tuple[FakeApp, SocketServer],
) -> None:
    app, socket_server = server
    with connect(f"ws://127.0.0.1:{socket_server.ws_port}/?ticket=good", open_timeout=5) as ws:
        (connection_id,) = app.connection_ids("$connect")
        management(socket_server).post_to_connection(
            ConnectionId=connection_id, Data=json.dumps({"type": "message"}).encode()
        )
        assert json.loads(ws.recv(timeout=2)) == {"type": "message"}
        ws.send('{"type": "ping"}')
        deadline = time.monotonic() + 5
        while not app.connection_ids("$default") and time.monotonic() < deadline:
            time.sleep(0.05)
        (message,) = [e for e in app.events if e["requestContext"]["routeKey"] == "$default"]
        assert message["body"] == '{"type": "ping"}'
        assert message["requestContext"]["connectionId"] == connection_id
    deadline = time.monotonic() + 5
    while not app.connection_ids("$disconnect") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.connection_ids("$disconnect") == [connection_id]
    with pytest.raises(ClientError) as gone:
        management(socket_server).post_to_connection(ConnectionId=connection_id, Data=b"x")
    assert gone.value.response["Error"]["Code"] == "GoneException"


def test_unsigned_posts_are_forbidden(server: tuple[FakeApp, SocketServer]) -> None:
    _, socket_server = server
    response = requests.post(
        f"http://127.0.0.1:{socket_server.callback_port}/@connections/abc", data=b"x", timeout=5
    )
    assert response.status_code == 403
