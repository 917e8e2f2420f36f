"""Crash at every step of the money and stock paths, replay what the platform would retry,
and end where the run without a crash ends.

Each test is one path, parametrized over the points where its handler can die (``faults``):
``None`` is the run without a crash, and every other point must end in the very same state.
After the crash the test replays what would really come next: the client's request with
the same Idempotency-Key, the provider's webhook retry (same event id), the queue's
redelivery of the message, or the retry schedule. The end state is checked on what matters:
one order, one charge, every refund owed made exactly once at the provider, no event
missing, and stock the stock audit proves balanced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from faults import Carrier, Faults, PaymentProvider, Sender, install, run
from test_orders_api import build_world, items_with_prefix, levels, order_body, receive

from chalicelib.adapters import notifications as channels
from chalicelib.domain.money import Money
from chalicelib.domain.notifications import Channel, ContactDetails, CustomerProfile
from chalicelib.domain.orders import OrderStatus
from chalicelib.domain.payments import PaymentStatus, RefundStatus
from chalicelib.services import (
    carrier_booking,
    fulfilment,
    notifications,
    orders,
    payments,
    refunds,
    stock,
    stock_audit,
)
from chalicelib.store import customers as customer_store
from chalicelib.store import orders as order_store
from chalicelib.store import outbox
from chalicelib.store import payments as payment_store

if TYPE_CHECKING:
    from conftest import Api

CUSTOMER = "customer-1"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:orderdesk-test-fulfilment"
EMAIL = "li.lei@example.com"


@dataclass
class Shop:
    api: Api
    faults: Faults
    provider: PaymentProvider
    carrier: Carrier
    sender: Sender
    deliveries: int = 0

    # --- what clients and providers send ------------------------------------------------

    def place(self, key: str) -> str:
        headers = {**self.api.token(CUSTOMER, "customers"), "Idempotency-Key": key}
        response = self.api.request("POST", "/orders", order_body({"MUG": 2}), headers)
        assert response.status_code == 201, response.json_body
        return str(response.json_body["order_id"])

    def pay(self, order_id: str, key: str) -> str:
        headers = {**self.api.token(CUSTOMER, "customers"), "Idempotency-Key": key}
        path = f"/orders/{order_id}/payments"
        response = self.api.request("POST", path, {"method": "alipay"}, headers)
        assert response.status_code in (200, 201), response.json_body
        return str(response.json_body["payment_id"])

    def webhook(self, payment_id: str, event_id: str) -> None:
        payment = payment_store.get_payment(payment_id)
        assert payment is not None
        body = {"event_id": event_id, "payment_id": payment_id, "amount": payment.amount.amount}
        response = self.api.request("POST", "/webhooks/payments/alipay", body)
        assert response.status_code == 200, response.body

    def cancel(self, order_id: str) -> None:
        path = f"/orders/{order_id}/cancel"
        response = self.api.request("POST", path, None, self.api.token(CUSTOMER, "customers"))
        assert response.status_code == 200, response.json_body

    def step(self, shipment_id: str, step: str) -> None:
        response = self.api.request("POST", f"/shipments/{shipment_id}/{step}", None, self.api.ops)
        assert response.status_code == 200, response.json_body

    def consume(self, event_type: str) -> None:
        """Deliver every recorded ``event_type`` event to the fulfilment queue's consumer."""
        records = []
        for event in events(event_type):
            self.deliveries += 1
            records.append(
                {
                    "messageId": f"m-{self.deliveries}",
                    "receiptHandle": f"h-{self.deliveries}",
                    "body": outbox.message_body(event),
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": QUEUE_ARN,
                    "awsRegion": REGION,
                }
            )
        result = self.api.client.lambda_.invoke("fulfil_orders", {"Records": records}).payload
        assert result == {"batchItemFailures": []}

    # --- a paid order, step by step ----------------------------------------------------

    def paid_order(self) -> tuple[str, str]:
        order_id = self.place("order-1")
        payment_id = self.pay(order_id, "pay-1")
        self.webhook(payment_id, "evt-paid")
        return order_id, payment_id


def events(event_type: str) -> list[outbox.OutboxEvent]:
    return [
        outbox.event_from_item(item)
        for item in items_with_prefix(outbox.OUTBOX_PREFIX)
        if item["type"]["S"] == event_type
    ]


def event_counts() -> Counter[str]:
    return Counter(item["type"]["S"] for item in items_with_prefix(outbox.OUTBOX_PREFIX))


def customer_orders() -> list[str]:
    page = order_store.customer_orders_page(CUSTOMER, status=None, limit=100, cursor=None)
    return [order.order_id for order in page.items]


def order_status(order_id: str) -> OrderStatus:
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    return order.status


def assert_stock_balanced() -> None:
    audit = stock_audit.audit_stock()
    assert audit.balanced, audit.as_dict()


@pytest.fixture
def shop(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    build_world()
    receive("MUG", "SH", 10)
    faults = install(monkeypatch)
    provider = PaymentProvider(faults)
    carrier = Carrier(faults)
    sender = Sender(faults)
    monkeypatch.setattr(payments, "get_provider", lambda method: provider)
    monkeypatch.setattr(refunds, "get_provider", lambda method: provider)

    class CarrierClient:
        @staticmethod
        def from_settings(settings: Any) -> Carrier:
            return carrier

    monkeypatch.setattr(carrier_booking, "Kuaidi100Client", CarrierClient)
    monkeypatch.setattr(
        channels, "senders", lambda: {c: sender for c in (Channel.EMAIL, Channel.SMS)}
    )
    yield Shop(api, faults, provider, carrier, sender)
    stock.forget_cached_warehouses()


def crashed_at(shop: Shop, point: str | None, action: Any, *args: Any, **kwargs: Any) -> None:
    """Run ``action`` with ``point`` armed; it must die there (or finish, for None)."""
    shop.faults.arm(point)
    crash = run(action, *args, **kwargs)
    assert (crash.point if crash else None) == point, shop.faults.passed
    shop.faults.arm(None)


# --- order placement ----------------------------------------------------------------------


@pytest.mark.parametrize("point", [None, "before_commit:1", "after_commit:1"])
def test_placing_an_order_again_after_a_crash_makes_one_order(shop: Shop, point: str) -> None:
    crashed_at(shop, point, shop.place, "order-1")

    order_id = shop.place("order-1")  # the client retries with its Idempotency-Key

    assert customer_orders() == [order_id]
    assert levels("MUG") == {"SH": (10, 2, 8)}
    assert event_counts()["order.placed"] == 1
    assert_stock_balanced()


# --- payment start ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        None,
        "before_commit:1",
        "after_commit:1",
        "before_provider:create_payment",
        "after_provider:create_payment",
    ],
)
def test_starting_a_payment_again_after_a_crash_makes_one_trade(shop: Shop, point: str) -> None:
    order_id = shop.place("order-1")
    crashed_at(shop, point, shop.pay, order_id, "pay-1")

    payment_id = shop.pay(order_id, "pay-1")  # the client retries with its Idempotency-Key
    shop.webhook(payment_id, "evt-paid")

    assert list(shop.provider.trades) == [payment_id]
    [payment] = payment_store.order_payments(order_id)
    assert payment.payment_id == payment_id
    assert payment.status is PaymentStatus.SUCCEEDED
    assert order_status(order_id) is OrderStatus.PAID
    assert event_counts()["order.paid"] == 1
    assert_stock_balanced()


# --- payment capture (webhook) --------------------------------------------------------------


@pytest.mark.parametrize("point", [None, "before_commit:1", "after_commit:1"])
def test_a_payment_webhook_retried_after_a_crash_pays_the_order_once(
    shop: Shop, point: str
) -> None:
    order_id = shop.place("order-1")
    payment_id = shop.pay(order_id, "pay-1")
    crashed_at(shop, point, shop.webhook, payment_id, "evt-paid")

    shop.webhook(payment_id, "evt-paid")  # the provider retries its notification

    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.status is PaymentStatus.SUCCEEDED
    assert payment.captured == payment.amount
    assert order_status(order_id) is OrderStatus.PAID
    assert event_counts()["order.paid"] == 1
    assert levels("MUG") == {"SH": (10, 2, 8)}
    assert_stock_balanced()


LATE_PAYMENT_REASONS = {
    "cancelled": "order cancelled",
    "expired": "order expired",
    "paid by another payment": "order already paid",
}


@pytest.mark.parametrize("ending", list(LATE_PAYMENT_REASONS))
@pytest.mark.parametrize("point", [None, "before_commit:1", "after_commit:1"])
def test_money_an_order_cannot_take_is_refunded_once_whatever_the_crash(
    shop: Shop, point: str, ending: str
) -> None:
    order_id = shop.place("order-1")
    payment_id = shop.pay(order_id, "pay-1")
    if ending == "cancelled":
        shop.cancel(order_id)
    elif ending == "expired":
        order = order_store.get_order(order_id, consistent=True)
        assert order is not None
        expiry = orders.expire_due_orders(order.expires_at + timedelta(seconds=1))
        assert expiry.expired == [order_id]
    else:
        other = shop.pay(order_id, "pay-2")
        shop.webhook(other, "evt-other")
    crashed_at(shop, point, shop.webhook, payment_id, "evt-late")

    shop.webhook(payment_id, "evt-late")  # the provider retries its notification
    shop.consume("refund.pending")
    shop.consume("refund.pending")  # the queue delivers it twice

    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.status is PaymentStatus.REFUNDED
    assert shop.provider.refunded == payment.amount.amount
    [refund] = payment_store.refunds_of_order(order_id)
    assert refund.status is RefundStatus.SUCCEEDED and refund.automatic
    assert refund.payment_id == payment_id and refund.reason == LATE_PAYMENT_REASONS[ending]
    assert event_counts()["refund.pending"] == 1
    assert event_counts()["payment.refunded"] == 1
    if ending == "paid by another payment":
        assert order_status(order_id) is OrderStatus.PAID
        assert levels("MUG") == {"SH": (10, 2, 8)}
    else:
        assert order_status(order_id).value == ending
        assert levels("MUG") == {"SH": (10, 0, 10)}
    assert_stock_balanced()


# --- cancelling a paid order ----------------------------------------------------------------


@pytest.mark.parametrize("point", [None, "before_commit:1", "after_commit:1"])
def test_cancelling_a_paid_order_owes_its_refund_even_if_the_process_dies(
    shop: Shop, point: str
) -> None:
    order_id, payment_id = shop.paid_order()
    crashed_at(shop, point, shop.cancel, order_id)

    shop.cancel(order_id)  # the client retries; a cancelled order answers as it is
    shop.consume("refund.pending")

    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.status is PaymentStatus.REFUNDED
    assert shop.provider.refunded == payment.amount.amount
    [refund] = payment_store.refunds_of_order(order_id)
    assert refund.status is RefundStatus.SUCCEEDED and refund.automatic
    assert order_status(order_id) is OrderStatus.CANCELLED
    counts = event_counts()
    assert (counts["order.cancelled"], counts["refund.pending"], counts["payment.refunded"]) == (
        1,
        1,
        1,
    )
    assert levels("MUG") == {"SH": (10, 0, 10)}
    assert_stock_balanced()


# --- sending a refund -----------------------------------------------------------------------


@pytest.mark.parametrize("replay", ["queue redelivery", "retry schedule"])
@pytest.mark.parametrize(
    "point",
    [
        None,
        "before_provider:refund",
        "after_provider:refund",
        "before_commit:1",
        "after_commit:1",
    ],
)
def test_a_refund_whose_sender_died_is_made_once(shop: Shop, point: str, replay: str) -> None:
    order_id, payment_id = shop.paid_order()
    shop.cancel(order_id)
    crashed_at(shop, point, shop.consume, "refund.pending")

    if replay == "queue redelivery":
        shop.consume("refund.pending")
    else:
        later = datetime.now(UTC) + refunds.RETRY_AFTER + timedelta(minutes=1)
        refunds.retry_pending_refunds(later)

    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.status is PaymentStatus.REFUNDED
    assert len(shop.provider.refunds) == 1
    assert shop.provider.refunded == payment.amount.amount
    [refund] = payment_store.refunds_of_order(order_id)
    assert refund.status is RefundStatus.SUCCEEDED
    assert event_counts()["payment.refunded"] == 1


# --- shipment booking -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [None, "before_provider:book", "after_provider:book", "before_commit:1", "after_commit:1"],
)
def test_shipping_again_after_a_crash_books_one_waybill_and_ships_once(
    shop: Shop, point: str
) -> None:
    order_id, _ = shop.paid_order()
    shop.consume("order.paid")
    shop.consume("order.paid")  # a duplicate delivery releases nothing twice
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    [shipment] = order.shipments
    shop.step(shipment.shipment_id, "pick")
    shop.step(shipment.shipment_id, "pack")
    crashed_at(shop, point, shop.step, shipment.shipment_id, "ship")

    # The warehouse presses ship again: it ships now, or is told it has shipped already.
    again = shop.api.request("POST", f"/shipments/{shipment.shipment_id}/ship", None, shop.api.ops)
    references = [shipment.shipment_id]
    if point in ("after_provider:book", "before_commit:1"):
        # Kuaidi100 booked before the crash and refuses the repeated order id: the shipment
        # stays packed and the retry schedule books it under the next attempt's id, leaving
        # the first waybill unused (the one duplicate the README documents).
        assert again.status_code == 409, again.json_body
        assert again.json_body["error"] == "carrier_refused"
        fulfilment.retry_due_bookings(datetime.now(UTC) + timedelta(minutes=10))
        references.append(f"{shipment.shipment_id}.1")
    else:
        assert again.status_code in (200, 409), again.json_body
        if again.status_code == 409:
            assert point in (None, "after_commit:1")
            assert again.json_body["details"] == {"from": "shipped", "to": "shipped"}

    assert list(shop.carrier.waybills) == references
    assert order_status(order_id) is OrderStatus.SHIPPED
    assert event_counts()["shipment.shipped"] == 1
    assert levels("MUG") == {"SH": (8, 0, 8)}
    assert_stock_balanced()


# --- notification send ----------------------------------------------------------------------


# What the customer receives after each crash: the no-crash run sends once; a crash once
# the attempt is recorded leaves it unknown (maybe sent), and it is never sent twice.
NOTIFICATION_CRASHES = {
    None: [EMAIL],
    "before_provider:send": [],
    "after_provider:send": [EMAIL],
    "before_commit:1": [EMAIL],
    "after_commit:1": [EMAIL],
}


@pytest.mark.parametrize("point", list(NOTIFICATION_CRASHES))
def test_a_notification_is_sent_at_most_once_across_a_crash(shop: Shop, point: str) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    customer_store.save_profile(
        CustomerProfile(
            customer_id=CUSTOMER,
            contact=ContactDetails(
                email=EMAIL, phone=None, locale="en", name="Li Lei", email_verified=True
            ),
            created_at=at,
            updated_at=at,
        )
    )
    shop.place("order-1")
    [placed] = events("order.placed")
    event = notifications.parse_event(outbox.message_body(placed))
    crashed_at(shop, point, notifications.notify, event, now=at)

    # The queue delivers the message again once its visibility timeout (6 min) has passed,
    # and again later still.
    redelivered = notifications.notify(event, now=at + timedelta(minutes=6))
    again = notifications.notify(event, now=at + timedelta(minutes=20))

    assert [address for address, _ in shop.sender.sent] == NOTIFICATION_CRASHES[point]
    if point in (None, "after_commit:1"):
        assert redelivered.already_sent == again.already_sent == (Channel.EMAIL,)
    else:
        assert redelivered.unknown == again.unknown == (Channel.EMAIL,)
    assert redelivered.sent == again.sent == ()


def test_when_one_push_device_fails_only_that_device_is_sent_the_retry(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    devices = ["arn:device/phone", "arn:device/tablet", "arn:device/watch"]
    monkeypatch.setattr(
        notifications,
        "_addresses",
        lambda customer_id, recipient, wanted: {
            **{channel: [] for channel in wanted},
            Channel.PUSH: list(devices),
        },
    )
    shop.place("order-1")
    [placed] = events("order.placed")
    event = notifications.parse_event(outbox.message_body(placed))
    shop.sender.failing.add("arn:device/tablet")
    senders = {Channel.PUSH: shop.sender}

    with pytest.raises(notifications.DeliveryFailed):
        notifications.notify(event, senders=senders, now=at)
    shop.sender.failing.clear()
    retried = notifications.notify(event, senders=senders, now=at + timedelta(seconds=30))
    again = notifications.notify(event, senders=senders, now=at + timedelta(minutes=1))

    assert [address for address, _ in shop.sender.sent] == [
        "arn:device/phone",
        "arn:device/watch",
        "arn:device/tablet",
    ]
    assert retried.sent == (Channel.PUSH,)
    assert again.already_sent == (Channel.PUSH,)


def test_cancelling_refunds_a_payment_the_lagging_index_does_not_show_yet(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id, payment_id = shop.paid_order()
    # The index copy of an order's payments lags: right after a capture it may show nothing.
    monkeypatch.setattr(payment_store, "payments_of_order", lambda order_id: [])

    shop.cancel(order_id)

    [refund] = [
        payment_store.refund_from_item(item)
        for item in items_with_prefix(payment_store.REFUND_PREFIX)
    ]
    assert (refund.payment_id, refund.status) == (payment_id, RefundStatus.PENDING)
    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.refundable.is_zero()
    shop.consume("refund.pending")
    assert shop.provider.refunded == payment.amount.amount


# --- a refund ops ask for -------------------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        None,
        "before_commit:1",
        "after_commit:1",
        "before_provider:refund",
        "after_provider:refund",
        "before_commit:2",
        "after_commit:2",
    ],
)
def test_a_refund_asked_again_after_a_crash_is_made_once(shop: Shop, point: str) -> None:
    order_id, payment_id = shop.paid_order()
    body = {"amount": {"amount": 1000, "currency": "CNY"}, "reason": "scratched cup"}
    headers = {**shop.api.ops, "Idempotency-Key": "refund-1"}

    def ask() -> Any:
        return shop.api.request("POST", f"/orders/{order_id}/refunds", body, headers)

    crashed_at(shop, point, ask)
    response = ask()  # ops press again: the same Idempotency-Key

    assert response.status_code == 201, response.json_body
    assert response.json_body["status"] == "succeeded"
    assert list(shop.provider.refunds.values()) == [Money(1000, "CNY")]
    [refund] = payment_store.refunds_of_order(order_id)
    assert refund.refund_id == response.json_body["refund_id"]
    payment = payment_store.get_payment(payment_id)
    assert payment is not None and payment.refunded == Money(1000, "CNY")
    assert event_counts()["payment.refunded"] == 1
