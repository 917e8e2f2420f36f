"""Configuration from the environment, read once on first use.

Stage variables exist only while a handler runs under Chalice's test client, so nothing
here is read at import time: call ``get_settings()`` where the value is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


@dataclass(frozen=True)
class Settings:
    stage: str
    table_name: str
    table_stream_arn: str
    fulfilment_queue_url: str
    notifications_queue_url: str
    reports_bucket: str
    alerts_topic_arn: str
    # Identity: tokens shaped like Cognito's, verified against the issuer's JWKS.
    jwt_issuer: str
    jwks_url: str
    jwt_client_ids: tuple[str, ...]
    cors_allow_origins: tuple[str, ...]
    max_body_bytes: int
    # Orders: shipping is free at or above SHIPPING_FREE_ABOVE (minor units; empty = never),
    # else SHIPPING_FLAT_FEE per shipment; an unpaid order holds stock this many seconds.
    shipping_flat_fee: int = 1000
    shipping_free_above: int | None = 9900
    order_payment_window_seconds: int = 15 * 60

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        issuer = env.get("JWT_ISSUER", "")
        return cls(
            stage=env.get("STAGE", "dev"),
            table_name=env.get("TABLE_NAME", "orderdesk"),
            table_stream_arn=env.get("TABLE_STREAM_ARN", ""),
            fulfilment_queue_url=env.get("FULFILMENT_QUEUE_URL", ""),
            notifications_queue_url=env.get("NOTIFICATIONS_QUEUE_URL", ""),
            reports_bucket=env.get("REPORTS_BUCKET", ""),
            alerts_topic_arn=env.get("ALERTS_TOPIC_ARN", ""),
            jwt_issuer=issuer,
            jwks_url=env.get("JWKS_URL") or f"{issuer}/.well-known/jwks.json",
            jwt_client_ids=_csv(env.get("JWT_CLIENT_IDS", "")),
            cors_allow_origins=_csv(env.get("CORS_ALLOW_ORIGINS", "")),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(256 * 1024))),
            shipping_flat_fee=int(env.get("SHIPPING_FLAT_FEE", "1000")),
            shipping_free_above=_optional_int(env.get("SHIPPING_FREE_ABOVE", "9900")),
            order_payment_window_seconds=int(env.get("ORDER_PAYMENT_WINDOW_SECONDS", "900")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()
