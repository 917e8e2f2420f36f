"""The physics of a flash sale: write units per partition key against DynamoDB's limits.

One SKU in one warehouse sells at ``RATE`` orders per second. DynamoDB's published limits: a
partition takes at most 1,000 write units per second, and a transactional write costs 2 units
per item (items up to 1 KB). Each order's transaction writes the level it reserves from and
the level's ledger entry on hot keys (the order, its idempotency record and its outbox event
have keys of their own, spread over the table). The simulation draws one second of orders,
each reserving from a shard chosen at random, and prints the write units each partition key
takes, unsharded and with N shards, plus the N a given rate needs.

Then the real placement code runs on a local stack in contention mode (20 ms in-flight
window, 1,000 WCU/s per partition key): ``LOCAL_BUYERS`` concurrent buyers order one unit each
of one SKU stocked in one warehouse for ``LOCAL_SECONDS``; printed are orders/s, the share of
transactions cancelled for conflicts, p50/p99 placement latency and the share of 503s. Only
N = 1: splitting a level into shards is not built yet.

Figures, not pass/fail. A shard only gets its own 1,000 units if it has its own partition key:
shards as sort keys under one partition key (``LEVEL#n`` under ``STOCK#sku#wh``) share the
partition's budget until DynamoDB splits the partition for heat, which it does not promise.
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

import requests

RATE = 5_000  # orders per second for one SKU
PARTITION_WCU = 1_000
TRANSACTION_WCU_PER_ITEM = 2
HOT_ITEMS_PER_ORDER = ("level", "ledger")  # both keyed by the (SKU, warehouse) level or shard
SHARD_COUNTS = (1, 4, 8, 16, 32)
HEADROOM = 0.8  # plan for 80 % of the limit: random choice is uneven within a second
RATES = (500, 1_000, 2_000, 5_000, 10_000)
LOCAL_BUYERS = 32
LOCAL_SECONDS = 30


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
        sku = stocked_product(stack, {"wh-sha": 100_000})
        buyers = [
            stack.auth(f"flash-{uuid.uuid4().hex[:8]}", "customers") for _ in range(LOCAL_BUYERS)
        ]
        stack.emulator(
            "/_emulator/contention",
            {"enabled": True, "conflict_window_ms": 20, "partition_wcu": 1000},
        )
        before = stack.emulator("/_emulator/stats")["operations"]
        results: list[tuple[int, float]] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + LOCAL_SECONDS

        def buy(headers: dict[str, str]) -> None:
            with requests.Session() as session:
                while time.monotonic() < stop_at:
                    started = time.monotonic()
                    answer = session.post(
                        stack.url("/orders"), json=order_body(sku), headers=headers, timeout=60
                    )
                    with lock:
                        results.append((answer.status_code, time.monotonic() - started))

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=LOCAL_BUYERS) as pool:
            list(pool.map(buy, buyers))
        elapsed = time.monotonic() - started
        contention = stack.emulator("/_emulator/contention")
        after = stack.emulator("/_emulator/stats")["operations"]
        stack.emulator("/_emulator/contention", {"enabled": False})

    target = "DynamoDB_20120810.TransactWriteItems"
    transactions = after.get(target, [0])[0] - before.get(target, [0])[0]
    placed = sum(1 for status, _ in results if status == 201)
    busy = sum(1 for status, _ in results if status == 503)
    latencies = sorted(seconds for _, seconds in results)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"local stack, contention mode, N=1, {LOCAL_BUYERS} buyers for {elapsed:.0f} s: "
        f"{placed / elapsed:.1f} orders/s, {contention['conflicts']} of {transactions} "
        "transactions "
        f"cancelled for conflict ({contention['conflicts'] / max(1, transactions):.1%}), "
        f"{contention['throttles']} throttled, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"503 busy {busy / max(1, len(results)):.1%} of {len(results)} answers"
    )


if __name__ == "__main__":
    main()
