"""Reading a WeChat Pay notification: its signature checked against the platform keys, its
``resource`` opened with the APIv3 key, and the payment or refund it reports checked to be
the merchant's own before it becomes a ``Notification``. Other event types are passed on as
``OTHER``; anything malformed raises ``NotificationRejected``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.payments import (
    WECHAT_PAY,
    Notification,
    NotificationKind,
    NotificationRejected,
    ProviderStatus,
)
from chalicelib.adapters.payments.wechat_pay_fields import (
    CURRENCY,
    OUT_REFUND_NO,
    OUT_TRADE_NO,
    PROVIDER_ID,
    REFUND_STATUSES,
    STATE,
    TRADE_STATES,
    Reader,
    json_object,
)
from chalicelib.adapters.payments.wechat_pay_signing import (
    AEAD_ALGORITHM,
    SignatureRejected,
    decrypt_resource,
    verify_signature,
)
from chalicelib.domain.money import Money

MAX_NOTIFICATION_BYTES = 64 * 1024
EVENT_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")
EVENT_TYPE = re.compile(r"[A-Z_.]{1,64}")
# A refund notification's event type names the refund status it reports.
REFUND_EVENTS = {
    "REFUND.SUCCESS": "SUCCESS",
    "REFUND.ABNORMAL": "ABNORMAL",
    "REFUND.CLOSED": "CLOSED",
}


def read_notification(
    headers: Mapping[str, str],
    body: bytes,
    *,
    mchid: str,
    appid: str,
    apiv3_key: bytes,
    platform_keys: Mapping[str, rsa.RSAPublicKey],
    clock: Callable[[], float],
) -> Notification:
    """The notification in ``body``, once it verifies and opens, for merchant ``mchid``."""
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise NotificationRejected("notification body too large")
    try:
        verify_signature(headers, body, platform_keys, now=clock())
    except SignatureRejected as error:
        raise NotificationRejected(error.reason) from None
    envelope = Reader(
        json_object(body, "notification", NotificationRejected),
        "notification",
        NotificationRejected,
    )
    event_id = envelope.text("id", pattern=EVENT_ID)
    event_type = envelope.text("event_type", pattern=EVENT_TYPE)
    created_at = envelope.instant("create_time")
    if envelope.text("resource_type") != "encrypt-resource":
        envelope.fail("resource_type", "is not encrypt-resource")
    resource = envelope.child("resource")
    if resource.text("algorithm") != AEAD_ALGORITHM:
        resource.fail("algorithm", f"is not {AEAD_ALGORITHM}")
    original_type = resource.text("original_type", max_length=64)
    data = Reader(
        json_object(_open(resource, apiv3_key), "resource", NotificationRejected),
        "resource",
        NotificationRejected,
    )
    if event_type.startswith("TRANSACTION."):
        if original_type != "transaction":
            resource.fail("original_type", "does not match the event type")
        data.equals("mchid", mchid)
        data.equals("appid", appid)
        return _payment_notification(event_id, event_type, created_at, data)
    if event_type in REFUND_EVENTS:
        if original_type != "refund":
            resource.fail("original_type", "does not match the event type")
        data.equals("mchid", mchid)
        return _refund_notification(event_id, event_type, created_at, data)
    return Notification(
        provider=WECHAT_PAY,
        event_id=event_id,
        kind=NotificationKind.OTHER,
        status=ProviderStatus.PENDING,
        payment_id=None,
        provider_payment_id=None,
        amount=None,
        occurred_at=created_at,
        event_type=event_type,
    )


def _open(resource: Reader, apiv3_key: bytes) -> bytes:
    nonce = resource.text("nonce", max_length=32)
    if len(nonce.encode("utf-8")) < 8:  # AES-GCM needs at least 8 nonce bytes
        resource.fail("nonce")
    try:
        return decrypt_resource(
            apiv3_key,
            nonce=nonce,
            ciphertext=resource.text("ciphertext", max_length=MAX_NOTIFICATION_BYTES),
            associated_data=(
                resource.text("associated_data", allow_empty=True)
                if resource.has("associated_data")
                else ""
            ),
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise NotificationRejected("resource does not decrypt with our APIv3 key") from None


def _payment_notification(
    event_id: str, event_type: str, created_at: datetime, data: Reader
) -> Notification:
    out_trade_no = data.text("out_trade_no", pattern=OUT_TRADE_NO)
    trade_state = data.text("trade_state", pattern=STATE)
    status = TRADE_STATES.get(trade_state)
    if status is None:
        data.fail("trade_state", "is unknown")
    succeeded = trade_state == "SUCCESS"
    if (event_type == "TRANSACTION.SUCCESS") != succeeded:
        data.fail("trade_state", "does not match the event type")
    amount = data.child("amount")
    total = amount.integer("total", minimum=1)
    if amount.text("currency") != CURRENCY:
        amount.fail("currency", "is not CNY")
    if succeeded:
        transaction_id: str | None = data.text("transaction_id", pattern=PROVIDER_ID)
        occurred_at = data.instant("success_time")
    else:
        transaction_id = data.optional_text("transaction_id", pattern=PROVIDER_ID)
        occurred_at = created_at
    failed = status is ProviderStatus.FAILED
    return Notification(
        provider=WECHAT_PAY,
        event_id=event_id,
        kind=NotificationKind.PAYMENT,
        status=status,
        payment_id=out_trade_no,
        provider_payment_id=transaction_id,
        amount=Money(total, CURRENCY),
        occurred_at=occurred_at,
        failure_code=trade_state if failed else None,
        failure_message=data.optional_text("trade_state_desc") if failed else None,
        event_type=event_type,
    )


def _refund_notification(
    event_id: str, event_type: str, created_at: datetime, data: Reader
) -> Notification:
    refund_status = data.text("refund_status", pattern=STATE)
    if refund_status != REFUND_EVENTS[event_type]:
        data.fail("refund_status", "does not match the event type")
    status = REFUND_STATUSES[refund_status]
    amount = data.child("amount")
    total = amount.integer("total", minimum=1)
    refunded = amount.integer("refund", minimum=1, maximum=total)
    succeeded = refund_status == "SUCCESS"
    return Notification(
        provider=WECHAT_PAY,
        event_id=event_id,
        kind=NotificationKind.REFUND,
        status=status,
        payment_id=data.text("out_trade_no", pattern=OUT_TRADE_NO),
        provider_payment_id=data.text("transaction_id", pattern=PROVIDER_ID),
        amount=Money(refunded, CURRENCY),
        refund_id=data.text("out_refund_no", pattern=OUT_REFUND_NO),
        provider_refund_id=data.text("refund_id", pattern=PROVIDER_ID),
        occurred_at=data.instant("success_time") if succeeded else created_at,
        failure_code=None if succeeded else refund_status,
        event_type=event_type,
    )
