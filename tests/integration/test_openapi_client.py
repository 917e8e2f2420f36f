"""The OpenAPI document is good enough to generate a working client from.

``openapi-python-client`` generates a client from the app's own document; the client then
places an order with an Idempotency-Key through the real app (Chalice's test client behind
an httpx transport) and sees the replay header on a retry. The document also declares, for
every POST whose view reads Idempotency-Key, that header.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from test_orders_api import build_world, levels, order_body, receive

from chalicelib.api.openapi import build_spec
from chalicelib.services import stock

if TYPE_CHECKING:
    from conftest import Api

PACKAGE = "orderdesk_generated_client"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from app import app

    return build_spec(app)


@pytest.fixture(scope="module")
def generated(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("client")
    (folder / "openapi.json").write_text(json.dumps(spec))
    (folder / "config.yaml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--output-path",
            str(folder / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(folder / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every schema and operation must make it into the client.
    assert "Warning" not in result.stdout, result.stdout
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def transport_to(api: Api) -> httpx.MockTransport:
    """Hands each request the generated client makes to the app under Chalice's test client."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        answer = api.client.http.request(
            request.method, path, body=request.content, headers=dict(request.headers)
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.body)

    return httpx.MockTransport(handle)


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    yield api
    stock.forget_cached_warehouses()


def test_a_generated_client_places_an_order_with_an_idempotency_key(
    generated: Any, world: Api
) -> None:
    receive("MUG", "SH", 5)
    place_order = importlib.import_module(f"{PACKAGE}.api.orders.place_order")
    models = importlib.import_module(f"{PACKAGE}.models")
    token = world.token("customer-1", "customers")["Authorization"].split(" ", 1)[1]
    client = generated.AuthenticatedClient(
        base_url="http://orderdesk.test",
        token=token,
        httpx_args={"transport": transport_to(world)},
    )
    body = models.PlaceOrderIn.from_dict(order_body({"MUG": 2}))

    first = place_order.sync_detailed(client=client, body=body, idempotency_key="checkout-1")
    again = place_order.sync_detailed(client=client, body=body, idempotency_key="checkout-1")

    assert first.status_code == 201
    order = first.parsed
    assert isinstance(order, models.OrderBody)
    assert order.total.amount == 2 * 2900 + order.shipping_fee.amount
    assert first.headers["Location"] == f"/orders/{order.order_id}"
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.order_id == order.order_id
    assert levels("MUG")["SH"] == (5, 2, 3)  # reserved once


def test_every_post_that_reads_idempotency_key_declares_it(spec: dict[str, Any]) -> None:
    from app import app

    readers = []
    for path, methods in app.routes.items():
        entry = methods.get("POST")
        if entry is None:
            continue
        view = inspect.unwrap(entry.view_function)
        if "idempotency_key(" in inspect.getsource(view):
            readers.append(path)
    assert {"/orders", "/orders/{order_id}/payments", "/orders/{order_id}/refunds"} <= set(readers)

    for path in readers:
        operation = spec["paths"][path]["post"]
        names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert names == ["Idempotency-Key"], path
        created = operation["responses"]["201"]["headers"]
        assert set(created) == {"Location", "Idempotent-Replayed"}
        assert operation["responses"]["503"]["headers"] == {
            "Retry-After": {"$ref": "#/components/headers/Retry-After"}
        }


def test_header_declarations_are_components(spec: dict[str, Any]) -> None:
    headers = spec["components"]["headers"]

    assert set(headers) == {"Location", "Idempotent-Replayed", "Retry-After"}
    assert headers["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}
    quote = spec["paths"]["/orders/quote"]["post"]
    assert "parameters" not in quote  # quoting writes nothing: no key to send
    created = spec["paths"]["/me/addresses"]["post"]["responses"]["201"]["headers"]
    assert set(created) == {"Location"}


def test_the_document_stays_valid_openapi(spec: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(spec)
