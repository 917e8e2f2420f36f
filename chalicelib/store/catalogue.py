"""Products, their search index, and warehouses in the main table.

Item shapes (the only place that knows them):

    product      pk=PRODUCT#<sku>      sk=PRODUCT
                 gsi1pk=CATEGORY#<category>  gsi1sk=<A|I>#<sku>   (A = active, I = inactive)
                 gsi2pk=PRODUCTS             gsi2sk=<A|I>#<sku>
                 ops only, each absent when not set: default_low_stock_threshold,
                 unit_cost {amount, currency}, lead_time_days, target_days_of_cover
    search term  pk=TERM#<term>        sk=PRODUCT#<sku>
    category     pk=CATEGORY#<category> sk=COUNT
                 gsi1pk=CATEGORIES           gsi1sk=<category>
                 product_count: active products, moved in the write that changes a product
    warehouse    pk=WAREHOUSE#<id>     sk=WAREHOUSE
                 gsi1pk=WAREHOUSES           gsi1sk=<id>

Listings are Queries on a GSI; shoppers read only the ``A#`` half of a partition (a key
condition, not a filter), staff read all of it. Search Queries ``TERM#`` partitions.

Keeping the index in step with a product without one huge transaction: new terms are
written first (a term that points at a product that does not have it is harmless: search
re-checks every candidate against the product itself), then the product is written
conditionally on the version that was read, together with the deletion of the terms it
lost in the same ``TransactWriteItems``. So a term is only ever removed atomically with
the product change that dropped it, and concurrent writers cannot delete each other's
terms. Deletions beyond one transaction's room are left behind as harmless strays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.catalogue import (
    COORDINATE_DECIMALS,
    ID_PATTERN,
    Category,
    LocalizedText,
    Location,
    PostalAddress,
    Product,
    Warehouse,
    category_count_changes,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.money import Money
from chalicelib.domain.replenishment import ReorderPolicy
from chalicelib.store import tables
from chalicelib.store.pagination import InvalidCursor, Page, decode_cursor, encode_cursor

PRODUCT_PREFIX = "PRODUCT#"
PRODUCT_SK = "PRODUCT"
TERM_PREFIX = "TERM#"
CATEGORY_PREFIX = "CATEGORY#"
ALL_PRODUCTS = "PRODUCTS"
CATEGORY_COUNT_SK = "COUNT"
ALL_CATEGORIES = "CATEGORIES"
WAREHOUSE_PREFIX = "WAREHOUSE#"
WAREHOUSE_SK = "WAREHOUSE"
ALL_WAREHOUSES = "WAREHOUSES"
ACTIVE, INACTIVE = "A#", "I#"

_LISTING_POSITION = re.compile(rf"[AI]#{ID_PATTERN.pattern}")


class StaleWrite(Conflict):
    """Someone else changed the item between our read and our write; read again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was changed concurrently; try again.")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def product_key(sku: str) -> dict[str, Any]:
    """The raw key of a product item (for callers batching reads with other items)."""
    return {tables.PK: {"S": PRODUCT_PREFIX + sku}, tables.SK: {"S": PRODUCT_SK}}


def _term_key(term: str, sku: str) -> dict[str, Any]:
    return {tables.PK: {"S": TERM_PREFIX + term}, tables.SK: {"S": PRODUCT_PREFIX + sku}}


def _listing_sort_key(product: Product) -> str:
    return (ACTIVE if product.active else INACTIVE) + product.sku


def _product_item(product: Product) -> dict[str, Any]:
    listing_key = _listing_sort_key(product)
    return tables.to_item(
        {
            tables.PK: PRODUCT_PREFIX + product.sku,
            tables.SK: PRODUCT_SK,
            "entity": "product",
            "gsi1pk": CATEGORY_PREFIX + product.category,
            "gsi1sk": listing_key,
            "gsi2pk": ALL_PRODUCTS,
            "gsi2sk": listing_key,
            "sku": product.sku,
            "name": product.name.as_dict(),
            "description": product.description.as_dict(),
            "category": product.category,
            "price": product.price.as_dict(),
            "images": list(product.images),
            "active": product.active,
            "created_at": _iso(product.created_at),
            "updated_at": _iso(product.updated_at),
            "version": product.version,
            **_reorder_attributes(product.reorder),
        }
    )


def _reorder_attributes(policy: ReorderPolicy) -> dict[str, Any]:
    # None values are left out of the item (tables.to_item).
    return {
        "default_low_stock_threshold": policy.default_low_stock_threshold,
        "unit_cost": policy.unit_cost.as_dict() if policy.unit_cost else None,
        "lead_time_days": policy.lead_time_days,
        "target_days_of_cover": policy.target_days_of_cover,
    }


def _reorder_from(item: dict[str, Any]) -> ReorderPolicy:
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    cost = item.get("unit_cost")
    return ReorderPolicy(
        default_low_stock_threshold=number("default_low_stock_threshold"),
        unit_cost=Money.from_dict(cost) if cost else None,
        lead_time_days=number("lead_time_days"),
        target_days_of_cover=number("target_days_of_cover"),
    )


def product_from_item(raw: dict[str, Any]) -> Product:
    """A ``Product`` from a raw product item (e.g. one read in a caller's own batch)."""
    item = tables.from_item(raw)
    return Product(
        sku=item["sku"],
        name=LocalizedText.from_mapping(item.get("name") or {}),
        description=LocalizedText.from_mapping(item.get("description") or {}),
        category=item["category"],
        price=Money.from_dict(item["price"]),
        images=tuple(item.get("images") or ()),
        active=bool(item["active"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        version=int(item.get("version", 1)),
        reorder=_reorder_from(item),
    )


def _is_condition_failure(exc: Exception) -> bool:
    code = tables.error_code(exc)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
        return any(
            r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons
        )
    return code == "TransactionConflictException"


def _version_condition(previous_version: int | None) -> dict[str, Any]:
    if previous_version is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#version = :previous",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":previous": {"N": str(previous_version)}},
    }


@dataclass(frozen=True, slots=True)
class Candidates:
    """SKUs that may match a search; ``complete`` is False when a read budget cut it short."""

    skus: frozenset[str]
    complete: bool


class ProductRepository:
    def get(self, sku: str, *, consistent: bool = False) -> Product | None:
        response = tables.client().get_item(
            TableName=tables.table_name(), Key=product_key(sku), ConsistentRead=consistent
        )
        raw = response.get("Item")
        return product_from_item(raw) if raw else None

    def get_many(self, skus: Iterable[str]) -> dict[str, Product]:
        keys = [product_key(sku) for sku in sorted(set(skus))]
        products = (product_from_item(raw) for raw in tables.batch_get(keys))
        return {product.sku: product for product in products}

    def save(self, product: Product, *, previous: Product | None) -> None:
        """Write ``product`` if the stored one is still ``previous``; else ``StaleWrite``."""
        new_terms = product.search_document().terms
        old_terms = previous.search_document().terms if previous else frozenset()
        added = sorted(new_terms - old_terms)
        removed = sorted(old_terms - new_terms)
        # Terms first: until the product lands they only add candidates search rejects.
        tables.batch_write(puts=[_term_item(term, product.sku) for term in added])

        condition = _version_condition(previous.version if previous else None)
        put = {"TableName": tables.table_name(), "Item": _product_item(product), **condition}
        # Category counts move with the product, in its own conditional write.
        counts = [
            {"Update": _category_count_update(category, delta)}
            for category, delta in sorted(category_count_changes(previous, product).items())
        ]
        try:
            if removed or counts:
                room = tables.TRANSACTION_LIMIT - 1 - len(counts)
                deletes = [
                    {"Delete": {"TableName": tables.table_name(), "Key": _term_key(t, product.sku)}}
                    for t in removed[:room]
                ]
                tables.client().transact_write_items(
                    TransactItems=[{"Put": put}, *counts, *deletes]
                )
            else:
                tables.client().put_item(**put)
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(f"Product {product.sku}") from None
            raise

    def categories(self) -> list[Category]:
        """Every category that ever held a product, by id, with its active-product count."""
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": tables.GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": ALL_CATEGORIES}},
        }
        found: list[Category] = []
        while True:
            response = tables.client().query(**query)
            for raw in response.get("Items", []):
                item = tables.from_item(raw)
                found.append(Category(item["gsi1sk"], int(item.get("product_count", 0))))
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list_page(
        self, *, category: str | None, include_inactive: bool, limit: int, cursor: str | None
    ) -> Page[Product]:
        """Products by SKU (staff: active ones first, then inactive), ``limit`` at a time."""
        index, partition = (
            (tables.GSI1, CATEGORY_PREFIX + category) if category else (tables.GSI2, ALL_PRODUCTS)
        )
        pk_name, sk_name = tables.GSI_KEYS[index]
        scope = f"products:{index}:{partition}:{'staff' if include_inactive else 'public'}"
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": pk_name},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            # One extra item tells whether another page exists without an empty last page.
            "Limit": limit + 1,
        }
        if not include_inactive:
            query["KeyConditionExpression"] += " AND begins_with(#sk, :active)"
            query["ExpressionAttributeNames"]["#sk"] = sk_name
            query["ExpressionAttributeValues"][":active"] = {"S": ACTIVE}
        if cursor:
            after = decode_cursor(cursor, scope).get("after")
            valid = isinstance(after, str) and _LISTING_POSITION.fullmatch(after)
            if not valid or (not include_inactive and not after.startswith(ACTIVE)):
                raise InvalidCursor()
            query["ExclusiveStartKey"] = {
                pk_name: {"S": partition},
                sk_name: {"S": after},
                tables.PK: {"S": PRODUCT_PREFIX + after[len(ACTIVE) :]},
                tables.SK: {"S": PRODUCT_SK},
            }
        products: list[Product] = []
        while len(products) <= limit:
            response = tables.client().query(**query)
            products.extend(product_from_item(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        page, more = products[:limit], len(products) > limit
        next_cursor = encode_cursor(scope, {"after": _listing_sort_key(page[-1])}) if more else None
        return Page(items=page, next_cursor=next_cursor)

    def search_candidates(self, terms: Sequence[str], *, budget: int) -> Candidates:
        """SKUs indexed under every term whose partition holds at most ``budget`` entries.

        Rare terms narrow the set; a term more common than ``budget`` is left for the
        caller's own check of each candidate. If every term is that common, the first
        ``budget`` SKUs of the smallest partition seen are returned, marked incomplete.
        """
        matched: frozenset[str] | None = None
        smallest_partial: frozenset[str] | None = None
        # Longer terms tend to be rarer; read them first so an empty one ends the search.
        for term in sorted(terms, key=lambda t: (-len(t), t)):
            skus, complete = self._term_skus(term, budget + 1)
            if complete:
                matched = skus if matched is None else matched & skus
                if not matched:
                    return Candidates(frozenset(), complete=True)
            elif smallest_partial is None:
                smallest_partial = frozenset(sorted(skus)[:budget])
        if matched is not None:
            return Candidates(matched, complete=True)
        return Candidates(smallest_partial or frozenset(), complete=False)

    def _term_skus(self, term: str, limit: int) -> tuple[frozenset[str], bool]:
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": TERM_PREFIX + term}},
            "ProjectionExpression": "sk",
        }
        skus: set[str] = set()
        while True:
            response = tables.client().query(**query, Limit=limit - len(skus))
            skus.update(raw[tables.SK]["S"][len(PRODUCT_PREFIX) :] for raw in response["Items"])
            if "LastEvaluatedKey" not in response:
                return frozenset(skus), True
            if len(skus) >= limit:
                return frozenset(skus), False
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _category_count_update(category: str, delta: int) -> dict[str, Any]:
    return {
        "TableName": tables.table_name(),
        "Key": {
            tables.PK: {"S": CATEGORY_PREFIX + category},
            tables.SK: {"S": CATEGORY_COUNT_SK},
        },
        "UpdateExpression": (
            "SET entity = :entity, gsi1pk = :all, gsi1sk = :category ADD product_count :delta"
        ),
        "ExpressionAttributeValues": {
            ":entity": {"S": "category"},
            ":all": {"S": ALL_CATEGORIES},
            ":category": {"S": category},
            ":delta": {"N": str(delta)},
        },
    }


def _term_item(term: str, sku: str) -> dict[str, Any]:
    return {**_term_key(term, sku), "entity": {"S": "search_term"}}


def _warehouse_item(warehouse: Warehouse) -> dict[str, Any]:
    return tables.to_item(
        {
            tables.PK: WAREHOUSE_PREFIX + warehouse.id,
            tables.SK: WAREHOUSE_SK,
            "entity": "warehouse",
            "gsi1pk": ALL_WAREHOUSES,
            "gsi1sk": warehouse.id,
            "id": warehouse.id,
            "name": warehouse.name,
            "city": warehouse.city,
            "location": {
                "lat": _coordinate(warehouse.location.lat),
                "lon": _coordinate(warehouse.location.lon),
            },
            "created_at": _iso(warehouse.created_at),
            "updated_at": _iso(warehouse.updated_at),
            "version": warehouse.version,
            "address": (
                {
                    "region": warehouse.address.region,
                    "city": warehouse.address.city,
                    "line1": warehouse.address.line1,
                    "postcode": warehouse.address.postcode,
                }
                if warehouse.address
                else None
            ),
            "contact_name": warehouse.contact_name or None,
            "phone": warehouse.phone or None,
        }
    )


def _coordinate(degrees: float) -> Decimal:
    # DynamoDB numbers are decimals with at most 38 digits and no magnitude below 1e-130;
    # rounding as the domain does keeps every float storable, and str() keeps its digits.
    return Decimal(str(round(degrees, COORDINATE_DECIMALS) + 0.0))


def warehouse_from_item(raw: dict[str, Any]) -> Warehouse:
    item = tables.from_item(raw)
    location = item["location"]
    return Warehouse(
        id=item["id"],
        name=item["name"],
        city=item["city"],
        location=Location(lat=float(location["lat"]), lon=float(location["lon"])),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        version=int(item.get("version", 1)),
        address=PostalAddress(**item["address"]) if item.get("address") else None,
        contact_name=item.get("contact_name") or "",
        phone=item.get("phone") or "",
    )


class WarehouseRepository:
    def get(self, warehouse_id: str, *, consistent: bool = False) -> Warehouse | None:
        response = tables.client().get_item(
            TableName=tables.table_name(),
            Key={
                tables.PK: {"S": WAREHOUSE_PREFIX + warehouse_id},
                tables.SK: {"S": WAREHOUSE_SK},
            },
            ConsistentRead=consistent,
        )
        raw = response.get("Item")
        return warehouse_from_item(raw) if raw else None

    def list_all(self) -> list[Warehouse]:
        """Every warehouse, by id (there are tens, not thousands)."""
        query: dict[str, Any] = {
            "TableName": tables.table_name(),
            "IndexName": tables.GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": ALL_WAREHOUSES}},
        }
        warehouses: list[Warehouse] = []
        while True:
            response = tables.client().query(**query)
            warehouses.extend(warehouse_from_item(raw) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return warehouses
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def save(self, warehouse: Warehouse, *, previous: Warehouse | None) -> None:
        """Write ``warehouse`` if the stored one is still ``previous``; else ``StaleWrite``."""
        condition = _version_condition(previous.version if previous else None)
        try:
            tables.client().put_item(
                TableName=tables.table_name(), Item=_warehouse_item(warehouse), **condition
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(f"Warehouse {warehouse.id}") from None
            raise
