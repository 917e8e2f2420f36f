"""Stock over real HTTP against the local stack, then ``check-stock`` proves it balances."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from infra.local import demo_data

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def check_stock(stack: LocalStackUnderTest) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local.check_stock", "--port", str(stack.port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def ops(stack: LocalStackUnderTest) -> dict[str, str]:
    return stack.auth("ops-e2e", "ops")


@pytest.fixture
def fresh_world(stack: LocalStackUnderTest, ops: dict[str, str]) -> tuple[str, str, str]:
    """A new SKU and two new warehouses, so other tests' orders cannot touch them."""
    suffix = uuid.uuid4().hex[:8]
    sku, east, west = f"E2E-{suffix}", f"wh-e-{suffix}", f"wh-w-{suffix}"
    product = {
        "name": {"zh-CN": "端到端测试商品", "en": "End-to-end product"},
        "category": "electronics",
        "price": {"amount": 500, "currency": "CNY"},
    }
    assert requests.put(
        stack.url(f"/products/{sku}"), json=product, headers=ops, timeout=TIMEOUT
    ).ok
    for warehouse, city, lat, lon in (
        (east, "Hangzhou", 30.27, 120.16),
        (west, "Chengdu", 30.57, 104.07),
    ):
        body = {"name": f"{city} test DC", "city": city, "location": {"lat": lat, "lon": lon}}
        response = requests.put(
            stack.url(f"/warehouses/{warehouse}"), json=body, headers=ops, timeout=TIMEOUT
        )
        assert response.status_code == 201
    return sku, east, west


def call(
    stack: LocalStackUnderTest, method: str, path: str, headers: dict[str, str], body: Any = None
) -> requests.Response:
    return requests.request(method, stack.url(path), json=body, headers=headers, timeout=TIMEOUT)


def test_movements_over_http_leave_stock_that_check_stock_proves_balanced(
    stack: LocalStackUnderTest, ops: dict[str, str], fresh_world: tuple[str, str, str]
) -> None:
    sku, east, west = fresh_world
    received = call(
        stack, "POST", f"/stock/{sku}/{east}/receive", ops, {"quantity": 30, "note": "PO-1"}
    )
    assert received.status_code == 201, received.text
    assert received.json()["on_hand"] == 30

    adjusted = call(
        stack, "POST", f"/stock/{sku}/{east}/adjust", ops, {"delta": -4, "reason": "damage"}
    )
    assert adjusted.status_code == 201, adjusted.text

    moved = call(
        stack, "POST", "/transfers", ops, {"sku": sku, "from": east, "to": west, "quantity": 10}
    )
    assert moved.status_code == 201, moved.text
    assert (moved.json()["from"]["on_hand"], moved.json()["to"]["on_hand"]) == (16, 10)

    too_much = call(
        stack, "POST", "/transfers", ops, {"sku": sku, "from": west, "to": east, "quantity": 11}
    )
    assert too_much.status_code == 409
    assert too_much.json()["error"] == "insufficient_stock"

    levels = call(stack, "GET", f"/stock/{sku}", stack.auth("support-e2e", "support")).json()
    by_warehouse = {row["warehouse"]: row["on_hand"] for row in levels["warehouses"]}
    assert (by_warehouse[east], by_warehouse[west]) == (16, 10)
    assert levels["total_available"] == 26

    entries = call(stack, "GET", f"/stock/{sku}/{east}/ledger", ops).json()["items"]
    assert [(e["type"], e["on_hand"]) for e in entries] == [
        ("transferred_out", 16),
        ("adjusted", 26),
        ("received", 30),
    ]

    result = check_stock(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stock balances" in result.stdout


def test_check_stock_fails_when_a_counter_disagrees_with_its_ledger(
    stack: LocalStackUnderTest, ops: dict[str, str], fresh_world: tuple[str, str, str]
) -> None:
    sku, east, _ = fresh_world
    assert (
        call(stack, "POST", f"/stock/{sku}/{east}/receive", ops, {"quantity": 5}).status_code == 201
    )
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table, key = stack.env["TABLE_NAME"], {"pk": {"S": f"STOCK#{sku}#{east}"}, "sk": {"S": "LEVEL"}}

    def set_on_hand(value: int) -> None:
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET on_hand = :n, available = :n",
            ExpressionAttributeValues={":n": {"N": str(value)}},
        )

    set_on_hand(6)  # behind the ledger's back
    try:
        result = check_stock(stack)
        assert result.returncode == 1
        assert f"MISMATCH {sku} @ {east}: on_hand == ledger: stored 6, expected 5" in result.stdout
    finally:
        set_on_hand(5)
    assert check_stock(stack).returncode == 0


def test_demo_stock_is_received_once_through_the_stock_service(
    stack: LocalStackUnderTest, ops: dict[str, str]
) -> None:
    sku, warehouse, units = demo_data.demo_stock()[0]
    entries: list[dict[str, Any]] = []
    path = f"/stock/{sku}/{warehouse}/ledger?limit=100"
    while True:
        page = call(stack, "GET", path, ops).json()
        entries += page["items"]
        if page["next_cursor"] is None:
            break
        path = f"/stock/{sku}/{warehouse}/ledger?limit=100&cursor={page['next_cursor']}"
    first = entries[-1]  # newest first: the oldest is last
    assert (first["type"], first["quantity"], first["actor"]) == ("received", units, "demo-data")
    assert sum(1 for e in entries if e["actor"] == "demo-data") == 1
