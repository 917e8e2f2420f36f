"""Analytics: figures kept up to date from events, and the nightly report tables.

Events arrive on the analytics queue (``workers/analytics.py``) and each one adds to the
aggregates of the business day it happened on (``occurred_at`` in ``BUSINESS_TIME_ZONE``):

- ``order.paid``: revenue is recognised when paid: the day's sales by product, category,
  warehouse, payment method and hour; the customer's day and lifetime totals (and their
  place in the segment counters); each SKU's units sold and last sale day;
- ``payment.refunded``: refunds on the day they were made (refunds of payments that never
  paid an order are kept apart: they were never revenue);
- ``order.placed`` / ``order.cancelled`` / ``order.expired``: the day's order counts;
- ``stock.level_created`` / ``stock.out`` / ``stock.restocked``: derived from stock levels'
  own changes in the table's stream (``store.analytics.level_events``): the list of levels
  and the day's stock-outs.

Each event is counted in one transaction with its claim, so a repeat delivery changes
nothing. The nightly job (``build_daily_reports``) then reads only what the day touched:
its counters, its active customers, the segment counters, and the current stock levels
(kept as that day's snapshot), never the history before it.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from chalicelib.domain import feedback
from chalicelib.domain.analytics import (
    LAPSING_DAYS,
    TURNOVER_WINDOW_DAYS,
    CustomerTotals,
    LevelFigures,
    ProductInfo,
    SkuStock,
    StockSnapshot,
    average_minor,
    business_zone,
    customer_tables,
    day_bounds,
    days_between,
    inventory_tables,
    local_day,
    previous_day,
    sale_of,
    sales_tables,
    segment_figures,
    shard_of,
)
from chalicelib.domain.catalogue import Product
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money
from chalicelib.domain.paging import DASHBOARD_DAYS
from chalicelib.domain.reports import DailyReports, ReportTable
from chalicelib.domain.reviews import LOW_RATINGS
from chalicelib.observability import logger
from chalicelib.services import after_sales_reports, catalogue, support
from chalicelib.services.orders import CURRENCY
from chalicelib.settings import get_settings
from chalicelib.store import analytics as store
from chalicelib.store import feedback as feedback_store
from chalicelib.store import inventory as inventory_store
from chalicelib.store import outbox
from chalicelib.store import reviews as review_store
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ORDER_PAID = "order.paid"
PAYMENT_REFUNDED = "payment.refunded"
ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"
ORDER_EXPIRED = "order.expired"
REVIEW_CREATED = "review.created"
REVIEW_EDITED = "review.edited"
REVIEW_HIDDEN = "review.hidden"
REVIEW_PUBLISHED = "review.published"
EXPORTS_MODULE = "chalicelib.services.exports"
ATTEMPTS = 5
MAX_RANGE_DAYS = 366
# How long after a day ends the current stock still stands for its closing stock.
SNAPSHOT_WINDOW = timedelta(hours=24)


def zone() -> tzinfo:
    return business_zone(get_settings().business_time_zone)


def previous_business_day(now: datetime) -> date:
    """The day the nightly job reports on when run at ``now``: yesterday, business time."""
    return previous_day(now, zone())


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.01 * 2**attempt))


# --- events ---------------------------------------------------------------------------------------


class MalformedEvent(ValueError):
    """A message that can never be counted as it stands (it goes to the dead-letter queue)."""


@dataclass(frozen=True, slots=True)
class AnalyticsEvent:
    event_id: str
    type: str
    occurred_at: datetime
    payload: Mapping[str, Any]


class Outcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


def parse_event(body: str) -> AnalyticsEvent:
    """An event from a queue message's body (as the outbox forwarder writes it)."""
    try:
        event = outbox.event_from_message(body)
    except outbox.MalformedMessage as exc:
        raise MalformedEvent(f"not an event: {exc}") from None
    if event.occurred_at is None or event.occurred_at.tzinfo is None:
        raise MalformedEvent("an event needs an id, an aware occurred_at and a payload")
    return AnalyticsEvent(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        payload=event.payload,
    )


def record_event(event: AnalyticsEvent) -> Outcome:
    """Add ``event`` to the aggregates (once, however often it is delivered)."""
    handler = _HANDLERS.get(event.type)
    if handler is None:
        return Outcome.IGNORED
    return handler(event)


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"payload.{name} is missing")
    return value


def _money(payload: Mapping[str, Any], name: str) -> Money:
    value = payload.get(name)
    try:
        money = Money(int(value["amount"]), str(value["currency"]))  # type: ignore[index]
    except (TypeError, KeyError, ValueError, InvalidInput):
        raise MalformedEvent(f"payload.{name} is not an amount of money") from None
    if money.currency != CURRENCY:
        # One reporting currency: figures in another would be added to the wrong numbers.
        raise MalformedEvent(f"payload.{name} is in {money.currency}, not {CURRENCY}")
    return money


def _counted_once(event: AnalyticsEvent, plan: Callable[[], UnitOfWork]) -> Outcome:
    """Commit what ``plan`` reads and builds (it claims the event); plan again when another
    event for the same customer won the race, stop when the event was counted already."""
    for attempt in range(ATTEMPTS):
        uow = plan()
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if store.is_duplicate(cancelled):
                return Outcome.DUPLICATE
            if not store.lost_customer_race(cancelled):
                raise
            _pause(attempt)
            continue
        return Outcome.RECORDED
    raise RuntimeError(f"event {event.event_id} lost every race; it will be delivered again")


def _record_sale(event: AnalyticsEvent) -> Outcome:
    payload = event.payload
    order_id = _text(payload, "order_id")
    customer_id = _text(payload, "customer_id")
    payment_id = _text(payload, "payment_id")
    method = _text(payload, "method")
    lines = payload.get("lines") or []
    skus = sorted({str(line.get("sku")) for line in lines if isinstance(line, dict)})

    def plan() -> UnitOfWork:
        inputs = store.read_for_sale(order_id, customer_id, skus)
        order = inputs.order
        if order is None:
            raise MalformedEvent(f"order {order_id} does not exist")
        if {line.sku for line in order.lines} != set(skus):
            raise MalformedEvent(f"the lines of event {event.event_id} are not its order's")
        if order.total.currency != CURRENCY:
            raise MalformedEvent(f"order {order_id} is in {order.total.currency}")
        sale = sale_of(
            order,
            payment_id=payment_id,
            method=method,
            paid_at=event.occurred_at,
            categories={sku: product.category for sku, product in inputs.products.items()},
            zone=zone(),
        )
        before = inputs.customer
        after = (before or CustomerTotals(customer_id)).with_sale(sale)
        uow = UnitOfWork()
        store.add_claim(uow, event.event_id, event.type, at=datetime.now(UTC))
        store.add_sale(uow, sale, shard=shard_of(event.event_id))
        store.add_customer_day(
            uow,
            day=sale.day,
            customer=after,
            orders_added=1,
            revenue=sale.total,
            # The day's latest payment: the customer's latest, unless this one came late.
            last_order_at=after.last_paid_at if after.last_paid_day == sale.day else sale.paid_at,
        )
        for sku, units in sorted(sale.units_by_sku().items()):
            known = inputs.sku_sales.get(sku)
            last = max(filter(None, (known.last_sale_day if known else None, sale.day)))
            store.add_sku_sales(uow, sku=sku, units=units, last_sale_day=last)
        store.add_customer_change(uow, after, before=before)
        return uow

    return _counted_once(event, plan)


def _record_refund(event: AnalyticsEvent) -> Outcome:
    payload = event.payload
    customer_id = _text(payload, "customer_id")
    payment_id = _text(payload, "payment_id")
    method = _text(payload, "method")
    amount = _money(payload, "amount").amount
    day = local_day(event.occurred_at, zone())

    def plan() -> UnitOfWork:
        inputs = store.read_for_refund(customer_id, payment_id)
        uow = UnitOfWork()
        store.add_claim(uow, event.event_id, event.type, at=datetime.now(UTC))
        store.add_refund(
            uow,
            day=day,
            shard=shard_of(event.event_id),
            method=method,
            amount=amount,
            of_revenue=inputs.payment_was_revenue,
        )
        if inputs.payment_was_revenue:
            before = inputs.customer
            after = (before or CustomerTotals(customer_id)).with_refund(amount)
            store.add_customer_day(uow, day=day, customer=after, refunds=amount)
            store.add_customer_change(uow, after, before=before)
        return uow

    return _counted_once(event, plan)


def _order_counter(counter: str) -> Callable[[AnalyticsEvent], Outcome]:
    def record(event: AnalyticsEvent) -> Outcome:
        def plan() -> UnitOfWork:
            uow = UnitOfWork()
            store.add_claim(uow, event.event_id, event.type, at=datetime.now(UTC))
            store.add_order_count(
                uow,
                day=local_day(event.occurred_at, zone()),
                shard=shard_of(event.event_id),
                counter=counter,
            )
            return uow

        return _counted_once(event, plan)

    return record


def _record_level_created(event: AnalyticsEvent) -> Outcome:
    store.list_level(_text(event.payload, "sku"), _text(event.payload, "warehouse"))
    return Outcome.RECORDED


def _level_change(ran_out: bool) -> Callable[[AnalyticsEvent], Outcome]:
    def record(event: AnalyticsEvent) -> Outcome:
        store.record_level_change(
            day=local_day(event.occurred_at, zone()),
            sku=_text(event.payload, "sku"),
            warehouse=_text(event.payload, "warehouse"),
            ran_out=ran_out,
            at=event.occurred_at,
        )
        return Outcome.RECORDED

    return record


def _stars(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise MalformedEvent(f"payload.{name} is not 1-5 stars")
    return value


def _record_review(event: AnalyticsEvent) -> Outcome:
    """A review written, edited, hidden or published: its product's day counters move by
    what it did to the published reviews; a new 1-2 star review adds its terms."""
    payload = event.payload
    sku = _text(payload, "sku")
    review_id = _text(payload, "review_id")
    rating = _stars(payload, "rating")
    if rating is None:
        raise MalformedEvent("payload.rating is missing")
    counted = bool(payload.get("counted"))
    change = feedback.change_of(
        rating=rating,
        counted=counted,
        previous_rating=_stars(payload, "previous_rating"),
        was_counted=bool(payload.get("was_counted")),
    )
    day = local_day(event.occurred_at, zone())
    terms: list[str] = []
    if event.type == REVIEW_CREATED and counted and rating in LOW_RATINGS:
        text = payload.get("text")
        terms = feedback.complaint_terms(text if isinstance(text, str) else "")

    def plan() -> UnitOfWork:
        uow = UnitOfWork()
        store.add_claim(uow, event.event_id, event.type, at=datetime.now(UTC))
        feedback_store.add_rating_change(uow, sku, day, change)
        feedback_store.add_complaint_terms(uow, day, terms, review_id)
        return uow

    return _counted_once(event, plan)


_HANDLERS: dict[str, Callable[[AnalyticsEvent], Outcome]] = {
    ORDER_PAID: _record_sale,
    PAYMENT_REFUNDED: _record_refund,
    ORDER_PLACED: _order_counter("placed"),
    ORDER_CANCELLED: _order_counter("cancelled"),
    ORDER_EXPIRED: _order_counter("expired"),
    store.LEVEL_CREATED: _record_level_created,
    store.STOCK_OUT: _level_change(ran_out=True),
    store.STOCK_RESTOCKED: _level_change(ran_out=False),
    REVIEW_CREATED: _record_review,
    REVIEW_EDITED: _record_review,
    REVIEW_HIDDEN: _record_review,
    REVIEW_PUBLISHED: _record_review,
}
EVENT_TYPES = tuple(_HANDLERS)


# --- the nightly reports --------------------------------------------------------------------------


def build_daily_reports(day: date, *, now: datetime | None = None) -> DailyReports:
    """Every report table for ``day``, from that day's aggregates.

    Stock is what the levels hold when this runs (normally 00:30 the next morning). Within
    ``SNAPSHOT_WINDOW`` of the day's end that reading is kept as the day's snapshot, so running
    the day again reports the same stock and later days measure turnover against it; a day
    first run later than that reports the stock of the moment (``stock_measured_at``).
    """
    moment = now or datetime.now(UTC)
    business = zone()
    activity = store.day_activity(day)
    snapshot = _stock_snapshot(day, moment, business)
    window_start = day - timedelta(days=TURNOVER_WINDOW_DAYS)
    baseline_day = store.earliest_snapshot_day(window_start, day - timedelta(days=1))
    baseline = store.get_snapshot(baseline_day) if baseline_day else None
    skus = (
        set(snapshot.skus)
        | {sku for sku, _ in activity.items}
        | {sku for sku, _ in activity.levels}
    )
    products = _product_info(skus)
    cities = {warehouse.id: warehouse.city for warehouse in catalogue.list_warehouses()}
    overall, cohorts = store.class_totals(day - timedelta(days=LAPSING_DAYS))
    segments = segment_figures(day, overall, cohorts)

    sales = sales_tables(activity, currency=CURRENCY, products=products, cities=cities)
    stock = inventory_tables(
        activity,
        currency=CURRENCY,
        snapshot=snapshot,
        baseline=baseline,
        products=products,
        zone=business,
    )
    customers = customer_tables(
        activity, currency=CURRENCY, segments=segments, overall=overall, zone=business
    )
    figures = activity.sales
    buyers = activity.buyers
    new_customers = sum(1 for c in buyers if c.is_new_on(day))
    headline: dict[str, Any] = {
        "currency": CURRENCY,
        "orders": figures.orders,
        "units": figures.units,
        "gross_revenue_minor": figures.gross,
        "shipping_minor": figures.shipping,
        "refunds_minor": figures.refunds,
        "net_revenue_minor": figures.gross - figures.refunds,
        "average_order_value_minor": average_minor(figures.gross, figures.orders),
        "orders_placed": figures.placed,
        "orders_cancelled": figures.cancelled,
        "orders_expired": figures.expired,
        "refunds_not_of_revenue_minor": figures.other_refunds,
        "customers": len(buyers),
        "new_customers": new_customers,
        "returning_customers": len(buyers) - new_customers,
        "stock_units_on_hand": stock.units_on_hand,
        "stock_value_at_cost_minor": stock.value_at_cost,
        "skus_without_unit_cost": stock.skus_without_cost,
        "stockouts": stock.stockouts,
        "slow_movers": stock.slow_movers,
        "turnover_window_days": stock.window_days,
        "stock_measured_at": snapshot.taken_at.astimezone(business).isoformat(timespec="seconds"),
    }
    ratings, complaints = _feedback_tables(day)
    returns = after_sales_reports.report_tables(day, currency=CURRENCY)
    headline["products_reviewed"] = len(ratings.rows)
    headline["complaint_terms"] = len(complaints.rows)
    help_desk = support.summary_table(day, business, now=moment)
    headline["support_conversations"] = help_desk.rows[0]["conversations"]
    return DailyReports(
        day=day,
        tables=[*sales, *stock.tables, *customers, ratings, complaints, *returns, help_desk],
        headline=headline,
    )


def _feedback_tables(day: date) -> tuple[ReportTable, ReportTable]:
    """Ratings of every reviewed product at the day's end and 30 days before, and the
    day's complaint terms: one Query per reviewed product and one for the day's terms."""
    skus = feedback_store.reviewed_skus()
    ratings = review_store.get_ratings(skus)
    names = _product_info(set(skus))
    since = feedback_store.window_start(day, feedback.WINDOW_DAYS)
    products = [
        feedback.ProductFeedback(
            sku=sku,
            current=ratings[sku],
            daily=feedback_store.daily_changes(sku, since),
            name_zh=names[sku].name_zh if sku in names else None,
            name_en=names[sku].name_en if sku in names else None,
        )
        for sku in skus
    ]
    return (
        feedback.ratings_by_product(day, products),
        feedback.complaint_terms_table(feedback_store.day_terms(day)),
    )


def _stock_snapshot(day: date, now: datetime, business: tzinfo) -> StockSnapshot:
    existing = store.get_snapshot(day)
    if existing is not None:
        return existing
    keys = store.listed_levels()
    by_sku: dict[str, list[LevelFigures]] = {}
    for level in inventory_store.existing_levels(keys):
        by_sku.setdefault(level.sku, []).append(
            LevelFigures(level.warehouse, level.on_hand, level.reserved, level.low_stock_threshold)
        )
    sold = store.sku_sales_many(by_sku)
    snapshot = StockSnapshot(
        day=day,
        taken_at=now,
        skus={
            sku: SkuStock(
                sku=sku,
                levels=tuple(levels),
                units_sold_to_date=sold[sku].units_sold if sku in sold else 0,
                last_sale_day=sold[sku].last_sale_day if sku in sold else None,
            )
            for sku, levels in sorted(by_sku.items())
        },
    )
    _, day_end = day_bounds(day, business)
    if day_end <= now < day_end + SNAPSHOT_WINDOW:
        # Read soon after the day closed, this is its closing stock: keep it. Read later (a
        # day run again long after), it is only today's stock: report it, keep nothing.
        store.save_snapshot(snapshot)
    return snapshot


def _product_info(skus: set[str]) -> dict[str, ProductInfo]:
    products = catalogue.products.get_many(skus)
    return {sku: _info(product) for sku, product in products.items()}


def _info(product: Product) -> ProductInfo:
    return ProductInfo(
        sku=product.sku,
        name_zh=product.name.zh_cn or None,
        name_en=product.name.en or None,
        category=product.category,
        unit_cost=_unit_cost(product),
    )


def _unit_cost(product: Product) -> int | None:
    """The product's unit cost in minor units of the report currency, when the catalogue
    knows it (unknown costs are reported as such, never guessed)."""
    cost = getattr(product, "unit_cost", None)
    if isinstance(cost, Money):
        return cost.amount if cost.currency == CURRENCY else None
    if isinstance(cost, int) and not isinstance(cost, bool):
        return cost
    return None


@dataclass(frozen=True, slots=True)
class NightlyRun:
    day: date
    reports: DailyReports
    exported: bool


def run_nightly(day: date, *, now: datetime | None = None) -> NightlyRun:
    """Build ``day``'s reports and hand them to the exports."""
    reports = build_daily_reports(day, now=now)
    exported = _export(reports)
    logger.info(
        "daily reports built",
        extra={"date": day.isoformat(), "tables": len(reports.tables), "exported": exported},
    )
    return NightlyRun(day=day, reports=reports, exported=exported)


def run_range(first: date, last: date, *, now: datetime | None = None) -> list[NightlyRun]:
    """``run_nightly`` for every day from ``first`` to ``last``, in order."""
    if last < first:
        raise InvalidInput("The range ends before it starts.")
    days = days_between(first, last)
    if len(days) > MAX_RANGE_DAYS:
        raise InvalidInput(f"At most {MAX_RANGE_DAYS} days at a time.")
    return [run_nightly(day, now=now) for day in days]


def _export(reports: DailyReports) -> bool:
    if importlib.util.find_spec(EXPORTS_MODULE) is None:
        logger.warning("no report exports in this build; the tables were built, not written")
        return False
    exports = importlib.import_module(EXPORTS_MODULE)
    exports.export_reports(reports)
    return True


# --- the staff dashboard ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DashboardDay:
    day: date
    orders: int
    revenue: Money
    low_stock_alerts_opened: int


def dashboard(days: int = DASHBOARD_DAYS, *, now: datetime | None = None) -> list[DashboardDay]:
    """The last ``days`` business days up to today, oldest first, from the day counters."""
    today = local_day(now or datetime.now(UTC), zone())
    wanted = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    summaries = store.day_summaries(wanted)
    return [
        DashboardDay(
            day=day,
            orders=summaries[day].orders,
            revenue=Money(summaries[day].gross, CURRENCY),
            low_stock_alerts_opened=summaries[day].low_stock_alerts_opened,
        )
        for day in wanted
    ]
