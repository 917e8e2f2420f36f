"""Orders over real HTTP against the local stack (several API worker processes).

Many buyers race for a few units spread over several warehouses: exactly the stock is sold,
never more, ``available`` never goes below zero, and ``check-stock`` proves the counters,
ledger and orders agree afterwards. Twenty copies of one request with one Idempotency-Key
make exactly one order.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
BUYERS = 120
# Demo warehouses (seeded before the stack reports ready), so every API worker knows them.
STOCK = {"wh-sha": 2, "wh-pek": 2, "wh-can": 1}
SHANGHAI_ADDRESS = {
    "name": "韩梅梅",
    "phone": "+8613900000000",
    "country": "CN",
    "region": "上海",
    "city": "上海市",
    "line1": "南京东路 1 号",
    "postcode": "200001",
}


@pytest.fixture
def ops(stack: LocalStackUnderTest) -> dict[str, str]:
    return stack.auth("ops-orders-e2e", "ops")


def call(
    stack: LocalStackUnderTest,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    session: requests.Session | None = None,
) -> requests.Response:
    sender = session or requests
    return sender.request(method, stack.url(path), json=body, headers=headers, timeout=TIMEOUT)


def new_product(stack: LocalStackUnderTest, ops: dict[str, str], stock: dict[str, int]) -> str:
    """A SKU no other test touches, stocked as given."""
    sku = f"RACE-{uuid.uuid4().hex[:10]}"
    product = {
        "name": {"zh-CN": "限量款马克杯", "en": "Limited edition mug"},
        "category": "home",
        "price": {"amount": 3900, "currency": "CNY"},
    }
    assert call(stack, "PUT", f"/products/{sku}", ops, product).status_code == 201
    for warehouse, quantity in stock.items():
        received = call(
            stack, "POST", f"/stock/{sku}/{warehouse}/receive", ops, {"quantity": quantity}
        )
        assert received.status_code == 201, received.text
    return sku


def stock_levels(stack: LocalStackUnderTest, ops: dict[str, str], sku: str) -> dict[str, Any]:
    response = call(stack, "GET", f"/stock/{sku}", ops)
    assert response.status_code == 200, response.text
    return response.json()


def check_stock(stack: LocalStackUnderTest) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local.check_stock", "--port", str(stack.port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def order(sku: str, quantity: int = 1) -> dict[str, Any]:
    return {"lines": [{"sku": sku, "quantity": quantity}], "shipping_address": SHANGHAI_ADDRESS}


def test_buyers_racing_for_a_few_units_buy_exactly_the_stock_and_no_more(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, STOCK)
    units = sum(STOCK.values())
    tokens = [stack.auth(f"buyer-{n}", "customers") for n in range(BUYERS)]
    start = threading.Barrier(BUYERS + 1)
    racing = threading.Event()
    lowest_available_seen: list[int] = []

    def buy(headers: dict[str, str]) -> requests.Response:
        with requests.Session() as session:
            start.wait()
            return call(stack, "POST", "/orders", headers, order(sku), session)

    def watch() -> None:
        # While the race runs, no warehouse may ever show a negative available.
        with requests.Session() as session:
            while racing.is_set():
                levels = call(stack, "GET", f"/stock/{sku}", ops, session=session).json()
                lowest_available_seen.append(min(w["available"] for w in levels["warehouses"]))

    with ThreadPoolExecutor(max_workers=BUYERS + 1) as pool:
        racing.set()
        watcher = pool.submit(watch)
        futures = [pool.submit(buy, headers) for headers in tokens]
        start.wait()
        responses = [future.result() for future in futures]
        racing.clear()
        watcher.result()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: units, 409: BUYERS - units}, statuses
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {r["error"] for r in refusals} == {"out_of_stock"}
    assert all(r["details"][0]["sku"] == sku for r in refusals)

    sold: Counter[str] = Counter()
    for response in responses:
        if response.status_code == 201:
            for allocation in response.json()["lines"][0]["allocations"]:
                sold[allocation["warehouse"]] += allocation["quantity"]
    assert sold == Counter(STOCK)

    final = stock_levels(stack, ops, sku)
    assert final["total_available"] == 0
    for level in final["warehouses"]:
        assert level["available"] == 0
        assert level["reserved"] == level["on_hand"] == STOCK.get(level["warehouse"], 0)
    assert lowest_available_seen and min(lowest_available_seen) >= 0

    audit = check_stock(stack)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "stock balances" in audit.stdout


def test_twenty_concurrent_copies_of_one_request_make_exactly_one_order(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, {"wh-sha": 10})
    buyer = f"buyer-idem-{uuid.uuid4().hex[:6]}"
    headers = {**stack.auth(buyer, "customers"), "Idempotency-Key": uuid.uuid4().hex}
    copies = 20
    start = threading.Barrier(copies)

    def send() -> requests.Response:
        with requests.Session() as session:
            start.wait()
            return call(stack, "POST", "/orders", headers, order(sku, 2), session)

    with ThreadPoolExecutor(max_workers=copies) as pool:
        responses = list(pool.map(lambda _: send(), range(copies)))

    assert [r.status_code for r in responses] == [201] * copies, [r.text for r in responses]
    order_ids = {r.json()["order_id"] for r in responses}
    assert len(order_ids) == 1
    (order_id,) = order_ids
    assert {r.headers["Location"] for r in responses} == {f"/orders/{order_id}"}
    originals = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    assert len(originals) == 1  # the winner's own answer; every other one is a replay
    assert all(r.json() == responses[0].json() for r in responses)

    listed = call(stack, "GET", "/orders", stack.auth(buyer, "customers")).json()
    assert [item["order_id"] for item in listed["items"]] == [order_id]
    (level,) = [
        w for w in stock_levels(stack, ops, sku)["warehouses"] if w["warehouse"] == "wh-sha"
    ]
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 2, 8)
    # The twenty copies held one order's worth against the buyer's limits: four more fit.
    more = [
        call(stack, "POST", "/orders", stack.auth(buyer, "customers"), order(sku)) for _ in range(5)
    ]
    assert [r.status_code for r in more] == [201, 201, 201, 201, 429], [r.text for r in more]


def test_one_buyer_racing_many_orders_holds_at_most_the_open_order_limit(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, {"wh-sha": 30})
    headers = stack.auth(f"hoarder-{uuid.uuid4().hex[:6]}", "customers")
    copies = 9
    start = threading.Barrier(copies)

    def send(n: int) -> requests.Response:
        with requests.Session() as session:
            start.wait()
            keyed = {**headers, "Idempotency-Key": f"hoard-{n}-{uuid.uuid4().hex}"}
            return call(stack, "POST", "/orders", keyed, order(sku, 2), session)

    with ThreadPoolExecutor(max_workers=copies) as pool:
        responses = list(pool.map(send, range(copies)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 429: copies - 5}, [r.text for r in responses]
    refused = [r.json() for r in responses if r.status_code == 429]
    assert {body["error"] for body in refused} == {"too_many_open_orders"}
    (level,) = [
        w for w in stock_levels(stack, ops, sku)["warehouses"] if w["warehouse"] == "wh-sha"
    ]
    assert level["reserved"] == 10  # five orders of two: nothing reserved for the refused


def test_an_order_cancelled_over_http_gives_its_stock_back(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, {"wh-sha": 3})
    buyer = stack.auth(f"buyer-cancel-{uuid.uuid4().hex[:6]}", "customers")
    placed = call(stack, "POST", "/orders", buyer, order(sku, 3))
    assert placed.status_code == 201, placed.text

    cancelled = call(stack, "POST", f"/orders/{placed.json()['order_id']}/cancel", buyer)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert stock_levels(stack, ops, sku)["total_available"] == 3


# --- under contention, as DynamoDB has it ------------------------------------------------------

CONTENDED_BUYERS = 200
CONTENDED_STOCK = {"wh-sha": 20, "wh-pek": 20, "wh-can": 10}
BUSY_RETRIES = 10
CONTENTION_PATH = "/_emulator/contention"  # infra.local.aws_emulator.CONTROL_PATH


def set_contention(stack: LocalStackUnderTest, **settings: Any) -> dict[str, Any]:
    response = requests.put(stack.moto_url + CONTENTION_PATH, json=settings, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def test_under_contention_buyers_get_busy_never_a_false_sold_out_and_exactly_the_stock_sells(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, CONTENDED_STOCK)
    units = sum(CONTENDED_STOCK.values())
    tokens = [stack.auth(f"flash-buyer-{n}", "customers") for n in range(CONTENDED_BUYERS)]
    start = threading.Barrier(CONTENDED_BUYERS)

    def buy(headers: dict[str, str]) -> tuple[list[int], requests.Response]:
        """Place one order, coming back after Retry-After on 503 (at most BUSY_RETRIES)."""
        statuses = []
        with requests.Session() as session:
            start.wait()
            for _ in range(1 + BUSY_RETRIES):
                response = call(stack, "POST", "/orders", headers, order(sku), session)
                statuses.append(response.status_code)
                if response.status_code != 503:
                    break
                assert response.json()["error"] == "busy"
                time.sleep(float(response.headers["Retry-After"]))
        return statuses, response

    # Transactions hold their items for 30 ms; a partition key takes 40 write units a second
    # (a level's reservation is 2 units, so about 20 orders a second per warehouse).
    set_contention(stack, enabled=True, conflict_window_ms=30, partition_wcu=40)
    try:
        with ThreadPoolExecutor(max_workers=CONTENDED_BUYERS) as pool:
            outcomes = list(pool.map(buy, tokens))
        counted = requests.get(stack.moto_url + CONTENTION_PATH, timeout=10)
    finally:
        set_contention(stack, enabled=False)

    finals = Counter(response.status_code for _, response in outcomes)
    assert finals == {201: units, 409: CONTENDED_BUYERS - units}, finals
    assert all(r.json()["error"] == "out_of_stock" for _, r in outcomes if r.status_code == 409)
    # The emulator did refuse work; buyers met it as retries or 503s, never as a false 409.
    contention = counted.json()
    assert contention["conflicts"] + contention["throttles"] > 0, contention

    sold: Counter[str] = Counter()
    for _, response in outcomes:
        if response.status_code == 201:
            for allocation in response.json()["lines"][0]["allocations"]:
                sold[allocation["warehouse"]] += allocation["quantity"]
    assert sold == Counter(CONTENDED_STOCK)
    final = stock_levels(stack, ops, sku)
    # Nothing is left, so no 409 was answered while units stayed unsold.
    assert final["total_available"] == 0
    for level in final["warehouses"]:
        assert level["reserved"] == level["on_hand"] == CONTENDED_STOCK.get(level["warehouse"], 0)

    audit = check_stock(stack)
    assert audit.returncode == 0, audit.stdout + audit.stderr


# --- a flash sale on a sharded level -------------------------------------------------------------

FLASH_BUYERS = 120
FLASH_STOCK = 40


def test_a_flash_sale_on_a_sharded_level_resharded_mid_sale_sells_exactly_the_stock(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku = new_product(stack, ops, {"wh-sha": FLASH_STOCK})
    sharded = call(stack, "PUT", f"/stock/{sku}/wh-sha/shards", ops, {"shards": 4})
    assert sharded.status_code == 200, sharded.text
    assert sharded.json()["shards"] == 4 and sharded.json()["available"] == FLASH_STOCK
    tokens = [stack.auth(f"shard-buyer-{n}", "customers") for n in range(FLASH_BUYERS)]
    start = threading.Barrier(FLASH_BUYERS + 1)

    def buy(headers: dict[str, str]) -> requests.Response:
        with requests.Session() as session:
            start.wait()
            for _ in range(1 + BUSY_RETRIES):
                response = call(stack, "POST", "/orders", headers, order(sku), session)
                if response.status_code != 503:
                    break
                time.sleep(float(response.headers["Retry-After"]))
        return response

    set_contention(stack, enabled=True, conflict_window_ms=30, partition_wcu=40)
    try:
        with ThreadPoolExecutor(max_workers=FLASH_BUYERS) as pool:
            futures = [pool.submit(buy, headers) for headers in tokens]
            start.wait()
            time.sleep(0.5)
            # Ops re-shard while the orders are being placed.
            resharded = call(stack, "PUT", f"/stock/{sku}/wh-sha/shards", ops, {"shards": 8})
            outcomes = [future.result() for future in futures]
    finally:
        set_contention(stack, enabled=False)

    assert resharded.status_code == 200, resharded.text
    finals = Counter(response.status_code for response in outcomes)
    assert finals == {201: FLASH_STOCK, 409: FLASH_BUYERS - FLASH_STOCK}, finals
    final = stock_levels(stack, ops, sku)
    assert final["total_available"] == 0
    (level,) = [lv for lv in final["warehouses"] if lv["warehouse"] == "wh-sha"]
    assert level["on_hand"] == level["reserved"] == FLASH_STOCK
    audit = check_stock(stack)
    assert audit.returncode == 0, audit.stdout + audit.stderr
