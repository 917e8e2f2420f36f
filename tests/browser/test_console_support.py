"""Support conversations and review moderation in the console, in Chromium against the shared
local stack: an agent answers a customer who asked for a person; support reply to a review and
ops hide it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import Console
from tests.browser.test_console import (
    OPS,
    OPS_USER,
    SUPPORT_USER,
    call,
    eventually,
    new_product,
    paid_order,
)
from tests.e2e.conftest import LocalStackUnderTest

GREETING = {
    "zh-CN": "您好，我是客服，马上为您查看。",
    "en": "Hello, this is support; I am looking into it now.",
}


def conversation(stack: LocalStackUnderTest, customer: str, conversation_id: str) -> Any:
    return call(stack, "GET", f"/support/conversations/{conversation_id}", (customer, "customers"))


def test_an_agent_answers_and_resolves_a_conversation_where_the_customer_asked_for_a_person(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    stack = console.stack
    customer = f"shopper-{uuid.uuid4().hex[:8]}"
    shopper = (customer, "customers")
    subject = f"包裹 {uuid.uuid4().hex[:6]} <b>没到</b>"
    started = call(
        stack,
        "POST",
        "/support/conversations",
        shopper,
        {"subject": subject, "message": "转人工 <script>alert(1)</script>"},
    )
    conversation_id = started["conversation_id"]
    assert started["status"] == "open" and started["first_response_due_at"]
    call(stack, "PUT", "/support/canned-replies/console-greeting", OPS, GREETING)

    console.sign_in(SUPPORT_USER)
    page = console.page
    expect(page.get_by_role("heading", level=1)).to_have_text("客服会话")
    row = page.locator(f"tr[data-conversation='{conversation_id}']")
    expect(row).to_contain_text("待客服处理")
    expect(row).to_contain_text("要求人工客服")  # the intent the assistant handed over
    row.get_by_role("link", name=subject).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(subject)  # text, not markup
    customer_message = page.locator("li[data-author=customer]")
    expect(customer_message).to_contain_text("转人工 <script>alert(1)</script>")
    expect(page.locator("li[data-author=assistant]")).to_have_count(1)
    expect(page.locator("[data-field=intent]")).to_have_text("要求人工客服")
    page.get_by_role("button", name="分配给我").click()
    expect(page.locator("[data-field=assigned]")).to_have_text("我")
    page.get_by_label("快捷回复").select_option("console-greeting")
    page.get_by_role("button", name="插入").click()
    reply = page.get_by_label("回复内容（以纯文本发送）")
    expect(reply).to_have_value(GREETING["zh-CN"])
    reply.press("End")
    reply.type(" 请稍等。")
    page.get_by_role("button", name="发送").click()
    expect(page.locator("li[data-author=agent]")).to_contain_text(GREETING["zh-CN"] + " 请稍等。")
    expect(page.locator("[data-field=status]")).to_have_text("待顾客回复")
    console.screenshot("conversation-zh-CN")

    read = conversation(stack, customer, conversation_id)
    assert read["status"] == "waiting_on_customer"
    assert read["assigned_to"] == SUPPORT_USER
    agent = [m for m in read["messages"] if m["author"] == "agent"]
    assert [(m["author_id"], m["body"]) for m in agent] == [
        (SUPPORT_USER, GREETING["zh-CN"] + " 请稍等。")
    ]

    # The customer writes back: the assigned agent sees it without reloading.
    call(
        stack,
        "POST",
        f"/support/conversations/{conversation_id}/messages",
        shopper,
        {"body": "好的，谢谢"},
    )
    expect(customer_message).to_have_count(2)
    expect(customer_message.nth(1)).to_contain_text("好的，谢谢")
    expect(page.locator("[data-field=status]")).to_have_text("待客服处理")

    page.get_by_role("button", name="标记已解决").click()
    expect(page.locator("[data-field=status]")).to_have_text("已解决")
    read = conversation(stack, customer, conversation_id)
    assert read["status"] == "resolved"
    assert [m["author"] for m in read["messages"]] == ["customer", "assistant", "agent", "customer"]

    page.get_by_role("button", name="English").click()
    expect(page.locator("[data-field=status]")).to_have_text("Resolved")
    expect(page.get_by_role("heading", name="Handed over by the assistant")).to_be_visible()
    console.screenshot("conversation-en")

    # The queue's filters: the resolved conversation is among this agent's resolved ones.
    page.get_by_role("link", name="← Back to the queue").click()
    page.get_by_label("Status").select_option("resolved")
    page.get_by_label("Assigned to").select_option("me")
    expect(page.locator(f"tr[data-conversation='{conversation_id}']")).to_contain_text("Resolved")
    page.get_by_label("Overdue only").check()
    expect(page.locator(f"tr[data-conversation='{conversation_id}']")).to_have_count(0)
    console.screenshot("conversations-en")


def rating(stack: LocalStackUnderTest, sku: str) -> dict[str, Any]:
    return dict(requests.get(stack.url(f"/products/{sku}"), timeout=10).json()["rating"])


def delivered_order(stack: LocalStackUnderTest, customer: str, sku: str) -> str:
    order_id = paid_order(stack, customer, sku)
    carrier = stack.data["emulators"]["carrier"]

    def delivered() -> bool:
        status = call(stack, "GET", f"/orders/{order_id}", (customer, "customers"))["status"]
        if status in ("shipped", "out_for_delivery"):
            requests.post(f"{carrier}/_emulator/fast-forward", timeout=60)
        return bool(status == "delivered")

    eventually(delivered, "the parcel delivered", timeout=120)
    return order_id


def test_support_reply_to_a_review_and_ops_hide_it_out_of_the_products_rating(
    new_console: Callable[[], Console],
) -> None:
    console = new_console()
    stack = console.stack
    sku = new_product(stack, "CON-REV")
    call(stack, "POST", f"/stock/{sku}/wh-sha/receive", OPS, {"quantity": 5})
    customer = f"shopper-{uuid.uuid4().hex[:8]}"
    order_id = delivered_order(stack, customer, sku)
    review = call(
        stack,
        "POST",
        f"/products/{sku}/reviews",
        (customer, "customers"),
        {"order_id": order_id, "rating": 1, "body": "垃圾产品，快去 http://spam.example 买别的"},
    )
    assert rating(stack, sku)["count"] == 1
    selector = f"article[data-review='{review['review_id']}']"

    # Support cannot moderate, but look the SKU up and reply.
    agent = new_console()
    agent.sign_in(SUPPORT_USER)
    agent.page.get_by_role("link", name="商品评价").click()
    agent.page.get_by_label("SKU").fill(sku)
    agent.page.get_by_role("button", name="搜索").click()
    answer = agent.page.locator(selector)
    expect(answer).to_contain_text("快去 http://spam.example 买别的")
    expect(answer.get_by_role("link")).to_have_count(0)  # the link in the text stays text
    expect(answer.get_by_role("button", name="隐藏")).to_have_count(0)
    answer.get_by_label("回复顾客").fill("很抱歉给您带来不便，客服会联系您。")
    answer.get_by_role("button", name="保存回复").click()
    expect(answer.locator("blockquote")).to_contain_text("很抱歉给您带来不便")
    replied = requests.get(stack.url(f"/products/{sku}/reviews"), timeout=10).json()["items"]
    assert replied[0]["reply"]["body"] == "很抱歉给您带来不便，客服会联系您。"

    console.sign_in(OPS_USER)
    page = console.page
    console.open(f"reviews?sku={sku}")
    expect(page.locator("[data-field=count]")).to_have_text("1")
    card = page.locator(selector)
    expect(card.locator("blockquote")).to_contain_text("很抱歉给您带来不便")
    console.screenshot("reviews-zh-CN")
    card.get_by_label("隐藏原因").fill("含广告链接")
    card.get_by_role("button", name="隐藏").click()
    expect(card).to_have_count(0)  # out of the published list
    expect(page.locator("[data-field=count]")).to_have_text("0")
    assert rating(stack, sku) == {
        "average": None,
        "count": 0,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
    }
    public = requests.get(stack.url(f"/products/{sku}/reviews"), timeout=10).json()
    assert public["items"] == []

    page.get_by_role("button", name="English").click()
    page.get_by_role("button", name="Hidden", exact=True).click()
    expect(card).to_contain_text("含广告链接")
    console.screenshot("reviews-hidden-en")
    card.get_by_role("button", name="Publish again").click()
    expect(card).to_have_count(0)
    eventually(lambda: rating(stack, sku)["count"] == 1, "the review back in the rating", 10)
