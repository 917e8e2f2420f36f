"""After-sales rules: windows, eligibility, the forward-only flow, and what a return refunds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import inventory
from chalicelib.domain.after_sales import (
    AfterSalesRequest,
    AfterSalesStatus,
    AfterSalesType,
    DeliveredLine,
    NotEligible,
    Reason,
    RequestLine,
    WindowPolicy,
    check_eligibility,
    refund_share,
)
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.money import Money

DELIVERED = datetime(2026, 5, 1, 10, tzinfo=UTC)
T, R, S = AfterSalesType, Reason, AfterSalesStatus


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def delivered(**quantities: int) -> dict[str, DeliveredLine]:
    return {
        sku: DeliveredLine(sku, qty, cny(2900), DELIVERED, category="home")
        for sku, qty in quantities.items()
    }


def check(kind, lines, *, days=1, covered=None, prices=None, windows=None, got=None):
    check_eligibility(
        kind,
        lines,
        delivered=got if got is not None else delivered(MUG=2, TEA=1),
        covered=covered or {},
        exchange_prices=prices or {},
        now=DELIVERED + timedelta(days=days),
        windows=windows,
    )


def reason_of(call) -> str:
    with pytest.raises(NotEligible) as raised:
        call()
    return raised.value.details["reason"]


def test_changed_mind_return_is_open_seven_days_then_closes() -> None:
    check(T.RETURN, [RequestLine("MUG", 1, R.CHANGED_MIND)], days=7)
    assert (
        reason_of(lambda: check(T.RETURN, [RequestLine("MUG", 1, R.CHANGED_MIND)], days=8))
        == "window_closed"
    )


def test_defective_return_has_fifteen_days_and_repair_a_year() -> None:
    check(T.RETURN, [RequestLine("MUG", 1, R.DEFECTIVE)], days=15)
    assert (
        reason_of(lambda: check(T.RETURN, [RequestLine("MUG", 1, R.DEFECTIVE)], days=16))
        == "window_closed"
    )
    check(T.REPAIR, [RequestLine("MUG", 1, R.DEFECTIVE)], days=365)
    assert (
        reason_of(lambda: check(T.REPAIR, [RequestLine("MUG", 1, R.DEFECTIVE)], days=366))
        == "window_closed"
    )


def test_category_can_lengthen_a_window() -> None:
    policy = WindowPolicy({"home": {"repair": 730, "return:changed_mind": 10}})
    check(T.REPAIR, [RequestLine("MUG", 1, R.DEFECTIVE)], days=700, windows=policy)
    check(T.RETURN, [RequestLine("MUG", 1, R.CHANGED_MIND)], days=10, windows=policy)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (T.REFUND_ONLY, R.CHANGED_MIND),
        (T.REFUND_ONLY, R.DEFECTIVE),
        (T.REPAIR, R.CHANGED_MIND),
        (T.EXCHANGE, R.NOT_AS_DESCRIBED),
        (T.RETURN, R.MISSING_ITEM),
    ],
)
def test_reason_outside_the_table_is_not_allowed(kind, reason) -> None:
    line = RequestLine("MUG", 1, reason, "MUG" if kind is T.EXCHANGE else None)
    assert reason_of(lambda: check(kind, [line])) == "reason_not_allowed"


def test_undelivered_order_or_sku_is_not_eligible() -> None:
    line = [RequestLine("MUG", 1, R.DEFECTIVE)]
    assert reason_of(lambda: check(T.RETURN, line, got={})) == "not_delivered"
    pen = [RequestLine("PEN", 1, R.DEFECTIVE)]
    assert reason_of(lambda: check(T.RETURN, pen)) == "not_delivered"


def test_quantity_counts_what_other_requests_cover() -> None:
    check(T.RETURN, [RequestLine("MUG", 2, R.DEFECTIVE)])
    call = lambda: check(T.RETURN, [RequestLine("MUG", 2, R.DEFECTIVE)], covered={"MUG": 1})  # noqa: E731
    with pytest.raises(NotEligible) as raised:
        call()
    assert raised.value.details == {
        "reason": "quantity_exceeds_eligible",
        "sku": "MUG",
        "eligible": 1,
    }


def test_exchange_needs_the_same_price() -> None:
    line = [RequestLine("MUG", 1, R.DEFECTIVE, exchange_sku="MUG-BLUE")]
    check(T.EXCHANGE, line, prices={"MUG-BLUE": cny(2900)})
    assert reason_of(lambda: check(T.EXCHANGE, line, prices={"MUG-BLUE": cny(3100)})) == (
        "different_price"
    )
    assert reason_of(lambda: check(T.EXCHANGE, line, prices={})) == "different_price"


# --- refunds -----------------------------------------------------------------------------


def share(lines, returned_before=None, refundable=None) -> Money:
    return refund_share(
        lines,
        unit_prices={"MUG": cny(2900), "TEA": cny(4550)},
        ordered={"MUG": 2, "TEA": 1},
        returned_before=returned_before or {},
        shipping_fee=cny(1000),
        refundable=refundable,
    )


def test_partial_return_refunds_only_the_lines_price() -> None:
    assert share([("MUG", 1, R.DEFECTIVE)]) == cny(2900)


def test_whole_order_back_for_shop_fault_refunds_shipping_too() -> None:
    assert share([("MUG", 2, R.DEFECTIVE), ("TEA", 1, R.WRONG_ITEM)]) == cny(2 * 2900 + 4550 + 1000)
    # The rest of the order came back with an earlier request.
    assert share([("TEA", 1, R.DEFECTIVE)], returned_before={"MUG": 2}) == cny(4550 + 1000)


def test_whole_order_back_because_of_a_change_of_mind_keeps_shipping() -> None:
    assert share([("MUG", 2, R.CHANGED_MIND), ("TEA", 1, R.CHANGED_MIND)]) == cny(10350)


def test_refund_is_capped_at_what_is_still_refundable() -> None:
    assert share([("MUG", 2, R.DEFECTIVE)], refundable=cny(3000)) == cny(3000)
    assert share([("MUG", 2, R.DEFECTIVE)], refundable=cny(0)) == cny(0)


# --- the flow ----------------------------------------------------------------------------


def request(kind: AfterSalesType) -> AfterSalesRequest:
    return AfterSalesRequest.open(
        request_id="as_1",
        order_id="ord_1",
        customer_id="c1",
        kind=kind,
        lines=[RequestLine("MUG", 1, R.DEFECTIVE)],
        description="broken",
        refund_estimate=None,
        at=DELIVERED,
    )


def walk(kind: AfterSalesType, *steps: AfterSalesStatus) -> AfterSalesRequest:
    current = request(kind)
    for number, step in enumerate(steps, start=1):
        current = current.transition(step, at=DELIVERED + timedelta(hours=number), actor="x")
    return current


def test_each_type_reaches_its_end() -> None:
    assert walk(T.REFUND_ONLY, S.APPROVED, S.REFUNDED).status is S.REFUNDED
    done = walk(T.RETURN, S.APPROVED, S.RETURN_IN_TRANSIT, S.RECEIVED, S.REFUNDED)
    assert [e.status for e in done.timeline] == [
        "requested",
        "approved",
        "return_in_transit",
        "received",
        "refunded",
    ]
    assert done.version == 5
    assert (
        walk(
            T.EXCHANGE, S.APPROVED, S.RETURN_IN_TRANSIT, S.RECEIVED, S.EXCHANGE_SHIPPED, S.COMPLETED
        ).status
        is S.COMPLETED
    )
    repaired = walk(
        T.REPAIR,
        S.APPROVED,
        S.RETURN_IN_TRANSIT,
        S.RECEIVED,
        S.REPAIRING,
        S.REPAIR_SHIPPED,
        S.COMPLETED,
    )
    assert repaired.completed_at == DELIVERED + timedelta(hours=6)


@pytest.mark.parametrize(
    ("kind", "steps", "bad"),
    [
        (T.RETURN, (S.APPROVED, S.RETURN_IN_TRANSIT, S.RECEIVED), S.CANCELLED),
        (T.RETURN, (S.APPROVED,), S.REFUNDED),
        (T.RETURN, (S.APPROVED, S.RETURN_IN_TRANSIT), S.APPROVED),
        (T.REFUND_ONLY, (S.APPROVED,), S.RETURN_IN_TRANSIT),
        (T.EXCHANGE, (S.APPROVED, S.RETURN_IN_TRANSIT, S.RECEIVED), S.REFUNDED),
        (T.RETURN, (S.REJECTED,), S.APPROVED),
        (T.REPAIR, (S.APPROVED, S.RETURN_IN_TRANSIT, S.RECEIVED), S.REPAIR_SHIPPED),
    ],
)
def test_moves_outside_the_flow_are_refused(kind, steps, bad) -> None:
    with pytest.raises(InvalidTransition) as raised:
        walk(kind, *steps).transition(bad, at=DELIVERED + timedelta(days=1), actor="x")
    assert raised.value.code == "invalid_transition"


def test_approved_without_a_parcel_is_due_to_close_after_seven_days() -> None:
    approved = walk(T.RETURN, S.APPROVED)
    assert not approved.is_due_to_close(DELIVERED + timedelta(days=7))
    assert approved.is_due_to_close(DELIVERED + timedelta(days=7, hours=1))
    assert not walk(T.REFUND_ONLY, S.APPROVED).is_due_to_close(DELIVERED + timedelta(days=30))


def test_written_off_units_are_in_the_ledger_but_not_on_hand() -> None:
    level = inventory.StockLevel("MUG", "SH", on_hand=3)
    after, movement = inventory.write_off(level, 2, reference="as_1", at=DELIVERED, actor="ops")
    assert after == level
    assert movement.type.value == "written_off"
    back, returned = inventory.return_to_stock(after, 1, reference="as_1", at=DELIVERED, actor="o")
    assert back.on_hand == 4
    assert inventory.ledger_balance([movement, returned]) == (1, 0)


def test_after_sales_decisions_are_transactional_and_worded_in_both_languages() -> None:
    from chalicelib.domain import notifications as n

    prefs = n.NotificationPreferences.of({"email": False, "sms": False, "push": False}, {})
    for event in ("after_sales.approved", "after_sales.rejected", "after_sales.refunded"):
        assert prefs.channels_for(event) == (n.Channel.EMAIL,)
    assert prefs.channels_for("after_sales.received") == ()
    for event in n.AFTER_SALES_EVENTS:
        facts = n.MessageFacts(event_type=event, order_id="ord_1")
        zh = n.render(facts, n.Channel.EMAIL, "zh-CN")
        en = n.render(facts, n.Channel.SMS, "en")
        assert "ord_1" in zh.subject and "ord_1" in en.body


# --- the nightly tables ------------------------------------------------------------------


def test_by_product_shares_the_refund_over_lines_and_rates_returns() -> None:
    from chalicelib.domain import after_sales_reports as reports
    from chalicelib.domain.report_schemas import check_table

    both = AfterSalesRequest.open(
        request_id="as_2",
        order_id="ord_1",
        customer_id="c1",
        kind=T.RETURN,
        lines=[RequestLine("MUG", 2, R.DEFECTIVE), RequestLine("TEA", 1, R.WRONG_ITEM)],
        description="",
        refund_estimate=cny(2 * 2900 + 4550 + 1000),
        at=DELIVERED,
    )
    refunded = both.transition(S.APPROVED, at=DELIVERED, actor="x")
    for step in (S.RETURN_IN_TRANSIT, S.RECEIVED, S.REFUNDED):
        refunded = refunded.transition(step, at=DELIVERED, actor="x")
    refunded = replace(refunded, refund_amount=cny(2 * 2900 + 4550 + 1000))
    table = reports.by_product(
        [both, request(T.REPAIR)],
        [refunded, walk(T.RETURN, S.APPROVED)],  # only a refunded request counts money
        currency="CNY",
        prices={"MUG": cny(2900), "TEA": cny(4550)},
        names={"MUG": reports.Names("杯子", "Mug")},
        returned_units=reports.returned_units([both]),
        delivered_units={"MUG": 8, "TEA": 0},
    )
    check_table(table)
    rows = {(r["sku"], r["type"]): r for r in table.rows}
    assert rows[("MUG", "return")]["refunds_minor"] + rows[("TEA", "return")]["refunds_minor"] == (
        11350
    )
    assert rows[("MUG", "return")]["return_rate"] == 0.25
    assert rows[("TEA", "return")]["return_rate"] is None  # nothing delivered: no rate
    assert rows[("MUG", "repair")]["refunds_minor"] == 0
    assert rows[("MUG", "return")]["name_en"] == "Mug"


def test_summary_takes_the_median_days_of_the_requests_completed_that_day() -> None:
    from chalicelib.domain import after_sales_reports as reports
    from chalicelib.domain.report_schemas import check_table

    fast = walk(T.REFUND_ONLY, S.APPROVED, S.REFUNDED)  # 2 hours
    slow = request(T.REFUND_ONLY).transition(
        S.APPROVED, at=DELIVERED + timedelta(days=1), actor="x"
    )
    slow = slow.transition(S.REFUNDED, at=DELIVERED + timedelta(days=3), actor="x")
    slower = request(T.REFUND_ONLY).transition(
        S.APPROVED, at=DELIVERED + timedelta(days=4), actor="x"
    )
    slower = slower.transition(S.REFUNDED, at=DELIVERED + timedelta(days=5), actor="x")
    table = reports.summary([request(T.RETURN)], [fast, slow, slower])
    check_table(table)
    rows = {r["type"]: r for r in table.rows}
    assert rows["refund_only"]["completions"] == 3
    assert rows["refund_only"]["median_days_to_complete"] == 3.0
    assert rows["return"] == {
        "type": "return",
        "requests": 1,
        "completions": 0,
        "median_days_to_complete": None,
    }
