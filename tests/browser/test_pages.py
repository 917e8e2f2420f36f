"""Every page in both languages: accessible (axe-core), screenshotted, and usable on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user

SERIOUS = ("serious", "critical")
LANGUAGES = {
    "zh-CN": {"search": "搜索", "sign_in": "登录", "switch": "English", "add": "加入购物车"},
    "en": {"search": "Search", "sign_in": "Sign in", "switch": "中文", "add": "Add to cart"},
}


def serious_violations(page: Any) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def check_page(shop: Shop, name: str, lang: str, problems: list[str]) -> None:
    shop.page.wait_for_load_state("networkidle")
    shop.screenshot(f"{name}-{lang}")
    problems += [f"{name} [{lang}]: {v}" for v in serious_violations(shop.page)]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_page_is_accessible_and_screenshotted(shop: Shop, lang: str) -> None:
    words = LANGUAGES[lang]
    user = new_user()
    shop.set_language(lang)
    shop.open()
    shop.page.get_by_role("button", name=words["sign_in"], exact=True).click()
    shop.sign_in_on_provider_page(user)
    order_id = shop.place_order_by_api(user)
    problems: list[str] = []

    shop.open()
    expect(shop.page.get_by_role("searchbox", name=words["search"])).to_be_visible()
    shop.page.get_by_role("searchbox", name=words["search"]).press_sequentially("耳机", delay=20)
    expect(shop.page.get_by_test_id("search-results")).to_be_visible()
    check_page(shop, "home", lang, problems)
    for name, path in [
        ("search", "search?q=耳机"),
        ("category", "category/electronics"),
        ("product", "products/EL-EARBUDS-PRO"),
    ]:
        shop.open(path)
        check_page(shop, name, lang, problems)
    expect(shop.page.get_by_role("button", name=words["add"])).to_be_visible()
    shop.page.get_by_role("button", name=words["add"]).click()
    for name, path in [
        ("cart", "cart"),
        ("checkout", "checkout"),
        ("pay", f"orders/{order_id}/pay"),
        ("orders", "orders"),
        ("order", f"orders/{order_id}"),
        ("account", "account"),
    ]:
        shop.open(path)
        check_page(shop, name, lang, problems)
    assert not problems, "\n".join(problems)


def test_language_switch_is_remembered_across_reloads(shop: Shop) -> None:
    shop.open("products/EL-EARBUDS-PRO")
    expect(shop.page.get_by_role("heading", level=1)).to_have_text("无线蓝牙耳机 Pro")
    expect(shop.page.locator("html")).to_have_attribute("lang", "zh-CN")
    shop.page.get_by_role("button", name="切换到英文").click()
    expect(shop.page.get_by_role("heading", level=1)).to_have_text("Wireless Bluetooth Earbuds Pro")
    expect(shop.page.get_by_role("button", name="Add to cart")).to_be_visible()
    expect(shop.page.locator("html")).to_have_attribute("lang", "en")
    shop.page.reload()
    expect(shop.page.get_by_role("button", name="Add to cart")).to_be_visible()
    expect(shop.page.get_by_test_id("price")).to_have_text("¥699.00")
    shop.page.get_by_role("button", name="Switch to Chinese").click()
    expect(shop.page.get_by_role("button", name="加入购物车")).to_be_visible()


def test_phone_sized_screen_shows_the_shop_without_sideways_scrolling(phone_shop: Shop) -> None:
    shop = phone_shop
    page = shop.page
    shop.open()
    page.get_by_role("searchbox", name="搜索").press_sequentially("耳机", delay=20)
    page.get_by_test_id("search-results").get_by_role("link").first.click()
    expect(page.get_by_role("button", name="加入购物车")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shop.screenshot("product-phone-zh-CN")
    page.get_by_role("button", name="加入购物车").click()
    page.get_by_role("link", name=re.compile("购物车（1）")).click()
    expect(page.get_by_role("link", name="去结算")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shop.screenshot("cart-phone-zh-CN")
