"""Proving a typed-in contact with a code, over the real app and moto.

The codes are read where moto's SES and SNS recorded what was sent. A typed-in contact gets
nothing but its code until it is confirmed; confirmed, it gets the order messages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from test_me_api import signed_in
from test_notifications_worker import (
    CUSTOMER,
    deliver,
    emails,
    inbox,
    place_order,
    recorded_event_body,
    sms,
    world,
)
from test_orders_api import table_snapshot

from chalicelib.domain.contact_verification import code_hash
from chalicelib.services import customers as customer_service
from chalicelib.store import customers as customer_store
from chalicelib.store import tables

if TYPE_CHECKING:
    from conftest import Api

__all__ = ["world"]  # the fixture, shared with the notifications tests

NEW_EMAIL = "li.lei@new.example.com"
NEW_PHONE = "+8613900000000"
PROFILE = {"email": NEW_EMAIL, "phone": NEW_PHONE, "locale": "en", "name": "Li Lei"}


def me(api: Api, user: str = CUSTOMER) -> dict[str, Any]:
    response = api.request("GET", "/me", headers=signed_in(api, user))
    assert response.status_code == 200
    return dict(response.json_body)


def start(api: Api, channel: str, value: str, user: str = CUSTOMER) -> Any:
    body = {"channel": channel, "value": value}
    return api.request("POST", "/me/contact-verifications", body, signed_in(api, user))


def confirm(api: Api, verification_id: str, code: str, user: str = CUSTOMER) -> Any:
    path = f"/me/contact-verifications/{verification_id}/confirm"
    return api.request("POST", path, {"code": code}, signed_in(api, user))


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def last_emailed_code(to: str) -> str:
    [message] = [m for m in emails() if m.destinations["ToAddresses"] == [to]][-1:]
    return code_in(message.body)


def last_texted_code(to: str) -> str:
    [(_, text)] = [(phone, text) for phone, text in sms() if phone == to][-1:]
    return code_in(text)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_code_is_sent_to_the_contact_and_only_its_hash_is_kept(world: Api) -> None:
    response = start(world, "email", NEW_EMAIL)

    assert response.status_code == 202, response.json_body
    body = response.json_body
    assert set(body) == {"verification_id", "expires_at"}
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    code = last_emailed_code(NEW_EMAIL)
    assert len(code) == 6
    stored = customer_store.get_verification(CUSTOMER, body["verification_id"])
    assert stored is not None and stored.value == NEW_EMAIL
    assert stored.code_hash == code_hash("test-pepper", stored.salt, code)
    assert code not in str(customer_store._verification_item(stored))
    assert inbox(world) == []  # the code is not an inbox message


def test_the_right_code_makes_the_contact_the_profiles_verified_one(world: Api) -> None:
    me(world)
    started = start(world, "sms", NEW_PHONE).json_body

    response = confirm(world, started["verification_id"], last_texted_code(NEW_PHONE))

    assert response.status_code == 200, response.json_body
    assert response.json_body["phone"] == NEW_PHONE
    assert response.json_body["phone_verified"] is True
    assert me(world)["phone"] == NEW_PHONE and me(world)["phone_verified"] is True
    again = confirm(world, started["verification_id"], last_texted_code(NEW_PHONE))
    assert again.status_code == 410  # spent once confirmed
    assert again.json_body["error"] == "verification_expired"


def test_a_sixth_code_within_the_hour_is_429_with_retry_after_and_sends_nothing(
    world: Api,
) -> None:
    for _ in range(5):
        assert start(world, "email", NEW_EMAIL).status_code == 202
    sent = len(emails())
    before = table_snapshot()

    refused = start(world, "email", NEW_EMAIL)

    assert refused.status_code == 429
    assert refused.json_body["error"] == "rate_limited"
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600
    assert len(emails()) == sent
    assert table_snapshot() == before
    # Another customer has their own allowance (for another address: this one's is spent).
    assert start(world, "email", "li.lei@other.example.com", user="customer-2").status_code == 202


def test_a_sixth_code_to_one_address_from_two_customers_is_429_and_sends_nothing(
    world: Api,
) -> None:
    for _ in range(3):
        assert start(world, "email", NEW_EMAIL).status_code == 202
    for typed in ("LI.LEI@new.example.com", "li.lei@NEW.example.com"):
        answer = start(world, "email", typed, user="customer-2")
        assert answer.status_code == 202, answer.json_body
    sent = len(emails())
    before = table_snapshot()

    refused = start(world, "email", NEW_EMAIL.upper(), user="customer-2")

    assert refused.status_code == 429, refused.json_body
    assert refused.json_body["error"] == "rate_limited"
    assert refused.json_body["details"]["action"] == "codes_to_one_contact"
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600
    assert len(emails()) == sent
    assert table_snapshot() == before
    # Neither customer's own allowance is spent: another address still gets its code.
    assert start(world, "email", "li.lei@other.example.com").status_code == 202
    assert len(emails()) == sent + 1


def test_a_verification_started_before_the_pepper_is_410_ask_again(world: Api) -> None:
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    code = last_emailed_code(NEW_EMAIL)
    key = customer_store.verification_key(CUSTOMER, verification_id)
    tables.client().update_item(
        TableName=tables.table_name(),
        Key=key,
        UpdateExpression="REMOVE hash_scheme",
    )

    response = confirm(world, verification_id, code)

    assert response.status_code == 410
    assert response.json_body["error"] == "verification_expired"
    assert me(world)["email_verified"] is False


def test_a_wrong_code_is_400_and_the_contact_stays_unverified(world: Api) -> None:
    set_unverified_profile(world)
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]

    response = confirm(world, verification_id, wrong(last_emailed_code(NEW_EMAIL)))

    assert response.status_code == 400
    assert response.json_body["error"] == "invalid_code"
    assert response.json_body["details"] == {"attempts_left": 4}
    assert me(world)["email_verified"] is False


def test_after_five_wrong_codes_even_the_right_one_is_410(world: Api) -> None:
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    code = last_emailed_code(NEW_EMAIL)

    answers = [confirm(world, verification_id, wrong(code)) for _ in range(5)]
    final = confirm(world, verification_id, code)

    assert [a.json_body["error"] for a in answers] == ["invalid_code"] * 5
    assert final.status_code == 410
    assert final.json_body["error"] == "verification_expired"
    assert me(world)["email_verified"] is False


def test_an_expired_code_is_410(world: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    code = last_emailed_code(NEW_EMAIL)
    later = datetime.now(UTC) + timedelta(minutes=10, seconds=1)
    monkeypatch.setattr(customer_service, "_now", lambda: later)

    response = confirm(world, verification_id, code)

    assert response.status_code == 410
    assert response.json_body["error"] == "verification_expired"
    assert me(world)["email_verified"] is False


def test_another_customers_verification_is_404(world: Api) -> None:
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    code = last_emailed_code(NEW_EMAIL)

    response = confirm(world, verification_id, code, user="customer-2")

    assert response.status_code == 404
    assert me(world, "customer-2")["email"] != NEW_EMAIL
    assert confirm(world, verification_id, code).status_code == 200  # still the owner's


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "email", "value": "not-an-email"},
        {"channel": "sms", "value": "13800000000"},
        {"channel": "push", "value": NEW_EMAIL},
        {"channel": "email"},
    ],
)
def test_a_bad_contact_is_400_and_sends_nothing(world: Api, body: dict[str, Any]) -> None:
    me(world)
    before = table_snapshot()

    response = world.request("POST", "/me/contact-verifications", body, signed_in(world, CUSTOMER))

    assert response.status_code == 400
    assert emails() == [] and sms() == []
    assert table_snapshot() == before


def set_unverified_profile(api: Api) -> None:
    response = api.request("PUT", "/me", PROFILE, signed_in(api, CUSTOMER))
    assert response.status_code == 200
    assert response.json_body["email_verified"] is False
    assert response.json_body["phone_verified"] is False


def test_an_unverified_contact_gets_no_order_messages_and_a_verified_one_does(
    world: Api,
) -> None:
    set_unverified_profile(world)
    first = place_order(world)
    _, body = recorded_event_body("order.placed", first.order_id)
    assert deliver(world, ("m-1", body)) == []
    assert emails() == [] and sms() == []
    assert inbox(world) == []  # nothing sent, nothing in the inbox

    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    assert confirm(world, verification_id, last_emailed_code(NEW_EMAIL)).status_code == 200
    second = place_order(world)
    _, body = recorded_event_body("order.placed", second.order_id)
    assert deliver(world, ("m-2", body)) == []

    order_mails = [m for m in emails() if second.order_id in m.subject]
    assert [m.destinations["ToAddresses"] for m in order_mails] == [[NEW_EMAIL]]
    assert sms() == []  # the phone is still unverified
    assert [(e["channel"], e["order_id"]) for e in inbox(world)] == [("email", second.order_id)]


def test_two_confirms_racing_on_one_read_confirm_once(world: Api) -> None:
    verification_id = start(world, "email", NEW_EMAIL).json_body["verification_id"]
    read = customer_store.get_verification(CUSTOMER, verification_id)
    assert read is not None
    profile = customer_service.get_profile(CUSTOMER, {})
    verified = profile.with_verified(read.channel.channel, read.value, datetime.now(UTC))

    assert customer_store.confirm_verification(read, verified, profile) is True
    assert customer_store.confirm_verification(read, verified, profile) is False
    assert customer_store.add_wrong_code(read) is False  # a stale read counts nothing
    stored = customer_store.get_verification(CUSTOMER, verification_id)
    assert stored is not None and stored.wrong_codes == 0 and stored.state == "confirmed"


def test_the_openapi_document_describes_both_routes(world: Api) -> None:
    paths = world.request("GET", "/openapi.json").json_body["paths"]

    start_op = paths["/me/contact-verifications"]["post"]
    confirm_op = paths["/me/contact-verifications/{verification_id}/confirm"]["post"]
    assert {"202", "400", "429"} <= set(start_op["responses"])
    assert "Retry-After" in start_op["responses"]["429"]["headers"]
    assert {"200", "400", "404", "410"} <= set(confirm_op["responses"])
