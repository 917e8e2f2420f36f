"""Reading SES's bounce and complaint messages, and what they do to a profile, without AWS.

The messages follow AWS's documented examples: "Examples of event data that Amazon SES
publishes to Amazon SNS" (``eventType``, a configuration set's event destination) and
"Amazon SNS notification examples for Amazon SES" (``notificationType``, identity feedback).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.email_feedback import MalformedFeedback, parse_feedback
from chalicelib.domain.notifications import (
    Channel,
    ContactDetails,
    CustomerProfile,
    UndeliverableReason,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MAIL = {
    "timestamp": "2017-08-05T00:40:02.012Z",
    "source": "Sender Name <sender@example.com>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
    "sendingAccountId": "123456789012",
    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
    "destination": ["recipient@example.com"],
    "tags": {"ses:configuration-set": ["orderdesk-prod"]},
}


def bounce(kind: str = "eventType", bounce_type: str = "Permanent", **extra: Any) -> str:
    return json.dumps(
        {
            kind: "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": "Recipient@Example.com",
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "reportingMTA": "dsn; mta.example.com",
                **extra,
            },
            "mail": MAIL,
        }
    )


def complaint(kind: str = "eventType", **extra: Any) -> str:
    return json.dumps(
        {
            kind: "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "userAgent": "Mozilla/5.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2017-08-05T00:41:02.669Z",
                **extra,
            },
            "mail": MAIL,
        }
    )


@pytest.mark.parametrize("kind", ["eventType", "notificationType"])
def test_a_permanent_bounce_in_either_shape_makes_its_recipient_undeliverable(kind: str) -> None:
    feedback = parse_feedback(bounce(kind))

    assert feedback.event_type == "Bounce"
    assert feedback.reason is UndeliverableReason.BOUNCED
    assert feedback.addresses == ("recipient@example.com",)
    assert feedback.marks_undeliverable
    assert feedback.message_id == MAIL["messageId"]
    assert feedback.detail == "Permanent/General"


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_a_soft_bounce_marks_nothing(bounce_type: str) -> None:
    feedback = parse_feedback(bounce(bounce_type=bounce_type))

    assert feedback.reason is None
    assert not feedback.marks_undeliverable


@pytest.mark.parametrize("kind", ["eventType", "notificationType"])
def test_a_complaint_in_either_shape_makes_its_recipient_undeliverable(kind: str) -> None:
    feedback = parse_feedback(complaint(kind))

    assert feedback.reason is UndeliverableReason.COMPLAINED
    assert feedback.addresses == ("recipient@example.com",)
    assert feedback.detail == "abuse"


def test_a_complaint_reported_as_not_spam_marks_nothing() -> None:
    assert not parse_feedback(complaint(complaintFeedbackType="not-spam")).marks_undeliverable


def test_a_complaint_without_a_feedback_type_still_marks() -> None:
    message = json.loads(complaint())
    del message["complaint"]["complaintFeedbackType"]

    assert parse_feedback(json.dumps(message)).reason is UndeliverableReason.COMPLAINED


def test_every_recipient_of_a_multi_recipient_bounce_is_read_once() -> None:
    recipients = [
        {"emailAddress": "a@example.com"},
        {"emailAddress": "Li Lei <B@example.com>"},
        {"emailAddress": "A@EXAMPLE.COM"},
        {"status": "5.1.1"},
    ]

    feedback = parse_feedback(bounce(bouncedRecipients=recipients))

    assert feedback.addresses == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    "message",
    [
        json.dumps({"eventType": "Delivery", "delivery": {}, "mail": MAIL}),
        json.dumps({"eventType": "Send", "send": {}, "mail": MAIL}),
        json.dumps({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}),
    ],
)
def test_other_events_are_read_and_ignored(message: str) -> None:
    feedback = parse_feedback(message)

    assert not feedback.marks_undeliverable
    assert feedback.addresses == ()


def test_unknown_fields_are_not_errors() -> None:
    message = json.loads(bounce())
    message["somethingNew"] = {"x": 1}
    message["bounce"]["bouncedRecipients"][0]["newField"] = True

    assert parse_feedback(json.dumps(message)).marks_undeliverable


@pytest.mark.parametrize(
    "message",
    [
        "",
        "not json",
        "[]",
        json.dumps({"mail": MAIL}),
        json.dumps({"eventType": 7}),
        json.dumps({"eventType": "Bounce", "mail": MAIL}),
        json.dumps({"eventType": "Bounce", "bounce": {"bouncedRecipients": []}}),
        json.dumps({"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}}),
        json.dumps(
            {
                "eventType": "Bounce",
                "bounce": {"bounceType": "Permanent", "bouncedRecipients": "a@example.com"},
            }
        ),
        json.dumps(
            {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "bouncedRecipients": [{"emailAddress": "not an address"}],
                },
            }
        ),
        json.dumps({"eventType": "Complaint", "complaint": "abuse"}),
        json.dumps({"eventType": "Complaint", "complaint": {"complainedRecipients": []}}),
        "x" * (256 * 1024 + 1),
    ],
)
def test_malformed_messages_are_refused(message: str) -> None:
    with pytest.raises(MalformedFeedback):
        parse_feedback(message)


# --- the profile ----------------------------------------------------------------------------


def profile(email: str | None = "Li.Lei@example.com", verified: bool = True) -> CustomerProfile:
    contact = ContactDetails(
        email=email,
        phone="+8613800000000",
        locale="en",
        name=None,
        email_verified=verified,
        phone_verified=True,
    )
    return CustomerProfile("customer-1", contact, created_at=AT, updated_at=AT)


def test_a_marked_email_is_not_an_address_to_send_to_and_says_why() -> None:
    marked = profile().marked_undeliverable("li.lei@example.com", UndeliverableReason.BOUNCED, AT)

    assert marked.email_undeliverable
    assert marked.verified_address(Channel.EMAIL) is None
    assert marked.verified_address(Channel.SMS) == "+8613800000000"
    assert marked.as_dict()["email_status"] == "undeliverable"
    assert marked.as_dict()["email_undeliverable_reason"] == "bounced"


def test_feedback_about_another_address_leaves_the_profile_as_it_is() -> None:
    before = profile()

    after = before.marked_undeliverable("someone@example.com", UndeliverableReason.BOUNCED, AT)

    assert after is before
    assert after.as_dict()["email_status"] == "verified"


def test_the_same_feedback_twice_changes_nothing_the_second_time() -> None:
    once = profile().marked_undeliverable("li.lei@example.com", UndeliverableReason.COMPLAINED, AT)

    later = AT + timedelta(hours=1)
    assert (
        once.marked_undeliverable("LI.LEI@example.com", UndeliverableReason.COMPLAINED, later)
        is once
    )


def test_confirming_an_email_clears_the_mark_whether_new_or_the_same() -> None:
    marked = profile().marked_undeliverable("li.lei@example.com", UndeliverableReason.BOUNCED, AT)
    later = AT + timedelta(days=1)

    for address in ("new@example.com", "Li.Lei@example.com"):
        confirmed = marked.with_verified(Channel.EMAIL, address, later)
        assert not confirmed.email_undeliverable
        assert confirmed.verified_address(Channel.EMAIL) == address
        assert confirmed.as_dict()["email_status"] == "verified"


def test_confirming_a_phone_does_not_clear_the_email_mark() -> None:
    marked = profile().marked_undeliverable("li.lei@example.com", UndeliverableReason.BOUNCED, AT)

    after = marked.with_verified(Channel.SMS, "+8613900000000", AT + timedelta(minutes=1))

    assert after.email_undeliverable


def test_the_mark_follows_the_address_not_the_profile() -> None:
    marked = profile().marked_undeliverable("li.lei@example.com", UndeliverableReason.BOUNCED, AT)
    other = ContactDetails(email="other@example.com", phone=None, locale="en", name=None)

    moved = marked.with_contact(other, AT + timedelta(minutes=1))
    back = moved.with_contact(
        ContactDetails(email="li.lei@example.com", phone=None, locale="en", name=None),
        AT + timedelta(minutes=2),
    )

    assert moved.as_dict()["email_status"] == "unverified"
    assert back.as_dict()["email_status"] == "undeliverable"
