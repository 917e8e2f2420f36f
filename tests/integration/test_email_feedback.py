"""SES's bounces and complaints, over the real app and moto.

The feedback handler is invoked as SNS invokes it (one record per message, the message in
the shapes AWS documents); what customers then receive is read from what moto's SES and
SNS recorded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from test_contact_verification import confirm, last_emailed_code, me, start
from test_me_api import signed_in
from test_notifications_worker import (
    CUSTOMER,
    EMAIL,
    PHONE,
    REGION,
    deliver,
    emails,
    place_order,
    pushes,
    recorded_event_body,
    set_profile,
    sms,
    world,
)

from chalicelib.adapters import notifications as channels
from chalicelib.domain.notifications import Channel, RenderedMessage
from chalicelib.settings import get_settings
from chalicelib.store import customers as customer_store
from infra.local.email_feedback import ses_event, sns_event

if TYPE_CHECKING:
    from conftest import Api

__all__ = ["world"]  # the fixture, shared with the notifications tests

CONFIGURATION_SET = "orderdesk-test"
TOPIC_ARN = f"arn:aws:sns:{REGION}:123456789012:orderdesk-test-email-feedback"
MAIL = {
    "timestamp": "2026-05-20T08:00:00.000Z",
    "source": "orders@orderdesk.test",
    "messageId": "0100018f-example-000000",
    "destination": [EMAIL],
}


@pytest.fixture
def feedback_world(world: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The notifications world, sending with a configuration set as a deployed stage does."""
    boto3.client("ses", region_name=REGION).create_configuration_set(
        ConfigurationSet={"Name": CONFIGURATION_SET}
    )
    monkeypatch.setenv("SES_CONFIGURATION_SET", CONFIGURATION_SET)
    get_settings.cache_clear()
    return world


def bounce_message(
    address: str = EMAIL, bounce_type: str = "Permanent", kind: str = "eventType"
) -> str:
    return json.dumps(
        {
            kind: "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
                "bouncedRecipients": [
                    {"emailAddress": address, "action": "failed", "status": "5.1.1"}
                ],
                "timestamp": "2026-05-20T08:00:05.000Z",
                "feedbackId": "0100018f-feedback-000000",
            },
            "mail": MAIL,
        }
    )


def complaint_message(address: str = EMAIL, kind: str = "notificationType") -> str:
    return json.dumps(
        {
            kind: "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": address}],
                "timestamp": "2026-05-20T09:00:00.000Z",
                "feedbackId": "0100018f-complaint-000000",
                "complaintFeedbackType": "abuse",
            },
            "mail": MAIL,
        }
    )


def feed(api: Api, message: str) -> None:
    """SES's message reaches the handler through the topic, as SNS invokes it."""
    api.client.lambda_.invoke("record_email_feedback", sns_event(message, TOPIC_ARN))


def register_device(api: Api) -> None:
    response = api.request(
        "POST", "/me/devices", {"platform": "apns", "token": "ab" * 32}, signed_in(api, CUSTOMER)
    )
    assert response.status_code == 201


def notify_new_order(api: Api) -> None:
    order = place_order(api)
    _, body = recorded_event_body("order.placed", order.order_id)
    assert deliver(api, ("m-1", body)) == []


def emails_to(address: str) -> list[Any]:
    return [m for m in emails() if m.destinations["ToAddresses"] == [address]]


# --- sending with the configuration set -------------------------------------------------------


def test_email_is_sent_with_the_configuration_set_and_refused_for_an_unknown_one(
    feedback_world: Api,
) -> None:
    message = RenderedMessage(channel=Channel.EMAIL, subject="Hello", body="Hello.")
    sender = get_settings().notifications_from_email

    assert channels.SesEmailSender(sender, CONFIGURATION_SET).send(EMAIL, message)
    with pytest.raises(ClientError) as refused:
        channels.SesEmailSender(sender, "orderdesk-missing").send(EMAIL, message)

    assert refused.value.response["Error"]["Code"] == "ConfigurationSetDoesNotExist"
    assert len(emails()) == 1


# --- what feedback does -----------------------------------------------------------------------


def test_a_permanent_bounce_stops_email_but_sms_and_push_still_go(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    register_device(feedback_world)

    feed(feedback_world, bounce_message("Li.Lei@Example.com"))

    profile = me(feedback_world)
    assert profile["email_status"] == "undeliverable"
    assert profile["email_undeliverable_reason"] == "bounced"
    assert profile["email"] == EMAIL and profile["email_verified"] is True
    notify_new_order(feedback_world)
    assert emails() == []
    assert [phone for phone, _ in sms()] == [PHONE]
    assert len(pushes()) == 1


def test_a_transient_bounce_changes_nothing(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    before = customer_store.get_profile(CUSTOMER)

    feed(feedback_world, bounce_message(bounce_type="Transient"))

    assert customer_store.get_profile(CUSTOMER) == before
    assert me(feedback_world)["email_status"] == "verified"
    notify_new_order(feedback_world)
    assert len(emails_to(EMAIL)) == 1


@pytest.mark.parametrize("kind", ["notificationType", "eventType"])
def test_a_complaint_marks_the_email_undeliverable(feedback_world: Api, kind: str) -> None:
    set_profile(feedback_world, "en")

    feed(feedback_world, complaint_message(kind=kind))

    profile = me(feedback_world)
    assert (profile["email_status"], profile["email_undeliverable_reason"]) == (
        "undeliverable",
        "complained",
    )
    notify_new_order(feedback_world)
    assert emails() == []
    assert len(sms()) == 1


def test_a_newly_verified_address_is_emailed_again(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    feed(feedback_world, bounce_message())
    new_address = "li.lei@new.example.com"

    started = start(feedback_world, "email", new_address)
    assert started.status_code == 202, started.json_body
    code = last_emailed_code(new_address)
    confirmed = confirm(feedback_world, started.json_body["verification_id"], code)

    assert confirmed.status_code == 200, confirmed.json_body
    assert confirmed.json_body["email"] == new_address
    assert confirmed.json_body["email_status"] == "verified"
    assert confirmed.json_body["email_undeliverable_reason"] is None
    notify_new_order(feedback_world)
    assert len(emails_to(new_address)) == 2  # the code, then the order
    assert emails_to(EMAIL) == []
    # The old address's feedback no longer finds the customer.
    feed(feedback_world, bounce_message(EMAIL))
    assert me(feedback_world)["email_status"] == "verified"


def test_confirming_the_same_address_again_clears_the_mark(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    feed(feedback_world, bounce_message())

    started = start(feedback_world, "email", EMAIL)
    confirm(feedback_world, started.json_body["verification_id"], last_emailed_code(EMAIL))

    assert me(feedback_world)["email_status"] == "verified"
    notify_new_order(feedback_world)
    assert len(emails_to(EMAIL)) == 2  # the code, then the order


def test_an_address_the_customer_has_left_is_not_marked(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    set_profile(feedback_world, "en", email="li.lei@elsewhere.example.com")

    feed(feedback_world, bounce_message(EMAIL))

    assert customer_store.customers_with_email(EMAIL) == []
    assert customer_store.customers_with_email("LI.LEI@elsewhere.example.com") == [CUSTOMER]
    assert me(feedback_world)["email_status"] == "unverified"


def test_every_customer_holding_the_address_is_marked(feedback_world: Api) -> None:
    set_profile(feedback_world, "en")
    set_profile(feedback_world, "en", user="customer-2")

    feed(feedback_world, bounce_message())

    assert me(feedback_world)["email_status"] == "undeliverable"
    assert me(feedback_world, "customer-2")["email_status"] == "undeliverable"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("bounce", "undeliverable"), ("soft-bounce", "verified"), ("complaint", "undeliverable")],
)
def test_the_local_stacks_feedback_tool_speaks_what_ses_publishes(
    feedback_world: Api, kind: str, status: str
) -> None:
    set_profile(feedback_world, "en")

    feed(feedback_world, ses_event(EMAIL, kind))

    assert me(feedback_world)["email_status"] == status


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps({"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}}),
        json.dumps({"notificationType": "Complaint"}),
    ],
)
def test_a_malformed_message_is_dropped_without_changing_anything(
    feedback_world: Api, message: str
) -> None:
    set_profile(feedback_world, "en")
    before = customer_store.get_profile(CUSTOMER)

    feed(feedback_world, message)  # returns: nothing raised for Lambda to retry

    assert customer_store.get_profile(CUSTOMER) == before
    notify_new_order(feedback_world)
    assert len(emails_to(EMAIL)) == 1
