"""The caller's own account: profile, notification preferences, push devices, inbox.

Every route needs a bearer token and acts on its subject only; there is no way to name
another customer here, so no one can read or change someone else's account.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from chalice import Blueprint, Response
from pydantic import BaseModel, Field, StringConstraints, create_model

from chalicelib.api import models
from chalicelib.api.auth import OPS, SUPPORT, authorizer, principal, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain import paging
from chalicelib.domain.contact_verification import (
    CODE_LIFETIME,
    CONTACT_SEND_RATE,
    MAX_WRONG_CODES,
    SEND_RATE,
    VerificationChannel,
)
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.notifications import (
    EMAIL_PATTERN,
    MAX_EMAIL_CHARS,
    MAX_NAME_CHARS,
    NOTIFIABLE_EVENTS,
    PHONE_PATTERN,
    TRANSACTIONAL_EVENTS,
    ContactDetails,
    PushPlatform,
)
from chalicelib.services import customers

blueprint = Blueprint(__name__)

JSON = {"Content-Type": "application/json"}
Locale = Literal["zh-CN", "en"]

TRANSACTIONAL_NOTE = (
    "Transactional events are always sent, at least by email, whatever the preferences: "
    + ", ".join(name for name in NOTIFIABLE_EVENTS if name in TRANSACTIONAL_EVENTS)
    + " (refunds, cancellations and expiries, delivery problems). They cannot be turned off; "
    "for them, email goes out even with the email channel off, SMS and push follow the "
    "channel switches."
)

# --- request and response models ---------------------------------------------------------------

Email = Annotated[str, StringConstraints(max_length=MAX_EMAIL_CHARS, pattern=EMAIL_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"\S")
]


class ProfileIn(models.RequestModel):
    """The body of PUT /me: the whole profile; null clears email, phone or name."""

    email: Email | None = Field(examples=["li.lei@example.com"])
    phone: Phone | None = Field(
        description="E.164, e.g. +8613800000000", examples=["+8613800000000"]
    )
    locale: Locale = Field(description="The language messages are written in.")
    name: PersonName | None = Field(examples=["李雷"])

    def to_domain(self) -> ContactDetails:
        return ContactDetails(
            email=self.email,
            phone=self.phone,
            locale=self.locale,
            name=self.name.strip() if self.name else None,
        )


class ProfileBody(models.ResponseModel):
    customer_id: str
    email: str | None
    email_verified: bool = Field(
        description=(
            "Confirmed by the identity provider or with a code "
            "(POST /me/contact-verifications); an address typed in is not, and gets nothing."
        )
    )
    phone: str | None
    phone_verified: bool = Field(
        description=(
            "Confirmed by the identity provider or with a code "
            "(POST /me/contact-verifications); a number typed in is not, and gets nothing."
        )
    )
    locale: Locale
    name: str | None
    email_status: Literal["verified", "unverified", "undeliverable"] | None = Field(
        description=(
            "undeliverable: the email bounced permanently or its owner reported our email as "
            "spam; nothing is emailed until an address is confirmed with a code "
            "(POST /me/contact-verifications), the same one or a new one. null without an email."
        )
    )
    email_undeliverable_reason: Literal["bounced", "complained"] | None = Field(
        description="Why the email is undeliverable; null unless it is."
    )


class VerificationIn(models.RequestModel):
    """The body of POST /me/contact-verifications: the contact to prove."""

    channel: Literal["email", "sms"] = Field(description="email, or sms for a phone number.")
    value: str = Field(
        min_length=3,
        max_length=MAX_EMAIL_CHARS,
        description="The email address, or the phone number in E.164.",
        examples=["li.lei@example.com"],
    )


class VerificationBody(models.ResponseModel):
    verification_id: str
    expires_at: str = Field(description="ISO 8601 UTC: the code is valid until then.")


class ConfirmIn(models.RequestModel):
    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6-digit code sent.")


def _switches(model_name: str, base: type[BaseModel]) -> type[BaseModel]:
    """One boolean per notifiable event, named as the event is (``order.placed``)."""
    fields: dict[str, Any] = {}
    for event in NOTIFIABLE_EVENTS:
        if event in TRANSACTIONAL_EVENTS:
            annotation: Any = Literal[True]
            description = "Transactional: always sent, at least by email; cannot be false."
        else:
            annotation = bool
            description = f"Whether to hear about {event}; on unless set to false."
        fields[event.replace(".", "_")] = (
            annotation,
            Field(default=True, alias=event, description=description),
        )
    return create_model(model_name, __base__=base, **fields)


class ChannelsIn(models.RequestModel):
    email: bool = Field(default=True, description="On unless set to false.")
    sms: bool = Field(default=True, description="On unless set to false.")
    push: bool = Field(default=True, description="On unless set to false.")


EventsIn = _switches("EventsIn", models.RequestModel)
EventsBody = _switches("EventsBody", models.ResponseModel)


class PreferencesIn(models.RequestModel):
    """The body of PUT /me/notification-preferences; a switch left out is on."""

    channels: ChannelsIn
    events: EventsIn = Field(default_factory=EventsIn)  # type: ignore[valid-type]


class ChannelsBody(models.ResponseModel):
    email: bool
    sms: bool
    push: bool


class PreferencesBody(models.ResponseModel):
    channels: ChannelsBody
    events: EventsBody = Field(description=TRANSACTIONAL_NOTE)  # type: ignore[valid-type]


class DeviceIn(models.RequestModel):
    platform: Literal["apns", "fcm"] = Field(description="apns (iOS) or fcm (Android).")
    token: str = Field(
        min_length=8,
        max_length=4096,
        pattern=r"^[A-Za-z0-9_:.\-]+$",
        description="The device token the platform gave the app.",
    )


class DeviceBody(models.ResponseModel):
    device_id: str
    platform: Literal["apns", "fcm"]


class NotificationBody(models.ResponseModel):
    notification_id: str
    event_id: str
    event_type: str
    channel: Literal["email", "sms", "push"]
    subject: str
    body: str
    sent_at: str = Field(description="ISO 8601 UTC.")
    order_id: str | None


class NotificationPage(models.ResponseModel):
    items: list[NotificationBody]
    next_cursor: str | None = Field(
        description="Pass as cursor to get the next page; null on the last page."
    )


class InboxQuery(models.QueryModel):
    limit: int = Field(default=paging.DEFAULT_PAGE_SIZE, ge=1, le=paging.MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2048)


# --- views -------------------------------------------------------------------------------------


@blueprint.route("/me", methods=["GET"], authorizer=authorizer)
@operation(
    "Your profile",
    description=(
        "The first time, it is made from your sign-in (email, phone_number, name and locale "
        "claims); afterwards it is what you last saved with PUT /me. Notifications go to this "
        "email and phone, in this locale."
    ),
    tags=("me",),
    responses={200: ProfileBody},
)
def get_me() -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    profile = customers.get_profile(caller.user_id, caller.contact_claims)
    return profile.as_dict()


@blueprint.route("/me", methods=["PUT"], authorizer=authorizer)
@operation(
    "Change your profile",
    description=(
        "Replaces email, phone (E.164), locale (zh-CN or en) and name. A changed email or "
        "phone is unverified, and nothing is sent to it until it is confirmed with a code "
        "(POST /me/contact-verifications)."
    ),
    tags=("me",),
    request=ProfileIn,
    responses={200: ProfileBody},
)
def put_me() -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    contact = parse_body(request, ProfileIn).to_domain()
    return customers.update_profile(caller.user_id, contact).as_dict()


@blueprint.route("/me/contact-verifications", methods=["POST"], authorizer=authorizer)
@operation(
    "Prove an email address or phone number is yours",
    description=(
        f"Sends a 6-digit code to the contact, valid for {CODE_LIFETIME.seconds // 60} "
        "minutes; confirm it to make the contact your profile's, verified. This code is the "
        f"only message an unverified contact ever gets. At most {SEND_RATE.limit} per hour, "
        f"and at most {CONTACT_SEND_RATE.limit} per hour to one contact whoever asks: "
        "429 rate_limited with Retry-After (seconds)."
    ),
    tags=("me",),
    request=VerificationIn,
    responses={202: VerificationBody},
    errors=(429, 503),
)
def start_contact_verification() -> Response:
    request = blueprint.current_request
    caller = principal(request)
    body = parse_body(request, VerificationIn)
    verification = customers.start_verification(
        caller.user_id, caller.contact_claims, VerificationChannel(body.channel), body.value
    )
    return Response(
        body=verification.as_dict(),
        status_code=202,
        headers=dict(JSON),
    )


@blueprint.route(
    "/me/contact-verifications/{verification_id}/confirm",
    methods=["POST"],
    authorizer=authorizer,
)
@operation(
    "Confirm a contact with the code sent to it",
    description=(
        "Answers with your profile, the contact now its email or phone, verified. A wrong "
        f"code is 400 invalid_code; after {MAX_WRONG_CODES} wrong codes, once expired or "
        "once confirmed, 410 verification_expired. Another customer's verification is 404."
    ),
    tags=("me",),
    request=ConfirmIn,
    responses={200: ProfileBody},
    errors=(404, 410, 503),
    path_params={"verification_id": {"type": "string", "pattern": models.ID_PATTERN}},
)
def confirm_contact_verification(verification_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    if not re.fullmatch(models.ID_PATTERN, verification_id):
        raise NotFound(f"Verification {verification_id} not found.")
    body = parse_body(request, ConfirmIn)
    profile = customers.confirm_verification(
        caller.user_id, caller.contact_claims, verification_id, body.code
    )
    return profile.as_dict()


@blueprint.route("/me/notification-preferences", methods=["GET"], authorizer=authorizer)
@operation(
    "Your notification preferences",
    description="Which channels and which events you hear about. " + TRANSACTIONAL_NOTE,
    tags=("me",),
    responses={200: PreferencesBody},
)
def get_notification_preferences() -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    return customers.get_preferences(caller.user_id).as_dict()


@blueprint.route("/me/notification-preferences", methods=["PUT"], authorizer=authorizer)
@operation(
    "Change your notification preferences",
    description=(
        "Replaces the preferences; a channel or event left out is on. " + TRANSACTIONAL_NOTE
    ),
    tags=("me",),
    request=PreferencesIn,
    responses={200: PreferencesBody},
)
def put_notification_preferences() -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    body = parse_body(request, PreferencesIn)
    preferences = customers.set_preferences(
        caller.user_id,
        body.channels.model_dump(),
        body.events.model_dump(by_alias=True),
    )
    return preferences.as_dict()


@blueprint.route("/me/devices", methods=["POST"], authorizer=authorizer)
@operation(
    "Register this device for push notifications",
    description=(
        "Registers the app's device token with the push service (SNS). Registering the same "
        "token again answers with the same device. A token registered by another account "
        "before moves to yours. 409 push_unavailable where push is not set up."
    ),
    tags=("me",),
    request=DeviceIn,
    responses={201: DeviceBody},
)
def register_device() -> Response:
    request = blueprint.current_request
    caller = principal(request)
    body = parse_body(request, DeviceIn)
    device = customers.register_device(caller.user_id, PushPlatform(body.platform), body.token)
    return Response(body=device.as_dict(), status_code=201, headers=dict(JSON))


@blueprint.route("/customers/{customer_id}/notifications", methods=["GET"], authorizer=authorizer)
@operation(
    "Messages sent to a customer (support, ops)",
    description="The same items, newest first, as that customer's GET /me/notifications.",
    tags=("me",),
    query=InboxQuery,
    responses={200: NotificationPage},
    path_params={"customer_id": {"type": "string", "pattern": models.ID_PATTERN}},
)
def list_customer_notifications(customer_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, SUPPORT, OPS)
    if not re.fullmatch(models.ID_PATTERN, customer_id):
        raise InvalidInput(
            "customer_id is not a valid id.",
            [{"field": "customer_id", "message": f"must match {models.ID_PATTERN}"}],
        )
    params = InboxQuery.model_validate(request.query_params or {})
    page = customers.list_inbox(customer_id, limit=params.limit, cursor=params.cursor)
    return {"items": [entry.as_dict() for entry in page.items], "next_cursor": page.next_cursor}


@blueprint.route("/me/notifications", methods=["GET"], authorizer=authorizer)
@operation(
    "Messages sent to you",
    description=(
        "Every email, SMS and push notification sent to you, newest first, as it was sent."
    ),
    tags=("me",),
    query=InboxQuery,
    responses={200: NotificationPage},
)
def list_notifications() -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    params = InboxQuery.model_validate(request.query_params or {})
    page = customers.list_inbox(caller.user_id, limit=params.limit, cursor=params.cursor)
    return {"items": [entry.as_dict() for entry in page.items], "next_cursor": page.next_cursor}
