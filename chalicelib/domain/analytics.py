"""Analytics maths: what a paid order adds to a day's figures, customer value segments (RFM),
stock turnover and cover, and the report tables built from a day's aggregates.

Everything here is pure: the store keeps the aggregates (counters updated per event) and
hands them back as the types below; ``*_tables`` turn them into ``ReportTable`` rows whose
columns are the ones declared for each report. Money is integer minor units throughout;
ratios are floats rounded for people, and None where a ratio has no meaning (nothing sold).

Days and hours are the business time zone's (``BUSINESS_TIME_ZONE``, China time by default):
a payment at 23:50 UTC belongs to the next calendar day in Shanghai.

RFM segments. Each customer with at least one paid order has a *recency* (days from their
last paid order to the report day), a *frequency* (paid orders, ever) and a *monetary*
value (what their paid orders came to, less what was refunded on them). Frequency and
monetary value make the customer's *class* (``one``/``few``/``many`` orders x ``low``/
``high`` value); recency puts them in a band; band and class give the segment:

==================  ==========================================================================
segment             rule (R = recency days, F = paid orders, M = net value)
==================  ==========================================================================
champions           R <= 30 and (F >= 5 or M >= 2,000.00)
loyal               R <= 30 and 2 <= F <= 4 and M < 2,000.00; or 31 <= R <= 90 and F >= 2
promising           R <= 30 and F = 1 and M < 2,000.00
needs_attention     31 <= R <= 90 and F = 1
at_risk             R > 90 and (F >= 2 or M >= 2,000.00)
lost                R > 90 and F = 1 and M < 2,000.00
==================  ==========================================================================

(2,000.00 is ``HIGH_VALUE_MINOR`` in minor units of the report currency.)
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.orders import Order
from chalicelib.domain.reports import ReportTable
from chalicelib.domain.time_zones import CHINA_TIME

# --- time -----------------------------------------------------------------------------------

DEFAULT_TIME_ZONE = "Asia/Shanghai"
# Zones with a fixed offset, usable where the runtime has no time zone database.
_FIXED_ZONES: dict[str, tzinfo] = {
    "Asia/Shanghai": CHINA_TIME,
    "UTC": UTC,
}


class UnknownTimeZone(ValueError):
    pass


def business_zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA), e.g. ``Asia/Shanghai``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name in _FIXED_ZONES:
            return _FIXED_ZONES[name]
        raise UnknownTimeZone(f"BUSINESS_TIME_ZONE {name!r} is not a known time zone") from None


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def local_hour(moment: datetime, zone: tzinfo) -> int:
    return moment.astimezone(zone).hour


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The first moment of ``day`` and of the day after, in ``zone``."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def previous_day(now: datetime, zone: tzinfo) -> date:
    """The last complete business day at ``now`` (the nightly job's default)."""
    return local_day(now, zone) - timedelta(days=1)


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included (empty if last < first)."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- counters are spread over shards -------------------------------------------------------------

# A day's counters are written by every paid order of the day; spreading each over a few
# items keeps any one item far below a partition's write limit. Reading sums the shards.
COUNTER_SHARDS = 4


def shard_of(key: str, shards: int = COUNTER_SHARDS) -> int:
    """A stable shard for ``key`` (the same in every process, unlike ``hash``)."""
    return zlib.crc32(key.encode()) % shards


# --- ratios ---------------------------------------------------------------------------------------

RATIO_DIGITS = 4


def average_minor(total: int, count: int) -> int | None:
    """``total / count`` rounded half away from zero to whole minor units; None for no count."""
    if count <= 0:
        return None
    quotient, remainder = divmod(abs(total), count)
    if 2 * remainder >= count:
        quotient += 1
    return quotient if total >= 0 else -quotient


def ratio(part: float, whole: float, digits: int = RATIO_DIGITS) -> float | None:
    """``part / whole`` rounded for people; None when ``whole`` is not positive."""
    if whole <= 0:
        return None
    return round(part / whole, digits)


# --- what a paid order adds -----------------------------------------------------------------------

UNCATEGORISED = "uncategorised"


@dataclass(frozen=True, slots=True)
class SaleItem:
    """The part of a paid order shipped from one warehouse for one SKU.

    ``orders``, ``category_orders`` and ``warehouse_orders`` are 1 on exactly one item of
    the order per SKU, per category and per warehouse, so summing items counts orders once.
    ``shipping`` is the warehouse's share of the order's shipping fee (on its first item).
    """

    sku: str
    warehouse: str
    category: str
    units: int
    revenue: int
    shipping: int = 0
    orders: int = 0
    category_orders: int = 0
    warehouse_orders: int = 0


@dataclass(frozen=True, slots=True)
class Sale:
    """A paid order as the figures see it: recognised on the day and hour it was paid."""

    order_id: str
    customer_id: str
    payment_id: str
    method: str
    paid_at: datetime
    day: date
    hour: int
    currency: str
    total: int
    merchandise: int
    shipping: int
    units: int
    items: tuple[SaleItem, ...]

    @property
    def skus(self) -> list[str]:
        return sorted({item.sku for item in self.items})

    def units_by_sku(self) -> dict[str, int]:
        units: Counter[str] = Counter()
        for item in self.items:
            units[item.sku] += item.units
        return dict(units)

    def units_by_category(self) -> dict[str, int]:
        units: Counter[str] = Counter()
        for item in self.items:
            units[item.category] += item.units
        return dict(units)


def sale_of(
    order: Order,
    *,
    payment_id: str,
    method: str,
    paid_at: datetime,
    categories: Mapping[str, str],
    zone: tzinfo,
) -> Sale:
    """What ``order``, paid at ``paid_at``, adds to the figures."""
    shipments = order.shipments
    fee_shares = (
        order.shipping_fee.allocate([1] * len(shipments)) if shipments else []
    )  # equal shares per shipment, exact to the fen
    shipping_by_warehouse: dict[str, int] = {}
    for shipment, share in zip(shipments, fee_shares, strict=True):
        shipping_by_warehouse[shipment.warehouse] = (
            shipping_by_warehouse.get(shipment.warehouse, 0) + share.amount
        )
    items: list[SaleItem] = []
    seen_categories: set[str] = set()
    seen_warehouses: set[str] = set()
    for line in order.lines:
        category = categories.get(line.sku) or UNCATEGORISED
        for index, allocation in enumerate(line.allocations):
            first_of_category = category not in seen_categories
            first_of_warehouse = allocation.warehouse not in seen_warehouses
            seen_categories.add(category)
            seen_warehouses.add(allocation.warehouse)
            items.append(
                SaleItem(
                    sku=line.sku,
                    warehouse=allocation.warehouse,
                    category=category,
                    units=allocation.quantity,
                    revenue=line.unit_price.amount * allocation.quantity,
                    shipping=shipping_by_warehouse.get(allocation.warehouse, 0)
                    if first_of_warehouse
                    else 0,
                    orders=1 if index == 0 else 0,
                    category_orders=1 if first_of_category else 0,
                    warehouse_orders=1 if first_of_warehouse else 0,
                )
            )
    return Sale(
        order_id=order.order_id,
        customer_id=order.customer_id,
        payment_id=payment_id,
        method=method,
        paid_at=paid_at,
        day=local_day(paid_at, zone),
        hour=local_hour(paid_at, zone),
        currency=order.total.currency,
        total=order.total.amount,
        merchandise=order.subtotal.amount,
        shipping=order.shipping_fee.amount,
        units=sum(line.quantity for line in order.lines),
        items=tuple(items),
    )


# --- customers and RFM segments -------------------------------------------------------------------

RECENT_DAYS = 30
LAPSING_DAYS = 90
FEW_ORDERS = 2
MANY_ORDERS = 5
HIGH_VALUE_MINOR = 200_000

FREQUENCY_BANDS = ("one", "few", "many")
MONETARY_BANDS = ("low", "high")
CLASSES = tuple(f"{f}_{m}" for f in FREQUENCY_BANDS for m in MONETARY_BANDS)


class Segment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    PROMISING = "promising"
    NEEDS_ATTENTION = "needs_attention"
    AT_RISK = "at_risk"
    LOST = "lost"


SEGMENT_RULES: dict[Segment, str] = {
    Segment.CHAMPIONS: "paid within 30 days; 5+ orders or net value >= HIGH_VALUE_MINOR",
    Segment.LOYAL: "2-4 orders within 30 days below HIGH_VALUE_MINOR, or 2+ orders 31-90 days ago",
    Segment.PROMISING: "a first order within 30 days, below HIGH_VALUE_MINOR",
    Segment.NEEDS_ATTENTION: "one order, 31-90 days ago",
    Segment.AT_RISK: "nothing for 90+ days after 2+ orders or a high net value",
    Segment.LOST: "nothing for 90+ days after one low-value order",
}


def customer_class(orders: int, net: int) -> str:
    """The frequency x monetary class, e.g. ``few_low``."""
    frequency = "one" if orders < FEW_ORDERS else "few" if orders < MANY_ORDERS else "many"
    monetary = "high" if net >= HIGH_VALUE_MINOR else "low"
    return f"{frequency}_{monetary}"


def segment_of(recency_days: int, klass: str) -> Segment:
    frequency, _, monetary = klass.partition("_")
    high = monetary == "high"
    if recency_days <= RECENT_DAYS:
        if frequency == "many" or high:
            return Segment.CHAMPIONS
        return Segment.LOYAL if frequency == "few" else Segment.PROMISING
    if recency_days <= LAPSING_DAYS:
        return Segment.NEEDS_ATTENTION if frequency == "one" else Segment.LOYAL
    if frequency == "one" and not high:
        return Segment.LOST
    return Segment.AT_RISK


def favourite(units_by_category: Mapping[str, int]) -> str | None:
    """The category with the most units (ties: the first by name); None if nothing bought."""
    best = [(-units, category) for category, units in units_by_category.items() if units > 0]
    return min(best)[1] if best else None


@dataclass(frozen=True, slots=True)
class Membership:
    """Where a customer counts in the segment counters: their last paid day and class, with
    what they add to that class's sums."""

    last_paid_day: date
    klass: str
    favourite: str | None
    orders: int
    net: int


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    """A customer's lifetime aggregates. ``version`` 0 means not stored yet."""

    customer_id: str
    orders: int = 0
    spent: int = 0
    refunded: int = 0
    first_paid_day: date | None = None
    last_paid_day: date | None = None
    last_paid_at: datetime | None = None
    categories: Mapping[str, int] = field(default_factory=dict)
    version: int = 0

    @property
    def net(self) -> int:
        return self.spent - self.refunded

    @property
    def klass(self) -> str:
        return customer_class(self.orders, self.net)

    @property
    def favourite_category(self) -> str | None:
        return favourite(self.categories)

    @property
    def membership(self) -> Membership | None:
        if self.orders <= 0 or self.last_paid_day is None:
            return None  # only customers who have paid count in segments
        return Membership(
            self.last_paid_day, self.klass, self.favourite_category, self.orders, self.net
        )

    def with_sale(self, sale: Sale) -> CustomerTotals:
        categories = Counter(self.categories)
        categories.update(sale.units_by_category())
        paid_at = self.last_paid_at
        return replace(
            self,
            orders=self.orders + 1,
            spent=self.spent + sale.total,
            first_paid_day=min(filter(None, (self.first_paid_day, sale.day))),
            last_paid_day=max(filter(None, (self.last_paid_day, sale.day))),
            last_paid_at=sale.paid_at if paid_at is None else max(paid_at, sale.paid_at),
            categories=dict(categories),
            version=self.version + 1,
        )

    def with_refund(self, amount: int) -> CustomerTotals:
        return replace(self, refunded=self.refunded + amount, version=self.version + 1)


@dataclass(slots=True)
class ClassTotals:
    """Sums over the customers of one class (in one recency cohort, or overall)."""

    customers: int = 0
    orders: int = 0
    net: int = 0
    day_ordinals: int = 0  # sum of last paid days as ordinals (overall totals only)
    favourites: Counter[str] = field(default_factory=Counter)

    def add(self, other: ClassTotals, sign: int = 1) -> None:
        self.customers += sign * other.customers
        self.orders += sign * other.orders
        self.net += sign * other.net
        self.day_ordinals += sign * other.day_ordinals
        for category, count in other.favourites.items():
            self.favourites[category] += sign * count


@dataclass(slots=True)
class SegmentFigures:
    segment: Segment
    customers: int = 0
    orders: int = 0
    net: int = 0
    recency_days: int = 0  # summed over the segment's customers
    favourites: Counter[str] = field(default_factory=Counter)


def segment_figures(
    as_of: date,
    overall: Mapping[str, ClassTotals],
    cohorts: Mapping[date, Mapping[str, ClassTotals]],
) -> dict[Segment, SegmentFigures]:
    """Every segment's figures on ``as_of``.

    ``overall`` sums every customer by class; ``cohorts`` sums, by last paid day, those who
    last paid on or after ``as_of - LAPSING_DAYS`` (days after ``as_of`` count as recency 0).
    Everyone else has lapsed: their sums are ``overall`` less the cohorts.
    """
    figures = {segment: SegmentFigures(segment) for segment in Segment}
    remaining = {klass: ClassTotals() for klass in CLASSES}
    for klass, totals in overall.items():
        remaining.setdefault(klass, ClassTotals()).add(totals)
    for day, by_class in cohorts.items():
        recency = max(0, (as_of - day).days)
        for klass, totals in by_class.items():
            _count_in(figures[segment_of(recency, klass)], totals, recency * totals.customers)
            lapsed_part = ClassTotals(
                totals.customers,
                totals.orders,
                totals.net,
                day.toordinal() * totals.customers,
                Counter(totals.favourites),
            )
            remaining.setdefault(klass, ClassTotals()).add(lapsed_part, sign=-1)
    for klass, totals in remaining.items():
        if totals.customers <= 0:
            continue
        recency_sum = as_of.toordinal() * totals.customers - totals.day_ordinals
        _count_in(figures[segment_of(LAPSING_DAYS + 1, klass)], totals, recency_sum)
    return figures


def _count_in(figures: SegmentFigures, totals: ClassTotals, recency_sum: int) -> None:
    figures.customers += totals.customers
    figures.orders += totals.orders
    figures.net += totals.net
    figures.recency_days += recency_sum
    for category, count in totals.favourites.items():
        if count > 0:
            figures.favourites[category] += count


# --- inventory ------------------------------------------------------------------------------------

TURNOVER_WINDOW_DAYS = 30
SLOW_MOVER_DAYS = 30


def average_on_hand(at_start: int, at_end: int) -> float:
    """The classic estimate of average inventory over a period: the mean of its ends."""
    return (at_start + at_end) / 2


def turnover(units_sold: int, average: float) -> float | None:
    """How many times the average stock sold over the period; None with no stock to turn."""
    return ratio(units_sold, average)


def days_of_cover(available: int, units_sold: int, window_days: int) -> float | None:
    """How many days ``available`` lasts at the period's sales rate; None if nothing sold."""
    if units_sold <= 0 or window_days <= 0:
        return None
    return round(max(0, available) * window_days / units_sold, 1)


def is_slow_mover(on_hand: int, last_sale_day: date | None, as_of: date) -> bool:
    """In stock, and nothing sold in the last ``SLOW_MOVER_DAYS`` days (or ever)."""
    if on_hand <= 0:
        return False
    return last_sale_day is None or (as_of - last_sale_day).days >= SLOW_MOVER_DAYS


@dataclass(frozen=True, slots=True)
class StockoutEpisode:
    sku: str
    warehouse: str
    out_at: datetime
    restocked_at: datetime | None  # None: still out when the day ended

    def hours_out(self, day_end: datetime) -> float:
        until = self.restocked_at or day_end
        return round(max(0.0, (until - self.out_at).total_seconds()) / 3600, 2)


def stockout_episodes(
    sku: str, warehouse: str, outs: Iterable[datetime], restocks: Iterable[datetime]
) -> list[StockoutEpisode]:
    """Pair each moment a level ran out with the first restock after it (and before it ran
    out again)."""
    events = sorted([(at, 0) for at in outs] + [(at, 1) for at in restocks])
    episodes: list[StockoutEpisode] = []
    current: datetime | None = None
    for at, kind in events:
        if kind == 0 and current is None:
            current = at
        elif kind == 1 and current is not None:
            episodes.append(StockoutEpisode(sku, warehouse, current, at))
            current = None
    if current is not None:
        episodes.append(StockoutEpisode(sku, warehouse, current, None))
    return episodes


# --- a day's aggregates, as the store hands them back ---------------------------------------------


@dataclass(slots=True)
class SalesCounters:
    orders: int = 0
    units: int = 0
    gross: int = 0
    merchandise: int = 0
    shipping: int = 0
    refunds: int = 0
    refund_count: int = 0
    # Refunds of payments that never paid an order (it had expired, or was paid twice):
    # money given back that was never revenue.
    other_refunds: int = 0
    other_refund_count: int = 0
    placed: int = 0
    cancelled: int = 0
    expired: int = 0
    low_stock_alerts_opened: int = 0


@dataclass(slots=True)
class MethodCounters:
    payments: int = 0
    captured: int = 0
    refunds: int = 0
    refunded: int = 0


@dataclass(slots=True)
class HourCounters:
    orders: int = 0
    units: int = 0
    revenue: int = 0


@dataclass(slots=True)
class ItemCounters:
    sku: str
    warehouse: str
    category: str = UNCATEGORISED
    units: int = 0
    revenue: int = 0
    shipping: int = 0
    orders: int = 0
    category_orders: int = 0
    warehouse_orders: int = 0


@dataclass(slots=True)
class CustomerDay:
    customer_id: str
    orders: int = 0
    revenue: int = 0
    refunds: int = 0
    first_paid_day: date | None = None
    last_order_at: datetime | None = None

    def is_new_on(self, day: date) -> bool:
        return self.first_paid_day == day


@dataclass(slots=True)
class LevelChanges:
    sku: str
    warehouse: str
    outs: set[datetime] = field(default_factory=set)
    restocks: set[datetime] = field(default_factory=set)


@dataclass(slots=True)
class DayActivity:
    day: date
    sales: SalesCounters = field(default_factory=SalesCounters)
    methods: dict[str, MethodCounters] = field(default_factory=dict)
    hours: dict[int, HourCounters] = field(default_factory=dict)
    items: dict[tuple[str, str], ItemCounters] = field(default_factory=dict)
    customers: dict[str, CustomerDay] = field(default_factory=dict)
    levels: dict[tuple[str, str], LevelChanges] = field(default_factory=dict)

    @property
    def buyers(self) -> list[CustomerDay]:
        return [c for c in self.customers.values() if c.orders > 0]


@dataclass(frozen=True, slots=True)
class ProductInfo:
    sku: str
    name_zh: str | None = None
    name_en: str | None = None
    category: str | None = None
    unit_cost: int | None = None  # minor units of the report currency; None = unknown


@dataclass(frozen=True, slots=True)
class LevelFigures:
    warehouse: str
    on_hand: int
    reserved: int
    low_stock_threshold: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class SkuStock:
    """One SKU in a stock snapshot: its levels and how many units it had sold by then."""

    sku: str
    levels: tuple[LevelFigures, ...]
    units_sold_to_date: int = 0
    last_sale_day: date | None = None

    @property
    def on_hand(self) -> int:
        return sum(level.on_hand for level in self.levels)

    @property
    def available(self) -> int:
        return sum(level.available for level in self.levels)


@dataclass(frozen=True, slots=True)
class StockSnapshot:
    day: date
    taken_at: datetime
    skus: Mapping[str, SkuStock]


@dataclass(frozen=True, slots=True)
class SkuSales:
    """A SKU's lifetime sales aggregates."""

    sku: str
    units_sold: int = 0
    last_sale_day: date | None = None


# --- report tables --------------------------------------------------------------------------------

TOP_PRODUCTS = 10
TOP_CUSTOMERS = 20
FAVOURITE_CATEGORIES = 3


def _table(
    area: str, name: str, columns: Sequence[str], rows: list[dict[str, object]]
) -> ReportTable:
    return ReportTable(area, name, tuple(columns), tuple(rows))


def _names(products: Mapping[str, ProductInfo], sku: str) -> dict[str, object]:
    product = products.get(sku)
    return {
        "name_zh": product.name_zh if product else None,
        "name_en": product.name_en if product else None,
    }


def sales_tables(
    activity: DayActivity,
    *,
    currency: str,
    products: Mapping[str, ProductInfo],
    cities: Mapping[str, str],
) -> list[ReportTable]:
    sales = activity.sales
    buyers = activity.buyers
    summary = {
        "currency": currency,
        "orders": sales.orders,
        "cancelled_orders": sales.cancelled,
        "units": sales.units,
        "customers": len(buyers),
        "new_customers": sum(1 for c in buyers if c.is_new_on(activity.day)),
        "gross_revenue_minor": sales.gross,
        "discounts_minor": 0,  # orders carry no discounts
        "shipping_minor": sales.shipping,
        "refunds_minor": sales.refunds,
        "net_revenue_minor": sales.gross - sales.refunds,
        "average_order_value_minor": average_minor(sales.gross, sales.orders),
    }

    by_sku: dict[str, ItemCounters] = {}
    by_category: dict[str, ItemCounters] = {}
    by_warehouse: dict[str, ItemCounters] = {}
    for item in activity.items.values():
        _sum_into(by_sku.setdefault(item.sku, ItemCounters(item.sku, "")), item)
        by_sku[item.sku].category = item.category
        _sum_into(by_category.setdefault(item.category, ItemCounters("", "")), item)
        _sum_into(by_warehouse.setdefault(item.warehouse, ItemCounters("", item.warehouse)), item)
    merchandise = sum(c.revenue for c in by_sku.values())
    ranked = sorted(by_sku.values(), key=lambda c: (-c.revenue, -c.units, c.sku))
    product_rows = [
        {
            "sku": c.sku,
            **_names(products, c.sku),
            "category": c.category,
            "currency": currency,
            "orders": c.orders,
            "units": c.units,
            "revenue_minor": c.revenue,
            "share_of_revenue": ratio(c.revenue, merchandise),
        }
        for c in ranked
    ]
    category_rows = [
        {
            "category": category,
            "currency": currency,
            "orders": c.category_orders,
            "units": c.units,
            "revenue_minor": c.revenue,
            "share_of_revenue": ratio(c.revenue, merchandise),
        }
        for category, c in sorted(by_category.items(), key=lambda kv: (-kv[1].revenue, kv[0]))
    ]
    warehouse_rows = [
        {
            "warehouse_id": warehouse,
            "city": cities.get(warehouse),
            "currency": currency,
            "orders": c.warehouse_orders,
            "units": c.units,
            # Merchandise shipped from here plus its shipments' fees: rows add up to gross.
            "revenue_minor": c.revenue + c.shipping,
            "share_of_revenue": ratio(c.revenue + c.shipping, sales.gross),
        }
        for warehouse, c in sorted(by_warehouse.items())
    ]
    method_rows = [
        {
            "payment_method": method,
            "currency": currency,
            "payments": c.payments,
            "captured_minor": c.captured,
            "refunds": c.refunds,
            "refunded_minor": c.refunded,
            "share_of_revenue": ratio(c.captured, sales.gross),
        }
        for method, c in sorted(activity.methods.items())
    ]
    hour_rows = [
        {
            "hour": hour,
            "currency": currency,
            "orders": activity.hours.get(hour, HourCounters()).orders,
            "units": activity.hours.get(hour, HourCounters()).units,
            "revenue_minor": activity.hours.get(hour, HourCounters()).revenue,
        }
        for hour in range(24)
    ]
    top_rows = [
        {
            "rank": rank,
            "sku": c.sku,
            **_names(products, c.sku),
            "currency": currency,
            "units": c.units,
            "revenue_minor": c.revenue,
        }
        for rank, c in enumerate(ranked[:TOP_PRODUCTS], start=1)
    ]
    return [
        _table("sales", "daily_summary", SALES_COLUMNS["daily_summary"], [summary]),
        _table("sales", "by_product", SALES_COLUMNS["by_product"], product_rows),
        _table("sales", "by_category", SALES_COLUMNS["by_category"], category_rows),
        _table("sales", "by_warehouse", SALES_COLUMNS["by_warehouse"], warehouse_rows),
        _table("sales", "by_payment_method", SALES_COLUMNS["by_payment_method"], method_rows),
        _table("sales", "by_hour", SALES_COLUMNS["by_hour"], hour_rows),
        _table("sales", "top_products", SALES_COLUMNS["top_products"], top_rows),
    ]


def _sum_into(total: ItemCounters, item: ItemCounters) -> None:
    total.units += item.units
    total.revenue += item.revenue
    total.shipping += item.shipping
    total.orders += item.orders
    total.category_orders += item.category_orders
    total.warehouse_orders += item.warehouse_orders


@dataclass(frozen=True, slots=True)
class InventoryFigures:
    """What the inventory tables say, with the totals the headline repeats."""

    tables: list[ReportTable]
    units_on_hand: int
    value_at_cost: int
    skus_without_cost: int
    window_days: int
    stockouts: int
    slow_movers: int


def inventory_tables(
    activity: DayActivity,
    *,
    currency: str,
    snapshot: StockSnapshot,
    baseline: StockSnapshot | None,
    products: Mapping[str, ProductInfo],
    zone: tzinfo,
) -> InventoryFigures:
    """Stock at the close of ``activity.day`` (``snapshot``), its value at cost, turnover and
    cover over the window since ``baseline`` (the earliest snapshot of the last
    ``TURNOVER_WINDOW_DAYS`` days; without one, the day alone), slow movers and the day's
    stock-outs."""
    day = activity.day
    window_days = (day - baseline.day).days if baseline else 1
    day_units: Counter[str] = Counter()
    for item in activity.items.values():
        day_units[item.sku] += item.units

    stock_rows: list[dict[str, object]] = []
    value_at_cost = 0
    without_cost: set[str] = set()
    for sku in sorted(snapshot.skus):
        unit_cost = products[sku].unit_cost if sku in products else None
        for level in sorted(snapshot.skus[sku].levels, key=lambda lv: lv.warehouse):
            value = unit_cost * level.on_hand if unit_cost is not None else None
            if value is None and level.on_hand > 0:
                without_cost.add(sku)
            value_at_cost += value or 0
            stock_rows.append(
                {
                    "warehouse_id": level.warehouse,
                    "sku": sku,
                    **_names(products, sku),
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                    "available": level.available,
                    "low_stock_threshold": level.low_stock_threshold,
                    "below_threshold": level.available <= level.low_stock_threshold,
                    "currency": currency,
                    "unit_cost_minor": unit_cost,
                    "value_at_cost_minor": value,
                    "cost_known": unit_cost is not None,
                }
            )
    stock_rows.sort(key=lambda row: (str(row["warehouse_id"]), str(row["sku"])))

    turnover_rows: list[dict[str, object]] = []
    slow_rows: list[dict[str, object]] = []
    for sku in sorted(snapshot.skus):
        now = snapshot.skus[sku]
        before = baseline.skus.get(sku) if baseline else None
        if baseline is None:
            sold = day_units.get(sku, 0)
            average = float(now.on_hand)
        else:
            start_sold = before.units_sold_to_date if before else 0
            sold = max(0, now.units_sold_to_date - start_sold)
            average = average_on_hand(before.on_hand if before else 0, now.on_hand)
        cover = days_of_cover(now.available, sold, window_days)
        turnover_rows.append(
            {
                "sku": sku,
                **_names(products, sku),
                "units_sold": sold,
                "average_daily_units": round(sold / window_days, 2),
                "available": now.available,
                "turnover": turnover(sold, average),
                "days_of_cover": cover,
            }
        )
        last_sale = now.last_sale_day
        if is_slow_mover(now.on_hand, last_sale, day):
            slow_rows.append(
                {
                    "sku": sku,
                    **_names(products, sku),
                    "available": now.available,
                    "units_sold_30d": 0,
                    "days_since_last_sale": (day - last_sale).days if last_sale else None,
                    "days_of_cover": None,
                }
            )

    _, day_end = day_bounds(day, zone)
    stockout_rows: list[dict[str, object]] = []
    for changes in sorted(activity.levels.values(), key=lambda c: (c.sku, c.warehouse)):
        for episode in stockout_episodes(
            changes.sku, changes.warehouse, changes.outs, changes.restocks
        ):
            stockout_rows.append(
                {
                    "sku": episode.sku,
                    **_names(products, episode.sku),
                    "warehouse_id": episode.warehouse,
                    "stocked_out_at": _local_iso(episode.out_at, zone),
                    "restocked_at": _local_iso(episode.restocked_at, zone),
                    "hours_out_of_stock": episode.hours_out(day_end),
                }
            )
    tables = [
        _table(
            "inventory", "stock_by_warehouse", INVENTORY_COLUMNS["stock_by_warehouse"], stock_rows
        ),
        _table("inventory", "sku_turnover", INVENTORY_COLUMNS["sku_turnover"], turnover_rows),
        _table("inventory", "slow_movers", INVENTORY_COLUMNS["slow_movers"], slow_rows),
        _table("inventory", "stockouts", INVENTORY_COLUMNS["stockouts"], stockout_rows),
    ]
    return InventoryFigures(
        tables=tables,
        units_on_hand=sum(s.on_hand for s in snapshot.skus.values()),
        value_at_cost=value_at_cost,
        skus_without_cost=len(without_cost),
        window_days=window_days,
        stockouts=len(stockout_rows),
        slow_movers=len(slow_rows),
    )


def _local_iso(moment: datetime | None, zone: tzinfo) -> str | None:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None


def customer_tables(
    activity: DayActivity,
    *,
    currency: str,
    segments: Mapping[Segment, SegmentFigures],
    overall: Mapping[str, ClassTotals],
    zone: tzinfo,
) -> list[ReportTable]:
    buyers = activity.buyers
    new = sum(1 for c in buyers if c.is_new_on(activity.day))
    orders = sum(c.orders for c in buyers)
    revenue = sum(c.revenue for c in buyers)
    everyone = sum(s.customers for s in segments.values())
    summary = {
        "currency": currency,
        "customers": len(buyers),
        "new_customers": new,
        "returning_customers": len(buyers) - new,
        "orders_per_customer": ratio(orders, len(buyers), 2),
        "revenue_per_customer_minor": average_minor(revenue, len(buyers)),
        "repeat_rate": repeat_rate(overall),
    }
    segment_rows = [
        {
            "segment": figures.segment.value,
            "customers": figures.customers,
            "share_of_customers": ratio(figures.customers, everyone),
            "currency": currency,
            "revenue_minor": figures.net,
            "average_recency_days": ratio(figures.recency_days, figures.customers, 1),
            "average_frequency": ratio(figures.orders, figures.customers, 2),
            "average_monetary_minor": average_minor(figures.net, figures.customers),
            "favourite_categories": _favourites(figures.favourites),
        }
        for figures in (segments.get(s, SegmentFigures(s)) for s in Segment)
    ]
    ranked = sorted(buyers, key=lambda c: (-c.revenue, -c.orders, c.customer_id))
    top_rows = [
        {
            "rank": rank,
            "customer_id": c.customer_id,
            "orders": c.orders,
            "currency": currency,
            "revenue_minor": c.revenue,
            "last_order_at": _local_iso(c.last_order_at, zone),
        }
        for rank, c in enumerate(ranked[:TOP_CUSTOMERS], start=1)
    ]
    return [
        _table("customers", "summary", CUSTOMER_COLUMNS["summary"], [summary]),
        _table("customers", "rfm_segments", CUSTOMER_COLUMNS["rfm_segments"], segment_rows),
        _table("customers", "top_customers", CUSTOMER_COLUMNS["top_customers"], top_rows),
    ]


def repeat_rate(overall: Mapping[str, ClassTotals]) -> float | None:
    """Share of every customer who has ever paid that has paid for two or more orders."""
    everyone = sum(totals.customers for totals in overall.values())
    repeaters = sum(
        totals.customers for klass, totals in overall.items() if not klass.startswith("one_")
    )
    return ratio(repeaters, everyone)


def _favourites(favourites: Counter[str]) -> str | None:
    """``home=12;tea=5``: the categories most of the segment's customers buy most of."""
    ranked = sorted(
        ((category, count) for category, count in favourites.items() if count > 0),
        key=lambda pair: (-pair[1], pair[0]),
    )[:FAVOURITE_CATEGORIES]
    return ";".join(f"{category}={count}" for category, count in ranked) or None


SALES_COLUMNS: dict[str, tuple[str, ...]] = {
    "daily_summary": (
        "currency",
        "orders",
        "cancelled_orders",
        "units",
        "customers",
        "new_customers",
        "gross_revenue_minor",
        "discounts_minor",
        "shipping_minor",
        "refunds_minor",
        "net_revenue_minor",
        "average_order_value_minor",
    ),
    "by_product": (
        "sku",
        "name_zh",
        "name_en",
        "category",
        "currency",
        "orders",
        "units",
        "revenue_minor",
        "share_of_revenue",
    ),
    "by_category": ("category", "currency", "orders", "units", "revenue_minor", "share_of_revenue"),
    "by_warehouse": (
        "warehouse_id",
        "city",
        "currency",
        "orders",
        "units",
        "revenue_minor",
        "share_of_revenue",
    ),
    "by_payment_method": (
        "payment_method",
        "currency",
        "payments",
        "captured_minor",
        "refunds",
        "refunded_minor",
        "share_of_revenue",
    ),
    "by_hour": ("hour", "currency", "orders", "units", "revenue_minor"),
    "top_products": ("rank", "sku", "name_zh", "name_en", "currency", "units", "revenue_minor"),
}
INVENTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "stock_by_warehouse": (
        "warehouse_id",
        "sku",
        "name_zh",
        "name_en",
        "on_hand",
        "reserved",
        "available",
        "low_stock_threshold",
        "below_threshold",
        "currency",
        "unit_cost_minor",
        "value_at_cost_minor",
        "cost_known",
    ),
    "sku_turnover": (
        "sku",
        "name_zh",
        "name_en",
        "units_sold",
        "average_daily_units",
        "available",
        "turnover",
        "days_of_cover",
    ),
    "slow_movers": (
        "sku",
        "name_zh",
        "name_en",
        "available",
        "units_sold_30d",
        "days_since_last_sale",
        "days_of_cover",
    ),
    "stockouts": (
        "sku",
        "name_zh",
        "name_en",
        "warehouse_id",
        "stocked_out_at",
        "restocked_at",
        "hours_out_of_stock",
    ),
}
CUSTOMER_COLUMNS: dict[str, tuple[str, ...]] = {
    "summary": (
        "currency",
        "customers",
        "new_customers",
        "returning_customers",
        "orders_per_customer",
        "revenue_per_customer_minor",
        "repeat_rate",
    ),
    "rfm_segments": (
        "segment",
        "customers",
        "share_of_customers",
        "currency",
        "revenue_minor",
        "average_recency_days",
        "average_frequency",
        "average_monetary_minor",
        "favourite_categories",
    ),
    "top_customers": (
        "rank",
        "customer_id",
        "orders",
        "currency",
        "revenue_minor",
        "last_order_at",
    ),
}
