"""The stock proof behind ``make check-stock``: counters agree with the ledger and the orders.

For every (SKU, warehouse) — SKUs from the catalogue's listing index (no Scan) × the known
warehouses — it checks:

- ``on_hand`` equals the sum of the level's ledger, and so does ``reserved``;
- ``available`` equals ``on_hand - reserved`` and is never negative;
- ``reserved`` equals the open reservations: quantities of orders whose shipment from that
  warehouse has neither shipped nor been released (read from the orders' status index),
  plus the replacements held for exchanges that have not shipped (read from the after-sales
  status index), and also the per-order (or per-request) reservations the ledger itself
  records (no order gave back more than it held).

Levels and ledger entries are written in the same transaction and levels are never
deleted, so a pair without a level has no ledger either; only existing levels are walked.
The proof is exact on a quiet system; run it while orders flow and an order committed
between two reads can show as a passing mismatch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import inventory as rules
from chalicelib.domain.orders import OrderStatus, ShipmentStatus
from chalicelib.services import after_sales_replacement, catalogue
from chalicelib.store import inventory as store
from chalicelib.store import orders as order_store
from chalicelib.store import stock_ledger

StockKey = tuple[str, str]
_LISTING_PAGE = 100


@dataclass(frozen=True, slots=True)
class Mismatch:
    sku: str
    warehouse: str
    check: str  # which rule broke, e.g. "on_hand == ledger"
    stored: int
    expected: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "warehouse": self.warehouse,
            "check": self.check,
            "stored": self.stored,
            "expected": self.expected,
        }


@dataclass(frozen=True, slots=True)
class StockAudit:
    skus: int
    warehouses: int
    levels_checked: int
    ledger_entries: int
    mismatches: tuple[Mismatch, ...] = field(default=())

    @property
    def balanced(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "balanced": self.balanced,
            "skus": self.skus,
            "warehouses": self.warehouses,
            "levels_checked": self.levels_checked,
            "ledger_entries": self.ledger_entries,
            "mismatches": [m.as_dict() for m in self.mismatches],
        }


def catalogue_skus() -> list[str]:
    """Every SKU in the catalogue, active or not, through its listing index."""
    skus: list[str] = []
    cursor: str | None = None
    while True:
        page = catalogue.products.list_page(
            category=None, include_inactive=True, limit=_LISTING_PAGE, cursor=cursor
        )
        skus.extend(product.sku for product in page.items)
        if page.next_cursor is None:
            return skus
        cursor = page.next_cursor


# Orders in these statuses still hold stock for their shipments that are still in
# HOLDING_SHIPMENTS; shipped stock has left on_hand and reserved, released stock was given back.
HOLDING_ORDERS = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.PICKING,
    OrderStatus.PACKED,
)
HOLDING_SHIPMENTS = frozenset(
    {ShipmentStatus.PENDING, ShipmentStatus.PICKING, ShipmentStatus.PACKED}
)


def reservations_held_by_orders() -> dict[StockKey, int]:
    """Units reserved per (sku, warehouse) according to the orders, from their status index:
    an order holds stock for each shipment that has not shipped while it is neither
    cancelled nor expired."""
    held: dict[StockKey, int] = defaultdict(int)
    for status in HOLDING_ORDERS:
        for order in order_store.iter_by_status(status):
            for shipment in order.shipments:
                if shipment.status in HOLDING_SHIPMENTS:
                    for line in shipment.lines:
                        held[(line.sku, shipment.warehouse)] += line.quantity
    return dict(held)


def audit_stock() -> StockAudit:
    """Check every level; the report lists each broken rule with stored and expected values."""
    skus = catalogue_skus()
    warehouses = [w.id for w in catalogue.list_warehouses()]
    pairs = [(sku, warehouse) for sku in skus for warehouse in warehouses]
    # Orders first: a reservation made after this read can only make reserved look higher.
    from_orders = reservations_held_by_orders()
    for key, held in after_sales_replacement.replacements_held().items():
        from_orders[key] = from_orders.get(key, 0) + held
    levels = store.levels_with_stored_available(pairs)

    mismatches: list[Mismatch] = []
    entries = 0
    checked: set[StockKey] = set()
    for level, stored_available in levels:
        key = (level.sku, level.warehouse)
        checked.add(key)
        movements = list(stock_ledger.iter_ledger(*key))
        entries += len(movements)
        ledger_on_hand, ledger_reserved = rules.ledger_balance(movements)
        per_order = rules.open_reservations(movements)

        def expect(check: str, stored: int, expected: int, key: StockKey = key) -> None:
            if stored != expected:
                mismatches.append(Mismatch(key[0], key[1], check, stored, expected))

        expect("on_hand == ledger", level.on_hand, ledger_on_hand)
        expect("reserved == ledger", level.reserved, ledger_reserved)
        expect("reserved == open reservations in ledger", level.reserved, sum(per_order.values()))
        expect("available == on_hand - reserved", stored_available, level.available)
        if level.available < 0:
            mismatches.append(Mismatch(*key, "available >= 0", level.available, 0))
        for order_id, held in sorted(per_order.items()):
            if held < 0:
                mismatches.append(
                    Mismatch(*key, f"order {order_id} released more than held", held, 0)
                )
        expect("reserved == open order reservations", level.reserved, from_orders.get(key, 0))
    for key, held in sorted(from_orders.items()):
        if key not in checked and held:
            mismatches.append(Mismatch(*key, "reserved == open order reservations", 0, held))

    return StockAudit(
        skus=len(skus),
        warehouses=len(warehouses),
        levels_checked=len(levels),
        ledger_entries=entries,
        mismatches=tuple(mismatches),
    )
