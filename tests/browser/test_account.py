"""Orders and the account in the browser: the list, cancelling, and the address book."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user
from tests.browser.test_shop_payments import sign_in

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def test_an_undeliverable_email_is_shown_and_confirming_it_with_a_code_clears_it(
    shop: Shop,
) -> None:
    user = new_user()
    address = f"{user}@example.com"
    sign_in(shop, user)
    headers = shop.stack.auth(user, "customers")
    profile = {"email": address, "phone": None, "locale": "zh-CN", "name": "王芳"}
    put = requests.put(shop.stack.url("/me"), json=profile, headers=headers, timeout=10)
    assert put.status_code == 200, put.text
    # What SES would publish when the shopper marks our email as spam (make email-feedback).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.email_feedback",
            *("--port", str(shop.stack.port), "--state-dir", str(shop.stack.stack_file.parent)),
            *(address, "--kind", "complaint"),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert me(shop, user)["email_status"] == "undeliverable"

    shop.open("account")
    check = shop.page.get_by_test_id("email-check")
    expect(check).to_contain_text(f"您曾将我们发往 {address} 的邮件标记为垃圾邮件")
    shop.screenshot("account-email-complained-zh-CN")
    check.get_by_role("button", name="发送验证码").click()
    code = check.get_by_label(f"发送到 {address} 的 6 位验证码")
    expect(code).to_be_visible()
    code.fill(last_code_sent_to(shop, address))
    check.get_by_role("button", name="确认邮箱").click()

    expect(check).to_have_count(0)
    assert me(shop, user)["email_status"] == "verified"
    assert me(shop, user)["email_undeliverable_reason"] is None


def me(shop: Shop, user: str) -> dict[str, Any]:
    headers = shop.stack.auth(user, "customers")
    answer = requests.get(shop.stack.url("/me"), headers=headers, timeout=10)
    return dict(answer.json())


def last_code_sent_to(shop: Shop, address: str) -> str:
    sent = requests.get(f"{shop.stack.moto_url}/_emulator/sent-messages", timeout=10).json()
    bodies = [m["body"] for m in sent["messages"] if address in m["to"]]
    assert bodies, sent
    match = re.search(r"\b(\d{6})\b", bodies[-1])
    assert match, bodies[-1]
    return match.group(1)
