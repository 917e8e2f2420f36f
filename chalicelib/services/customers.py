"""A customer's own account: profile, notification preferences, push devices, inbox.

The customer is always the caller (the token's subject); nothing here reads or changes
another customer's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import notifications as channels
from chalicelib.domain.errors import Conflict, InvalidInput
from chalicelib.domain.notifications import (
    ContactDetails,
    CustomerProfile,
    Device,
    InboxEntry,
    NotificationPreferences,
    PushPlatform,
    device_id_for,
)
from chalicelib.observability import logger
from chalicelib.store import customers as store
from chalicelib.store.pagination import Page

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


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
    store.save_profile(profile)
    return profile


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
