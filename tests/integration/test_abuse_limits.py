"""One customer cannot hold the shop's stock hostage or flood it with orders and payments.

Holds: unpaid orders per customer, and units of one SKU across them. Rates: orders created
and payments started per minute. Every refusal reserves nothing; a replayed
Idempotency-Key is exempt and answers as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Api
from test_orders_api import (
    address,
    levels,
    order_body,
    place,
    receive,
    table_snapshot,
)
from test_orders_api import world as world

from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.limits import RateLimited
from chalicelib.domain.orders import ShippingAddress
from chalicelib.domain.payments import Payment
from chalicelib.services import orders, payments
from chalicelib.settings import get_settings
from chalicelib.store import limits as limits_store
from chalicelib.store import orders as order_store
from chalicelib.store import payments as payment_store
from chalicelib.store.unit_of_work import UnitOfWork


def open_orders_of(customer_id: str) -> int:
    holds, _ = limits_store.read_limits(customer_id)
    return holds.open_orders


def held_of(customer_id: str, sku: str) -> int:
    holds, _ = limits_store.read_limits(customer_id)
    return holds.held(sku)


@pytest.fixture
def roomy(world: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """Hold limits out of the way, to look at rates alone."""
    monkeypatch.setenv("MAX_OPEN_UNPAID_ORDERS", "1000")
    monkeypatch.setenv("MAX_HELD_UNITS_PER_SKU", "1000")
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()


# --- holds ---------------------------------------------------------------------------------


def test_a_sixth_unpaid_order_is_429_too_many_open_orders_and_reserves_nothing(
    world: Api,
) -> None:
    receive("MUG", "SH", 100)
    for _ in range(5):
        assert place(world, order_body({"MUG": 1})).status_code == 201
    before = table_snapshot()

    refused = place(world, order_body({"MUG": 1}))

    assert refused.status_code == 429
    assert refused.json_body["error"] == "too_many_open_orders"
    assert refused.json_body["details"] == {"limit": 5, "open": 5}
    assert table_snapshot() == before
    assert levels("MUG")["SH"] == (100, 5, 95)


def test_holding_more_than_twenty_units_of_a_sku_is_409_hold_limit_reached(world: Api) -> None:
    receive("MUG", "SH", 100)
    receive("TEA", "SH", 100)
    assert place(world, order_body({"MUG": 15})).status_code == 201
    before = table_snapshot()

    refused = place(world, order_body({"TEA": 1, "MUG": 6}))

    assert refused.status_code == 409
    assert refused.json_body["error"] == "hold_limit_reached"
    assert refused.json_body["details"] == {"sku": "MUG", "limit": 20, "held": 15}
    assert table_snapshot() == before
    assert place(world, order_body({"MUG": 5})).status_code == 201
    assert levels("MUG")["SH"] == (100, 20, 80)


def test_the_limits_are_per_customer(world: Api) -> None:
    receive("MUG", "SH", 100)
    assert place(world, order_body({"MUG": 20}), user="cust-a").status_code == 201
    assert place(world, order_body({"MUG": 20}), user="cust-b").status_code == 201
    assert place(world, order_body({"MUG": 1}), user="cust-a").status_code == 409


def test_cancelling_paying_or_expiring_an_unpaid_order_frees_its_hold(world: Api) -> None:
    receive("MUG", "SH", 100)
    ids = [place(world, order_body({"MUG": 4})).json_body["order_id"] for _ in range(5)]
    assert (open_orders_of("customer-1"), held_of("customer-1", "MUG")) == (5, 20)

    world.request("POST", f"/orders/{ids[0]}/cancel", None, world.token("customer-1", "customers"))
    pay_in_full(ids[1])
    due = order_store.get_order(ids[2], consistent=True)
    assert due is not None
    orders.expire_due_orders(due.expires_at + timedelta(microseconds=1))

    assert open_orders_of("customer-1") == 2
    assert held_of("customer-1", "MUG") == 8
    for _ in range(3):
        assert place(world, order_body({"MUG": 4})).status_code == 201
    assert place(world, order_body({"MUG": 1})).status_code == 429


def test_a_replayed_key_is_exempt_from_the_hold_limits(world: Api) -> None:
    receive("MUG", "SH", 100)
    first = place(world, order_body({"MUG": 20}), key="k-hoard")
    receive("PEN", "SH", 100)
    for _ in range(4):
        assert place(world, order_body({"PEN": 1})).status_code == 201
    assert place(world, order_body({"PEN": 1})).status_code == 429

    replay = place(world, order_body({"MUG": 20}), key="k-hoard")

    assert replay.status_code == 201
    assert replay.json_body == first.json_body
    assert replay.headers.get("Idempotent-Replayed") == "true"


def pay_in_full(order_id: str) -> None:
    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    at = datetime.now(UTC)
    payment = Payment.start(
        payment_id=sortable_id("pay_", at),
        order_id=order_id,
        customer_id=order.customer_id,
        method="card",
        amount=order.total,
        at=at,
    )
    uow = UnitOfWork()
    payment_store.add_new_payment(uow, payment)
    uow.commit()
    payments.capture(payment.payment_id, order.total, provider_payment_id=f"p-{order_id}")


# --- rates ---------------------------------------------------------------------------------


def place_at(customer_id: str, at: datetime, key: str | None = None) -> Any:
    return orders.place_order(
        customer_id,
        [RequestedLine("MUG", 1)],
        ShippingAddress(**{k: v for k, v in address().items() if k != "location"}),
        idempotency_key=key,
        now=at,
    )


def test_an_eleventh_order_in_a_minute_is_429_rate_limited_with_retry_after(roomy: Api) -> None:
    receive("MUG", "SH", 100)
    for _ in range(10):
        assert place(roomy, order_body({"MUG": 1})).status_code == 201
    before = table_snapshot()

    refused = place(roomy, order_body({"MUG": 1}))

    assert refused.status_code == 429
    assert refused.json_body["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert table_snapshot() == before


def test_the_order_rate_is_a_sliding_minute(roomy: Api) -> None:
    receive("MUG", "SH", 100)
    start = datetime(2026, 5, 20, 8, 0, 0, tzinfo=UTC)
    for n in range(10):
        place_at("cust-r", start + timedelta(seconds=5 * n))  # 08:00:00 .. 08:00:45

    with pytest.raises(RateLimited) as refused:
        place_at("cust-r", start + timedelta(seconds=59))
    assert refused.value.retry_after_seconds == 1
    place_at("cust-r", start + timedelta(seconds=60))  # the first has left the window
    with pytest.raises(RateLimited) as refused:
        place_at("cust-r", start + timedelta(seconds=62))
    assert refused.value.retry_after_seconds == 3
    place_at("cust-r", start + timedelta(seconds=65))


def test_retries_with_one_key_count_once_toward_the_order_rate(roomy: Api) -> None:
    receive("MUG", "SH", 100)
    for _ in range(5):
        assert place(roomy, order_body({"MUG": 1}), key="k-same").status_code == 201
    for _ in range(9):
        assert place(roomy, order_body({"MUG": 1})).status_code == 201
    assert limits_store.read_uses("customer-1", "orders").count == 10
    assert place(roomy, order_body({"MUG": 1})).status_code == 429
    assert place(roomy, order_body({"MUG": 1}), key="k-same").status_code == 201  # a replay


@pytest.fixture
def provider_answers_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Payments stay pending: the provider is not asked (this is about counting starts)."""
    monkeypatch.setattr(payments, "_ask_provider", lambda payment, request, **_: payment)


def test_an_eleventh_payment_in_a_minute_is_429_and_key_retries_count_once(
    roomy: Api, provider_answers_later: None
) -> None:
    receive("MUG", "SH", 100)
    order_ids = [place(roomy, order_body({"MUG": 1})).json_body["order_id"] for _ in range(3)]
    for _ in range(4):
        payments.start_payment(
            order_ids[0], customer_id="customer-1", method="alipay", idempotency_key="pay-1"
        )
    for _ in range(9):
        payments.start_payment(order_ids[1], customer_id="customer-1", method="alipay")
    assert len(payment_store.payments_of_order(order_ids[0])) == 1

    with pytest.raises(RateLimited) as refused:
        payments.start_payment(order_ids[2], customer_id="customer-1", method="alipay")

    assert (
        refused.value.retry_after_seconds is not None
        and 1 <= refused.value.retry_after_seconds <= 60
    )
    assert payment_store.payments_of_order(order_ids[2]) == []
    replay = payments.start_payment(
        order_ids[0], customer_id="customer-1", method="alipay", idempotency_key="pay-1"
    )
    assert replay.replayed


def test_the_payment_rate_limit_answers_429_over_http(
    roomy: Api, provider_answers_later: None
) -> None:
    receive("MUG", "SH", 100)
    order_id = place(roomy, order_body({"MUG": 1})).json_body["order_id"]
    shopper = roomy.token("customer-1", "customers")
    for _ in range(10):
        payments.start_payment(order_id, customer_id="customer-1", method="alipay")

    refused = roomy.request("POST", f"/orders/{order_id}/payments", {"method": "alipay"}, shopper)

    assert refused.status_code == 429
    assert refused.json_body["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
