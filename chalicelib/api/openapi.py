"""``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs``, generated from the app itself.

Every route of the app is listed, found by walking ``app.routes`` so a new route appears
without anyone remembering to add it. A view describes itself with ``@operation(...)``
placed under its ``@blueprint.route(...)``:

    @blueprint.route("/products/{sku}", methods=["PUT"], authorizer=authorizer)
    @operation("Create or replace a product", request=ProductPut,
               responses={200: ProductBody, 201: ProductBody}, tags=("catalogue",))
    def put_product(sku): ...

Request and response schemas come from the same pydantic models the views validate with.
Error responses (always the ``ErrorBody`` shape) are derived from the route: 400 for every
route, 401/403 where a token is required or accepted, 404 where the path names something,
409 for writes, 413 where there is a body; ``errors=`` adds more (e.g. 422). A route with
no ``@operation`` is still listed, with a generic JSON response. CORS preflight
(``OPTIONS``) views are left out: they are transport, not API.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from chalice import Blueprint, Response

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.app import RouteEntry
    from pydantic import BaseModel

TITLE = "orderdesk"
API_VERSION = "1.0.0"
DESCRIPTION = (
    "Online ordering: catalogue and search, stock across warehouses, orders, payments, "
    "fulfilment, reviews and ratings, and reports. Money is always {amount: integer minor "
    "units, currency}. Errors are always {error, message, details}."
)
SECURITY_SCHEME = "bearerAuth"
ID_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
_REF_TEMPLATE = "#/components/schemas/{model}"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Auth = Literal["required", "optional", "none"]

# The headers the API reads and sets, declared once (components/headers) and referred to.
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the request safe to retry: the same key with the same body answers with the "
        "original response (and Idempotent-Replayed: true); with another body, 422."
    ),
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$", "maxLength": 255},
}
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {
        "description": "The path of the resource this request created.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "Present (true) when this is the replay of an earlier request's answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
# Answers that tell the client to come back later carry Retry-After.
RETRY_LATER_STATUSES = frozenset({429, 503})

blueprint = Blueprint(__name__)


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # Status -> response model; None means a response without a body.
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    # For successes that are not JSON (e.g. "text/html"): the media type and its schema.
    media_type: str = "application/json"
    raw_schema: Mapping[str, Any] | None = None
    errors: tuple[int, ...] = ()
    # None: derived from the route (an authorizer means "required").
    auth: Auth | None = None
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Reads Idempotency-Key; its successes may carry Idempotent-Replayed; 503 busy may answer.
    idempotent: bool = False
    # Status -> names from RESPONSE_HEADERS that the answer carries (e.g. 201: ("Location",)).
    headers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


def operation(
    summary: str,
    *,
    description: str = "",
    tags: Iterable[str] = (),
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: Mapping[int, type[BaseModel] | None] | None = None,
    media_type: str = "application/json",
    raw_schema: Mapping[str, Any] | None = None,
    errors: Iterable[int] = (),
    auth: Auth | None = None,
    path_params: Mapping[str, Mapping[str, Any]] | None = None,
    idempotent: bool = False,
    headers: Mapping[int, Iterable[str]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a view for the spec; put it under ``@blueprint.route``. Nothing is built here."""
    described = Operation(
        summary=summary,
        description=description,
        tags=tuple(tags),
        request=request,
        query=query,
        responses=dict(responses or {}),
        media_type=media_type,
        raw_schema=raw_schema,
        errors=tuple(errors),
        auth=auth,
        path_params=dict(path_params or {}),
        idempotent=idempotent,
        headers={status: tuple(names) for status, names in (headers or {}).items()},
    )
    unknown = {name for names in described.headers.values() for name in names}
    if unknown - set(RESPONSE_HEADERS):
        raise ValueError(f"undeclared response headers: {sorted(unknown - set(RESPONSE_HEADERS))}")

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        # functools.wraps copies __dict__, so this survives the error-mapping wrapper.
        view.__openapi__ = described  # type: ignore[attr-defined]
        return view

    return attach


def described_operation(entry: RouteEntry) -> Operation | None:
    return getattr(entry.view_function, "__openapi__", None)


# --- building the document ----------------------------------------------------------------


def _auth_of(entry: RouteEntry, described: Operation | None) -> Auth:
    if described is not None and described.auth is not None:
        return described.auth
    return "required" if entry.authorizer is not None else "none"


def _error_statuses(method: str, entry: RouteEntry, described: Operation | None) -> list[int]:
    statuses = {400}
    auth = _auth_of(entry, described)
    if auth == "required":
        statuses |= {401, 403}
    elif auth == "optional":
        # A token that is sent must be valid; if keys cannot be fetched, try again later.
        statuses |= {401, 503}
    if entry.view_args:
        statuses.add(404)
    if method in _WRITE_METHODS:
        statuses.add(409)
    if method in _BODY_METHODS:
        statuses.add(413)
    if described is not None:
        statuses |= set(described.errors)
        if described.idempotent:
            statuses.add(503)  # busy: contention outlasted the request's retries
    return sorted(statuses)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


class _Schemas:
    """Collects the models a document refers to and renders them as components."""

    def __init__(self) -> None:
        self._wanted: dict[tuple[type[BaseModel], str], None] = {}
        # Definitions pulled in by inline schemas (e.g. an enum used by a query parameter).
        self.extra: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict:
        self._wanted[(model, mode)] = None
        return {"__model__": (model, mode)}

    def render(self, document: Any) -> tuple[Any, dict[str, Any]]:
        from pydantic.json_schema import models_json_schema

        refs, definitions = models_json_schema(list(self._wanted), ref_template=_REF_TEMPLATE)

        def substitute(node: Any) -> Any:
            if isinstance(node, dict):
                if set(node) == {"__model__"}:
                    return refs[node["__model__"]]
                return {key: substitute(value) for key, value in node.items()}
            if isinstance(node, list):
                return [substitute(value) for value in node]
            return node

        components = {**self.extra, **definitions.get("$defs", {})}
        return substitute(document), dict(sorted(components.items()))


def _query_parameters(model: type[BaseModel], schemas: _Schemas) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation", ref_template=_REF_TEMPLATE)
    schemas.extra.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop pydantic's ``| None`` branch."""
    schema = dict(schema)
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        others = [branch for branch in branches if branch != {"type": "null"}]
        if len(others) == 1:
            del schema["anyOf"]
            schema = {**others[0], **schema}
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _undescribed(entry: RouteEntry) -> Operation:
    # Listed all the same: a generic JSON success plus the errors the route can give.
    return Operation(
        summary=entry.view_name.replace("_", " "),
        tags=("other",),
        responses={200: None},
        raw_schema={},
    )


def _operation_object(
    method: str, entry: RouteEntry, schemas: _Schemas, operation_id: str
) -> dict[str, Any]:
    described = described_operation(entry)
    op = described or _undescribed(entry)
    result: dict[str, Any] = {"operationId": operation_id, "summary": op.summary}
    if op.description:
        result["description"] = op.description
    result["tags"] = list(op.tags or ("other",))

    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(op.path_params.get(name, ID_SCHEMA)),
        }
        for name in entry.view_args
    ]
    if op.query:
        parameters += _query_parameters(op.query, schemas)
    if op.idempotent:
        parameters.append(dict(IDEMPOTENCY_KEY_PARAMETER))
    if parameters:
        result["parameters"] = parameters

    if op.request:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(op.request, "validation")}},
        }

    responses: dict[str, Any] = {}
    for status, model in sorted((op.responses or {200: None}).items()):
        response: dict[str, Any] = {"description": _reason(status)}
        if model is not None:
            response["content"] = {op.media_type: {"schema": schemas.ref(model, "serialization")}}
        elif op.raw_schema is not None:
            response["content"] = {op.media_type: {"schema": dict(op.raw_schema)}}
        names = list(op.headers.get(status, ()))
        if op.idempotent and 200 <= status < 300:
            names.append("Idempotent-Replayed")
        if names:
            response["headers"] = _header_refs(names)
        responses[str(status)] = response
    error_ref = schemas.ref(_error_model(), "serialization")
    for status in _error_statuses(method, entry, described):
        error: dict[str, Any] = {
            "description": _reason(status),
            "content": {"application/json": {"schema": error_ref}},
        }
        if status in RETRY_LATER_STATUSES:
            error["headers"] = _header_refs(["Retry-After"])
        responses.setdefault(str(status), error)
    result["responses"] = responses

    auth = _auth_of(entry, described)
    if auth == "required":
        result["security"] = [{SECURITY_SCHEME: []}]
    elif auth == "optional":
        result["security"] = [{}, {SECURITY_SCHEME: []}]
    return result


def _header_refs(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in dict.fromkeys(names)}


def _error_model() -> type[BaseModel]:
    from chalicelib.api.models import ErrorBody

    return ErrorBody


def build_spec(app: Chalice) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route registered on ``app``."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for path in sorted(app.routes):
        for method, entry in sorted(app.routes[path].items()):
            if method == "OPTIONS":
                continue
            operation_id = entry.view_name
            if operation_id in used_ids:
                operation_id = f"{method.lower()}_{operation_id}"
            used_ids.add(operation_id)
            paths.setdefault(path, {})[method.lower()] = _operation_object(
                method, entry, schemas, operation_id
            )
    paths, components = schemas.render(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "headers": {name: dict(header) for name, header in RESPONSE_HEADERS.items()},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from the identity provider (Cognito).",
                }
            },
        },
    }


@functools.lru_cache(maxsize=4)
def _cached_spec(app_id: int) -> str:
    # Routes are fixed once the app is registered, so the document is built once per process.
    return json.dumps(build_spec(blueprint.current_app), ensure_ascii=False)


def _spec_for_request() -> dict[str, Any]:
    spec = json.loads(_cached_spec(id(blueprint.current_app)))
    spec["servers"] = [{"url": _base_path()}]
    return spec


def _base_path() -> str:
    """The URL prefix the API is served under (API Gateway's stage, e.g. /api), or /."""
    context = blueprint.current_request.context or {}
    full_path, resource_path = context.get("path") or "", context.get("resourcePath") or ""
    if resource_path and full_path.endswith(resource_path):
        prefix = full_path[: -len(resource_path)]
        if prefix.startswith("/"):
            return prefix
    return "/"


@blueprint.route("/openapi.json", methods=["GET"])
@operation(
    "This API's OpenAPI 3.1 description",
    tags=("meta",),
    raw_schema={"type": "object"},
    responses={200: None},
)
def openapi_document() -> dict[str, Any]:
    return _spec_for_request()


@blueprint.route("/docs", methods=["GET"])
@operation(
    "Human-readable API documentation",
    tags=("meta",),
    media_type="text/html",
    raw_schema={"type": "string"},
    responses={200: None},
)
def docs_page() -> Response:
    page = render_docs(_spec_for_request())
    return Response(
        body=page,
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            # The page is self-contained: no scripts, no outside resources.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


# --- the /docs page ---------------------------------------------------------------------

_METHOD_ORDER = {"get": 0, "put": 1, "post": 2, "patch": 3, "delete": 4}

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0;color:#c9cfdb}header a{color:#9cc3ff}
main{max-width:70rem;margin:0 auto;padding:1rem 2rem 3rem}
h2{margin:2rem 0 .5rem;text-transform:capitalize}
details{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:.4rem 0}
summary{cursor:pointer;padding:.5rem .8rem;display:flex;gap:.8rem;align-items:center}
.method{font:600 .8rem monospace;text-transform:uppercase;padding:.15rem .5rem;border-radius:4px;
color:#fff;min-width:3.5rem;text-align:center}
.get{background:#2f7d4f}.put{background:#8a5a00}.post{background:#1f5fae}.delete{background:#a12c2c}
.patch{background:#6a3fa0}.path{font-family:monospace;font-weight:600}.lock{margin-left:auto;color:#6b7385}
.body{padding:.2rem 1rem 1rem;border-top:1px solid #eef0f4}
table{border-collapse:collapse;width:100%;margin:.4rem 0}td,th{text-align:left;padding:.3rem .5rem;
border-bottom:1px solid #eef0f4;vertical-align:top}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
pre{background:#f3f4f7;padding:.6rem;border-radius:4px;overflow:auto;max-height:24rem}
"""


def _schema_text(schema: Any) -> str:
    return html.escape(json.dumps(schema, ensure_ascii=False, indent=2))


def _render_operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    security = op.get("security")
    lock = ""
    if security == [{SECURITY_SCHEME: []}]:
        lock = "bearer token required"
    elif security:
        lock = "bearer token optional"
    parts = [
        f'<details id="{html.escape(op.get("operationId", ""))}"><summary>'
        f'<span class="method {method}">{method}</span>'
        f'<span class="path">{html.escape(path)}</span>'
        f"<span>{html.escape(op.get('summary', ''))}</span>"
        f'<span class="lock">{lock}</span></summary><div class="body">'
    ]
    if op.get("description"):
        parts.append(f"<p>{html.escape(op['description'])}</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td><code>{html.escape(json.dumps(p.get('schema', {}), ensure_ascii=False))}</code>"
            f"{'<br>' + html.escape(p['description']) if p.get('description') else ''}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Required</th>"
            f"<th>Schema</th></tr>{rows}</table>"
        )
    body = op.get("requestBody")
    if body:
        for media, content in body["content"].items():
            parts.append(f"<h4>Request body ({html.escape(media)})</h4>")
            parts.append(f"<pre>{_schema_text(content.get('schema', {}))}</pre>")
    rows = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content") or {}
        shapes = ", ".join(
            f"{html.escape(media)}: <code>{html.escape(_schema_label(c.get('schema', {})))}</code>"
            for media, c in content.items()
        )
        rows.append(
            f"<tr><td>{status}</td><td>{html.escape(response.get('description', ''))}</td>"
            f"<td>{shapes or 'no body'}</td></tr>"
        )
    parts.append(
        "<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>"
        + "".join(rows)
        + "</table></div></details>"
    )
    return "".join(parts)


def _schema_label(schema: Mapping[str, Any]) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    return str(schema.get("type", "any"))


def render_docs(spec: Mapping[str, Any]) -> str:
    """A self-contained HTML page listing every operation, grouped by tag, and every schema."""
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, op))
    sections = []
    for tag in sorted(by_tag):
        operations = sorted(by_tag[tag], key=lambda t: (t[0], _METHOD_ORDER.get(t[1], 9)))
        sections.append(f"<h2>{html.escape(tag)}</h2>")
        sections.extend(_render_operation(path, method, op) for path, method, op in operations)
    schemas = spec.get("components", {}).get("schemas", {})
    sections.append("<h2>Schemas</h2>")
    sections.extend(
        f'<details id="schema-{html.escape(name)}"><summary><span class="path">'
        f'{html.escape(name)}</span></summary><div class="body"><pre>{_schema_text(schema)}'
        "</pre></div></details>"
        for name, schema in sorted(schemas.items())
    )
    info = spec.get("info", {})
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(info.get('title', 'API'))} API</title><style>{_STYLE}</style>"
        f"</head><body><header><h1>{html.escape(info.get('title', 'API'))} API "
        f"<small>{html.escape(info.get('version', ''))}</small></h1>"
        f"<p>{html.escape(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI '
        f"{html.escape(spec.get('openapi', ''))}). A bearer token is sent as "
        "<code>Authorization: Bearer &lt;token&gt;</code>.</p></header><main>"
        + "".join(sections)
        + "</main></body></html>"
    )
