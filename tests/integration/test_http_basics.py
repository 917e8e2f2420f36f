"""Cross-cutting HTTP behaviour of the real app: CORS and the error shape."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from app import app
from chalicelib.settings import get_settings

ALLOWED = "http://localhost:3000"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", f"{ALLOWED},https://shop.example.com")
    get_settings.cache_clear()
    with Client(app) as test_client:
        yield test_client
    get_settings.cache_clear()


def test_allowed_origin_is_echoed_with_exposed_headers(client: Client) -> None:
    response = client.http.get("/health", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Idempotent-Replayed" in response.headers["Access-Control-Expose-Headers"]
    assert "Location" in response.headers["Access-Control-Expose-Headers"]


def test_unlisted_origin_gets_no_cors_grant(client: Client) -> None:
    response = client.http.get("/health", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_allows_the_storefront_headers(client: Client) -> None:
    response = client.http.request("OPTIONS", "/health", headers={"Origin": ALLOWED})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= allowed
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] != "*"


def test_every_route_path_has_a_preflight_view() -> None:
    assert all("OPTIONS" in views for views in app.routes.values())


def test_unhandled_error_answers_500_in_the_error_shape(client: Client) -> None:
    entry = app.routes["/health"]["GET"]
    original = entry.view_function

    def broken() -> None:
        raise RuntimeError("boom")

    from chalicelib.api.errors import as_error_response

    entry.view_function = as_error_response(broken)
    try:
        response = client.http.get("/health")
    finally:
        entry.view_function = original
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body == {
        "error": "internal_error",
        "message": "An internal error occurred.",
        "details": None,
    }


def test_health_is_503_starting_until_the_ready_file_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    ready = tmp_path / "serving-8000"
    monkeypatch.setenv("HEALTH_READY_FILE", str(ready))
    get_settings.cache_clear()
    with Client(app) as test_client:
        starting = test_client.http.get("/health")
        ready.touch()
        serving = test_client.http.get("/health")
    get_settings.cache_clear()

    assert starting.status_code == 503
    assert json.loads(starting.body)["error"] == "starting"
    assert starting.headers["Retry-After"] == "1"
    assert serving.status_code == 200
    assert json.loads(serving.body) == {"status": "ok"}
