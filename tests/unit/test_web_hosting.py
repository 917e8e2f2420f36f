"""The web apps' hosting in AWS: config.json from stack outputs, caching, CSP, the rewrite."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import production
from infra.web_config import (
    IMMUTABLE,
    NO_CACHE,
    PublishError,
    app_config,
    cache_control,
    content_type,
    placeholder_configs,
)

OUTPUTS = {
    "WebUrl": "https://d111.cloudfront.net",
    "EndpointURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/",
    "HostedUiUrl": "https://orderdesk-prod-1.auth.eu-west-1.amazoncognito.com",
    "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X",
    "ShopClientId": "shop-client",
    "ConsoleClientId": "console-client",
}


def test_config_json_points_each_app_at_the_api_its_client_and_the_hosted_ui() -> None:
    config = app_config(OUTPUTS, "console", stripe_publishable_key="pk_live_1")

    assert config["api_url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api"
    identity = config["identity"]
    assert identity["client_id"] == "console-client"
    assert identity["issuer"] == OUTPUTS["JwtIssuer"]
    assert identity["authorization_endpoint"] == f"{OUTPUTS['HostedUiUrl']}/oauth2/authorize"
    assert identity["token_endpoint"] == f"{OUTPUTS['HostedUiUrl']}/oauth2/token"
    assert identity["end_session_endpoint"] == f"{OUTPUTS['HostedUiUrl']}/logout"
    assert identity["redirect_uri"] == "https://d111.cloudfront.net/console/callback"
    assert identity["logout_uri"] == "https://d111.cloudfront.net/console/"
    assert config["stripe"] == {
        "publishable_key": "pk_live_1",
        "js_url": "https://js.stripe.com/v3/",
    }


def test_config_json_has_the_same_shape_as_the_local_stacks() -> None:
    local_identity_keys = {
        "issuer",
        "client_id",
        "authorization_endpoint",
        "token_endpoint",
        "end_session_endpoint",
        "redirect_uri",
        "logout_uri",
        "scope",
    }
    for app, config in placeholder_configs().items():
        assert set(config) == {"api_url", "identity", "stripe"}, app
        assert set(config["identity"]) == local_identity_keys
        assert set(config["stripe"]) == {"publishable_key", "js_url"}


def test_a_custom_api_domain_replaces_the_execute_api_url() -> None:
    config = app_config(
        OUTPUTS, "shop", stripe_publishable_key="pk_1", api_url="https://api.example.com/"
    )
    assert config["api_url"] == "https://api.example.com"
    assert config["identity"]["client_id"] == "shop-client"


def test_config_json_refuses_a_stack_without_the_web_outputs() -> None:
    outputs = {k: v for k, v in OUTPUTS.items() if k != "WebUrl"}
    with pytest.raises(PublishError, match="WebUrl"):
        app_config(outputs, "shop", stripe_publishable_key="pk_1")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("common/vendor/preact-10.29.8/preact.module.js", IMMUTABLE),
        ("common/vendor/uqr-0.1.3/LICENSE", IMMUTABLE),
        ("shop/assets/logo.3f9a1c2b7d.svg", IMMUTABLE),
        ("common/vendor/README.md", NO_CACHE),
        ("shop/index.html", NO_CACHE),
        ("console/config.json", NO_CACHE),
        ("shop/app.js", NO_CACHE),
        ("console/pages/stock.js", NO_CACHE),
        ("index.html", NO_CACHE),
    ],
)
def test_only_versioned_files_are_cached_for_a_year(key: str, expected: str) -> None:
    assert cache_control(key) == expected


def test_content_types_match_the_files() -> None:
    assert content_type("shop/index.html") == "text/html; charset=utf-8"
    assert content_type("common/vendor/uqr-0.1.3/uqr.mjs") == "text/javascript; charset=utf-8"
    assert content_type("console/console.css") == "text/css; charset=utf-8"
    assert content_type("shop/config.json") == "application/json"
    assert content_type("common/vendor/htm-3.1.1/LICENSE") == "text/plain; charset=utf-8"


def test_csp_allows_each_index_pages_inline_scripts_by_hash(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "index.html").write_text(
        '<script type="importmap">{"imports": {}}</script>\n'
        '<script type="module" src="app.js"></script>\n<script>go()</script>'
    )
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in ('{"imports": {}}', "go()")
    }
    assert set(production.inline_script_hashes(tmp_path)) == expected
    assert all(h in production.content_security_policy(tmp_path)["Fn::Sub"] for h in expected)


def test_the_real_index_pages_inline_scripts_are_all_hashed() -> None:
    pages = [production.WEB_ROOT / app / "index.html" for app in production.WEB_APPS]
    inline = sum(len(re.findall(r"<script(?![^>]*src=)[^>]*>", page.read_text())) for page in pages)
    assert inline >= 2
    assert 1 <= len(production.inline_script_hashes()) <= inline


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/shop/orders/o-123", "/shop/index.html"),
        ("/console/stock", "/console/index.html"),
        ("/shop/", "/shop/index.html"),
        ("/shop/app.js", "/shop/app.js"),
        ("/shop/missing.js", "/shop/missing.js"),
        ("/common/html.js", "/common/html.js"),
        ("/other/page", "/other/page"),
        ("/shop", "301 /shop/"),
    ],
)
def test_viewer_request_function_sends_deep_links_to_the_apps_index(
    uri: str, expected: str
) -> None:
    script = (
        production.SPA_FUNCTION_CODE
        + f"var r = handler({{request: {{uri: {uri!r}, querystring: {{}}, headers: {{}}}}}});\n"
        + "console.log(r.statusCode ? r.statusCode + ' ' + r.headers.location.value : r.uri);\n"
    )
    result = subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == expected
