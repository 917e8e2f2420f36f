"""A customer's own account: profile, notification preferences, push devices, inbox.

The customer is always the caller (the token's subject); nothing here reads or changes
another customer's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import notifications as channels
from chalicelib.domain.contact_verification import (
    CONTACT_SEND_RATE,
    MAX_WRONG_CODES,
    SEND_RATE,
    ContactVerification,
    InvalidCode,
    VerificationChannel,
    VerificationExpired,
    contact_key,
    new_code,
    render_code,
)
from chalicelib.domain.errors import (
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.notifications import (
    Channel,
    ContactDetails,
    CustomerProfile,
    Device,
    InboxEntry,
    NotificationPreferences,
    PushPlatform,
    device_id_for,
)
from chalicelib.observability import logger
from chalicelib.settings import get_settings
from chalicelib.store import customers as store
from chalicelib.store import limits as limits_store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork


class PushUnavailable(Conflict):
    code = "push_unavailable"

    def __init__(self, platform: PushPlatform) -> None:
        super().__init__(
            f"Push notifications are not available for {platform.value} here.",
            {"platform": platform.value},
        )


def _now() -> datetime:
    return datetime.now(UTC)


def get_profile(customer_id: str, claims: Mapping[str, Any]) -> CustomerProfile:
    """The customer's profile; the first time, created from their identity ``claims``."""
    existing = store.get_profile(customer_id)
    if existing is not None:
        return existing
    at = _now()
    profile = CustomerProfile(
        customer_id=customer_id,
        contact=ContactDetails.from_claims(claims),
        created_at=at,
        updated_at=at,
    )
    if store.add_profile(profile):
        return profile
    # Another request created it a moment ago: theirs stands.
    created = store.get_profile(customer_id)
    return created if created is not None else profile


def update_profile(customer_id: str, contact: ContactDetails) -> CustomerProfile:
    at = _now()
    existing = store.get_profile(customer_id)
    if existing is None:
        profile = CustomerProfile(customer_id, contact, created_at=at, updated_at=at)
    else:
        profile = existing.with_contact(contact, at)
    store.save_profile(profile, existing)
    return profile


def start_verification(
    customer_id: str,
    claims: Mapping[str, Any],
    channel: VerificationChannel,
    value: str,
    *,
    senders: Mapping[Channel, channels.Sender] | None = None,
    now: datetime | None = None,
) -> ContactVerification:
    """Send a one-time code to ``value``: the only message an unverified contact ever gets.

    The verification and the uses of the hourly allowances (``SEND_RATE`` for the customer,
    ``CONTACT_SEND_RATE`` for the contact whoever asks; 429 when either is spent) are
    written together before the code is sent, so every code sent is counted.
    """
    pepper = _code_pepper()
    locale = get_profile(customer_id, claims).locale
    for _attempt in range(3):
        at = now or _now()
        code = new_code()
        verification = ContactVerification.start(
            sortable_id("cvr_", at), customer_id, channel, value, code, at, pepper=pepper
        )
        contact = limits_store.contact_subject(contact_key(channel, value))
        uses = limits_store.read_uses(customer_id, SEND_RATE.action)
        contact_uses = limits_store.read_uses(contact, CONTACT_SEND_RATE.action)
        uow = UnitOfWork()
        store.add_verification(uow, verification)
        limits_store.add_use(uow, customer_id, SEND_RATE, uses, at=at)  # 429 when spent
        limits_store.add_use(uow, contact, CONTACT_SEND_RATE, contact_uses, at=at)
        try:
            uow.commit()
        except TransactionCancelled:
            continue  # another request took the slot: read the counter again
        sender = (senders if senders is not None else channels.senders())[channel.channel]
        try:
            sender.send(value, render_code(channel, locale, code))
        except channels.RecipientUnreachable:
            raise InvalidInput(
                "This contact cannot receive messages.",
                [{"field": "value", "message": "refused by the provider"}],
            ) from None
        except Exception:  # noqa: BLE001 - any provider failure: ask again later
            logger.exception("verification code not sent", extra={"channel": channel.value})
            raise ServiceUnavailable("The code could not be sent; try again later.") from None
        logger.info("verification code sent", extra={"channel": channel.value})
        return verification
    raise Busy("Codes are being requested too quickly at once; try again.")


def _code_pepper() -> str:
    pepper = get_settings().contact_code_pepper
    if not pepper:
        logger.error("CONTACT_CODE_PEPPER is not set: contact verification is off")
        raise ServiceUnavailable("Contact verification is not configured.")
    return pepper


def confirm_verification(
    customer_id: str,
    claims: Mapping[str, Any],
    verification_id: str,
    code: str,
    *,
    now: datetime | None = None,
) -> CustomerProfile:
    """Check ``code``; when right, the contact becomes the profile's, verified.

    Another customer's verification is not found. Every write is conditional on the
    verification being as read (pending, that many wrong codes), so of two racing confirms
    one confirms and the other finds it spent, and wrong codes are counted exactly.
    """
    for _attempt in range(5):
        at = now or _now()
        verification = store.get_verification(customer_id, verification_id)
        if verification is None:
            raise NotFound(f"Verification {verification_id} not found.")
        if not verification.usable(at):
            raise VerificationExpired(verification_id)
        if not verification.matches(code, _code_pepper()):
            if store.add_wrong_code(verification):
                raise InvalidCode(MAX_WRONG_CODES - verification.wrong_codes - 1)
            continue
        previous = store.get_profile(customer_id)
        base = previous or CustomerProfile(
            customer_id, ContactDetails.from_claims(claims), created_at=at, updated_at=at
        )
        profile = base.with_verified(verification.channel.channel, verification.value, at)
        if store.confirm_verification(verification, profile, previous):
            return profile
    raise Busy("The verification is changing too quickly; try again.")


def get_preferences(customer_id: str) -> NotificationPreferences:
    return store.get_preferences(customer_id) or NotificationPreferences()


def set_preferences(
    customer_id: str, channels_wanted: Mapping[str, bool], events_wanted: Mapping[str, bool]
) -> NotificationPreferences:
    preferences = NotificationPreferences.of(channels_wanted, events_wanted)
    store.save_preferences(customer_id, preferences, at=_now())
    return preferences


def register_device(customer_id: str, platform: PushPlatform, token: str) -> Device:
    """Register an app install for push; registering the same token again changes nothing.

    A token registered by another customer before (the phone changed hands, or someone else
    signed in on it) moves to this customer: pushes follow whoever registered it last.
    """
    device_id = device_id_for(platform, token)
    existing = store.get_device(customer_id, device_id)
    if existing is not None:
        return existing
    try:
        endpoint_arn = channels.push_registry().endpoint_for(platform, token)
    except channels.ChannelNotConfigured:
        raise PushUnavailable(platform) from None
    except channels.InvalidPushToken:
        raise InvalidInput(
            "The push service refused this device token.",
            [{"field": "token", "message": "refused by the push service"}],
        ) from None
    device = Device(
        device_id=device_id,
        customer_id=customer_id,
        platform=platform,
        endpoint_arn=endpoint_arn,
        created_at=_now(),
    )
    for _attempt in range(3):
        previous_owner = store.device_owner(device_id)
        if store.save_device(device, previous_owner=previous_owner):
            if previous_owner not in (None, customer_id):
                logger.info("push device moved to another customer", extra={"device_id": device_id})
            return device
    raise Conflict("The device is being registered by another request; try again.")


def list_inbox(customer_id: str, *, limit: int, cursor: str | None) -> Page[InboxEntry]:
    return store.inbox_page(customer_id, limit=limit, cursor=cursor)
