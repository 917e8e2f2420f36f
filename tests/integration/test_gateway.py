"""The local API gateway over real HTTP, serving a small app (gateway_sample_app.py).

The gateway runs as a subprocess on a free port, exactly as the local stack runs it.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.gateway import MAX_REQUEST_BODY_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP_DIR = Path(__file__).resolve().parent
ALLOWED_ORIGIN = "http://shop.test"
INTEGRATION_TIMEOUT_SECONDS = 1.5  # API Gateway's is 29 s; shorter keeps the test quick


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningGateway:
    url: str
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    log_path: Path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_gateway(tmp_path: Path, workers: int) -> RunningGateway:
    port = _free_port()
    ready_file = tmp_path / "ready.json"
    log_path = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "SAMPLE_MARKER": "set-before-import",
        "CORS_ALLOW_ORIGINS": ALLOWED_ORIGIN,
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.local.gateway",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--app",
                "gateway_sample_app:app",
                "--pythonpath",
                str(SAMPLE_APP_DIR),
                "--ready-file",
                str(ready_file),
                "--integration-timeout",
                str(INTEGRATION_TIMEOUT_SECONDS),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise AssertionError(f"the gateway did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text())
    return RunningGateway(f"http://127.0.0.1:{port}", process, ready, log_path)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = _start_gateway(tmp_path_factory.mktemp("gateway"), workers=4)
    try:
        yield running
    finally:
        _stop(running.process)


def _error_shape(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) == {"error", "message", "details"}


# --- what API Gateway answers before the function runs ------------------------------------------


def test_missing_authorization_header_is_401_without_running_the_authorizer(
    gateway: RunningGateway,
) -> None:
    _error_shape(gateway.get("/whoami"), 401, "unauthorized")


def test_authorizer_raising_unauthorized_is_401(gateway: RunningGateway) -> None:
    response = gateway.get("/whoami", headers={"Authorization": "Bearer bad"})
    _error_shape(response, 401, "unauthorized")


def test_policy_that_does_not_allow_the_route_is_403(gateway: RunningGateway) -> None:
    response = gateway.get("/whoami", headers={"Authorization": "Bearer deny"})
    _error_shape(response, 403, "forbidden")


def test_authorizer_failing_any_other_way_is_500(gateway: RunningGateway) -> None:
    broken = gateway.get("/whoami", headers={"Authorization": "Bearer broken"})
    _error_shape(broken, 500, "internal_error")
    # API Gateway cannot pass an object or array in the context: the request fails.
    nested = gateway.get("/whoami", headers={"Authorization": "Bearer nested"})
    _error_shape(nested, 500, "internal_error")


def test_allowed_request_carries_the_authorizer_context_as_strings(
    gateway: RunningGateway,
) -> None:
    response = gateway.get("/whoami", headers={"Authorization": "Bearer good"})
    assert response.status_code == 200
    assert response.json()["authorizer"] == {
        "user_id": "user-1",
        "groups": "ops,support",
        "staff": "true",
        "level": "3",
        "principalId": "user-1",
        "integrationLatency": 0,
    }


def test_unknown_route_or_method_is_404_in_our_error_shape(gateway: RunningGateway) -> None:
    _error_shape(gateway.get("/no/such/route"), 404, "not_found")
    _error_shape(requests.delete(f"{gateway.url}/things", timeout=10), 404, "not_found")
    with_token = gateway.get("/no/such/route", headers={"Authorization": "Bearer good"})
    _error_shape(with_token, 404, "not_found")


def test_body_over_the_api_gateway_limit_is_413(gateway: RunningGateway) -> None:
    too_big = b"x" * (MAX_REQUEST_BODY_BYTES + 1)
    response = requests.post(
        f"{gateway.url}/echo/big",
        data=too_big,
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    _error_shape(response, 413, "payload_too_large")


def test_gateway_errors_let_an_allowed_origin_read_them(gateway: RunningGateway) -> None:
    allowed = gateway.get("/whoami", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 401
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    other = gateway.get("/whoami", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers


# --- the Lambda proxy event and response --------------------------------------------------------


def test_query_strings_and_headers_arrive_as_api_gateway_sends_them(
    gateway: RunningGateway,
) -> None:
    response = gateway.get(
        "/echo/caf%C3%A9?tag=a&tag=b&q=blue+tooth&empty=",
        headers={"X-Trace-Me": "yes", "Authorization": "Bearer anything"},
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["name"] == "café"  # path parameters decoded
    assert echoed["path"] == "/echo/caf%C3%A9"  # the path as sent
    assert echoed["resource"] == "/echo/{name}"
    assert echoed["query"] == {"tag": ["a", "b"], "q": ["blue tooth"], "empty": [""]}
    assert echoed["single_query"] == {"tag": "b", "q": "blue tooth", "empty": ""}
    assert echoed["headers"]["X-Trace-Me"] == "yes"  # the client's casing is kept
    assert echoed["multi_headers"]["X-Trace-Me"] == ["yes"]


def test_api_answers_at_the_root_and_under_its_stage_like_its_two_aws_urls(
    gateway: RunningGateway,
) -> None:
    # A custom domain maps the stage at the root; the execute-api URL puts it in front.
    at_root = gateway.get("/echo/x").json()
    staged = gateway.get("/api/echo/x").json()
    assert (at_root["path"], at_root["context_path"]) == ("/echo/x", "/echo/x")
    assert (staged["path"], staged["context_path"]) == ("/echo/x", "/api/echo/x")
    _error_shape(gateway.get("/api/no/such/route"), 404, "not_found")


def test_methods_no_route_has_are_404_not_501(gateway: RunningGateway) -> None:
    _error_shape(requests.request("TRACE", f"{gateway.url}/things", timeout=10), 404, "not_found")


def test_no_query_string_is_null_like_api_gateway(gateway: RunningGateway) -> None:
    echoed = gateway.get("/echo/plain").json()
    assert echoed["query"] is None
    assert echoed["single_query"] is None


def test_binary_body_arrives_base64_encoded_and_text_body_as_is(
    gateway: RunningGateway,
) -> None:
    payload = bytes(range(256))
    binary = requests.post(
        f"{gateway.url}/echo/bin",
        data=payload,
        headers={"Content-Type": "application/x-sample-binary"},
        timeout=10,
    ).json()
    assert binary["is_base64"] is True
    assert base64.b64decode(binary["raw_body_b64"]) == payload

    text = requests.post(
        f"{gateway.url}/echo/txt",
        data="订单 order".encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=10,
    ).json()
    assert text["is_base64"] is False
    assert base64.b64decode(text["raw_body_b64"]).decode() == "订单 order"


def test_binary_response_is_decoded_for_the_client(gateway: RunningGateway) -> None:
    response = gateway.get("/image", headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == b"\x89PNG\x00\xff"


def test_literal_path_segment_wins_over_a_parameter(gateway: RunningGateway) -> None:
    assert gateway.get("/echo/fixed").json() == {"route": "fixed"}
    assert gateway.get("/echo/fixed2").json()["name"] == "fixed2"


def test_options_preflight_reaches_the_apps_options_view(gateway: RunningGateway) -> None:
    response = requests.options(f"{gateway.url}/things", timeout=10)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_malformed_proxy_response_is_502(gateway: RunningGateway) -> None:
    _error_shape(gateway.get("/crash"), 502, "internal_error")


def test_function_overrunning_the_integration_timeout_is_504(gateway: RunningGateway) -> None:
    started = time.monotonic()
    response = gateway.get("/hang")
    _error_shape(response, 504, "gateway_timeout")
    assert time.monotonic() - started < 8  # answered at the timeout, not when the view ended


def test_app_environment_is_in_place_before_the_app_is_imported(
    gateway: RunningGateway,
) -> None:
    assert gateway.get("/marker").json() == {"marker": "set-before-import"}


# --- processes ---------------------------------------------------------------------------------


def _slow_requests(gateway: RunningGateway, count: int) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        responses = list(pool.map(lambda _: gateway.get("/slow"), range(count)))
    assert all(r.status_code == 200 for r in responses)
    return [r.json() for r in responses]


def test_concurrent_requests_run_one_at_a_time_in_each_of_the_worker_processes(
    gateway: RunningGateway,
) -> None:
    started = time.monotonic()
    results = _slow_requests(gateway, 8)
    elapsed = time.monotonic() - started

    pids = {result["pid"] for result in results}
    assert pids == set(gateway.ready["workers"])  # all four workers, no other process
    for pid in pids:
        spans = sorted((r["started"], r["finished"]) for r in results if r["pid"] == pid)
        for (_, previous_end), (next_start, _) in itertools.pairwise(spans):
            assert next_start >= previous_end  # never two requests at once in one process
    assert elapsed < 8 * 0.3  # they did run side by side: faster than one after another


def test_a_crashed_worker_is_replaced(gateway: RunningGateway) -> None:
    before = {result["pid"] for result in _slow_requests(gateway, 4)}
    assert len(before) == 4
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{gateway.url}/die", timeout=10)

    deadline = time.monotonic() + 30
    after: set[int] = set()
    while len(after) < 4:
        assert time.monotonic() < deadline, f"no replacement worker:\n{gateway.log()}"
        after = {result["pid"] for result in _slow_requests(gateway, 4)}

    assert len(before & after) == 3  # exactly one worker was replaced


def test_sigterm_finishes_the_request_in_flight_then_stops_every_worker(
    tmp_path: Path,
) -> None:
    running = _start_gateway(tmp_path, workers=2)
    try:
        in_flight: dict[str, Any] = {}

        def call() -> None:
            in_flight["response"] = running.get("/slow")

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.1)  # the request is being served
        running.process.send_signal(signal.SIGTERM)
        caller.join(timeout=10)
        assert running.process.wait(timeout=15) == 0
    finally:
        _stop(running.process)

    assert in_flight["response"].status_code == 200
    for pid in running.ready["workers"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
