"""Credentials from Secrets Manager complete the environment (Lambda's 4 KB limit)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.settings import get_settings


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        get_settings.cache_clear()
        yield boto3.client("secretsmanager")
    get_settings.cache_clear()


def test_credentials_come_from_the_secret_and_the_environment_wins(
    secrets_manager: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\n" + "A" * 1600 + "\n-----END PRIVATE KEY-----\n"
    arn = secrets_manager.create_secret(  # type: ignore[attr-defined]
        Name="orderdesk/dev/credentials",
        SecretString=json.dumps(
            {"ALIPAY_APP_PRIVATE_KEY": pem, "STRIPE_API_KEY": "sk_from_secret"}
        ),
    )["ARN"]
    monkeypatch.setenv("SECRETS_ARN", arn)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_from_environment")
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY", raising=False)
    settings = get_settings()
    assert settings.alipay_app_private_key == pem
    assert settings.stripe_api_key == "sk_from_environment"


def test_without_a_secret_only_the_environment_counts(
    secrets_manager: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETS_ARN", raising=False)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_env")
    assert get_settings().stripe_api_key == "sk_env"
