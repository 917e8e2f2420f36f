"""Proving a typed-in email address or phone number belongs to the customer.

A ``ContactVerification`` is one 6-digit code sent to one contact, valid for
``CODE_LIFETIME``. Only an HMAC-SHA-256 of the code is kept, keyed with a server-side secret
(the pepper, never stored beside it) over a salt new for each verification and the code, so
a copy of the table alone cannot try the 10^6 codes. A code given back is compared in constant
time. ``MAX_WRONG_CODES`` wrong codes, or the code's expiry, spend the verification (410); a
right code confirms it once. A verification hashed before the pepper existed (``peppered``
false) is spent: it expired within minutes anyway.

Codes are limited per customer (``SEND_RATE``) and per contact across all customers
(``CONTACT_SEND_RATE``, counted by ``contact_key``), so no one can flood one address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import Gone, InvalidInput
from chalicelib.domain.limits import RateLimit
from chalicelib.domain.notifications import (
    Channel,
    RenderedMessage,
    is_email,
    is_phone,
    normalize_address,
)

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_CODES = 5
# At most 5 codes sent per hour per customer; the action names the rate counter.
SEND_RATE = RateLimit("contact_verifications", 5, timedelta(hours=1))
# At most 5 codes sent per hour to one email address or phone number, whoever asks.
CONTACT_SEND_RATE = RateLimit("codes_to_one_contact", 5, timedelta(hours=1))


class VerificationChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"

    @property
    def channel(self) -> Channel:
        return Channel.EMAIL if self is VerificationChannel.EMAIL else Channel.SMS


class VerificationState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"


class InvalidCode(InvalidInput):
    code = "invalid_code"

    def __init__(self, attempts_left: int) -> None:
        super().__init__("That is not the code we sent.", {"attempts_left": max(0, attempts_left)})


class VerificationExpired(Gone):
    code = "verification_expired"

    def __init__(self, verification_id: str) -> None:
        super().__init__(
            "This verification can no longer be confirmed (expired, used, or too many wrong "
            "codes); ask for a new code.",
            {"verification_id": verification_id},
        )


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_salt() -> str:
    return secrets.token_hex(16)


def code_hash(pepper: str, salt: str, code: str) -> str:
    """HMAC-SHA-256 keyed with the server's ``pepper`` of the salt and the code."""
    if not pepper:
        raise ValueError("a code hash needs the server's pepper")
    message = bytes.fromhex(salt) + b":" + code.encode()
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


def contact_key(channel: VerificationChannel, value: str) -> str:
    """One contact however it is typed: an email address trimmed and lower-cased, a phone
    number as its E.164 text."""
    if channel is VerificationChannel.EMAIL:
        return f"email:{normalize_address(value)}"
    return f"sms:{value.strip()}"


def check_contact(channel: VerificationChannel, value: str) -> None:
    if channel is VerificationChannel.EMAIL and not is_email(value):
        raise InvalidInput(
            "Invalid contact.", [{"field": "value", "message": "not an email address"}]
        )
    if channel is VerificationChannel.SMS and not is_phone(value):
        raise InvalidInput(
            "Invalid contact.",
            [{"field": "value", "message": "not an E.164 number (+8613800000000)"}],
        )


@dataclass(frozen=True, slots=True)
class ContactVerification:
    verification_id: str
    customer_id: str
    channel: VerificationChannel
    value: str
    salt: str
    code_hash: str
    expires_at: datetime
    created_at: datetime
    wrong_codes: int = 0
    state: VerificationState = VerificationState.PENDING
    peppered: bool = True

    @classmethod
    def start(
        cls,
        verification_id: str,
        customer_id: str,
        channel: VerificationChannel,
        value: str,
        code: str,
        at: datetime,
        *,
        pepper: str,
    ) -> ContactVerification:
        check_contact(channel, value)
        salt = new_salt()
        return cls(
            verification_id=verification_id,
            customer_id=customer_id,
            channel=channel,
            value=value,
            salt=salt,
            code_hash=code_hash(pepper, salt, code),
            expires_at=at + CODE_LIFETIME,
            created_at=at,
        )

    def usable(self, now: datetime) -> bool:
        return (
            self.state is VerificationState.PENDING
            and self.peppered
            and self.wrong_codes < MAX_WRONG_CODES
            and now < self.expires_at
        )

    def matches(self, code: str, pepper: str) -> bool:
        return hmac.compare_digest(code_hash(pepper, self.salt, code), self.code_hash)

    def confirmed(self) -> ContactVerification:
        return replace(self, state=VerificationState.CONFIRMED)

    def with_wrong_code(self) -> ContactVerification:
        return replace(self, wrong_codes=self.wrong_codes + 1)

    def as_dict(self) -> dict[str, Any]:
        """What the customer sees: never the code, its hash or its salt."""
        return {
            "verification_id": self.verification_id,
            "expires_at": self.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }


_WORDING = {
    "zh-CN": ("验证码", "您的验证码是 {code}，{minutes} 分钟内有效。如非本人操作，请忽略。"),
    "en": (
        "Your verification code",
        "Your verification code is {code}. It is valid for {minutes} minutes. If you did not "
        "ask for it, ignore this message.",
    ),
}


def render_code(channel: VerificationChannel, locale: str, code: str) -> RenderedMessage:
    subject, body = _WORDING.get(locale, _WORDING["en"])
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    return RenderedMessage(
        channel=channel.channel, subject=subject, body=body.format(code=code, minutes=minutes)
    )
