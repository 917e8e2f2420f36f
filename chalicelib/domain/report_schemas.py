"""The declared columns of every nightly report: one list that exports and Athena share.

``REPORT_SCHEMAS`` maps a report's name (``area/table``) to its columns in order, each a
``(column, type)`` pair in Athena's type names. The export checks each ``ReportTable``
against it before writing anything, and the Glue tables that finance queries in Athena are
generated from it (``infra/report_catalog.py``), so a column renamed in analytics fails the
export loudly instead of shifting a CSV under a stale table definition.

Conventions: lower-case snake_case names (Athena folds case); money is ``bigint`` minor
units in a column ending ``_minor`` with a ``currency`` column beside it; ratios are
``double``; dates and times are ISO 8601 ``string``s; ``dt`` is the partition, never a
column. Any value may be None (an empty CSV field, a JSON null).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.reports import AREAS, ReportTable

STRING = "string"
BIGINT = "bigint"
DOUBLE = "double"
BOOLEAN = "boolean"
TYPES = (STRING, BIGINT, DOUBLE, BOOLEAN)

PARTITION_COLUMN = "dt"
COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

Schema = tuple[tuple[str, str], ...]

_NAMES = (("name_zh", STRING), ("name_en", STRING))

REPORT_SCHEMAS: dict[str, Schema] = {
    "sales/daily_summary": (
        ("currency", STRING),
        ("orders", BIGINT),
        ("cancelled_orders", BIGINT),
        ("units", BIGINT),
        ("customers", BIGINT),
        ("new_customers", BIGINT),
        ("gross_revenue_minor", BIGINT),
        ("discounts_minor", BIGINT),
        ("shipping_minor", BIGINT),
        ("refunds_minor", BIGINT),
        ("net_revenue_minor", BIGINT),
        ("average_order_value_minor", BIGINT),
    ),
    "sales/by_product": (
        ("sku", STRING),
        *_NAMES,
        ("category", STRING),
        ("currency", STRING),
        ("orders", BIGINT),
        ("units", BIGINT),
        ("revenue_minor", BIGINT),
        ("share_of_revenue", DOUBLE),
    ),
    "sales/by_category": (
        ("category", STRING),
        ("currency", STRING),
        ("orders", BIGINT),
        ("units", BIGINT),
        ("revenue_minor", BIGINT),
        ("share_of_revenue", DOUBLE),
    ),
    "sales/by_warehouse": (
        ("warehouse_id", STRING),
        ("city", STRING),
        ("currency", STRING),
        ("orders", BIGINT),
        ("units", BIGINT),
        ("revenue_minor", BIGINT),
        ("share_of_revenue", DOUBLE),
    ),
    "sales/by_payment_method": (
        ("payment_method", STRING),
        ("currency", STRING),
        ("payments", BIGINT),
        ("captured_minor", BIGINT),
        ("refunds", BIGINT),
        ("refunded_minor", BIGINT),
        ("share_of_revenue", DOUBLE),
    ),
    "sales/by_hour": (
        ("hour", BIGINT),  # 0-23, China time
        ("currency", STRING),
        ("orders", BIGINT),
        ("units", BIGINT),
        ("revenue_minor", BIGINT),
    ),
    "sales/top_products": (
        ("rank", BIGINT),
        ("sku", STRING),
        *_NAMES,
        ("currency", STRING),
        ("units", BIGINT),
        ("revenue_minor", BIGINT),
    ),
    "inventory/stock_by_warehouse": (
        ("warehouse_id", STRING),
        ("sku", STRING),
        *_NAMES,
        ("on_hand", BIGINT),
        ("reserved", BIGINT),
        ("available", BIGINT),
        ("low_stock_threshold", BIGINT),
        ("below_threshold", BOOLEAN),
        ("currency", STRING),
        ("unit_cost_minor", BIGINT),
        ("value_at_cost_minor", BIGINT),
        ("cost_known", BOOLEAN),
    ),
    "inventory/sku_turnover": (
        ("sku", STRING),
        *_NAMES,
        ("units_sold", BIGINT),
        ("average_daily_units", DOUBLE),
        ("available", BIGINT),
        ("turnover", DOUBLE),
        ("days_of_cover", DOUBLE),  # None when nothing sold: no finite cover
    ),
    "inventory/slow_movers": (
        ("sku", STRING),
        *_NAMES,
        ("available", BIGINT),
        ("units_sold_30d", BIGINT),
        ("days_since_last_sale", BIGINT),
        ("days_of_cover", DOUBLE),
    ),
    "inventory/stockouts": (
        ("sku", STRING),
        *_NAMES,
        ("warehouse_id", STRING),
        ("stocked_out_at", STRING),
        ("restocked_at", STRING),
        ("hours_out_of_stock", DOUBLE),
    ),
    "customers/summary": (
        ("currency", STRING),
        ("customers", BIGINT),
        ("new_customers", BIGINT),
        ("returning_customers", BIGINT),
        ("orders_per_customer", DOUBLE),
        ("revenue_per_customer_minor", BIGINT),
        ("repeat_rate", DOUBLE),
    ),
    "customers/rfm_segments": (
        ("segment", STRING),
        ("customers", BIGINT),
        ("share_of_customers", DOUBLE),
        ("currency", STRING),
        ("revenue_minor", BIGINT),
        ("average_recency_days", DOUBLE),
        ("average_frequency", DOUBLE),
        ("average_monetary_minor", BIGINT),
        ("favourite_categories", STRING),
    ),
    "customers/top_customers": (
        ("rank", BIGINT),
        ("customer_id", STRING),
        ("orders", BIGINT),
        ("currency", STRING),
        ("revenue_minor", BIGINT),
        ("last_order_at", STRING),
    ),
    "feedback/ratings_by_product": (
        ("sku", STRING),
        *_NAMES,
        ("reviews", BIGINT),  # published reviews at the end of the day
        ("average", DOUBLE),  # one decimal; None without reviews
        ("low_rating_share", DOUBLE),  # share of 1-2 star reviews
        ("reviews_30d_ago", BIGINT),
        ("average_30d_ago", DOUBLE),
        ("average_change_30d", DOUBLE),
    ),
    "feedback/complaint_terms": (
        ("rank", BIGINT),
        ("term", STRING),  # a search term: a CJK bigram or a whole word
        ("reviews", BIGINT),  # the day's new 1-2 star reviews using it
        ("example_review_ids", STRING),  # up to three, space-separated
    ),
}


class ReportSchemaError(ValueError):
    """A report table that does not match its declared schema; nothing was exported."""


def split_name(name: str) -> tuple[str, str]:
    """``"sales/by_hour"`` -> ``("sales", "by_hour")``."""
    area, _, table = name.partition("/")
    return area, table


def schema_for(name: str) -> Schema:
    try:
        return REPORT_SCHEMAS[name]
    except KeyError:
        raise ReportSchemaError(
            f"{name}: no declared schema (chalicelib/domain/report_schemas.py)"
        ) from None


def check_table(table: ReportTable) -> None:
    """Raise ``ReportSchemaError`` unless ``table``'s columns, in order, and every value's
    type are those declared for it."""
    schema = schema_for(table.name)
    declared = tuple(column for column, _type in schema)
    if table.columns != declared:
        missing = [c for c in declared if c not in table.columns]
        extra = [c for c in table.columns if c not in declared]
        raise ReportSchemaError(
            f"{table.name}: columns {list(table.columns)} are not the declared {list(declared)}"
            f" (missing {missing}, unexpected {extra})"
        )
    for index, row in enumerate(table.rows):
        for column, kind in schema:
            value = row[column]
            if not value_fits(value, kind):
                raise ReportSchemaError(
                    f"{table.name} row {index}: {column}={value!r} is not a {kind}"
                )


def value_fits(value: Any, kind: str) -> bool:
    """Whether ``value`` can be written as a ``kind`` column (None always can)."""
    if value is None:
        return True
    if kind == STRING:
        return isinstance(value, str)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # True is an int to Python, but not a number to anyone reading a report
    if kind == BIGINT:
        return isinstance(value, int)
    if kind == DOUBLE:
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    return False


def problems_with_schemas(schemas: Mapping[str, Schema] = REPORT_SCHEMAS) -> list[str]:
    """What is wrong with the declarations themselves (an empty list when nothing is)."""
    found: list[str] = []
    for name, schema in schemas.items():
        area, table = split_name(name)
        if area not in AREAS or not COLUMN_NAME.fullmatch(table):
            found.append(f"{name}: not <area>/<table> with a known area and a snake_case table")
        columns = [column for column, _type in schema]
        if len(set(columns)) != len(columns):
            found.append(f"{name}: a column is declared twice")
        if not schema:
            found.append(f"{name}: no columns")
        for column, kind in schema:
            if not COLUMN_NAME.fullmatch(column) or column == PARTITION_COLUMN:
                found.append(f"{name}.{column}: not a usable column name")
            if kind not in TYPES:
                found.append(f"{name}.{column}: unknown type {kind!r}")
            if column.endswith("_minor") and kind != BIGINT:
                found.append(f"{name}.{column}: money must be bigint minor units")
        if any(c.endswith("_minor") for c in columns) and "currency" not in columns:
            found.append(f"{name}: money columns without a currency column")
    return found
