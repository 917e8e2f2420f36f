"""The help panel in the browser: from an order page a shopper asks where the order is and
reads the assistant's answer from live tracking; a support reply sent over the API arrives
on their open socket, shown as text; the photo they attached shows in their message."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import Shop, new_user
from tests.browser.test_pages import serious_violations
from tests.support_world import shipped_order

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackUnderTest

# A 1×1 PNG, as a shopper's photo.
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WORDS = {
    "zh-CN": {
        "sign_in": "登录",
        "ask": "咨询这个订单",
        "question_label": "您的问题",
        "question": "我的订单到哪了",
        "photo": "照片（可选，最多 6 张）",
        "send": "发送",
        "live": "实时连接",
        "answer": ("SF1234567890", "杭州", "已发货"),
        "reply": "您好，我是客服小王：包裹明天送到。<b>谢谢</b>",
        "waiting": "待您回复",
        "agent": "客服",
    },
    "en": {
        "sign_in": "Sign in",
        "ask": "Ask about this order",
        "question_label": "Your question",
        "question": "Where is my order?",
        "photo": "Photos (optional, up to 6)",
        "send": "Send",
        "live": "Live",
        "answer": ("SF1234567890", "shunfeng", "Hello, this is the automated assistant"),
        "reply": "Hello, this is Wang from support: it arrives tomorrow. <b>Thanks</b>",
        "waiting": "Waiting for you",
        "agent": "Support",
    },
}


@pytest.fixture
def stack_store(shop_stack: LocalStackUnderTest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with shop_stack.store_in_this_process(monkeypatch):
        yield


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_asking_from_the_order_page_gets_the_live_answer_and_a_support_reply_arrives_live(
    shop: Shop, stack_store: None, lang: str
) -> None:
    words = WORDS[lang]
    page = shop.page
    user = new_user()
    shop.set_language(lang)
    shop.open()
    page.get_by_role("button", name=words["sign_in"], exact=True).click()
    shop.sign_in_on_provider_page(user)
    order_id = shipped_order(f"ord_01JBROWSERHELP{uuid.uuid4().hex[:12].upper()}", owner=user)

    shop.open(f"orders/{order_id}")
    page.get_by_role("button", name=words["ask"]).click()
    panel = page.get_by_test_id("help-panel")
    expect(panel.locator("#help-order")).to_have_value(order_id)
    panel.get_by_label(words["question_label"]).fill(words["question"])
    panel.get_by_label(words["photo"]).set_input_files(
        {"name": "parcel.png", "mimeType": "image/png", "buffer": PHOTO}
    )
    panel.get_by_role("button", name=words["send"], exact=True).click()

    thread = panel.get_by_test_id("help-messages")
    answer = thread.locator("[data-author=assistant]")
    for fact in words["answer"]:
        expect(answer).to_contain_text(fact)
    mine = thread.locator("[data-author=customer]")
    expect(mine).to_contain_text(words["question"])
    expect(mine.locator("img")).to_have_count(1)

    [conversation] = requests.get(
        shop.stack.url("/support/conversations"),
        headers=shop.stack.auth(user, "customers"),
        timeout=10,
    ).json()["items"]
    assert conversation["order_id"] == order_id
    stored = requests.get(
        shop.stack.url(f"/support/conversations/{conversation['conversation_id']}"),
        headers=shop.stack.auth("agent-browser", "support"),
        timeout=10,
    ).json()
    assert len(stored["messages"][0]["photos"]) == 1

    # With the socket open the panel does not poll: the reply can only come as a push.
    expect(panel.get_by_text(words["live"], exact=True)).to_be_visible()
    reply = requests.post(
        shop.stack.url(f"/support/conversations/{conversation['conversation_id']}/messages"),
        headers=shop.stack.auth("agent-browser", "support"),
        json={"body": words["reply"]},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    from_agent = thread.locator("[data-author=agent]")
    expect(from_agent).to_contain_text(words["reply"], timeout=3_000)
    expect(from_agent).to_contain_text(words["agent"])
    expect(from_agent.locator("b")).to_have_count(0)  # shown as text, not as markup
    expect(panel.get_by_test_id("help-status")).to_have_text(words["waiting"], timeout=3_000)
    shop.screenshot(f"support-{lang}")
    assert serious_violations(page) == []


def test_without_a_socket_the_panel_polls_and_the_shopper_replies_and_rates(shop: Shop) -> None:
    page = shop.page
    page.add_init_script("delete window.WebSocket")  # a browser (or network) without sockets
    user = new_user()
    shop.open()
    page.get_by_role("button", name="登录", exact=True).click()
    shop.sign_in_on_provider_page(user)

    page.get_by_role("button", name="客服", exact=True).click()
    panel = page.get_by_test_id("help-panel")
    panel.get_by_role("button", name="咨询新问题").click()
    expect(panel.locator("#help-order")).to_have_value("")
    panel.get_by_label("主题（可选）").fill("想找人工")
    panel.get_by_label("您的问题").fill("转人工")
    panel.get_by_role("button", name="发送", exact=True).click()
    thread = panel.get_by_test_id("help-messages")
    expect(thread.locator("[data-author=assistant]")).to_be_visible()
    expect(panel.get_by_text("自动刷新", exact=True)).to_be_visible()
    expect(panel.get_by_test_id("help-status")).to_have_text("处理中")
    expect(panel.get_by_test_id("help-due")).to_contain_text("已转人工客服")

    [conversation] = requests.get(
        shop.stack.url("/support/conversations"),
        headers=shop.stack.auth(user, "customers"),
        timeout=10,
    ).json()["items"]
    path = f"/support/conversations/{conversation['conversation_id']}"
    agent = shop.stack.auth("agent-browser", "support")
    sent = requests.post(
        shop.stack.url(f"{path}/messages"),
        headers=agent,
        json={"body": "您好，请问有什么可以帮您？"},
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    expect(thread.locator("[data-author=agent]")).to_contain_text("有什么可以帮您", timeout=10_000)
    expect(panel.get_by_test_id("help-status")).to_have_text("待您回复")

    panel.get_by_label("回复").fill("已经好了，谢谢")
    panel.get_by_role("button", name="发送", exact=True).click()
    expect(thread.locator("[data-author=customer]").last).to_contain_text("已经好了，谢谢")
    expect(panel.get_by_test_id("help-status")).to_have_text("处理中")

    assert requests.post(shop.stack.url(f"{path}/resolve"), headers=agent, timeout=10).ok
    expect(panel.get_by_test_id("help-status")).to_have_text("已解决", timeout=10_000)
    panel.get_by_label("为这次服务打分").select_option("4")
    panel.get_by_role("button", name="提交评分").click()
    expect(panel.get_by_text("您的评分：4 星，谢谢！")).to_be_visible()
    rated = requests.get(shop.stack.url(path), headers=agent, timeout=10).json()
    assert rated["rating"] == 4 and rated["status"] == "resolved"

    panel.get_by_role("button", name="我的会话").click()
    expect(panel.get_by_role("list", name="我的会话")).to_contain_text("想找人工")
    expect(panel.get_by_role("list", name="我的会话")).to_contain_text("已解决")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)


def test_signed_out_the_panel_asks_to_sign_in_and_fits_a_phone(phone_shop: Shop) -> None:
    page = phone_shop.page
    phone_shop.open("products/EL-EARBUDS-PRO")
    page.get_by_role("button", name="客服", exact=True).click()
    panel = page.get_by_test_id("help-panel")
    expect(panel).to_contain_text("登录后即可联系客服")
    expect(panel.get_by_role("heading", name="在线客服")).to_be_focused()
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    phone_shop.screenshot("support-phone-zh-CN")
    page.get_by_role("button", name="关闭").click()
    expect(panel).to_have_count(0)
