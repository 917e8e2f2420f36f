"""The notifications queue consumer, invoked as Lambda invokes it, over moto's SES and SNS.

What customers received is read from what moto's SES and SNS recorded: sent emails, SMS
to phone numbers, and messages published to each push endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from test_me_api import configure_messaging, signed_in
from test_orders_api import build_world, items_with_prefix, order_body, place, receive

from chalicelib.adapters import notifications as channels
from chalicelib.domain.orders import Order
from chalicelib.services import stock
from chalicelib.store import orders as order_store
from chalicelib.store import outbox

if TYPE_CHECKING:
    from conftest import Api

REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:orderdesk-test-notifications"
CUSTOMER = "customer-1"
EMAIL = "li.lei@example.com"
PHONE = "+8613800000000"


@pytest.fixture
def world(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    configure_messaging(monkeypatch)
    build_world()
    receive("MUG", "SH", 10)
    receive("TEA", "SH", 10)
    yield api
    stock.forget_cached_warehouses()
    channels.reset()


# --- the world ---------------------------------------------------------------------------------


def set_profile(api: Api, locale: str = "zh-CN", *, user: str = CUSTOMER, **changes: Any) -> None:
    """The customer's profile; its email and phone come verified from their sign-in."""
    body = {"email": EMAIL, "phone": PHONE, "locale": locale, "name": "李雷", **changes}
    claims = {
        "email": body["email"] or EMAIL,
        "email_verified": True,
        "phone_number": body["phone"] or PHONE,
        "phone_number_verified": True,
    }
    assert api.request("GET", "/me", headers=signed_in(api, user, **claims)).status_code == 200
    response = api.request("PUT", "/me", body, signed_in(api, user))
    assert response.status_code == 200, response.json_body


def set_preferences(api: Api, channels_wanted: dict[str, bool], **events: bool) -> None:
    body = {
        "channels": channels_wanted,
        "events": {k.replace("_", "."): v for k, v in events.items()},
    }
    response = api.request("PUT", "/me/notification-preferences", body, signed_in(api, CUSTOMER))
    assert response.status_code == 200, response.json_body


def place_order(api: Api, lines: dict[str, int] | None = None) -> Order:
    response = place(api, order_body(lines or {"MUG": 2, "TEA": 1}))
    assert response.status_code == 201, response.json_body
    order = order_store.get_order(response.json_body["order_id"], consistent=True)
    assert order is not None
    return order


def queue_body(event_id: str, event_type: str, payload: dict[str, Any]) -> str:
    """A message body as the outbox forwarder writes it."""
    body = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": "2026-05-20T08:00:00+00:00",
        "payload": payload,
    }
    return json.dumps(body, ensure_ascii=False)


def recorded_event_body(event_type: str, order_id: str) -> tuple[str, str]:
    """(event id, queue body) of the outbox event the app recorded for ``order_id``."""
    for item in items_with_prefix(outbox.OUTBOX_PREFIX):
        event = outbox.event_from_item(item)
        if event.type == event_type and event.payload.get("order_id") == order_id:
            return event.event_id, queue_body(event.event_id, event.type, event.payload)
    raise AssertionError(f"no {event_type} event for {order_id}")


def sqs_event(*messages: tuple[str, str]) -> dict[str, Any]:
    """A Lambda SQS event of (message id, body) pairs."""
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": REGION,
            }
            for message_id, body in messages
        ]
    }


def deliver(api: Api, *messages: tuple[str, str]) -> list[str]:
    """Run the consumer on one batch; the message ids it reported as failed."""
    result = api.client.lambda_.invoke("notify_customers", sqs_event(*messages)).payload
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


# --- what moto saw -----------------------------------------------------------------------------


def emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def sms() -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def pushes() -> list[dict[str, Any]]:
    backend = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [
        json.loads(message)
        for endpoint in backend.platform_endpoints.values()
        for message in endpoint.messages.values()
    ]


def inbox(api: Api, user: str = CUSTOMER) -> list[dict[str, Any]]:
    response = api.request("GET", "/me/notifications?limit=100", headers=signed_in(api, user))
    assert response.status_code == 200
    return list(response.json_body["items"])


# --- tests -------------------------------------------------------------------------------------


def test_a_placed_order_is_emailed_and_texted_and_both_are_in_the_inbox(world: Api) -> None:
    set_profile(world)
    order = place_order(world)
    event_id, body = recorded_event_body("order.placed", order.order_id)

    assert order.total.amount == 10350  # free shipping from ¥99
    assert deliver(world, ("m-1", body)) == []

    [email] = emails()
    assert email.source == "orders@orderdesk.test"
    assert email.destinations["ToAddresses"] == [EMAIL]
    assert email.subject == f"订单 {order.order_id} 已提交，待付款"
    assert "Mug × 2  ¥58.00" in email.body
    assert "Tea × 1  ¥45.50" in email.body
    assert "订单金额：¥103.50" in email.body
    assert f"https://shop.example.com/orders/{order.order_id}" in email.body
    [(phone, text)] = sms()
    assert phone == PHONE
    assert text.startswith(f"【orderdesk】订单{order.order_id}已提交，应付¥103.50")
    entries = inbox(world)
    assert {(e["channel"], e["event_id"], e["order_id"]) for e in entries} == {
        ("email", event_id, order.order_id),
        ("sms", event_id, order.order_id),
    }
    assert {e["body"] for e in entries} == {email.body, text}


def test_the_same_message_delivered_twice_sends_each_channel_once(world: Api) -> None:
    set_profile(world, "en")
    order = place_order(world)
    _, body = recorded_event_body("order.placed", order.order_id)

    assert deliver(world, ("m-1", body)) == []
    assert deliver(world, ("m-1", body)) == []
    assert deliver(world, ("m-2", body)) == []

    assert len(emails()) == 1
    assert emails()[0].subject == f"Order {order.order_id} received, awaiting payment"
    assert len(sms()) == 1
    assert sorted(e["channel"] for e in inbox(world)) == ["email", "sms"]


def test_a_failing_channel_is_retried_without_sending_the_others_again(
    world: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_profile(world)
    order = place_order(world)
    _, body = recorded_event_body("order.placed", order.order_id)
    real_send = channels.SnsSmsSender.send
    outage = {"on": True}

    def flaky_send(self: channels.SnsSmsSender, address: str, message: Any) -> str:
        if outage["on"]:
            raise RuntimeError("SMS gateway down")
        return real_send(self, address, message)

    monkeypatch.setattr(channels.SnsSmsSender, "send", flaky_send)

    assert deliver(world, ("m-1", body)) == ["m-1"]
    assert len(emails()) == 1
    assert sms() == []
    assert [e["channel"] for e in inbox(world)] == ["email"]

    assert deliver(world, ("m-1", body)) == ["m-1"]  # still down: email is not sent again
    assert len(emails()) == 1

    outage["on"] = False
    assert deliver(world, ("m-1", body)) == []
    assert len(emails()) == 1
    assert len(sms()) == 1
    assert sorted(e["channel"] for e in inbox(world)) == ["email", "sms"]


def test_channels_and_events_turned_off_are_not_sent(world: Api) -> None:
    set_profile(world)
    set_preferences(world, {"email": True, "sms": False, "push": True}, order_placed=False)
    order = place_order(world)
    _, placed = recorded_event_body("order.placed", order.order_id)
    paid = queue_body(
        "evt_paid_1", "order.paid", {"order_id": order.order_id, "customer_id": CUSTOMER}
    )

    assert deliver(world, ("m-placed", placed), ("m-paid", paid)) == []

    [email] = emails()
    assert email.subject == f"订单 {order.order_id} 支付成功"
    assert sms() == []
    assert [(e["event_type"], e["channel"]) for e in inbox(world)] == [("order.paid", "email")]


def test_transactional_events_are_emailed_even_with_everything_off(world: Api) -> None:
    set_profile(world, "en")
    set_preferences(world, {"email": False, "sms": False, "push": False})
    order = place_order(world)
    refund = {
        "order_id": order.order_id,
        "customer_id": CUSTOMER,
        "refund_id": "rf_1",
        "amount": {"amount": 4550, "currency": "CNY"},
    }
    paid = {"order_id": order.order_id, "customer_id": CUSTOMER}

    failed = deliver(
        world,
        ("m-refund", queue_body("evt_refund_1", "payment.refunded", refund)),
        ("m-paid", queue_body("evt_paid_1", "order.paid", paid)),
    )

    assert failed == []
    [email] = emails()
    assert email.subject == f"Refund issued for order {order.order_id}"
    assert "Refund: ¥45.50" in email.body
    assert sms() == []
    assert [e["event_type"] for e in inbox(world)] == ["payment.refunded"]


def test_a_shipment_goes_to_every_registered_device_with_the_tracking_link(world: Api) -> None:
    set_profile(world, "en", phone=None)
    headers = signed_in(world, CUSTOMER)
    for platform, token in (("apns", "ab" * 32), ("fcm", "fcm-token-" + "Q" * 40)):
        response = world.request(
            "POST", "/me/devices", {"platform": platform, "token": token}, headers
        )
        assert response.status_code == 201
    order = place_order(world, {"MUG": 3})
    shipment = order.shipments[0]
    payload = {
        "order_id": order.order_id,
        "customer_id": CUSTOMER,
        "shipment_id": shipment.shipment_id,
        "carrier": "SF Express",
        "tracking_number": "SF1234567890",
        "tracking_url": "https://track.example.com/SF1234567890",
    }

    assert deliver(world, ("m-1", queue_body("evt_ship_1", "shipment.shipped", payload))) == []

    [email] = emails()
    assert "Mug × 3" in email.body
    assert "Track your parcel: https://track.example.com/SF1234567890" in email.body
    assert sms() == []  # no phone number
    assert len(pushes()) == 2
    for push in pushes():
        apns = json.loads(push["APNS"])
        assert apns["aps"]["alert"]["title"] == f"Order {order.order_id} has shipped"
        assert "SF1234567890" in apns["aps"]["alert"]["body"]
        assert apns["link"] == "https://track.example.com/SF1234567890"
        assert json.loads(push["GCM"])["notification"]["title"] == apns["aps"]["alert"]["title"]
    assert sorted(e["channel"] for e in inbox(world)) == ["email", "push"]


def test_a_customer_without_a_profile_is_not_sent_anything_and_nothing_fails(world: Api) -> None:
    order = place_order(world)
    _, body = recorded_event_body("order.placed", order.order_id)

    assert deliver(world, ("m-1", body)) == []

    assert emails() == []
    assert sms() == []
    assert inbox(world) == []


def test_a_poison_message_fails_alone_and_the_rest_of_the_batch_goes_out(world: Api) -> None:
    set_profile(world)
    set_profile(world, user="customer-2", email="han@example.com", phone="+8613900000000")
    order = place_order(world)
    _, placed = recorded_event_body("order.placed", order.order_id)
    someone_elses = queue_body(
        "evt_wrong_1", "order.paid", {"order_id": order.order_id, "customer_id": "customer-2"}
    )
    stock_low = queue_body("evt_low_1", "stock.low", {"sku": "MUG", "warehouse": "SH"})

    failed = deliver(
        world,
        ("m-poison", "this is not an event"),
        ("m-placed", placed),
        ("m-no-order", queue_body("evt_bad_1", "order.paid", {"customer_id": CUSTOMER})),
        ("m-low", stock_low),
        ("m-wrong-customer", someone_elses),
    )

    assert failed == ["m-poison", "m-no-order", "m-wrong-customer"]
    [email] = emails()
    assert email.destinations["ToAddresses"] == [EMAIL]
    assert len(sms()) == 1
    assert inbox(world, "customer-2") == []
    assert len(inbox(world)) == 2


def test_an_address_change_takes_effect_for_the_next_event_once_confirmed(world: Api) -> None:
    set_profile(world, "en")
    order = place_order(world)
    _, placed = recorded_event_body("order.placed", order.order_id)
    deliver(world, ("m-1", placed))
    set_profile(world, "zh-CN", phone=None)
    started = world.request(
        "POST",
        "/me/contact-verifications",
        {"channel": "email", "value": "new@example.com"},
        signed_in(world, CUSTOMER),
    ).json_body
    [code] = re.findall(r"\b\d{6}\b", emails()[-1].body)
    confirmed = world.request(
        "POST",
        f"/me/contact-verifications/{started['verification_id']}/confirm",
        {"code": code},
        signed_in(world, CUSTOMER),
    )
    assert confirmed.status_code == 200

    paid = queue_body(
        "evt_paid_1", "order.paid", {"order_id": order.order_id, "customer_id": CUSTOMER}
    )
    assert deliver(world, ("m-2", paid)) == []

    order_mails = [e for e in emails() if order.order_id in e.subject]
    assert [e.destinations["ToAddresses"] for e in order_mails] == [[EMAIL], ["new@example.com"]]
    assert order_mails[1].subject == f"订单 {order.order_id} 支付成功"
    assert len(sms()) == 1


def test_a_support_reply_for_a_customer_without_a_socket_is_emailed_and_texted(
    world: Api,
) -> None:
    set_profile(world)
    payload = {
        "conversation_id": "cnv_01JSUPPORTREPLY0000000000A",
        "customer_id": CUSTOMER,
        "message_id": "msg_01JSUPPORTREPLY0000000000A",
        "order_id": None,
        "subject": "物流问题",
        "body": "您好，包裹明天送达。<b>不是 HTML</b>",
    }
    body = queue_body("evt_support_reply_1", "support.reply_posted", payload)

    assert deliver(world, ("m-1", body)) == []
    assert deliver(world, ("m-2", body)) == []  # delivered twice, sent once

    [email] = emails()
    assert email.subject == "客服回复了您的咨询：物流问题"
    assert "您好，包裹明天送达。<b>不是 HTML</b>" in email.body
    [(phone, text)] = sms()
    assert phone == PHONE
    assert text.startswith("【orderdesk】客服回复了您的咨询“物流问题”：您好")
    assert {e["event_id"] for e in inbox(world)} == {"evt_support_reply_1"}
