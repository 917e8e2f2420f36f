"""Query cost against table size, through the local AWS emulator over HTTP.

moto's Query walks the whole table and then filters it, so a query for an empty partition got
slower as history grew (35.8 ms with 1x history, 160.7 ms with 10x). The emulator hands moto
only the queried partition (from the table, or from a per-index map kept in step with every
write), so the figure should not depend on the table: the ratio should stay within 1.2.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.transactions import BATCH_SIZE, _client, _emulator, _interleaved_medians_ms

TABLE_SIZES = (100, 20_000)
SAMPLES = 80  # cheap calls on a shared machine: more samples steady the median
QUERIED_CUSTOMER_ORDERS = 20  # the same partition size whatever the table holds


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _history_item(number: int) -> dict[str, Any]:
    """An order-like item in its own partition; the first 20 indexed under one customer."""
    customer = (
        "CUSTOMER#BENCH" if number < QUERIED_CUSTOMER_ORDERS else f"CUSTOMER#C{number % 50:03d}"
    )
    return {
        "pk": {"S": f"ORDER#O{number:08d}"},
        "sk": {"S": "ORDER"},
        "gsi1pk": {"S": customer},
        "gsi1sk": {"S": f"2026-11-{1 + number % 28:02d}#O{number:08d}"},
        "status": {"S": "paid"},
        "total": {"N": str(1000 + number % 9000)},
    }


def _load(client: Any, table: str, item_count: int) -> float:
    items = [_history_item(n) for n in range(item_count)]
    batches = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            request = client.batch_write_item(RequestItems=request)["UnprocessedItems"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - started


def _empty_partition(client: Any, table: str) -> Any:
    def run_once(number: int) -> None:
        answer = client.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"STOCK#NEVER-{number}"}},
        )
        assert answer["Count"] == 0

    return run_once


def _index_page(client: Any, table: str) -> Any:
    """The first page of 10 of one customer's 20 orders, newest first, from the index."""

    def run_once(number: int) -> None:
        answer = client.query(
            TableName=table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :c AND begins_with(gsi1sk, :m)",
            ExpressionAttributeValues={":c": {"S": "CUSTOMER#BENCH"}, ":m": {"S": "2026-11"}},
            ScanIndexForward=False,
            Limit=10,
        )
        assert answer["Count"] == 10

    return run_once


def main() -> None:
    with _emulator() as endpoint_url:
        client = _client(endpoint_url)
        tables = {size: f"bench-query-{size}" for size in TABLE_SIZES}
        for size, table in tables.items():
            _create_table(client, table)
            load_seconds = _load(client, table, size)
            print(f"loaded {size} items with BatchWriteItem in {load_seconds:.1f} s", flush=True)
        empty = _interleaved_medians_ms(
            {size: _empty_partition(client, table) for size, table in tables.items()}, SAMPLES
        )
        index = _interleaved_medians_ms(
            {size: _index_page(client, table) for size, table in tables.items()}, SAMPLES
        )

    small, large = TABLE_SIZES
    for what, figures in (("empty partition", empty), ("index page of 10", index)):
        print(
            f"dynamodb query ({what}, median of {SAMPLES}, interleaved): "
            f"{small} items {figures[small]:.1f} ms, {large} items {figures[large]:.1f} ms "
            f"(ratio {figures[large] / figures[small]:.2f})"
        )


if __name__ == "__main__":
    main()
