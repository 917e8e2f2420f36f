"""A stateful property test of stock and orders together, over the real services and moto.

Hypothesis runs random sequences of receive / adjust / transfer / place order / cancel /
expire. A plain-Python model predicts every counter and every refusal (placing uses the same
pure ``allocation.plan`` on the model's levels, so the model also predicts which warehouses
ship), and after each step:

* the stored levels equal the model's, and ``available`` is never negative;
* the stock audit balances: ``on_hand`` and ``reserved`` equal the sums of the ledger, and
  ``reserved`` equals the open reservations of the orders.

In-process moto is not thread-safe, so nothing here runs concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import main_table_definition
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from moto import mock_aws

from chalicelib.domain import allocation, places
from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.catalogue import LocalizedText, Location, ProductDetails, WarehouseDetails
from chalicelib.domain.errors import InsufficientStock, InvalidTransition, OutOfStock
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus, ShippingAddress
from chalicelib.services import catalogue, stock
from chalicelib.services import orders as order_service
from chalicelib.services.stock_audit import audit_stock
from chalicelib.settings import get_settings
from chalicelib.store import inventory, tables

TABLE = "orderdesk-state-machine"
WAREHOUSES = {
    "SH": Location(31.2304, 121.4737),
    "HZ": Location(30.2741, 120.1551),
    "BJ": Location(39.9042, 116.4074),
}
SKUS = ("MUG", "TEA")
ADDRESS = ShippingAddress(
    name="李雷",
    phone="+8613800000000",
    country="CN",
    region="上海",
    city="上海市",
    line1="人民大道 200 号",
    postcode="200003",
)

skus = st.sampled_from(SKUS)
warehouses = st.sampled_from(sorted(WAREHOUSES))
quantities = st.integers(min_value=1, max_value=6)


class StockAndOrders(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._aws = mock_aws()
        self._aws.start()
        tables.reset()
        get_settings.cache_clear()
        stock.forget_cached_warehouses()
        tables.client().create_table(TableName=TABLE, **main_table_definition())
        # (sku, warehouse) -> [on_hand, reserved], as the model predicts them.
        self.model: dict[tuple[str, str], list[int]] = {
            (sku, warehouse): [0, 0] for sku in SKUS for warehouse in WAREHOUSES
        }
        # order id -> (status, {(sku, warehouse): quantity})
        self.orders: dict[str, tuple[str, dict[tuple[str, str], int]]] = {}

    def teardown(self) -> None:
        tables.reset()
        stock.forget_cached_warehouses()
        self._aws.stop()

    @initialize()
    def catalogue(self) -> None:
        for warehouse, location in WAREHOUSES.items():
            catalogue.put_warehouse(warehouse, WarehouseDetails(warehouse, warehouse, location))
        for sku in SKUS:
            details = ProductDetails(
                name=LocalizedText(en=sku), category="home", price=Money(1000, "CNY")
            )
            catalogue.put_product(sku, details)

    # --- model helpers --------------------------------------------------------------------

    def available(self, sku: str, warehouse: str) -> int:
        on_hand, reserved = self.model[(sku, warehouse)]
        return on_hand - reserved

    def levels(self) -> list[StockLevel]:
        return [
            StockLevel(sku, warehouse, on_hand=on_hand, reserved=reserved)
            for (sku, warehouse), (on_hand, reserved) in self.model.items()
        ]

    def open_orders(self) -> list[str]:
        return [oid for oid, (status, _) in self.orders.items() if status == "pending_payment"]

    def release(self, order_id: str, status: str) -> None:
        _, held = self.orders[order_id]
        for key, quantity in held.items():
            self.model[key][1] -= quantity
        self.orders[order_id] = (status, held)

    # --- stock movements ------------------------------------------------------------------

    @rule(sku=skus, warehouse=warehouses, quantity=quantities)
    def receive(self, sku: str, warehouse: str, quantity: int) -> None:
        stock.receive(sku, warehouse, quantity, actor="ops")
        self.model[(sku, warehouse)][0] += quantity

    @rule(
        sku=skus,
        warehouse=warehouses,
        delta=st.integers(min_value=-6, max_value=6).filter(bool),
    )
    def adjust(self, sku: str, warehouse: str, delta: int) -> None:
        if self.available(sku, warehouse) + delta < 0:
            with pytest.raises(InsufficientStock):
                stock.adjust(sku, warehouse, delta, reason="count", actor="ops")
            return
        stock.adjust(sku, warehouse, delta, reason="count", actor="ops")
        self.model[(sku, warehouse)][0] += delta

    @rule(sku=skus, route=st.permutations(sorted(WAREHOUSES)), quantity=quantities)
    def transfer(self, sku: str, route: list[str], quantity: int) -> None:
        source, destination = route[:2]
        if self.available(sku, source) < quantity:
            with pytest.raises(InsufficientStock):
                stock.transfer(sku, source, destination, quantity, actor="ops")
            return
        stock.transfer(sku, source, destination, quantity, actor="ops")
        self.model[(sku, source)][0] -= quantity
        self.model[(sku, destination)][0] += quantity

    # --- orders ---------------------------------------------------------------------------

    @rule(
        wanted=st.dictionaries(skus, st.integers(min_value=1, max_value=8), min_size=1),
        customer=st.sampled_from(["alice", "bob"]),
    )
    def place_order(self, wanted: dict[str, int], customer: str) -> None:
        lines = [RequestedLine(sku, quantity) for sku, quantity in wanted.items()]
        destination = places.locate(ADDRESS.city, ADDRESS.region)
        try:
            expected = allocation.plan(
                lines, self.levels(), destination, warehouse_locations=WAREHOUSES
            )
        except OutOfStock as shortage:
            with pytest.raises(OutOfStock) as refused:
                order_service.place_order(customer, lines, ADDRESS)
            assert refused.value.details == shortage.details
            return
        placement = order_service.place_order(customer, lines, ADDRESS)
        held = {(a.sku, a.warehouse): a.quantity for a in expected.allocations}
        placed = {
            (line["sku"], a["warehouse"]): a["quantity"]
            for line in placement.body["lines"]
            for a in line["allocations"]
        }
        assert placed == held
        for key, quantity in held.items():
            self.model[key][1] += quantity
        self.orders[placement.order_id] = ("pending_payment", held)

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def cancel_order(self, data: Any) -> None:
        # By position in placing order: ids are random, positions replay the same way.
        placed = list(self.orders)
        order_id = placed[data.draw(st.integers(min_value=0, max_value=len(placed) - 1))]
        status, _ = self.orders[order_id]
        owner = order_service.get_order(order_id, viewer_id="ops", staff=True).customer_id
        if status == "expired":
            with pytest.raises(InvalidTransition):
                order_service.cancel_order(order_id, actor_id=owner, is_ops=False)
            return
        cancelled = order_service.cancel_order(order_id, actor_id=owner, is_ops=False)
        assert cancelled.status is OrderStatus.CANCELLED
        if status == "pending_payment":
            self.release(order_id, "cancelled")

    @precondition(lambda self: bool(self.orders))
    @rule()
    def expire_everything_due(self) -> None:
        report = order_service.expire_due_orders(datetime.now(UTC) + timedelta(days=1))
        assert sorted(report.expired) == sorted(self.open_orders())
        for order_id in report.expired:
            self.release(order_id, "expired")

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def stored_levels_match_the_model(self) -> None:
        stored = inventory.get_levels_many(self.model, consistent=True)
        for key, (on_hand, reserved) in self.model.items():
            level = stored[key]
            assert (level.on_hand, level.reserved) == (on_hand, reserved), key
            assert level.available >= 0, key

    @invariant()
    def the_ledger_and_the_orders_balance(self) -> None:
        audit = audit_stock()
        assert audit.balanced, [m.as_dict() for m in audit.mismatches]


@pytest.fixture
def isolated_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TABLE_NAME", TABLE)
    yield
    get_settings.cache_clear()
    tables.reset()


def test_random_stock_and_order_sequences_keep_every_counter_balanced(isolated_aws: None) -> None:
    run_state_machine_as_test(
        StockAndOrders,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            # Every example starts moto afresh, so shrinking a failure would take minutes:
            # a failing run prints its (at most 15-step) sequence as it was found.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
