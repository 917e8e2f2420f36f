"""Signing in as a web app does: authorization code + PKCE against the local identity provider.

The provider runs over real HTTP (``requests``, redirects not followed, so each step is
seen); the tokens it issues then call the app through Chalice's test client, whose
authorizer verifies them against the provider's JWKS exactly as in AWS.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import requests

from infra.local.hosted_ui import User
from infra.local.identity import LocalIdentityProvider

if TYPE_CHECKING:
    from conftest import Api

SHOP_CLIENT = "orderdesk-test-shop"
CALLBACK = "http://127.0.0.1:8999/shop/callback"
SIGNED_OUT = "http://127.0.0.1:8999/shop/"
SHOP_ORIGIN = "http://127.0.0.1:8999"


@pytest.fixture(scope="module")
def provider(identity: LocalIdentityProvider) -> LocalIdentityProvider:
    identity.add_web_client(SHOP_CLIENT, [CALLBACK], [SIGNED_OUT])
    identity.set_users(
        [
            User(
                "cust-li-wei",
                ("customers",),
                email="li.wei@example.com",
                name="李伟",
                phone_number="+8613800000001",
                locale="zh-CN",
            ),
            User("ops-zhang-min", ("ops",), email="zhang.min@example.com", name="张敏"),
        ]
    )
    return identity


@pytest.fixture
def shop_api(provider: LocalIdentityProvider, api: Api) -> Api:
    # ``api`` reads the provider's settings after the shop client is registered.
    return api


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(challenge: str, **overrides: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": SHOP_CLIENT,
        "redirect_uri": CALLBACK,
        "state": "st-" + secrets.token_hex(4),
        "scope": "openid email phone profile",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }


def query_of(location: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def sign_in(
    provider: LocalIdentityProvider,
    session: requests.Session,
    user_id: str,
    challenge: str,
    **overrides: str,
) -> dict[str, str]:
    """Open the sign-in page, pick ``user_id``; the callback's query parameters."""
    params = authorize_params(challenge, **overrides)
    page = session.get(
        f"{provider.base_url}/oauth2/authorize", params=params, allow_redirects=False
    )
    assert page.status_code == 200, page.text
    form = {**params, "username": user_id}
    answer = session.post(f"{provider.base_url}/login", data=form, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    callback = query_of(answer.headers["Location"])
    assert callback["state"] == params["state"]
    return callback


def token_request(provider: LocalIdentityProvider, **form: str) -> requests.Response:
    return requests.post(
        f"{provider.base_url}/oauth2/token",
        data={"client_id": SHOP_CLIENT, **form},
        headers={"Origin": SHOP_ORIGIN},
        timeout=5,
    )


def exchange(provider: LocalIdentityProvider, code: str, verifier: str) -> requests.Response:
    return token_request(
        provider,
        grant_type="authorization_code",
        code=code,
        redirect_uri=CALLBACK,
        code_verifier=verifier,
    )


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_names_the_hosted_ui_endpoints(provider: LocalIdentityProvider) -> None:
    document = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=5).json()

    assert document["issuer"] == provider.issuer
    assert document["authorization_endpoint"] == f"{provider.base_url}/oauth2/authorize"
    assert document["token_endpoint"] == f"{provider.base_url}/oauth2/token"
    assert document["end_session_endpoint"] == f"{provider.base_url}/logout"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert requests.get(document["jwks_uri"], timeout=5).json()["keys"]


def test_sign_in_page_lists_demo_users_with_their_groups(
    provider: LocalIdentityProvider,
) -> None:
    _, challenge = pkce_pair()
    page = requests.get(
        f"{provider.base_url}/oauth2/authorize",
        params=authorize_params(challenge),
        allow_redirects=False,
        timeout=5,
    )

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'value="cust-li-wei"' in page.text and "李伟" in page.text
    assert "ops-zhang-min" in page.text and "ops" in page.text
    assert 'name="new_username"' in page.text


def test_full_pkce_flow_signs_in_calls_the_api_refreshes_and_signs_out(
    provider: LocalIdentityProvider, shop_api: Api
) -> None:
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, browser, "cust-li-wei", challenge, nonce="n-1")

    answer = exchange(provider, callback["code"], verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert answer.headers["Cache-Control"] == "no-store"
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    access, identity = claims_of(tokens["access_token"]), claims_of(tokens["id_token"])
    assert access["token_use"] == "access" and access["client_id"] == SHOP_CLIENT
    assert access["cognito:groups"] == ["customers"] and access["username"] == "cust-li-wei"
    assert set(access["scope"].split()) == {"openid", "email", "phone", "profile"}
    assert "aud" not in access
    assert identity["token_use"] == "id" and identity["aud"] == SHOP_CLIENT
    assert identity["nonce"] == "n-1"
    assert identity["email"] == "li.wei@example.com" and identity["email_verified"] is True
    assert identity["phone_number"] == "+8613800000001"
    assert identity["phone_number_verified"] is True
    assert identity["name"] == "李伟" and identity["locale"] == "zh-CN"
    refresh_token = tokens["refresh_token"]
    assert refresh_token.count(".") != 2  # opaque, not a JWT

    # The API's authorizer takes the access token (client_id) and the ID token (aud).
    me = shop_api.client.http.get("/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.body
    assert me.json_body["customer_id"] == "cust-li-wei"
    by_id_token = shop_api.client.http.get("/me", headers=bearer(tokens["id_token"]))
    assert by_id_token.status_code == 200

    refreshed = token_request(provider, grant_type="refresh_token", refresh_token=refresh_token)
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert "refresh_token" not in renewed
    assert renewed["access_token"] != tokens["access_token"]
    assert claims_of(renewed["access_token"])["cognito:groups"] == ["customers"]
    again = shop_api.client.http.get("/me", headers=bearer(renewed["access_token"]))
    assert again.status_code == 200

    # While the provider's session lasts, authorize answers at once with a new code.
    _, challenge2 = pkce_pair()
    silent = browser.get(
        f"{provider.base_url}/oauth2/authorize",
        params=authorize_params(challenge2),
        allow_redirects=False,
    )
    assert silent.status_code == 302 and "code" in query_of(silent.headers["Location"])

    signed_out = browser.get(
        f"{provider.base_url}/logout",
        params={"client_id": SHOP_CLIENT, "logout_uri": SIGNED_OUT},
        allow_redirects=False,
    )
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == SIGNED_OUT
    assert "Max-Age=0" in signed_out.headers["Set-Cookie"]
    after = requests.get(
        f"{provider.base_url}/oauth2/authorize",
        params=authorize_params(challenge2),
        cookies=browser.cookies,
        allow_redirects=False,
        timeout=5,
    )
    assert after.status_code == 200  # the sign-in page again: the session is over


def test_staff_user_tokens_carry_their_group(provider: LocalIdentityProvider) -> None:
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, requests.Session(), "ops-zhang-min", challenge)
    tokens = exchange(provider, callback["code"], verifier).json()

    assert claims_of(tokens["access_token"])["cognito:groups"] == ["ops"]


def test_a_new_user_id_signs_in_as_a_customer(
    provider: LocalIdentityProvider, shop_api: Api
) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge)
    answer = requests.post(
        f"{provider.base_url}/login",
        data={**params, "new_username": "new-shopper-7"},
        allow_redirects=False,
        timeout=5,
    )
    code = query_of(answer.headers["Location"])["code"]
    tokens = exchange(provider, code, verifier).json()

    assert claims_of(tokens["access_token"])["cognito:groups"] == ["customers"]
    me = shop_api.client.http.get("/me", headers=bearer(tokens["access_token"]))
    assert me.json_body["customer_id"] == "new-shopper-7"


def test_a_malformed_new_user_id_is_refused_on_the_page(
    provider: LocalIdentityProvider,
) -> None:
    _, challenge = pkce_pair()
    answer = requests.post(
        f"{provider.base_url}/login",
        data={**authorize_params(challenge), "new_username": "<script>"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400
    assert "<script>" not in answer.text and 'role="alert"' in answer.text


def test_wrong_code_verifier_is_invalid_grant_and_burns_the_code(
    provider: LocalIdentityProvider,
) -> None:
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, requests.Session(), "cust-li-wei", challenge)

    wrong = exchange(provider, callback["code"], pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "access_token" not in wrong.json()
    # The code is spent by the failed attempt: the right verifier is too late now.
    assert exchange(provider, callback["code"], verifier).json()["error"] == "invalid_grant"


def test_a_code_is_used_once(provider: LocalIdentityProvider) -> None:
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, requests.Session(), "cust-li-wei", challenge)

    assert exchange(provider, callback["code"], verifier).status_code == 200
    reused = exchange(provider, callback["code"], verifier)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": reused.json()["error_description"],
    }


def test_an_expired_code_is_refused(provider: LocalIdentityProvider) -> None:
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, requests.Session(), "cust-li-wei", challenge)
    clock = provider.hosted_ui.clock
    provider.hosted_ui.clock = lambda: clock() + 301
    try:
        answer = exchange(provider, callback["code"], verifier)
    finally:
        provider.hosted_ui.clock = clock

    assert answer.json()["error"] == "invalid_grant"


def test_code_exchange_needs_the_same_redirect_uri(provider: LocalIdentityProvider) -> None:
    verifier, challenge = pkce_pair()
    callback = sign_in(provider, requests.Session(), "cust-li-wei", challenge)
    answer = token_request(
        provider,
        grant_type="authorization_code",
        code=callback["code"],
        redirect_uri=SIGNED_OUT,
        code_verifier=verifier,
    )

    assert answer.json()["error"] == "invalid_grant"


def test_unknown_redirect_uri_gets_an_error_page_and_no_redirect(
    provider: LocalIdentityProvider,
) -> None:
    _, challenge = pkce_pair()
    answer = requests.get(
        f"{provider.base_url}/oauth2/authorize",
        params=authorize_params(challenge, redirect_uri="https://evil.example/cb"),
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert 'data-error="redirect_mismatch"' in answer.text


def test_unknown_client_gets_an_error_page(provider: LocalIdentityProvider) -> None:
    _, challenge = pkce_pair()
    answer = requests.get(
        f"{provider.base_url}/oauth2/authorize",
        params=authorize_params(challenge, client_id="someone-else"),
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400 and "Location" not in answer.headers
    assert 'data-error="invalid_client"' in answer.text


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
    ],
)
def test_bad_authorize_requests_go_back_to_the_callback_with_the_error(
    provider: LocalIdentityProvider, override: dict[str, str], error: str
) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge, **override)
    answer = requests.get(
        f"{provider.base_url}/oauth2/authorize", params=params, allow_redirects=False, timeout=5
    )

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    callback = query_of(answer.headers["Location"])
    assert callback["error"] == error and callback["state"] == params["state"]
    assert "code" not in callback


def test_token_endpoint_refuses_unknown_clients_and_grants(
    provider: LocalIdentityProvider,
) -> None:
    unknown_client = requests.post(
        f"{provider.base_url}/oauth2/token",
        data={"client_id": "nobody", "grant_type": "refresh_token", "refresh_token": "x"},
        timeout=5,
    )
    assert unknown_client.status_code == 400
    assert unknown_client.json()["error"] == "invalid_client"

    password = token_request(provider, grant_type="password", username="a", password="b")
    assert password.json()["error"] == "unsupported_grant_type"

    as_json = requests.post(
        f"{provider.base_url}/oauth2/token",
        json={"client_id": SHOP_CLIENT, "grant_type": "refresh_token"},
        timeout=5,
    )
    assert as_json.json()["error"] == "invalid_request"

    forged = token_request(provider, grant_type="refresh_token", refresh_token="made-up")
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"


def test_logout_refuses_an_unregistered_logout_uri(provider: LocalIdentityProvider) -> None:
    answer = requests.get(
        f"{provider.base_url}/logout",
        params={"client_id": SHOP_CLIENT, "logout_uri": "https://evil.example/"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 400 and "Location" not in answer.headers


def test_token_preflight_allows_only_the_clients_origins(
    provider: LocalIdentityProvider,
) -> None:
    allowed = requests.options(
        f"{provider.base_url}/oauth2/token", headers={"Origin": SHOP_ORIGIN}, timeout=5
    )
    other = requests.options(
        f"{provider.base_url}/oauth2/token",
        headers={"Origin": "https://evil.example"},
        timeout=5,
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert "Access-Control-Allow-Origin" not in other.headers
