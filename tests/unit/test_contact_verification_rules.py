"""The rules of a contact-verification code, without a store."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.contact_verification import (
    CODE_LIFETIME,
    MAX_WRONG_CODES,
    ContactVerification,
    VerificationChannel,
    code_hash,
    contact_key,
    new_code,
    render_code,
)
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.notifications import Channel, ContactDetails, CustomerProfile

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PEPPER = "server-side-pepper"


def started(code: str = "123456") -> ContactVerification:
    return ContactVerification.start(
        "cvr_1",
        "customer-1",
        VerificationChannel.EMAIL,
        "li.lei@example.com",
        code,
        AT,
        pepper=PEPPER,
    )


def test_codes_are_six_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 150


def test_only_a_salted_hash_is_kept_and_only_the_right_code_matches() -> None:
    one, other = started(), started()
    assert "123456" not in (one.code_hash, one.salt)
    assert one.salt != other.salt and one.code_hash != other.code_hash
    assert one.matches("123456", PEPPER)
    assert not one.matches("123457", PEPPER)


def test_the_hash_is_keyed_with_the_servers_pepper_so_the_table_alone_cannot_check_a_code() -> None:
    one = started("123456")
    unpeppered = hmac.new(bytes.fromhex(one.salt), b"123456", hashlib.sha256).hexdigest()
    assert one.code_hash != unpeppered
    assert not one.matches("123456", "another-pepper")
    assert one.code_hash == code_hash(PEPPER, one.salt, "123456")
    with pytest.raises(ValueError):  # no pepper, no hash
        code_hash("", one.salt, "123456")


def test_a_verification_hashed_before_the_pepper_can_no_longer_be_confirmed() -> None:
    legacy = replace(started(), peppered=False)
    assert not legacy.usable(AT)


def test_one_contact_is_counted_alike_however_it_is_typed() -> None:
    email = VerificationChannel.EMAIL
    assert contact_key(email, " Li.Lei@Example.COM ") == contact_key(email, "li.lei@example.com")
    assert contact_key(VerificationChannel.SMS, "+8613800000000") != contact_key(
        email, "+8613800000000"
    )


def test_a_code_is_usable_for_ten_minutes_and_five_wrong_codes() -> None:
    verification = started()
    assert verification.usable(AT + CODE_LIFETIME - timedelta(microseconds=1))
    assert not verification.usable(AT + CODE_LIFETIME)
    for _ in range(MAX_WRONG_CODES - 1):
        verification = verification.with_wrong_code()
    assert verification.usable(AT)
    assert not verification.with_wrong_code().usable(AT)
    assert not started().confirmed().usable(AT)


@pytest.mark.parametrize(
    ("channel", "value"),
    [(VerificationChannel.EMAIL, "not-an-email"), (VerificationChannel.SMS, "13800000000")],
)
def test_a_contact_that_does_not_fit_its_channel_is_refused(
    channel: VerificationChannel, value: str
) -> None:
    with pytest.raises(InvalidInput):
        ContactVerification.start(
            "cvr_1", "customer-1", channel, value, "123456", AT, pepper=PEPPER
        )


def test_the_message_carries_the_code_in_the_customers_language() -> None:
    assert "654321" in render_code(VerificationChannel.SMS, "zh-CN", "654321").body
    assert render_code(VerificationChannel.EMAIL, "en", "654321").channel is Channel.EMAIL


def test_only_verified_contacts_are_addresses_and_a_confirmed_one_becomes_verified() -> None:
    contact = ContactDetails(
        email="typed@example.com",
        phone="+8613800000000",
        locale="en",
        name=None,
        phone_verified=True,
    )
    profile = CustomerProfile("customer-1", contact, created_at=AT, updated_at=AT)
    assert profile.verified_address(Channel.EMAIL) is None
    assert profile.verified_address(Channel.SMS) == "+8613800000000"

    confirmed = profile.with_verified(Channel.EMAIL, "proved@example.com", AT)

    assert confirmed.email == "proved@example.com" and confirmed.email_verified
    assert confirmed.verified_address(Channel.EMAIL) == "proved@example.com"
