"""Customer profiles, notification preferences, push devices, the inbox and delivery claims.

Item shapes (the only place that knows them):

    profile      pk=CUSTOMER#<customer_id>   sk=PROFILE
                 customer_id, email, phone, locale, name, created_at, updated_at,
                 email_undeliverable {address, reason, since} (from SES's feedback)
    email owner  pk=EMAIL#<normalized email>  sk=CUSTOMER#<customer_id>
                 customer_id: one per profile holding that email, written and removed in
                 the same transaction as the profile, so SES's feedback about an address
                 finds its customers with one Query
    preferences  pk=CUSTOMER#<customer_id>   sk=NOTIFICATION_PREFERENCES
                 channels {email, sms, push: bool}, events {<event type>: bool}, updated_at
    device       pk=CUSTOMER#<customer_id>   sk=DEVICE#<device_id>
                 device_id, platform, endpoint_arn, created_at
    device owner pk=DEVICE#<device_id>       sk=OWNER
                 customer_id: an app install belongs to the last customer who registered it
    contact verification
                 pk=CUSTOMER#<customer_id>   sk=VERIFICATION#<verification_id>
                 verification_id, channel, value, salt, code_hash (HMAC-SHA-256 keyed
                 with the server's pepper, never the code), hash_scheme (absent before
                 the pepper), wrong_codes, state (pending | confirmed),
                 expires_at, created_at, expires_ttl
    inbox entry  pk=INBOX#<customer_id>      sk=<sent_at>#<notification_id>
                 notification_id, event_id, event_type, channel, subject, body, order_id,
                 sent_at, expires_ttl
    delivery     pk=DELIVERY#<event_id>      sk=<channel>
                 state (sending | sent | retry | unknown), claim_id, lease_until (epoch
                 seconds), sent_at, provider_ids, done (digests of the addresses that
                 already have it), expires_ttl

A delivery item is the claim that makes "at most once per (event, channel)" hold: the
attempt is recorded (``sending``) before anything is sent, and marked ``sent`` in the same
transaction that writes the inbox entry. A send that failed gives the claim back (``retry``,
keeping the addresses that did receive it, so a retry sends only to the others). A claim
still ``sending`` after its lease means its sender died mid-send: whether the message went
out is unknown, so it is marked ``unknown`` and never sent again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.contact_verification import (
    ContactVerification,
    VerificationChannel,
    VerificationState,
)
from chalicelib.domain.notifications import (
    Channel,
    ContactDetails,
    CustomerProfile,
    Device,
    InboxEntry,
    NotificationPreferences,
    PushPlatform,
    UndeliverableEmail,
    UndeliverableReason,
    normalize_address,
)
from chalicelib.store import tables
from chalicelib.store.orders import timestamp
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

CUSTOMER_PREFIX = "CUSTOMER#"
PROFILE_SK = "PROFILE"
EMAIL_PREFIX = "EMAIL#"
PREFERENCES_SK = "NOTIFICATION_PREFERENCES"
DEVICE_PREFIX = "DEVICE#"
DEVICE_OWNER_SK = "OWNER"
VERIFICATION_PREFIX = "VERIFICATION#"
HASH_SCHEME_PEPPERED = "hmac-sha256-pepper"
VERIFICATION_RETENTION = timedelta(days=1)
INBOX_PREFIX = "INBOX#"
DELIVERY_PREFIX = "DELIVERY#"
SENDING, SENT, RETRY, UNKNOWN = "sending", "sent", "retry", "unknown"

INBOX_RETENTION = timedelta(days=365)
# Longer than a message can live in the queue and its dead-letter queue (4 + 14 days), so a
# message redriven late still finds what was already sent.
DELIVERY_RETENTION = timedelta(days=30)

_INBOX_POSITION = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#ntf_[0-9a-f]{32}")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _key(pk: str, sk: str) -> tables.RawItem:
    return {tables.PK: {"S": pk}, tables.SK: {"S": sk}}


def profile_key(customer_id: str) -> tables.RawItem:
    return _key(CUSTOMER_PREFIX + customer_id, PROFILE_SK)


def email_owner_key(email: str, customer_id: str) -> tables.RawItem:
    return _key(EMAIL_PREFIX + normalize_address(email), CUSTOMER_PREFIX + customer_id)


def preferences_key(customer_id: str) -> tables.RawItem:
    return _key(CUSTOMER_PREFIX + customer_id, PREFERENCES_SK)


def device_key(customer_id: str, device_id: str) -> tables.RawItem:
    return _key(CUSTOMER_PREFIX + customer_id, DEVICE_PREFIX + device_id)


def device_owner_key(device_id: str) -> tables.RawItem:
    return _key(DEVICE_PREFIX + device_id, DEVICE_OWNER_SK)


def delivery_key(event_id: str, channel: Channel) -> tables.RawItem:
    return _key(DELIVERY_PREFIX + event_id, Channel(channel).value)


def _is_condition_failure(exc: Exception) -> bool:
    return tables.error_code(exc) == "ConditionalCheckFailedException"


# --- profiles and preferences ----------------------------------------------------------------


def _profile_item(profile: CustomerProfile) -> tables.RawItem:
    mark = profile.undeliverable_email
    return tables.to_item(
        {
            **{name: value["S"] for name, value in profile_key(profile.customer_id).items()},
            "entity": "customer_profile",
            "customer_id": profile.customer_id,
            "email": profile.email,
            "phone": profile.phone,
            "email_verified": profile.email_verified,
            "phone_verified": profile.phone_verified,
            "locale": profile.locale,
            "name": profile.name,
            "email_undeliverable": (
                {
                    "address": mark.address,
                    "reason": mark.reason.value,
                    "since": timestamp(mark.since),
                }
                if mark is not None
                else None
            ),
            "created_at": timestamp(profile.created_at),
            "updated_at": timestamp(profile.updated_at),
        }
    )


def _profile_from_item(raw: Mapping[str, Any]) -> CustomerProfile:
    item = tables.from_item(raw)
    mark = item.get("email_undeliverable")
    return CustomerProfile(
        customer_id=item["customer_id"],
        contact=ContactDetails(
            email=item.get("email"),
            phone=item.get("phone"),
            locale=item["locale"],
            name=item.get("name"),
            email_verified=bool(item.get("email_verified", False)),
            phone_verified=bool(item.get("phone_verified", False)),
        ),
        created_at=_parse_time(item["created_at"]),
        updated_at=_parse_time(item["updated_at"]),
        undeliverable_email=(
            UndeliverableEmail(
                address=mark["address"],
                reason=UndeliverableReason(mark["reason"]),
                since=_parse_time(mark["since"]),
            )
            if mark
            else None
        ),
    )


def _add_email_owner(uow: UnitOfWork, profile: CustomerProfile, previous_email: str | None) -> None:
    """Keep the email owner items in step with the profile's email, in ``uow``."""
    new = normalize_address(profile.email) if profile.email else None
    old = normalize_address(previous_email) if previous_email else None
    if old is not None and old != new:
        uow.delete(
            email_owner_key(old, profile.customer_id), tag=("email_owner", profile.customer_id)
        )
    if new is not None:
        owner = {
            name: value["S"] for name, value in email_owner_key(new, profile.customer_id).items()
        }
        uow.put(
            tables.to_item({**owner, "entity": "email_owner", "customer_id": profile.customer_id}),
            tag=("email_owner", profile.customer_id),
        )


def _preferences_item(
    customer_id: str, preferences: NotificationPreferences, at: datetime
) -> tables.RawItem:
    stated = preferences.as_dict()
    return tables.to_item(
        {
            **{name: value["S"] for name, value in preferences_key(customer_id).items()},
            "entity": "notification_preferences",
            "customer_id": customer_id,
            "channels": stated["channels"],
            "events": stated["events"],
            "updated_at": timestamp(at),
        }
    )


def _preferences_from_item(raw: Mapping[str, Any]) -> NotificationPreferences:
    item = tables.from_item(raw)
    return NotificationPreferences(
        channels={c: bool(item.get("channels", {}).get(c.value, True)) for c in Channel},
        events={name: bool(value) for name, value in item.get("events", {}).items()},
    )


def get_profile(customer_id: str) -> CustomerProfile | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=profile_key(customer_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return _profile_from_item(raw) if raw else None


def add_profile(profile: CustomerProfile) -> bool:
    """Store a first profile; False (and nothing written) if the customer already has one."""
    uow = UnitOfWork()
    uow.put(
        _profile_item(profile),
        tag=("profile", profile.customer_id),
        condition="attribute_not_exists(pk)",
    )
    _add_email_owner(uow, profile, None)
    try:
        uow.commit()
    except TransactionCancelled as exc:
        if exc.condition_failed:
            return False
        raise
    return True


def save_profile(profile: CustomerProfile, previous: CustomerProfile | None = None) -> None:
    """Store ``profile`` over ``previous`` (as read; None if there was none)."""
    uow = UnitOfWork()
    uow.put(_profile_item(profile), tag=("profile", profile.customer_id))
    _add_email_owner(uow, profile, previous.email if previous else None)
    uow.commit()


def customers_with_email(email: str) -> list[str]:
    """The customers whose profile holds ``email`` (in any case), from its owner items."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": EMAIL_PREFIX + normalize_address(email)}},
    }
    found: list[str] = []
    while True:
        response = tables.client().query(**query)
        found.extend(str(tables.from_item(raw)["customer_id"]) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def replace_profile(profile: CustomerProfile, previous: CustomerProfile) -> bool:
    """Store ``profile`` if the stored one is still ``previous`` (same ``updated_at``);
    False, and nothing written, if it changed meanwhile. The email must be unchanged."""
    try:
        tables.client().put_item(
            TableName=tables.table_name(),
            Item=_profile_item(profile),
            ConditionExpression="updated_at = :updated",
            ExpressionAttributeValues={":updated": {"S": timestamp(previous.updated_at)}},
        )
    except Exception as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def get_preferences(customer_id: str) -> NotificationPreferences | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=preferences_key(customer_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return _preferences_from_item(raw) if raw else None


def save_preferences(
    customer_id: str, preferences: NotificationPreferences, *, at: datetime
) -> None:
    tables.client().put_item(
        TableName=tables.table_name(), Item=_preferences_item(customer_id, preferences, at)
    )


# --- contact verifications -------------------------------------------------------------------


def verification_key(customer_id: str, verification_id: str) -> tables.RawItem:
    return _key(CUSTOMER_PREFIX + customer_id, VERIFICATION_PREFIX + verification_id)


def _verification_item(verification: ContactVerification) -> tables.RawItem:
    key = verification_key(verification.customer_id, verification.verification_id)
    return tables.to_item(
        {
            **{name: value["S"] for name, value in key.items()},
            "entity": "contact_verification",
            "customer_id": verification.customer_id,
            "verification_id": verification.verification_id,
            "channel": verification.channel.value,
            "value": verification.value,
            "salt": verification.salt,
            "code_hash": verification.code_hash,
            "hash_scheme": HASH_SCHEME_PEPPERED,
            "wrong_codes": verification.wrong_codes,
            "state": verification.state.value,
            "expires_at": timestamp(verification.expires_at),
            "created_at": timestamp(verification.created_at),
            tables.TTL_ATTRIBUTE: int(
                (verification.expires_at + VERIFICATION_RETENTION).timestamp()
            ),
        }
    )


def _verification_from_item(raw: Mapping[str, Any]) -> ContactVerification:
    item = tables.from_item(raw)
    return ContactVerification(
        verification_id=item["verification_id"],
        customer_id=item["customer_id"],
        channel=VerificationChannel(item["channel"]),
        value=item["value"],
        salt=item["salt"],
        code_hash=item["code_hash"],
        # Written before the pepper: the hash was of the salt alone, so it cannot be checked.
        peppered=item.get("hash_scheme") == HASH_SCHEME_PEPPERED,
        wrong_codes=int(item.get("wrong_codes", 0)),
        state=VerificationState(item["state"]),
        expires_at=_parse_time(item["expires_at"]),
        created_at=_parse_time(item["created_at"]),
    )


def add_verification(uow: UnitOfWork, verification: ContactVerification) -> None:
    uow.put(
        _verification_item(verification),
        tag=("verification", verification.verification_id),
        condition="attribute_not_exists(pk)",
    )


def get_verification(customer_id: str, verification_id: str) -> ContactVerification | None:
    """One of ``customer_id``'s verifications; another customer's is not found."""
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=verification_key(customer_id, verification_id),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    return _verification_from_item(raw) if raw else None


def _unchanged_verification(read: ContactVerification) -> tuple[str, dict[str, Any]]:
    return "#state = :pending AND wrong_codes = :read", {
        ":pending": {"S": VerificationState.PENDING.value},
        ":read": {"N": str(read.wrong_codes)},
    }


def add_wrong_code(read: ContactVerification) -> bool:
    """Count one more wrong code; False if the verification changed since ``read``."""
    condition, values = _unchanged_verification(read)
    try:
        tables.client().update_item(
            TableName=tables.table_name(),
            Key=verification_key(read.customer_id, read.verification_id),
            UpdateExpression="SET wrong_codes = :next",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={**values, ":next": {"N": str(read.wrong_codes + 1)}},
        )
    except Exception as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def confirm_verification(
    read: ContactVerification, profile: CustomerProfile, previous: CustomerProfile | None
) -> bool:
    """Mark the verification confirmed and save ``profile`` (its contact now verified),
    together; False if either changed since read (a racing confirm or profile change)."""
    condition, values = _unchanged_verification(read)
    uow = UnitOfWork()
    uow.update(
        verification_key(read.customer_id, read.verification_id),
        "SET #state = :confirmed",
        tag=("verification", read.verification_id),
        condition=condition,
        names={"#state": "state"},
        values={**values, ":confirmed": {"S": VerificationState.CONFIRMED.value}},
    )
    if previous is None:
        uow.put(
            _profile_item(profile),
            tag=("profile", profile.customer_id),
            condition="attribute_not_exists(pk)",
        )
    else:
        uow.put(
            _profile_item(profile),
            tag=("profile", profile.customer_id),
            condition="updated_at = :updated",
            values={":updated": {"S": timestamp(previous.updated_at)}},
        )
    _add_email_owner(uow, profile, previous.email if previous else None)
    try:
        uow.commit()
    except TransactionCancelled as exc:
        if exc.condition_failed:
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class Recipient:
    """What deciding where to send needs, read in one request."""

    profile: CustomerProfile | None
    preferences: NotificationPreferences | None


def get_recipient(customer_id: str) -> Recipient:
    profile: CustomerProfile | None = None
    preferences: NotificationPreferences | None = None
    keys = [profile_key(customer_id), preferences_key(customer_id)]
    for raw in tables.batch_get(keys, consistent=True):
        if raw[tables.SK]["S"] == PROFILE_SK:
            profile = _profile_from_item(raw)
        else:
            preferences = _preferences_from_item(raw)
    return Recipient(profile=profile, preferences=preferences)


# --- devices ---------------------------------------------------------------------------------


def _device_item(device: Device) -> tables.RawItem:
    return tables.to_item(
        {
            **{
                name: value["S"]
                for name, value in device_key(device.customer_id, device.device_id).items()
            },
            "entity": "push_device",
            "customer_id": device.customer_id,
            "device_id": device.device_id,
            "platform": device.platform.value,
            "endpoint_arn": device.endpoint_arn,
            "created_at": timestamp(device.created_at),
        }
    )


def _device_from_item(raw: Mapping[str, Any]) -> Device:
    item = tables.from_item(raw)
    return Device(
        device_id=item["device_id"],
        customer_id=item["customer_id"],
        platform=PushPlatform(item["platform"]),
        endpoint_arn=item["endpoint_arn"],
        created_at=_parse_time(item["created_at"]),
    )


def get_device(customer_id: str, device_id: str) -> Device | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=device_key(customer_id, device_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return _device_from_item(raw) if raw else None


def device_owner(device_id: str) -> str | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=device_owner_key(device_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return str(tables.from_item(raw)["customer_id"]) if raw else None


def save_device(device: Device, *, previous_owner: str | None) -> bool:
    """Give the install to ``device.customer_id``, taking it from ``previous_owner``.

    One transaction: the owner item moves only if it still names ``previous_owner`` (so two
    customers registering one phone at once cannot both keep it), the previous owner's
    device item goes, the new one is written. False if the owner changed meanwhile.
    """
    uow = UnitOfWork()
    owner_item = tables.to_item(
        {
            **{name: value["S"] for name, value in device_owner_key(device.device_id).items()},
            "entity": "push_device_owner",
            "customer_id": device.customer_id,
        }
    )
    if previous_owner is None:
        uow.put(
            owner_item, tag=("device_owner", device.device_id), condition="attribute_not_exists(pk)"
        )
    else:
        uow.put(
            owner_item,
            tag=("device_owner", device.device_id),
            condition="customer_id = :previous",
            values={":previous": {"S": previous_owner}},
        )
        if previous_owner != device.customer_id:
            uow.delete(
                device_key(previous_owner, device.device_id),
                tag=("device", previous_owner, device.device_id),
            )
    uow.put(_device_item(device), tag=("device", device.customer_id, device.device_id))
    try:
        uow.commit()
    except TransactionCancelled as exc:
        if exc.condition_failed:
            return False
        raise
    return True


def devices_of(customer_id: str) -> list[Device]:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :device)",
        "ExpressionAttributeValues": {
            ":pk": {"S": CUSTOMER_PREFIX + customer_id},
            ":device": {"S": DEVICE_PREFIX},
        },
        "ConsistentRead": True,
    }
    devices: list[Device] = []
    while True:
        response = tables.client().query(**query)
        devices.extend(_device_from_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return devices
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- the inbox -------------------------------------------------------------------------------


def _inbox_sort_key(entry: InboxEntry) -> str:
    return f"{timestamp(entry.sent_at)}#{entry.notification_id}"


def _inbox_item(entry: InboxEntry) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: INBOX_PREFIX + entry.customer_id,
            tables.SK: _inbox_sort_key(entry),
            "entity": "inbox_entry",
            "customer_id": entry.customer_id,
            "notification_id": entry.notification_id,
            "event_id": entry.event_id,
            "event_type": entry.event_type,
            "channel": entry.channel.value,
            "subject": entry.subject,
            "body": entry.body,
            "order_id": entry.order_id,
            "sent_at": timestamp(entry.sent_at),
            tables.TTL_ATTRIBUTE: int((entry.sent_at + INBOX_RETENTION).timestamp()),
        }
    )


def _inbox_from_item(raw: Mapping[str, Any]) -> InboxEntry:
    item = tables.from_item(raw)
    return InboxEntry(
        notification_id=item["notification_id"],
        customer_id=item["customer_id"],
        event_id=item["event_id"],
        event_type=item["event_type"],
        channel=Channel(item["channel"]),
        subject=item["subject"],
        body=item["body"],
        sent_at=_parse_time(item["sent_at"]),
        order_id=item.get("order_id"),
    )


def inbox_page(customer_id: str, *, limit: int, cursor: str | None) -> Page[InboxEntry]:
    """One customer's sent messages, newest first."""
    scope = scope_of("inbox", customer_id)
    before: str | None = None
    if cursor:
        before = decode_cursor(cursor, scope).get("before")
        if not isinstance(before, str) or not _INBOX_POSITION.fullmatch(before):
            raise InvalidCursor()
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": INBOX_PREFIX + customer_id}},
        "ScanIndexForward": False,
    }
    if before is not None:
        query["KeyConditionExpression"] += " AND sk < :before"
        query["ExpressionAttributeValues"][":before"] = {"S": before}
    # One extra entry tells whether another page exists.
    entries = [_inbox_from_item(raw) for raw in tables.query_up_to(query, limit + 1)]
    page, more = entries[:limit], len(entries) > limit
    next_cursor = encode_cursor(scope, {"before": _inbox_sort_key(page[-1])}) if more else None
    return Page(items=page, next_cursor=next_cursor)


# --- delivery claims -------------------------------------------------------------------------


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # ours to send now
    ALREADY_SENT = "already_sent"  # sent before: nothing to do
    IN_PROGRESS = "in_progress"  # someone else is sending it right now
    UNKNOWN = "unknown"  # an attempt died mid-send: it may have gone out; never resent


def address_digest(address: str) -> str:
    """How a delivery remembers an address that has the message (not the address itself)."""
    return hashlib.sha256(address.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    done: frozenset[str] = frozenset()  # digests of addresses an earlier attempt reached

    def reached(self, address: str) -> bool:
        return address_digest(address) in self.done


def claim_delivery(
    event_id: str, channel: Channel, claim_id: str, *, now: datetime, lease: timedelta
) -> ClaimOutcome:
    """Claim the sending of ``event_id`` on ``channel`` for ``lease``."""
    return claim_delivery_attempt(event_id, channel, claim_id, now=now, lease=lease).outcome


def claim_delivery_attempt(
    event_id: str, channel: Channel, claim_id: str, *, now: datetime, lease: timedelta
) -> Claim:
    """Record an attempt to send ``event_id`` on ``channel`` before sending anything.

    Claimed when nothing was tried yet or an earlier attempt failed cleanly (``retry``; the
    claim then says which addresses already have it). A claim found ``sending`` past its
    lease belonged to a sender that died: it is marked ``unknown`` and not claimed.
    """
    try:
        response = tables.client().update_item(
            TableName=tables.table_name(),
            Key=delivery_key(event_id, channel),
            UpdateExpression=(
                "SET entity = :entity, event_id = :event, channel = :channel, #state = :sending,"
                " claim_id = :claim, lease_until = :lease, #ttl = :ttl"
            ),
            ConditionExpression="attribute_not_exists(pk) OR #state = :retry",
            ExpressionAttributeNames={"#state": "state", "#ttl": tables.TTL_ATTRIBUTE},
            ExpressionAttributeValues={
                ":entity": {"S": "notification_delivery"},
                ":event": {"S": event_id},
                ":channel": {"S": Channel(channel).value},
                ":sending": {"S": SENDING},
                ":retry": {"S": RETRY},
                ":claim": {"S": claim_id},
                ":lease": {"N": str(int((now + lease).timestamp()))},
                ":ttl": {"N": str(int((now + DELIVERY_RETENTION).timestamp()))},
            },
            ReturnValues="ALL_NEW",
        )
    except Exception as exc:
        if not _is_condition_failure(exc):
            raise
        return Claim(_claimed_elsewhere(event_id, channel, now))
    done = tables.from_item(response.get("Attributes") or {}).get("done") or []
    return Claim(ClaimOutcome.CLAIMED, frozenset(str(d) for d in done))


def _claimed_elsewhere(event_id: str, channel: Channel, now: datetime) -> ClaimOutcome:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=delivery_key(event_id, channel), ConsistentRead=True
    )
    item = tables.from_item(response.get("Item") or {})
    state = item.get("state")
    if state == SENT:
        return ClaimOutcome.ALREADY_SENT
    if state == SENDING and int(item.get("lease_until") or 0) < int(now.timestamp()):
        try:
            tables.client().update_item(
                TableName=tables.table_name(),
                Key=delivery_key(event_id, channel),
                UpdateExpression="SET #state = :unknown REMOVE lease_until",
                ConditionExpression="claim_id = :claim AND #state = :sending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":unknown": {"S": UNKNOWN},
                    ":claim": {"S": str(item.get("claim_id"))},
                    ":sending": {"S": SENDING},
                },
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise
            return _claimed_elsewhere(event_id, channel, now)  # it moved on: look again
        return ClaimOutcome.UNKNOWN
    if state == UNKNOWN:
        return ClaimOutcome.UNKNOWN
    return ClaimOutcome.IN_PROGRESS


def release_delivery(
    event_id: str, channel: Channel, claim_id: str, *, done: Collection[str] = ()
) -> None:
    """Give a claim back after a failed send, so the next delivery of the event retries it;
    ``done`` are the digests of every address that did receive it, not sent to again."""
    try:
        tables.client().update_item(
            TableName=tables.table_name(),
            Key=delivery_key(event_id, channel),
            UpdateExpression="SET #state = :retry, done = :done REMOVE lease_until",
            ConditionExpression="claim_id = :claim AND #state = :sending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":retry": {"S": RETRY},
                ":done": {"L": [{"S": digest} for digest in sorted(done)]},
                ":claim": {"S": claim_id},
                ":sending": {"S": SENDING},
            },
        )
    except Exception as exc:
        if not _is_condition_failure(exc):
            raise  # the lease will end it


def record_delivery(
    event_id: str,
    channel: Channel,
    claim_id: str,
    entries: Sequence[InboxEntry],
    *,
    provider_ids: Sequence[str],
    at: datetime,
) -> bool:
    """Mark the claim sent and add the inbox entries, together; False if the claim was lost
    (its lease ran out and another delivery took it over)."""
    uow = UnitOfWork()
    uow.update(
        delivery_key(event_id, channel),
        "SET #state = :sent, sent_at = :at, provider_ids = :ids REMOVE lease_until",
        tag=("delivery", event_id, Channel(channel).value),
        condition="claim_id = :claim",
        names={"#state": "state"},
        values={
            ":sent": {"S": SENT},
            ":at": {"S": timestamp(at)},
            ":ids": {"L": [{"S": value} for value in provider_ids]},
            ":claim": {"S": claim_id},
        },
    )
    for entry in entries:
        uow.put(_inbox_item(entry), tag=("inbox", entry.customer_id, entry.notification_id))
    try:
        uow.commit()
    except TransactionCancelled as exc:
        if exc.condition_failed:
            return False
        raise
    return True
