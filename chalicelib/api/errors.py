"""The one place where errors become HTTP responses.

Every error body has the shape ``{"error": code, "message": text, "details": ...}``.
Views raise; ``api.register`` wraps every view with ``as_error_response``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request
from pydantic import ValidationError

from chalicelib.domain import errors as domain
from chalicelib.observability import logger

JSON_HEADERS = {"Content-Type": "application/json"}


class ApiError(Exception):
    """An error decided at the HTTP edge (bad JSON, missing group, oversized body)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def unauthorized(message: str = "A valid bearer token is required.") -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str = "You may not do this.") -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


def validation_error(message: str, details: Any = None) -> ApiError:
    return ApiError(400, "validation_error", message, details)


# Domain error class -> HTTP status. Subclasses inherit their parent's status unless listed.
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.NotFound: 404,
    domain.InvalidInput: 400,
    domain.IdempotencyKeyReused: 422,
    domain.CarrierUnavailable: 502,
    domain.Conflict: 409,
    domain.ServiceUnavailable: 503,
    domain.Forbidden: 403,
    domain.TooManyRequests: 429,
    domain.Gone: 410,
    domain.Busy: 503,
    domain.DomainError: 409,
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return Response(
        body=error_body(code, message, details), status_code=status, headers=dict(JSON_HEADERS)
    )


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "body",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _status_for(exc: domain.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 409


def response_for(exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        details = validation_details(exc)
        fields = ", ".join(d["field"] for d in details)
        return error_response(400, "validation_error", f"Invalid request: {fields}.", details)
    if isinstance(exc, domain.DomainError):
        response = error_response(_status_for(exc), exc.code, exc.message, exc.details)
        retry_after = getattr(exc, "retry_after_seconds", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
    logger.exception("unhandled error")
    return error_response(500, "internal_error", "An internal error occurred.")


# Chalice answers some requests itself, before any view runs, as {"Code", "Message"}.
CHALICE_CODES = {
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowedError": "method_not_allowed",
    "BadRequest": "bad_request",
    "InternalServerError": "internal_error",
}


def in_our_shape(response: Response) -> Response:
    """A response Chalice built itself, rewritten as ``{"error", "message", "details"}``."""
    body = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return response
    code = CHALICE_CODES.get(str(body["Code"]))
    if code is None:
        return response
    details = None
    if code == "unsupported_media_type":
        message = "This route takes a JSON body: send Content-Type: application/json."
        sent = str(body["Message"]).partition(": ")[2]
        details = {"content_type": sent, "accepted": ["application/json"]}
    else:
        message = str(body["Message"])
    headers = {**response.headers, **JSON_HEADERS}
    return Response(
        body=error_body(code, message, details), status_code=response.status_code, headers=headers
    )


def _chalice_errors_in_our_shape(request: Request, get_response: Callable[..., Any]) -> Response:
    return in_our_shape(get_response(request))


def register(app: Chalice) -> None:
    """Every answer Chalice gives without a view (415, 405) in our error shape too."""
    app.register_middleware(_chalice_errors_in_our_shape, "http")


def as_error_response(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - this is the one place errors are mapped
            return response_for(exc)

    return wrapped
