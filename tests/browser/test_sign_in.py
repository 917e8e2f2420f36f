"""Signing in and out of the shop: tokens stay out of URLs, refresh early, and go on sign-out."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user

TOKENS = "JSON.parse(sessionStorage.getItem('orderdesk.tokens') || 'null')"


def test_tokens_are_refreshed_before_they_expire(shop: Shop) -> None:
    shop.open()
    shop.page.get_by_role("button", name="登录").click()
    shop.sign_in_on_provider_page(new_user())
    expect(shop.page.get_by_role("button", name="退出登录")).to_be_visible()
    assert "code=" not in shop.page.url and "token" not in shop.page.url
    before = shop.page.evaluate(TOKENS)
    assert before["access_token"] and before["refresh_token"]
    assert shop.page.evaluate("localStorage.getItem('orderdesk.tokens')") is None

    # The access token now expires in 20 s: the next API call refreshes it first.
    soon = int(time.time()) + 20
    shop.page.evaluate(
        "soon => { const t = JSON.parse(sessionStorage.getItem('orderdesk.tokens'));"
        " t.expires_at = soon; sessionStorage.setItem('orderdesk.tokens', JSON.stringify(t)); }",
        soon,
    )
    shop.open("orders")
    expect(shop.page.get_by_role("heading", name="我的订单")).to_be_visible()
    shop.page.wait_for_function(f"{TOKENS}.expires_at > {soon + 600}")
    after = shop.page.evaluate(TOKENS)
    assert after["access_token"] != before["access_token"]
    expect(shop.page.get_by_text("还没有订单。")).to_be_visible()


def test_signing_out_forgets_the_tokens_and_ends_the_providers_session(shop: Shop) -> None:
    shop.open()
    shop.page.get_by_role("button", name="登录").click()
    shop.sign_in_on_provider_page(new_user())
    shop.page.get_by_role("button", name="退出登录").click()
    shop.page.wait_for_url(re.compile(r"/shop/$"))
    expect(shop.page.get_by_role("button", name="登录")).to_be_visible()
    assert shop.page.evaluate(TOKENS) is None
    # The provider asks again: its session ended too.
    shop.page.get_by_role("button", name="登录").click()
    expect(shop.page.locator("#new_username")).to_be_visible()
