"""The physics of a flash sale: write units per partition key against DynamoDB's limits.

One SKU in one warehouse sells at ``RATE`` orders per second. DynamoDB's published limits: a
partition takes at most 1,000 write units per second, and a transactional write costs 2 units
per item (items up to 1 KB). Each order's transaction writes the level it reserves from and
the level's ledger entry on hot keys (the order, its idempotency record and its outbox event
have keys of their own, spread over the table). The simulation draws one second of orders,
each reserving from a shard chosen at random, and prints the write units each partition key
takes, unsharded and with N shards, plus the N a given rate needs.

Then the real placement code runs on a local stack in contention mode (20 ms in-flight
window, and a per-partition limit scaled down to the local stack's rate, ``LOCAL_PARTITION_WCU``)
for N = 1, 4 and 16 shards in one run: ``LOCAL_BUYERS`` concurrent buyers order one unit each
of one SKU stocked in one warehouse (split with ``PUT /stock/{sku}/{warehouse}/shards``) for
``LOCAL_SECONDS``; printed per N are orders/s, the share of transactions cancelled for
conflicts, throttles, p50/p99 placement latency and the share of 503s.

Figures, not pass/fail. A shard only gets its own 1,000 units if it has its own partition key:
shards as sort keys under one partition key would share the partition's budget until DynamoDB
splits the partition for heat, which it does not promise; so each shard (and its ledger) has
a partition key of its own (``STOCK#sku#wh#n``, ``LEDGER#sku#wh#n``).
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

RATE = 5_000  # orders per second for one SKU
PARTITION_WCU = 1_000
TRANSACTION_WCU_PER_ITEM = 2
HOT_ITEMS_PER_ORDER = ("level", "ledger")  # both keyed by the (SKU, warehouse) level or shard
SHARD_COUNTS = (1, 4, 8, 16, 32)
HEADROOM = 0.8  # plan for 80 % of the limit: random choice is uneven within a second
RATES = (500, 1_000, 2_000, 5_000, 10_000)
LOCAL_BUYERS = 32
LOCAL_SECONDS = 20  # per shard count
LOCAL_SHARD_COUNTS = (1, 4, 16)
# The local stack places a few orders a second, not 5,000: the per-partition limit is
# scaled down (to 8 WCU/s, 4 orders a second on one key) so that one level's key meets it as in a
# real flash sale, and the shards' effect shows.
LOCAL_PARTITION_WCU = 8


def units_per_key(rate: int, shards: int, rng: random.Random) -> Counter[str]:
    """Write units per partition key in one simulated second of ``rate`` orders."""
    units: Counter[str] = Counter()
    for _ in range(rate):
        shard = rng.randrange(shards)
        for kind in HOT_ITEMS_PER_ORDER:
            units[f"{kind}#{shard}"] += TRANSACTION_WCU_PER_ITEM
    return units


def shards_needed(rate: int) -> int:
    per_order = TRANSACTION_WCU_PER_ITEM  # on each hot key kind
    return max(1, math.ceil(rate * per_order / (PARTITION_WCU * HEADROOM)))


def main() -> None:
    rng = random.Random(18)
    print(
        f"flash sale of one SKU at {RATE} orders/s; limit {PARTITION_WCU} WCU/s per partition "
        f"key; {TRANSACTION_WCU_PER_ITEM} WCU per transactional item write"
    )
    for shards in SHARD_COUNTS:
        units = units_per_key(RATE, shards, rng)
        levels = [units[f"level#{n}"] for n in range(shards)]
        worst = max(levels)
        verdict = "over the limit" if worst > PARTITION_WCU else "under the limit"
        print(
            f"  N={shards:>2}: level/ledger key WCU/s mean {sum(levels) / shards:,.0f}, "
            f"busiest {worst:,} ({worst / PARTITION_WCU:.1f}x the limit, {verdict})"
        )
    needed = ", ".join(f"{rate:,}/s -> N={shards_needed(rate)}" for rate in RATES)
    print(f"  shards needed at {HEADROOM:.0%} of the limit: {needed}")
    placement_under_contention()


def placement_under_contention() -> None:
    from bench.soak import local_stack, order_body, stocked_product

    with local_stack() as stack:
        ops = stack.auth("bench-ops", "ops")
        stack.emulator(
            "/_emulator/contention",
            {"enabled": True, "conflict_window_ms": 20, "partition_wcu": LOCAL_PARTITION_WCU},
        )
        print(
            f"local stack, contention mode (20 ms in flight, {LOCAL_PARTITION_WCU} WCU/s per "
            f"partition key: the real limit scaled to the local rate), {LOCAL_BUYERS} buyers "
            f"for {LOCAL_SECONDS} s per shard count:",
            flush=True,
        )
        try:
            for shards in LOCAL_SHARD_COUNTS:
                sku = stocked_product(stack, {"wh-sha": 100_000})
                answer = requests.put(
                    stack.url(f"/stock/{sku}/wh-sha/shards"),
                    json={"shards": shards},
                    headers=ops,
                    timeout=60,
                )
                answer.raise_for_status()
                print(_sale(stack, sku, shards, order_body), flush=True)
        finally:
            stack.emulator("/_emulator/contention", {"enabled": False})


def _sale(stack: Any, sku: str, shards: int, order_body: Any) -> str:
    """One timed sale of ``sku`` (already split into ``shards``): its figures, one line.
    Every order comes from a buyer of its own, so no hold or rate limit gets in the way."""
    before = stack.emulator("/_emulator/stats")["operations"]
    counted = stack.emulator("/_emulator/contention")
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + LOCAL_SECONDS

    def buy(_: int) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                headers = stack.auth(f"flash-{uuid.uuid4().hex[:12]}", "customers")
                started = time.monotonic()
                answer = session.post(
                    stack.url("/orders"), json=order_body(sku), headers=headers, timeout=60
                )
                with lock:
                    results.append((answer.status_code, time.monotonic() - started))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=LOCAL_BUYERS) as pool:
        list(pool.map(buy, range(LOCAL_BUYERS)))
    elapsed = time.monotonic() - started
    after = stack.emulator("/_emulator/stats")["operations"]
    contention = stack.emulator("/_emulator/contention")
    target = "DynamoDB_20120810.TransactWriteItems"
    transactions = after.get(target, [0])[0] - before.get(target, [0])[0]
    conflicts = contention["conflicts"] - counted["conflicts"]
    throttles = contention["throttles"] - counted["throttles"]
    placed = sum(1 for status, _ in results if status == 201)
    busy = sum(1 for status, _ in results if status == 503)
    other = sum(1 for status, _ in results if status not in (201, 503))
    latencies = sorted(seconds for _, seconds in results) or [0.0]
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return (
        f"  N={shards:>2}: {placed / elapsed:.1f} orders/s, conflict rate "
        f"{conflicts / max(1, transactions):.1%} ({conflicts} of {transactions} transactions), "
        f"{throttles} throttled, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"503 busy {busy / max(1, len(results)):.1%} of {len(results)} answers"
        + (f", {other} other answers" if other else "")
    )


if __name__ == "__main__":
    main()
