"""The live support WebSocket: API Gateway's ``$connect``, ``$disconnect`` and ``$default``.

A browser cannot send a bearer token on a WebSocket, so ``$connect`` takes a single-use
ticket (``POST /support/socket-tickets``) in the query string; a missing, used or expired
ticket is refused with 401 and API Gateway drops the connection. Clients only listen:
messages they send are answered with ``{"type": "pong"}`` when they are a ping and ignored
otherwise (writing goes through ``POST /support/conversations/{id}/messages``).

Chalice wraps WebSocket handlers only when they are registered on the app itself (a
blueprint's would reach Lambda unwrapped), so ``app.py`` registers these three bodies.
"""

from __future__ import annotations

import json
from typing import Any

from chalice.app import WebsocketEvent

from chalicelib.adapters import live_connections
from chalicelib.services import support


def on_connect(event: WebsocketEvent) -> dict[str, Any]:
    query = event.to_dict().get("queryStringParameters") or {}
    if not support.connect(event.connection_id, query.get("ticket")):
        return {"statusCode": 401}
    return {"statusCode": 200}


def on_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    support.disconnect(event.connection_id)
    return {"statusCode": 200}


def on_message(event: WebsocketEvent) -> dict[str, Any]:
    try:
        message = json.loads(event.body)
    except ValueError:
        message = None
    if isinstance(message, dict) and message.get("type") == "ping":
        live_connections.post(event.connection_id, {"type": "pong"})
    return {"statusCode": 200}
