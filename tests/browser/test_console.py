"""The staff console in Chromium against the shared local stack: ops, finance and support at
work, every screen in both languages checked with axe-core and screenshotted."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.conftest import ADDRESS, CONSOLE_WORDS, MANUAL_WAREHOUSE, Console
from tests.e2e.conftest import LocalStackUnderTest

OPS_USER = "ops-zhang-min"
FINANCE_USER = "finance-chen-jing"
SUPPORT_USER = "support-liu-yang"
SERIOUS = ("serious", "critical")


# --- setting the scene over the API ----------------------------------------------------------


def call(stack: LocalStackUnderTest, method: str, path: str, user: tuple[str, str], body=None):
    headers = stack.auth(*user)
    if method == "POST" and path.endswith(("/orders", "/payments")):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    response = requests.request(method, stack.url(path), headers=headers, json=body, timeout=30)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


OPS = (OPS_USER, "ops")


def new_product(stack: LocalStackUnderTest, prefix: str, **extra: Any) -> str:
    sku = f"{prefix}-{uuid.uuid4().hex[:8].upper()}"
    body = {
        "name": {"zh-CN": f"测试商品 {sku}", "en": f"Test product {sku}"},
        "category": "home",
        "price": {"amount": 5000, "currency": "CNY"},
        **extra,
    }
    call(stack, "PUT", f"/products/{sku}", OPS, body)
    return sku


def paid_order(stack: LocalStackUnderTest, customer: str, sku: str, quantity: int = 1) -> str:
    shopper = (customer, "customers")
    order = call(
        stack,
        "POST",
        "/orders",
        shopper,
        {"lines": [{"sku": sku, "quantity": quantity}], "shipping_address": ADDRESS},
    )
    paid = call(
        stack,
        "POST",
        f"/orders/{order['order_id']}/payments",
        shopper,
        {"method": "card", "payment_method": "pm_card_visa"},
    )
    assert paid["status"] == "succeeded", paid
    return str(order["order_id"])


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def yesterday() -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date().isoformat()


def tick(stack: LocalStackUnderTest, job: str, *options: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "infra.local.tick", "--port", str(stack.port), job, *options],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


# --- ops -------------------------------------------------------------------------------------


def test_ops_watch_a_low_stock_alert_open_and_clear_when_they_receive_stock(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    stack = console.stack
    sku = new_product(stack, "CON-LOW")
    call(stack, "POST", f"/stock/{sku}/wh-sha/receive", OPS, {"quantity": 20})
    call(stack, "PUT", f"/stock/{sku}/wh-sha/threshold", OPS, {"low_stock_threshold": 5})
    console.sign_in(OPS_USER)
    page = console.page

    console.open(f"stock/{sku}/wh-sha")
    adjust = page.locator("form", has=page.get_by_role("heading", name="调整"))
    adjust.get_by_label("变动（+/−）").fill("-17")
    adjust.get_by_label("原因").select_option("damage")
    adjust.get_by_role("button", name="调整").click()
    expect(page.locator("[data-field=available]")).to_have_text("3")

    alert_row = page.locator(f"tr[data-alert='{sku}/wh-sha']")

    def alert_listed() -> bool:
        console.open("alerts")
        page.wait_for_load_state("networkidle")
        return alert_row.count() == 1

    eventually(alert_listed, "the low-stock alert in the inbox")
    expect(alert_row.locator("td").nth(2)).to_have_text("3")

    console.open(f"stock/{sku}/wh-sha")
    receive = page.locator("form", has=page.get_by_role("heading", name="入库"))
    receive.get_by_label("数量").fill("50")
    receive.get_by_label("备注").fill("到货单 A-1")
    receive.get_by_role("button", name="入库").click()
    expect(page.locator("[data-field=available]")).to_have_text("53")
    expect(page.get_by_role("cell", name="到货单 A-1")).to_be_visible()

    def alert_cleared() -> bool:
        console.open("alerts")
        page.wait_for_load_state("networkidle")
        return alert_row.count() == 0

    eventually(alert_cleared, "the alert to leave the open inbox")
    page.get_by_role("button", name="已解除").click()
    expect(alert_row).to_have_count(1)


def test_ops_edit_a_product_and_the_shop_shows_it(new_console: Callable[[], Console]) -> None:
    console = new_console()
    sku = new_product(console.stack, "CON-EDIT")
    console.sign_in(OPS_USER)
    page = console.page
    console.open(f"products/{sku}")
    expect(page.get_by_label("中文名称")).to_have_value(f"测试商品 {sku}")
    page.get_by_label("中文名称").fill("控制台改过的名字")
    page.get_by_label("英文名称").fill("Renamed at the console")
    page.get_by_label("价格（元）").fill("66.60")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_have_text("已保存。")

    page.goto(f"{console.stack.api_url}/shop/products/{sku}")
    expect(page.get_by_role("heading", level=1)).to_have_text("控制台改过的名字")
    expect(page.locator("main")).to_contain_text("¥66.60")


def test_ops_pick_pack_and_ship_from_the_warehouse_screen(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    stack = console.stack
    call(
        stack,
        "PUT",
        f"/warehouses/{MANUAL_WAREHOUSE}",
        OPS,
        {
            "name": "测试仓 Console DC",
            "city": "苏州",
            "location": {"lat": 31.3, "lon": 120.6},
            "address": {
                "region": "江苏省",
                "city": "苏州市",
                "line1": "工业园区星湖街 1 号",
                "postcode": "215000",
            },
            "contact_name": "赵强",
            "phone": "13800138009",
        },
    )
    sku = new_product(stack, "CON-SHIP")
    call(stack, "POST", f"/stock/{sku}/{MANUAL_WAREHOUSE}/receive", OPS, {"quantity": 5})
    order_id = paid_order(stack, f"shopper-{uuid.uuid4().hex[:8]}", sku, 2)

    def released() -> bool:
        work = call(stack, "GET", f"/warehouses/{MANUAL_WAREHOUSE}/shipments", OPS)
        return any(item["order_id"] == order_id for item in work["items"])

    eventually(released, "the shipment on the warehouse's work list")
    console.sign_in(OPS_USER)
    page = console.page
    console.open(f"fulfilment?warehouse={MANUAL_WAREHOUSE}")
    card = page.locator("article", has_text=order_id)
    expect(card.get_by_role("cell", name=sku)).to_be_visible()  # the packing list
    expect(card.get_by_role("cell", name="2", exact=True)).to_be_visible()
    console.screenshot("fulfilment-packing-list-zh-CN")
    for tab, button, done in [
        ("待拣货", "开始拣货", "已开始拣货。"),
        ("拣货中", "标记已打包", "已打包。"),
        ("已打包", "发货", "已发货并向承运商下单。"),
    ]:
        page.get_by_role("button", name=tab, exact=True).click()
        card.get_by_role("button", name=button).click()
        expect(page.locator("[data-notice]")).to_contain_text(done)
        expect(card).to_have_count(0)  # moved on to the next list

    order = call(stack, "GET", f"/orders/{order_id}", OPS)
    assert order["status"] == "shipped"
    assert [s["status"] for s in order["shipments"]] == ["shipped"]
    tracking = call(stack, "GET", f"/orders/{order_id}/tracking", OPS)
    assert tracking["shipments"][0]["tracking_number"]


def test_ops_refund_part_of_an_order(new_console: Callable[[], Console]) -> None:
    console = new_console()
    stack = console.stack
    order_id = paid_order(stack, f"shopper-{uuid.uuid4().hex[:8]}", "EL-USB-C-CABLE")
    console.sign_in(OPS_USER)
    page = console.page
    console.open(f"orders/{order_id}")
    refund = page.locator("form", has=page.get_by_role("heading", name="退款"))
    refund.get_by_label("部分退款").check()
    refund.get_by_label("金额（元）").fill("10.00")
    refund.get_by_label("原因").fill("包装破损，部分补偿")
    refund.get_by_role("button", name="退款").click()
    expect(refund.get_by_role("status")).to_have_text("已提交退款。")
    expect(page.get_by_role("cell", name="包装破损，部分补偿")).to_be_visible()

    def refunded() -> bool:
        payments = call(stack, "GET", f"/orders/{order_id}/payments", OPS)["items"]
        return payments[0]["refunded"]["amount"] == 1000

    eventually(refunded, "the partial refund at the provider")
    refunds = call(stack, "GET", f"/orders/{order_id}/refunds", OPS)["items"]
    assert [(r["amount"]["amount"], r["reason"]) for r in refunds] == [(1000, "包装破损，部分补偿")]
    order = call(stack, "GET", f"/orders/{order_id}", OPS)
    assert order["status"] not in ("cancelled",)


# --- finance and support -----------------------------------------------------------------------


def test_finance_open_yesterdays_report_and_download_a_csv(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    tick(console.stack, "analytics", "--date", yesterday())
    console.sign_in(FINANCE_USER)
    page = console.page
    expect(page.get_by_role("heading", level=1)).to_have_text("概览")  # finance lands there
    page.get_by_role("link", name="报表").click()
    expect(page.get_by_role("heading", name="关键数据")).to_be_visible()
    expect(page.get_by_role("img", name="分时营业额")).to_be_visible()
    expect(page.get_by_role("img", name="营业额最高的商品")).to_be_visible()
    expect(page.get_by_role("img", name="库存可售天数（由低到高）")).to_be_visible()
    link = page.locator("a[data-table=sku_turnover][data-format=csv]")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"sku_turnover-{yesterday()}.csv"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    assert "无线蓝牙耳机 Pro" in content.decode("utf-8-sig")


def test_support_find_a_customers_order_by_customer_id(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    customer = f"shopper-{uuid.uuid4().hex[:8]}"
    order_id = paid_order(console.stack, customer, "EL-USB-C-CABLE")
    console.sign_in(SUPPORT_USER)
    page = console.page
    expect(page.get_by_role("heading", level=1)).to_have_text("客服会话")  # support land there
    page.get_by_role("link", name="顾客查询").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("客户服务")
    page.get_by_label("搜索方式").select_option("customer")
    page.get_by_label("编号").fill(customer)
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_role("heading", name=f"顾客 {customer} 的订单")).to_be_visible()
    page.get_by_role("link", name=order_id).wait_for()
    page.get_by_role("button", name="查看物流").click()
    expect(page.get_by_role("heading", name=f"{order_id} 的物流")).to_be_visible()
    page.get_by_role("link", name=order_id).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"订单 {order_id}")
    # Support see the order but not the ops actions on it.
    expect(page.get_by_role("button", name="取消订单")).to_have_count(0)


def test_a_customer_is_told_the_console_is_for_staff(new_console: Callable[[], Console]) -> None:
    console = new_console()
    console.sign_in(f"shopper-{uuid.uuid4().hex[:8]}", new=True)
    expect(console.page.get_by_role("heading", level=1)).to_have_text("控制台仅供员工使用")
    expect(console.page.get_by_role("navigation")).to_have_count(0)


# --- every screen, both languages ------------------------------------------------------------


def serious_violations(page: Any) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_console_screen_is_accessible_and_screenshotted(
    new_console: Callable[[], Console], lang: str
) -> None:
    problems: list[str] = []
    first = new_console()
    stack = first.stack
    customer = f"shopper-{uuid.uuid4().hex[:8]}"
    order_id = paid_order(stack, customer, "EL-MOUSE-WL")
    day = yesterday()
    tick(stack, "analytics", "--date", day)
    tick(stack, "reconcile_payments", "--date", day)
    started = call(
        stack,
        "POST",
        "/support/conversations",
        (customer, "customers"),
        {"subject": "找人工", "message": "转人工"},
    )

    def check(console: Console, name: str) -> None:
        console.page.wait_for_load_state("networkidle")
        console.page.locator("main h1").first.wait_for()
        console.screenshot(f"{name}-{lang}")
        problems.extend(f"{name} [{lang}]: {v}" for v in serious_violations(console.page))

    first.page.add_init_script(f"localStorage.setItem('orderdesk.lang', '{lang}')")
    first.open()
    check(first, "sign-in")
    first.sign_in(f"shopper-{uuid.uuid4().hex[:8]}", lang, new=True)
    expect(first.page.get_by_role("heading", level=1)).to_have_text(
        CONSOLE_WORDS[lang]["staff_only"]
    )
    check(first, "not-staff")

    screens = {
        OPS_USER: [
            ("dashboard", "dashboard"),
            ("stock", "stock"),
            ("stock-low", "stock"),
            ("level", "stock/EL-MOUSE-WL/wh-sha"),
            ("products", "products"),
            ("product-editor", "products/EL-MOUSE-WL"),
            ("warehouses", "warehouses"),
            ("orders", "orders"),
            ("order", f"orders/{order_id}"),
            ("fulfilment", "fulfilment"),
            ("alerts", "alerts"),
            ("queues", "queues"),
            ("reviews", "reviews"),
        ],
        FINANCE_USER: [("reports", f"reports?date={day}"), ("reconciliation", "reconciliation")],
        SUPPORT_USER: [
            ("support", f"support?customer={customer}"),
            ("conversations", "conversations"),
            ("conversation", f"conversations/{started['conversation_id']}"),
            ("canned-replies", "canned-replies"),
            ("reviews-support", "reviews?sku=EL-MOUSE-WL"),
        ],
    }
    for user, pages in screens.items():
        console = new_console()
        console.sign_in(user, lang)
        for name, path in pages:
            console.open(path)
            if name == "stock-low":
                console.page.get_by_role("checkbox").check()
            check(console, name)
    assert not problems, "\n".join(problems)


def test_the_dashboard_counts_todays_paid_orders(new_console: Callable[[], Console]) -> None:
    console = new_console()
    stack = console.stack
    before = call(stack, "GET", "/ops/dashboard", OPS)["days"][-1]["orders"]
    paid_order(stack, f"shopper-{uuid.uuid4().hex[:8]}", "EL-MOUSE-WL")

    def counted() -> bool:
        return call(stack, "GET", "/ops/dashboard", OPS)["days"][-1]["orders"] > before

    eventually(counted, "the paid order in today's counters")
    console.sign_in(OPS_USER)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d")
    expect(console.page.get_by_role("img", name="每日已支付订单")).to_contain_text(today)
