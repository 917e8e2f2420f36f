from __future__ import annotations

import math
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import allocation
from chalicelib.domain.allocation import RequestedLine
from chalicelib.domain.catalogue import Location
from chalicelib.domain.errors import InvalidInput, OutOfStock
from chalicelib.domain.inventory import StockLevel

SHANGHAI = Location(31.2304, 121.4737)
SUZHOU = Location(31.2990, 120.5853)
HANGZHOU = Location(30.2741, 120.1551)
BEIJING = Location(39.9042, 116.4074)
GUANGZHOU = Location(23.1291, 113.2644)
CHENGDU = Location(30.5728, 104.0668)

WAREHOUSES = {"SH": SHANGHAI, "HZ": HANGZHOU, "BJ": BEIJING, "GZ": GUANGZHOU, "CD": CHENGDU}


def stock(*entries: tuple[str, str, int]) -> list[StockLevel]:
    """(sku, warehouse, available) triples as stock levels."""
    return [StockLevel(sku=sku, warehouse=w, on_hand=qty) for sku, w, qty in entries]


def lines(**quantities: int) -> list[RequestedLine]:
    return [RequestedLine(sku, qty) for sku, qty in quantities.items()]


def plan(order_lines, levels, destination=SUZHOU, locations=None):
    return allocation.plan(
        order_lines,
        levels,
        destination,
        warehouse_locations=WAREHOUSES if locations is None else locations,
    )


def shipped_from(result: allocation.AllocationPlan) -> dict[str, list[tuple[str, int]]]:
    by_sku: dict[str, list[tuple[str, int]]] = {}
    for a in result.allocations:
        by_sku.setdefault(a.sku, []).append((a.warehouse, a.quantity))
    return by_sku


def test_whole_order_ships_from_the_nearest_warehouse_that_has_every_line() -> None:
    levels = stock(("A", "SH", 5), ("B", "SH", 5), ("A", "BJ", 5), ("B", "BJ", 5))
    result = plan(lines(A=2, B=3), levels)
    assert result.warehouses == ("SH",)
    assert shipped_from(result) == {"A": [("SH", 2)], "B": [("SH", 3)]}
    assert not result.is_split


def test_a_farther_warehouse_with_everything_beats_splitting_between_nearer_ones() -> None:
    levels = stock(("A", "SH", 5), ("B", "HZ", 5), ("A", "BJ", 5), ("B", "BJ", 5))
    assert plan(lines(A=1, B=1), levels).warehouses == ("BJ",)


def test_split_order_takes_each_line_from_the_nearest_warehouse_that_has_it() -> None:
    levels = stock(("A", "SH", 5), ("B", "HZ", 5), ("B", "GZ", 5), ("A", "CD", 5))
    result = plan(lines(A=2, B=2), levels)
    assert shipped_from(result) == {"A": [("SH", 2)], "B": [("HZ", 2)]}
    assert result.warehouses == ("SH", "HZ")
    assert result.is_split


def test_split_line_empties_the_nearest_warehouse_and_takes_the_remainder_from_the_next() -> None:
    levels = stock(("A", "SH", 3), ("A", "HZ", 4), ("A", "BJ", 10), ("B", "GZ", 1))
    result = plan(lines(A=7, B=1), levels)
    assert shipped_from(result) == {"A": [("SH", 3), ("HZ", 4)], "B": [("GZ", 1)]}
    assert result.warehouses == ("SH", "HZ", "GZ")


def test_one_parcel_beats_two_that_reach_no_nearer() -> None:
    # SH 3 + HZ 4 would reach as far as HZ alone: one shipment is better.
    levels = stock(("A", "SH", 3), ("A", "HZ", 10), ("B", "GZ", 1))
    assert shipped_from(plan(lines(A=7, B=1), levels))["A"] == [("HZ", 7)]


def test_a_line_uses_the_pair_whose_farthest_warehouse_is_nearest() -> None:
    levels = stock(("A", "SH", 1), ("A", "HZ", 6), ("A", "BJ", 6), ("A", "CD", 9))
    # SH+HZ is 7 < 10; HZ+BJ fills it and reaches less far than anything with CD.
    assert shipped_from(plan(lines(A=10), levels)) == {"A": [("HZ", 6), ("BJ", 4)]}
    # A nearer first parcel is preferred when the farthest one is the same.
    levels = stock(("A", "SH", 4), ("A", "HZ", 5), ("A", "BJ", 6))
    assert shipped_from(plan(lines(A=10), levels)) == {"A": [("SH", 4), ("BJ", 6)]}


def test_reserved_stock_is_not_allocated() -> None:
    levels = [
        StockLevel("A", "SH", on_hand=5, reserved=5),
        StockLevel("A", "HZ", on_hand=5, reserved=0),
    ]
    assert plan(lines(A=2), levels).warehouses == ("HZ",)


def test_without_a_destination_ties_are_broken_by_warehouse_id() -> None:
    levels = stock(("A", "SH", 5), ("A", "BJ", 5), ("A", "GZ", 5))
    assert plan(lines(A=1), levels, destination=None).warehouses == ("BJ",)


def test_without_a_destination_a_split_order_uses_as_few_warehouses_as_it_can() -> None:
    # Line A could come from BJ (first by id), but GZ must ship B anyway and has A too.
    levels = stock(("A", "BJ", 5), ("A", "GZ", 5), ("B", "GZ", 5), ("C", "SH", 5))
    result = plan(lines(A=1, B=1, C=1), levels, destination=None)
    assert result.warehouses == ("GZ", "SH")


def test_co_located_warehouses_prefer_the_one_already_shipping() -> None:
    locations = {"SH-A": SHANGHAI, "SH-B": SHANGHAI, "BJ": BEIJING}
    levels = stock(("X", "SH-A", 5), ("X", "SH-B", 5), ("Y", "SH-B", 5), ("Z", "BJ", 5))
    result = plan(lines(X=1, Y=1, Z=1), levels, locations=locations)
    assert shipped_from(result)["X"] == [("SH-B", 1)]
    assert result.warehouses == ("SH-B", "BJ")


def test_a_warehouse_without_a_location_ranks_after_the_located_ones() -> None:
    levels = stock(("A", "AAA", 5), ("A", "GZ", 5))
    assert plan(lines(A=1), levels).warehouses == ("GZ",)


def test_an_unknown_destination_still_ranks_located_warehouses_by_id() -> None:
    ranked = allocation.rank_warehouses(["SH", "BJ", "GZ"], WAREHOUSES, None)
    assert [r.warehouse for r in ranked] == ["BJ", "GZ", "SH"]
    assert {r.tier for r in ranked} == {0}


def test_ranking_measures_great_circle_distance() -> None:
    ranked = allocation.rank_warehouses(WAREHOUSES, WAREHOUSES, SUZHOU)
    assert [r.warehouse for r in ranked] == ["SH", "HZ", "BJ", "GZ", "CD"]
    assert ranked[0].distance_km == pytest.approx(84, abs=5)


def test_out_of_stock_names_every_short_sku_with_the_total_available() -> None:
    levels = stock(("A", "SH", 2), ("A", "BJ", 1), ("B", "SH", 9), ("C", "GZ", 1))
    with pytest.raises(OutOfStock) as raised:
        plan(lines(A=4, B=1, C=2, D=1), levels)
    assert raised.value.code == "out_of_stock"
    assert raised.value.details == [
        {"sku": "A", "requested": 4, "available": 3},
        {"sku": "C", "requested": 2, "available": 1},
        {"sku": "D", "requested": 1, "available": 0},
    ]


def test_a_line_that_would_need_three_warehouses_is_out_of_stock() -> None:
    levels = stock(("A", "SH", 2), ("A", "HZ", 2), ("A", "BJ", 2))
    with pytest.raises(OutOfStock) as raised:
        plan(lines(A=5), levels)
    assert raised.value.details == [{"sku": "A", "requested": 5, "available": 6}]
    assert "2 warehouses" in raised.value.message


@pytest.mark.parametrize(
    "bad_lines",
    [[], [RequestedLine("A", 1), RequestedLine("A", 2)], [RequestedLine("A", 0)]],
)
def test_lines_must_be_present_distinct_and_positive(bad_lines) -> None:
    with pytest.raises(InvalidInput):
        plan(bad_lines, stock(("A", "SH", 5)))


# -- properties --------------------------------------------------------------------------

PALETTE = [SHANGHAI, SUZHOU, HANGZHOU, BEIJING, GUANGZHOU, CHENGDU, None]
SKUS = ["A", "B", "C", "D", "E"]


@st.composite
def worlds(draw):
    warehouse_ids = draw(
        st.lists(st.sampled_from(list("WXYZUV")), min_size=1, max_size=6, unique=True)
    )
    locations = {}
    for w in warehouse_ids:
        location = draw(st.sampled_from(PALETTE))
        if location is not None:
            locations[w] = location
    levels = []
    for sku in SKUS:
        for w in warehouse_ids:
            # Sparse stock, so that whole-order, split and out-of-stock plans all occur.
            on_hand = draw(st.sampled_from([0, 0, 1, 2, 3, 5, 8, 12]))
            if on_hand or draw(st.booleans()):
                reserved = draw(st.integers(0, on_hand // 2))
                levels.append(StockLevel(sku, w, on_hand=on_hand, reserved=reserved))
    chosen = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=4, unique=True))
    order = [RequestedLine(sku, draw(st.integers(1, 10))) for sku in chosen]
    destination = draw(st.sampled_from(PALETTE))
    return order, levels, destination, locations


def _distance(destination, locations, warehouse) -> float:
    if destination is None or warehouse not in locations:
        return math.inf
    return destination.distance_km(locations[warehouse])


def _rank_key(destination, locations, warehouse):
    # Unknown destination: every warehouse equally near, ordered by id.
    distance = _distance(destination, locations, warehouse) if destination else 0.0
    return (distance, warehouse)


def _available(levels) -> dict[tuple[str, str], int]:
    return {(lv.sku, lv.warehouse): lv.available for lv in levels}


def _fits_within_two(line, available, warehouses) -> bool:
    amounts = sorted((available.get((line.sku, w), 0) for w in warehouses), reverse=True)
    return sum(amounts[:2]) >= line.quantity


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(worlds())
def test_allocates_exactly_what_was_asked_and_never_more_than_available(world) -> None:
    order, levels, destination, locations = world
    available = _available(levels)
    warehouses = {lv.warehouse for lv in levels}
    try:
        result = allocation.plan(order, levels, destination, warehouse_locations=locations)
    except OutOfStock as short:
        named = {d["sku"]: d for d in short.details}
        for line in order:
            fits = _fits_within_two(line, available, warehouses)
            assert (line.sku in named) == (not fits)
            if line.sku in named:
                total = sum(q for (sku, _), q in available.items() if sku == line.sku)
                assert named[line.sku] == {
                    "sku": line.sku,
                    "requested": line.quantity,
                    "available": total,
                }
        return

    for line in order:
        parts = result.for_sku(line.sku)
        assert sum(a.quantity for a in parts) == line.quantity
        assert 1 <= len(parts) <= allocation.MAX_WAREHOUSES_PER_LINE
        assert len({a.warehouse for a in parts}) == len(parts)
        assert all(a.quantity > 0 for a in parts)
    for a in result.allocations:
        assert a.quantity <= available[(a.sku, a.warehouse)]
    assert {a.sku for a in result.allocations} == {line.sku for line in order}
    assert set(result.warehouses) == {a.warehouse for a in result.allocations}


@PROPERTY_SETTINGS
@given(worlds())
def test_whole_order_from_one_warehouse_when_any_can_and_none_nearer_could(world) -> None:
    order, levels, destination, locations = world
    available = _available(levels)
    warehouses = sorted({lv.warehouse for lv in levels})

    def fills_everything(w: str) -> bool:
        return all(available.get((line.sku, w), 0) >= line.quantity for line in order)

    capable = [w for w in warehouses if fills_everything(w)]
    if not capable:
        return
    result = allocation.plan(order, levels, destination, warehouse_locations=locations)
    assert len(result.warehouses) == 1
    (used,) = result.warehouses
    assert used in capable
    used_key = _rank_key(destination, locations, used)
    for other in capable:
        other_key = _rank_key(destination, locations, other)
        # Nothing strictly nearer (beyond rounding to a metre) could have shipped it all.
        assert not other_key[0] < used_key[0] - 0.01, (other, used)


@PROPERTY_SETTINGS
@given(worlds())
def test_each_split_line_reaches_no_farther_than_it_must(world) -> None:
    order, levels, destination, locations = world
    available = _available(levels)
    warehouses = sorted({lv.warehouse for lv in levels})
    try:
        result = allocation.plan(order, levels, destination, warehouse_locations=locations)
    except OutOfStock:
        return
    if not result.is_split:
        return

    def reach(group) -> float:
        return max(_distance(destination, locations, w) for w in group)

    for line in order:
        used = [a.warehouse for a in result.for_sku(line.sku)]
        feasible = [
            group
            for size in (1, 2)
            for group in combinations(warehouses, size)
            if sum(available.get((line.sku, w), 0) for w in group) >= line.quantity
        ]
        best = min(reach(group) for group in feasible)
        if math.isinf(best):
            continue
        assert reach(used) <= best + 0.01
