"""Stripe webhooks: nothing in a body is read before its signature and age are checked."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from chalicelib.adapters.payments import (
    NotificationKind,
    NotificationRejected,
    ProviderStatus,
)
from chalicelib.adapters.payments.card import StripeCardProvider
from chalicelib.domain.money import Money

SECRET = "whsec_unit_test_secret"


@pytest.fixture
def provider() -> StripeCardProvider:
    # Verification never calls Stripe; the base points nowhere on purpose.
    return StripeCardProvider("sk_test_unit", webhook_secret=SECRET, api_base="http://127.0.0.1:9")


def intent_event(event_type: str = "payment_intent.succeeded", **intent: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": 1_790_000_000,
        "data": {
            "object": {
                "id": "pi_1",
                "object": "payment_intent",
                "amount": 12_900,
                "amount_received": 12_900,
                "currency": "cny",
                "status": "succeeded",
                "metadata": {"payment_id": "pay-1", "order_id": "ord-1"},
                **intent,
            }
        },
    }


def signed(
    event: dict[str, Any] | bytes, *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body as Stripe sends them: HMAC-SHA256 of ``t.body`` as ``v1``."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={digest}"}, body


def test_a_correctly_signed_payment_event_is_verified_and_parsed(
    provider: StripeCardProvider,
) -> None:
    headers, body = signed(intent_event())

    notification = provider.verify_notification(headers, body)

    assert notification.provider == "card"
    assert notification.event_id == "evt_1"
    assert notification.event_type == "payment_intent.succeeded"
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is ProviderStatus.SUCCEEDED
    assert notification.payment_id == "pay-1"
    assert notification.provider_payment_id == "pi_1"
    assert notification.amount == Money(12_900, "CNY")
    assert notification.occurred_at is not None
    assert int(notification.occurred_at.timestamp()) == 1_790_000_000


def test_the_signature_header_is_found_whatever_its_case(provider: StripeCardProvider) -> None:
    headers, body = signed(intent_event())
    lower = {"stripe-signature": headers["Stripe-Signature"]}

    assert provider.verify_notification(lower, body).event_id == "evt_1"


def test_a_signature_made_with_another_secret_is_rejected(provider: StripeCardProvider) -> None:
    headers, body = signed(intent_event(), secret="whsec_someone_else")

    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, body)


def test_a_body_changed_after_signing_is_rejected(provider: StripeCardProvider) -> None:
    headers, body = signed(intent_event())
    tampered = body.replace(b"12900", b"1")
    assert tampered != body

    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, tampered)


def test_a_signature_older_than_five_minutes_is_rejected(provider: StripeCardProvider) -> None:
    headers, body = signed(intent_event(), timestamp=int(time.time()) - 301)

    with pytest.raises(NotificationRejected, match=r"(?i)tolerance"):
        provider.verify_notification(headers, body)


def test_a_signature_just_inside_five_minutes_is_accepted(provider: StripeCardProvider) -> None:
    headers, body = signed(intent_event(), timestamp=int(time.time()) - 290)

    assert provider.verify_notification(headers, body).event_id == "evt_1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Stripe-Signature": ""}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1"}],
    ids=["missing", "empty", "unparsable", "no-v1"],
)
def test_a_missing_or_unreadable_signature_header_is_rejected(
    provider: StripeCardProvider, headers: dict[str, str]
) -> None:
    _, body = signed(intent_event())

    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, body)


def test_a_signed_body_that_is_not_json_is_rejected(provider: StripeCardProvider) -> None:
    headers, body = signed(b"\xff\xfe not json")

    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, body)


def test_a_signed_event_missing_its_fields_is_rejected(provider: StripeCardProvider) -> None:
    headers, body = signed({"id": "evt_2", "object": "event", "type": "payment_intent.succeeded"})

    with pytest.raises(NotificationRejected):
        provider.verify_notification(headers, body)


def test_without_a_configured_secret_nothing_is_accepted() -> None:
    unconfigured = StripeCardProvider("sk_test_unit", api_base="http://127.0.0.1:9")
    headers, body = signed(intent_event(), secret="")

    with pytest.raises(NotificationRejected):
        unconfigured.verify_notification(headers, body)


def test_a_replayed_event_parses_to_the_same_event_id(provider: StripeCardProvider) -> None:
    event = intent_event()
    first = provider.verify_notification(*signed(event, timestamp=int(time.time()) - 60))
    replay = provider.verify_notification(*signed(event))

    # What makes the webhook idempotent: the store records event ids it has handled.
    assert replay.event_id == first.event_id == "evt_1"
    assert replay == first


def test_a_payment_failure_carries_the_decline_code(provider: StripeCardProvider) -> None:
    event = intent_event(
        "payment_intent.payment_failed",
        status="requires_payment_method",
        amount_received=0,
        last_payment_error={
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )

    notification = provider.verify_notification(*signed(event))

    assert notification.status is ProviderStatus.FAILED
    assert notification.amount == Money(12_900, "CNY")  # what was asked, not what was received
    assert notification.failure_code == "insufficient_funds"
    assert notification.failure_message == "Your card has insufficient funds."


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("payment_intent.requires_action", ProviderStatus.REQUIRES_ACTION),
        ("payment_intent.processing", ProviderStatus.PENDING),
        ("payment_intent.canceled", ProviderStatus.FAILED),
    ],
)
def test_each_payment_intent_event_has_its_status(
    provider: StripeCardProvider, event_type: str, status: ProviderStatus
) -> None:
    notification = provider.verify_notification(*signed(intent_event(event_type)))

    assert notification.kind is NotificationKind.PAYMENT
    assert notification.status is status


def test_a_refund_event_names_our_refund(provider: StripeCardProvider) -> None:
    event = {
        "id": "evt_3",
        "object": "event",
        "type": "refund.created",
        "created": 1_790_000_100,
        "data": {
            "object": {
                "id": "re_1",
                "object": "refund",
                "amount": 1_500,
                "currency": "cny",
                "status": "succeeded",
                "payment_intent": "pi_1",
                "metadata": {"refund_id": "ref-1", "payment_id": "pay-1"},
            }
        },
    }

    notification = provider.verify_notification(*signed(event))

    assert notification.kind is NotificationKind.REFUND
    assert notification.status is ProviderStatus.SUCCEEDED
    assert (notification.refund_id, notification.provider_refund_id) == ("ref-1", "re_1")
    assert (notification.payment_id, notification.provider_payment_id) == ("pay-1", "pi_1")
    assert notification.amount == Money(1_500, "CNY")


def test_charge_refunded_names_the_latest_refund(provider: StripeCardProvider) -> None:
    event = {
        "id": "evt_4",
        "object": "event",
        "type": "charge.refunded",
        "created": 1_790_000_200,
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "amount": 5_000,
                "amount_refunded": 2_000,
                "currency": "cny",
                "payment_intent": "pi_1",
                "metadata": {},
                "refunds": {
                    "data": [
                        {
                            "id": "re_2",
                            "object": "refund",
                            "amount": 500,
                            "currency": "cny",
                            "status": "pending",
                            "metadata": {"refund_id": "ref-2", "payment_id": "pay-1"},
                        },
                        {"id": "re_1", "amount": 1_500, "currency": "cny", "status": "succeeded"},
                    ]
                },
            }
        },
    }

    notification = provider.verify_notification(*signed(event))

    assert notification.kind is NotificationKind.REFUND
    assert notification.status is ProviderStatus.PENDING
    assert notification.refund_id == "ref-2"
    assert notification.provider_payment_id == "pi_1"
    assert notification.amount == Money(500, "CNY")


def test_an_event_we_do_not_act_on_is_verified_as_other(provider: StripeCardProvider) -> None:
    event = {
        "id": "evt_5",
        "object": "event",
        "type": "customer.created",
        "created": 1_790_000_300,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }

    notification = provider.verify_notification(*signed(event))

    assert notification.kind is NotificationKind.OTHER
    assert notification.event_id == "evt_5"
    assert notification.payment_id is None and notification.amount is None


def test_replies_are_what_stripe_expects(provider: StripeCardProvider) -> None:
    ok = provider.acknowledge()
    assert (ok.status_code, json.loads(ok.body)) == (200, {"received": True})
    assert ok.content_type == "application/json"

    refused = provider.reject("bad signature")
    assert refused.status_code == 401
    assert json.loads(refused.body) == {
        "error": "notification_rejected",
        "message": "bad signature",
        "details": None,
    }
