"""Analytics maths: days in the business time zone, what a paid order adds, RFM segments,
turnover and cover, stock-out episodes, and the report tables built from a day's figures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import analytics as a
from chalicelib.domain import feedback
from chalicelib.domain.allocation import Allocation, AllocationPlan, RequestedLine
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, ShippingAddress, ShippingFeeRule
from chalicelib.domain.report_schemas import REPORT_SCHEMAS

SHANGHAI = a.business_zone("Asia/Shanghai")
DAY = date(2026, 11, 24)
PAID_AT = datetime(2026, 11, 24, 2, 15, tzinfo=UTC)  # 10:15 in Shanghai


def order(
    lines: dict[str, int],
    allocations: list[tuple[str, str, int]],
    *,
    prices: dict[str, int],
    fee: int = 1000,
    free_from: int | None = None,
) -> Order:
    warehouses: list[str] = []
    for _, warehouse, _ in allocations:
        if warehouse not in warehouses:
            warehouses.append(warehouse)
    return Order.place(
        order_id="ord_1",
        customer_id="c-1",
        lines=[RequestedLine(sku, quantity) for sku, quantity in lines.items()],
        prices={sku: Money(price, "CNY") for sku, price in prices.items()},
        plan=AllocationPlan(
            allocations=tuple(Allocation(*allocation) for allocation in allocations),
            warehouses=tuple(warehouses),
        ),
        shipping_address=ShippingAddress(
            "A", "+8613800000000", "CN", "上海", "上海市", "1", "200003"
        ),
        fee_rule=ShippingFeeRule(
            Money(fee, "CNY"), Money(free_from, "CNY") if free_from is not None else None
        ),
        at=PAID_AT - timedelta(minutes=5),
    )


def sale(placed: Order, categories: dict[str, str], paid_at: datetime = PAID_AT) -> a.Sale:
    return a.sale_of(
        placed,
        payment_id="pay_1",
        method="card",
        paid_at=paid_at,
        categories=categories,
        zone=SHANGHAI,
    )


# --- time and ratios ------------------------------------------------------------------------------


def test_a_payment_late_in_the_utc_evening_belongs_to_the_next_shanghai_day() -> None:
    paid = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    assert a.local_day(paid, SHANGHAI) == date(2026, 11, 25)
    assert a.local_hour(paid, SHANGHAI) == 0
    assert a.previous_day(paid, SHANGHAI) == date(2026, 11, 24)


def test_the_business_day_has_its_own_bounds() -> None:
    start, end = a.day_bounds(DAY, SHANGHAI)
    assert start.astimezone(UTC) == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)


def test_an_unknown_time_zone_is_refused_by_name() -> None:
    with pytest.raises(a.UnknownTimeZone, match="Mars/Olympus"):
        a.business_zone("Mars/Olympus")


def test_shanghai_needs_no_time_zone_database() -> None:
    fixed = a._FIXED_ZONES["Asia/Shanghai"]
    assert fixed.utcoffset(None) == timedelta(hours=8)
    assert isinstance(fixed, timezone)


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(10, 4, 3), (10, 3, 3), (11, 2, 6), (-11, 2, -6), (0, 5, 0), (7, 0, None)],
)
def test_averages_round_half_away_from_zero_to_whole_minor_units(
    total: int, count: int, expected: int | None
) -> None:
    assert a.average_minor(total, count) == expected


def test_a_ratio_of_nothing_is_none_not_zero_or_an_error() -> None:
    assert a.ratio(3, 0) is None
    assert a.ratio(1, 3) == 0.3333


@given(st.text(min_size=1, max_size=40))
def test_shards_are_stable_and_in_range(key: str) -> None:
    assert 0 <= a.shard_of(key) < a.COUNTER_SHARDS
    assert a.shard_of(key) == a.shard_of(str(key))


# --- what a paid order adds ---------------------------------------------------------------------


def test_a_split_order_adds_each_warehouses_part_and_counts_the_order_once() -> None:
    placed = order(
        {"MUG": 3, "TEA": 1, "PEN": 2},
        [("MUG", "SH", 2), ("MUG", "HZ", 1), ("TEA", "HZ", 1), ("PEN", "SH", 2)],
        prices={"MUG": 2900, "TEA": 4550, "PEN": 800},
        fee=1001,
    )
    paid = sale(placed, {"MUG": "home", "TEA": "food", "PEN": "home"})

    assert paid.day == DAY and paid.hour == 10
    assert paid.total == placed.total.amount
    assert sum(item.revenue for item in paid.items) == placed.subtotal.amount
    assert sum(item.shipping for item in paid.items) == placed.shipping_fee.amount == 2002
    assert sum(item.units for item in paid.items) == paid.units == 6
    assert paid.units_by_sku() == {"MUG": 3, "TEA": 1, "PEN": 2}
    assert paid.units_by_category() == {"home": 5, "food": 1}
    per_sku = Counter()
    per_category = Counter()
    per_warehouse = Counter()
    for item in paid.items:
        per_sku[item.sku] += item.orders
        per_category[item.category] += item.category_orders
        per_warehouse[item.warehouse] += item.warehouse_orders
    assert per_sku == {"MUG": 1, "TEA": 1, "PEN": 1}
    assert per_category == {"home": 1, "food": 1}
    assert per_warehouse == {"SH": 1, "HZ": 1}


def test_odd_shipping_fees_are_shared_between_shipments_to_the_fen() -> None:
    placed = order({"MUG": 2}, [("MUG", "SH", 1), ("MUG", "HZ", 1)], prices={"MUG": 100}, fee=333)
    paid = sale(placed, {"MUG": "home"})
    shares = sorted(item.shipping for item in paid.items)
    assert shares == [333, 333]
    assert sum(shares) == placed.shipping_fee.amount


def test_a_product_without_a_category_is_reported_uncategorised() -> None:
    placed = order({"MUG": 1}, [("MUG", "SH", 1)], prices={"MUG": 100})
    assert sale(placed, {}).items[0].category == a.UNCATEGORISED


# --- customers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orders", "net", "klass"),
    [
        (1, 0, "one_low"),
        (1, a.HIGH_VALUE_MINOR - 1, "one_low"),
        (1, a.HIGH_VALUE_MINOR, "one_high"),
        (2, 10, "few_low"),
        (4, 10, "few_low"),
        (5, 10, "many_low"),
        (9, a.HIGH_VALUE_MINOR, "many_high"),
    ],
)
def test_classes_follow_the_documented_thresholds(orders: int, net: int, klass: str) -> None:
    assert a.customer_class(orders, net) == klass


@pytest.mark.parametrize(
    ("recency", "klass", "segment"),
    [
        (0, "many_low", a.Segment.CHAMPIONS),
        (30, "one_high", a.Segment.CHAMPIONS),
        (30, "few_low", a.Segment.LOYAL),
        (30, "one_low", a.Segment.PROMISING),
        (31, "one_low", a.Segment.NEEDS_ATTENTION),
        (31, "one_high", a.Segment.NEEDS_ATTENTION),
        (90, "many_high", a.Segment.LOYAL),
        (91, "few_low", a.Segment.AT_RISK),
        (91, "one_high", a.Segment.AT_RISK),
        (91, "one_low", a.Segment.LOST),
    ],
)
def test_segments_follow_the_documented_rules(recency: int, klass: str, segment: a.Segment) -> None:
    assert a.segment_of(recency, klass) is segment


@given(
    st.integers(min_value=0, max_value=400),
    st.sampled_from(a.CLASSES),
)
def test_every_customer_is_in_exactly_one_segment(recency: int, klass: str) -> None:
    assert a.segment_of(recency, klass) in set(a.Segment)


def test_a_customers_totals_follow_their_orders_and_refunds() -> None:
    placed = order(
        {"MUG": 2, "TEA": 1}, [("MUG", "SH", 2), ("TEA", "SH", 1)], prices={"MUG": 100, "TEA": 500}
    )
    first = a.CustomerTotals("c-1").with_sale(sale(placed, {"MUG": "home", "TEA": "food"}))
    later = PAID_AT + timedelta(days=3)
    second = first.with_sale(sale(placed, {"MUG": "home", "TEA": "food"}, paid_at=later))
    refunded = second.with_refund(300)

    assert first.membership == a.Membership(DAY, "one_low", "home", 1, placed.total.amount)
    assert second.first_paid_day == DAY
    assert second.last_paid_day == DAY + timedelta(days=3)
    assert second.last_paid_at == later
    assert second.categories == {"home": 4, "food": 2}
    assert refunded.net == 2 * placed.total.amount - 300
    assert refunded.version == 3
    assert a.CustomerTotals("c-2").with_refund(100).membership is None


def test_a_late_event_never_moves_the_last_paid_day_back() -> None:
    placed = order({"MUG": 1}, [("MUG", "SH", 1)], prices={"MUG": 100})
    recent = a.CustomerTotals("c-1").with_sale(sale(placed, {}, paid_at=PAID_AT))
    late = recent.with_sale(sale(placed, {}, paid_at=PAID_AT - timedelta(days=5)))
    assert late.last_paid_day == DAY
    assert late.first_paid_day == DAY - timedelta(days=5)
    assert late.last_paid_at == PAID_AT


def test_the_favourite_category_is_the_most_bought_and_ties_go_by_name() -> None:
    assert a.favourite({"tea": 3, "home": 3, "pens": 1}) == "home"
    assert a.favourite({}) is None


def totals(
    customers: int, orders: int, net: int, day: date | None = None, **fav: int
) -> a.ClassTotals:
    return a.ClassTotals(
        customers, orders, net, day.toordinal() * customers if day else 0, Counter(fav)
    )


def test_segment_figures_put_customers_outside_the_window_among_the_lapsed() -> None:
    as_of = DAY
    long_ago = as_of - timedelta(days=200)
    recent = as_of - timedelta(days=2)
    lapsing = as_of - timedelta(days=45)
    overall = {
        "one_low": totals(3, 3, 3000, None, home=3),
        "few_low": totals(1, 3, 900, None, food=1),
    }
    # The overall day sums: two one_low customers long ago and one recently, one few_low 45
    # days ago.
    overall["one_low"].day_ordinals = 2 * long_ago.toordinal() + recent.toordinal()
    overall["few_low"].day_ordinals = lapsing.toordinal()
    cohorts = {
        recent: {"one_low": totals(1, 1, 1000, home=1)},
        lapsing: {"few_low": totals(1, 3, 900, food=1)},
    }

    figures = a.segment_figures(as_of, overall, cohorts)

    assert figures[a.Segment.PROMISING].customers == 1
    assert figures[a.Segment.PROMISING].recency_days == 2
    assert figures[a.Segment.LOYAL].customers == 1
    assert figures[a.Segment.LOYAL].recency_days == 45
    lost = figures[a.Segment.LOST]
    assert (lost.customers, lost.orders, lost.net) == (2, 2, 2000)
    assert lost.recency_days == 400
    assert lost.favourites == {"home": 2}
    assert sum(f.customers for f in figures.values()) == 4


def test_a_cohort_after_the_report_day_counts_as_recent() -> None:
    later = DAY + timedelta(days=1)
    overall = {"one_low": totals(1, 1, 10, later)}
    figures = a.segment_figures(DAY, overall, {later: {"one_low": totals(1, 1, 10)}})
    assert figures[a.Segment.PROMISING].customers == 1
    assert figures[a.Segment.PROMISING].recency_days == 0


def test_the_repeat_rate_counts_customers_with_two_or_more_orders() -> None:
    overall = {"one_low": totals(3, 3, 0), "few_low": totals(1, 2, 0), "many_high": totals(1, 9, 0)}
    assert a.repeat_rate(overall) == 0.4
    assert a.repeat_rate({}) is None


# --- inventory ----------------------------------------------------------------------------------


def test_turnover_and_cover_follow_their_definitions() -> None:
    assert a.average_on_hand(40, 20) == 30
    assert a.turnover(60, 30.0) == 2.0
    assert a.turnover(5, 0.0) is None
    assert a.days_of_cover(available=20, units_sold=60, window_days=30) == 10.0
    assert a.days_of_cover(available=20, units_sold=0, window_days=30) is None
    assert a.days_of_cover(available=-3, units_sold=6, window_days=30) == 0.0


def test_slow_movers_are_in_stock_and_unsold_for_thirty_days() -> None:
    assert a.is_slow_mover(5, None, DAY)
    assert a.is_slow_mover(5, DAY - timedelta(days=30), DAY)
    assert not a.is_slow_mover(5, DAY - timedelta(days=29), DAY)
    assert not a.is_slow_mover(0, None, DAY)


def test_stockouts_pair_with_the_first_restock_after_them() -> None:
    t = [PAID_AT + timedelta(hours=h) for h in range(6)]
    episodes = a.stockout_episodes("MUG", "SH", [t[0], t[3]], [t[1], t[2], t[5]])
    assert [(e.out_at, e.restocked_at) for e in episodes] == [(t[0], t[1]), (t[3], t[5])]
    still_out = a.stockout_episodes("MUG", "SH", [t[4]], [])
    assert still_out[0].restocked_at is None
    assert still_out[0].hours_out(t[4] + timedelta(minutes=90)) == 1.5


# --- report tables ------------------------------------------------------------------------------


def activity_with_one_order() -> tuple[a.DayActivity, Order]:
    placed = order(
        {"MUG": 3, "TEA": 1},
        [("MUG", "SH", 2), ("MUG", "HZ", 1), ("TEA", "HZ", 1)],
        prices={"MUG": 2900, "TEA": 4550},
    )
    paid = sale(placed, {"MUG": "home", "TEA": "food"})
    activity = a.DayActivity(day=DAY)
    activity.sales = a.SalesCounters(
        orders=1,
        units=paid.units,
        gross=paid.total,
        merchandise=paid.merchandise,
        shipping=paid.shipping,
        refunds=500,
        refund_count=1,
    )
    activity.methods["card"] = a.MethodCounters(1, paid.total, 1, 500)
    activity.hours[paid.hour] = a.HourCounters(1, paid.units, paid.total)
    for item in paid.items:
        activity.items[(item.sku, item.warehouse)] = a.ItemCounters(
            item.sku,
            item.warehouse,
            item.category,
            item.units,
            item.revenue,
            item.shipping,
            item.orders,
            item.category_orders,
            item.warehouse_orders,
        )
    activity.customers["c-1"] = a.CustomerDay("c-1", 1, paid.total, 500, DAY, PAID_AT)
    return activity, placed


def test_sales_tables_add_up_to_the_days_revenue() -> None:
    activity, placed = activity_with_one_order()
    tables = {
        t.name: t
        for t in a.sales_tables(
            activity,
            currency="CNY",
            products={"MUG": a.ProductInfo("MUG", "杯子", "Mug", "home")},
            cities={"SH": "上海", "HZ": "杭州"},
        )
    }
    (summary,) = tables["sales/daily_summary"].rows
    assert summary["gross_revenue_minor"] == placed.total.amount
    assert summary["net_revenue_minor"] == placed.total.amount - 500
    assert summary["customers"] == summary["new_customers"] == 1
    products = tables["sales/by_product"].rows
    assert [row["sku"] for row in products] == ["MUG", "TEA"]
    assert products[0]["name_zh"] == "杯子" and products[1]["name_zh"] is None
    assert sum(row["revenue_minor"] for row in products) == placed.subtotal.amount
    warehouses = tables["sales/by_warehouse"].rows
    assert sum(row["revenue_minor"] for row in warehouses) == placed.total.amount
    assert {row["warehouse_id"]: row["orders"] for row in warehouses} == {"HZ": 1, "SH": 1}
    hours = tables["sales/by_hour"].rows
    assert len(hours) == 24 and hours[10]["revenue_minor"] == placed.total.amount
    assert tables["sales/top_products"].rows[0]["rank"] == 1


def test_a_day_without_activity_has_zero_figures_and_no_rows_to_rank() -> None:
    empty = a.DayActivity(day=DAY)
    tables = a.sales_tables(empty, currency="CNY", products={}, cities={})
    tables += a.customer_tables(
        empty,
        currency="CNY",
        segments=a.segment_figures(DAY, {}, {}),
        overall={},
        zone=SHANGHAI,
    )
    named = {t.name: t for t in tables}
    (summary,) = named["sales/daily_summary"].rows
    assert summary["orders"] == summary["gross_revenue_minor"] == 0
    assert summary["average_order_value_minor"] is None
    assert named["sales/by_product"].rows == ()
    assert named["customers/top_customers"].rows == ()
    assert all(row["customers"] == 0 for row in named["customers/rfm_segments"].rows)


def test_inventory_tables_value_stock_at_cost_and_say_when_cost_is_unknown() -> None:
    activity, _ = activity_with_one_order()
    taken = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    snapshot = a.StockSnapshot(
        DAY,
        taken,
        {
            "MUG": a.SkuStock("MUG", (a.LevelFigures("SH", 10, 2, 3),), 60, DAY),
            "PEN": a.SkuStock("PEN", (a.LevelFigures("SH", 7, 0, 0),), 0, None),
        },
    )
    baseline = a.StockSnapshot(
        DAY - timedelta(days=10),
        taken - timedelta(days=10),
        {"MUG": a.SkuStock("MUG", (a.LevelFigures("SH", 30, 0, 3),), 40, None)},
    )
    figures = a.inventory_tables(
        activity,
        currency="CNY",
        snapshot=snapshot,
        baseline=baseline,
        products={"MUG": a.ProductInfo("MUG", unit_cost=1200), "PEN": a.ProductInfo("PEN")},
        zone=SHANGHAI,
    )
    named = {t.name: t for t in figures.tables}
    stock = {row["sku"]: row for row in named["inventory/stock_by_warehouse"].rows}
    assert stock["MUG"]["value_at_cost_minor"] == 12000 and stock["MUG"]["cost_known"] is True
    assert stock["PEN"]["value_at_cost_minor"] is None and stock["PEN"]["cost_known"] is False
    assert figures.value_at_cost == 12000 and figures.skus_without_cost == 1
    turnover = {row["sku"]: row for row in named["inventory/sku_turnover"].rows}
    assert turnover["MUG"]["units_sold"] == 20  # 60 sold by now, 40 by the baseline
    assert turnover["MUG"]["turnover"] == 1.0  # 20 / ((30 + 10) / 2)
    assert turnover["MUG"]["days_of_cover"] == 4.0  # 8 available at 2 a day
    assert [row["sku"] for row in named["inventory/slow_movers"].rows] == ["PEN"]
    assert figures.window_days == 10


def test_report_tables_carry_the_declared_columns_in_order() -> None:
    activity, _ = activity_with_one_order()
    snapshot = a.StockSnapshot(DAY, PAID_AT, {})
    tables = a.sales_tables(activity, currency="CNY", products={}, cities={})
    tables += a.inventory_tables(
        activity, currency="CNY", snapshot=snapshot, baseline=None, products={}, zone=SHANGHAI
    ).tables
    tables += a.customer_tables(
        activity, currency="CNY", segments=a.segment_figures(DAY, {}, {}), overall={}, zone=SHANGHAI
    )
    tables += [feedback.ratings_by_product(DAY, []), feedback.complaint_terms_table([])]
    # After-sales and support tables are read from the requests and conversations themselves.
    built_here = [n for n in REPORT_SCHEMAS if not n.startswith(("after_sales/", "support/"))]
    assert sorted(t.name for t in tables) == sorted(built_here)
    for table in tables:
        declared = tuple(column for column, _ in REPORT_SCHEMAS[table.name])
        # Two tables add columns the exports have yet to declare (cost, favourite categories).
        assert table.columns[: len(declared)] == declared, table.name
