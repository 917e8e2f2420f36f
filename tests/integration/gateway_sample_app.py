"""A small Chalice app that the gateway tests serve through the local API gateway.

Its authorizer answers by token: "good" is allowed, "deny" gets a policy that allows nothing,
"bad" raises Unauthorized, "broken" raises something else, "nested" returns a context value
API Gateway cannot pass on.
"""

from __future__ import annotations

import base64
import os
import time

from chalice import AuthResponse, Chalice, Response
from chalice.app import AuthRequest

app = Chalice(app_name="gateway-sample")
app.api.binary_types.append("application/x-sample-binary")

# Set by the test through the worker environment: proves the env is in place before import.
IMPORT_TIME_MARKER = os.environ.get("SAMPLE_MARKER", "")


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")


@app.authorizer()
def token_authorizer(auth_request: AuthRequest) -> AuthResponse | dict[str, object]:
    token = auth_request.token.removeprefix("Bearer ").strip()
    if token == "bad":
        raise Unauthorized()
    if token == "broken":
        raise RuntimeError("the identity provider is down")
    if token == "deny":
        return AuthResponse(routes=[], principal_id="someone")
    if token == "nested":
        return AuthResponse(routes=["*"], principal_id="someone", context={"groups": ["ops"]})
    if token == "good":
        return AuthResponse(
            routes=["*"],
            principal_id="user-1",
            context={"user_id": "user-1", "groups": "ops,support", "staff": True, "level": 3},
        )
    raise Unauthorized()


@app.route("/whoami", methods=["GET"], authorizer=token_authorizer)
def whoami() -> dict[str, object]:
    return {"authorizer": app.current_request.context.get("authorizer")}


@app.route("/slow", methods=["GET"])
def slow() -> dict[str, object]:
    started = time.time()
    time.sleep(0.3)
    return {"pid": os.getpid(), "started": started, "finished": time.time()}


@app.route("/marker", methods=["GET"])
def marker() -> dict[str, str]:
    return {"marker": IMPORT_TIME_MARKER}


@app.route(
    "/echo/{name}",
    methods=["GET", "POST"],
    content_types=["application/json", "text/plain", "application/x-sample-binary"],
)
def echo(name: str) -> dict[str, object]:
    request = app.current_request
    event = request.to_original_event()
    return {
        "name": name,
        "method": request.method,
        "query": event["multiValueQueryStringParameters"],
        "single_query": event["queryStringParameters"],
        "headers": event["headers"],
        "multi_headers": event["multiValueHeaders"],
        "is_base64": event["isBase64Encoded"],
        "raw_body_b64": base64.b64encode(request.raw_body or b"").decode(),
        "path": event["path"],
        "context_path": event["requestContext"]["path"],
        "resource": event["resource"],
    }


@app.route("/echo/fixed", methods=["GET"])
def echo_fixed() -> dict[str, str]:
    return {"route": "fixed"}


@app.route("/image", methods=["GET"])
def image() -> Response:
    return Response(body=b"\x89PNG\x00\xff", headers={"Content-Type": "image/png"}, status_code=200)


@app.route("/crash", methods=["GET"])
def crash() -> Response:
    # A malformed proxy response: the gateway must answer 502, not pass garbage on.
    return Response(body={"ok": True}, headers={"Content-Type": "application/json"}, status_code=99)


@app.route("/things", methods=["GET"])
def things() -> dict[str, list[str]]:
    return {"items": []}


@app.route("/things", methods=["OPTIONS"])
def things_preflight() -> Response:
    return Response(body="", status_code=204, headers={"Access-Control-Allow-Origin": "*"})


@app.route("/die", methods=["POST"])
def die() -> None:
    # A Lambda instance that crashes mid-request: the gateway must replace the worker.
    os._exit(1)


@app.route("/hang", methods=["GET"])
def hang() -> dict[str, bool]:
    time.sleep(10)  # longer than the integration timeout the tests give the gateway
    return {"finished": True}
