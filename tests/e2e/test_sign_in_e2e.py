"""Signing in to the local stack as the shop does, then shopping over HTTP with the tokens.

The stack configures the shop's public client; its sign-in page lists the demo users; the
tokens it issues pass the gateway's authorizer; the storefront-facing routes answer.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from typing import Any

import pytest
import requests

from infra.local.demo_data import DEMO_USERS
from tests.e2e.conftest import LocalStackUnderTest

pytestmark = pytest.mark.e2e

ADDRESS = {
    "name": "王芳",
    "phone": "+8613800000002",
    "country": "CN",
    "region": "广东",
    "city": "深圳",
    "line1": "深南大道 1 号",
    "postcode": "518000",
}


def shop_client(stack: LocalStackUnderTest) -> dict[str, Any]:
    return dict(stack.data["web_clients"]["shop"])


def sign_in(stack: LocalStackUnderTest, browser: requests.Session, user_id: str) -> dict[str, Any]:
    shop = shop_client(stack)
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    params = {
        "response_type": "code",
        "client_id": shop["client_id"],
        "redirect_uri": shop["redirect_uri"],
        "scope": shop["scope"],
        "state": secrets.token_hex(8),
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    page = browser.get(shop["authorization_endpoint"], params=params, timeout=10)
    assert page.status_code == 200
    assert all(f'value="{user.id}"' in page.text for user in DEMO_USERS)
    login = shop["authorization_endpoint"].replace("/oauth2/authorize", "/login")
    answer = browser.post(
        login, data={**params, "username": user_id}, allow_redirects=False, timeout=10
    )
    callback = urllib.parse.urlsplit(answer.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == shop["redirect_uri"]
    query = dict(urllib.parse.parse_qsl(callback.query))
    assert query["state"] == params["state"]
    tokens = requests.post(
        shop["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "client_id": shop["client_id"],
            "code": query["code"],
            "redirect_uri": shop["redirect_uri"],
            "code_verifier": verifier,
        },
        headers={"Origin": stack.api_url},
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["Access-Control-Allow-Origin"] == stack.api_url
    return dict(tokens.json())


def test_the_stack_points_links_and_cors_at_its_shop(stack: LocalStackUnderTest) -> None:
    assert stack.env["STOREFRONT_URL"] == f"{stack.api_url}/shop/"
    assert stack.api_url in stack.env["CORS_ALLOW_ORIGINS"].split(",")
    shop = shop_client(stack)
    assert shop["redirect_uri"] == f"{stack.api_url}/shop/callback"
    assert shop["client_id"] in stack.env["JWT_CLIENT_IDS"].split(",")
    preflight = requests.options(
        stack.url("/orders/quote"),
        headers={"Origin": stack.api_url, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == stack.api_url


def test_a_demo_shopper_signs_in_saves_an_address_gets_a_quote_and_signs_out(
    stack: LocalStackUnderTest,
) -> None:
    browser = requests.Session()
    tokens = sign_in(stack, browser, "cust-wang-fang")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    me = requests.get(stack.url("/me"), headers=bearer, timeout=10)
    assert me.status_code == 200 and me.json()["customer_id"] == "cust-wang-fang"
    saved = requests.post(stack.url("/me/addresses"), json=ADDRESS, headers=bearer, timeout=10)
    assert saved.status_code == 201 and saved.json()["is_default"] is True
    cities = requests.get(stack.url("/cities"), timeout=10).json()["items"]
    assert any(city["name"]["zh-CN"] == "深圳" for city in cities)
    categories = requests.get(stack.url("/categories"), timeout=10).json()["items"]
    assert sum(category["product_count"] for category in categories) > 0
    quote = requests.post(
        stack.url("/orders/quote"),
        json={"lines": [{"sku": "EL-EARBUDS-PRO", "quantity": 1}], "shipping_address": ADDRESS},
        headers=bearer,
        timeout=10,
    )
    assert quote.status_code == 200, quote.text
    assert quote.json()["shipments"][0]["estimated_delivery"] is not None

    shop = shop_client(stack)
    refreshed = requests.post(
        shop["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "client_id": shop["client_id"],
            "refresh_token": tokens["refresh_token"],
        },
        timeout=10,
    )
    renewed = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert requests.get(stack.url("/me/addresses"), headers=renewed, timeout=10).ok

    signed_out = browser.get(
        shop["end_session_endpoint"],
        params={"client_id": shop["client_id"], "logout_uri": shop["logout_uri"]},
        allow_redirects=False,
        timeout=10,
    )
    assert signed_out.status_code == 302 and signed_out.headers["Location"] == shop["logout_uri"]
