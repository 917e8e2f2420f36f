"""Catalogue use cases: create or replace products and warehouses, read, list and search."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from chalicelib.domain import search
from chalicelib.domain.catalogue import (
    Category,
    Product,
    ProductDetails,
    ProductNotFound,
    Warehouse,
    WarehouseDetails,
    WarehouseNotFound,
    require_category,
    require_id,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chalicelib.store.catalogue import ProductRepository, StaleWrite, WarehouseRepository
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor, scope_of

# How many index entries one search reads per term before it stops trusting that term
# to narrow things down; also the most products a search ranks.
SEARCH_CANDIDATE_BUDGET = 500
_WRITE_ATTEMPTS = 5

products = ProductRepository()
warehouses = WarehouseRepository()

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Saved(Generic[T]):
    """The stored value, and whether this call created it (201) rather than replaced it."""

    value: T
    created: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _pause_before_retry(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


def put_product(
    sku: str, details: ProductDetails, *, now: datetime | None = None
) -> Saved[Product]:
    """Create or replace a product; writing the same details again changes nothing."""
    require_id(sku, "sku")
    for attempt in range(_WRITE_ATTEMPTS):
        existing = products.get(sku, consistent=True)
        if existing is not None and existing.details() == details:
            return Saved(existing, created=False)
        moment = now or _now()
        product = (
            Product.create(sku, details, moment)
            if existing is None
            else existing.replaced_by(details, moment)
        )
        try:
            products.save(product, previous=existing)
        except StaleWrite:
            _pause_before_retry(attempt)
            continue
        return Saved(product, created=existing is None)
    raise Conflict(f"Product {sku} is being changed by someone else; try again.")


def get_product(sku: str, *, staff: bool = False) -> Product:
    """The product; inactive ones exist only for staff (``ProductNotFound`` for others)."""
    product = products.get(require_id(sku, "sku"))
    if product is None or not product.is_visible_to(staff=staff):
        raise ProductNotFound(sku)
    return product


def list_products(
    *,
    query: str | None = None,
    category: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    staff: bool = False,
) -> Page[Product]:
    """Products matching ``query`` (best first) or all of them (by SKU), a page at a time."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if category is not None:
        require_category(category)
    if query and query.strip():
        return _search(search.SearchQuery.parse(query), category, limit, cursor, staff)
    return products.list_page(category=category, include_inactive=staff, limit=limit, cursor=cursor)


def _search(
    query: search.SearchQuery, category: str | None, limit: int, cursor: str | None, staff: bool
) -> Page[Product]:
    if query.is_empty():
        # Nothing searchable in it (punctuation, single letters): nothing can match.
        return Page(items=[], next_cursor=None)
    scope = scope_of("products.search", query.text, category, staff)
    after = _search_position(cursor, scope) if cursor else None

    candidates = products.search_candidates(query.terms, budget=SEARCH_CANDIDATE_BUDGET)
    found = products.get_many(candidates.skus)
    eligible = [
        (sku, product.search_document())
        for sku, product in found.items()
        if product.is_visible_to(staff=staff) and category in (None, product.category)
    ]
    ranked = search.rank(query, eligible)
    if after is not None:
        ranked = [(points, sku) for points, sku in ranked if (-points, sku) > after]
    page = ranked[:limit]
    next_cursor = None
    if len(ranked) > limit:
        last_points, last_sku = page[-1]
        next_cursor = encode_cursor(scope, {"score": last_points, "sku": last_sku})
    return Page(items=[found[sku] for _, sku in page], next_cursor=next_cursor)


def _search_position(cursor: str, scope: str) -> tuple[int, str]:
    position = decode_cursor(cursor, scope)
    points, sku = position.get("score"), position.get("sku")
    if not isinstance(points, int) or isinstance(points, bool) or not isinstance(sku, str):
        raise InvalidCursor()
    return (-points, sku)


def list_categories() -> list[Category]:
    """The categories a shopper can browse: those holding active products, by id."""
    return [category for category in products.categories() if category.product_count > 0]


def put_warehouse(
    warehouse_id: str, details: WarehouseDetails, *, now: datetime | None = None
) -> Saved[Warehouse]:
    """Create or replace a warehouse; writing the same details again changes nothing."""
    require_id(warehouse_id, "id")
    for attempt in range(_WRITE_ATTEMPTS):
        existing = warehouses.get(warehouse_id, consistent=True)
        if existing is not None and existing.details() == details:
            return Saved(existing, created=False)
        moment = now or _now()
        warehouse = (
            Warehouse.create(warehouse_id, details, moment)
            if existing is None
            else existing.replaced_by(details, moment)
        )
        try:
            warehouses.save(warehouse, previous=existing)
        except StaleWrite:
            _pause_before_retry(attempt)
            continue
        return Saved(warehouse, created=existing is None)
    raise Conflict(f"Warehouse {warehouse_id} is being changed by someone else; try again.")


def get_warehouse(warehouse_id: str) -> Warehouse:
    warehouse = warehouses.get(require_id(warehouse_id, "id"))
    if warehouse is None:
        raise WarehouseNotFound(warehouse_id)
    return warehouse


def list_warehouses() -> list[Warehouse]:
    return warehouses.list_all()
