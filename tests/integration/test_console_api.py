"""What the staff console reads: the stock grid, a customer's notifications for support, and
the daily dashboard, over the real app and moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from test_me_api import sent
from test_orders_api import build_world

from chalicelib.domain.analytics import Sale
from chalicelib.domain.notifications import Channel
from chalicelib.services import analytics, low_stock, stock
from chalicelib.store import analytics as analytics_store
from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from conftest import Api


@pytest.fixture
def world(api: Api) -> Iterator[Api]:
    build_world()
    yield api
    stock.forget_cached_warehouses()


def get(api: Api, path: str, headers: dict[str, str], **params: Any) -> Any:
    query = urlencode(params)
    return api.request("GET", path + (f"?{query}" if query else ""), headers=headers)


def cells(body: dict[str, Any]) -> list[tuple[str, str, int, int, int]]:
    return [
        (i["sku"], i["warehouse"], i["on_hand"], i["reserved"], i["available"])
        for i in body["items"]
    ]


# --- GET /stock ---------------------------------------------------------------------------------


def test_the_grid_pages_through_every_sku_in_every_warehouse(world: Api) -> None:
    stock.receive("MUG", "SH", 7, actor="t")
    stock.receive("TEA", "BJ", 3, actor="t")
    first = get(world, "/stock", world.ops, limit=2)
    assert first.status_code == 200, first.json_body
    second = get(world, "/stock", world.ops, limit=2, cursor=first.json_body["next_cursor"])
    assert second.json_body["next_cursor"] is None
    grid = cells(first.json_body) + cells(second.json_body)
    assert [(sku, wh) for sku, wh, *_ in grid] == [
        (sku, wh) for sku in ("MUG", "PEN", "TEA") for wh in ("BJ", "HZ", "SH")
    ]
    assert ("MUG", "SH", 7, 0, 7) in grid and ("TEA", "BJ", 3, 0, 3) in grid
    assert ("PEN", "HZ", 0, 0, 0) in grid


def test_the_grid_filters_by_warehouse_and_category(world: Api) -> None:
    stock.receive("MUG", "SH", 7, actor="t")
    response = get(world, "/stock", world.support, warehouse="SH", category="home")
    assert response.status_code == 200
    assert cells(response.json_body) == [
        ("MUG", "SH", 7, 0, 7),
        ("PEN", "SH", 0, 0, 0),
        ("TEA", "SH", 0, 0, 0),
    ]
    other = get(world, "/stock", world.ops, category="garden")
    assert other.json_body == {"items": [], "next_cursor": None}


def test_low_levels_come_from_the_low_stock_index_a_page_at_a_time(world: Api) -> None:
    for warehouse in ("SH", "HZ", "BJ"):
        stock.receive("MUG", warehouse, 10, actor="t")
        stock.set_threshold("MUG", warehouse, 5)
    stock.receive("TEA", "SH", 2, actor="t")
    stock.set_threshold("TEA", "SH", 5)
    stock.adjust("MUG", "HZ", -6, reason="damage", actor="t")  # 4 left: low
    stock.adjust("MUG", "BJ", -8, reason="loss", actor="t")  # 2 left: low
    seen: list[tuple[str, str, int, int, int]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"low": "true", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = get(world, "/stock", world.ops, **params)
        assert response.status_code == 200, response.json_body
        assert len(response.json_body["items"]) <= 1
        seen += cells(response.json_body)
        cursor = response.json_body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [("MUG", "BJ", 2, 0, 2), ("MUG", "HZ", 4, 0, 4), ("TEA", "SH", 2, 0, 2)]
    only_bj = get(world, "/stock", world.ops, low="true", warehouse="BJ")
    assert cells(only_bj.json_body) == [("MUG", "BJ", 2, 0, 2)]
    # Restocking takes a level out of the low listing.
    stock.receive("MUG", "HZ", 10, actor="t")
    again = get(world, "/stock", world.ops, low="true")
    assert sorted(cells(again.json_body)) == [("MUG", "BJ", 2, 0, 2), ("TEA", "SH", 2, 0, 2)]


def test_the_grid_never_scans(world: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    client = tables.client()

    def refuse(**_: Any) -> None:
        raise AssertionError("Scan in a request path")

    monkeypatch.setattr(client, "scan", refuse)
    assert get(world, "/stock", world.ops).status_code == 200
    assert get(world, "/stock", world.ops, low="true").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"low": "maybe"},
        {"warehouse": "NOWHERE"},
        {"warehouse": "bad id!"},
        {"category": "Not A Slug"},
        {"cursor": "garbage"},
        {"low": "true", "cursor": "garbage"},
    ],
)
def test_bad_grid_parameters_are_400(world: Api, params: dict[str, Any]) -> None:
    response = get(world, "/stock", world.ops, **params)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]


def test_a_cursor_of_the_full_grid_is_refused_by_the_low_listing(world: Api) -> None:
    cursor = get(world, "/stock", world.ops, limit=1).json_body["next_cursor"]
    assert get(world, "/stock", world.ops, low="true", cursor=cursor).status_code == 400


# --- GET /customers/{id}/notifications ------------------------------------------------------


def test_support_reads_the_same_notifications_the_customer_sees(world: Api) -> None:
    at = datetime(2026, 5, 1, 8, tzinfo=UTC)
    sent("cust-li", "evt-1", Channel.EMAIL, at)
    sent("cust-li", "evt-2", Channel.SMS, at + timedelta(minutes=1))
    sent("cust-han", "evt-3", Channel.EMAIL, at)
    own = get(world, "/me/notifications", world.token("cust-li", "customers"))
    for headers in (world.support, world.ops):
        staff = get(world, "/customers/cust-li/notifications", headers)
        assert staff.status_code == 200
        assert staff.json_body == own.json_body
    assert [i["event_id"] for i in own.json_body["items"]] == ["evt-2", "evt-1"]
    first = get(world, "/customers/cust-li/notifications", world.support, limit=1)
    rest = get(
        world,
        "/customers/cust-li/notifications",
        world.support,
        cursor=first.json_body["next_cursor"],
    )
    assert [i["event_id"] for i in rest.json_body["items"]] == ["evt-1"]


def test_customer_notifications_refuse_customers_and_bad_parameters(world: Api) -> None:
    assert get(world, "/customers/cust-li/notifications", world.customer).status_code == 403
    finance = world.token("fin-1", "finance")
    assert get(world, "/customers/cust-li/notifications", finance).status_code == 403
    bad = get(world, "/customers/cust-li/notifications", world.support, limit=0)
    assert bad.status_code == 400
    bad_cursor = get(world, "/customers/cust-li/notifications", world.support, cursor="x")
    assert bad_cursor.status_code == 400


# --- GET /ops/dashboard -----------------------------------------------------------------------


def record_sale(day: date, order_id: str, total: int) -> None:
    paid_at = datetime(day.year, day.month, day.day, 4, tzinfo=UTC)
    sale = Sale(
        order_id=order_id,
        customer_id="cust-li",
        payment_id=f"pay-{order_id}",
        method="card",
        paid_at=paid_at,
        day=day,
        hour=12,
        currency="CNY",
        total=total,
        merchandise=total,
        shipping=0,
        units=1,
        items=(),
    )
    uow = UnitOfWork()
    analytics_store.add_sale(uow, sale, shard=hash(order_id) % 4)
    uow.commit()


def test_the_dashboard_sums_the_daily_counters_over_fourteen_days(world: Api) -> None:
    today = analytics.dashboard(1)[0].day
    record_sale(today, "ord_a", 1200)
    record_sale(today, "ord_b", 800)
    record_sale(today - timedelta(days=3), "ord_c", 500)
    record_sale(today - timedelta(days=20), "ord_old", 999)
    stock.receive("MUG", "SH", 1, actor="t")
    stock.set_threshold("MUG", "SH", 3)
    opened = low_stock.reconcile_level("MUG", "SH")
    assert opened.opened is not None
    finance = world.token("fin-1", "finance")
    response = get(world, "/ops/dashboard", finance)
    assert response.status_code == 200, response.json_body
    days = response.json_body["days"]
    assert len(days) == 14
    assert days[-1] == {
        "date": today.isoformat(),
        "orders": 2,
        "revenue": {"amount": 2000, "currency": "CNY"},
        "low_stock_alerts_opened": 1,
    }
    assert days[-4]["orders"] == 1 and days[-4]["revenue"]["amount"] == 500
    assert sum(d["orders"] for d in days) == 3
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    week = get(world, "/ops/dashboard", world.ops, days=7)
    assert len(week.json_body["days"]) == 7


@pytest.mark.parametrize("days", [0, 93, "two"])
def test_bad_dashboard_parameters_are_400(world: Api, days: Any) -> None:
    assert get(world, "/ops/dashboard", world.ops, days=days).status_code == 400


@pytest.mark.parametrize("path", ["/stock", "/ops/dashboard", "/customers/cust-li/notifications"])
def test_customers_get_403_from_console_reads(world: Api, path: str) -> None:
    response = get(world, path, world.customer)
    assert response.status_code == 403
    assert response.json_body["error"]


def test_support_cannot_read_the_dashboard(world: Api) -> None:
    assert get(world, "/ops/dashboard", world.support).status_code == 403
