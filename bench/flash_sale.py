"""The physics of a flash sale: write units per partition key against DynamoDB's limits.

One SKU in one warehouse sells at ``RATE`` orders per second. DynamoDB's published limits: a
partition takes at most 1,000 write units per second, and a transactional write costs 2 units
per item (items up to 1 KB). Each order's transaction writes the level it reserves from and
the level's ledger entry on hot keys (the order, its idempotency record and its outbox event
have keys of their own, spread over the table). The simulation draws one second of orders,
each reserving from a shard chosen at random, and prints the write units each partition key
takes, unsharded and with N shards, plus the N a given rate needs.

Figures, not pass/fail. A shard only gets its own 1,000 units if it has its own partition key:
shards as sort keys under one partition key (``LEVEL#n`` under ``STOCK#sku#wh``) share the
partition's budget until DynamoDB splits the partition for heat, which it does not promise.
"""

from __future__ import annotations

import math
import random
from collections import Counter

RATE = 5_000  # orders per second for one SKU
PARTITION_WCU = 1_000
TRANSACTION_WCU_PER_ITEM = 2
HOT_ITEMS_PER_ORDER = ("level", "ledger")  # both keyed by the (SKU, warehouse) level or shard
SHARD_COUNTS = (1, 4, 8, 16, 32)
HEADROOM = 0.8  # plan for 80 % of the limit: random choice is uneven within a second
RATES = (500, 1_000, 2_000, 5_000, 10_000)


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


if __name__ == "__main__":
    main()
