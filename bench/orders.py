"""What placing an order costs, in AWS calls, items, write units and client CPU.

For orders of 1, 5 and 20 lines, in steady state (warehouse list cached, clients warm), each
placement through ``services.orders.place_order`` (with an Idempotency-Key) is measured
three times over:

1. **calls**: every DynamoDB call the placement makes, counted by operation through a
   botocore event hook, with the items it read and the write units it consumed
   (``ReturnConsumedCapacity`` is added to each call by the hook; the emulator answers with
   placeholders for transactions, so the units are also computed from the written items by
   DynamoDB's rules: 2 per started KB per transactional item, plus 1 per KB per index entry);
2. **service CPU**: ``time.process_time`` around ``place_order``, with no hook installed;
3. **bare CPU**: a plain boto3 client making the same calls with the same payloads (captured
   in pass 1, with fresh ids so every transaction succeeds), built before the clock starts.

2 and 3 alternate over several rounds; the figures are medians, the ratio the median of the
rounds' ratios (its range is printed too: the machine may be shared).

The emulator runs in its own process (``python -m infra.local.aws_emulator``), so its CPU is
not in either figure: the ratio is what our code adds on top of the calls it has to make.
Target: one BatchGetItem per 100 keys plus one TransactWriteItems, and a ratio <= 1.5.
"""

from __future__ import annotations

import copy
import math
import os
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.transactions import _emulator

ROOT = Path(__file__).resolve().parent.parent
LINE_COUNTS = (1, 5, 20)
SAMPLES = {1: 20, 5: 15, 20: 8}  # placements per round
ROUNDS = 5
WARM_UP = 3
WAREHOUSES = {
    "wh-sha": (31.2304, 121.4737),
    "wh-pek": (39.9042, 116.4074),
    "wh-can": (23.1291, 113.2644),
    "wh-ctu": (30.5728, 104.0668),
    "wh-wuh": (30.5928, 114.3055),
}
SKUS = [f"BENCH-{n:02d}" for n in range(20)]
UNITS_PER_LEVEL = 1_000_000
ONE_KB = 1024
# Ids that must be fresh for a transaction to succeed again: order ids (and shipment ids
# built on them), event ids, ledger movement ids, idempotency keys.
_FRESH_IDS = re.compile(r"ord_[0-9A-Z]{26}|evt_[0-9a-f]{32}|(?<=#)[0-9a-f]{32}|bench-[0-9a-f]{32}")


def _configure(endpoint_url: str) -> None:
    """Point the app at the emulator, with the resources the template defines."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    from infra.local.provision import provision

    os.environ.update(provision(endpoint_url, stage="local"))
    from chalicelib.settings import get_settings
    from chalicelib.store import tables

    get_settings.cache_clear()
    tables.reset()


def _seed() -> None:
    from chalicelib.domain.catalogue import (
        LocalizedText,
        Location,
        ProductDetails,
        WarehouseDetails,
    )
    from chalicelib.domain.money import Money
    from chalicelib.services import catalogue, stock

    for warehouse, (lat, lon) in WAREHOUSES.items():
        catalogue.put_warehouse(
            warehouse, WarehouseDetails(warehouse, warehouse, Location(lat, lon))
        )
    for number, sku in enumerate(SKUS):
        details = ProductDetails(
            name=LocalizedText(zh_cn=f"基准商品 {number}", en=f"Benchmark product {number}"),
            category="home",
            price=Money(1000 + number, "CNY"),
        )
        catalogue.put_product(sku, details)
        for warehouse in WAREHOUSES:
            stock.receive(sku, warehouse, UNITS_PER_LEVEL, actor="bench")
    stock.forget_cached_warehouses()


# --- item sizes by DynamoDB's rules -----------------------------------------------------------


def _number_size(text: str) -> int:
    digits = len(Decimal(text).as_tuple().digits)
    return 1 + math.ceil(digits / 2)


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind in ("SS", "BS"):
        return sum(len(v if isinstance(v, bytes) else v.encode()) for v in inner)
    if kind == "NS":
        return sum(_number_size(v) for v in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _index_entries(item: dict[str, Any]) -> int:
    return sum(1 for n in (1, 2, 3) if f"gsi{n}pk" in item and f"gsi{n}sk" in item)


def _key_of(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


# --- pass 1: what the calls are -----------------------------------------------------------------


@dataclass
class Recording:
    calls: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    reported_read_units: float = 0.0
    reported_write_units: float = 0.0
    computed_write_units: int = 0
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _read_sizes: dict[tuple[str, str], int] = field(default_factory=dict)

    def on_params(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        self.requests.append((name, copy.deepcopy(params)))
        if name in ("BatchGetItem", "TransactWriteItems", "Query", "GetItem"):
            params["ReturnConsumedCapacity"] = "TOTAL"

    def after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        read: list[dict[str, Any]] = []
        for items in (parsed.get("Responses") or {}).values():
            if isinstance(items, list):
                read += items
        read += parsed.get("Items") or []
        if parsed.get("Item"):
            read.append(parsed["Item"])
        self.items_read += len(read)
        for item in read:
            if "pk" in item and "sk" in item:
                self._read_sizes[_key_of(item)] = item_size(item)
        consumed = parsed.get("ConsumedCapacity") or []
        units = sum(
            float(entry.get("CapacityUnits", 0))
            for entry in (consumed if isinstance(consumed, list) else [consumed])
        )
        if model.name == "TransactWriteItems":
            self.reported_write_units += units
        else:
            self.reported_read_units += units
        if model.name == "TransactWriteItems":
            self.computed_write_units += self._transaction_units(self.requests[-1][1])

    def _transaction_units(self, params: dict[str, Any]) -> int:
        units = 0
        for action in params["TransactItems"]:
            ((kind, request),) = action.items()
            if kind == "Put":
                size = item_size(request["Item"])
                indexes = _index_entries(request["Item"])
            elif kind == "Update":
                # The item after a counter update is the size it was when read (+ a digit).
                size = self._read_sizes.get(_key_of(request["Key"]), ONE_KB)
                indexes = 0
            else:
                size, indexes = item_size(request["Key"]), 0
            kilobytes = max(1, math.ceil(size / ONE_KB))
            units += 2 * kilobytes + indexes * kilobytes
        return units


@contextmanager
def _recording(client: Any) -> Iterator[Recording]:
    recording = Recording()
    events = client.meta.events
    events.register(
        "provide-client-params.dynamodb.*", recording.on_params, unique_id="bench-params"
    )
    events.register("after-call.dynamodb.*", recording.after_call, unique_id="bench-after")
    try:
        yield recording
    finally:
        events.unregister("provide-client-params.dynamodb.*", unique_id="bench-params")
        events.unregister("after-call.dynamodb.*", unique_id="bench-after")


# --- the measurements ---------------------------------------------------------------------------


def _lines(count: int) -> list[Any]:
    from chalicelib.domain.allocation import RequestedLine

    return [RequestedLine(sku, 1) for sku in SKUS[:count]]


def _address() -> Any:
    from chalicelib.domain.orders import ShippingAddress

    return ShippingAddress(
        name="基准 Bench",
        phone="+8613800000000",
        country="CN",
        region="上海",
        city="上海市",
        line1="人民大道 200 号",
        postcode="200003",
    )


def _place(count: int) -> None:
    from chalicelib.services import orders

    orders.place_order(
        "bench-customer",
        _lines(count),
        _address(),
        idempotency_key=f"bench-{uuid.uuid4().hex}",
    )


def _fresh_copy(value: Any, renames: dict[str, str]) -> Any:
    """``value`` with every id that must be unique replaced (consistently) by a new one."""

    def rename(match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in renames:
            if old.startswith("ord_"):
                renames[old] = "ord_" + uuid.uuid4().hex[:26].upper()
            elif old.startswith("evt_"):
                renames[old] = "evt_" + uuid.uuid4().hex
            elif old.startswith("bench-"):
                renames[old] = "bench-" + uuid.uuid4().hex
            else:
                renames[old] = uuid.uuid4().hex
        return renames[old]

    if isinstance(value, str):
        return _FRESH_IDS.sub(rename, value)
    if isinstance(value, dict):
        return {key: _fresh_copy(inner, renames) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fresh_copy(inner, renames) for inner in value]
    return value


@dataclass(frozen=True)
class Figures:
    lines: int
    calls: dict[str, float]
    items_read: float
    computed_write_units: float
    reported_read_units: float
    reported_write_units: float
    service_cpu_ms: float  # median over the rounds
    bare_cpu_ms: float
    ratio: float  # median of the rounds' ratios
    ratio_range: tuple[float, float]


def measure(count: int, samples: int, endpoint_url: str) -> Figures:
    import boto3

    from chalicelib.services import stock
    from chalicelib.store import tables

    for _ in range(WARM_UP):
        _place(count)
    stock.known_warehouses()  # cached well within its lifetime for the passes below

    with _recording(tables.client()) as recording:
        for _ in range(samples):
            _place(count)

    bare = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    bare.describe_table(TableName=tables.table_name())  # a warm client, like the service's
    captured = [
        (name, params)
        for name, params in recording.requests
        if name in ("BatchGetItem", "TransactWriteItems")
    ]
    # Alternate rounds of each so that a busy moment on the machine hits both alike.
    service_rounds: list[float] = []
    bare_rounds: list[float] = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(samples):
            _place(count)
        service_rounds.append((time.process_time() - started) / samples)

        calls = [(name, _fresh_copy(params, {})) for name, params in captured]
        started = time.process_time()
        for name, params in calls:
            if name == "BatchGetItem":
                bare.batch_get_item(**params)
            else:
                bare.transact_write_items(**params)
        bare_rounds.append((time.process_time() - started) / samples)
    ratios = sorted(s / b for s, b in zip(service_rounds, bare_rounds, strict=True))

    return Figures(
        lines=count,
        calls={name: n / samples for name, n in sorted(recording.calls.items())},
        items_read=recording.items_read / samples,
        computed_write_units=recording.computed_write_units / samples,
        reported_read_units=recording.reported_read_units / samples,
        reported_write_units=recording.reported_write_units / samples,
        service_cpu_ms=1000 * statistics.median(service_rounds),
        bare_cpu_ms=1000 * statistics.median(bare_rounds),
        ratio=statistics.median(ratios),
        ratio_range=(ratios[0], ratios[-1]),
    )


def _report(figures: Figures) -> str:
    calls = ", ".join(f"{name} {n:g}" for name, n in figures.calls.items())
    return (
        f"{figures.lines:>2} lines: calls/placement [{calls}]; items read {figures.items_read:g}; "
        f"write units {figures.computed_write_units:g} computed "
        f"(emulator reports {figures.reported_write_units:g} written, "
        f"{figures.reported_read_units:g} read); "
        f"client CPU {figures.service_cpu_ms:.2f} ms vs bare boto3 {figures.bare_cpu_ms:.2f} ms "
        f"= {figures.ratio:.2f}x (rounds {figures.ratio_range[0]:.2f}-"
        f"{figures.ratio_range[1]:.2f}; target <= 1.5)"
    )


def main() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    saved_environment = dict(os.environ)
    from chalicelib.observability import logger

    # The app still formats its log line per order (part of the cost measured); it just does
    # not land between the figures.
    log_stream = logger.registered_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    try:
        with _emulator() as endpoint_url:
            _configure(endpoint_url)
            _seed()
            print(
                f"order placement, {len(WAREHOUSES)} warehouses, Idempotency-Key sent, "
                "emulator in its own process",
                flush=True,
            )
            for count in LINE_COUNTS:
                print(_report(measure(count, SAMPLES[count], endpoint_url)), flush=True)
    finally:
        # Other benchmarks run in this process after this one.
        os.environ.clear()
        os.environ.update(saved_environment)
        from chalicelib.services import stock
        from chalicelib.settings import get_settings
        from chalicelib.store import tables

        get_settings.cache_clear()
        tables.reset()
        stock.forget_cached_warehouses()
        logger.registered_handler.setStream(log_stream).close()


if __name__ == "__main__":
    main()
