"""CORS for browser storefronts: only the origins configured for the stage, never ``*``.

Chalice's CORSConfig allows a single static origin, so the origin is echoed here when it
is on the stage's list, and every route path gets an OPTIONS preflight view.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.settings import get_settings

ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSE_HEADERS = "Location, Idempotent-Replayed, Retry-After"
MAX_AGE_SECONDS = "600"


def _allowed_origin(request: Request) -> str | None:
    headers = request.headers or {}
    origin = headers.get("origin")
    if origin and origin in get_settings().cors_allow_origins:
        return origin
    return None


def _add_cors_headers(request: Any, get_response: Any) -> Response:
    response = get_response(request)
    origin = _allowed_origin(request)
    response.headers["Vary"] = "Origin"
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def _preflight_view(app: Chalice, methods: list[str]) -> Any:
    allow_methods = ", ".join(sorted({*methods, "OPTIONS"}))

    def preflight(**_path_params: str) -> Response:
        origin = _allowed_origin(app.current_request)
        if origin is None:
            return Response(body="", status_code=204)
        return Response(
            body="",
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": allow_methods,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE_SECONDS,
            },
        )

    return preflight


def register(app: Chalice) -> None:
    """Add an OPTIONS view to every route path (call after all blueprints are registered)."""
    for path, views in list(app.routes.items()):
        if "OPTIONS" not in views:
            app.route(path, methods=["OPTIONS"], name=f"preflight{path}")(
                _preflight_view(app, list(views))
            )
    app.register_middleware(_add_cors_headers, "http")
