"""Serve the Chalice app over HTTP the way API Gateway (REST API, Lambda proxy) and Lambda do.

``python -m infra.local.gateway --port 8000 [--workers 4] [--app app:app]``

Chalice keeps ``current_request`` on the app object, so one process may handle only one
request at a time, exactly like one Lambda instance. The parent process binds the listening
socket and forks ``--workers`` processes; each imports the app (after the app's environment
is in place) and then accepts and serves one connection at a time. Concurrent requests
therefore really run side by side, each in its own interpreter.

In front of the app sits what API Gateway does before and after Lambda:

* route matching (a literal path segment wins over ``{param}``; no route or no such method on
  a route is ``MISSING_AUTHENTICATION_TOKEN``), at the root as through a custom domain and
  under ``/api`` as through the execute-api URL with its stage,
* the body size limit (10 MB, ``REQUEST_TOO_LARGE``),
* built-in TOKEN authorizers: a missing identity header or an authorizer that raises
  ``Exception("Unauthorized")`` is 401, a policy that does not allow the method ARN is 403,
  anything else that goes wrong is 500; the authorizer context reaches the view as strings,
* the Lambda proxy event (headers and multi-value headers as sent, decoded multi-value query
  strings, base64 bodies for the app's binary media types) and response mapping,
* the integration timeout (29 s) and Lambda's 6 MB response limit.

Gateway errors use our error shape through ``GATEWAY_RESPONSES``; production declares the same
responses (``swagger_gateway_responses`` renders them for the packaged API).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fnmatch
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from chalice.app import Chalice, ChaliceAuthorizer, CORSConfig, RouteEntry
from chalice.local import LambdaContext

from infra.local.web_apps import WebApps

log = logging.getLogger("infra.local.gateway")  # not __name__: these run as __main__

HOST = "127.0.0.1"
DEFAULT_WORKERS = 4
# API Gateway's hard limits, which the app meets in production.
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
MAX_LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
# What the local "deployment" is called in ARNs and the request context.
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "localapi01"
STAGE_NAME = "api"
# The identity source API Gateway reads when a built-in authorizer names no header.
DEFAULT_IDENTITY_HEADER = "Authorization"
# A worker whose app cannot be imported exits with this; retrying would fail the same way.
EXIT_APP_IMPORT_FAILED = 3
# Drain at most this much of an oversized body so the client can still read the 413.
_MAX_DRAIN_BYTES = 64 * 1024 * 1024
_CONNECTION_TIMEOUT_SECONDS = 60.0


# --- gateway responses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayResponse:
    """One of API Gateway's own responses, customised to our error shape."""

    status: int
    code: str
    message: str

    def body(self) -> bytes:
        return json.dumps({"error": self.code, "message": self.message, "details": None}).encode()


# Keyed by API Gateway's response type. The packaged API declares the same table.
GATEWAY_RESPONSES: dict[str, GatewayResponse] = {
    "UNAUTHORIZED": GatewayResponse(401, "unauthorized", "A valid bearer token is required."),
    "ACCESS_DENIED": GatewayResponse(403, "forbidden", "You may not do this."),
    # No such route or method. API Gateway says 403 "Missing Authentication Token" (or, when an
    # Authorization header was sent, reports an invalid signature); we answer 404 for both.
    "MISSING_AUTHENTICATION_TOKEN": GatewayResponse(404, "not_found", "No such resource."),
    "INVALID_SIGNATURE": GatewayResponse(404, "not_found", "No such resource."),
    "REQUEST_TOO_LARGE": GatewayResponse(
        413, "payload_too_large", "The request body is too large."
    ),
    "THROTTLED": GatewayResponse(429, "too_many_requests", "Too many requests; slow down."),
    "AUTHORIZER_FAILURE": GatewayResponse(500, "internal_error", "An internal error occurred."),
    "AUTHORIZER_CONFIGURATION_ERROR": GatewayResponse(
        500, "internal_error", "An internal error occurred."
    ),
    "INTEGRATION_TIMEOUT": GatewayResponse(504, "gateway_timeout", "The request took too long."),
    # A Lambda error or a malformed proxy response: API Gateway answers 502.
    "DEFAULT_5XX": GatewayResponse(502, "internal_error", "An internal error occurred."),
    "DEFAULT_4XX": GatewayResponse(400, "bad_request", "The request could not be handled."),
}


def swagger_gateway_responses(allow_origin: str | None = None) -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses`` for the packaged API, from the table above.

    ``allow_origin`` (one static origin per stage) lets browsers read these errors too.
    """
    rendered: dict[str, Any] = {}
    for response_type, response in GATEWAY_RESPONSES.items():
        entry: dict[str, Any] = {
            "responseTemplates": {"application/json": response.body().decode()},
            "responseParameters": {
                "gatewayresponse.header.Content-Type": "'application/json'",
            },
        }
        if not response_type.startswith("DEFAULT_"):
            # A status on a fallback would replace that of every response it stands in for.
            entry["statusCode"] = str(response.status)
        if allow_origin:
            entry["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] = (
                f"'{allow_origin}'"
            )
        rendered[response_type] = entry
    return rendered


# --- HTTP in and out -----------------------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    target: str  # the request target as sent: raw path plus query string
    headers: list[tuple[str, str]]
    body: bytes | None = None
    client_ip: str = HOST

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class _GatewayFailure(Exception):
    """Stops a request with one of API Gateway's own responses."""

    def __init__(self, response_type: str, reason: str = "") -> None:
        super().__init__(reason or response_type)
        self.response_type = response_type
        self.reason = reason


class _IntegrationTimeout(BaseException):
    """Raised into a view that overruns the integration timeout.

    A BaseException so that the app's catch-all error mapping cannot swallow it.
    """


# --- routing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteMatch:
    resource: str  # the route template, e.g. /products/{sku}
    path_parameters: dict[str, str]


class RouteTable:
    """Matches request paths to resources as API Gateway does: literal segments win."""

    def __init__(self, resources: Iterable[str]) -> None:
        self._resources = [(resource, _segments(resource)) for resource in resources]

    def match(self, raw_path: str) -> RouteMatch | None:
        # API Gateway drops one trailing slash and matches on the still-encoded path, so an
        # encoded "/" (%2F) stays inside its segment.
        if raw_path != "/" and raw_path.endswith("/"):
            raw_path = raw_path[:-1]
        request_segments = _segments(raw_path)
        best: tuple[tuple[int, ...], RouteMatch] | None = None
        for resource, segments in self._resources:
            if len(segments) != len(request_segments):
                continue
            captured: dict[str, str] = {}
            rank: list[int] = []
            for template, actual in zip(segments, request_segments, strict=True):
                if template.startswith("{") and template.endswith("}"):
                    if not actual:
                        break
                    captured[template[1:-1]] = unquote(actual)
                    rank.append(1)
                elif template == actual:
                    rank.append(0)
                else:
                    break
            else:
                candidate = (tuple(rank), RouteMatch(resource, captured))
                if best is None or candidate[0] < best[0]:
                    best = candidate
        return best[1] if best else None


def _segments(path: str) -> list[str]:
    return [] if path == "/" else path.split("/")[1:]


def media_type_matches(content_type: str | None, patterns: Iterable[str]) -> bool:
    """Whether a Content-Type falls under one of API Gateway's binaryMediaTypes."""
    if not content_type:
        return False
    base = content_type.split(";", 1)[0].strip().lower()
    for pattern in patterns:
        pattern = pattern.strip().lower()
        if pattern == "*/*" or pattern == base:
            return True
        if pattern.endswith("/*") and base.startswith(pattern[:-1]):
            return True
    return False


# --- authorizer policies -------------------------------------------------------------------------


def method_arn(method: str, raw_path: str) -> str:
    resource = raw_path[1:] if raw_path != "/" else "/"
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE_NAME}/{method}/{resource}"


def _arn_pattern_matches(pattern: str, arn: str) -> bool:
    # IAM resource globs: "*" is any run of characters, "?" any one character.
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(arn, escaped)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_allows(policy: Mapping[str, Any], arn: str) -> bool:
    """IAM evaluation of an authorizer's policy: an explicit Deny wins, then any Allow."""
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, Mapping):
            continue
        actions = [str(action).lower() for action in _as_list(statement.get("Action"))]
        if not any(action in ("execute-api:invoke", "execute-api:*", "*") for action in actions):
            continue
        resources = [str(resource) for resource in _as_list(statement.get("Resource"))]
        if not any(_arn_pattern_matches(resource, arn) for resource in resources):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        if effect == "allow":
            allowed = True
    return allowed


def _context_value(value: Any) -> str:
    # API Gateway hands authorizer context values to the integration as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the gateway ---------------------------------------------------------------------------------


class ApiGateway:
    """API Gateway's request pipeline in front of one Chalice app, in one process."""

    def __init__(
        self,
        app: Chalice,
        *,
        max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
        integration_timeout: float | None = INTEGRATION_TIMEOUT_SECONDS,
        cors_allow_origins: Iterable[str] = (),
        memory_size_mb: int = 1024,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.integration_timeout = integration_timeout
        self.cors_allow_origins = frozenset(cors_allow_origins)
        self.function_name = f"{app.app_name}-local"
        self.memory_size_mb = memory_size_mb
        self.routes = RouteTable(app.routes)
        self._policy_checked: set[str] = set()

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The whole pipeline, from request to response; never raises."""
        request_id = str(uuid.uuid4())
        try:
            response = self._handle(request, request_id)
        except _GatewayFailure as failure:
            if failure.reason:
                log.warning("%s %s: %s", request.method, request.target, failure.reason)
            response = self.gateway_response(failure.response_type, request)
        except Exception:
            log.exception("%s %s: the local gateway failed", request.method, request.target)
            response = self.gateway_response("DEFAULT_5XX", request)
        response.headers.append(("x-amzn-RequestId", request_id))
        response.headers.append(("x-amz-apigw-id", request_id[:13]))
        return response

    def gateway_response(self, response_type: str, request: HttpRequest) -> HttpResponse:
        template = GATEWAY_RESPONSES.get(response_type) or GATEWAY_RESPONSES["DEFAULT_5XX"]
        headers = [("Content-Type", "application/json")]
        origin = request.header("Origin")
        if origin and origin in self.cors_allow_origins:
            headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        return HttpResponse(template.status, headers, template.body())

    def _handle(self, request: HttpRequest, request_id: str) -> HttpResponse:
        if request.body is not None and len(request.body) > self.max_body_bytes:
            raise _GatewayFailure("REQUEST_TOO_LARGE")
        split = urlsplit(request.target)
        raw_path, stage_prefix, match = self._route(split.path or "/")
        views = self.app.routes.get(match.resource, {}) if match else {}
        route = views.get(request.method)
        if match is None or (route is None and request.method != "OPTIONS"):
            missing = "INVALID_SIGNATURE" if request.header("Authorization") else None
            raise _GatewayFailure(missing or "MISSING_AUTHENTICATION_TOKEN")
        if route is None:
            # A preflight for a path whose app defines no OPTIONS view: Chalice deploys a mock
            # integration answering with the route's CORS configuration, if it has one.
            return self._mock_preflight(views)

        event = self._event(request, split.query, raw_path, match, request_id)
        event["requestContext"]["path"] = f"{stage_prefix}{raw_path}"
        if route.authorizer is not None:
            authorizer_context = self._authorize(route, request, raw_path)
            event["requestContext"]["authorizer"] = authorizer_context
        return self._invoke(event, request_id)

    def _route(self, path: str) -> tuple[str, str, RouteMatch | None]:
        """Match ``path`` as a custom domain would (``/health``), else as the execute-api URL
        with its stage in front (``/api/health``); returns the path without the stage."""
        match = self.routes.match(path)
        stage_prefix = f"/{STAGE_NAME}"
        if match is None and (path == stage_prefix or path.startswith(f"{stage_prefix}/")):
            unstaged = path[len(stage_prefix) :] or "/"
            staged_match = self.routes.match(unstaged)
            if staged_match is not None:
                return unstaged, stage_prefix, staged_match
        return path, "", match

    def _mock_preflight(self, views: Mapping[str, RouteEntry]) -> HttpResponse:
        cors: CORSConfig | None = next(
            (view.cors for view in views.values() if view.cors is not None), None
        )
        if cors is None:
            raise _GatewayFailure("MISSING_AUTHENTICATION_TOKEN")
        headers = dict(cors.get_access_control_headers())
        headers["Access-Control-Allow-Methods"] = ",".join([*views, "OPTIONS"])
        return HttpResponse(200, list(headers.items()))

    # --- the Lambda proxy event ---

    def _event(
        self,
        request: HttpRequest,
        query: str,
        raw_path: str,
        match: RouteMatch,
        request_id: str,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        # API Gateway decodes query strings ("+" included) and keeps every value of a key.
        multi_query = parse_qs(query, keep_blank_values=True) if query else {}
        body, is_base64 = self._event_body(request)
        now = time.time()
        return {
            "resource": match.resource,
            "path": raw_path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": match.path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, match.resource).hex[:6],
                "resourcePath": match.resource,
                "httpMethod": request.method,
                "extendedRequestId": request_id[:13],
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": raw_path,  # with the stage in front when the URL had it
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": STAGE_NAME,
                "domainPrefix": API_ID,
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": request.client_ip,
                    "userAgent": request.header("User-Agent"),
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "apiKey": None,
                },
                "domainName": request.header("Host") or HOST,
                "apiId": API_ID,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _event_body(self, request: HttpRequest) -> tuple[str | None, bool]:
        if not request.body:
            return None, False
        if media_type_matches(request.header("Content-Type"), self.app.api.binary_types):
            return base64.b64encode(request.body).decode("ascii"), True
        return request.body.decode("utf-8", errors="replace"), False

    # --- built-in authorizers ---

    def _authorize(self, route: RouteEntry, request: HttpRequest, raw_path: str) -> dict[str, Any]:
        authorizer = route.authorizer
        if not isinstance(authorizer, ChaliceAuthorizer):
            # Cognito and IAM authorizers are checked by AWS itself and cannot be run here;
            # refusing is safer than letting every request through.
            raise _GatewayFailure(
                "AUTHORIZER_CONFIGURATION_ERROR",
                f"{type(authorizer).__name__} cannot run locally; use a built-in authorizer",
            )
        config = authorizer.config
        identity_header = (config.header if config else None) or DEFAULT_IDENTITY_HEADER
        token = request.header(identity_header)
        if not token:
            raise _GatewayFailure("UNAUTHORIZED")
        arn = method_arn(request.method, raw_path)
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
        context = self._lambda_context(f"{self.function_name}-{authorizer.name}")
        try:
            result = authorizer(event, context)  # type: ignore[arg-type]
        except Exception as exc:  # any authorizer error is a gateway response
            if str(exc) == "Unauthorized":
                raise _GatewayFailure("UNAUTHORIZED") from None
            log.exception("authorizer %s failed", authorizer.name)
            raise _GatewayFailure("AUTHORIZER_FAILURE") from None
        principal_id, policy, auth_context = self._authorizer_output(authorizer.name, result)
        if not policy_allows(policy, arn):
            raise _GatewayFailure("ACCESS_DENIED")
        self._warn_if_policy_not_cacheable(authorizer, policy)
        return {**auth_context, "principalId": principal_id, "integrationLatency": 0}

    def _authorizer_output(
        self, name: str, result: Any
    ) -> tuple[str, Mapping[str, Any], dict[str, str]]:
        def malformed(reason: str) -> _GatewayFailure:
            return _GatewayFailure(
                "AUTHORIZER_CONFIGURATION_ERROR", f"authorizer {name} returned {reason}"
            )

        if not isinstance(result, Mapping):
            raise malformed(f"{type(result).__name__}, not an authorizer response")
        principal_id = result.get("principalId")
        policy = result.get("policyDocument")
        if not isinstance(principal_id, str) or not principal_id:
            raise malformed("no principalId")
        if not isinstance(policy, Mapping):
            raise malformed("no policyDocument")
        raw_context = result.get("context") or {}
        if not isinstance(raw_context, Mapping):
            raise malformed("a context that is not an object")
        context: dict[str, str] = {}
        for key, value in raw_context.items():
            if value is None:
                continue
            if not isinstance(value, str | int | float | bool):
                # API Gateway fails the request when a context value is an object or array.
                raise malformed(f"context[{key!r}] of type {type(value).__name__}")
            context[str(key)] = _context_value(value)
        return principal_id, policy, context

    def _warn_if_policy_not_cacheable(
        self, authorizer: ChaliceAuthorizer, policy: Mapping[str, Any]
    ) -> None:
        """API Gateway caches a policy per token (300 s unless ttl_seconds=0) and reuses it on
        every route; a policy that allows only the current route then denies the next one."""
        config = authorizer.config
        if authorizer.name in self._policy_checked or (config and config.ttl_seconds == 0):
            return
        self._policy_checked.add(authorizer.name)
        for path, views in self.app.routes.items():
            for method, view in views.items():
                if view.authorizer is None or getattr(view.authorizer, "name", None) != (
                    authorizer.name
                ):
                    continue
                if not policy_allows(policy, method_arn(method, path)):
                    log.warning(
                        "authorizer %s returned a policy that does not allow %s %s; with "
                        "authorizer caching on, production will answer 403 there",
                        authorizer.name,
                        method,
                        path,
                    )
                    return

    # --- invoking the function ---

    def _lambda_context(self, function_name: str) -> LambdaContext:
        return lambda_context(
            function_name, self.integration_timeout or 900, memory_size_mb=self.memory_size_mb
        )

    def _invoke(self, event: dict[str, Any], request_id: str) -> HttpResponse:
        context = self._lambda_context(self.function_name)
        context.aws_request_id = request_id
        try:
            with self._timeout():
                result = self.app(event, context)
        except _IntegrationTimeout:
            raise _GatewayFailure(
                "INTEGRATION_TIMEOUT", f"no response within {self.integration_timeout} s"
            ) from None
        except Exception:  # a Lambda error is API Gateway's 502
            log.exception("the function raised")
            raise _GatewayFailure("DEFAULT_5XX") from None
        return self._proxy_response(result)

    @contextlib.contextmanager
    def _timeout(self) -> Any:
        timeout = self.integration_timeout
        usable = timeout and hasattr(signal, "setitimer")
        if usable:
            try:
                previous = signal.signal(signal.SIGALRM, _raise_integration_timeout)
            except ValueError:  # not the main thread: no timer
                usable = False
        if not usable:
            yield
            return
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _proxy_response(self, result: Any) -> HttpResponse:
        def malformed(reason: str) -> _GatewayFailure:
            return _GatewayFailure("DEFAULT_5XX", f"malformed Lambda proxy response: {reason}")

        if not isinstance(result, Mapping):
            raise malformed(f"{type(result).__name__} instead of an object")
        status = result.get("statusCode")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise malformed(f"statusCode {status!r}")
        body = result.get("body")
        if body is not None and not isinstance(body, str):
            raise malformed(f"body of type {type(body).__name__}")
        if body is not None and len(body) > MAX_LAMBDA_RESPONSE_BYTES:
            raise malformed("larger than Lambda's 6 MB response limit")
        headers: list[tuple[str, str]] = []
        for name, value in (result.get("headers") or {}).items():
            headers.append((str(name), str(value)))
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(value)) for value in _as_list(values))
        raw = (body or "").encode("utf-8")
        if body and result.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(body, validate=True)
            except ValueError:
                raise malformed("isBase64Encoded with a body that is not base64") from None
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return HttpResponse(status, headers, raw)


def lambda_context(
    function_name: str, timeout_seconds: float, *, memory_size_mb: int = 1024
) -> LambdaContext:
    """The context object a Lambda handler receives (request id, time left, function ARN)."""
    context = LambdaContext(
        function_name, memory_size_mb, max_runtime_ms=int(timeout_seconds * 1000)
    )
    context.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
    return context


def _raise_integration_timeout(signum: int, frame: FrameType | None) -> None:
    raise _IntegrationTimeout()


# --- one worker: HTTP/1.1, one connection at a time ----------------------------------------------


class _GatewayHandler(BaseHTTPRequestHandler):
    """Reads one HTTP request, passes it through the gateway, writes the answer, closes."""

    protocol_version = "HTTP/1.1"
    server_version = "orderdesk-local-gateway"
    sys_version = ""
    gateway: ApiGateway  # set on the per-worker subclass
    web_apps: WebApps | None = None  # the static web apps (CloudFront's part), if any

    def handle(self) -> None:
        # One request per connection: a kept-alive idle connection would hold this worker.
        self.close_connection = True
        self.handle_one_request()

    def _dispatch(self) -> None:
        started = time.monotonic()
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            client_ip=self.client_address[0],
        )
        too_large = False
        try:
            request.body = self._read_body()
        except _BodyTooLarge:
            too_large = True
        except ValueError:
            self.send_error(400, "Malformed request body framing")
            return
        static = self.web_apps and self.web_apps.serve(
            self.command, self.path, dict(request.headers)
        )
        if static is not None:
            response = HttpResponse(static.status, static.headers, static.body)
        elif too_large:
            response = self.gateway.gateway_response("REQUEST_TOO_LARGE", request)
            response.headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
        else:
            response = self.gateway.handle(request)
        self._write(response, head_only=self.command == "HEAD")
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info("%s %s %s %.0fms", self.command, self.path, response.status, elapsed_ms)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, ...) matches no route: the gateway's 404, not 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        limit = self.gateway.max_body_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return None
        length = int(length_header)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > limit:
            self._drain(length)
            raise _BodyTooLarge()
        return self.rfile.read(length) if length else None

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                break
            total += size
            if total > limit:
                raise _BodyTooLarge()
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)
        return b"".join(chunks)

    def _drain(self, length: int) -> None:
        # Read (and drop) what the client is sending so that it gets to read our 413.
        remaining = min(length, _MAX_DRAIN_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)

    def _write(self, response: HttpResponse, *, head_only: bool = False) -> None:
        self.send_response_only(response.status)
        self.send_header("Date", formatdate(usegmt=True))
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head_only and response.body:
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed HTTP (bad request line, oversized headers, unknown method) in our shape too.
        body = json.dumps(
            {"error": "bad_request", "message": message or "Bad request.", "details": None}
        ).encode()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._write(HttpResponse(code, [("Content-Type", "application/json")], body))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _dispatch logs one line per request


class _BodyTooLarge(Exception):
    pass


def _serve_forever(
    listener: socket.socket,
    gateway: ApiGateway,
    state: _WorkerState,
    web_apps: WebApps | None = None,
) -> None:
    handler = type("WorkerHandler", (_GatewayHandler,), {"gateway": gateway, "web_apps": web_apps})
    while not state.stopping:
        state.busy = False
        try:
            connection, address = listener.accept()
        except OSError:
            if state.stopping:
                break
            continue
        state.busy = True
        try:
            connection.settimeout(_CONNECTION_TIMEOUT_SECONDS)
            handler(connection, address, None)
        except Exception:  # one broken connection must not end the worker
            log.exception("connection from %s failed", address)
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


@dataclass
class _WorkerState:
    busy: bool = False
    stopping: bool = False


# --- the pre-forking parent ----------------------------------------------------------------------


@dataclass
class GatewayOptions:
    port: int
    host: str = HOST
    workers: int = DEFAULT_WORKERS
    app_spec: str = "app:app"
    python_path: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    max_body_bytes: int = MAX_REQUEST_BODY_BYTES
    integration_timeout: float | None = INTEGRATION_TIMEOUT_SECONDS
    ready_file: Path | None = None
    parent_pid: int | None = None
    shutdown_grace_seconds: float = 10.0
    web_root: Path | None = None  # serve web/<app>/ at /<app>/ (CloudFront's part)
    web_config_dir: Path | None = None  # where this run's /<app>/config.json files are


def load_app(app_spec: str) -> Chalice:
    module_name, _, attribute = app_spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    if not isinstance(app, Chalice):
        raise TypeError(f"{app_spec} is {type(app).__name__}, not a Chalice app")
    return app


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """On Linux, have the kernel signal this process when its parent dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)


class PreforkServer:
    """Binds the socket, keeps ``workers`` worker processes alive, stops them on a signal."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((options.host, options.port))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self._ready_read, self._ready_write = os.pipe()
        self._workers: set[int] = set()
        self._ready: set[int] = set()
        self._announced = False
        self._stopping = False
        self._exit_code = 0
        self._recent_crashes: list[float] = []

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.port}"

    def serve(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        log.info("gateway on %s: starting %d workers", self.url, self.options.workers)
        for _ in range(self.options.workers):
            self._spawn()
        try:
            while not self._stopping:
                self._collect_ready(timeout=0.5)
                self._reap()
                if self.options.parent_pid and os.getppid() != self.options.parent_pid:
                    log.warning("the process that started the gateway is gone; stopping")
                    self._stopping = True
        finally:
            self._shutdown()
        return self._exit_code

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = _worker_main(self.listener, self._ready_write, self.options)
            except BaseException:  # a worker must never return into the parent
                log.exception("worker crashed")
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self._workers.add(pid)

    def _collect_ready(self, timeout: float) -> None:
        readable, _, _ = select.select([self._ready_read], [], [], timeout)
        if not readable:
            return
        for line in os.read(self._ready_read, 4096).split():
            self._ready.add(int(line))
        if not self._announced and len(self._ready & self._workers) >= self.options.workers:
            self._announced = True
            self._write_ready_file()
            log.info("gateway ready on %s (%d workers)", self.url, self.options.workers)

    def _write_ready_file(self) -> None:
        path = self.options.ready_file
        if path is None:
            return
        document = {"url": self.url, "pid": os.getpid(), "workers": sorted(self._workers)}
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_text(json.dumps(document))
        temp.replace(path)

    def _reap(self) -> None:
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self._workers:
                continue
            self._workers.discard(pid)
            self._ready.discard(pid)
            if self._stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == EXIT_APP_IMPORT_FAILED:
                log.error("the app could not be imported (see above); stopping the gateway")
                self._exit_code = EXIT_APP_IMPORT_FAILED
                self._stopping = True
                return
            now = time.monotonic()
            self._recent_crashes = [t for t in self._recent_crashes if now - t < 30] + [now]
            if len(self._recent_crashes) > 5 * self.options.workers:
                log.error("workers keep crashing; stopping the gateway")
                self._exit_code = 1
                self._stopping = True
                return
            log.warning("worker %d ended (exit %s); starting a replacement", pid, code)
            self._spawn()

    def _shutdown(self) -> None:
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.shutdown_grace_seconds
        while self._workers and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
            else:
                self._workers.discard(pid)
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.listener.close()
        if self.options.ready_file is not None:
            self.options.ready_file.unlink(missing_ok=True)
        log.info("gateway on %s stopped", self.url)


def _worker_main(listener: socket.socket, ready_write: int, options: GatewayOptions) -> int:
    state = _WorkerState()

    def stop(signum: int, frame: FrameType | None) -> None:
        state.stopping = True
        if not state.busy:
            raise SystemExit(0)  # idle in accept(): leave now; busy: finish the request first

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    set_parent_death_signal()
    # The app reads its configuration from the environment, as in Lambda: set it first.
    os.environ.update(options.env)
    for entry in reversed(options.python_path):
        sys.path.insert(0, entry)
    try:
        app = load_app(options.app_spec)
    except Exception:  # report and let the parent decide
        log.exception("cannot import %s", options.app_spec)
        return EXIT_APP_IMPORT_FAILED
    origins = [o.strip() for o in os.environ.get("CORS_ALLOW_ORIGINS", "").split(",") if o.strip()]
    gateway = ApiGateway(
        app,
        max_body_bytes=options.max_body_bytes,
        integration_timeout=options.integration_timeout,
        cors_allow_origins=origins,
    )
    web_apps = WebApps(options.web_root, options.web_config_dir) if options.web_root else None
    os.write(ready_write, f"{os.getpid()}\n".encode())
    with contextlib.suppress(SystemExit):
        _serve_forever(listener, gateway, state, web_apps)
    return 0


# --- command line --------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """A JSON object of variables, or a stack file whose ``env`` holds them."""
    document = json.loads(path.read_text())
    env = document.get("env", document) if isinstance(document, dict) else None
    if not isinstance(env, dict):
        raise ValueError(f"{path} holds no environment object")
    return {str(key): str(value) for key, value in env.items()}


def parse_args(argv: list[str] | None) -> GatewayOptions:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.gateway",
        description="Serve the Chalice app like API Gateway + Lambda: N single-request workers.",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--app", default="app:app", help="module:attribute of the Chalice app")
    parser.add_argument(
        "--pythonpath", action="append", default=[], help="prepend to sys.path (repeatable)"
    )
    parser.add_argument("--env-file", type=Path, help="JSON env (or a stack file) for the app")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_REQUEST_BODY_BYTES)
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=INTEGRATION_TIMEOUT_SECONDS,
        help="seconds before 504; 0 disables",
    )
    parser.add_argument("--ready-file", type=Path, help="written once every worker is serving")
    parser.add_argument("--parent-pid", type=int, help="stop when this parent process is gone")
    parser.add_argument("--web-root", type=Path, help="serve <dir>/shop/ at /shop/ and so on")
    parser.add_argument("--web-config-dir", type=Path, help="holds <app>/config.json")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return GatewayOptions(
        port=args.port,
        host=args.host,
        workers=args.workers,
        app_spec=args.app,
        python_path=[str(Path(entry).resolve()) for entry in args.pythonpath],
        env=read_env_file(args.env_file) if args.env_file else {},
        max_body_bytes=args.max_body_bytes,
        integration_timeout=args.integration_timeout or None,
        ready_file=args.ready_file,
        parent_pid=args.parent_pid,
        web_root=args.web_root.resolve() if args.web_root else None,
        web_config_dir=args.web_config_dir.resolve() if args.web_config_dir else None,
    )


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s gateway[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("infra.local").setLevel(logging.INFO)  # not boto3's chatter


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    options = parse_args(argv)
    if options.parent_pid:
        set_parent_death_signal()
        if os.getppid() != options.parent_pid:
            return 1
    # The project root (the working directory) holds app.py.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        server = PreforkServer(options)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", options.host, options.port, exc)
        return 2
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
