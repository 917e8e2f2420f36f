"""Reading an Alipay notification: a form post, signed over every parameter but ``sign``
and ``sign_type`` (empty values included), verified with Alipay's public key before any
field is read; then the app id is checked to be ours and the payment or refund it reports
is read strictly. Anything else raises ``NotificationRejected``.
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Mapping
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.payments import (
    ALIPAY,
    Notification,
    NotificationKind,
    NotificationRejected,
    ProviderStatus,
)
from chalicelib.adapters.payments.alipay_fields import (
    CURRENCY,
    TRADE_STATUSES,
    china_time,
    parse_signed_yuan,
    parse_yuan,
)
from chalicelib.adapters.payments.alipay_signing import notification_signing_content, rsa2_verify
from chalicelib.domain.money import Money

MAX_NOTIFICATION_BYTES = 64 * 1024


def read_notification(
    headers: Mapping[str, str], body: bytes, *, app_id: str, alipay_key: rsa.RSAPublicKey
) -> Notification:
    """Check the RSA2 signature first, then our app id, then read the fields."""
    params = _notification_params(headers, body)
    signature = params.get("sign", "")
    if not signature:
        raise NotificationRejected("notification has no signature")
    if params.get("sign_type", "RSA2") != "RSA2":
        raise NotificationRejected("notification sign_type is not RSA2")
    content = notification_signing_content(params)
    if not rsa2_verify(alipay_key, content, signature):
        raise NotificationRejected("notification signature does not verify")

    # Signed by Alipay from here on; still only the fields we expect, strictly read.
    if not hmac.compare_digest(params.get("app_id", "").encode(), app_id.encode()):
        raise NotificationRejected("notification is for another app_id")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise NotificationRejected("notification charset is not utf-8")
    notify_id = _required(params, "notify_id")
    out_trade_no = _required(params, "out_trade_no")
    trade_no = _required(params, "trade_no")
    trade_status = _required(params, "trade_status")
    status = TRADE_STATUSES.get(trade_status)
    if status is None:
        raise NotificationRejected("notification has an unknown trade_status")
    notified_at = _notification_time(params, "notify_time")
    event_type = f"{params.get('notify_type', 'trade_status_sync')}:{trade_status}"

    if _is_refund(params):
        return Notification(
            provider=ALIPAY,
            event_id=notify_id,
            kind=NotificationKind.REFUND,
            status=ProviderStatus.SUCCEEDED,
            payment_id=out_trade_no,
            provider_payment_id=trade_no,
            # refund_fee is what the trade has had refunded in all, not this refund alone.
            amount=Money(_notification_amount(params, "refund_fee"), CURRENCY),
            refund_id=_required(params, "out_biz_no"),
            provider_refund_id=params["out_biz_no"],
            occurred_at=(
                _notification_time(params, "gmt_refund")
                if params.get("gmt_refund")
                else notified_at
            ),
            event_type=event_type,
        )
    return Notification(
        provider=ALIPAY,
        event_id=notify_id,
        kind=NotificationKind.PAYMENT,
        status=status,
        payment_id=out_trade_no,
        provider_payment_id=trade_no,
        # Left out, the amount is None: a success without one is not acknowledged.
        amount=(
            Money(_notification_amount(params, "total_amount"), CURRENCY)
            if params.get("total_amount")
            else None
        ),
        occurred_at=(
            _notification_time(params, "gmt_payment") if params.get("gmt_payment") else notified_at
        ),
        failure_code="TRADE_CLOSED" if status is ProviderStatus.FAILED else None,
        event_type=event_type,
    )


def _notification_params(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    content_type = next(
        (value for key, value in headers.items() if key.lower() == "content-type"), ""
    )
    if content_type and not content_type.lower().startswith("application/x-www-form-urlencoded"):
        raise NotificationRejected("notification is not form-encoded")
    if not body:
        raise NotificationRejected("notification body is empty")
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise NotificationRejected("notification body is too large")
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=200,
        )
    except (UnicodeDecodeError, ValueError):
        raise NotificationRejected("notification body is not a utf-8 form") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise NotificationRejected(f"notification repeats the field {key[:40]!r}")
        params[key] = value
    return params


def _is_refund(params: Mapping[str, str]) -> bool:
    """A refund notification names the refund request (``out_biz_no``, ``gmt_refund``) or
    carries a refunded total above zero. Alipay's own sample of a plain payment carries
    ``refund_fee=0.00`` (and ``gmt_close``): that is a payment."""
    if params.get("out_biz_no") or params.get("gmt_refund"):
        return True
    refund_fee = params.get("refund_fee", "")
    if not refund_fee:
        return False
    try:
        return parse_signed_yuan(refund_fee) != 0
    except ValueError:
        raise NotificationRejected("notification refund_fee is not a valid amount") from None


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise NotificationRejected(f"notification lacks {name}")
    return value


def _notification_amount(params: Mapping[str, str], name: str) -> int:
    try:
        return parse_yuan(_required(params, name))
    except ValueError:
        raise NotificationRejected(f"notification {name} is not a valid amount") from None


def _notification_time(params: Mapping[str, str], name: str) -> datetime:
    try:
        return china_time(_required(params, name))
    except ValueError:
        raise NotificationRejected(f"notification {name} is not a valid time") from None
