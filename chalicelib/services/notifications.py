"""Telling a customer about an order event: on each channel they want, at most once each.

``notify(event)`` reads who the customer is and what they want to hear
(``NotificationPreferences``; transactional events always go by email), works out what to
say (the order and product names from the store when the event's payload lacks them) and
sends one message per channel that has an address (for email and SMS, a verified one: a
contact typed in and not confirmed with a code is skipped): email (SES), SMS (SNS), push (SNS, to
every registered device).

At most once per (event, channel), even when the queue delivers a message twice or the
process dies: before sending, the attempt is recorded (a conditional delivery claim); after
sending, the claim is marked sent in the same transaction that writes the inbox entry. A
channel that fails gives its claim back and the others still go out; ``DeliveryFailed``
then tells the caller to have the message retried, and the retry skips the channels
already sent. When one of several push devices fails, the claim remembers the devices that
got it, and the retry sends only to the others. Should the process die between recording
the attempt and recording the send, nobody can know whether the message went out (SES and
SNS take no idempotency key): the redelivery finds the attempt past its lease, marks it
``unknown`` (``Outcome.unknown``) and does not send it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import notifications as channels
from chalicelib.domain.catalogue import ID_PATTERN
from chalicelib.domain.errors import DomainError, NotFound
from chalicelib.domain.money import Money
from chalicelib.domain.notifications import (
    DEFAULT_LOCALE,
    NOTIFIABLE_EVENTS,
    ORDER_PAID,
    ORDER_PLACED,
    PAYMENT_REFUNDED,
    REVIEW_REPLIED,
    SHIPMENT_DELIVERED,
    SHIPMENT_EVENTS,
    SUPPORT_REPLY_POSTED,
    Channel,
    InboxEntry,
    ItemLine,
    MessageFacts,
    NotificationPreferences,
    RenderedMessage,
    notification_id_for,
    order_url,
    render,
    render_support_reply,
    review_url,
)
from chalicelib.domain.orders import Order
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings
from chalicelib.store import customers as customer_store
from chalicelib.store import orders as order_store
from chalicelib.store import outbox
from chalicelib.store.catalogue import ProductRepository
from chalicelib.store.customers import ClaimOutcome

# Shorter than the queue's visibility timeout (360 s), so the redelivery that follows a
# crash finds the claim free again.
CLAIM_LEASE = timedelta(minutes=5)


class MalformedEvent(ValueError):
    """The message cannot be read as an event; retrying it will not help."""


class DeliveryFailed(Exception):
    """Some channels could not be sent now; the message should be delivered again."""

    def __init__(self, event_id: str, failed: Sequence[Channel]) -> None:
        names = ", ".join(channel.value for channel in failed)
        super().__init__(f"event {event_id}: not sent on {names}")
        self.event_id = event_id
        self.failed = tuple(failed)


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """An outbox event as the notifications queue carries it."""

    event_id: str
    type: str
    payload: Mapping[str, Any]

    @property
    def order_id(self) -> str | None:
        value = self.payload.get("order_id")
        return value if isinstance(value, str) else None

    @property
    def customer_id(self) -> str | None:
        value = self.payload.get("customer_id")
        return value if isinstance(value, str) else None


def parse_event(body: str | bytes) -> NotificationEvent:
    """The event in a queue message body ``{"event_id", "type", "occurred_at", "payload"}``."""
    try:
        event = outbox.event_from_message(body)
    except outbox.MalformedMessage as exc:
        raise MalformedEvent(str(exc)) from None
    if not ID_PATTERN.fullmatch(event.event_id):
        raise MalformedEvent("the event has no usable event_id")
    return NotificationEvent(event_id=event.event_id, type=event.type, payload=event.payload)


@dataclass(frozen=True, slots=True)
class Outcome:
    event_id: str
    event_type: str
    ignored: bool = False  # not an event customers hear about
    sent: tuple[Channel, ...] = ()
    already_sent: tuple[Channel, ...] = ()
    # Wanted, but no address (no email, no phone, no device) or every address unreachable.
    unreachable: tuple[Channel, ...] = ()
    # An earlier attempt died mid-send: it may have gone out, and is not sent again.
    unknown: tuple[Channel, ...] = ()
    # Wanted, but the contact is not verified: skipped, nothing sent.
    unverified: tuple[Channel, ...] = ()
    # Wanted, but SES reported the address as bouncing or complaining: skipped.
    undeliverable: tuple[Channel, ...] = ()


@dataclass
class _Progress:
    unreachable: list[Channel] = field(default_factory=list)
    sent: list[Channel] = field(default_factory=list)
    already_sent: list[Channel] = field(default_factory=list)
    failed: list[Channel] = field(default_factory=list)
    unknown: list[Channel] = field(default_factory=list)
    unverified: list[Channel] = field(default_factory=list)
    undeliverable: list[Channel] = field(default_factory=list)

    def outcome(self, event: NotificationEvent) -> Outcome:
        return Outcome(
            event.event_id,
            event.type,
            sent=tuple(self.sent),
            already_sent=tuple(self.already_sent),
            unreachable=tuple(self.unreachable),
            unknown=tuple(self.unknown),
            unverified=tuple(self.unverified),
            undeliverable=tuple(self.undeliverable),
        )


def notify(
    event: NotificationEvent,
    *,
    senders: Mapping[Channel, channels.Sender] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Tell the event's customer about it; ``DeliveryFailed`` if a channel must be retried."""
    if event.type == SUPPORT_REPLY_POSTED:
        return _notify_support_reply(event, senders=senders, now=now)
    if event.type not in NOTIFIABLE_EVENTS:
        return Outcome(event.event_id, event.type, ignored=True)
    order_id, customer_id = event.order_id, event.customer_id
    if not order_id or not ID_PATTERN.fullmatch(order_id):
        raise MalformedEvent(f"{event.type} without a usable order_id")
    if not customer_id or not ID_PATTERN.fullmatch(customer_id):
        raise MalformedEvent(f"{event.type} without a usable customer_id")

    recipient = customer_store.get_recipient(customer_id)
    preferences = recipient.preferences or NotificationPreferences()
    wanted = preferences.channels_for(event.type)
    addresses = _addresses(customer_id, recipient, wanted)
    progress = _skipped(recipient, wanted, addresses)
    if not any(addresses.values()):
        return progress.outcome(event)

    profile = recipient.profile
    locale = profile.locale if profile else DEFAULT_LOCALE
    facts = _facts(event, order_id, customer_id, locale, profile.name if profile else None)
    notification = _Notification(
        event=event,
        customer_id=customer_id,
        compose=lambda channel: render(facts, channel, locale),
        order_id=order_id,
        senders=senders if senders is not None else channels.senders(),
        at=now or datetime.now(UTC),
    )
    for channel, channel_addresses in addresses.items():
        if channel_addresses:
            notification.deliver(channel, channel_addresses, progress)
    if progress.failed:
        raise DeliveryFailed(event.event_id, progress.failed)
    return progress.outcome(event)


def _notify_support_reply(
    event: NotificationEvent,
    *,
    senders: Mapping[Channel, channels.Sender] | None,
    now: datetime | None,
) -> Outcome:
    """A support reply for a customer who was not connected: on the channels they have on."""
    payload = event.payload
    customer_id = event.customer_id
    if not customer_id or not ID_PATTERN.fullmatch(customer_id):
        raise MalformedEvent(f"{event.type} without a usable customer_id")
    subject = _text(payload.get("subject"), 200) or ""
    excerpt = _text(payload.get("body"), 500) or ""
    recipient = customer_store.get_recipient(customer_id)
    preferences = recipient.preferences or NotificationPreferences()
    wanted = [channel for channel in Channel if preferences.channels.get(channel, True)]
    addresses = _addresses(customer_id, recipient, wanted)
    progress = _skipped(recipient, wanted, addresses)
    if not any(addresses.values()):
        return progress.outcome(event)
    locale = recipient.profile.locale if recipient.profile else DEFAULT_LOCALE
    notification = _Notification(
        event=event,
        customer_id=customer_id,
        compose=lambda channel: render_support_reply(
            channel, locale, subject=subject, excerpt=excerpt
        ),
        order_id=_text(payload.get("order_id"), 64),
        senders=senders if senders is not None else channels.senders(),
        at=now or datetime.now(UTC),
    )
    for channel, channel_addresses in addresses.items():
        if channel_addresses:
            notification.deliver(channel, channel_addresses, progress)
    if progress.failed:
        raise DeliveryFailed(event.event_id, progress.failed)
    return progress.outcome(event)


def _addresses(
    customer_id: str, recipient: customer_store.Recipient, wanted: Sequence[Channel]
) -> dict[Channel, list[str]]:
    """Where each wanted channel reaches the customer (none: the channel is skipped).

    Email and SMS go only to a verified contact: an address typed in and not confirmed with
    a code gets nothing, so nobody can have the shop message a stranger."""
    profile = recipient.profile
    addresses: dict[Channel, list[str]] = {}
    for channel in wanted:
        if channel in (Channel.EMAIL, Channel.SMS):
            address = profile.verified_address(channel) if profile else None
            addresses[channel] = [address] if address else []
        else:
            addresses[channel] = [d.endpoint_arn for d in customer_store.devices_of(customer_id)]
    return addresses


def _skipped(
    recipient: customer_store.Recipient,
    wanted: Sequence[Channel],
    addresses: Mapping[Channel, Sequence[str]],
) -> _Progress:
    """The wanted channels that go nowhere: an address SES reported undeliverable, an
    unverified contact, or no address at all."""
    profile = recipient.profile
    progress = _Progress()
    for channel in wanted:
        if addresses[channel]:
            continue
        if channel is Channel.EMAIL and profile is not None and profile.email_undeliverable:
            logger.info("email undeliverable; skipped", extra={"channel": channel.value})
            count("NotificationsSkippedUndeliverable", channel=channel.value)
            progress.undeliverable.append(channel)
            continue
        typed_in = profile is not None and (
            (channel is Channel.EMAIL and profile.email is not None)
            or (channel is Channel.SMS and profile.phone is not None)
        )
        if typed_in:
            logger.info("contact not verified; skipped", extra={"channel": channel.value})
            count("NotificationsSkippedUnverified", channel=channel.value)
            progress.unverified.append(channel)
        else:
            progress.unreachable.append(channel)
    return progress


@dataclass(frozen=True, slots=True)
class _Notification:
    """One event's message to one customer, ready to go out on each channel."""

    event: NotificationEvent
    customer_id: str
    compose: Callable[[Channel], RenderedMessage]
    order_id: str | None
    senders: Mapping[Channel, channels.Sender]
    at: datetime

    def deliver(self, channel: Channel, addresses: Sequence[str], progress: _Progress) -> None:
        """Send ``channel``'s message under a claim, then record it in the inbox."""
        event_id = self.event.event_id
        claim_id = uuid.uuid4().hex
        claim = customer_store.claim_delivery_attempt(
            event_id, channel, claim_id, now=self.at, lease=CLAIM_LEASE
        )
        if claim.outcome is ClaimOutcome.ALREADY_SENT:
            progress.already_sent.append(channel)
            return
        if claim.outcome is ClaimOutcome.UNKNOWN:
            logger.warning(
                "an earlier attempt died mid-send; not sending again",
                extra={"channel": channel.value},
            )
            progress.unknown.append(channel)
            return
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            # Another delivery of this message is sending it now; look again on the retry.
            logger.info("delivery claimed elsewhere", extra={"channel": channel.value})
            progress.failed.append(channel)
            return

        message = self.compose(channel)
        remaining = [address for address in addresses if not claim.reached(address)]
        provider_ids, reached, failed = self._send(channel, remaining, message)
        if failed:
            # Give the claim back, remembering who has it, so the retry sends to the rest.
            done = claim.done | {customer_store.address_digest(a) for a in reached}
            customer_store.release_delivery(event_id, channel, claim_id, done=done)
            progress.failed.append(channel)
            return
        if not provider_ids and not claim.done:
            customer_store.release_delivery(event_id, channel, claim_id)
            progress.unreachable.append(channel)
            return

        entry = InboxEntry(
            notification_id=notification_id_for(event_id, channel),
            customer_id=self.customer_id,
            event_id=event_id,
            event_type=self.event.type,
            channel=channel,
            subject=message.subject,
            body=message.body,
            sent_at=self.at,
            order_id=self.order_id,
        )
        if not customer_store.record_delivery(
            event_id, channel, claim_id, [entry], provider_ids=provider_ids, at=self.at
        ):
            logger.warning(
                "delivery claim lost before it was recorded", extra={"channel": channel.value}
            )
        logger.info("notification sent", extra={"channel": channel.value})
        count("NotificationsSent", channel=channel.value)
        progress.sent.append(channel)

    def _send(
        self, channel: Channel, addresses: Sequence[str], message: RenderedMessage
    ) -> tuple[list[str], list[str], list[str]]:
        """(provider message ids, addresses reached, addresses that failed); addresses that
        cannot receive are skipped."""
        sender = self.senders[channel]
        provider_ids: list[str] = []
        reached: list[str] = []
        failed: list[str] = []
        for address in addresses:
            try:
                provider_ids.append(sender.send(address, message))
            except channels.RecipientUnreachable:
                logger.info("recipient unreachable", extra={"channel": channel.value})
                continue
            except Exception:  # noqa: BLE001 - any provider failure: this address is retried
                logger.exception("sending failed", extra={"channel": channel.value})
                failed.append(address)
                continue
            reached.append(address)
        return provider_ids, reached, failed


# --- what to say -------------------------------------------------------------------------------


def _money(value: Any) -> Money | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return Money(value.get("amount"), value.get("currency"))  # type: ignore[arg-type]
    except DomainError:
        return None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip()[:limit] or None


# After-sales messages name the request's lines (in the payload), not the whole order's.
AFTER_SALES_PREFIX = "after_sales."


def _order_for(order_id: str, customer_id: str) -> Order | None:
    order = order_store.get_order(order_id, consistent=True)
    if order is not None and order.customer_id != customer_id:
        # Never tell one customer about another's order, whatever the event says.
        raise MalformedEvent("the event's customer does not own its order")
    return order


def _lines(event: NotificationEvent, order: Order | None) -> list[tuple[str, int, Money | None]]:
    """(sku, quantity, line total) of what the message is about."""
    if order is not None and event.type in SHIPMENT_EVENTS:
        shipment_id = event.payload.get("shipment_id")
        try:
            shipment = order.shipment(str(shipment_id)) if shipment_id else None
        except NotFound:
            shipment = None
        if shipment is not None:
            return [(line.sku, line.quantity, None) for line in shipment.lines]
        return [(line.sku, line.quantity, None) for line in order.lines]
    if order is not None and event.type == REVIEW_REPLIED:
        # The reviewed product only.
        sku = event.payload.get("sku")
        return [(line.sku, line.quantity, None) for line in order.lines if line.sku == sku]
    if order is not None and not event.type.startswith(AFTER_SALES_PREFIX):
        return [(line.sku, line.quantity, line.line_total) for line in order.lines]
    lines = []
    for line in event.payload.get("lines") or []:
        if isinstance(line, Mapping) and isinstance(line.get("sku"), str):
            quantity = line.get("quantity")
            if isinstance(quantity, int) and not isinstance(quantity, bool):
                lines.append((line["sku"], quantity, None))
    return lines


def _facts(
    event: NotificationEvent, order_id: str, customer_id: str, locale: str, name: str | None
) -> MessageFacts:
    payload = event.payload
    refund = None
    if event.type == PAYMENT_REFUNDED:
        refund = _money(payload.get("amount"))
        if refund is None:
            raise MalformedEvent("payment.refunded without an amount {amount, currency}")
    order = _order_for(order_id, customer_id)
    lines = _lines(event, order)
    products = ProductRepository().get_many(sku for sku, _, _ in lines) if lines else {}
    storefront = get_settings().storefront_url
    # A delivered parcel invites a review of each of its lines (a prompt, not an obligation).
    asks_review = event.type == SHIPMENT_DELIVERED and order is not None
    items = tuple(
        ItemLine(
            name=products[sku].name.in_locale(locale) if sku in products else sku,
            quantity=quantity,
            amount=amount,
            review_url=review_url(storefront, order_id, sku) if asks_review else None,
        )
        for sku, quantity, amount in lines
    )
    shows_order_amounts = event.type in (ORDER_PLACED, ORDER_PAID)
    shows_total = (
        event.type not in SHIPMENT_EVENTS
        and event.type != PAYMENT_REFUNDED
        and not event.type.startswith(AFTER_SALES_PREFIX)
    )
    total = order.total if order is not None else _money(payload.get("total"))
    return MessageFacts(
        event_type=event.type,
        order_id=order_id,
        items=items,
        subtotal=order.subtotal if order is not None and shows_order_amounts else None,
        shipping_fee=order.shipping_fee if order is not None and shows_order_amounts else None,
        total=total if shows_total else None,
        refund=refund,
        carrier=_text(payload.get("carrier"), 100),
        tracking_number=_text(payload.get("tracking_number"), 100),
        tracking_url=_text(payload.get("tracking_url"), 1000),
        order_url=order_url(storefront, order_id),
        recipient_name=name,
        review_url=review_url(storefront, order_id) if asks_review else None,
    )
