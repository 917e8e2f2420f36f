"""The gateway's static serving of the web apps (CloudFront's part locally)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from infra.local.web_apps import WebApps, write_app_config


@pytest.fixture
def web(tmp_path: Path) -> WebApps:
    root = tmp_path / "web"
    (root / "shop" / "pages").mkdir(parents=True)
    (root / "shop" / "index.html").write_text("<!doctype html><title>shop</title>")
    (root / "shop" / "app.js").write_text("export const x = 1;")
    (root / "common").mkdir()
    (root / "common" / "api.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("not for browsers")
    config = tmp_path / "config"
    write_app_config(config, "shop", {"api_url": "http://127.0.0.1:1"})
    return WebApps(root, config)


def test_app_path_without_slash_redirects_to_the_app(web: WebApps) -> None:
    answer = web.serve("GET", "/shop?lang=en")
    assert answer is not None and answer.status == 301
    assert ("Location", "/shop/?lang=en") in answer.headers


def test_deep_link_gets_the_apps_index_page(web: WebApps) -> None:
    answer = web.serve("GET", "/shop/orders/o-123")
    assert answer is not None and answer.status == 200
    assert b"<title>shop</title>" in answer.body
    assert dict(answer.headers)["Content-Type"].startswith("text/html")


def test_missing_file_with_an_extension_is_404_not_the_index(web: WebApps) -> None:
    answer = web.serve("GET", "/shop/missing.js")
    assert answer is not None and answer.status == 404


def test_modules_are_served_as_javascript_and_gzipped_when_accepted(web: WebApps) -> None:
    answer = web.serve("GET", "/shop/app.js", {"Accept-Encoding": "gzip, br"})
    assert answer is not None and answer.status == 200
    headers = dict(answer.headers)
    assert headers["Content-Type"].startswith("text/javascript")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.body) == b"export const x = 1;"


def test_unchanged_file_revalidates_with_304(web: WebApps) -> None:
    first = web.serve("GET", "/common/api.js")
    assert first is not None
    etag = dict(first.headers)["ETag"]
    again = web.serve("GET", "/common/api.js", {"If-None-Match": etag})
    assert again is not None and again.status == 304 and again.body == b""


def test_config_comes_from_the_runs_folder(web: WebApps) -> None:
    answer = web.serve("GET", "/shop/config.json")
    assert answer is not None and answer.status == 200
    assert json.loads(answer.body) == {"api_url": "http://127.0.0.1:1"}


def test_paths_outside_the_app_folder_are_refused(web: WebApps) -> None:
    answer = web.serve("GET", "/shop/..%2F..%2Fsecret.txt")
    assert answer is not None and answer.status == 404
    assert b"not for browsers" not in answer.body


def test_api_paths_and_other_methods_are_left_to_the_api(web: WebApps) -> None:
    assert web.serve("GET", "/products?q=x") is None
    assert web.serve("POST", "/shop/orders") is None
    assert web.serve("GET", "/console/") is None  # no console folder yet
