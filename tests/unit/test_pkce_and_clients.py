"""The hosted UI's rules without HTTP: PKCE's S256, and codes and refresh tokens bound to
the client they were issued to."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from infra.local.hosted_ui import HostedUi, User, s256

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_s256_matches_the_rfc_7636_example() -> None:
    assert s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def ui() -> HostedUi:
    hosted = HostedUi(issuer=lambda: "http://idp/pool", sign=lambda claims: json.dumps(claims))
    hosted.users = (User("u-1", ("customers",), email="u1@example.com"),)
    hosted.add_client("shop", ["http://app/cb"], ["http://app/"])
    hosted.add_client("console", ["http://app/console/cb"], ["http://app/console/"])
    return hosted


def code_for(hosted: HostedUi, client_id: str, redirect_uri: str) -> str:
    reply = hosted.login(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256",
            "username": "u-1",
        }
    )
    location = dict(reply.headers)["Location"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]


def token(hosted: HostedUi, **form: str) -> tuple[int, dict[str, Any]]:
    reply = hosted.handle("POST", "/oauth2/token", "", urllib.parse.urlencode(form).encode(), FORM)
    return reply.status, json.loads(reply.body)


def test_a_code_issued_to_one_client_is_refused_to_another() -> None:
    hosted = ui()
    code = code_for(hosted, "shop", "http://app/cb")

    status, body = token(
        hosted,
        grant_type="authorization_code",
        client_id="console",
        code=code,
        redirect_uri="http://app/cb",
        code_verifier=VERIFIER,
    )

    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_refresh_token_works_only_for_its_client() -> None:
    hosted = ui()
    code = code_for(hosted, "shop", "http://app/cb")
    _, tokens = token(
        hosted,
        grant_type="authorization_code",
        client_id="shop",
        code=code,
        redirect_uri="http://app/cb",
        code_verifier=VERIFIER,
    )
    access = json.loads(tokens["access_token"])
    assert access["client_id"] == "shop" and access["cognito:groups"] == ["customers"]

    refresh = tokens["refresh_token"]
    status, body = token(
        hosted, grant_type="refresh_token", client_id="console", refresh_token=refresh
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = token(
        hosted, grant_type="refresh_token", client_id="shop", refresh_token=refresh
    )
    assert status == 200 and json.loads(body["id_token"])["aud"] == "shop"


def test_a_repeated_parameter_is_not_taken() -> None:
    hosted = ui()
    reply = hosted.handle(
        "POST",
        "/oauth2/token",
        "",
        b"grant_type=refresh_token&client_id=shop&client_id=console&refresh_token=x",
        FORM,
    )

    assert json.loads(reply.body)["error"] == "invalid_client"
