"""The web apps under ``web/``, served by the local gateway on the API's own port.

In AWS the apps sit in an S3 bucket behind CloudFront; locally the gateway plays that part:

* ``/shop/...`` serves ``web/shop/`` and ``/console/...`` serves ``web/console/`` (each app
  that has a folder), ``/common/...`` the code they share (``web/common/``);
* ``/shop`` (no slash) redirects to ``/shop/``;
* a path under an app with no file and no file extension is a route of the app itself (a deep
  link such as ``/shop/orders/<id>``): it gets the app's ``index.html``, as CloudFront's
  viewer-request function does (``infra/production.py``). A missing file with an
  extension is a plain 404;
* ``/<app>/config.json`` comes from the stack's own folder (the API base URL, identity
  provider endpoints, client id and Stripe publishable key of this run), not from ``web/``;
* text answers are gzipped when the browser accepts it, and carry an ETag so that a reload
  revalidates instead of downloading again.

Only GET and HEAD are answered here; anything else goes on to the API's routing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

APPS = ("shop", "console")
SHARED = "common"
CONFIG_NAME = "config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".woff2": "font/woff2",
}
_COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".svg", ".txt")
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # an OAuth callback's code must not leak onwards
    ("X-Frame-Options", "DENY"),
]


@dataclass(frozen=True)
class StaticResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass
class WebApps:
    """Answers the web apps' paths; ``serve`` returns None for every other path."""

    web_root: Path
    config_dir: Path | None = None
    _cache: dict[tuple[Path, bool], tuple[float, int, bytes, str]] = field(default_factory=dict)

    def serve(
        self, method: str, target: str, headers: dict[str, str] | None = None
    ) -> StaticResponse | None:
        if method not in ("GET", "HEAD"):
            return None
        split = urlsplit(target)
        path = split.path
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        for app in APPS:
            if path == f"/{app}" and (self.web_root / app).is_dir():
                location = f"/{app}/" + (f"?{split.query}" if split.query else "")
                return StaticResponse(301, [("Location", location), *_SECURITY_HEADERS])
        prefix, _, rest = path[1:].partition("/")
        if prefix in APPS and path.startswith(f"/{prefix}/"):
            return self._app_file(prefix, rest, headers)
        if prefix == SHARED and path.startswith(f"/{SHARED}/"):
            return self._file(self.web_root / SHARED, rest, headers, fallback=None)
        return None

    def _app_file(self, app: str, rest: str, headers: dict[str, str]) -> StaticResponse | None:
        folder = self.web_root / app
        if not folder.is_dir():
            return None
        if rest == CONFIG_NAME and self.config_dir is not None:
            return self._file(self.config_dir / app, CONFIG_NAME, headers, fallback=None)
        return self._file(folder, rest, headers, fallback="index.html")

    def _file(
        self, folder: Path, rest: str, headers: dict[str, str], *, fallback: str | None
    ) -> StaticResponse:
        relative = unquote(rest) or "index.html"
        candidate = (folder / relative).resolve()
        root = folder.resolve()
        inside = candidate == root or root in candidate.parents
        if inside and candidate.is_dir():
            candidate = candidate / "index.html"
        if not inside or not candidate.is_file():
            last = relative.rstrip("/").rsplit("/", 1)[-1]
            if fallback is None or "." in last or not inside:
                return _not_found()
            candidate = root / fallback
            if not candidate.is_file():
                return _not_found()
        return self._answer(candidate, headers)

    def _answer(self, path: Path, headers: dict[str, str]) -> StaticResponse:
        suffix = path.suffix.lower()
        wants_gzip = suffix in _COMPRESSIBLE and "gzip" in headers.get("accept-encoding", "")
        body, etag = self._read(path, wants_gzip)
        common = [
            ("Content-Type", CONTENT_TYPES.get(suffix, "application/octet-stream")),
            # Revalidate every time: a changed file is seen at once, an unchanged one is a 304.
            ("Cache-Control", "no-cache"),
            ("ETag", etag),
            ("Vary", "Accept-Encoding"),
            *_SECURITY_HEADERS,
        ]
        if headers.get("if-none-match") == etag:
            return StaticResponse(304, common)
        if wants_gzip:
            common.append(("Content-Encoding", "gzip"))
        return StaticResponse(200, common, body)

    def _read(self, path: Path, compressed: bool) -> tuple[bytes, str]:
        stat = path.stat()
        key = (path, compressed)
        cached = self._cache.get(key)
        if cached and cached[0] == stat.st_mtime and cached[1] == stat.st_size:
            return cached[2], cached[3]
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()[:20]
        body = gzip.compress(raw, mtime=0) if compressed else raw
        etag = f'"{digest}{"-gz" if compressed else ""}"'
        self._cache[key] = (stat.st_mtime, stat.st_size, body, etag)
        return body, etag


def _not_found() -> StaticResponse:
    body = json.dumps({"error": "not_found", "message": "No such file.", "details": None})
    return StaticResponse(404, [("Content-Type", "application/json")], body.encode())


def write_app_config(config_dir: Path, app: str, document: dict[str, Any]) -> Path:
    """Write ``/<app>/config.json`` for one run of the stack (atomically)."""
    folder = config_dir / app
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_NAME
    temp = folder / f".{CONFIG_NAME}.tmp"
    temp.write_text(json.dumps(document, indent=2, sort_keys=True))
    temp.replace(path)
    return path
