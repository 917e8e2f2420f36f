"""Configuration from the environment, read once on first use.

Stage variables exist only while a handler runs under Chalice's test client, so nothing
here is read at import time: call ``get_settings()`` where the value is needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


def _queues(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Each queue the stage has (``<NAME>_QUEUE_URL``) with its dead-letter queue
    (``<NAME>_DLQ_URL``, empty for a queue without one), by lower-case name."""
    found = {}
    for key, url in env.items():
        if key.endswith("_QUEUE_URL") and url:
            name = key.removesuffix("_QUEUE_URL")
            found[name.lower()] = (url, env.get(f"{name}_DLQ_URL", ""))
    return found


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
    queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Orders: shipping is free at or above SHIPPING_FREE_ABOVE (minor units; empty = never),
    # else SHIPPING_FLAT_FEE per shipment; an unpaid order holds stock this many seconds.
    shipping_flat_fee: int = 1000
    shipping_free_above: int | None = 9900
    order_payment_window_seconds: int = 15 * 60
    # Placement retries DynamoDB's conflicts and throttles for at most this long before it
    # answers 503 busy (API Gateway gives up at 29 s; a last read with botocore's own retries
    # can take a few more seconds).
    placement_budget_seconds: float = 10.0
    # The operations queue (stock.low / stock.recovered -> low-stock alerts); empty = not set.
    operations_queue_url: str = ""
    # Customer notifications (empty = not configured): the SES-verified sender address, the
    # storefront whose /orders/<id> pages messages link to, and the SNS platform applications
    # that device tokens are registered with.
    notifications_from_email: str = ""
    # The SES configuration set every email is sent with (its bounces and complaints reach
    # the email-feedback topic); empty = none.
    ses_configuration_set: str = ""
    # The server-side key of contact verification codes' hashes (a pepper): from the
    # SECRETS_ARN secret in AWS; the local stack makes one. Empty = no codes can be sent.
    contact_code_pepper: str = ""
    storefront_url: str = ""
    push_apns_application_arn: str = ""
    push_fcm_application_arn: str = ""
    # Where the API is reached from outside (providers' notify URLs are built from it).
    public_api_url: str = ""
    # Card payments on Stripe (empty = not configured; an empty base is Stripe's own API).
    stripe_api_key: str = ""
    stripe_api_base: str = ""
    stripe_webhook_secret: str = ""
    # Payments: a pending payment holds the order's stock until PAYMENT_HOLD_SECONDS from
    # its start, never past MAX_ORDER_HOLD_SECONDS from the order's creation.
    payment_hold_seconds: int = 30 * 60
    max_order_hold_seconds: int = 60 * 60
    # WeChat Pay APIv3 (empty = not configured). Keys are PEM text; the base URL defaults to
    # the real gateway when empty. The platform key verifies WeChat Pay's signatures.
    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""
    wechatpay_base_url: str = ""
    wechatpay_merchant_private_key: str = ""
    wechatpay_merchant_serial: str = ""
    wechatpay_apiv3_key: str = ""
    wechatpay_platform_public_key: str = ""
    wechatpay_platform_serial: str = ""  # the public key's id (PUB_KEY_ID_...)
    # WeChat Pay platform certificates (PEM, one or more), trusted by their serial beside
    # the public key: a merchant moving from certificates to the public key needs both.
    wechatpay_platform_certificates: str = ""
    # Alipay open platform (empty = not configured). Keys are PEM text (or the console's
    # bare base64); an empty gateway URL means Alipay's production gateway.
    alipay_app_id: str = ""
    alipay_gateway_url: str = ""
    alipay_app_private_key: str = ""
    alipay_public_key: str = ""
    # Carriers (empty = not configured): the Kuaidi100 API (an empty base URL means
    # https://poll.kuaidi100.com) and our key there; CARRIER_WEBHOOK_SECRET is the salt our
    # subscriptions ask Kuaidi100 to sign its pushes with; the AfterShip and EasyPost secrets
    # verify theirs. The tracking URL template takes {carrier} and {tracking_number}.
    carrier_base_url: str = ""
    carrier_code: str = "shunfeng"  # the kuaidi100 company code parcels are booked with
    carrier_key: str = ""
    carrier_webhook_secret: str = ""
    aftership_webhook_secret: str = ""
    easypost_webhook_secret: str = ""
    carrier_tracking_url_template: str = ""
    # Booking parcels (see adapters/carriers/routes.py and the README's carriers section):
    # which provider books and which tracks each carrier ("dhl=easypost,yunda=kuaidi100/
    # aftership" over the defaults), the carrier for parcels leaving China, Kuaidi100's
    # e-waybill secret, base URL and per-carrier partner accounts (JSON), EasyPost's and
    # AfterShip's API keys and base URLs (empty: the providers' own).
    carrier_routes: str = ""
    international_carrier_code: str = "dhl"
    carrier_secret: str = ""
    carrier_label_base_url: str = ""
    kuaidi100_partners: str = ""
    easypost_api_key: str = ""
    easypost_base_url: str = ""
    aftership_api_key: str = ""
    aftership_base_url: str = ""
    # The deployed code's version, recorded in report manifests (the package step sets it to
    # the git commit it packaged; empty means "dev").
    code_version: str = ""
    # Analytics: the queue its events arrive on, and the time zone whose calendar days the
    # figures are kept and reported by (the nightly job's cron in UTC assumes UTC+8).
    analytics_queue_url: str = ""
    business_time_zone: str = "Asia/Shanghai"
    # Customers' uploads (review photos): the bucket presigned POSTs write into.
    uploads_bucket: str = ""
    # Abuse limits per customer: unpaid orders and the units of one SKU they may hold,
    # orders created and payments started per minute.
    max_open_unpaid_orders: int = 5
    max_held_units_per_sku: int = 20
    orders_per_minute: int = 10
    payments_per_minute: int = 10
    # Set by the local stack: /health answers 503 until this file exists (see api/health.py).
    health_ready_file: str = ""
    # After-sales windows per product category, JSON overriding the defaults per type or
    # "type:reason" in days, e.g. {"electronics": {"repair": 730}}; empty = the defaults.
    after_sales_windows: str = ""
    # Support: minutes a conversation handed to support waits for its first human reply
    # before it is overdue; the WebSocket URL clients connect to, and the @connections
    # management endpoint the app posts to (empty = no live delivery; clients poll).
    support_first_response_minutes: int = 15
    support_socket_url: str = ""
    support_socket_callback_url: str = ""

    @classmethod
    def from_environment(cls) -> Settings:
        env = _with_secrets(os.environ)
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
            queues=_queues(env),
            shipping_flat_fee=int(env.get("SHIPPING_FLAT_FEE", "1000")),
            shipping_free_above=_optional_int(env.get("SHIPPING_FREE_ABOVE", "9900")),
            order_payment_window_seconds=int(env.get("ORDER_PAYMENT_WINDOW_SECONDS", "900")),
            placement_budget_seconds=float(env.get("PLACEMENT_BUDGET_SECONDS", "10")),
            operations_queue_url=env.get("OPERATIONS_QUEUE_URL", ""),
            notifications_from_email=env.get("NOTIFICATIONS_FROM_EMAIL", ""),
            ses_configuration_set=env.get("SES_CONFIGURATION_SET", ""),
            contact_code_pepper=env.get("CONTACT_CODE_PEPPER", ""),
            storefront_url=env.get("STOREFRONT_URL", "").rstrip("/"),
            push_apns_application_arn=env.get("PUSH_APNS_APPLICATION_ARN", ""),
            push_fcm_application_arn=env.get("PUSH_FCM_APPLICATION_ARN", ""),
            public_api_url=env.get("PUBLIC_API_URL", "").rstrip("/"),
            stripe_api_key=env.get("STRIPE_API_KEY", ""),
            stripe_api_base=env.get("STRIPE_API_BASE", ""),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            payment_hold_seconds=int(env.get("PAYMENT_HOLD_SECONDS", "1800")),
            max_order_hold_seconds=int(env.get("MAX_ORDER_HOLD_SECONDS", "3600")),
            max_open_unpaid_orders=int(env.get("MAX_OPEN_UNPAID_ORDERS", "5")),
            max_held_units_per_sku=int(env.get("MAX_HELD_UNITS_PER_SKU", "20")),
            orders_per_minute=int(env.get("ORDERS_PER_MINUTE", "10")),
            payments_per_minute=int(env.get("PAYMENTS_PER_MINUTE", "10")),
            health_ready_file=env.get("HEALTH_READY_FILE", ""),
            wechatpay_mchid=env.get("WECHATPAY_MCHID", ""),
            wechatpay_appid=env.get("WECHATPAY_APPID", ""),
            wechatpay_base_url=env.get("WECHATPAY_BASE_URL", ""),
            wechatpay_merchant_private_key=env.get("WECHATPAY_MERCHANT_PRIVATE_KEY", ""),
            wechatpay_merchant_serial=env.get("WECHATPAY_MERCHANT_SERIAL", ""),
            wechatpay_apiv3_key=env.get("WECHATPAY_APIV3_KEY", ""),
            wechatpay_platform_public_key=env.get("WECHATPAY_PLATFORM_PUBLIC_KEY", ""),
            wechatpay_platform_serial=env.get("WECHATPAY_PLATFORM_SERIAL", ""),
            wechatpay_platform_certificates=env.get("WECHATPAY_PLATFORM_CERTIFICATES", ""),
            alipay_app_id=env.get("ALIPAY_APP_ID", ""),
            alipay_gateway_url=env.get("ALIPAY_GATEWAY_URL", ""),
            alipay_app_private_key=env.get("ALIPAY_APP_PRIVATE_KEY", ""),
            alipay_public_key=env.get("ALIPAY_PUBLIC_KEY", ""),
            carrier_base_url=env.get("CARRIER_BASE_URL", "").rstrip("/"),
            carrier_code=env.get("CARRIER_CODE", "shunfeng"),
            carrier_key=env.get("CARRIER_KEY", ""),
            carrier_webhook_secret=env.get("CARRIER_WEBHOOK_SECRET", ""),
            aftership_webhook_secret=env.get("AFTERSHIP_WEBHOOK_SECRET", ""),
            easypost_webhook_secret=env.get("EASYPOST_WEBHOOK_SECRET", ""),
            carrier_tracking_url_template=env.get("CARRIER_TRACKING_URL_TEMPLATE", ""),
            carrier_routes=env.get("CARRIER_ROUTES", ""),
            international_carrier_code=env.get("CARRIER_CODE_INTERNATIONAL", "") or "dhl",
            carrier_secret=env.get("CARRIER_SECRET", ""),
            carrier_label_base_url=env.get("CARRIER_LABEL_BASE_URL", "").rstrip("/"),
            kuaidi100_partners=env.get("KUAIDI100_PARTNERS", ""),
            easypost_api_key=env.get("EASYPOST_API_KEY", ""),
            easypost_base_url=env.get("EASYPOST_BASE_URL", "").rstrip("/"),
            aftership_api_key=env.get("AFTERSHIP_API_KEY", ""),
            aftership_base_url=env.get("AFTERSHIP_BASE_URL", "").rstrip("/"),
            code_version=env.get("CODE_VERSION", ""),
            analytics_queue_url=env.get("ANALYTICS_QUEUE_URL", ""),
            business_time_zone=env.get("BUSINESS_TIME_ZONE", "") or "Asia/Shanghai",
            uploads_bucket=env.get("UPLOADS_BUCKET", ""),
            after_sales_windows=env.get("AFTER_SALES_WINDOWS", ""),
            support_first_response_minutes=int(env.get("SUPPORT_FIRST_RESPONSE_MINUTES") or 15),
            support_socket_url=env.get("SUPPORT_SOCKET_URL", ""),
            support_socket_callback_url=env.get("SUPPORT_SOCKET_CALLBACK_URL", "").rstrip("/"),
        )


def _with_secrets(env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment, completed from the Secrets Manager secret ``SECRETS_ARN`` names.

    Payment and carrier credentials (PEM keys, API keys, webhook secrets) live in one JSON
    secret of ``{"NAME": "value"}`` pairs, not in the function's environment: Lambda allows
    4 KB of environment in all, and two RSA private keys alone take most of it. A variable
    set in the environment wins over the secret's value.
    """
    arn = env.get("SECRETS_ARN", "")
    if not arn:
        return env
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    values = json.loads(secret["SecretString"])
    if not isinstance(values, dict):
        raise ValueError("the secret SECRETS_ARN names must hold a JSON object")
    merged = {str(name): str(value) for name, value in values.items()}
    merged.update({name: value for name, value in env.items() if value})
    return merged


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()
