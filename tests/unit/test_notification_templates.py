"""What customers read: messages per event, channel and locale, money, links, SMS length."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money
from chalicelib.domain.notifications import (
    NOTIFIABLE_EVENTS,
    ORDER_PLACED,
    PAYMENT_REFUNDED,
    SHIPMENT_DELIVERED,
    SHIPMENT_SHIPPED,
    SMS_MAX_CHARS,
    Channel,
    ContactDetails,
    ItemLine,
    MessageFacts,
    NotificationPreferences,
    format_money,
    order_url,
    render,
)

ORDER_ID = "ord_01JABCDEFGHJKMNPQRSTVWXYZ0"
STOREFRONT = "https://shop.example.com/"
TRACKING_URL = "https://track.example.com/SF1234567890"


def facts(event_type: str = ORDER_PLACED, **overrides: object) -> MessageFacts:
    values: dict[str, object] = {
        "event_type": event_type,
        "order_id": ORDER_ID,
        "items": (
            ItemLine("无线蓝牙耳机 Pro", 2, Money(59800, "CNY")),
            ItemLine("TEA-GREEN", 1, Money(4550, "CNY")),
        ),
        "subtotal": Money(64350, "CNY"),
        "shipping_fee": Money(1000, "CNY"),
        "total": Money(123450, "CNY"),
        "order_url": order_url(STOREFRONT, ORDER_ID),
        "recipient_name": "李雷",
    }
    values.update(overrides)
    return MessageFacts(**values)  # type: ignore[arg-type]


def shipped(event_type: str = SHIPMENT_SHIPPED, **overrides: object) -> MessageFacts:
    values: dict[str, object] = {
        "items": (ItemLine("无线蓝牙耳机 Pro", 2),),
        "subtotal": None,
        "shipping_fee": None,
        "total": None,
        "carrier": "顺丰速运",
        "tracking_number": "SF1234567890",
        "tracking_url": TRACKING_URL,
    }
    values.update(overrides)
    return facts(event_type, **values)


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123450, "CNY"), "¥1,234.50"),
        (Money(5, "CNY"), "¥0.05"),
        (Money(0, "CNY"), "¥0.00"),
        (Money(100_000_000_00, "CNY"), "¥100,000,000.00"),
        (Money(-2999, "CNY"), "-¥29.99"),
        (Money(1999, "USD"), "US$19.99"),
        (Money(1500, "JPY"), "JP¥1,500"),
        (Money(123456, "CHF"), "1,234.56 CHF"),
    ],
)
def test_money_reads_as_currency_with_separators_and_exact_minor_units(
    money: Money, text: str
) -> None:
    assert format_money(money) == text


# --- email -------------------------------------------------------------------------------------


def test_english_order_email_lists_items_quantities_amounts_and_the_order_link() -> None:
    message = render(facts(), Channel.EMAIL, "en")

    assert message.subject == f"Order {ORDER_ID} received, awaiting payment"
    assert message.body.startswith("Hi 李雷,")
    assert f"Order number: {ORDER_ID}" in message.body
    assert "无线蓝牙耳机 Pro × 2  ¥598.00" in message.body
    assert "TEA-GREEN × 1  ¥45.50" in message.body
    assert "Subtotal: ¥643.50" in message.body
    assert "Shipping: ¥10.00" in message.body
    assert "Order total: ¥1,234.50" in message.body
    assert f"View your order: https://shop.example.com/orders/{ORDER_ID}" in message.body


def test_chinese_order_email_says_the_same_in_chinese() -> None:
    message = render(facts(), Channel.EMAIL, "zh-CN")

    assert message.subject == f"订单 {ORDER_ID} 已提交，待付款"
    assert message.body.startswith("李雷，您好：")
    assert f"订单号：{ORDER_ID}" in message.body
    assert "无线蓝牙耳机 Pro × 2  ¥598.00" in message.body
    assert "订单金额：¥1,234.50" in message.body
    assert f"查看订单：https://shop.example.com/orders/{ORDER_ID}" in message.body
    assert "Order" not in message.body.replace(ORDER_ID, "")


def test_unknown_locale_falls_back_to_chinese() -> None:
    assert render(facts(), Channel.EMAIL, "fr").subject == f"订单 {ORDER_ID} 已提交，待付款"


def test_shipment_email_names_carrier_tracking_number_and_tracking_link() -> None:
    english = render(shipped(), Channel.EMAIL, "en").body
    chinese = render(shipped(), Channel.EMAIL, "zh-CN").body

    assert "Carrier: 顺丰速运" in english
    assert "Tracking number: SF1234567890" in english
    assert f"Track your parcel: {TRACKING_URL}" in english
    assert "无线蓝牙耳机 Pro × 2" in english
    assert f"物流跟踪：{TRACKING_URL}" in chinese
    assert "运单号：SF1234567890" in chinese


def test_refund_email_states_the_refunded_amount_and_no_preference_footer() -> None:
    refund = facts(
        PAYMENT_REFUNDED, refund=Money(4550, "CNY"), subtotal=None, shipping_fee=None, total=None
    )
    english = render(refund, Channel.EMAIL, "en").body
    chinese = render(refund, Channel.EMAIL, "zh-CN").body

    assert "Refund: ¥45.50" in english
    assert "退款金额：¥45.50" in chinese
    # Transactional: the customer cannot turn it off, so the mail does not suggest it.
    assert "account settings" not in english
    assert "account settings" in render(facts(), Channel.EMAIL, "en").body


def test_a_tracking_link_that_is_not_a_web_address_is_left_out() -> None:
    message = render(shipped(tracking_url="javascript:alert(1)"), Channel.EMAIL, "en")

    assert "javascript" not in message.body
    assert "Tracking number: SF1234567890" in message.body


def test_without_a_storefront_address_there_is_no_order_link() -> None:
    assert order_url("", ORDER_ID) is None
    message = render(facts(order_url=None), Channel.EMAIL, "en")
    assert "View your order" not in message.body
    assert "http" not in message.body


# --- sms and push ------------------------------------------------------------------------------


def test_sms_is_one_short_line_with_order_number_amount_and_link() -> None:
    english = render(facts(), Channel.SMS, "en").body
    chinese = render(facts(), Channel.SMS, "zh-CN").body

    assert english == (
        f"[orderdesk] Order {ORDER_ID} received, ¥1,234.50 due. "
        f"Details: https://shop.example.com/orders/{ORDER_ID}"
    )
    assert chinese == (
        f"【orderdesk】订单{ORDER_ID}已提交，应付¥1,234.50，请尽快付款。"
        f"详情：https://shop.example.com/orders/{ORDER_ID}"
    )
    assert "\n" not in english
    assert len(english) <= SMS_MAX_CHARS
    assert len(chinese) <= SMS_MAX_CHARS


def test_shipment_sms_links_to_the_parcel_and_names_the_tracking_number() -> None:
    for locale in ("en", "zh-CN"):
        text = render(shipped(), Channel.SMS, locale).body
        assert TRACKING_URL in text
        assert "SF1234567890" in text
        assert len(text) <= SMS_MAX_CHARS


def test_delivered_sms_links_to_the_order_not_the_finished_parcel() -> None:
    text = render(shipped(SHIPMENT_DELIVERED), Channel.SMS, "en").body

    assert f"https://shop.example.com/orders/{ORDER_ID}" in text
    assert TRACKING_URL not in text


def test_sms_that_would_be_too_long_drops_the_tracking_number_then_the_link() -> None:
    long_link = "https://track.example.com/" + "x" * 60
    text = render(shipped(tracking_url=long_link), Channel.SMS, "en").body
    assert len(text) <= SMS_MAX_CHARS
    assert text.startswith(f"[orderdesk] Order {ORDER_ID} has shipped.")
    assert long_link in text

    huge_link = "https://track.example.com/" + "x" * 200
    text = render(shipped(tracking_url=huge_link), Channel.SMS, "en").body
    assert len(text) <= SMS_MAX_CHARS
    assert "SF1234567890" in text
    assert huge_link not in text


def test_push_has_a_title_and_a_short_body_and_carries_the_link_as_data() -> None:
    message = render(shipped(), Channel.PUSH, "zh-CN")

    assert message.subject == f"订单 {ORDER_ID} 已发货"
    assert "http" not in message.body
    assert "SF1234567890" in message.body
    assert message.link == TRACKING_URL


@pytest.mark.parametrize("event_type", NOTIFIABLE_EVENTS)
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_event_renders_on_every_channel_with_the_order_number(
    event_type: str, locale: str
) -> None:
    event_facts = facts(event_type, refund=Money(4550, "CNY"), tracking_url=TRACKING_URL)
    for channel in Channel:
        message = render(event_facts, channel, locale)
        assert ORDER_ID in message.subject
        assert ORDER_ID in message.body
        if channel is not Channel.EMAIL:
            assert len(message.body) <= SMS_MAX_CHARS
        if channel is Channel.SMS:
            assert event_facts.link is not None
            assert event_facts.link in message.body
    english = render(event_facts, Channel.EMAIL, "en").subject
    chinese = render(event_facts, Channel.EMAIL, "zh-CN").subject
    assert english != chinese


# --- who hears what ----------------------------------------------------------------------------


def test_preferences_turn_off_channels_and_events_but_not_transactional_email() -> None:
    preferences = NotificationPreferences.of(
        {"email": False, "sms": True, "push": False}, {ORDER_PLACED: False}
    )

    assert preferences.channels_for(ORDER_PLACED) == ()
    assert preferences.channels_for(SHIPMENT_SHIPPED) == (Channel.SMS,)
    assert preferences.channels_for(PAYMENT_REFUNDED) == (Channel.EMAIL, Channel.SMS)
    assert preferences.channels_for("stock.low") == ()


def test_transactional_events_cannot_be_turned_off_and_unknown_events_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        NotificationPreferences.of({}, {PAYMENT_REFUNDED: False, "order.teleported": True})
    fields = {problem["field"] for problem in refused.value.details}
    assert fields == {"events.payment.refunded", "events.order.teleported"}


def test_profile_from_claims_keeps_what_fits_and_drops_what_does_not() -> None:
    details = ContactDetails.from_claims(
        {
            "email": "not-an-email",
            "phone_number": "+8613800000000",
            "name": " 李雷 ",
            "locale": "en_US",
        }
    )

    assert details == ContactDetails(email=None, phone="+8613800000000", locale="en", name="李雷")
    assert ContactDetails.from_claims({}).locale == "zh-CN"


def test_a_delivered_parcel_invites_a_review_of_each_of_its_lines() -> None:
    from chalicelib.domain.notifications import review_url

    line_url = review_url(STOREFRONT, ORDER_ID, "EL-EARBUDS-PRO")
    delivered = shipped(
        SHIPMENT_DELIVERED,
        items=(ItemLine("无线蓝牙耳机 Pro", 2, review_url=line_url),),
        review_url=review_url(STOREFRONT, ORDER_ID),
    )

    email = render(delivered, Channel.EMAIL, "en").body
    sms = render(delivered, Channel.SMS, "en").body

    assert f"Review: https://shop.example.com/orders/{ORDER_ID}/review?sku=EL-EARBUDS-PRO" in email
    assert f"https://shop.example.com/orders/{ORDER_ID}/review" in sms


def test_a_review_link_that_is_not_a_web_link_is_dropped() -> None:
    delivered = shipped(SHIPMENT_DELIVERED, review_url="javascript:alert(1)")
    assert "javascript" not in render(delivered, Channel.EMAIL, "en").body
