"""Simulated order history for a running local stack: ``make history DAYS=7``.

    python -m infra.local.history --port 8000 --days 7 [--orders-per-day 20] [--seed 7]

Shoppers (``shopper-001`` ...; a few buy often, most now and then) order from the stack's
catalogue, and most of them pay; some cancel, a few leave an order unpaid, finance refunds
part of a few orders. Everything after an order is placed — stock reserved and committed,
outbox events, the stream, the forwarder, the analytics queue and its handler in the
stack's event pump — happens exactly as it would for real traffic.

Past days cannot be made over HTTP: the API stamps every order with the time it arrives.
So the two halves differ on purpose, and say so in their output:

* **today** goes through the real HTTP paths: ``POST /orders`` with a customer's token, then
  ``POST /orders/{id}/payments`` by card (``pm_card_visa``, which the local card provider
  accepts). Should the stack have no card payments, the orders are placed and left unpaid
  (they expire), and the output says payments were unavailable.
* each of the ``--days`` days before today goes through the service layer with an injected
  clock (``now=``), in this process against the stack's emulator: ``place_order``, then the
  payment recorded and captured through ``payments.capture`` — the code a provider's success
  takes; the provider itself is not asked (it cannot take a payment in the past) —
  ``cancel_order`` and ``settle_refund``. Their events carry those past moments, so the
  figures land on the days they describe.

Then, once the pump has delivered the events (a few seconds), build any day's reports with
``make tick JOB=analytics DATE=YYYY-MM-DD``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from infra.local.identity import mint_for_stack
from infra.local.stack import REPO_ROOT, STATE_DIR, read_stack_file, stack_file_for

SHOPPERS = 40
FREQUENT_SHOPPERS = 6  # buy far more often than the rest
CITIES = (  # region, city: places the stack knows, so the nearest warehouse ships
    ("上海", "上海市"),
    ("北京", "北京市"),
    ("广东", "广州市"),
    ("四川", "成都市"),
    ("浙江", "杭州市"),
    ("湖北", "武汉市"),
)
METHODS_FOR_PAST_DAYS = ("card", "card", "alipay", "wechat_pay")
TEST_CARD = "pm_card_visa"
HTTP_TIMEOUT_SECONDS = 30


@dataclass
class DayTally:
    placed: int = 0
    paid: int = 0
    cancelled: int = 0
    unpaid: int = 0
    refunded: int = 0
    out_of_stock: int = 0
    limited: int = 0  # refused by a per-customer limit (unpaid orders held, orders a minute)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogueItem:
    sku: str
    price: int


# --- choosing what shoppers do ----------------------------------------------------------------


def shoppers() -> list[str]:
    return [f"shopper-{n:03d}" for n in range(1, SHOPPERS + 1)]


def pick_shopper(rng: random.Random, pool: list[str]) -> str:
    weights = [8 if index < FREQUENT_SHOPPERS else 1 for index in range(len(pool))]
    return rng.choices(pool, weights=weights)[0]


def pick_lines(rng: random.Random, catalogue: list[CatalogueItem]) -> dict[str, int]:
    chosen = rng.sample(catalogue, min(len(catalogue), rng.choice((1, 1, 1, 2, 2, 3))))
    return {item.sku: rng.choice((1, 1, 1, 2, 3)) for item in chosen}


def address(rng: random.Random) -> dict[str, str]:
    region, city = rng.choice(CITIES)
    return {
        "name": "测试顾客",
        "phone": "+8613800000000",
        "country": "CN",
        "region": region,
        "city": city,
        "line1": f"示例路 {rng.randint(1, 999)} 号",
        "postcode": "100000",
    }


def fate(rng: random.Random) -> str:
    """What happens to an order after it is placed."""
    return rng.choices(("pay", "cancel", "leave"), weights=(85, 8, 7))[0]


# --- today, over HTTP ----------------------------------------------------------------------------


class Http:
    def __init__(self, base_url: str, stack_file: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.stack_file = stack_file
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, user_id: str, group: str) -> str:
        key = (user_id, group)
        if key not in self._tokens:
            self._tokens[key] = mint_for_stack(self.stack_file, user_id, [group])
        return self._tokens[key]

    def call(
        self, method: str, path: str, body: Any = None, *, user: tuple[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token(*user)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw or b"null")
            except ValueError:
                return error.code, {"error": raw.decode(errors="replace")[:200]}


def catalogue_over_http(http: Http) -> list[CatalogueItem]:
    items: list[CatalogueItem] = []
    cursor: str | None = None
    while True:
        path = "/products?limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, body = http.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET /products answered {status}: {body}")
        for product in body["items"]:
            items.append(CatalogueItem(product["sku"], int(product["price"]["amount"])))
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def today_over_http(
    http: Http, rng: random.Random, catalogue: list[CatalogueItem], count: int
) -> DayTally:
    tally = DayTally()
    pool = shoppers()
    payments_available = True
    for _ in range(count):
        customer = pick_shopper(rng, pool)
        user = (customer, "customers")
        body = {
            "lines": [{"sku": s, "quantity": q} for s, q in pick_lines(rng, catalogue).items()],
            "shipping_address": address(rng),
        }
        status, order = http.call("POST", "/orders", body, user=user)
        if status == 429 or (status == 409 and order.get("error") == "hold_limit_reached"):
            tally.limited += 1
            continue
        if status == 409:
            tally.out_of_stock += 1
            continue
        if status != 201:
            raise RuntimeError(f"POST /orders answered {status}: {order}")
        tally.placed += 1
        order_id = order["order_id"]
        what = fate(rng)
        if what == "cancel":
            status, _ = http.call("POST", f"/orders/{order_id}/cancel", user=user)
            tally.cancelled += status == 200
            continue
        if what == "leave" or not payments_available:
            tally.unpaid += 1
            continue
        payment_body = {"method": "card", "payment_method": TEST_CARD}
        status, payment = http.call("POST", f"/orders/{order_id}/payments", payment_body, user=user)
        if status == 201 and payment.get("status") == "succeeded":
            tally.paid += 1
            if rng.random() < 0.1:
                refund = {
                    "amount": {"amount": max(1, order["total"]["amount"] // 4), "currency": "CNY"},
                    "reason": "damaged in transit",
                }
                status, _ = http.call(
                    "POST", f"/orders/{order_id}/refunds", refund, user=("ops-history", "ops")
                )
                tally.refunded += status in (200, 201)
            continue
        payments_available = status == 201
        tally.unpaid += 1
        if not payments_available:
            tally.notes.append(
                f"payments unavailable (POST /orders/{{id}}/payments answered {status}: "
                f"{(payment or {}).get('error')}); today's orders were left unpaid"
            )
    return tally


# --- past days, through the service layer with an injected clock ----------------------------------


def past_day(
    day: date, rng: random.Random, catalogue: list[CatalogueItem], count: int, zone: Any
) -> DayTally:
    from chalicelib.domain.allocation import RequestedLine
    from chalicelib.domain.errors import OutOfStock, TooManyRequests
    from chalicelib.domain.limits import HoldLimitReached
    from chalicelib.domain.orders import ShippingAddress
    from chalicelib.services import orders

    tally = DayTally()
    pool = shoppers()
    start = datetime.combine(day, time(8, 0), tzinfo=zone)
    moments = sorted(start + timedelta(seconds=rng.randint(0, 15 * 3600)) for _ in range(count))
    for moment in moments:
        placed_at = moment.astimezone(UTC)
        customer = pick_shopper(rng, pool)
        lines = [RequestedLine(s, q) for s, q in pick_lines(rng, catalogue).items()]
        where = address(rng)
        try:
            placement = orders.place_order(customer, lines, ShippingAddress(**where), now=placed_at)
        except OutOfStock:
            tally.out_of_stock += 1
            continue
        except (TooManyRequests, HoldLimitReached):
            tally.limited += 1
            continue
        tally.placed += 1
        what = fate(rng)
        later = placed_at + timedelta(minutes=rng.randint(1, 10))
        if what == "cancel" or what == "leave":
            # Left unpaid, a past order would only expire now; it is cancelled on its day.
            orders.cancel_order(placement.order_id, actor_id=customer, is_ops=False, now=later)
            tally.cancelled += 1
            continue
        method = rng.choice(METHODS_FOR_PAST_DAYS)
        _pay_in_the_past(placement.order_id, method, later)
        tally.paid += 1
        if rng.random() < 0.08:
            _refund_in_the_past(placement.order_id, later + timedelta(hours=rng.randint(1, 5)))
            tally.refunded += 1
    return tally


def _pay_in_the_past(order_id: str, method: str, at: datetime) -> None:
    from chalicelib.domain.identifiers import sortable_id
    from chalicelib.domain.payments import Payment
    from chalicelib.services import payments
    from chalicelib.store import orders as order_store
    from chalicelib.store import payments as payment_store
    from chalicelib.store.unit_of_work import UnitOfWork

    order = order_store.get_order(order_id, consistent=True)
    assert order is not None
    payment = Payment.start(
        payment_id=sortable_id("pay_", at),
        order_id=order_id,
        customer_id=order.customer_id,
        method=method,
        amount=order.total,
        at=at,
    )
    uow = UnitOfWork()
    payment_store.add_new_payment(uow, payment)
    uow.commit()
    payments.capture(
        payment.payment_id, order.total, provider_payment_id=f"history-{payment.payment_id}", now=at
    )


def _refund_in_the_past(order_id: str, at: datetime) -> None:
    from chalicelib.domain.identifiers import sortable_id
    from chalicelib.domain.money import Money
    from chalicelib.domain.payments import Refund, RefundStatus
    from chalicelib.services import refunds
    from chalicelib.store import payments as payment_store
    from chalicelib.store.unit_of_work import UnitOfWork

    (captured,) = [p for p in payment_store.payments_of_order(order_id) if p.is_captured]
    payment = payment_store.get_payment(captured.payment_id)
    assert payment is not None
    amount = Money(max(1, payment.amount.amount // 4), payment.amount.currency)
    refund = Refund(
        refund_id=sortable_id("rfd_", at),
        payment_id=payment.payment_id,
        order_id=order_id,
        customer_id=payment.customer_id,
        method=payment.method,
        amount=amount,
        reason="damaged in transit",
        status=RefundStatus.PENDING,
        requested_by="finance-1",
        created_at=at,
        updated_at=at,
    )
    uow = UnitOfWork()
    payment_store.add_payment_change(uow, payment.commit_refund(amount, at=at), previous=payment)
    payment_store.add_new_refund(uow, refund)
    uow.commit()
    refunds.settle_refund(refund.refund_id, RefundStatus.SUCCEEDED, now=at)


# --- the command ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.history",
        description="Simulated orders for today (over HTTP) and the days before (with an "
        "injected clock) against the local stack on --port.",
    )
    parser.add_argument("--port", type=int, default=8000, help="the stack's API port")
    parser.add_argument("--days", type=int, default=7, help="past days before today (0-60)")
    parser.add_argument("--orders-per-day", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="repeatable choices")
    parser.add_argument("--no-today", action="store_true", help="only the past days")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 <= args.days <= 60 or not 1 <= args.orders_per_day <= 500:
        parser.error("--days is 0-60 and --orders-per-day 1-500")
    return args


def _print_tally(label: str, tally: DayTally) -> None:
    print(
        f"{label}: placed {tally.placed}, paid {tally.paid}, cancelled {tally.cancelled}, "
        f"left unpaid {tally.unpaid}, partly refunded {tally.refunded}, "
        f"refused for stock {tally.out_of_stock}, refused by per-customer limits {tally.limited}",
        flush=True,
    )
    for note in tally.notes[:1]:
        print(f"  note: {note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        stack = read_stack_file(args.port, args.state_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The service layer reads its settings from the environment: the stack's, before importing.
    os.environ.update({str(k): str(v) for k, v in stack["env"].items()})
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from chalicelib.services import analytics

    rng = random.Random(args.seed)
    http = Http(stack["api_url"], stack_file_for(args.port, args.state_dir))
    catalogue = catalogue_over_http(http)
    if not catalogue:
        print("error: the stack's catalogue is empty", file=sys.stderr)
        return 1
    zone = analytics.zone()
    today = datetime.now(UTC).astimezone(zone).date()
    totals: Counter[str] = Counter()
    print(
        "past days through the service layer with an injected clock; payments captured as "
        "a provider's success is, without asking the provider (it cannot pay in the past)",
        flush=True,
    )
    for back in range(args.days, 0, -1):
        day = today - timedelta(days=back)
        tally = past_day(day, rng, catalogue, args.orders_per_day, zone)
        totals.update({"placed": tally.placed, "paid": tally.paid})
        _print_tally(day.isoformat(), tally)
    if not args.no_today:
        print("today over HTTP: POST /orders, then POST /orders/{id}/payments by card", flush=True)
        tally = today_over_http(http, rng, catalogue, args.orders_per_day)
        totals.update({"placed": tally.placed, "paid": tally.paid})
        _print_tally(f"{today.isoformat()} (today)", tally)
    print(
        f"{totals['placed']} orders placed, {totals['paid']} paid. Once the event pump has "
        "delivered them (a few seconds), build a day's reports with "
        f"`make tick JOB=analytics DATE={(today - timedelta(days=1)).isoformat()}`.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
