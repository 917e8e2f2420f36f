"""Which warehouse ships what: nearest warehouse first.

``plan(order_lines, stock, destination, warehouse_locations=...)`` decides, from a snapshot
of stock levels, where every line of an order comes from:

1. Rank warehouses by great-circle distance to the destination. Without a destination
   (or for a warehouse without a location) there is no distance preference; equal
   distances are broken by warehouse id, so the same input always gives the same plan.
2. If one warehouse has every line, the whole order ships from the nearest such warehouse.
3. Otherwise each line is filled from the nearest warehouses that have it, at most
   ``MAX_WAREHOUSES_PER_LINE`` per line (which keeps an order inside one DynamoDB
   transaction). A line prefers the option whose farthest warehouse is nearest; among
   equally near options it prefers the one adding the fewest shipments to the order.
4. If any line cannot be filled that way, ``OutOfStock`` names every short SKU with what
   was requested and the total available across warehouses.

The plan is only as fresh as its snapshot: the store's conditional writes decide, and on a
lost race the service re-plans with fresh stock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

from chalicelib.domain.catalogue import Location
from chalicelib.domain.errors import InvalidInput, OutOfStock
from chalicelib.domain.inventory import StockLevel

MAX_WAREHOUSES_PER_LINE = 2


class Line(Protocol):
    """Anything with a SKU and a quantity: a request model, an ``OrderLine``, ..."""

    @property
    def sku(self) -> str: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RequestedLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Allocation:
    sku: str
    warehouse: str
    quantity: int
    # The shard of a sharded level the units are reserved on (0 for an unsharded level).
    shard: int = 0

    def as_dict(self) -> dict[str, str | int]:
        """The shape inside an order line: ``{"warehouse", "quantity"}``."""
        return {"warehouse": self.warehouse, "quantity": self.quantity}


@dataclass(frozen=True, slots=True)
class RankedWarehouse:
    warehouse: str
    distance_km: float | None  # None: unknown destination or warehouse location
    tier: int  # warehouses at the same distance share a tier; lower is nearer


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    # In order-line order; within a line, nearest warehouse first.
    allocations: tuple[Allocation, ...]
    # Every warehouse the plan ships from, nearest first: one shipment each.
    warehouses: tuple[str, ...]

    @property
    def is_split(self) -> bool:
        return len(self.warehouses) > 1

    def for_sku(self, sku: str) -> tuple[Allocation, ...]:
        return tuple(a for a in self.allocations if a.sku == sku)

    def for_warehouse(self, warehouse: str) -> tuple[Allocation, ...]:
        return tuple(a for a in self.allocations if a.warehouse == warehouse)

    def quantity(self, sku: str, warehouse: str) -> int:
        return sum(a.quantity for a in self.allocations if (a.sku, a.warehouse) == (sku, warehouse))


def rank_warehouses(
    warehouses: Iterable[str],
    warehouse_locations: Mapping[str, Location],
    destination: Location | None,
) -> list[RankedWarehouse]:
    """Nearest first; unknown distances after known ones; ties by warehouse id."""

    def distance(warehouse: str) -> float | None:
        location = warehouse_locations.get(warehouse)
        if destination is None or location is None:
            return None
        # Rounded to a metre so that co-located warehouses tie instead of differing in noise.
        return round(destination.distance_km(location), 3)

    measured = sorted(
        ((distance(w), w) for w in set(warehouses)),
        key=lambda pair: (pair[0] is None, pair[0] or 0.0, pair[1]),
    )
    ranked: list[RankedWarehouse] = []
    tier = -1
    previous: object = object()
    for km, warehouse in measured:
        if km != previous:
            tier += 1
            previous = km
        ranked.append(RankedWarehouse(warehouse=warehouse, distance_km=km, tier=tier))
    return ranked


@dataclass(frozen=True, slots=True)
class _Option:
    """One way to fill a line: (warehouse, quantity) pairs, nearest first."""

    parts: tuple[tuple[RankedWarehouse, int], ...]

    @property
    def warehouses(self) -> tuple[str, ...]:
        return tuple(ranked.warehouse for ranked, _ in self.parts)

    def preference(
        self, chosen: set[str], position: Mapping[str, int]
    ) -> tuple[int, int, int, int, tuple[int, ...]]:
        tiers = [ranked.tier for ranked, _ in self.parts]
        new_shipments = sum(1 for w in self.warehouses if w not in chosen)
        return (
            max(tiers),  # how far the farthest parcel travels
            new_shipments,  # fewer shipments for the order when that ties
            len(self.parts),  # then fewer parcels for this line
            min(tiers),  # then more of it from nearer
            tuple(position[w] for w in self.warehouses),  # then rank order, for determinism
        )


def _validated(order_lines: Sequence[Line]) -> list[RequestedLine]:
    if not order_lines:
        raise InvalidInput("An order needs at least one line.")
    lines: list[RequestedLine] = []
    seen: set[str] = set()
    for line in order_lines:
        quantity = line.quantity
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            raise InvalidInput(f"Quantity of {line.sku} must be a positive integer.")
        if line.sku in seen:
            raise InvalidInput(f"SKU {line.sku} appears on more than one line.")
        seen.add(line.sku)
        lines.append(RequestedLine(line.sku, quantity))
    return lines


def _available_by_key(stock: Iterable[StockLevel], skus: set[str]) -> dict[tuple[str, str], int]:
    available: dict[tuple[str, str], int] = {}
    for level in stock:
        key = (level.sku, level.warehouse)
        if key in available:
            raise ValueError(f"Stock for {key} given twice")
        if level.sku in skus:
            available[key] = max(0, level.available)
    return available


def _options(
    line: RequestedLine, ranked: list[RankedWarehouse], available: Mapping[tuple[str, str], int]
) -> list[_Option]:
    having = [(r, available.get((line.sku, r.warehouse), 0)) for r in ranked]
    having = [(r, qty) for r, qty in having if qty > 0]
    options = [_Option(((r, line.quantity),)) for r, qty in having if qty >= line.quantity]
    # Two warehouses: empty the nearer one, the farther one sends the rest. A pair whose
    # nearer warehouse could fill the line alone is never better than that single option.
    for (near, near_qty), (far, far_qty) in combinations(having, MAX_WAREHOUSES_PER_LINE):
        if near_qty < line.quantity <= near_qty + far_qty:
            options.append(_Option(((near, near_qty), (far, line.quantity - near_qty))))
    return options


def plan(
    order_lines: Sequence[Line],
    stock: Iterable[StockLevel],
    destination: Location | None,
    *,
    warehouse_locations: Mapping[str, Location],
) -> AllocationPlan:
    """Decide which warehouses fill each line (see the module docstring for the rules).

    ``stock`` is one snapshot: a level per (SKU, warehouse) at most; missing pairs hold
    nothing. ``warehouse_locations`` maps warehouse id to its location.
    """
    lines = _validated(order_lines)
    available = _available_by_key(stock, {line.sku for line in lines})
    ranked = rank_warehouses((w for _, w in available), warehouse_locations, destination)
    position = {r.warehouse: index for index, r in enumerate(ranked)}

    options = {line.sku: _options(line, ranked, available) for line in lines}
    short = [line for line in lines if not options[line.sku]]
    if short:
        raise _out_of_stock(short, available)

    for candidate in ranked:
        if all(
            available.get((line.sku, candidate.warehouse), 0) >= line.quantity for line in lines
        ):
            return _assemble(lines, {line.sku: ((candidate, line.quantity),) for line in lines})

    # Least flexible lines choose first, so flexible ones can join warehouses already picked.
    def flexibility(line: RequestedLine) -> int:
        nearest = min(max(r.tier for r, _ in option.parts) for option in options[line.sku])
        return sum(1 for o in options[line.sku] if max(r.tier for r, _ in o.parts) == nearest)

    chosen: set[str] = set()
    parts_by_sku: dict[str, tuple[tuple[RankedWarehouse, int], ...]] = {}
    for line in sorted(lines, key=flexibility):  # stable: ties keep the order's line order
        best = min(options[line.sku], key=lambda o: o.preference(chosen, position))
        chosen.update(best.warehouses)
        parts_by_sku[line.sku] = best.parts
    return _assemble(lines, parts_by_sku)


def _out_of_stock(
    short: list[RequestedLine], available: Mapping[tuple[str, str], int]
) -> OutOfStock:
    details = [
        {
            "sku": line.sku,
            "requested": line.quantity,
            "available": sum(q for (sku, _), q in available.items() if sku == line.sku),
        }
        for line in short
    ]
    reasons = [
        f"{d['sku']} (requested {d['requested']}, available {d['available']}"
        + (
            f" but not within {MAX_WAREHOUSES_PER_LINE} warehouses)"
            if d["available"] >= d["requested"]
            else ")"
        )
        for d in details
    ]
    return OutOfStock(f"Not enough stock for: {', '.join(reasons)}.", details)


def _assemble(
    lines: list[RequestedLine],
    parts_by_sku: Mapping[str, tuple[tuple[RankedWarehouse, int], ...]],
) -> AllocationPlan:
    allocations = tuple(
        Allocation(sku=line.sku, warehouse=ranked.warehouse, quantity=quantity)
        for line in lines
        for ranked, quantity in parts_by_sku[line.sku]
    )
    used = {ranked.warehouse: ranked for parts in parts_by_sku.values() for ranked, _ in parts}
    nearest_first = sorted(used.values(), key=lambda r: (r.tier, r.warehouse))
    return AllocationPlan(
        allocations=allocations, warehouses=tuple(r.warehouse for r in nearest_first)
    )
