"""Orders and the account in the browser: the list, cancelling, and the address book."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user
from tests.browser.test_shop_payments import sign_in


def test_unpaid_order_is_listed_and_can_be_cancelled(shop: Shop) -> None:
    user = new_user()
    sign_in(shop, user)
    order_id = shop.place_order_by_api(user)
    shop.open("orders")
    shop.page.get_by_role("link", name=re.compile(order_id)).click()
    expect(shop.page.get_by_test_id("order-status")).to_have_text("待支付")
    shop.page.once("dialog", lambda dialog: dialog.accept())
    shop.page.get_by_role("button", name="取消订单").click()
    expect(shop.page.get_by_test_id("order-status")).to_have_text("已取消")
    expect(shop.page.get_by_role("button", name="取消订单")).to_have_count(0)
    assert shop.order(user, order_id)["status"] == "cancelled"


def test_address_book_adds_and_deletes_addresses(shop: Shop) -> None:
    sign_in(shop, new_user())
    shop.open("account")
    page = shop.page
    book = page.get_by_role("region", name="地址簿")
    expect(book.get_by_text("地址簿是空的。")).to_be_visible()
    book.get_by_text("添加地址").first.click()
    book.get_by_label("收货人").fill("王芳")
    book.get_by_label("手机号").fill("+8613800000002")
    book.get_by_label("城市").select_option(label="北京")
    book.get_by_label("详细地址").fill("长安街 1 号")
    book.get_by_label("邮编").fill("100000")
    book.get_by_role("button", name="添加地址").click()
    expect(book.get_by_text(re.compile("王芳 · \\+8613800000002"))).to_be_visible()
    book.get_by_role("button", name="删除地址 王芳").click()
    expect(book.get_by_text("地址簿是空的。")).to_be_visible()
