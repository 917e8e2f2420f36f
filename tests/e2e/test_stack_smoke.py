"""The whole local stack over HTTP: it serves, it is described, it guards its routes."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from infra.local.stack import GATEWAY_EMULATORS, stack_file_for
from tests.e2e.conftest import (
    REPO_ROOT,
    STARTUP_TIMEOUT_SECONDS,
    LocalStackUnderTest,
    free_ports,
)

pytestmark = pytest.mark.e2e


def _spec(stack: LocalStackUnderTest) -> dict[str, Any]:
    response = requests.get(stack.url("/openapi.json"), timeout=10)
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def test_health_answers_ok(stack: LocalStackUnderTest) -> None:
    response = requests.get(stack.url("/health"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_spec_and_docs_are_served(stack: LocalStackUnderTest) -> None:
    spec = _spec(stack)
    assert spec["openapi"].startswith("3.1")
    assert "/health" in spec["paths"]
    docs = requests.get(stack.url("/docs"), timeout=10)
    assert docs.status_code == 200
    assert docs.headers["Content-Type"].startswith("text/html")


def test_products_lists_the_demo_catalogue(stack: LocalStackUnderTest) -> None:
    from infra.local.demo_data import PRODUCTS

    listed: dict[str, dict] = {}
    cursor = None
    while True:  # other tests add products of their own; walk every page
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = requests.get(stack.url("/products"), params=params, timeout=10)
        assert response.status_code == 200
        page = response.json()
        listed.update((item["sku"], item) for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    active_demo = [p for p in PRODUCTS if p.sku in listed]
    assert len(active_demo) >= 30, "the demo catalogue is missing"
    for product in active_demo:
        item = listed[product.sku]
        assert item["name"] == {"zh-CN": product.name_zh, "en": product.name_en}
        assert item["price"] == {"amount": product.price_fen, "currency": "CNY"}


def test_a_token_from_the_stack_passes_its_authorizer(stack: LocalStackUnderTest) -> None:
    if "/warehouses" not in _spec(stack)["paths"]:
        pytest.skip("no authorized route to try yet")
    ops = requests.get(stack.url("/warehouses"), headers=stack.auth("ops-1", "ops"), timeout=10)
    assert ops.status_code == 200
    assert isinstance(ops.json()["items"], list)

    anonymous = requests.get(stack.url("/warehouses"), timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"

    forged = requests.get(
        stack.url("/warehouses"), headers={"Authorization": "Bearer not.a.jwt"}, timeout=10
    )
    assert forged.status_code == 401
    assert forged.json()["error"] == "unauthorized"


def test_unknown_route_is_404_in_our_error_shape(stack: LocalStackUnderTest) -> None:
    response = requests.get(stack.url("/no/such/thing"), timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "not_found",
        "message": response.json()["message"],
        "details": None,
    }


def test_stack_file_describes_the_running_stack(stack: LocalStackUnderTest) -> None:
    data = stack.data
    assert data["api_url"] == f"http://127.0.0.1:{stack.port}"
    assert data["jwt_client_id"]
    assert data["issuer"].startswith("http://127.0.0.1:")
    jwks = requests.get(data["jwks_url"], timeout=10)
    assert jwks.status_code == 200
    assert jwks.json()["keys"]
    env = stack.env
    assert env["AWS_ENDPOINT_URL"] == stack.moto_url
    assert env["STAGE"] == "local"
    # The resources the app is pointed at exist in the emulator.
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = dynamodb.describe_table(TableName=env["TABLE_NAME"])["Table"]
    assert table["LatestStreamArn"] == env["TABLE_STREAM_ARN"]


def test_stack_file_names_the_payment_emulators_and_each_answers(
    stack: LocalStackUnderTest,
) -> None:
    emulators = stack.data["emulators"]
    env = stack.env
    assert env["PUBLIC_API_URL"] == stack.api_url
    assert env["STRIPE_API_BASE"] == emulators["stripe"]
    assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    customers = requests.get(
        f"{emulators['stripe']}/v1/customers", auth=(env["STRIPE_API_KEY"], ""), timeout=10
    )
    assert customers.status_code == 200
    assert customers.json()["object"] == "list"
    for key, module, _class, _title in GATEWAY_EMULATORS:
        if importlib.util.find_spec(module) is None:
            continue  # not there yet: the stack starts without it
        assert emulators[key].startswith("http://127.0.0.1:")
        assert requests.get(emulators[key], timeout=10).status_code < 500


def _health_status(api: str) -> int | None:
    try:
        return requests.get(f"{api}/health", timeout=10).status_code
    except requests.RequestException:
        return None  # not listening yet


def test_sigterm_to_the_stack_alone_stops_everything_it_started(tmp_path: Path) -> None:
    port, moto_port = free_ports(2)
    with (tmp_path / "stack.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.local.stack",
                "--port",
                str(port),
                "--moto-port",
                str(moto_port),
                "--workers",
                "2",
                "--no-demo",
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack_file = stack_file_for(port)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        # /health is the readiness signal; the stack file is in place before it says 200.
        while _health_status(f"http://127.0.0.1:{port}") != 200:
            assert process.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, "the stack did not start"
            time.sleep(0.25)
        assert stack_file.exists()

        process.send_signal(signal.SIGTERM)  # the stack only, not its process group
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # nothing it started is left running
        assert not stack_file.exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


STACK = [sys.executable, "-m", "infra.local.stack"]


def test_health_says_200_only_once_demo_data_and_tokens_work(tmp_path: Path) -> None:
    from infra.local.identity import mint_for_stack

    port, moto_port = free_ports(2)
    with (tmp_path / "stack.log").open("wb") as log:
        process = subprocess.Popen(
            [*STACK, "--port", str(port), "--moto-port", str(moto_port), "--workers", "2"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        answers: set[int] = set()
        while True:
            assert process.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, "the stack did not start"
            with contextlib.suppress(requests.RequestException):
                health = requests.get(f"{api}/health", timeout=5)
                answers.add(health.status_code)
                if health.status_code == 200:
                    break
                assert health.status_code == 503
                assert health.json()["error"] == "starting"
            time.sleep(0.05)

        # The moment it says 200, a script can mint a token and find the demo catalogue.
        token = mint_for_stack(stack_file_for(port), "first-script", ["customers"])
        me = requests.get(f"{api}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200
        assert requests.get(f"{api}/products?limit=1", timeout=10).json()["items"]
        assert 503 in answers  # it was polled while starting, and said so
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
