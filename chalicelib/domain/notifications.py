"""Telling customers what happened to their orders: profiles, preferences and the words used.

Pure Python. The service decides *whether* and *where* to send (``NotificationPreferences``,
``CustomerProfile``); ``render`` decides *what* a message says, in the customer's locale
(zh-CN or en), for one channel:

* email: a subject and a plain-text body with the order number, the items and quantities,
  the amounts as money (¥1,234.50), carrier and tracking, and links to the order and parcel;
* sms: one short line (at most ``SMS_MAX_CHARS``) with the order number and one link;
* push: a title and the same short line; the link travels as data.

Transactional events (``TRANSACTIONAL_EVENTS``: refunds, cancellations and expiries,
delivery problems) are always sent by email whatever the preferences say, because the
customer needs them to know where their money and parcel are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from chalicelib.domain.catalogue import EN, ZH_CN
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money

# --- events -----------------------------------------------------------------------------------

ORDER_PLACED = "order.placed"
ORDER_PAID = "order.paid"
SHIPMENT_SHIPPED = "shipment.shipped"
SHIPMENT_OUT_FOR_DELIVERY = "shipment.out_for_delivery"
SHIPMENT_DELIVERED = "shipment.delivered"
SHIPMENT_EXCEPTION = "shipment.exception"
ORDER_CANCELLED = "order.cancelled"
ORDER_EXPIRED = "order.expired"
PAYMENT_REFUNDED = "payment.refunded"
REVIEW_REPLIED = "review.replied"
AFTER_SALES_REQUESTED = "after_sales.requested"
AFTER_SALES_APPROVED = "after_sales.approved"
AFTER_SALES_REJECTED = "after_sales.rejected"
AFTER_SALES_RECEIVED = "after_sales.received"
AFTER_SALES_REFUNDED = "after_sales.refunded"
AFTER_SALES_EXCHANGE_SHIPPED = "after_sales.exchange_shipped"
AFTER_SALES_REPAIR_SHIPPED = "after_sales.repair_shipped"
AFTER_SALES_COMPLETED = "after_sales.completed"
AFTER_SALES_CLOSED = "after_sales.closed"
AFTER_SALES_EVENTS: tuple[str, ...] = (
    AFTER_SALES_REQUESTED,
    AFTER_SALES_APPROVED,
    AFTER_SALES_REJECTED,
    AFTER_SALES_RECEIVED,
    AFTER_SALES_REFUNDED,
    AFTER_SALES_EXCHANGE_SHIPPED,
    AFTER_SALES_REPAIR_SHIPPED,
    AFTER_SALES_COMPLETED,
    AFTER_SALES_CLOSED,
)

# Every event a customer is told about, in the order of an order's life.
NOTIFIABLE_EVENTS: tuple[str, ...] = (
    ORDER_PLACED,
    ORDER_PAID,
    SHIPMENT_SHIPPED,
    SHIPMENT_OUT_FOR_DELIVERY,
    SHIPMENT_DELIVERED,
    SHIPMENT_EXCEPTION,
    ORDER_CANCELLED,
    ORDER_EXPIRED,
    PAYMENT_REFUNDED,
    REVIEW_REPLIED,
    *AFTER_SALES_EVENTS,
)
TRANSACTIONAL_EVENTS = frozenset(
    {
        ORDER_CANCELLED,
        ORDER_EXPIRED,
        SHIPMENT_EXCEPTION,
        PAYMENT_REFUNDED,
        AFTER_SALES_APPROVED,
        AFTER_SALES_REJECTED,
        AFTER_SALES_REFUNDED,
    }
)
SHIPMENT_EVENTS = frozenset(
    {SHIPMENT_SHIPPED, SHIPMENT_OUT_FOR_DELIVERY, SHIPMENT_DELIVERED, SHIPMENT_EXCEPTION}
)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class PushPlatform(StrEnum):
    APNS = "apns"
    FCM = "fcm"


# --- profiles ---------------------------------------------------------------------------------

LOCALES = (ZH_CN, EN)
DEFAULT_LOCALE = ZH_CN
MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 100
# Deliberately simple: a mailbox, an @, and a dotted domain; the mail provider has the last word.
EMAIL_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)


def is_email(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_EMAIL_CHARS:
        return False
    return bool(_EMAIL.fullmatch(value))


def is_phone(value: Any) -> bool:
    return isinstance(value, str) and bool(_PHONE.fullmatch(value))


def normalize_address(address: str) -> str:
    """The form email addresses are compared and looked up in: trimmed and lower-cased.

    (A mailbox name may be case-sensitive in theory; no provider we send to treats it so,
    and customers type their address in any case.)"""
    return address.strip().lower()


class UndeliverableReason(StrEnum):
    BOUNCED = "bounced"  # SES reported a permanent (hard) bounce
    COMPLAINED = "complained"  # the recipient reported our email as spam


@dataclass(frozen=True, slots=True)
class UndeliverableEmail:
    """An address SES told us not to send to again, until the customer proves one."""

    address: str
    reason: UndeliverableReason
    since: datetime

    def is_for(self, address: str | None) -> bool:
        return address is not None and normalize_address(address) == normalize_address(self.address)


def locale_from_claim(value: Any) -> str:
    """The supported locale closest to an identity provider's ``locale`` claim."""
    text = value.strip().replace("_", "-").lower() if isinstance(value, str) else ""
    if text.startswith("en"):
        return EN
    return DEFAULT_LOCALE


@dataclass(frozen=True, slots=True)
class ContactDetails:
    """What a customer may change about themselves (``PUT /me``)."""

    email: str | None
    phone: str | None
    locale: str
    name: str | None
    # Confirmed by the identity provider (or, later, by a code); typed-in contacts are not.
    email_verified: bool = False
    phone_verified: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.email is not None and not is_email(self.email):
            problems.append({"field": "email", "message": "not an email address"})
        if self.phone is not None and not is_phone(self.phone):
            problems.append({"field": "phone", "message": "not an E.164 number (+8613800000000)"})
        if self.locale not in LOCALES:
            problems.append({"field": "locale", "message": f"one of {', '.join(LOCALES)}"})
        if self.name is not None and not (0 < len(self.name.strip()) <= MAX_NAME_CHARS):
            problems.append({"field": "name", "message": f"1-{MAX_NAME_CHARS} characters"})
        if problems:
            raise InvalidInput("Invalid contact details.", problems)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> ContactDetails:
        """First-use details from identity token claims (``email``, ``phone_number``,
        ``name``, ``locale``). A claim that does not fit is left out rather than refused:
        the customer can still put it right with ``PUT /me``."""
        email, phone, name = claims.get("email"), claims.get("phone_number"), claims.get("name")
        name = name.strip() if isinstance(name, str) else None
        email = email if is_email(email) else None
        phone = phone if is_phone(phone) else None
        return cls(
            email=email,
            phone=phone,
            locale=locale_from_claim(claims.get("locale")),
            name=name[:MAX_NAME_CHARS] if name else None,
            email_verified=email is not None and claims.get("email_verified") in (True, "true"),
            phone_verified=phone is not None
            and claims.get("phone_number_verified") in (True, "true"),
        )


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer_id: str
    contact: ContactDetails
    created_at: datetime
    updated_at: datetime
    # Set from SES's feedback (a permanent bounce, a complaint); it holds the address it is
    # about, so it applies only while that is the profile's email.
    undeliverable_email: UndeliverableEmail | None = None

    @property
    def email(self) -> str | None:
        return self.contact.email

    @property
    def email_undeliverable(self) -> bool:
        """SES reported the profile's email as bouncing or complaining: nothing is sent to
        it until the customer confirms an address with a code."""
        return self.undeliverable_email is not None and self.undeliverable_email.is_for(self.email)

    @property
    def email_status(self) -> str | None:
        """``undeliverable``, ``verified`` or ``unverified``; None without an email."""
        if self.email is None:
            return None
        if self.email_undeliverable:
            return "undeliverable"
        return "verified" if self.email_verified else "unverified"

    @property
    def phone(self) -> str | None:
        return self.contact.phone

    @property
    def locale(self) -> str:
        return self.contact.locale

    @property
    def name(self) -> str | None:
        return self.contact.name

    @property
    def email_verified(self) -> bool:
        return self.contact.email_verified

    @property
    def phone_verified(self) -> bool:
        return self.contact.phone_verified

    def with_contact(self, contact: ContactDetails, at: datetime) -> CustomerProfile:
        """New details; a contact stays verified only while it is the same address."""
        kept = replace(
            contact,
            email_verified=contact.email is not None
            and contact.email == self.email
            and self.email_verified,
            phone_verified=contact.phone is not None
            and contact.phone == self.phone
            and self.phone_verified,
        )
        return replace(self, contact=kept, updated_at=at)

    def with_verified(self, channel: Channel, value: str, at: datetime) -> CustomerProfile:
        """``value`` proved by a code: now this profile's email (or phone), verified.

        A confirmed email clears an undeliverable mark, even for the same address: the code
        reached the mailbox and was typed back, so it receives our mail again (and after a
        complaint, confirming is the customer asking for it)."""
        if channel is Channel.EMAIL:
            contact = replace(self.contact, email=value, email_verified=True)
            return replace(self, contact=contact, updated_at=at, undeliverable_email=None)
        contact = replace(self.contact, phone=value, phone_verified=True)
        return replace(self, contact=contact, updated_at=at)

    def marked_undeliverable(
        self, address: str, reason: UndeliverableReason, at: datetime
    ) -> CustomerProfile:
        """SES's feedback on ``address``, if it is still this profile's email (else as is)."""
        if self.email is None or normalize_address(self.email) != normalize_address(address):
            return self
        current = self.undeliverable_email
        if current is not None and current.is_for(self.email) and current.reason is reason:
            return self
        mark = UndeliverableEmail(address=self.email, reason=reason, since=at)
        return replace(self, undeliverable_email=mark, updated_at=at)

    def verified_address(self, channel: Channel) -> str | None:
        """Where ``channel`` may reach the customer: only a verified email or phone, and no
        email SES reported as undeliverable."""
        if channel is Channel.EMAIL:
            return self.email if self.email_verified and not self.email_undeliverable else None
        if channel is Channel.SMS:
            return self.phone if self.phone_verified else None
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "phone": self.phone,
            "phone_verified": self.phone_verified,
            "locale": self.locale,
            "name": self.name,
            "email_status": self.email_status,
            "email_undeliverable_reason": (
                self.undeliverable_email.reason.value
                if self.email_undeliverable and self.undeliverable_email is not None
                else None
            ),
        }


# --- preferences ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationPreferences:
    """Which channels a customer wants, and which (non-transactional) events.

    Everything is on until the customer turns it off. Transactional events cannot be turned
    off, and always go by email (if the customer has an address) even with email off; SMS
    and push follow the channel switches for them too.
    """

    channels: Mapping[Channel, bool] = field(default_factory=lambda: dict.fromkeys(Channel, True))
    events: Mapping[str, bool] = field(
        default_factory=lambda: dict.fromkeys(NOTIFIABLE_EVENTS, True)
    )

    @classmethod
    def of(
        cls, channels: Mapping[str, bool], events: Mapping[str, bool]
    ) -> NotificationPreferences:
        """Preferences as a customer states them; an unnamed channel or event stays on."""
        unknown = sorted(set(events) - set(NOTIFIABLE_EVENTS))
        unknown_channels = sorted(set(channels) - {c.value for c in Channel})
        problems = [{"field": f"events.{name}", "message": "unknown event"} for name in unknown]
        problems += [
            {"field": f"channels.{name}", "message": "unknown channel"} for name in unknown_channels
        ]
        problems += [
            {"field": f"events.{name}", "message": "transactional: always sent, cannot be off"}
            for name in NOTIFIABLE_EVENTS
            if name in TRANSACTIONAL_EVENTS and events.get(name) is False
        ]
        if problems:
            raise InvalidInput("Invalid notification preferences.", problems)
        return cls(
            channels={c: bool(channels.get(c.value, True)) for c in Channel},
            events={name: bool(events.get(name, True)) for name in NOTIFIABLE_EVENTS},
        )

    def channels_for(self, event_type: str) -> tuple[Channel, ...]:
        """The channels to tell the customer about ``event_type`` on, in a stable order."""
        if event_type not in NOTIFIABLE_EVENTS:
            return ()
        if event_type in TRANSACTIONAL_EVENTS:
            return tuple(c for c in Channel if c is Channel.EMAIL or self.channels.get(c, True))
        if not self.events.get(event_type, True):
            return ()
        return tuple(c for c in Channel if self.channels.get(c, True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "channels": {c.value: bool(self.channels.get(c, True)) for c in Channel},
            "events": {
                name: name in TRANSACTIONAL_EVENTS or bool(self.events.get(name, True))
                for name in NOTIFIABLE_EVENTS
            },
        }


# --- devices ----------------------------------------------------------------------------------


def device_id_for(platform: PushPlatform, token: str) -> str:
    """A stable id for one app install: the same token always names the same device."""
    digest = hashlib.sha256(f"{PushPlatform(platform).value}:{token}".encode()).hexdigest()
    return "dev_" + digest[:32]


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    customer_id: str
    platform: PushPlatform
    endpoint_arn: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "platform": self.platform.value}


# --- the inbox --------------------------------------------------------------------------------


def notification_id_for(event_id: str, channel: Channel) -> str:
    """One id per (event, channel): a redelivered event cannot add a second inbox entry."""
    digest = hashlib.sha256(f"{event_id}:{Channel(channel).value}".encode()).hexdigest()
    return "ntf_" + digest[:32]


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A message as it was sent, for the customer to read again in the app."""

    notification_id: str
    customer_id: str
    event_id: str
    event_type: str
    channel: Channel
    subject: str
    body: str
    sent_at: datetime
    order_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "channel": self.channel.value,
            "subject": self.subject,
            "body": self.body,
            "sent_at": self.sent_at.isoformat().replace("+00:00", "Z"),
            "order_id": self.order_id,
        }


# --- what a message says ----------------------------------------------------------------------

BRAND = "orderdesk"
# One GSM-7 segment; a Chinese text of this length is three UCS-2 segments, still one message.
SMS_MAX_CHARS = 160
_ELLIPSIS = "…"

_SYMBOLS = {"CNY": "¥", "USD": "US$", "HKD": "HK$", "EUR": "€", "GBP": "£", "JPY": "JP¥"}


def format_money(money: Money) -> str:
    """``¥1,234.50``: the currency's symbol (else its code after the number), thousands
    separators and exactly the currency's minor-unit digits; integer maths only."""
    digits = money.minor_unit_digits
    major, minor = divmod(abs(money.amount), 10**digits)
    number = f"{major:,}" + (f".{minor:0{digits}d}" if digits else "")
    sign = "-" if money.amount < 0 else ""
    symbol = _SYMBOLS.get(money.currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {money.currency}"


def order_url(storefront_url: str, order_id: str) -> str | None:
    """The order's page on the storefront, if the storefront's address is known."""
    base = storefront_url.strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        return None
    return f"{base}/orders/{quote(order_id, safe='')}"


def review_url(storefront_url: str, order_id: str, sku: str | None = None) -> str | None:
    """The storefront's page to review an order's delivered lines (one line with ``sku``)."""
    base = order_url(storefront_url, order_id)
    if base is None:
        return None
    return f"{base}/review" + (f"?sku={quote(sku, safe='')}" if sku else "")


def _web_link(value: Any) -> str | None:
    # Only web links reach a customer: a carrier's "javascript:" would be someone's attack.
    if isinstance(value, str) and value.startswith(("https://", "http://")) and " " not in value:
        return value
    return None


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One line a customer recognises: the product's name (else its SKU) and how many."""

    name: str
    quantity: int
    amount: Money | None = None  # the line's total, when the order is known
    review_url: str | None = None  # where to review this line, once it is delivered


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Everything a message about one event may mention; what is missing is left out."""

    event_type: str
    order_id: str
    items: tuple[ItemLine, ...] = ()
    subtotal: Money | None = None
    shipping_fee: Money | None = None
    total: Money | None = None
    refund: Money | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    order_url: str | None = None
    recipient_name: str | None = None
    # The page to review what was delivered (delivered parcels only).
    review_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracking_url", _web_link(self.tracking_url))
        object.__setattr__(self, "order_url", _web_link(self.order_url))
        object.__setattr__(self, "review_url", _web_link(self.review_url))

    @property
    def link(self) -> str | None:
        """The one link a short message carries: the parcel while it travels, the review
        page once it arrived, else the order."""
        if self.event_type in SHIPMENT_EVENTS and self.event_type != SHIPMENT_DELIVERED:
            return self.tracking_url or self.order_url
        if self.event_type == SHIPMENT_DELIVERED and self.review_url:
            return self.review_url
        return self.order_url or self.tracking_url


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    channel: Channel
    subject: str  # the email subject, the push title; for SMS, the inbox heading
    body: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class _Wording:
    subject: str
    headline: str
    short: str
    # The short line with the amount that matters for this event, when it is known.
    short_with_amount: str | None = None


# Every template may use {order_id}; short_with_amount also uses {amount}.
_WORDING: Mapping[str, Mapping[str, _Wording]] = {
    ORDER_PLACED: {
        ZH_CN: _Wording(
            "订单 {order_id} 已提交，待付款",
            "感谢您的订购！我们已收到订单 {order_id}。请在付款期限内完成支付，"
            "逾期未付款的订单将自动关闭。",
            "订单{order_id}已提交，请尽快付款。",
            "订单{order_id}已提交，应付{amount}，请尽快付款。",
        ),
        EN: _Wording(
            "Order {order_id} received, awaiting payment",
            "Thank you for your order! We have received order {order_id}. Please pay within "
            "the payment window; unpaid orders are closed automatically.",
            "Order {order_id} received. Please pay soon.",
            "Order {order_id} received, {amount} due.",
        ),
    },
    ORDER_PAID: {
        ZH_CN: _Wording(
            "订单 {order_id} 支付成功",
            "我们已收到订单 {order_id} 的付款，正在为您备货，发货后会第一时间通知您。",
            "订单{order_id}支付成功，正在备货。",
            "订单{order_id}已支付{amount}，正在备货。",
        ),
        EN: _Wording(
            "Payment received for order {order_id}",
            "We have received payment for order {order_id} and are getting it ready. We will "
            "tell you as soon as it ships.",
            "Order {order_id} paid; we are getting it ready.",
            "Order {order_id} paid: {amount}. Thank you!",
        ),
    },
    SHIPMENT_SHIPPED: {
        ZH_CN: _Wording(
            "订单 {order_id} 已发货",
            "您的订单 {order_id} 已发货，正在运往您的收货地址。",
            "订单{order_id}已发货。",
        ),
        EN: _Wording(
            "Order {order_id} has shipped",
            "Good news: your order {order_id} has shipped and is on its way to you.",
            "Order {order_id} has shipped.",
        ),
    },
    SHIPMENT_OUT_FOR_DELIVERY: {
        ZH_CN: _Wording(
            "订单 {order_id} 正在派送",
            "您的订单 {order_id} 正在派送中，预计今天送达，请保持电话畅通。",
            "订单{order_id}正在派送，请保持电话畅通。",
        ),
        EN: _Wording(
            "Order {order_id} is out for delivery",
            "Your order {order_id} is out for delivery and should arrive today. Please keep "
            "your phone at hand.",
            "Order {order_id} is out for delivery today.",
        ),
    },
    SHIPMENT_DELIVERED: {
        ZH_CN: _Wording(
            "订单 {order_id} 已送达",
            "您的订单 {order_id} 已送达，感谢您的惠顾！如有任何问题，欢迎随时联系我们。",
            "订单{order_id}已送达，感谢惠顾。",
        ),
        EN: _Wording(
            "Order {order_id} has been delivered",
            "Your order {order_id} has been delivered. Thank you for shopping with us! If "
            "anything is wrong, just contact us.",
            "Order {order_id} has been delivered. Thank you!",
        ),
    },
    SHIPMENT_EXCEPTION: {
        ZH_CN: _Wording(
            "订单 {order_id} 配送异常",
            "您的订单 {order_id} 在配送途中遇到问题，我们正在与承运商跟进处理，会及时告知您进展。",
            "订单{order_id}配送异常，我们正在跟进处理。",
        ),
        EN: _Wording(
            "A problem with the delivery of order {order_id}",
            "The delivery of your order {order_id} has run into a problem. We are following "
            "it up with the carrier and will keep you posted.",
            "Delivery problem with order {order_id}; we are on it.",
        ),
    },
    ORDER_CANCELLED: {
        ZH_CN: _Wording(
            "订单 {order_id} 已取消",
            "您的订单 {order_id} 已取消。如您已付款，款项将原路退回。",
            "订单{order_id}已取消，如已付款将原路退回。",
        ),
        EN: _Wording(
            "Order {order_id} has been cancelled",
            "Your order {order_id} has been cancelled. If you had paid, the money goes back "
            "to your original payment method.",
            "Order {order_id} has been cancelled.",
        ),
    },
    ORDER_EXPIRED: {
        ZH_CN: _Wording(
            "订单 {order_id} 因超时未付款已关闭",
            "订单 {order_id} 未在付款期限内完成支付，已自动关闭，您未被扣款。"
            "如仍需要，请重新下单。",
            "订单{order_id}超时未付款，已自动关闭。",
        ),
        EN: _Wording(
            "Order {order_id} closed: payment not received in time",
            "We did not receive payment for order {order_id} in time, so it has been closed "
            "and you have not been charged. Please order again if you still want the items.",
            "Order {order_id} closed: not paid in time.",
        ),
    },
    PAYMENT_REFUNDED: {
        ZH_CN: _Wording(
            "订单 {order_id} 已退款",
            "我们已为订单 {order_id} 办理退款，款项将原路退回您的支付账户，"
            "到账时间以支付渠道为准。",
            "订单{order_id}已退款，将原路退回。",
            "订单{order_id}已退款{amount}，将原路退回。",
        ),
        EN: _Wording(
            "Refund issued for order {order_id}",
            "We have refunded your payment for order {order_id}. It goes back to your "
            "original payment method; when it arrives depends on your bank or wallet.",
            "Order {order_id} refunded.",
            "Order {order_id}: {amount} refunded.",
        ),
    },
    REVIEW_REPLIED: {
        ZH_CN: _Wording(
            "商家回复了您对订单 {order_id} 商品的评价",
            "感谢您对订单 {order_id} 中商品的评价，商家已回复，欢迎查看。",
            "商家回复了您对订单{order_id}商品的评价。",
        ),
        EN: _Wording(
            "We replied to your review (order {order_id})",
            "Thank you for reviewing an item from order {order_id}. We have replied to your "
            "review; have a look.",
            "We replied to your review of order {order_id}.",
        ),
    },
    AFTER_SALES_REQUESTED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后申请已提交",
            "我们已收到您对订单 {order_id} 的售后申请，客服会尽快审核。",
            "订单{order_id}售后申请已提交，等待审核。",
        ),
        EN: _Wording(
            "After-sales request for order {order_id} received",
            "We have received your after-sales request for order {order_id}; our service "
            "team will review it shortly.",
            "After-sales request for order {order_id} received.",
        ),
    },
    AFTER_SALES_APPROVED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后申请已通过",
            "您对订单 {order_id} 的售后申请已审核通过。如需寄回商品，请在 7 天内寄出并填写运单号，"
            "逾期申请将自动关闭。",
            "订单{order_id}售后申请已通过。",
        ),
        EN: _Wording(
            "After-sales request for order {order_id} approved",
            "Your after-sales request for order {order_id} has been approved. If the goods go "
            "back to us, please send them within 7 days and enter the tracking number; after "
            "that the request closes.",
            "After-sales request for order {order_id} approved.",
        ),
    },
    AFTER_SALES_REJECTED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后申请未通过",
            "很抱歉，您对订单 {order_id} 的售后申请未通过审核。如有疑问，请联系客服。",
            "订单{order_id}售后申请未通过，如有疑问请联系客服。",
        ),
        EN: _Wording(
            "After-sales request for order {order_id} declined",
            "We are sorry: your after-sales request for order {order_id} was not approved. "
            "Please contact us if you have questions.",
            "After-sales request for order {order_id} declined.",
        ),
    },
    AFTER_SALES_RECEIVED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的退回商品已签收",
            "我们已收到您为订单 {order_id} 寄回的商品，正在处理。",
            "订单{order_id}退回商品已签收，正在处理。",
        ),
        EN: _Wording(
            "Returned goods for order {order_id} received",
            "We have received the goods you sent back for order {order_id} and are handling "
            "them now.",
            "Returned goods for order {order_id} received.",
        ),
    },
    AFTER_SALES_REFUNDED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后退款已完成",
            "订单 {order_id} 的售后退款已完成，款项将原路退回您的支付账户。",
            "订单{order_id}售后退款已完成，将原路退回。",
        ),
        EN: _Wording(
            "After-sales refund for order {order_id} completed",
            "The after-sales refund for order {order_id} is done; the money goes back to your "
            "original payment method.",
            "After-sales refund for order {order_id} completed.",
        ),
    },
    AFTER_SALES_EXCHANGE_SHIPPED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的换货已发出",
            "您为订单 {order_id} 换的商品已发出，请注意查收。",
            "订单{order_id}换货已发出。",
        ),
        EN: _Wording(
            "Your exchange for order {order_id} has shipped",
            "The replacement for order {order_id} has shipped and is on its way to you.",
            "Exchange for order {order_id} has shipped.",
        ),
    },
    AFTER_SALES_REPAIR_SHIPPED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的维修商品已寄回",
            "您为订单 {order_id} 送修的商品已修好并寄回，请注意查收。",
            "订单{order_id}维修商品已寄回。",
        ),
        EN: _Wording(
            "Your repaired item from order {order_id} is on its way",
            "The item from order {order_id} has been repaired and is on its way back to you.",
            "Repaired item from order {order_id} shipped back.",
        ),
    },
    AFTER_SALES_COMPLETED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后已完成",
            "订单 {order_id} 的售后服务已完成，感谢您的耐心。",
            "订单{order_id}售后已完成。",
        ),
        EN: _Wording(
            "After-sales for order {order_id} completed",
            "The after-sales service for order {order_id} is complete. Thank you for your "
            "patience.",
            "After-sales for order {order_id} completed.",
        ),
    },
    AFTER_SALES_CLOSED: {
        ZH_CN: _Wording(
            "订单 {order_id} 的售后申请已关闭",
            "订单 {order_id} 的售后申请在审核通过后 7 天内未收到寄回运单号，已自动关闭。",
            "订单{order_id}售后申请已自动关闭。",
        ),
        EN: _Wording(
            "After-sales request for order {order_id} closed",
            "No return parcel was reported within 7 days of approval, so the after-sales "
            "request for order {order_id} has been closed.",
            "After-sales request for order {order_id} closed.",
        ),
    },
}


@dataclass(frozen=True, slots=True)
class _Labels:
    greeting: str
    greeting_named: str
    order_number: str
    items: str
    subtotal: str
    shipping: str
    total: str
    refund: str
    carrier: str
    tracking_number: str
    track: str
    view_order: str
    review_items: str
    review_line: str
    sms_tracking: str
    sms_link: str
    sms_brand: str
    sms_separator: str  # between the parts of a short line
    footer: str
    preferences: str


_LABELS: Mapping[str, _Labels] = {
    ZH_CN: _Labels(
        greeting="您好：",
        greeting_named="{name}，您好：",
        order_number="订单号：",
        items="商品：",
        subtotal="商品金额：",
        shipping="运费：",
        total="订单金额：",
        refund="退款金额：",
        carrier="承运商：",
        tracking_number="运单号：",
        track="物流跟踪：",
        view_order="查看订单：",
        review_items="商品用得怎么样？欢迎评价：",
        review_line="    评价：",
        sms_tracking="{carrier} 运单号 {number}。",
        sms_link="详情：{link}",
        sms_brand="【" + BRAND + "】",
        sms_separator="",
        footer="—— " + BRAND + "\n此邮件由系统自动发送，请勿直接回复。",
        preferences="您可以在账户的通知设置中选择接收哪些消息。",
    ),
    EN: _Labels(
        greeting="Hello,",
        greeting_named="Hi {name},",
        order_number="Order number: ",
        items="Items:",
        subtotal="Subtotal: ",
        shipping="Shipping: ",
        total="Order total: ",
        refund="Refund: ",
        carrier="Carrier: ",
        tracking_number="Tracking number: ",
        track="Track your parcel: ",
        view_order="View your order: ",
        review_items="How are your items? Tell other shoppers: ",
        review_line="    Review: ",
        sms_tracking="{carrier} tracking {number}.",
        sms_link="Details: {link}",
        sms_brand="[" + BRAND + "] ",
        sms_separator=" ",
        footer="— " + BRAND + "\nThis message was sent automatically; please do not reply.",
        preferences="You can choose which updates you receive in your account settings.",
    ),
}


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def _wording(event_type: str, locale: str) -> _Wording:
    try:
        return _WORDING[event_type][_locale(locale)]
    except KeyError:
        raise ValueError(f"no wording for event {event_type!r}") from None


def _amount_for(facts: MessageFacts) -> Money | None:
    if facts.event_type == PAYMENT_REFUNDED:
        return facts.refund
    if facts.event_type in (ORDER_PLACED, ORDER_PAID):
        return facts.total
    return None


def _short_line(facts: MessageFacts, locale: str) -> str:
    wording = _wording(facts.event_type, locale)
    amount = _amount_for(facts)
    if amount is not None and wording.short_with_amount:
        return wording.short_with_amount.format(
            order_id=facts.order_id, amount=format_money(amount)
        )
    return wording.short.format(order_id=facts.order_id)


def _tracking_clause(facts: MessageFacts, labels: _Labels) -> str:
    if facts.event_type not in SHIPMENT_EVENTS or not facts.tracking_number:
        return ""
    carrier = facts.carrier or ""
    clause = labels.sms_tracking.format(carrier=carrier, number=facts.tracking_number)
    return clause.strip()


def _short_text(facts: MessageFacts, locale: str, *, with_brand: bool, with_link: bool) -> str:
    """One line within ``SMS_MAX_CHARS``: what happened, then tracking, then the link; when
    that is too long the tracking number goes first, then the link, then the line is cut."""
    labels = _LABELS[_locale(locale)]
    head = (labels.sms_brand if with_brand else "") + _short_line(facts, locale)
    link = labels.sms_link.format(link=facts.link) if with_link and facts.link else ""
    tracking = _tracking_clause(facts, labels)
    for parts in ((head, tracking, link), (head, link), (head, tracking), (head,)):
        text = labels.sms_separator.join(part for part in parts if part)
        if len(text) <= SMS_MAX_CHARS:
            return text
    return head[: SMS_MAX_CHARS - len(_ELLIPSIS)] + _ELLIPSIS


def _email_body(facts: MessageFacts, locale: str) -> str:
    labels = _LABELS[_locale(locale)]
    wording = _wording(facts.event_type, locale)
    greeting = (
        labels.greeting_named.format(name=facts.recipient_name)
        if facts.recipient_name
        else labels.greeting
    )
    lines = [greeting, "", wording.headline.format(order_id=facts.order_id), ""]
    lines.append(labels.order_number + facts.order_id)
    if facts.items:
        lines.append(labels.items)
        for item in facts.items:
            amount = f"  {format_money(item.amount)}" if item.amount is not None else ""
            lines.append(f"  · {item.name} × {item.quantity}{amount}")
            if item.review_url and _web_link(item.review_url):
                lines.append(labels.review_line + item.review_url)
    for label, money in (
        (labels.subtotal, facts.subtotal),
        (labels.shipping, facts.shipping_fee),
        (labels.total, facts.total),
        (labels.refund, facts.refund),
    ):
        if money is not None:
            lines.append(label + format_money(money))
    if facts.carrier:
        lines.append(labels.carrier + facts.carrier)
    if facts.tracking_number:
        lines.append(labels.tracking_number + facts.tracking_number)
    if facts.tracking_url:
        lines.append(labels.track + facts.tracking_url)
    if facts.order_url:
        lines.append(labels.view_order + facts.order_url)
    if facts.review_url:
        lines.append(labels.review_items + facts.review_url)
    lines += ["", labels.footer]
    if facts.event_type not in TRANSACTIONAL_EVENTS:
        lines.append(labels.preferences)
    return "\n".join(lines)


def render(facts: MessageFacts, channel: Channel, locale: str) -> RenderedMessage:
    """The message about ``facts`` for ``channel``, in ``locale`` (zh-CN unless en)."""
    subject = _wording(facts.event_type, locale).subject.format(order_id=facts.order_id)
    channel = Channel(channel)
    if channel is Channel.EMAIL:
        body = _email_body(facts, locale)
    elif channel is Channel.SMS:
        body = _short_text(facts, locale, with_brand=True, with_link=True)
    else:
        body = _short_text(facts, locale, with_brand=False, with_link=False)
    return RenderedMessage(channel=channel, subject=subject, body=body, link=facts.link)


# --- support replies ----------------------------------------------------------------------------

# A person from support answered a customer who had no live connection open. Not an order
# event: it follows the channel switches and has no per-event preference.
SUPPORT_REPLY_POSTED = "support.reply_posted"

_SUPPORT_WORDING: Mapping[str, tuple[str, str, str]] = {
    # subject, email headline, short line; each may use {subject} and {excerpt}
    ZH_CN: (
        "客服回复了您的咨询：{subject}",
        "客服回复了您的咨询“{subject}”：",
        "客服回复了您的咨询“{subject}”：{excerpt}",
    ),
    EN: (
        "Support replied: {subject}",
        "Our support team replied to \u201c{subject}\u201d:",
        "Support replied to \u201c{subject}\u201d: {excerpt}",
    ),
}


def render_support_reply(
    channel: Channel, locale: str, *, subject: str, excerpt: str
) -> RenderedMessage:
    """The message telling a customer that support answered them (text only, no link)."""
    labels = _LABELS[_locale(locale)]
    title, headline, short = _SUPPORT_WORDING[_locale(locale)]
    channel = Channel(channel)
    if channel is Channel.EMAIL:
        lines = [labels.greeting, "", headline.format(subject=subject), "", excerpt, ""]
        body = "\n".join([*lines, labels.footer])
    else:
        line = short.format(subject=subject, excerpt=" ".join(excerpt.split()))
        if channel is Channel.SMS:
            line = labels.sms_brand + line
        if len(line) > SMS_MAX_CHARS:
            line = line[: SMS_MAX_CHARS - len(_ELLIPSIS)] + _ELLIPSIS
        body = line
    return RenderedMessage(channel=channel, subject=title.format(subject=subject), body=body)
