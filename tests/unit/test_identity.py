"""Token verification (chalicelib.adapters.identity) against a JWKS served on a free port."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from chalicelib.adapters.identity import (
    Claims,
    InvalidToken,
    JwksUnavailable,
    TokenVerifier,
)
from infra.local import token as token_cli
from infra.local.identity import CLIENT_ID, LocalIdentityProvider, mint_for_stack, public_jwk

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- small factories -------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def provider(keys_dir: Path) -> Iterator[LocalIdentityProvider]:
    idp = LocalIdentityProvider(keys_dir / "idp-key.pem")
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def impostor(keys_dir: Path, provider: LocalIdentityProvider) -> LocalIdentityProvider:
    """Claims to be our issuer but signs with a different key."""
    return LocalIdentityProvider(keys_dir / "impostor-key.pem", issuer=provider.issuer)


def verifier_for(provider: LocalIdentityProvider, **options: Any) -> TokenVerifier:
    return TokenVerifier(provider.issuer, provider.jwks_url, [provider.client_id], **options)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def access_claims(provider: LocalIdentityProvider, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "username": "alice",
        "iss": provider.issuer,
        "token_use": "access",
        "client_id": provider.client_id,
        "cognito:groups": ["customers"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RotatingJwksServer:
    """A JWKS endpoint whose key list a test can change, counting how often it is fetched."""

    def __init__(self, *providers: LocalIdentityProvider) -> None:
        self.keys = [public_jwk(p._private_key.public_key()) for p in providers]
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/jwks.json"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def publish(self, provider: LocalIdentityProvider) -> None:
        self.keys.append(public_jwk(provider._private_key.public_key()))

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- valid tokens ----------------------------------------------------------------------


def test_access_token_yields_user_groups_and_token_use(provider: LocalIdentityProvider) -> None:
    token = provider.mint("alice", ["customers", "support"])

    claims = verifier_for(provider).verify(token)

    assert claims == Claims(
        user_id="alice",
        groups=frozenset({"customers", "support"}),
        token_use="access",
        client_id=CLIENT_ID,
        email=None,
    )


def test_id_token_is_accepted_for_our_audience_and_carries_email(
    provider: LocalIdentityProvider,
) -> None:
    token = provider.mint("bob", ["ops"], token_use="id", email="bob@example.com")

    claims = verifier_for(provider).verify(token)

    assert (claims.user_id, claims.token_use, claims.email) == ("bob", "id", "bob@example.com")
    assert claims.groups == frozenset({"ops"})


def test_user_without_groups_has_no_groups(provider: LocalIdentityProvider) -> None:
    token = provider.mint("carol", [])
    assert "cognito:groups" not in jwt.decode(token, options={"verify_signature": False})

    assert verifier_for(provider).verify(token).groups == frozenset()


def test_username_is_the_user_id_when_sub_is_absent(provider: LocalIdentityProvider) -> None:
    token = provider.sign(access_claims(provider, sub=None, username="dave"))

    assert verifier_for(provider).verify(token).user_id == "dave"


def test_token_within_leeway_of_expiry_is_still_accepted(provider: LocalIdentityProvider) -> None:
    token = provider.mint("alice", ["customers"], expires_in=-5)

    assert verifier_for(provider).verify(token).user_id == "alice"


# --- rejected tokens -------------------------------------------------------------------


def assert_rejected(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken) as raised:
        verifier.verify(token)
    assert raised.value.reason == reason
    if token:
        assert token not in str(raised.value)


def test_expired_token_is_rejected(provider: LocalIdentityProvider) -> None:
    token = provider.mint("alice", ["customers"], expires_in=-120)

    assert_rejected(verifier_for(provider), token, "token expired")


def test_token_signed_with_another_key_under_our_kid_is_rejected(
    provider: LocalIdentityProvider, impostor: LocalIdentityProvider
) -> None:
    forged = impostor.sign(access_claims(provider), headers={"kid": provider.kid})

    assert_rejected(verifier_for(provider), forged, "bad signature")


def test_token_with_edited_claims_is_rejected(provider: LocalIdentityProvider) -> None:
    header, _, signature = provider.mint("alice", ["customers"]).split(".")
    escalated = access_claims(provider, **{"cognito:groups": ["ops"]})
    tampered = f"{header}.{b64url(json.dumps(escalated).encode())}.{signature}"

    assert_rejected(verifier_for(provider), tampered, "bad signature")


def test_token_from_another_issuer_is_rejected(provider: LocalIdentityProvider) -> None:
    other_issuer = LocalIdentityProvider(provider.key_path, issuer=provider.issuer + "-other")

    assert_rejected(verifier_for(provider), other_issuer.mint("alice", ["ops"]), "wrong issuer")


def test_access_token_for_another_client_is_rejected(provider: LocalIdentityProvider) -> None:
    other_client = LocalIdentityProvider(
        provider.key_path, issuer=provider.issuer, client_id="someone-elses-app"
    )

    assert_rejected(verifier_for(provider), other_client.mint("alice", ["ops"]), "wrong client id")


def test_id_token_for_another_audience_is_rejected(provider: LocalIdentityProvider) -> None:
    other_client = LocalIdentityProvider(
        provider.key_path, issuer=provider.issuer, client_id="someone-elses-app"
    )
    token = other_client.mint("alice", ["ops"], token_use="id")

    assert_rejected(verifier_for(provider), token, "wrong audience")


def test_unsigned_alg_none_token_is_rejected(provider: LocalIdentityProvider) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": provider.kid}
    forged = unsigned_parts(header, access_claims(provider, **{"cognito:groups": ["ops"]})) + "."

    assert_rejected(verifier_for(provider), forged, "unsupported algorithm")


def test_hs256_token_using_the_public_key_as_secret_is_rejected(
    provider: LocalIdentityProvider,
) -> None:
    public_pem = provider._private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned_parts(
        {"alg": "HS256", "typ": "JWT", "kid": provider.kid}, access_claims(provider)
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url(signature)}"

    assert_rejected(verifier_for(provider), forged, "unsupported algorithm")


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"token_use": "refresh"}, "unsupported token_use"),
        ({"token_use": None}, "missing claim token_use"),
        ({"exp": None}, "missing claim exp"),
        ({"iss": None}, "missing claim iss"),
        ({"sub": None, "username": None}, "missing or malformed subject"),
        ({"sub": "alice#ORDER#1", "username": None}, "missing or malformed subject"),
        ({"cognito:groups": "ops"}, "malformed cognito:groups"),
        ({"iat": int(time.time()) + 3600}, "token not yet valid"),
        ({"nbf": int(time.time()) + 3600}, "token not yet valid"),
    ],
)
def test_token_with_bad_claims_is_rejected(
    provider: LocalIdentityProvider, overrides: dict[str, Any], reason: str
) -> None:
    token = provider.sign(access_claims(provider, **overrides))

    assert_rejected(verifier_for(provider), token, reason)


def test_token_without_kid_is_rejected(provider: LocalIdentityProvider) -> None:
    token = jwt.encode(access_claims(provider), provider._private_key, algorithm="RS256")

    assert_rejected(verifier_for(provider), token, "missing key id")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        "a.b.c",
        "Bearer",
        "eyJhbGciOiJSUzI1NiJ9.!!!!.sig",
        "x" * 20_000,
    ],
)
def test_malformed_token_is_rejected(provider: LocalIdentityProvider, token: str) -> None:
    assert_rejected(verifier_for(provider), token, "malformed token")


# --- the key set -----------------------------------------------------------------------


def test_key_set_is_fetched_once_and_cached(provider: LocalIdentityProvider) -> None:
    verifier = verifier_for(provider)
    before = provider.jwks_requests

    for _ in range(3):
        verifier.verify(provider.mint("alice", ["customers"]))

    assert provider.jwks_requests - before == 1


def test_rotated_key_is_found_by_one_refetch_once_the_cache_is_old_enough(
    provider: LocalIdentityProvider, impostor: LocalIdentityProvider
) -> None:
    # "impostor" plays the issuer's next key, published after we cached the key set.
    jwks = RotatingJwksServer(provider)
    clock = FakeClock()
    try:
        verifier = TokenVerifier(
            provider.issuer, jwks.url, [provider.client_id], min_refetch_interval=30, clock=clock
        )
        verifier.verify(provider.mint("alice", ["customers"]))
        jwks.publish(impostor)
        token_under_new_key = impostor.mint("alice", ["customers"])

        assert_rejected(verifier, token_under_new_key, "unknown key id")
        assert jwks.fetches == 1  # the cached set is too fresh to be worth refetching

        clock.now += 30
        assert verifier.verify(token_under_new_key).user_id == "alice"
        assert verifier.verify(token_under_new_key).user_id == "alice"
        assert jwks.fetches == 2
    finally:
        jwks.close()


def test_made_up_kids_cause_at_most_one_refetch_per_interval(
    provider: LocalIdentityProvider,
) -> None:
    jwks = RotatingJwksServer(provider)
    clock = FakeClock()
    try:
        verifier = TokenVerifier(
            provider.issuer, jwks.url, [provider.client_id], min_refetch_interval=30, clock=clock
        )
        verifier.verify(provider.mint("alice", ["customers"]))
        garbage = [
            provider.sign(access_claims(provider), headers={"kid": f"made-up-{n}"})
            for n in range(5)
        ]

        clock.now += 31
        for token in garbage:
            assert_rejected(verifier, token, "unknown key id")
        assert jwks.fetches == 2  # the first fetch and one refetch

        clock.now += 31
        assert_rejected(verifier, garbage[0], "unknown key id")
        assert jwks.fetches == 3
        # Known keys keep working without further fetches.
        assert verifier.verify(provider.mint("alice", ["customers"])).user_id == "alice"
        assert jwks.fetches == 3
    finally:
        jwks.close()


def test_unreachable_key_set_is_an_outage_not_a_bad_token(provider: LocalIdentityProvider) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    verifier = TokenVerifier(provider.issuer, url, [provider.client_id], fetch_timeout=1)

    with pytest.raises(JwksUnavailable):
        verifier.verify(provider.mint("alice", ["customers"]))


def test_key_set_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        TokenVerifier("https://issuer", "file:///etc/passwd", ["client"])


def test_verifier_needs_a_client_id() -> None:
    with pytest.raises(ValueError):
        TokenVerifier("https://issuer", "https://issuer/.well-known/jwks.json", [])


# --- the local identity provider -------------------------------------------------------


def test_local_key_is_private_and_reused_across_runs(tmp_path: Path) -> None:
    key_path = tmp_path / "nested" / "idp-key.pem"

    first = LocalIdentityProvider(key_path)
    second = LocalIdentityProvider(key_path)

    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert first.kid == second.kid
    assert LocalIdentityProvider(tmp_path / "other.pem").kid != first.kid
    assert [p.name for p in key_path.parent.iterdir()] == ["idp-key.pem"]


def test_local_provider_serves_its_jwks_under_the_issuer(provider: LocalIdentityProvider) -> None:
    assert provider.issuer.startswith("http://127.0.0.1:")
    assert provider.issuer.endswith("/local-pool")

    with urllib.request.urlopen(f"{provider.issuer}/.well-known/jwks.json", timeout=5) as reply:
        document = json.load(reply)

    assert [key["kid"] for key in document["keys"]] == [provider.kid]
    assert provider.env() == {
        "JWT_ISSUER": provider.issuer,
        "JWKS_URL": f"{provider.issuer}/.well-known/jwks.json",
        "JWT_CLIENT_IDS": "orderdesk-local-client",
    }


def test_stopped_provider_frees_its_port(tmp_path: Path) -> None:
    idp = LocalIdentityProvider(tmp_path / "key.pem")
    port = int(idp.start().split(":")[2].split("/")[0])
    idp.stop()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_token_minted_from_stack_file_verifies_against_the_running_stack(
    provider: LocalIdentityProvider, tmp_path: Path
) -> None:
    stack_file = tmp_path / "stack-8123.json"
    stack_file.write_text(json.dumps({"issuer": provider.issuer, "jwt_client_id": CLIENT_ID}))

    token = mint_for_stack(stack_file, "erin", ["finance"], key_path=provider.key_path)

    claims = verifier_for(provider).verify(token)
    assert (claims.user_id, claims.groups) == ("erin", frozenset({"finance"}))


def test_token_command_prints_only_the_token(
    provider: LocalIdentityProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack-8123.json").write_text(
        json.dumps({"issuer": provider.issuer, "jwt_client_id": CLIENT_ID})
    )
    (tmp_path / "idp-key.pem").write_bytes(provider.key_path.read_bytes())

    status = token_cli.main(
        [
            "--port",
            "8123",
            "--id",
            "alice",
            "--groups",
            "customers,ops",
            "--state-dir",
            str(tmp_path),
        ]
    )

    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    claims = verifier_for(provider).verify(out.strip())
    assert claims.groups == frozenset({"customers", "ops"})


def test_token_command_refuses_a_user_id_the_api_would_reject(
    provider: LocalIdentityProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack-8125.json").write_text(
        json.dumps({"issuer": provider.issuer, "jwt_client_id": CLIENT_ID})
    )
    (tmp_path / "idp-key.pem").write_bytes(provider.key_path.read_bytes())

    status = token_cli.main(["--port", "8125", "--id", "a#b", "--state-dir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert "user id" in err


def test_token_command_fails_without_a_stack_on_that_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = token_cli.main(["--port", "8124", "--id", "alice", "--state-dir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert "no local stack on port 8124" in err


# --- cold start ------------------------------------------------------------------------


def test_importing_the_auth_layer_does_not_import_jwt_or_cryptography() -> None:
    probe = (
        "import sys, chalicelib.api.auth, chalicelib.adapters.identity; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"


# --- /oauth2/userInfo, as Cognito serves it ---------------------------------------------


def user_info(provider: LocalIdentityProvider, token: str | None) -> tuple[int, Any, Any]:
    origin = provider.issuer.rsplit("/", 1)[0]
    request = urllib.request.Request(f"{origin}/oauth2/userInfo")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def test_user_info_answers_an_access_token_with_the_users_attributes_as_strings(
    provider: LocalIdentityProvider,
) -> None:
    token = provider.mint("ui-alice", ["customers"], email="alice@example.com")
    provider.set_user("ui-alice", phone_number="+8613800000001", phone_number_verified="false")

    status, body, _ = user_info(provider, token)

    assert status == 200
    assert body == {
        "sub": "ui-alice",
        "username": "ui-alice",
        "email": "alice@example.com",
        "email_verified": "true",
        "phone_number": "+8613800000001",
        "phone_number_verified": "false",
    }


def test_access_tokens_carry_no_email_verified_claim_but_user_info_does(
    provider: LocalIdentityProvider,
) -> None:
    token = provider.mint("ui-bob", ["customers"], email="bob@example.com")
    claims = jwt.decode(token, options={"verify_signature": False})

    assert "email_verified" not in claims
    assert user_info(provider, token)[1]["email_verified"] == "true"


@pytest.mark.parametrize("kind", ["missing", "garbage", "id_token", "expired", "impostor"])
def test_user_info_refuses_anything_but_a_valid_access_token(
    provider: LocalIdentityProvider, impostor: LocalIdentityProvider, kind: str
) -> None:
    token = {
        "missing": None,
        "garbage": "not-a-token",
        "id_token": provider.mint("ui-carol", [], token_use="id"),
        "expired": provider.mint("ui-carol", [], expires_in=-60),
        "impostor": impostor.mint("ui-carol", []),
    }[kind]

    status, body, headers = user_info(provider, token)

    assert status == 401
    assert body["error"] in {"invalid_token", "invalid_request"}
    assert headers["WWW-Authenticate"].startswith("Bearer ")
