"""The caller's own account over the real app and moto: profile, preferences, devices, inbox.

Refused requests are checked against a snapshot of the whole table: a 4xx changes nothing.
Every route acts on the token's subject only, so one customer never sees another's data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
import jwt
import pytest
from test_orders_api import table_snapshot

from chalicelib.adapters import notifications as channels
from chalicelib.domain.notifications import Channel, InboxEntry, notification_id_for
from chalicelib.settings import get_settings
from chalicelib.store import customers as customer_store

if TYPE_CHECKING:
    from conftest import Api

REGION = "us-east-1"
SENDER = "orders@orderdesk.test"
STOREFRONT = "https://shop.example.com"


@dataclass(frozen=True)
class Messaging:
    """The SES sender and SNS push applications the app is configured with."""

    apns_arn: str
    fcm_arn: str


def configure_messaging(monkeypatch: pytest.MonkeyPatch, *, push: bool = True) -> Messaging:
    """What provisioning does for notifications, in the current moto: a verified sender
    and one SNS platform application per push platform, named in the app's settings."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
    sns = boto3.client("sns", region_name=REGION)
    apns = sns.create_platform_application(
        Name="orderdesk-test-apns", Platform="APNS_SANDBOX", Attributes={}
    )["PlatformApplicationArn"]
    fcm = sns.create_platform_application(Name="orderdesk-test-fcm", Platform="GCM", Attributes={})[
        "PlatformApplicationArn"
    ]
    monkeypatch.setenv("NOTIFICATIONS_FROM_EMAIL", SENDER)
    monkeypatch.setenv("STOREFRONT_URL", STOREFRONT)
    monkeypatch.setenv("PUSH_APNS_APPLICATION_ARN", apns if push else "")
    monkeypatch.setenv("PUSH_FCM_APPLICATION_ARN", fcm if push else "")
    get_settings.cache_clear()
    channels.reset()
    return Messaging(apns_arn=apns, fcm_arn=fcm)


@pytest.fixture
def me(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    configure_messaging(monkeypatch)
    yield api
    channels.reset()


def signed_in(api: Api, user_id: str, **claims: Any) -> dict[str, str]:
    """A customer's bearer token carrying extra identity claims (email, phone_number, ...)."""
    minted = api.identity.mint(user_id, ["customers"])
    payload = jwt.decode(minted, options={"verify_signature": False})
    payload.update(claims)
    return {"Authorization": f"Bearer {api.identity.sign(payload)}"}


LI_LEI = {
    "email": "li.lei@example.com",
    "phone_number": "+8613800000000",
    "name": "李雷",
    "locale": "zh-CN",
}


# --- profile -----------------------------------------------------------------------------------


def test_first_profile_comes_from_the_token_claims_and_then_stays_as_saved(me: Api) -> None:
    response = me.request("GET", "/me", headers=signed_in(me, "cust-li", **LI_LEI))

    assert response.status_code == 200
    assert response.json_body == {
        "customer_id": "cust-li",
        "email": "li.lei@example.com",
        "email_verified": False,
        "phone": "+8613800000000",
        "phone_verified": False,
        "locale": "zh-CN",
        "name": "李雷",
        "email_status": "unverified",
        "email_undeliverable_reason": None,
    }
    # Later tokens do not overwrite what the customer has.
    other_claims = {**LI_LEI, "email": "new@example.com", "locale": "en"}
    again = me.request("GET", "/me", headers=signed_in(me, "cust-li", **other_claims))
    assert again.json_body == response.json_body


def test_claims_that_do_not_fit_are_left_out_of_a_new_profile(me: Api) -> None:
    headers = signed_in(me, "cust-x", email="nope", phone_number="138 0000 0000", locale="en-GB")

    response = me.request("GET", "/me", headers=headers)

    assert response.json_body == {
        "customer_id": "cust-x",
        "email": None,
        "email_verified": False,
        "phone": None,
        "phone_verified": False,
        "locale": "en",
        "name": None,
        "email_status": None,
        "email_undeliverable_reason": None,
    }


def test_put_me_replaces_the_profile(me: Api) -> None:
    headers = signed_in(me, "cust-li", **LI_LEI)
    me.request("GET", "/me", headers=headers)
    body = {"email": "lilei@example.cn", "phone": None, "locale": "en", "name": "Li Lei"}

    response = me.request("PUT", "/me", body, headers)

    expected = {
        "customer_id": "cust-li",
        **body,
        "email_verified": False,
        "phone_verified": False,
        "email_status": "unverified",
        "email_undeliverable_reason": None,
    }
    assert response.status_code == 200
    assert response.json_body == expected
    assert me.request("GET", "/me", headers=headers).json_body == expected
    stored = customer_store.get_profile("cust-li")
    assert stored is not None
    assert (stored.email, stored.phone, stored.locale) == ("lilei@example.cn", None, "en")


def test_a_profile_starts_verified_only_where_the_identity_provider_says_so(me: Api) -> None:
    claims = {**LI_LEI, "email_verified": True, "phone_number_verified": False}
    response = me.request("GET", "/me", headers=signed_in(me, "cust-v", **claims))

    assert response.json_body["email_verified"] is True
    assert response.json_body["phone_verified"] is False


def test_verified_flags_travel_through_the_authorizer_as_cognito_spells_them(me: Api) -> None:
    claims = {**LI_LEI, "email_verified": "true", "phone_number_verified": "true"}
    response = me.request("GET", "/me", headers=signed_in(me, "cust-s", **claims))

    assert (response.json_body["email_verified"], response.json_body["phone_verified"]) == (
        True,
        True,
    )


def test_a_typed_in_contact_is_unverified_and_an_unchanged_one_stays_verified(me: Api) -> None:
    claims = {**LI_LEI, "email_verified": True, "phone_number_verified": True}
    headers = signed_in(me, "cust-t", **claims)
    me.request("GET", "/me", headers=headers)
    body = {"email": "li.lei@example.com", "phone": "+8613911112222", "locale": "en", "name": "L"}

    changed = me.request("PUT", "/me", body, headers).json_body

    assert (changed["email_verified"], changed["phone_verified"]) == (True, False)
    stored = customer_store.get_profile("cust-t")
    assert stored is not None
    assert (stored.email_verified, stored.phone_verified) == (True, False)


GOOD_PROFILE = {"email": "a@example.com", "phone": "+8613800000000", "locale": "zh-CN", "name": "A"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"phone": "13800000000"}, "phone"),
        ({"phone": "+0123456789"}, "phone"),
        ({"phone": "+86 138 0000 0000"}, "phone"),
        ({"locale": "fr"}, "locale"),
        ({"locale": "zh_CN"}, "locale"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "名" * 101}, "name"),
        ({"name": 42}, "name"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_bad_profile_is_400_naming_the_field_and_changes_nothing(
    me: Api, changes: dict[str, Any], field: str
) -> None:
    headers = signed_in(me, "cust-li", **LI_LEI)
    me.request("GET", "/me", headers=headers)
    before = table_snapshot()

    response = me.request("PUT", "/me", {**GOOD_PROFILE, **changes}, headers)

    assert response.status_code == 400
    assert response.json_body["error"] == "validation_error"
    assert field in {detail["field"] for detail in response.json_body["details"]}
    assert table_snapshot() == before


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"email": "a@example.com"}'])
def test_a_body_that_is_not_a_profile_is_400_and_changes_nothing(me: Api, raw: bytes) -> None:
    before = table_snapshot()

    response = me.request("PUT", "/me", raw, signed_in(me, "cust-li", **LI_LEI))

    assert response.status_code == 400
    assert table_snapshot() == before


def test_each_customer_sees_and_changes_only_their_own_profile(me: Api) -> None:
    li = signed_in(me, "cust-li", **LI_LEI)
    han = signed_in(me, "cust-han", email="han.meimei@example.com", locale="en")
    me.request("PUT", "/me", GOOD_PROFILE, li)

    theirs = me.request("GET", "/me", headers=han).json_body

    assert theirs == {
        "customer_id": "cust-han",
        "email": "han.meimei@example.com",
        "email_verified": False,
        "phone": None,
        "phone_verified": False,
        "locale": "en",
        "name": None,
        "email_status": "unverified",
        "email_undeliverable_reason": None,
    }
    me.request("PUT", "/me", {**GOOD_PROFILE, "email": "han@example.com"}, han)
    assert me.request("GET", "/me", headers=li).json_body["email"] == "a@example.com"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/me"),
        ("PUT", "/me"),
        ("GET", "/me/notification-preferences"),
        ("PUT", "/me/notification-preferences"),
        ("POST", "/me/devices"),
        ("GET", "/me/notifications"),
    ],
)
def test_every_route_needs_a_token(me: Api, method: str, path: str) -> None:
    assert me.request(method, path, {}).status_code == 401


# --- notification preferences ------------------------------------------------------------------


def preferences(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    response = api.request("GET", "/me/notification-preferences", headers=headers)
    assert response.status_code == 200
    return dict(response.json_body)


def test_everything_is_on_until_the_customer_turns_it_off(me: Api) -> None:
    stated = preferences(me, signed_in(me, "cust-li"))

    assert stated["channels"] == {"email": True, "sms": True, "push": True}
    assert set(stated["events"]) == {
        "order.placed",
        "order.paid",
        "shipment.shipped",
        "shipment.out_for_delivery",
        "shipment.delivered",
        "shipment.exception",
        "order.cancelled",
        "order.expired",
        "payment.refunded",
        "review.replied",
        # After-sales: the customer hears about each step of their requests.
        "after_sales.requested",
        "after_sales.approved",
        "after_sales.rejected",
        "after_sales.received",
        "after_sales.refunded",
        "after_sales.exchange_shipped",
        "after_sales.repair_shipped",
        "after_sales.completed",
        "after_sales.closed",
    }
    assert all(stated["events"].values())


def test_preferences_are_saved_and_read_back(me: Api) -> None:
    headers = signed_in(me, "cust-li")
    body = {
        "channels": {"email": True, "sms": False, "push": False},
        "events": {"order.placed": False, "shipment.out_for_delivery": False},
    }

    response = me.request("PUT", "/me/notification-preferences", body, headers)

    assert response.status_code == 200
    assert response.json_body["channels"] == {"email": True, "sms": False, "push": False}
    assert response.json_body["events"]["order.placed"] is False
    assert response.json_body["events"]["shipment.out_for_delivery"] is False
    assert response.json_body["events"]["order.paid"] is True
    assert response.json_body["events"]["payment.refunded"] is True
    assert preferences(me, headers) == response.json_body
    # Someone else's are untouched.
    assert preferences(me, signed_in(me, "cust-han"))["channels"]["sms"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"email": True}, "events": {"payment.refunded": False}}, "payment.refunded"),
        ({"channels": {"email": True}, "events": {"order.cancelled": False}}, "order.cancelled"),
        ({"channels": {"email": True}, "events": {"stock.low": True}}, "stock.low"),
        ({"channels": {"fax": True}}, "fax"),
        ({"channels": {"sms": "no"}}, "sms"),
        ({"events": {}}, "channels"),
    ],
)
def test_bad_preferences_are_400_and_change_nothing(
    me: Api, body: dict[str, Any], field: str
) -> None:
    headers = signed_in(me, "cust-li")
    me.request("PUT", "/me/notification-preferences", {"channels": {"sms": False}}, headers)
    before = table_snapshot()

    response = me.request("PUT", "/me/notification-preferences", body, headers)

    assert response.status_code == 400
    fields = " ".join(detail["field"] for detail in response.json_body["details"])
    assert field in fields
    assert table_snapshot() == before
    assert preferences(me, headers)["channels"]["sms"] is False


def test_the_openapi_document_says_which_events_are_always_sent(me: Api) -> None:
    spec = me.request("GET", "/openapi.json").json_body
    described = spec["paths"]["/me/notification-preferences"]["put"]["description"]

    for event in ("payment.refunded", "order.cancelled", "order.expired", "shipment.exception"):
        assert event in described
    assert "order.placed" not in described


# --- devices -----------------------------------------------------------------------------------

APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-token:" + "Z" * 140


def endpoints(application_arn: str) -> list[dict[str, Any]]:
    sns = boto3.client("sns", region_name=REGION)
    found = sns.list_endpoints_by_platform_application(PlatformApplicationArn=application_arn)
    return list(found["Endpoints"])


def register(api: Api, headers: dict[str, str], platform: str, token: str) -> Any:
    return api.request("POST", "/me/devices", {"platform": platform, "token": token}, headers)


def test_a_device_is_registered_once_per_token(me: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    messaging = configure_messaging(monkeypatch)
    headers = signed_in(me, "cust-li")

    first = register(me, headers, "apns", APNS_TOKEN)
    again = register(me, headers, "apns", APNS_TOKEN)
    android = register(me, headers, "fcm", FCM_TOKEN)

    assert first.status_code == 201
    assert first.json_body["platform"] == "apns"
    assert first.json_body["device_id"].startswith("dev_")
    assert again.status_code == 201
    assert again.json_body == first.json_body
    assert android.json_body["device_id"] != first.json_body["device_id"]
    assert [e["Attributes"]["Token"] for e in endpoints(messaging.apns_arn)] == [APNS_TOKEN]
    assert [e["Attributes"]["Token"] for e in endpoints(messaging.fcm_arn)] == [FCM_TOKEN]
    stored = customer_store.devices_of("cust-li")
    assert {d.device_id for d in stored} == {
        first.json_body["device_id"],
        android.json_body["device_id"],
    }
    assert {d.endpoint_arn for d in stored} == {
        endpoints(messaging.apns_arn)[0]["EndpointArn"],
        endpoints(messaging.fcm_arn)[0]["EndpointArn"],
    }


def test_a_device_registered_by_another_customer_moves_to_the_new_one(me: Api) -> None:
    register(me, signed_in(me, "cust-li"), "apns", APNS_TOKEN)

    response = register(me, signed_in(me, "cust-han"), "apns", APNS_TOKEN)

    assert response.status_code == 201
    assert customer_store.devices_of("cust-li") == []
    assert [d.device_id for d in customer_store.devices_of("cust-han")] == [
        response.json_body["device_id"]
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "windows", "token": APNS_TOKEN},
        {"platform": "apns", "token": ""},
        {"platform": "apns", "token": "short"},
        {"platform": "apns", "token": "has spaces in it"},
        {"platform": "apns", "token": "x" * 4097},
        {"platform": "apns"},
        {"token": APNS_TOKEN},
    ],
)
def test_bad_device_is_400_and_registers_nothing(
    me: Api, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    messaging = configure_messaging(monkeypatch)
    before = table_snapshot()

    response = me.request("POST", "/me/devices", body, signed_in(me, "cust-li"))

    assert response.status_code == 400
    assert table_snapshot() == before
    assert endpoints(messaging.apns_arn) == []


def test_without_a_push_application_registering_is_409_and_changes_nothing(
    me: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_messaging(monkeypatch, push=False)
    before = table_snapshot()

    response = register(me, signed_in(me, "cust-li"), "fcm", FCM_TOKEN)

    assert response.status_code == 409
    assert response.json_body["error"] == "push_unavailable"
    assert table_snapshot() == before


# --- the inbox ---------------------------------------------------------------------------------


def sent(customer_id: str, event_id: str, channel: Channel, at: datetime) -> None:
    """Record a message as the notifications service does once it went out."""
    claim = customer_store.claim_delivery(
        event_id, channel, "claim-1", now=at, lease=timedelta(minutes=5)
    )
    assert claim is customer_store.ClaimOutcome.CLAIMED
    entry = InboxEntry(
        notification_id=notification_id_for(event_id, channel),
        customer_id=customer_id,
        event_id=event_id,
        event_type="order.placed",
        channel=channel,
        subject=f"subject {event_id}",
        body=f"body {event_id}",
        sent_at=at,
        order_id="ord_1",
    )
    assert customer_store.record_delivery(
        event_id, channel, "claim-1", [entry], provider_ids=["m-1"], at=at
    )


def inbox(api: Api, headers: dict[str, str], **params: Any) -> Any:
    query = urlencode(params)
    return api.request("GET", "/me/notifications" + (f"?{query}" if query else ""), headers=headers)


def test_the_inbox_lists_what_was_sent_newest_first_a_page_at_a_time(me: Api) -> None:
    start = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
    for minute in range(5):
        sent("cust-li", f"evt_{minute}", Channel.EMAIL, start + timedelta(minutes=minute))
    headers = signed_in(me, "cust-li")

    first = inbox(me, headers, limit=2)
    second = inbox(me, headers, limit=2, cursor=first.json_body["next_cursor"])
    last = inbox(me, headers, limit=2, cursor=second.json_body["next_cursor"])

    pages = [first, second, last]
    assert [[item["event_id"] for item in p.json_body["items"]] for p in pages] == [
        ["evt_4", "evt_3"],
        ["evt_2", "evt_1"],
        ["evt_0"],
    ]
    assert last.json_body["next_cursor"] is None
    assert first.json_body["items"][0] == {
        "notification_id": notification_id_for("evt_4", Channel.EMAIL),
        "event_id": "evt_4",
        "event_type": "order.placed",
        "channel": "email",
        "subject": "subject evt_4",
        "body": "body evt_4",
        "sent_at": "2026-05-20T08:04:00Z",
        "order_id": "ord_1",
    }


def test_a_customer_never_sees_another_customers_messages(me: Api) -> None:
    sent("cust-li", "evt_li", Channel.SMS, datetime(2026, 5, 20, tzinfo=UTC))
    li_page = inbox(me, signed_in(me, "cust-li"))

    theirs = inbox(me, signed_in(me, "cust-han"))

    assert [item["event_id"] for item in li_page.json_body["items"]] == ["evt_li"]
    assert theirs.json_body == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"cursor": "!"}]
)
def test_bad_inbox_parameters_are_400(me: Api, params: dict[str, Any]) -> None:
    response = inbox(me, signed_in(me, "cust-li"), **params)

    assert response.status_code == 400
    assert response.json_body["error"] in {"validation_error", "invalid_cursor"}


def test_an_inbox_cursor_from_another_customer_is_400(me: Api) -> None:
    start = datetime(2026, 5, 20, tzinfo=UTC)
    for minute in range(2):
        sent("cust-li", f"evt_{minute}", Channel.EMAIL, start + timedelta(minutes=minute))
    cursor = inbox(me, signed_in(me, "cust-li"), limit=1).json_body["next_cursor"]

    response = inbox(me, signed_in(me, "cust-han"), limit=1, cursor=cursor)

    assert response.status_code == 400
    assert response.json_body["details"][0]["field"] == "cursor"
