"""A shopper's whole journey in the browser: search, cart, sign-in, checkout, card, tracking."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user

CARD_OK = "4242424242424242"


def fill_card(shop: Shop, number: str) -> None:
    card = shop.page.get_by_test_id("card-element")
    card.get_by_label("卡号").fill(number)
    card.get_by_label("有效期 (MM / YY)").fill("12 / 34")
    card.get_by_label("安全码").fill("123")


def add_from_search(shop: Shop, query: str, product_name: str) -> None:
    shop.open()
    search = shop.page.get_by_role("searchbox", name="搜索")
    search.press_sequentially(query, delay=30)
    results = shop.page.get_by_test_id("search-results")
    results.get_by_role("link", name=re.compile(product_name)).click()
    expect(shop.page.get_by_role("heading", level=1)).to_contain_text(product_name)
    shop.page.get_by_role("button", name="加入购物车").click()
    expect(shop.page.get_by_role("status")).to_have_text("已加入购物车")


def test_search_two_products_sign_in_pay_by_card_and_follow_the_parcel(shop: Shop) -> None:
    add_from_search(shop, "耳机", "无线蓝牙耳机 Pro")
    add_from_search(shop, "帐篷", "双人露营帐篷")
    page = shop.page
    expect(page.get_by_role("link", name="购物车（2）")).to_be_visible()
    page.get_by_role("link", name="购物车（2）").click()
    expect(page.locator("tbody")).to_contain_text("无线蓝牙耳机 Pro")
    shop.screenshot("cart-zh-CN")
    page.get_by_role("link", name="去结算").click()
    page.get_by_role("button", name="登录后结算").click()

    # The provider's page, then back to checkout with the cart kept and no code in the URL.
    shop.sign_in_on_provider_page(new_user())
    page.wait_for_url(re.compile(r"/shop/checkout$"))
    assert "code=" not in page.url
    expect(page.get_by_role("heading", name="结算")).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("双人露营帐篷")

    # A new address, by keyboard alone, saved to the book and then used.
    page.get_by_label("收货人").focus()
    page.keyboard.type("爱丽丝")
    page.keyboard.press("Tab")
    page.keyboard.press("End")
    page.keyboard.type("13800000001")
    fill_city(shop)
    page.get_by_label("详细地址").focus()
    page.keyboard.type("南京东路 1 号")
    page.keyboard.press("Tab")
    page.keyboard.type("200001")
    page.get_by_role("button", name="保存地址").focus()
    page.keyboard.press("Enter")
    shop.screenshot("checkout-zh-CN")
    place = page.get_by_role("button", name="提交订单")
    expect(place).to_be_enabled()
    place.focus()
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/shop/orders/[^/]+/pay$"))
    expect(page.get_by_test_id("amount")).to_contain_text("¥")
    fill_card(shop, CARD_OK)
    shop.screenshot("pay-zh-CN")
    page.get_by_role("button", name="用银行卡支付").click()
    expect(page.get_by_test_id("pay-status")).to_contain_text("支付成功")

    page.wait_for_url(re.compile(r"/shop/orders/[^/]+$"))
    timeline = page.locator("ol.timeline").first
    expect(timeline).to_contain_text("已支付", timeout=30_000)
    expect(page.get_by_test_id("tracking-number").first).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("tracking-events").first).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("payments")).to_contain_text("成功")
    shop.screenshot("order-zh-CN")


def fill_city(shop: Shop) -> None:
    """The city picker when GET /cities answers; region and city typed otherwise."""
    page = shop.page
    city = page.get_by_label("城市")
    if city.evaluate("node => node.tagName") == "SELECT":
        city.select_option(label="上海")
    else:
        page.get_by_label("省份").fill("上海")
        city.fill("上海市")
