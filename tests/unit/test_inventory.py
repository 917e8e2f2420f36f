from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.domain import inventory
from chalicelib.domain.errors import InsufficientStock, InvalidInput
from chalicelib.domain.inventory import MovementType, StockLevel

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def level(
    on_hand: int = 0, reserved: int = 0, threshold: int = 0, warehouse: str = "SH"
) -> StockLevel:
    return StockLevel(
        sku="MUG-1",
        warehouse=warehouse,
        on_hand=on_hand,
        reserved=reserved,
        low_stock_threshold=threshold,
    )


def test_available_is_on_hand_minus_reserved() -> None:
    assert level(on_hand=10, reserved=3).available == 7


def test_can_reserve_only_positive_quantities_up_to_what_is_available() -> None:
    stock = level(on_hand=5, reserved=2)
    assert stock.can_reserve(3)
    assert not stock.can_reserve(4)
    assert not stock.can_reserve(0)


def test_receiving_adds_to_on_hand_and_records_it() -> None:
    after, movement = inventory.receive(level(on_hand=2), 5, at=NOW, actor="ops-1", note="PO 7")
    assert (after.on_hand, after.reserved) == (7, 0)
    assert movement.type is MovementType.RECEIVED
    assert (movement.quantity, movement.on_hand, movement.reserved) == (5, 7, 0)
    assert (movement.note, movement.actor, movement.at) == ("PO 7", "ops-1", NOW)


def test_reserving_holds_stock_for_the_order_without_touching_on_hand() -> None:
    after, movement = inventory.reserve(level(on_hand=5), 3, order_id="O1", at=NOW, actor="u1")
    assert (after.on_hand, after.reserved, after.available) == (5, 3, 2)
    assert movement.reference == "O1"
    assert movement.requires_available == 3


def test_reserving_more_than_available_is_refused_with_what_is_left() -> None:
    with pytest.raises(InsufficientStock) as raised:
        inventory.reserve(level(on_hand=5, reserved=4), 2, order_id="O1", at=NOW, actor="u1")
    assert raised.value.code == "insufficient_stock"
    assert raised.value.details["available"] == 1
    assert raised.value.details["requested"] == 2


def test_committing_is_a_marker_that_moves_no_counter() -> None:
    before = level(on_hand=5, reserved=3)
    after, movement = inventory.commit(before, 3, order_id="O1", at=NOW, actor="payments")
    assert after == before
    assert movement.type is MovementType.COMMITTED
    assert (movement.on_hand_delta, movement.reserved_delta) == (0, 0)


def test_shipping_takes_the_goods_off_the_shelf_and_out_of_the_reservation() -> None:
    after, _ = inventory.ship(level(on_hand=5, reserved=3), 2, order_id="O1", at=NOW, actor="wh")
    assert (after.on_hand, after.reserved, after.available) == (3, 1, 2)


def test_releasing_gives_reserved_stock_back() -> None:
    after, _ = inventory.release(
        level(on_hand=5, reserved=3), 3, order_id="O1", at=NOW, actor="system"
    )
    assert (after.on_hand, after.reserved, after.available) == (5, 0, 5)


@pytest.mark.parametrize("operation", [inventory.commit, inventory.release, inventory.ship])
def test_nothing_can_leave_a_reservation_that_does_not_hold_it(operation) -> None:
    with pytest.raises(InsufficientStock):
        operation(level(on_hand=5, reserved=1), 2, order_id="O1", at=NOW, actor="x")


def test_a_negative_adjustment_cannot_eat_into_reserved_stock() -> None:
    with pytest.raises(InsufficientStock):
        inventory.adjust(level(on_hand=5, reserved=4), -2, reason="damage", at=NOW, actor="ops")
    after, movement = inventory.adjust(
        level(on_hand=5, reserved=4), -1, reason="damage", at=NOW, actor="ops"
    )
    assert (after.on_hand, after.available) == (4, 0)
    assert movement.quantity == -1
    assert movement.reason is inventory.AdjustmentReason.DAMAGE


def test_adjustments_need_a_known_reason_and_a_non_zero_delta() -> None:
    with pytest.raises(InvalidInput):
        inventory.adjust(level(on_hand=5), 1, reason="magic", at=NOW, actor="ops")
    with pytest.raises(InvalidInput):
        inventory.adjust(level(on_hand=5), 0, reason="count", at=NOW, actor="ops")


@pytest.mark.parametrize("quantity", [0, -3, True, 2.5])
def test_quantities_must_be_positive_integers(quantity) -> None:
    with pytest.raises(InvalidInput):
        inventory.receive(level(), quantity, at=NOW, actor="ops")
    with pytest.raises(InvalidInput):
        inventory.reserve(level(on_hand=9), quantity, order_id="O1", at=NOW, actor="u")


def test_a_transfer_moves_stock_between_warehouses_under_one_reference() -> None:
    moved = inventory.transfer(
        level(on_hand=6, reserved=2, warehouse="SH"),
        level(on_hand=1, warehouse="BJ"),
        4,
        transfer_id="T1",
        at=NOW,
        actor="ops",
    )
    assert (moved.source.on_hand, moved.source.available) == (2, 0)
    assert moved.destination.on_hand == 5
    assert moved.outgoing.type is MovementType.TRANSFERRED_OUT
    assert moved.incoming.type is MovementType.TRANSFERRED_IN
    assert moved.outgoing.reference == moved.incoming.reference == "T1"


def test_a_transfer_cannot_take_reserved_stock_or_stay_in_one_warehouse() -> None:
    with pytest.raises(InsufficientStock):
        inventory.transfer(
            level(on_hand=6, reserved=3, warehouse="SH"),
            level(warehouse="BJ"),
            4,
            transfer_id="T1",
            at=NOW,
            actor="ops",
        )
    with pytest.raises(InvalidInput):
        inventory.transfer(level(on_hand=6), level(), 1, transfer_id="T2", at=NOW, actor="ops")


def test_a_customer_return_goes_back_on_the_shelf() -> None:
    after, movement = inventory.return_to_stock(
        level(on_hand=1), 2, reference="R1", at=NOW, actor="ops"
    )
    assert after.on_hand == 3
    assert movement.type is MovementType.RETURNED


def test_low_stock_is_crossed_when_available_falls_to_the_threshold_from_above() -> None:
    assert inventory.crossed_low_threshold(level(on_hand=6, threshold=5), level(6, 1, 5))
    assert inventory.crossed_low_threshold(level(on_hand=6, threshold=5), level(3, 0, 5))


def test_low_stock_is_not_crossed_again_while_already_below_or_when_staying_above() -> None:
    assert not inventory.crossed_low_threshold(level(5, 0, 5), level(5, 2, 5))
    assert not inventory.crossed_low_threshold(level(9, 0, 5), level(9, 3, 5))
    assert not inventory.crossed_low_threshold(level(2, 0, 5), level(9, 0, 5))


def test_recovering_above_the_threshold_rearms_the_alert() -> None:
    assert inventory.recovered_above_threshold(level(5, 0, 5), level(6, 0, 5))
    assert not inventory.recovered_above_threshold(level(6, 0, 5), level(7, 0, 5))


def test_ledger_balance_is_derived_from_types_and_quantities() -> None:
    stock = level()
    movements = []
    stock, m = inventory.receive(stock, 10, at=NOW, actor="ops")
    movements.append(m)
    stock, m = inventory.reserve(stock, 4, order_id="O1", at=NOW, actor="u")
    movements.append(m)
    stock, m = inventory.commit(stock, 4, order_id="O1", at=NOW, actor="p")
    movements.append(m)
    stock, m = inventory.ship(stock, 3, order_id="O1", at=NOW, actor="wh")
    movements.append(m)
    stock, m = inventory.adjust(stock, -2, reason="loss", at=NOW, actor="ops")
    movements.append(m)
    assert inventory.ledger_balance(movements) == (stock.on_hand, stock.reserved) == (5, 1)
    assert inventory.open_reservations(movements) == {"O1": 1}


# -- stateful: random sequences of operations keep the ledger and counters in step --------

WAREHOUSES = ("SH", "BJ", "GZ")
quantities = st.integers(min_value=1, max_value=12)


class InventoryLedger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.levels = {w: level(warehouse=w, threshold=3) for w in WAREHOUSES}
        self.ledger: dict[str, list[inventory.Movement]] = {w: [] for w in WAREHOUSES}
        # Our own bookkeeping of what each order holds where, independent of the ledger.
        self.holds: dict[tuple[str, str], int] = {}
        self.counter = 0

    def _apply(self, warehouse: str, result: tuple[StockLevel, inventory.Movement]) -> None:
        before = self.levels[warehouse]
        after, movement = result
        assert before.available >= movement.requires_available
        assert before.reserved >= movement.requires_reserved
        assert after.available - before.available == movement.available_delta
        self.levels[warehouse] = after
        self.ledger[warehouse].append(movement)

    def _next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @rule(warehouse=st.sampled_from(WAREHOUSES), quantity=quantities)
    def receive(self, warehouse: str, quantity: int) -> None:
        self._apply(
            warehouse, inventory.receive(self.levels[warehouse], quantity, at=NOW, actor="ops")
        )

    @rule(
        warehouse=st.sampled_from(WAREHOUSES),
        delta=st.integers(min_value=-12, max_value=12).filter(bool),
        reason=st.sampled_from(list(inventory.AdjustmentReason)),
    )
    def adjust(self, warehouse: str, delta: int, reason: inventory.AdjustmentReason) -> None:
        current = self.levels[warehouse]
        if current.available + delta < 0:
            with pytest.raises(InsufficientStock):
                inventory.adjust(current, delta, reason=reason, at=NOW, actor="ops")
            return
        self._apply(warehouse, inventory.adjust(current, delta, reason=reason, at=NOW, actor="ops"))

    @rule(warehouse=st.sampled_from(WAREHOUSES), quantity=quantities)
    def reserve(self, warehouse: str, quantity: int) -> None:
        current = self.levels[warehouse]
        order_id = self._next_id("O")
        if not current.can_reserve(quantity):
            with pytest.raises(InsufficientStock):
                inventory.reserve(current, quantity, order_id=order_id, at=NOW, actor="u")
            return
        self._apply(
            warehouse,
            inventory.reserve(current, quantity, order_id=order_id, at=NOW, actor="u"),
        )
        self.holds[(order_id, warehouse)] = quantity

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        order_id, warehouse = data.draw(st.sampled_from(sorted(self.holds)))
        quantity = self.holds[(order_id, warehouse)]
        self._apply(
            warehouse,
            inventory.commit(
                self.levels[warehouse], quantity, order_id=order_id, at=NOW, actor="p"
            ),
        )

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        order_id, warehouse = data.draw(st.sampled_from(sorted(self.holds)))
        quantity = self.holds.pop((order_id, warehouse))
        self._apply(
            warehouse,
            inventory.release(
                self.levels[warehouse], quantity, order_id=order_id, at=NOW, actor="system"
            ),
        )

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        order_id, warehouse = data.draw(st.sampled_from(sorted(self.holds)))
        quantity = self.holds.pop((order_id, warehouse))
        self._apply(
            warehouse,
            inventory.ship(self.levels[warehouse], quantity, order_id=order_id, at=NOW, actor="wh"),
        )

    @rule(warehouse=st.sampled_from(WAREHOUSES), quantity=quantities)
    def return_to_stock(self, warehouse: str, quantity: int) -> None:
        self._apply(
            warehouse,
            inventory.return_to_stock(
                self.levels[warehouse], quantity, reference=self._next_id("R"), at=NOW, actor="ops"
            ),
        )

    @rule(
        pair=st.permutations(WAREHOUSES).map(lambda ws: ws[:2]),
        quantity=quantities,
    )
    def transfer(self, pair: tuple[str, str], quantity: int) -> None:
        source, destination = pair
        transfer_id = self._next_id("T")
        if self.levels[source].available < quantity:
            with pytest.raises(InsufficientStock):
                inventory.transfer(
                    self.levels[source],
                    self.levels[destination],
                    quantity,
                    transfer_id=transfer_id,
                    at=NOW,
                    actor="ops",
                )
            return
        moved = inventory.transfer(
            self.levels[source],
            self.levels[destination],
            quantity,
            transfer_id=transfer_id,
            at=NOW,
            actor="ops",
        )
        self._apply(source, (moved.source, moved.outgoing))
        self._apply(destination, (moved.destination, moved.incoming))

    @invariant()
    def on_hand_and_reserved_equal_the_sum_of_the_ledger(self) -> None:
        for warehouse, stock in self.levels.items():
            assert inventory.ledger_balance(self.ledger[warehouse]) == (
                stock.on_hand,
                stock.reserved,
            )

    @invariant()
    def reserved_equals_the_open_reservations(self) -> None:
        for warehouse, stock in self.levels.items():
            expected = {o: q for (o, w), q in self.holds.items() if w == warehouse}
            assert inventory.open_reservations(self.ledger[warehouse]) == expected
            assert stock.reserved == sum(expected.values())

    @invariant()
    def available_is_never_negative(self) -> None:
        for stock in self.levels.values():
            assert stock.available >= 0
            assert stock.reserved >= 0

    @invariant()
    def each_entry_records_the_level_it_left_behind(self) -> None:
        for warehouse, stock in self.levels.items():
            if self.ledger[warehouse]:
                last = self.ledger[warehouse][-1]
                assert (last.on_hand, last.reserved) == (stock.on_hand, stock.reserved)


InventoryLedger.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None
)
test_random_stock_operations_keep_the_ledger_in_balance = InventoryLedger.TestCase
