"""TransactWriteItems cost against table size, through the local AWS emulator over HTTP.

Stock moto copies every table a transaction touches, so a transaction got slower as the table
grew (13 ms at 100 items, 873 ms at 20,000). The emulator checks every condition first and
writes only after, so the figure should not depend on the table: the ratio should stay near 1.

The emulator runs as its own process (``python -m infra.local.aws_emulator --port 0``), as in
the local stack. Each transaction is shaped like an order: two conditional stock decrements
and a conditional put of the order.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
TABLE_SIZES = (100, 20_000)
SAMPLES = 30
WARM_UP = 3
BATCH_SIZE = 25  # BatchWriteItem's limit
STOCK_KEYS = (
    {"pk": {"S": "STOCK#SKU-A"}, "sk": {"S": "WH#sh"}},
    {"pk": {"S": "STOCK#SKU-B"}, "sk": {"S": "WH#sh"}},
)


@contextmanager
def _emulator() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.aws_emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        # moto lists the template's resources it does not model; that is provision's concern.
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready_line = process.stdout.readline()
        if "listening on " not in ready_line:
            raise RuntimeError(f"aws emulator did not start: {ready_line!r}")
        yield ready_line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(max_pool_connections=8),
    )


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
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _filler_item(number: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"PRODUCT#P{number:06d}"},
        "sk": {"S": "PRODUCT"},
        "name_en": {"S": f"Product {number}"},
        "name_zh": {"S": f"商品 {number}"},
        "category": {"S": f"category-{number % 12}"},
        "price": {"N": str(1000 + number % 9000)},
        "active": {"BOOL": True},
    }


def _load(client: Any, table: str, item_count: int) -> float:
    """Fill the table with BatchWriteItem; returns the seconds it took."""
    stock = [{**key, "available": {"N": "1000000"}, "reserved": {"N": "0"}} for key in STOCK_KEYS]
    items = stock + [_filler_item(n) for n in range(item_count - len(stock))]
    batches = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            request = client.batch_write_item(RequestItems=request)["UnprocessedItems"]

    started = time.perf_counter()
    # The emulator serves one request at a time; a few client threads hide the HTTP round trip.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - started


def _order_transaction(client: Any, table: str, order_number: int, quantity: int) -> None:
    decrements = [
        {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET available = available - :q, reserved = reserved + :q",
                "ConditionExpression": "available >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
            }
        }
        for key in STOCK_KEYS
    ]
    order = {
        "Put": {
            "TableName": table,
            "Item": {
                "pk": {"S": f"ORDER#O{order_number:08d}"},
                "sk": {"S": "ORDER"},
                "status": {"S": "reserved"},
                "quantity": {"N": str(quantity)},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    client.transact_write_items(TransactItems=[*decrements, order])


def _interleaved_medians_ms(
    runs: dict[int, Callable[[int], None]], samples: int = SAMPLES
) -> dict[int, float]:
    """Median milliseconds per run, sampling the runs in turn so that drift hits them alike."""
    for number in range(WARM_UP):
        for run_once in runs.values():
            run_once(number)
    durations: dict[int, list[float]] = {size: [] for size in runs}
    for number in range(WARM_UP, WARM_UP + samples):
        for size, run_once in runs.items():
            started = time.perf_counter()
            run_once(number)
            durations[size].append(time.perf_counter() - started)
    return {size: statistics.median(times) * 1000 for size, times in durations.items()}


def _committed_order(client: Any, table: str) -> Callable[[int], None]:
    def run_once(number: int) -> None:
        _order_transaction(client, table, number, quantity=1)

    return run_once


def _cancelled_order(client: Any, table: str) -> Callable[[int], None]:
    def run_once(number: int) -> None:
        try:
            _order_transaction(client, table, 10**7 + number, quantity=10**9)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                return
            raise
        raise AssertionError("a transaction asking for more than is available went through")

    return run_once


def main() -> None:
    with _emulator() as endpoint_url:
        client = _client(endpoint_url)
        tables = {size: f"bench-transactions-{size}" for size in TABLE_SIZES}
        for size, table in tables.items():
            _create_table(client, table)
            load_seconds = _load(client, table, size)
            print(f"loaded {size} items with BatchWriteItem in {load_seconds:.1f} s", flush=True)
        committed = _interleaved_medians_ms(
            {size: _committed_order(client, table) for size, table in tables.items()}
        )
        cancelled = _interleaved_medians_ms(
            {size: _cancelled_order(client, table) for size, table in tables.items()}
        )

    small, large = TABLE_SIZES
    for outcome, figures in (("committed", committed), ("cancelled", cancelled)):
        print(
            f"dynamodb transact_write_items ({outcome}, median of {SAMPLES}): "
            f"{small} items {figures[small]:.1f} ms/tx, {large} items {figures[large]:.1f} ms/tx "
            f"(ratio {figures[large] / figures[small]:.2f})"
        )


if __name__ == "__main__":
    main()
