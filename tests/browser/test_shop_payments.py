"""Paying in the browser: QR codes that update live, 3-D Secure, a decline, quick pay."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user
from tests.browser.test_shopping import fill_card

CARD_3DS = "4000002500003155"
CARD_DECLINED = "4000000000000002"
CARD_OK = "4242424242424242"


def sign_in(shop: Shop, user_id: str) -> None:
    shop.open()
    shop.page.get_by_role("button", name="登录").click()
    shop.sign_in_on_provider_page(user_id)
    expect(shop.page.get_by_role("button", name="退出登录")).to_be_visible()


def open_payment(shop: Shop) -> tuple[str, str]:
    user = new_user()
    sign_in(shop, user)
    order_id = shop.place_order_by_api(user)
    shop.open(f"orders/{order_id}/pay")
    expect(shop.page.get_by_test_id("amount")).to_have_text("¥699.00")
    return user, order_id


def expect_paid(shop: Shop, user: str, order_id: str) -> None:
    expect(shop.page.get_by_test_id("pay-status")).to_contain_text("支付成功")
    assert shop.order(user, order_id)["status"] != "pending_payment"


def test_wechat_pay_qr_is_drawn_and_the_page_follows_the_payment(shop: Shop) -> None:
    user, order_id = open_payment(shop)
    shop.page.get_by_role("button", name="微信支付").click()
    qr = shop.page.get_by_role("img", name="微信支付付款二维码")
    expect(qr).to_be_visible()
    code_url = qr.get_attribute("data-code") or ""
    assert code_url.startswith("weixin://wxpay/")
    assert int(qr.evaluate("svg => svg.viewBox.baseVal.width")) >= 25  # a real QR matrix
    shop.screenshot("pay-wechat-zh-CN")
    (payment,) = shop.payments(user, order_id)
    wechat = shop.stack.data["emulators"]["wechat_pay"]
    pay_url = f"{wechat}/_emulator/transactions/{payment['payment_id']}/pay"
    answer = requests.post(pay_url, timeout=10)
    assert answer.status_code < 300, answer.text
    expect_paid(shop, user, order_id)


def test_alipay_qr_page_paid_by_hand_updates_the_shop(shop: Shop) -> None:
    user, order_id = open_payment(shop)
    shop.page.get_by_role("button", name="支付宝支付").click()
    qr = shop.page.get_by_role("img", name="支付宝付款二维码")
    expect(qr).to_be_visible()
    code_url = qr.get_attribute("data-code") or ""
    cashier = shop.page.context.new_page()
    cashier.goto(code_url)
    # Close the cashier's tab only once its payment has answered: closing a page in the middle
    # of the form's navigation can leave Playwright waiting.
    with cashier.expect_navigation():
        cashier.get_by_role("button", name=re.compile("Pay")).click()
    cashier.close()
    expect_paid(shop, user, order_id)


def test_card_with_3d_secure_goes_to_the_bank_and_back_to_the_paid_order(shop: Shop) -> None:
    user, order_id = open_payment(shop)
    fill_card(shop, CARD_3DS)
    shop.page.get_by_role("button", name="用银行卡支付").click()
    shop.page.get_by_role("button", name="Complete authentication").click()
    shop.page.wait_for_url(re.compile(rf"/shop/orders/{order_id}$"))
    assert "client_secret" not in shop.page.url
    expect(shop.page.get_by_test_id("order-status")).not_to_have_text("待支付", timeout=30_000)
    assert shop.order(user, order_id)["status"] != "pending_payment"


def test_declined_card_shows_the_banks_message_and_leaves_the_order_unpaid(shop: Shop) -> None:
    user, order_id = open_payment(shop)
    fill_card(shop, CARD_DECLINED)
    shop.page.get_by_role("button", name="用银行卡支付").click()
    expect(shop.page.get_by_test_id("pay-error")).to_contain_text("declined")
    shop.screenshot("pay-declined-zh-CN")
    assert shop.order(user, order_id)["status"] == "pending_payment"


def test_saved_card_pays_the_next_order_in_one_click_and_can_be_deleted(shop: Shop) -> None:
    user, first = open_payment(shop)
    fill_card(shop, CARD_OK)
    shop.page.get_by_label("保存此卡以便下次快捷支付").check()
    shop.page.get_by_role("button", name="用银行卡支付").click()
    expect_paid(shop, user, first)

    second = shop.place_order_by_api(user)
    shop.open(f"orders/{second}/pay")
    shop.page.get_by_role("button", name=re.compile(r"快捷支付")).click()
    expect_paid(shop, user, second)

    shop.open("account")
    cards = shop.page.get_by_test_id("saved-cards")
    expect(cards).to_contain_text("4242")
    shop.page.get_by_role("button", name=re.compile(r"删除 .* 4242")).click()
    expect(cards).not_to_contain_text("4242")
