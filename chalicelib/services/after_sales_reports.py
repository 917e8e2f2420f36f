"""The nightly after-sales tables for ``services.analytics``: read from the requests made and
completed on the day through their day indexes (and the last 30 days' requests and shipped
units for return rates), then shaped by ``domain.after_sales_reports``."""

from __future__ import annotations

from datetime import date, timedelta

from chalicelib.domain import after_sales_reports as reports
from chalicelib.domain.reports import ReportTable
from chalicelib.services import stock
from chalicelib.services.after_sales import products_of
from chalicelib.store import after_sales as store
from chalicelib.store import units_shipped


def report_tables(day: date, *, currency: str) -> list[ReportTable]:
    """``after_sales/by_product`` and ``after_sales/summary`` for ``day``, read from the
    requests made and completed that day (and, for return rates, the last 30 days' requests
    and shipped units): a Query per day partition, never a Scan."""
    created = store.created_on(day)
    completed = store.completed_on(day)
    window = [day - timedelta(days=back) for back in range(reports.RETURN_RATE_DAYS)]
    recent = [request for moment in window for request in store.created_on(moment)]
    skus = sorted({line.sku for request in (*created, *completed) for line in request.lines})
    products = products_of(skus) if skus else {}
    warehouses = [w.id for w in stock.known_warehouses()]
    delivered: dict[str, int] = {}
    for sku in skus:
        for warehouse in warehouses:
            shipped = units_shipped.units_shipped_by_day(sku, warehouse, window[-1], day)
            delivered[sku] = delivered.get(sku, 0) + sum(shipped.values())
    by_product = reports.by_product(
        created,
        completed,
        currency=currency,
        prices={sku: product.price for sku, product in products.items()},
        names={
            sku: reports.Names(product.name.zh_cn or None, product.name.en or None)
            for sku, product in products.items()
        },
        returned_units=reports.returned_units(recent),
        delivered_units=delivered,
    )
    return [by_product, reports.summary(created, completed)]
