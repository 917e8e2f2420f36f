"""make publish-web: the stack's outputs into config.json, web/ into the bucket (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import web_config
from infra.web_config import IMMUTABLE, NO_CACHE, stack_outputs

REGION = "us-east-1"
OUTPUTS = {
    "WebUrl": "https://d111.cloudfront.net",
    "EndpointURL": "https://abc123.execute-api.us-east-1.amazonaws.com/api/",
    "HostedUiUrl": "https://orderdesk-prod-1.auth.us-east-1.amazoncognito.com",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
    "ShopClientId": "shop-client",
    "ConsoleClientId": "console-client",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _deploy_stack(name: str) -> None:
    """A stack with a web bucket and the outputs the real one has (literal values)."""
    template = {
        "Resources": {"WebBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "WebBucketName": {"Value": {"Ref": "WebBucket"}},
            **{key: {"Value": value} for key, value in OUTPUTS.items()},
        },
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def _objects(bucket: str) -> dict[str, dict[str, Any]]:
    s3 = boto3.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    return {key: s3.head_object(Bucket=bucket, Key=key) for key in keys}


def test_publish_web_uploads_the_apps_with_config_and_cache_lifetimes(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy_stack("orderdesk-prod")
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_live_abc")

    assert web_config.main(["--stage", "prod", "--out", str(tmp_path / "web")]) == 0

    bucket = stack_outputs(boto3.client("cloudformation"), "orderdesk-prod")["WebBucketName"]
    objects = _objects(bucket)
    vendor = "common/vendor/preact-10.29.8/preact.module.js"
    for key in ("shop/index.html", "console/index.html", "shop/app.js", vendor, "index.html"):
        assert key in objects, key
    assert objects[vendor]["CacheControl"] == IMMUTABLE
    assert objects[vendor]["ContentType"] == "text/javascript; charset=utf-8"
    for key in ("shop/index.html", "console/index.html", "index.html"):
        assert objects[key]["CacheControl"] == NO_CACHE
        assert objects[key]["ContentType"] == "text/html; charset=utf-8"
    assert objects["console/console.css"]["ContentType"] == "text/css; charset=utf-8"
    assert objects["shop/app.js"]["CacheControl"] == NO_CACHE
    for app, client in (("shop", "shop-client"), ("console", "console-client")):
        key = f"{app}/config.json"
        assert objects[key]["CacheControl"] == NO_CACHE
        assert objects[key]["ContentType"] == "application/json"
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        config = json.loads(body)
        assert config["identity"]["client_id"] == client
        assert config["identity"]["redirect_uri"] == f"https://d111.cloudfront.net/{app}/callback"
        assert config["stripe"]["publishable_key"] == "pk_live_abc"
        written = json.loads((tmp_path / "web" / app / "config.json").read_text())
        assert written == config
    # Nothing outside the apps and their shared code is published.
    assert all(key.split("/")[0] in ("shop", "console", "common", "index.html") for key in objects)


def test_publish_web_uploads_pages_after_the_files_they_load(aws: None) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="web")
    configs = {
        app: web_config.app_config(OUTPUTS, app, stripe_publishable_key="pk_1")
        for app in ("shop", "console")
    }

    keys = web_config.publish(s3, "web", configs)

    pages = [i for i, key in enumerate(keys) if key.endswith("index.html")]
    assert pages == list(range(len(keys) - len(pages), len(keys)))
    assert "shop/config.json" in keys[: pages[0]]


def test_publish_web_refuses_without_a_publishable_key(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_PUBLISHABLE_KEY", raising=False)
    assert web_config.main(["--stage", "prod"]) == 2
