"""Fixtures for tests that run the real app over in-process moto.

``aws_table`` starts ``mock_aws`` and creates the main table from the very definition in
``infra/resources.yaml`` that production and the local stack deploy. ``api`` adds a
Chalice test client whose bearer tokens are verified against a local identity provider.
Do not use these for concurrency tests: in-process moto is not thread-safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.settings import get_settings
from chalicelib.store import tables
from infra.local.aws_emulator import flat_transactions
from infra.local.identity import LocalIdentityProvider
from infra.local.provision import load_template

TEST_TABLE = "orderdesk-test"


def main_table_definition() -> dict[str, Any]:
    """CreateTable arguments for the table keyed pk/sk in infra/resources.yaml."""
    for resource in load_template()["Resources"].values():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        if [k["AttributeName"] for k in props["KeySchema"]] != ["pk", "sk"]:
            continue
        stream = props.get("StreamSpecification")
        return {
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "GlobalSecondaryIndexes": props.get("GlobalSecondaryIndexes", []),
            "BillingMode": props["BillingMode"],
            **({"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}),
        }
    raise LookupError("infra/resources.yaml has no table keyed pk/sk")


@pytest.fixture
def aws_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty main table in moto; yields its name."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TABLE_NAME", TEST_TABLE)
    monkeypatch.setenv("CONTACT_CODE_PEPPER", "test-pepper")
    # moto's own TransactWriteItems deep-copies the table per call; use the emulator's.
    with mock_aws(), flat_transactions():
        get_settings.cache_clear()
        tables.reset()
        tables.client().create_table(TableName=TEST_TABLE, **main_table_definition())
        yield TEST_TABLE
        tables.reset()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    provider = LocalIdentityProvider(tmp_path_factory.mktemp("idp") / "idp-key.pem")
    provider.start()  # an ephemeral port
    yield provider
    provider.stop()


@dataclass
class Api:
    """The app under Chalice's test client, with tokens for each kind of caller."""

    client: Client
    identity: LocalIdentityProvider

    def token(self, user_id: str, *groups: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.identity.mint(user_id, list(groups))}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-1", "ops")

    @property
    def support(self) -> dict[str, str]:
        return self.token("support-1", "support")

    @property
    def customer(self) -> dict[str, str]:
        return self.token("customer-1", "customers")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        return self.client.http.request(method, path, body=raw, headers=all_headers)


@pytest.fixture
def api(
    aws_table: str,
    identity: LocalIdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Api]:
    from app import app

    for name, value in identity.env().items():
        monkeypatch.setenv(name, value)
    # The API's public URL, as a deployed stage configures it (Alipay and WeChat Pay need it).
    monkeypatch.setenv("PUBLIC_API_URL", "https://api.shop.example.com/")
    get_settings.cache_clear()
    # A project without stage variables: the test's environment is the app's.
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "orderdesk", "stages": {"dev": {}}})
    )
    with Client(app, project_dir=str(tmp_path)) as client:
        yield Api(client=client, identity=identity)
    get_settings.cache_clear()
