"""Live delivery to WebSocket clients through API Gateway's ``@connections`` management API.

The endpoint is configuration (``SUPPORT_SOCKET_CALLBACK_URL``): the WebSocket API's stage
URL in AWS (``https://<api-id>.execute-api.<region>.amazonaws.com/<stage>``), the local
stack's WebSocket server locally. Without it nothing is pushed and clients poll.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.observability import logger
from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=2)
def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=3
    )
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, config=config)


def reset() -> None:
    _client.cache_clear()


def configured() -> bool:
    return bool(get_settings().support_socket_callback_url)


def post(connection_id: str, payload: Mapping[str, Any]) -> bool | None:
    """Send ``payload`` as JSON to one connection: True when sent, False when the connection
    is gone (the caller forgets it), None when it could not be sent for another reason."""
    endpoint = get_settings().support_socket_callback_url
    if not endpoint:
        return None
    data = json.dumps(payload, ensure_ascii=False, default=str).encode()
    try:
        _client(endpoint).post_to_connection(ConnectionId=connection_id, Data=data)
    except Exception as exc:  # noqa: BLE001 - a push is best effort; the message is stored
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("GoneException", "410"):
            return False
        logger.warning("could not push to a connection", extra={"error": code or str(exc)})
        return None
    return True
