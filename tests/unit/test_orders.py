from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import allocation
from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.catalogue import Location
from chalicelib.domain.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
    UnknownSku,
)
from chalicelib.domain.inventory import StockLevel
from chalicelib.domain.money import Money
from chalicelib.domain.orders import (
    Order,
    OrderStatus,
    ShipmentStatus,
    ShippingAddress,
    ShippingFeeRule,
)

PLACED_AT = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
SHANGHAI = Location(31.2304, 121.4737)
BEIJING = Location(39.9042, 116.4074)
WAREHOUSES = {"SH": SHANGHAI, "BJ": BEIJING}
PRICES = {"MUG": Money(2900, "CNY"), "TEA": Money(4550, "CNY"), "PEN": Money(800, "CNY")}
FEE_RULE = ShippingFeeRule(fee_per_shipment=Money(1000, "CNY"), free_from=Money(20000, "CNY"))


def address(**overrides) -> ShippingAddress:
    fields = {
        "name": "李雷",
        "phone": "+8613800000000",
        "country": "CN",
        "region": "上海",
        "city": "上海市",
        "line1": "人民大道 200 号",
        "postcode": "200003",
        "location": None,
    }
    fields.update(overrides)
    return ShippingAddress(**fields)


def place(
    quantities: dict[str, int] | None = None,
    stock: dict[tuple[str, str], int] | None = None,
    at: datetime = PLACED_AT,
    **overrides,
) -> Order:
    """An order placed through the real allocation; by default everything ships from SH."""
    quantities = quantities or {"MUG": 2, "TEA": 1}
    stock = stock or {(sku, "SH"): 50 for sku in quantities}
    lines = [RequestedLine(sku, qty) for sku, qty in quantities.items()]
    levels = [StockLevel(sku, w, on_hand=qty) for (sku, w), qty in stock.items()]
    plan = allocation.plan(lines, levels, SHANGHAI, warehouse_locations=WAREHOUSES)
    arguments = {
        "order_id": "ORD1",
        "customer_id": "cust-1",
        "lines": lines,
        "prices": PRICES,
        "plan": plan,
        "shipping_address": address(),
        "fee_rule": FEE_RULE,
        "at": at,
    }
    arguments.update(overrides)
    return Order.place(**arguments)


def split_order() -> Order:
    """MUG ships from SH, TEA only exists in BJ: two shipments."""
    return place({"MUG": 1, "TEA": 1}, stock={("MUG", "SH"): 5, ("TEA", "BJ"): 5})


def later(minutes: int = 1) -> datetime:
    return PLACED_AT + timedelta(minutes=minutes)


def paid(order: Order) -> Order:
    return order.transition(to=OrderStatus.PAID, at=later(), actor="payments")


# -- placing ------------------------------------------------------------------------------


def test_a_placed_order_is_priced_from_the_catalogue_and_awaits_payment() -> None:
    order = place({"MUG": 2, "TEA": 1})
    assert order.status is OrderStatus.PENDING_PAYMENT
    assert [(line.sku, line.unit_price, line.line_total) for line in order.lines] == [
        ("MUG", Money(2900, "CNY"), Money(5800, "CNY")),
        ("TEA", Money(4550, "CNY"), Money(4550, "CNY")),
    ]
    assert order.subtotal == Money(10350, "CNY")
    assert order.shipping_fee == Money(1000, "CNY")
    assert order.total == Money(11350, "CNY")
    assert order.created_at == PLACED_AT
    assert order.expires_at == PLACED_AT + timedelta(minutes=15)
    assert [(h.from_status, h.to_status) for h in order.history] == [(None, "pending_payment")]


def test_the_payment_window_is_configurable() -> None:
    order = place(payment_window=timedelta(minutes=30))
    assert order.expires_at == PLACED_AT + timedelta(minutes=30)


def test_each_allocated_warehouse_gets_one_pending_shipment_with_its_lines() -> None:
    order = split_order()
    assert [(s.warehouse, s.status) for s in order.shipments] == [
        ("SH", ShipmentStatus.PENDING),
        ("BJ", ShipmentStatus.PENDING),
    ]
    assert [[(line.sku, line.quantity) for line in s.lines] for s in order.shipments] == [
        [("MUG", 1)],
        [("TEA", 1)],
    ]
    assert len({s.shipment_id for s in order.shipments}) == 2
    assert [(a.warehouse, a.quantity) for a in order.lines[1].allocations] == [("BJ", 1)]


def test_shipping_is_charged_per_shipment_below_the_free_threshold() -> None:
    assert split_order().shipping_fee == Money(2000, "CNY")


def test_shipping_is_free_at_or_above_the_threshold() -> None:
    rule = ShippingFeeRule(fee_per_shipment=Money(1000, "CNY"), free_from=Money(5800, "CNY"))
    assert rule.fee(Money(5800, "CNY"), shipments=2) == Money(0, "CNY")
    assert rule.fee(Money(5799, "CNY"), shipments=2) == Money(2000, "CNY")
    order = place({"MUG": 2}, fee_rule=rule)
    assert (order.shipping_fee, order.total) == (Money(0, "CNY"), Money(5800, "CNY"))


def test_a_rule_without_threshold_always_charges() -> None:
    rule = ShippingFeeRule(fee_per_shipment=Money(600, "CNY"))
    assert rule.fee(Money(10**9, "CNY"), shipments=3) == Money(1800, "CNY")


def test_unknown_or_inactive_skus_are_all_named() -> None:
    lines = [RequestedLine("MUG", 1), RequestedLine("GHOST", 1), RequestedLine("OLD", 2)]
    plan = allocation.plan(
        [RequestedLine("MUG", 1)],
        [StockLevel("MUG", "SH", on_hand=5)],
        SHANGHAI,
        warehouse_locations=WAREHOUSES,
    )
    with pytest.raises(UnknownSku) as raised:
        Order.place(
            order_id="ORD1",
            customer_id="c",
            lines=lines,
            prices=PRICES,
            plan=plan,
            shipping_address=address(),
            fee_rule=FEE_RULE,
            at=PLACED_AT,
        )
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.code == "unknown_sku"
    assert raised.value.details == [{"sku": "GHOST"}, {"sku": "OLD"}]


@pytest.mark.parametrize(
    "quantities",
    [{"MUG": 1000}, {f"S{i}": 1 for i in range(21)}],
)
def test_orders_are_bounded_in_lines_and_quantities(quantities) -> None:
    prices = {sku: Money(100, "CNY") for sku in quantities}
    with pytest.raises(InvalidInput):
        place(quantities, stock={(sku, "SH"): 2000 for sku in quantities}, prices=prices)


def test_a_plan_that_does_not_cover_the_order_is_rejected() -> None:
    short_plan = allocation.AllocationPlan(
        allocations=(allocation.Allocation("MUG", "SH", 1),), warehouses=("SH",)
    )
    with pytest.raises(ValueError, match="MUG"):
        place({"MUG": 2}, plan=short_plan)


# -- the state machine --------------------------------------------------------------------

HAPPY_PATH = [
    OrderStatus.PAID,
    OrderStatus.PICKING,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED,
]


def test_an_order_moves_forward_through_every_status_and_records_each_step() -> None:
    order = place()
    for step, status in enumerate([*HAPPY_PATH, OrderStatus.COMPLETED], start=1):
        before = order
        order = order.transition(to=status, at=later(step), actor="ops-1", reason=f"step {step}")
        assert order.status is status
        assert before.status is not status  # the old value is untouched
        assert order.version == before.version + 1
        last = order.history[-1]
        assert (last.from_status, last.to_status) == (before.status.value, status.value)
        assert (last.at, last.actor, last.reason) == (later(step), "ops-1", f"step {step}")


def test_fulfilment_steps_on_the_order_bring_its_shipments_along() -> None:
    order = paid(split_order()).transition(to=OrderStatus.PICKING, at=later(2), actor="ops")
    assert {s.status for s in order.shipments} == {ShipmentStatus.PICKING}
    shipment_entries = [h for h in order.history if h.shipment_id]
    assert len(shipment_entries) == 2


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], OrderStatus.SHIPPED),
        ([], OrderStatus.PICKING),
        ([OrderStatus.PAID], OrderStatus.PENDING_PAYMENT),
        ([OrderStatus.PAID], OrderStatus.PAID),
        ([OrderStatus.PAID], OrderStatus.EXPIRED),
        ([OrderStatus.PAID, OrderStatus.PICKING], OrderStatus.SHIPPED),
        ([*HAPPY_PATH], OrderStatus.SHIPPED),
        ([*HAPPY_PATH], OrderStatus.CANCELLED),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(path, illegal) -> None:
    order = place()
    for step, status in enumerate(path, start=1):
        order = order.transition(to=status, at=later(step), actor="ops")
    with pytest.raises(InvalidTransition) as raised:
        order.transition(to=illegal, at=later(30), actor="ops")
    assert raised.value.code == "invalid_transition"
    assert raised.value.details == {"from": order.status.value, "to": illegal.value}


@pytest.mark.parametrize("end", [OrderStatus.CANCELLED, OrderStatus.EXPIRED])
def test_cancelled_and_expired_are_ends(end) -> None:
    order = place().transition(to=end, at=later(20), actor="system")
    assert order.is_terminal
    assert {s.status for s in order.shipments} == {ShipmentStatus.CANCELLED}
    for status in OrderStatus:
        with pytest.raises(InvalidTransition):
            order.transition(to=status, at=later(21), actor="ops")


def test_an_order_cannot_expire_while_its_payment_window_is_open() -> None:
    order = place()
    with pytest.raises(InvalidTransition):
        order.expire(at=order.expires_at - timedelta(seconds=1))
    assert order.is_due_to_expire(order.expires_at)
    assert order.expire(at=order.expires_at).status is OrderStatus.EXPIRED


def test_a_pending_payment_extends_the_hold_but_never_shortens_it() -> None:
    order = place()
    extended = order.extend_expiry(PLACED_AT + timedelta(minutes=30), at=later())
    assert extended.expires_at == PLACED_AT + timedelta(minutes=30)
    assert extended.extend_expiry(PLACED_AT + timedelta(minutes=20), at=later(2)) is extended
    with pytest.raises(InvalidTransition):
        paid(order).extend_expiry(PLACED_AT + timedelta(hours=1), at=later(2))


def test_owner_can_cancel_until_something_ships() -> None:
    order = paid(split_order())
    assert order.can_cancel_by_owner
    sh = order.shipments[0].shipment_id
    order = order.advance_shipment(sh, to=ShipmentStatus.PICKING, at=later(2), actor="wh")
    order = order.advance_shipment(sh, to=ShipmentStatus.PACKED, at=later(3), actor="wh")
    assert order.can_cancel_by_owner
    order = order.advance_shipment(sh, to=ShipmentStatus.SHIPPED, at=later(4), actor="wh")
    # The order still reads "paid" (BJ has not started) but a parcel is on its way.
    assert order.status is OrderStatus.PAID
    assert not order.can_cancel_by_owner
    with pytest.raises(InvalidTransition):
        order.cancel(at=later(5), actor="ops")


def test_cancelling_twice_changes_nothing_the_second_time() -> None:
    cancelled = place().cancel(at=later(), actor="cust-1", reason="changed my mind")
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel(at=later(2), actor="cust-1") is cancelled


def test_a_split_order_follows_its_least_advanced_shipment() -> None:
    order = paid(split_order())
    sh, bj = (s.shipment_id for s in order.shipments)
    for step, status in enumerate(
        [
            ShipmentStatus.PICKING,
            ShipmentStatus.PACKED,
            ShipmentStatus.SHIPPED,
            ShipmentStatus.DELIVERED,
        ],
        start=2,
    ):
        order = order.advance_shipment(sh, to=status, at=later(step), actor="wh")
    assert order.status is OrderStatus.PAID
    order = order.advance_shipment(bj, to=ShipmentStatus.PICKING, at=later(10), actor="wh")
    assert order.status is OrderStatus.PICKING
    order = order.advance_shipment(bj, to=ShipmentStatus.PACKED, at=later(11), actor="wh")
    order = order.advance_shipment(bj, to=ShipmentStatus.SHIPPED, at=later(12), actor="wh")
    assert order.status is OrderStatus.SHIPPED
    order = order.advance_shipment(
        bj, to=ShipmentStatus.OUT_FOR_DELIVERY, at=later(13), actor="carrier"
    )
    assert order.status is OrderStatus.OUT_FOR_DELIVERY
    order = order.advance_shipment(bj, to=ShipmentStatus.DELIVERED, at=later(14), actor="carrier")
    assert order.status is OrderStatus.DELIVERED
    assert order.history[-1].to_status == "delivered"
    assert order.history[-2].shipment_id == bj


def test_shipments_move_forward_one_step_at_a_time_and_only_once_paid() -> None:
    order = split_order()
    sh = order.shipments[0].shipment_id
    with pytest.raises(InvalidTransition):
        order.advance_shipment(sh, to=ShipmentStatus.PICKING, at=later(), actor="wh")
    order = paid(order)
    with pytest.raises(InvalidTransition):
        order.advance_shipment(sh, to=ShipmentStatus.PACKED, at=later(2), actor="wh")
    with pytest.raises(InvalidTransition):
        order.advance_shipment(sh, to=ShipmentStatus.CANCELLED, at=later(2), actor="wh")
    with pytest.raises(NotFound):
        order.advance_shipment("nope", to=ShipmentStatus.PICKING, at=later(2), actor="wh")


def test_a_carrier_may_report_delivery_without_out_for_delivery() -> None:
    order = place({"MUG": 1})
    for step, status in enumerate(
        [OrderStatus.PAID, OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED], start=1
    ):
        order = order.transition(to=status, at=later(step), actor="ops")
    sh = order.shipments[0].shipment_id
    order = order.advance_shipment(sh, to=ShipmentStatus.DELIVERED, at=later(9), actor="carrier")
    assert order.status is OrderStatus.DELIVERED


def test_times_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError):
        place().transition(to=OrderStatus.PAID, at=datetime(2026, 5, 20, 9, 0), actor="p")


def test_reusing_an_idempotency_key_for_another_order_has_its_own_error_code() -> None:
    error = IdempotencyKeyReused()
    assert error.code == "idempotency_key_reused"
    assert "Idempotency-Key" in error.message


# -- addresses and the wire shape ---------------------------------------------------------


def test_the_destination_is_the_given_point_else_the_city_else_the_region() -> None:
    point = Location(30.0, 120.0)
    assert address(location=point).destination == point
    assert address(city="Beijing", region="").destination == Location(39.9042, 116.4074)
    assert address(city="海淀区", region="北京市").destination == Location(39.9042, 116.4074)
    assert address(city="Somewhere", region="Nowhere").destination is None


def test_the_order_reads_as_the_api_returns_it() -> None:
    body = paid(place({"MUG": 2})).as_dict()
    assert body["order_id"] == "ORD1"
    assert body["status"] == "paid"
    assert body["customer_id"] == "cust-1"
    assert body["lines"] == [
        {
            "sku": "MUG",
            "quantity": 2,
            "unit_price": {"amount": 2900, "currency": "CNY"},
            "line_total": {"amount": 5800, "currency": "CNY"},
            "allocations": [{"warehouse": "SH", "quantity": 2}],
        }
    ]
    assert body["shipments"] == [
        {
            "shipment_id": "ORD1-1",
            "warehouse": "SH",
            "status": "pending",
            "lines": [{"sku": "MUG", "quantity": 2}],
        }
    ]
    assert body["subtotal"] == {"amount": 5800, "currency": "CNY"}
    assert body["total"] == {"amount": 6800, "currency": "CNY"}
    assert body["created_at"] == "2026-05-20T08:00:00Z"
    assert body["expires_at"] == "2026-05-20T08:15:00Z"
    assert [(h["from"], h["to"]) for h in body["history"]] == [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
    ]


# -- property: whatever is tried, status never goes backwards -----------------------------

_RANK = {status: index for index, status in enumerate([OrderStatus.PENDING_PAYMENT, *HAPPY_PATH])}
_RANK.update({OrderStatus.COMPLETED: 7, OrderStatus.CANCELLED: 8, OrderStatus.EXPIRED: 8})
_SHIPMENT_RANK = {s: i for i, s in enumerate(ShipmentStatus)}

attempts = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.sampled_from(list(OrderStatus))),
        st.tuples(st.integers(0, 1), st.sampled_from(list(ShipmentStatus))),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(attempts)
def test_any_sequence_of_attempts_only_ever_moves_forward(tries) -> None:
    order = split_order()
    for step, (target, status) in enumerate(tries, start=1):
        before = order
        try:
            if target == "order":
                order = order.transition(to=status, at=later(20 + step), actor="x")
            else:
                shipment_id = order.shipments[target].shipment_id
                order = order.advance_shipment(
                    shipment_id, to=status, at=later(20 + step), actor="x"
                )
        except InvalidTransition:
            assert order is before
            continue
        assert _RANK[order.status] >= _RANK[before.status]
        assert len(order.history) > len(before.history)
        assert order.history[: len(before.history)] == before.history
        for old, new in zip(before.shipments, order.shipments, strict=True):
            assert _SHIPMENT_RANK[new.status] >= _SHIPMENT_RANK[old.status]
        if order.status in _RANK and 1 <= _RANK[order.status] <= 6:
            slowest = min(order.shipments, key=lambda s: _SHIPMENT_RANK[s.status])
            assert _RANK[order.status] == _SHIPMENT_RANK[slowest.status] + 1
