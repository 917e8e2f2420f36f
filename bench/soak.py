"""A soak of the local stack: do throughput, latency and the AWS emulator's memory hold up?

8 concurrent clients each place an order and pay it by card (localstripe), over HTTP against
a local stack started for the run, until ``SOAK_ORDERS`` orders are paid (default 300, so that
``make bench`` stays short on a shared machine; ``SOAK_ORDERS=2000 python -m bench.soak`` runs
the full soak, about 10 minutes). The stack's per-customer order and payment limits are lifted:
8 customers order far faster than a shopper may. Printed: throughput and p95 of order + payment
for the first 100 orders and for the last 100; the emulator's resident memory growth per order
after the first 100 next to the DynamoDB data stored (DynamoDB's item sizes), what moto's
objects for the added items take, and the stream records still kept; the emulator's CPU per
order in both windows, by operation; and, from 40 more orders placed with the emulator's
profiler on (thread CPU time), its top costs by own and by cumulative time.

Targets (issue 18): memory grows only with the data stored; throughput and p95 of the last
window within 1.2x of the first; emulator CPU per order half of what it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
WINDOW = 100
PROFILED_ORDERS = 40
STARTUP_SECONDS = 240
TIMEOUT = 60
ADDRESS = {
    "name": "韩梅梅",
    "phone": "+8613900000000",
    "country": "CN",
    "region": "上海",
    "city": "上海市",
    "line1": "南京东路 1 号",
    "postcode": "200001",
}


def _free_ports(count: int) -> list[int]:
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass
class Stack:
    port: int
    data: dict[str, Any]
    stack_file: Path

    def url(self, path: str) -> str:
        return f"{self.data['api_url']}{path}"

    def auth(self, user_id: str, *groups: str) -> dict[str, str]:
        from infra.local.identity import mint_for_stack

        return {"Authorization": f"Bearer {mint_for_stack(self.stack_file, user_id, list(groups))}"}

    def emulator(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.data["moto_url"] + path,
            data=None if payload is None else json.dumps(payload).encode(),
            method="GET" if payload is None else "PUT",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.load(answer))


@contextlib.contextmanager
def local_stack(*extra: str, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A local stack on free ports for one benchmark, stopped (whole process group) after."""
    from infra.local.stack import stack_file_for

    port, moto_port = _free_ports(2)
    path = stack_file_for(port)
    command = [sys.executable, "-m", "infra.local.stack", "--port", str(port)]
    command += ["--moto-port", str(moto_port), "--warehouse-delay", "0", *extra]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the local stack exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the local stack was not ready in time")
            with contextlib.suppress(OSError, ValueError, requests.RequestException):
                data = json.loads(path.read_text())
                ours = data.get("pid") == process.pid
                if ours and requests.get(f"{data['api_url']}/health", timeout=5).ok:
                    break
            time.sleep(0.5)
        yield Stack(port=port, data=data, stack_file=path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def stocked_product(stack: Stack, stock: dict[str, int], price: int = 3900) -> str:
    ops = stack.auth("bench-ops", "ops")
    sku = f"BENCH-{uuid.uuid4().hex[:8]}"
    product = {
        "name": {"en": "Bench mug"},
        "category": "home",
        "price": {"amount": price, "currency": "CNY"},
    }
    response = requests.put(
        stack.url(f"/products/{sku}"), json=product, headers=ops, timeout=TIMEOUT
    )
    response.raise_for_status()
    for warehouse, quantity in stock.items():
        received = requests.post(
            stack.url(f"/stock/{sku}/{warehouse}/receive"),
            json={"quantity": quantity},
            headers=ops,
            timeout=TIMEOUT,
        )
        received.raise_for_status()
    return sku


def order_body(sku: str) -> dict[str, Any]:
    return {"lines": [{"sku": sku, "quantity": 1}], "shipping_address": ADDRESS}


@dataclass
class Sale:
    finished: float  # monotonic
    seconds: float  # order + payment


def _client(
    stack: Stack, sku: str, target: int, sales: list[Sale], lock: threading.Lock, failed: list[str]
) -> None:
    headers = stack.auth(f"soak-{uuid.uuid4().hex[:8]}", "customers")
    card = {"method": "card", "payment_method": "pm_card_visa"}
    with requests.Session() as session:
        while True:
            with lock:
                if len(sales) >= target or failed:
                    return
            started = time.monotonic()
            try:
                placed = session.post(
                    stack.url("/orders"), json=order_body(sku), headers=headers, timeout=TIMEOUT
                )
                if placed.status_code != 201:
                    raise RuntimeError(f"placing failed: {placed.status_code} {placed.text}")
                paid = session.post(
                    stack.url(f"/orders/{placed.json()['order_id']}/payments"),
                    json=card,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    timeout=TIMEOUT,
                )
                if paid.status_code != 201:
                    raise RuntimeError(f"paying failed: {paid.status_code} {paid.text}")
            except (RuntimeError, requests.RequestException) as error:
                with lock:
                    failed.append(str(error))  # every client stops: the figures would be wrong
                return
            with lock:
                sales.append(Sale(time.monotonic(), time.monotonic() - started))


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def _run_clients(
    stack: Stack, sku: str, target: int, sales: list[Sale], lock: threading.Lock
) -> None:
    failed: list[str] = []
    workers = [
        threading.Thread(target=_client, args=(stack, sku, target, sales, lock, failed))
        for _ in range(CLIENTS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failed:
        raise RuntimeError(f"the soak stopped: {failed[0]}")


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(1)  # so that the stack's process group is stopped on the way out


def main() -> None:
    target = int(os.environ.get("SOAK_ORDERS", "300"))
    # Eight customers order far more often than the per-customer limit allows a shopper.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    unlimited = str(100 * target)
    with local_stack(
        env={"ORDERS_PER_MINUTE": unlimited, "PAYMENTS_PER_MINUTE": unlimited}
    ) as stack:
        sku = stocked_product(stack, {"wh-sha": 10 * target})
        sales: list[Sale] = []
        lock = threading.Lock()
        marks: dict[str, dict[str, Any]] = {}

        stopped = threading.Event()

        def watch() -> None:
            while not stopped.is_set():
                with lock:
                    done = len(sales)
                if done >= WINDOW:
                    marks["first"] = stack.emulator("/_emulator/stats")
                    return
                time.sleep(0.05)

        begin = stack.emulator("/_emulator/stats")
        begin["at"] = time.monotonic()
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            _run_clients(stack, sku, target, sales, lock)
        finally:
            stopped.set()
            watcher.join()
        end = stack.emulator("/_emulator/stats")
        # The profile slows the emulator down, so it runs after the measured orders.
        stack.emulator("/_emulator/stats?profile=start")
        _run_clients(stack, sku, target + PROFILED_ORDERS, sales, lock)
        profiled = stack.emulator("/_emulator/stats?profile=top")
        end["profile"] = profiled.get("profile")

    sales.sort(key=lambda sale: sale.finished)
    sales = sales[:target]
    first, last = sales[:WINDOW], sales[-WINDOW:]
    first_rate = WINDOW / (first[-1].finished - begin["at"])
    last_rate = (WINDOW - 1) / (last[-1].finished - last[0].finished)
    mark = marks["first"]
    emulator_cpu_first = (mark["cpu_seconds"] - begin["cpu_seconds"]) / WINDOW
    emulator_cpu_after = (end["cpu_seconds"] - mark["cpu_seconds"]) / (len(sales) - WINDOW)
    growth = (end["rss_bytes"] - mark["rss_bytes"]) / (len(sales) - WINDOW)
    later = len(sales) - WINDOW
    added_items = max(1, end["stored_items"] - mark["stored_items"])
    per_item = (end["rss_bytes"] - mark["rss_bytes"]) / added_items
    print(f"soak: {CLIENTS} clients, {len(sales)} orders each placed and paid by card")
    print(
        f"throughput: first {WINDOW} {first_rate:.2f} orders/s, last {WINDOW} {last_rate:.2f} "
        f"orders/s (ratio {first_rate / last_rate:.2f})"
    )
    first_p95, last_p95 = _p95([s.seconds for s in first]), _p95([s.seconds for s in last])
    print(
        f"p95 order+payment: first {WINDOW} {first_p95:.2f} s, last {WINDOW} {last_p95:.2f} s "
        f"(ratio {last_p95 / first_p95:.2f})"
    )
    stored = end.get("stored_bytes", 0) - mark.get("stored_bytes", 0)
    print(
        f"aws emulator memory: {begin['rss_bytes'] / 2**20:.0f} MB at start, "
        f"{mark['rss_bytes'] / 2**20:.0f} MB after {WINDOW}, {end['rss_bytes'] / 2**20:.0f} MB "
        f"after {len(sales)} ({growth / 1024:.1f} KB per order after the first {WINDOW}); "
        f"DynamoDB items stored {mark['stored_items']} -> {end['stored_items']} "
        f"({per_item / 1024:.1f} KB of memory per item added), data stored "
        f"{mark.get('stored_bytes', 0) / 2**20:.1f} -> {end.get('stored_bytes', 0) / 2**20:.1f} MB "
        f"({stored / later / 1024:.1f} KB per order; memory grew "
        f"{(end['rss_bytes'] - mark['rss_bytes']) / max(1, stored):.1f}x the data added)"
    )
    held = end.get("stored_items_memory", 0) - mark.get("stored_items_memory", 0)
    print(
        f"  of which moto's objects for the items added {held / 2**20:.1f} MB "
        f"({held / max(1, stored):.1f}x their data); stream records kept at the end "
        f"{sum(end.get('stream_records', {}).values())} "
        f"({end.get('stream_records_memory', 0) / 2**20:.1f} MB)"
    )
    print(
        f"aws emulator CPU per order: first {WINDOW} {emulator_cpu_first * 1000:.0f} ms, "
        f"after {emulator_cpu_after * 1000:.0f} ms"
    )
    print("aws emulator CPU ms per order by operation (first window -> after):")
    before_ops, mark_ops, end_ops = begin["operations"], mark["operations"], end["operations"]
    rows = []
    for name, (calls, seconds) in end_ops.items():
        mark_calls, at_mark = mark_ops.get(name, [0, 0.0])
        first_calls, first_seconds = before_ops.get(name, [0, 0.0])
        first_ms = (at_mark - first_seconds) / WINDOW * 1000
        after_ms = (seconds - at_mark) / later * 1000
        per_order = ((mark_calls - first_calls) / WINDOW, (calls - mark_calls) / later)
        rows.append((after_ms, first_ms, per_order, name))
    for after_ms, first_ms, (first_calls, later_calls), name in sorted(rows, reverse=True)[:10]:
        print(
            f"  {name}: {first_ms:.1f} -> {after_ms:.1f} ms "
            f"({first_calls:.1f} -> {later_calls:.1f} calls per order)"
        )
    print(
        f"aws emulator top costs (profile of request handling over {PROFILED_ORDERS} more orders):"
    )
    print(end.get("profile", "(no profile)"))


if __name__ == "__main__":
    main()
