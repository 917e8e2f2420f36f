"""The web apps in AWS: each app's ``config.json`` from the stack's outputs, and the upload.

    python -m infra.web_config --stage prod [--stack-name orderdesk-prod] [--api-url URL]
        [--stripe-publishable-key pk_live_...]   (or $STRIPE_PUBLISHABLE_KEY)

``make publish-web STAGE=…`` runs this after a deploy: it reads the stack's outputs
(``describe_stacks``), writes ``build/web-<stage>/<app>/config.json`` and uploads ``web/``
with those files to the stack's web bucket, which CloudFront serves
(``infra/production.py``). ``make package`` writes the same documents with placeholders for
the values only a deployed stack has, so their shape can be read before a deploy.

Caching: a file is **versioned** when its path names its version, so its bytes never change
at that path: everything in a versioned vendor folder (``common/vendor/<name>-<version>/``)
and any file whose name carries a content hash (``name.<8 or more hex digits>.ext``). Those
get ``public, max-age=31536000, immutable``. Everything else — ``index.html``,
``config.json`` and the apps' own modules, which are imported by fixed names — gets
``no-cache``: browsers and CloudFront revalidate each time and get a 304 while unchanged.
``index.html`` files go up last, so a new page never points at a file not yet uploaded;
files no longer in ``web/`` are left in place (an open page may still load them) and the
bucket's versioning keeps the previous publish.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from infra.local.web_apps import APPS, CONFIG_NAME, CONTENT_TYPES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEB_ROOT = PROJECT_ROOT / "web"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
SCOPE = "openid email phone profile"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# The stack's outputs a config.json is made of (EndpointURL is Chalice's own output).
REQUIRED_OUTPUTS = ("WebUrl", "HostedUiUrl", "JwtIssuer", "ShopClientId", "ConsoleClientId")
CLIENT_OUTPUTS = {"shop": "ShopClientId", "console": "ConsoleClientId"}
PLACEHOLDER_OUTPUTS = {
    "WebUrl": "https://<distribution domain>",
    "EndpointURL": "https://<rest api id>.execute-api.<region>.amazonaws.com/api/",
    "HostedUiUrl": "https://<hosted ui domain>.auth.<region>.amazoncognito.com",
    "JwtIssuer": "https://cognito-idp.<region>.amazonaws.com/<user pool id>",
    "ShopClientId": "<ShopClientId>",
    "ConsoleClientId": "<ConsoleClientId>",
}
_VERSIONED_FOLDER = re.compile(r"^common/vendor/[^/]+-\d+(\.\d+)+[^/]*/")
_HASHED_NAME = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
# Served at the distribution's root (its default root object): the way to the shop.
ROOT_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta http-equiv="refresh" content="0; url=/shop/"><title>orderdesk</title></head>'
    '<body><a href="/shop/">orderdesk</a></body></html>\n'
)


class PublishError(RuntimeError):
    pass


def app_config(
    outputs: Mapping[str, str],
    app: str,
    *,
    stripe_publishable_key: str,
    api_url: str | None = None,
) -> dict[str, Any]:
    """``/<app>/config.json`` for a deployed stack, in the shape the local stack writes."""
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if not api_url and not outputs.get("EndpointURL"):
        missing.append("EndpointURL")
    if missing:
        raise PublishError(f"the stack has no output(s) {', '.join(missing)}")
    if app not in CLIENT_OUTPUTS:
        raise PublishError(f"unknown web app {app!r}")
    web_url = outputs["WebUrl"].rstrip("/")
    hosted_ui = outputs["HostedUiUrl"].rstrip("/")
    return {
        "api_url": (api_url or outputs["EndpointURL"]).rstrip("/"),
        "identity": {
            "issuer": outputs["JwtIssuer"],
            "client_id": outputs[CLIENT_OUTPUTS[app]],
            "authorization_endpoint": f"{hosted_ui}/oauth2/authorize",
            "token_endpoint": f"{hosted_ui}/oauth2/token",
            "end_session_endpoint": f"{hosted_ui}/logout",
            # Must be among the app client's CallbackURLs / LogoutURLs parameters.
            "redirect_uri": f"{web_url}/{app}/callback",
            "logout_uri": f"{web_url}/{app}/",
            "scope": SCOPE,
        },
        "stripe": {"publishable_key": stripe_publishable_key, "js_url": STRIPE_JS_URL},
    }


def placeholder_configs() -> dict[str, dict[str, Any]]:
    """The documents with placeholders where a deployed stack's outputs go."""
    return {
        app: app_config(PLACEHOLDER_OUTPUTS, app, stripe_publishable_key="<pk_live_...>")
        for app in APPS
    }


def write_configs(out_dir: Path, configs: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    written = []
    for app, document in configs.items():
        path = out_dir / app / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def is_versioned(key: str) -> bool:
    """Whether the object at ``key`` never changes (see the module's docstring)."""
    return bool(_VERSIONED_FOLDER.match(key) or _HASHED_NAME.search(key.rsplit("/", 1)[-1]))


def cache_control(key: str) -> str:
    return IMMUTABLE if is_versioned(key) else NO_CACHE


def content_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if "." not in name:  # LICENSE and the like
        return "text/plain; charset=utf-8"
    suffix = "." + name.rsplit(".", 1)[-1].lower()
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def web_files(web_root: Path = WEB_ROOT) -> Iterator[tuple[str, Path]]:
    """(key, path) of every file to publish, skipping hidden files and local config.json."""
    for path in sorted(web_root.rglob("*")):
        relative = path.relative_to(web_root)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        key = relative.as_posix()
        if key.split("/", 1)[0] not in (*APPS, "common"):
            continue
        if relative.name == CONFIG_NAME:  # config.json comes from the stack, never from web/
            continue
        yield key, path


def publish(
    s3: Any,
    bucket: str,
    configs: Mapping[str, Mapping[str, Any]],
    web_root: Path = WEB_ROOT,
) -> list[str]:
    """Upload ``web/``, each app's config.json and the root page; return the keys in order."""
    uploads: list[tuple[str, bytes]] = [
        (key, path.read_bytes()) for key, path in web_files(web_root)
    ]
    uploads += [
        (f"{app}/{CONFIG_NAME}", (json.dumps(document, indent=2) + "\n").encode())
        for app, document in configs.items()
    ]
    uploads.append(("index.html", ROOT_PAGE.encode()))
    # Pages last: a new index.html must not name files that are not there yet.
    uploads.sort(key=lambda item: item[0].rsplit("/", 1)[-1] == "index.html")
    for key, body in uploads:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type(key),
            CacheControl=cache_control(key),
        )
    return [key for key, _ in uploads]


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write config.json and upload the web apps")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stack-name", help="default: orderdesk-<stage>")
    parser.add_argument("--api-url", help="the API's public base URL (default: EndpointURL)")
    parser.add_argument(
        "--stripe-publishable-key", default=os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    )
    parser.add_argument("--web-root", type=Path, default=WEB_ROOT)
    parser.add_argument("--out", type=Path, help="default: build/web-<stage>")
    args = parser.parse_args(argv)
    if not args.stripe_publishable_key.startswith("pk_"):
        print("set STRIPE_PUBLISHABLE_KEY (pk_live_... or pk_test_...)", file=sys.stderr)
        return 2

    import boto3

    stack_name = args.stack_name or f"orderdesk-{args.stage}"
    try:
        outputs = stack_outputs(boto3.client("cloudformation"), stack_name)
        configs = {
            app: app_config(
                outputs,
                app,
                stripe_publishable_key=args.stripe_publishable_key,
                api_url=args.api_url,
            )
            for app in APPS
        }
        if "WebBucketName" not in outputs:
            raise PublishError("the stack has no output WebBucketName")
    except PublishError as exc:
        print(f"{stack_name}: {exc}", file=sys.stderr)
        return 1
    write_configs(args.out or PROJECT_ROOT / "build" / f"web-{args.stage}", configs)
    keys = publish(boto3.client("s3"), outputs["WebBucketName"], configs, args.web_root)
    print(f"published {len(keys)} files to s3://{outputs['WebBucketName']}: {outputs['WebUrl']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
