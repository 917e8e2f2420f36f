"""Input built to break a parser: a clear 400 or 415 in our error shape, never a 500."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import Api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ADDRESS = {
    "name": "Li",
    "phone": "+8613800000000",
    "country": "CN",
    "region": "上海",
    "city": "上海市",
    "line1": "南京东路 1 号",
    "postcode": "200001",
}

JSON_ROUTES = [
    ("POST", "/orders"),
    ("PUT", "/me"),
    ("PUT", "/products/SKU-1"),
]


def deeply_nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def cursor_of(payload_text: str) -> str:
    return base64.urlsafe_b64encode(payload_text.encode()).decode().rstrip("=")


def anyone(api: Api) -> dict[str, str]:
    """A caller every route lets through to its body."""
    return api.token("both-1", "customers", "ops")


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.json_body["error"] == code
    assert set(response.json_body) == {"error", "message", "details"}


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_json_nested_a_thousand_levels_is_400_invalid_json(
    api: Api, method: str, path: str
) -> None:
    for levels in (1_000, 5_000):
        response = api.request(method, path, deeply_nested(levels), headers=anyone(api))
        assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_an_integer_of_five_thousand_digits_is_400_invalid_json(
    api: Api, method: str, path: str
) -> None:
    huge = "9" * 5_000
    body = (
        '{"lines": [{"sku": "SKU-1", "quantity": ' + huge + "}], "
        '"shipping_address": ' + json.dumps(ADDRESS) + "}"
    )
    response = api.request(method, path, body, headers=anyone(api))
    assert_error(response, 400, "invalid_json")


def test_json_that_does_not_parse_is_400_invalid_json(api: Api) -> None:
    response = api.request("POST", "/orders", "{not json", headers=api.customer)
    assert_error(response, 400, "invalid_json")


def test_deep_but_reasonable_json_still_reaches_validation(api: Api) -> None:
    response = api.request("POST", "/orders", {"lines": [[[[{"a": 1}]]]]}, headers=api.customer)
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize(
    "payload",
    [
        deeply_nested(1_000),
        '{"s": "x", "p": ' + deeply_nested(700) + "}",
        '{"s": "x", "p": {"k": ' + "9" * 1_000 + "}}",
    ],
)
def test_a_cursor_decoding_to_hostile_json_is_400_invalid_cursor_without_signing_in(
    api: Api, payload: str
) -> None:
    cursor = cursor_of(payload)[:2048]
    response = api.client.http.get(f"/products?cursor={cursor}")
    assert_error(response, 400, "invalid_cursor")
    assert response.json_body["details"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_a_non_json_content_type_is_415_in_our_error_shape(
    api: Api, method: str, path: str, content_type: str
) -> None:
    response = api.request(
        method, path, "a=1", headers={**anyone(api), "Content-Type": content_type}
    )
    assert_error(response, 415, "unsupported_media_type")
    assert response.json_body["details"]["content_type"] == content_type


def test_json_with_a_charset_is_still_json(api: Api) -> None:
    response = api.request(
        "PUT",
        "/me",
        {"email": None},
        headers={**api.customer, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code != 415


# --- the same shapes as properties, so they stay fixed ---------------------------------------

PROPERTY = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    route=st.sampled_from(JSON_ROUTES),
    depth=st.integers(min_value=1_000, max_value=20_000),
    opener=st.sampled_from(["[", '{"a":']),
)
def test_any_deep_nesting_on_any_json_route_is_400_invalid_json(
    api: Api, route: tuple[str, str], depth: int, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    body = opener * depth + ("1" if opener != "[" else "") + closer * depth
    assert_error(api.request(*route, body, headers=anyone(api)), 400, "invalid_json")


@PROPERTY
@given(route=st.sampled_from(JSON_ROUTES), digits=st.integers(min_value=4_300, max_value=8_000))
def test_any_huge_integer_on_any_json_route_is_400_invalid_json(
    api: Api, route: tuple[str, str], digits: int
) -> None:
    body = '{"quantity": ' + "7" * digits + "}"
    assert_error(api.request(*route, body, headers=anyone(api)), 400, "invalid_json")


@PROPERTY
@given(depth=st.integers(min_value=100, max_value=1_500))
def test_any_deeply_nested_cursor_is_400_invalid_cursor(api: Api, depth: int) -> None:
    cursor = cursor_of('{"s": "x", "p": ' + deeply_nested(depth) + "}")[:2048]
    response = api.client.http.get(f"/products?cursor={cursor}")
    assert_error(response, 400, "invalid_cursor")


@PROPERTY
@given(
    route=st.sampled_from(JSON_ROUTES),
    media_type=st.from_regex(r"(text|image|audio|application)/x-[a-z]{1,10}", fullmatch=True),
)
def test_any_non_json_content_type_is_415_in_our_shape(
    api: Api, route: tuple[str, str], media_type: str
) -> None:
    response = api.request(*route, "{}", headers={**anyone(api), "Content-Type": media_type})
    assert_error(response, 415, "unsupported_media_type")
