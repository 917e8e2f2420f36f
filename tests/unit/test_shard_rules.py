"""The pure rules of sharded stock levels: spreading receipts, picking a shard for a
reservation, and the moves that rebalance shards."""

from __future__ import annotations

import random

import pytest

from chalicelib.domain import inventory as rules
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.inventory import Shard, StockLevel


def sharded(*available: int, active: int | None = None, reserved: int = 0) -> StockLevel:
    shards = tuple(
        Shard(index, on_hand=units + reserved, reserved=reserved)
        for index, units in enumerate(available)
    )
    return StockLevel(
        sku="SKU",
        warehouse="WH",
        on_hand=sum(s.on_hand for s in shards),
        reserved=sum(s.reserved for s in shards),
        shards=shards,
        active_shards=len(available) if active is None else active,
    )


def apply(level: StockLevel, moves: list[tuple[int, int, int]]) -> list[int]:
    available = [shard.available for shard in level.shards]
    for source, target, units in moves:
        assert units > 0
        available[source] -= units
        available[target] += units
        assert available[source] >= 0
    return available


@pytest.mark.parametrize("value", [0, 33, -1, True, False, 2.0, "4", None])
def test_a_shard_count_must_be_an_integer_from_1_to_32(value: object) -> None:
    with pytest.raises(InvalidInput):
        rules.require_shard_count(value)


@pytest.mark.parametrize("value", [1, 16, 32])
def test_shard_counts_in_range_are_accepted(value: int) -> None:
    assert rules.require_shard_count(value) == value


def test_a_receipt_is_spread_evenly_and_shard_zero_always_gets_some() -> None:
    assert rules.spread(10, 4) == [(0, 3), (1, 3), (2, 2), (3, 2)]
    assert rules.spread(2, 4) == [(0, 1), (1, 1)]
    assert rules.spread(7, 1) == [(0, 7)]
    assert sum(units for _, units in rules.spread(1001, 16)) == 1001


def test_an_unsharded_level_is_not_sharded_and_counts_one_shard() -> None:
    level = StockLevel("SKU", "WH", on_hand=5)
    assert not level.is_sharded
    assert level.shard_count == 1


def test_a_reservation_picks_only_active_shards_that_cover_it() -> None:
    level = sharded(1, 5, 0, 9, 50, active=4)  # shard 4 is being drained
    picks = {rules.pick_shard(level, 5, random.Random(seed)) for seed in range(200)}
    assert picks == {1, 3}


def test_picks_are_spread_over_the_covering_shards() -> None:
    level = sharded(10, 10, 10, 10)
    rng = random.Random(7)
    counts = [0, 0, 0, 0]
    for _ in range(4000):
        counts[rules.pick_shard(level, 1, rng) or 0] += 1
    assert min(counts) > 800


def test_no_shard_is_picked_when_none_covers_even_if_the_level_does() -> None:
    level = sharded(2, 2, 2, 2)
    assert level.available == 8
    assert rules.pick_shard(level, 3) is None


def test_rebalancing_evens_out_the_active_shards_and_drains_dropped_ones() -> None:
    level = sharded(0, 12, 3, 1, 4, active=4)  # shard 4 was dropped
    after = apply(level, rules.rebalance_moves(level))
    assert after[4] == 0
    assert sorted(after[:4]) == [5, 5, 5, 5]


def test_rebalancing_an_even_level_moves_nothing() -> None:
    assert rules.rebalance_moves(sharded(3, 2, 3, 2)) == []


def test_rebalancing_for_a_need_tops_up_one_shard_to_cover_it() -> None:
    level = sharded(2, 2, 2, 2)
    after = apply(level, rules.rebalance_moves(level, need=5))
    assert max(after) >= 5
    assert sum(after) == 8


def test_rebalancing_for_more_than_the_level_has_gathers_everything() -> None:
    level = sharded(1, 1, 1, active=3)
    after = apply(level, rules.rebalance_moves(level, need=10))
    assert sorted(after) == [0, 0, 3]


def test_merging_to_one_shard_moves_every_available_unit_to_shard_zero() -> None:
    level = sharded(1, 4, 3, active=1, reserved=2)
    after = apply(level, rules.rebalance_moves(level))
    assert after == [8, 0, 0]


def test_a_shard_too_thin_is_a_conflict_naming_the_level_and_need() -> None:
    error = rules.ShardsTooThin(sharded(1, 1), 2)
    assert (error.sku, error.warehouse, error.need) == ("SKU", "WH", 2)


def test_a_dry_shard_is_refilled_only_while_the_level_has_enough_to_spread() -> None:
    assert rules.needs_refill(sharded(0, 5, 5, 5))
    assert not rules.needs_refill(sharded(0, 1, 1, 1))  # 3 units: not 2 per shard
    assert not rules.needs_refill(sharded(2, 2, 2, 2))
    assert not rules.needs_refill(StockLevel("SKU", "WH", on_hand=0))


def test_stock_stranded_on_a_dropped_shard_is_always_brought_back() -> None:
    assert rules.needs_refill(sharded(0, 1, active=1))
