"""The replacement an exchange sends: stock reserved under the after-sales request's id on
approval (from the preferred warehouse, else the order's, else any known one), released when
the request is cancelled or closed, shipped when the replacement leaves, and counted for the
stock audit while it is held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain import after_sales as rules
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.after_sales import AfterSalesRequest, Held
from chalicelib.domain.errors import OutOfStock
from chalicelib.domain.orders import Order
from chalicelib.services import stock
from chalicelib.store import after_sales as store
from chalicelib.store import inventory as inventory_store
from chalicelib.store.unit_of_work import UnitOfWork


def reserve(
    uow: UnitOfWork,
    request: AfterSalesRequest,
    order: Order,
    *,
    prefer: str,
    at: datetime,
    actor: str,
) -> tuple[Held, ...]:
    wanted: dict[str, int] = {}
    for line in request.lines:
        sku = line.exchange_sku or line.sku
        wanted[sku] = wanted.get(sku, 0) + line.quantity
    known = [w.id for w in stock.known_warehouses()]
    order_warehouses = [s.warehouse for s in order.shipments]
    ranked = [prefer] + [w for w in order_warehouses if w != prefer]
    ranked += [w for w in known if w not in ranked]
    levels = inventory_store.get_levels_many(
        [(sku, w) for sku in wanted for w in ranked], consistent=True
    )
    held: list[Held] = []
    short: list[dict[str, Any]] = []
    for sku, quantity in wanted.items():
        source = next((w for w in ranked if levels[(sku, w)].can_reserve(quantity)), None)
        if source is None:
            available = sum(max(0, levels[(sku, w)].available) for w in ranked)
            short.append({"sku": sku, "requested": quantity, "available": available})
            continue
        before = levels[(sku, source)]
        shard = _shard_for(before, quantity)
        after, movement = stock_rules.reserve(
            before, quantity, order_id=request.request_id, at=at, actor=actor
        )
        stock.record_movement(uow, before, after, movement, shard=shard)
        held.append(Held(sku, source, quantity, shard or 0))
    if short:
        named = ", ".join(s["sku"] for s in short)
        raise OutOfStock(
            f"No replacement in stock for {named}; consider a refund (return) instead.", short
        )
    return tuple(held)


def _shard_for(level: stock_rules.StockLevel, quantity: int) -> int | None:
    """The shard of a sharded level a replacement is held on (one that covers it, stock
    gathered onto one first if none does); None for an unsharded level."""
    if not level.is_sharded:
        return None
    shard = stock_rules.pick_shard(level, quantity)
    if shard is None:
        gathered = stock.rebalance(level.sku, level.warehouse, need=quantity)
        shard = stock_rules.pick_shard(gathered, quantity)
    if shard is None:
        raise stock_rules.ShardsTooThin(level, quantity)
    return shard


def release(uow: UnitOfWork, request: AfterSalesRequest, *, at: datetime, actor: str) -> None:
    if not request.holds_replacement:
        return
    levels = inventory_store.get_levels_many(
        [(h.sku, h.warehouse) for h in request.replacement], consistent=True
    )
    for held in request.replacement:
        before = levels[(held.sku, held.warehouse)]
        after, movement = stock_rules.release(
            before, held.quantity, order_id=request.request_id, at=at, actor=actor
        )
        stock.record_movement(uow, before, after, movement, shard=held.shard)


def ship(uow: UnitOfWork, request: AfterSalesRequest, *, at: datetime, actor: str) -> None:
    """The held replacement leaves its reservation (``shipped`` under the request's id)."""
    levels = inventory_store.get_levels_many(
        [(h.sku, h.warehouse) for h in request.replacement], consistent=True
    )
    for held in request.replacement:
        before = levels[(held.sku, held.warehouse)]
        after, movement = stock_rules.ship(
            before, held.quantity, order_id=request.request_id, at=at, actor=actor
        )
        stock.record_movement(uow, before, after, movement, shard=held.shard)


def replacements_held() -> dict[tuple[str, str], int]:
    """Units reserved per (sku, warehouse) for exchanges not yet shipped (stock audit)."""
    held: dict[tuple[str, str], int] = {}
    for status in rules.HOLDING_REPLACEMENT:
        for request in store.iter_by_status(status):
            for h in request.replacement:
                held[(h.sku, h.warehouse)] = held.get((h.sku, h.warehouse), 0) + h.quantity
    return held
