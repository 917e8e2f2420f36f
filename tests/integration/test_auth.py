"""The built-in authorizer and per-route group checks, through Chalice's test client.

How ``chalice.test.Client`` behaves (chalice 1.34), and what the tests below pin down:
- no Authorization header: the client answers 401 ``{"message":"Unauthorized"}`` itself,
  without calling the authorizer (API Gateway does the same for a TOKEN authorizer);
- the authorizer raises ``Unauthorized``: the client does not turn it into a response, the
  exception propagates out of ``client.http.get``. API Gateway (and our local gateway)
  answer 401 for exactly this error message, which is why these tests assert the raise;
- a valid token: the authorizer's context reaches the view as
  ``request.context["authorizer"]``, as it does behind API Gateway.
"""

from __future__ import annotations

import importlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice import Blueprint, Chalice
from chalice.test import Client

from chalicelib.adapters.identity import JwksUnavailable
from chalicelib.api import auth
from chalicelib.api.auth import (
    OPS,
    Principal,
    Unauthorized,
    authorizer,
    bearer_token,
    optional_principal,
    principal,
    require_groups,
)
from chalicelib.api.errors import as_error_response
from chalicelib.settings import get_settings
from infra.local.identity import LocalIdentityProvider

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/api/GET/orders/o-1"

views = Blueprint(__name__)


@views.route("/me", authorizer=authorizer)
def me() -> dict[str, Any]:
    caller = principal(views.current_request)
    return {"user_id": caller.user_id, "groups": sorted(caller.groups), "email": caller.email}


@views.route("/warehouses", authorizer=authorizer)
def ops_only() -> dict[str, Any]:
    caller = require_groups(views.current_request, OPS)
    return {"user_id": caller.user_id}


@views.route("/catalogue")
def public_catalogue() -> dict[str, Any]:
    caller = optional_principal(views.current_request)
    return {"staff": bool(caller and caller.is_staff)}


@views.route("/misconfigured")
def route_without_authorizer() -> dict[str, Any]:
    return {"user_id": principal(views.current_request).user_id}


def build_app() -> Chalice:
    # Chalice 1.34 consumes a blueprint's route options (methods, authorizer) when it is
    # registered, so a blueprint must be registered with one app only: build this once.
    app = Chalice(app_name="auth-under-test")
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(views)
    # As chalicelib.api.register does: views raise, one wrapper shapes the errors.
    for methods in app.routes.values():
        for entry in methods.values():
            entry.view_function = as_error_response(entry.view_function)
    return app


@pytest.fixture(scope="module")
def app() -> Chalice:
    return build_app()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    provider = LocalIdentityProvider(tmp_path_factory.mktemp("idp") / "idp-key.pem")
    provider.start()
    yield provider
    provider.stop()


def write_project(project_dir: Path, env: dict[str, str]) -> Path:
    """A Chalice project whose stage variables carry the identity settings, as in AWS."""
    (project_dir / ".chalice").mkdir(parents=True, exist_ok=True)
    config = {
        "version": "2.0",
        "app_name": "auth-under-test",
        "stages": {"dev": {"environment_variables": env}},
    }
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config))
    return project_dir


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(
    app: Chalice, idp: LocalIdentityProvider, tmp_path: Path, fresh_settings: None
) -> Iterator[Client]:
    project = write_project(tmp_path, idp.env())
    with Client(app, project_dir=str(project)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- 401: no caller --------------------------------------------------------------------


def test_protected_route_without_token_is_401(client: Client) -> None:
    response = client.http.get("/me")

    assert response.status_code == 401
    assert response.json_body == {"message": "Unauthorized"}


@pytest.mark.parametrize(
    "token_for",
    [
        pytest.param(lambda idp: "not-a-token", id="malformed"),
        pytest.param(lambda idp: idp.mint("alice", ["ops"], expires_in=-300), id="expired"),
        pytest.param(
            lambda idp: LocalIdentityProvider(idp.key_path, issuer="http://evil/pool").mint(
                "alice", ["ops"]
            ),
            id="wrong-issuer",
        ),
    ],
)
def test_protected_route_with_bad_token_is_refused_as_unauthorized(
    client: Client, idp: LocalIdentityProvider, token_for: Any
) -> None:
    with pytest.raises(Unauthorized) as raised:
        client.http.get("/me", headers=bearer(token_for(idp)))

    assert str(raised.value) == "Unauthorized"


def test_token_signed_with_another_key_is_refused(
    client: Client, idp: LocalIdentityProvider, tmp_path: Path
) -> None:
    forger = LocalIdentityProvider(tmp_path / "forger.pem", issuer=idp.issuer)
    forged = forger.sign(
        {"sub": "mallory", "iss": idp.issuer, "token_use": "access", "client_id": idp.client_id},
        headers={"kid": idp.kid},
    )

    with pytest.raises(Unauthorized):
        client.http.get("/warehouses", headers=bearer(forged))


# --- 403 and 200: groups per route -----------------------------------------------------


def test_customer_on_ops_route_is_403_in_our_error_shape(
    client: Client, idp: LocalIdentityProvider
) -> None:
    response = client.http.get("/warehouses", headers=bearer(idp.mint("alice", ["customers"])))

    assert response.status_code == 403
    assert response.json_body["error"] == "forbidden"
    assert set(response.json_body) == {"error", "message", "details"}


def test_ops_on_ops_route_is_200(client: Client, idp: LocalIdentityProvider) -> None:
    response = client.http.get("/warehouses", headers=bearer(idp.mint("olga", ["ops"])))

    assert response.status_code == 200
    assert response.json_body == {"user_id": "olga"}


def test_authorizer_context_reaches_the_view(client: Client, idp: LocalIdentityProvider) -> None:
    token = idp.mint("alice", ["support", "customers"], email="alice@example.com")

    response = client.http.get("/me", headers=bearer(token))

    assert response.json_body == {
        "user_id": "alice",
        "groups": ["customers", "support"],
        "email": "alice@example.com",
    }


def test_a_group_name_with_a_comma_stays_one_group(
    client: Client, idp: LocalIdentityProvider
) -> None:
    token = idp.mint("mallory", ["customers,ops", "support,finance"])

    listed = client.http.get("/me", headers=bearer(token))
    ops_route = client.http.get("/warehouses", headers=bearer(token))

    assert listed.json_body["groups"] == ["customers,ops", "support,finance"]
    assert ops_route.status_code == 403


def test_token_without_bearer_prefix_is_accepted(
    client: Client, idp: LocalIdentityProvider
) -> None:
    response = client.http.get("/me", headers={"Authorization": idp.mint("alice", [])})

    assert response.status_code == 200
    assert response.json_body["groups"] == []


def test_route_without_authorizer_cannot_claim_a_caller(client: Client) -> None:
    response = client.http.get("/misconfigured")

    assert response.status_code == 401
    assert response.json_body["error"] == "unauthorized"


# --- public routes that show more to staff ---------------------------------------------


def test_public_route_serves_anonymous_callers(client: Client) -> None:
    response = client.http.get("/catalogue")

    assert (response.status_code, response.json_body) == (200, {"staff": False})


def test_public_route_recognises_staff_by_their_token(
    client: Client, idp: LocalIdentityProvider
) -> None:
    staff = client.http.get("/catalogue", headers=bearer(idp.mint("sam", ["support"])))
    customer = client.http.get("/catalogue", headers=bearer(idp.mint("alice", ["customers"])))

    assert staff.json_body == {"staff": True}
    assert customer.json_body == {"staff": False}


def test_public_route_with_invalid_token_is_401_in_our_error_shape(
    client: Client, idp: LocalIdentityProvider
) -> None:
    expired = idp.mint("sam", ["support"], expires_in=-300)

    response = client.http.get("/catalogue", headers=bearer(expired))

    assert response.status_code == 401
    assert response.json_body["error"] == "unauthorized"


# --- the authorizer as Lambda calls it -------------------------------------------------


@pytest.fixture
def identity_env(
    idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> LocalIdentityProvider:
    for name, value in idp.env().items():
        monkeypatch.setenv(name, value)
    return idp


def token_event(token: str) -> dict[str, str]:
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": METHOD_ARN}


def test_authorizer_allows_every_route_so_cached_answers_stay_right(
    identity_env: LocalIdentityProvider,
) -> None:
    token = identity_env.mint("alice", ["ops", "finance"])

    result = authorizer(token_event(f"Bearer {token}"), None)

    assert result["principalId"] == "alice"
    [statement] = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef123/api/*/*"]
    assert result["context"] == {
        "user_id": "alice",
        "groups": '["finance", "ops"]',
        "token_use": "access",
        "email": "",
        "phone_number": "",
        "name": "",
        "locale": "",
        "email_verified": "",
        "phone_number_verified": "",
    }


def test_authorizer_refuses_with_the_exact_message_api_gateway_maps_to_401(
    identity_env: LocalIdentityProvider,
) -> None:
    with pytest.raises(Unauthorized) as raised:
        authorizer(token_event("Bearer not-a-token"), None)

    assert raised.value.args == ("Unauthorized",)


def test_unreachable_key_set_is_an_error_not_a_401(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None, idp: LocalIdentityProvider
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("JWT_ISSUER", idp.issuer)
    monkeypatch.setenv("JWKS_URL", f"http://127.0.0.1:{closed_port}/jwks.json")
    monkeypatch.setenv("JWT_CLIENT_IDS", idp.client_id)

    with pytest.raises(JwksUnavailable):
        authorizer(token_event(idp.mint("alice", [])), None)


def test_lambda_handler_string_names_the_authorizer_object(app: Chalice) -> None:
    [config] = app.builtin_auth_handlers

    module_name, _, attribute = config.handler_string.rpartition(".")

    assert getattr(importlib.import_module(module_name), attribute) is authorizer
    assert app.routes["/me"]["GET"].authorizer is authorizer
    assert config.ttl_seconds == auth.AUTHORIZER_CACHE_SECONDS


# --- small pieces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("  Bearer   abc.def.ghi  ", "abc.def.ghi"),
        ("abc.def.ghi", "abc.def.ghi"),
        ("Bearer", ""),
        (None, ""),
    ],
)
def test_bearer_prefix_is_optional(header: str | None, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "groups, staff, writes_ops, reads_reports",
    [
        ({"customers"}, False, False, False),
        ({"support"}, True, False, False),
        ({"ops"}, True, True, True),
        ({"finance"}, False, False, True),
        (set(), False, False, False),
    ],
)
def test_principal_permissions_follow_groups(
    groups: set[str], staff: bool, writes_ops: bool, reads_reports: bool
) -> None:
    caller = Principal(user_id="u-1", groups=frozenset(groups))

    assert (caller.is_staff, caller.can_write_ops, caller.can_read_reports) == (
        staff,
        writes_ops,
        reads_reports,
    )
