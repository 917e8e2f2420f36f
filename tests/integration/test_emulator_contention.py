"""Contention mode: the emulator cancels overlapping transactions and throttles hot partitions.

Off by default. Switched on here per test, for the emulator running in this process, and
reached over HTTP with boto3 as the app reaches it. The tests also show how botocore's
standard retries (``store/tables.py``: 5 attempts) meet each refusal: a throttled plain call
is retried and lands, while a cancelled transaction is handed back at once for the caller to
decide.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local import aws_emulator
from infra.local.aws_emulator import (
    CONTROL_PATH,
    Contention,
    EmulatorServer,
    contention_status,
    set_contention,
    start_in_thread,
)

REGION = "us-east-1"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def contention_off_afterwards() -> Iterator[None]:
    yield
    set_contention(None)


def _client(url: str, attempts: int) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": attempts, "mode": "standard"}),
    )


@pytest.fixture
def clock_held_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request in the same instant, however slowly this machine runs them: write units
    are counted per second, so a stalled test could otherwise straddle two windows."""
    now = time.monotonic()
    monkeypatch.setattr(aws_emulator, "contention_clock", lambda: now)


@pytest.fixture
def table(emulator: EmulatorServer) -> str:
    name = f"contention-{uuid.uuid4().hex[:8]}"
    _client(emulator.url, 1).create_table(
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
    )
    return name


def _key(pk: str, sk: str = "LEVEL") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _take(table: str, pk: str, sk: str = "LEVEL") -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": _key(pk, sk),
            "UpdateExpression": "ADD taken :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def _taken(client: Any, table: str, pk: str, sk: str = "LEVEL") -> int:
    item = client.get_item(TableName=table, Key=_key(pk, sk), ConsistentRead=True).get("Item")
    return int(item["taken"]["N"]) if item else 0


def _reasons(error: ClientError) -> list[str]:
    return [reason["Code"] for reason in error.response.get("CancellationReasons", [])]


def test_without_contention_mode_back_to_back_transactions_on_one_item_all_land(
    emulator: EmulatorServer, table: str
) -> None:
    client = _client(emulator.url, 1)
    for _ in range(20):
        client.transact_write_items(TransactItems=[_take(table, "STOCK#A")])
    assert _taken(client, table, "STOCK#A") == 20
    assert contention_status()["enabled"] is False


def test_transaction_overlapping_one_in_flight_is_cancelled_with_transaction_conflict(
    emulator: EmulatorServer, table: str
) -> None:
    set_contention(Contention(conflict_window_s=2.0, partition_wcu=1000))
    client = _client(emulator.url, 5)
    client.transact_write_items(TransactItems=[_take(table, "STOCK#A")])

    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[_take(table, "STOCK#B"), _take(table, "STOCK#A")]
        )

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _reasons(refused.value) == ["None", "TransactionConflict"]
    # botocore does not retry a cancelled transaction: the caller sees it on the first answer.
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert (_taken(client, table, "STOCK#A"), _taken(client, table, "STOCK#B")) == (1, 0)
    assert contention_status()["conflicts"] == 1


def test_transaction_after_the_in_flight_window_lands(emulator: EmulatorServer, table: str) -> None:
    set_contention(Contention(conflict_window_s=0.2, partition_wcu=1000))
    client = _client(emulator.url, 1)
    client.transact_write_items(TransactItems=[_take(table, "STOCK#A")])
    time.sleep(0.3)
    client.transact_write_items(TransactItems=[_take(table, "STOCK#A")])
    assert _taken(client, table, "STOCK#A") == 2


def test_transaction_beyond_the_partition_rate_is_cancelled_with_throttling_error(
    emulator: EmulatorServer, table: str, clock_held_still: None
) -> None:
    # Two items of one partition cost 2 x 2 units per transaction: the third passes 10 units.
    set_contention(Contention(conflict_window_s=0.0, partition_wcu=10))
    client = _client(emulator.url, 5)
    both = [_take(table, "STOCK#A", "LEVEL#0"), _take(table, "STOCK#A", "LEVEL#1")]
    client.transact_write_items(TransactItems=both)
    client.transact_write_items(TransactItems=both)

    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[*both, _take(table, "STOCK#OTHER")])

    assert _reasons(refused.value) == ["ThrottlingError", "ThrottlingError", "None"]
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert _taken(client, table, "STOCK#A", "LEVEL#0") == 2
    assert _taken(client, table, "STOCK#OTHER") == 0
    # Another partition has its own budget.
    client.transact_write_items(TransactItems=[_take(table, "STOCK#OTHER")])
    assert _taken(client, table, "STOCK#OTHER") == 1


def test_plain_write_beyond_the_partition_rate_gets_throttling_exception(
    emulator: EmulatorServer, table: str, clock_held_still: None
) -> None:
    set_contention(Contention(conflict_window_s=0.0, partition_wcu=2))
    once = _client(emulator.url, 1)
    put = {"TableName": table, "Item": {**_key("HOT"), "n": {"N": "1"}}}
    once.put_item(**put)
    once.put_item(**put)

    with pytest.raises(ClientError) as refused:
        once.put_item(**put)

    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_botocore_standard_retries_carry_a_throttled_plain_write_through(
    emulator: EmulatorServer, table: str
) -> None:
    set_contention(Contention(conflict_window_s=0.0, partition_wcu=2))
    retrying = _client(emulator.url, 5)
    update = {
        "TableName": table,
        "Key": _key("HOT"),
        "UpdateExpression": "ADD taken :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    retrying.update_item(**update)
    retrying.update_item(**update)
    started = time.monotonic()

    answer = retrying.update_item(**update)

    # Throttled at first, retried with backoff until the partition's second had passed.
    assert answer["ResponseMetadata"]["RetryAttempts"] >= 1
    assert time.monotonic() - started < 16  # botocore's backoff counts against the budget
    assert _taken(retrying, table, "HOT") == 3
    assert contention_status()["throttles"] >= 1


def test_contention_mode_is_switched_over_http_on_a_running_emulator(
    emulator: EmulatorServer,
) -> None:
    request = urllib.request.Request(
        emulator.url + CONTROL_PATH,
        data=json.dumps({"enabled": True, "conflict_window_ms": 50, "partition_wcu": 300}).encode(),
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        status = json.load(answer)
    assert status["enabled"] is True
    assert (status["conflict_window_ms"], status["partition_wcu"]) == (50, 300)
    off = urllib.request.Request(
        emulator.url + CONTROL_PATH, data=b'{"enabled": false}', method="PUT"
    )
    with urllib.request.urlopen(off, timeout=5) as answer:
        assert json.load(answer)["enabled"] is False
