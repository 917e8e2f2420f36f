"""Reviews in the browser: a buyer whose parcel was delivered writes a review from the order
page (with a photo), and the product page shows it at once with the new rating; another
shopper finds it helpful."""

from __future__ import annotations

import re
import struct
import uuid
import zlib

import requests
from playwright.sync_api import expect

from tests.browser.conftest import ADDRESS, PHONE, Shop, new_user
from tests.browser.test_pages import serious_violations
from tests.browser.test_shop_payments import sign_in
from tests.e2e.conftest import LocalStackUnderTest
from tests.e2e.test_fulfilment_e2e import eventually

WAREHOUSE = "wh-sha"  # nearest to the Shanghai address, shipped by the warehouse simulator
NAME = {"zh-CN": "评价测试保温杯", "en": "Review test flask"}
BODY = "保温效果很好，一整天都是热的。<b>不加粗</b> https://example.com/x"
PHONE_WIDTH = PHONE["width"]


def a_product(stack: LocalStackUnderTest, name: dict[str, str] = NAME) -> str:
    """A product of its own, so its rating starts from nothing."""
    ops = stack.auth("ops-browser-reviews", "ops")
    sku = f"REV-{uuid.uuid4().hex[:10].upper()}"
    product = {"name": name, "category": "home", "price": {"amount": 8900, "currency": "CNY"}}
    put = requests.put(stack.url(f"/products/{sku}"), json=product, headers=ops, timeout=30)
    assert put.status_code == 201, put.text
    received = requests.post(
        stack.url(f"/stock/{sku}/{WAREHOUSE}/receive"),
        json={"quantity": 5},
        headers=ops,
        timeout=30,
    )
    assert received.status_code == 201, received.text
    return sku


def a_delivered_order(shop: Shop, user: str, sku: str) -> str:
    """Placed and paid over the API; the warehouse and the carrier emulators deliver it."""
    order_id = shop.place_order_by_api(user, sku)
    pay_and_wait_for_delivery(shop, user, order_id)
    return order_id


def pay_and_wait_for_delivery(shop: Shop, user: str, order_id: str) -> None:
    stack = shop.stack
    paid = requests.post(
        stack.url(f"/orders/{order_id}/payments"),
        json={"method": "card", "payment_method": "pm_card_visa"},
        headers={**stack.auth(user, "customers"), "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded", paid.text
    eventually(
        lambda: shop.order(user, order_id)["status"] == "delivered",
        timeout=120,
        what="the order delivered",
    )


def png(width: int = 24, height: int = 16) -> bytes:
    """A small orange picture."""
    rows = b"".join(b"\x00" + b"\xe0\x80\x20" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_buyer_reviews_a_delivered_line_and_the_product_page_shows_it(shop: Shop) -> None:
    sku = a_product(shop.stack)
    buyer = new_user()
    order_id = a_delivered_order(shop, buyer, sku)
    page = shop.page

    sign_in(shop, buyer)
    shop.open(f"orders/{order_id}")
    expect(page.get_by_test_id("order-status")).to_contain_text("已送达")
    shop.screenshot("review-order-zh-CN")
    page.get_by_role("link", name="写评价").click()
    page.wait_for_url(re.compile(rf"/shop/orders/{order_id}/review\?sku={sku}$"))
    expect(page.get_by_test_id("review-line")).to_contain_text(NAME["zh-CN"])

    # The page's own checks speak first: no stars and too short a text are refused here.
    page.get_by_label("评价内容").fill("太短")
    page.get_by_role("button", name="发布评价").click()
    expect(page.get_by_text("请选择 1 到 5 星。")).to_be_visible()
    expect(page.get_by_text("评价内容至少 10 字。")).to_be_visible()

    stars = page.get_by_role("radiogroup", name="评分")
    stars.locator("label", has_text="4 星").click()
    expect(stars.get_by_role("radio", name="4 星")).to_be_checked()
    page.get_by_label("标题（可选）").fill("一整天都热")
    page.get_by_label("评价内容").fill(BODY)
    page.get_by_label(re.compile("^图片")).set_input_files(
        {"name": "flask.png", "mimeType": "image/png", "buffer": png()}
    )
    expect(page.get_by_text("已上传")).to_be_visible()
    shop.screenshot("review-write-zh-CN")
    problems = [f"write [zh-CN]: {v}" for v in serious_violations(page)]
    page.get_by_role("button", name="发布评价").click()
    expect(page.get_by_test_id("review-saved")).to_contain_text("评价已发布")
    assert shop.order(buyer, order_id)["status"] == "delivered"

    page.get_by_role("link", name="查看商品评价").click()
    page.wait_for_url(re.compile(rf"/shop/products/{sku}$"))
    expect(page.get_by_test_id("rating-average")).to_have_text("4.0")
    expect(page.get_by_test_id("rating-count")).to_have_text("1 条评价")
    review = page.get_by_test_id("review")
    expect(review).to_have_count(1)
    expect(review).to_contain_text("一整天都热")
    # Shown as text: the markup is visible as typed, and the address is not a link.
    expect(review).to_contain_text("<b>不加粗</b> https://example.com/x")
    assert review.locator("b").count() == 0
    assert review.get_by_role("link", name=re.compile("example")).count() == 0
    photo = review.get_by_role("img", name="评价图片 1")
    expect(photo).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 24", arg=photo.element_handle()
    )
    expect(review).to_contain_text("这是你的评价")
    assert review.get_by_role("button", name=re.compile("有用")).count() == 0
    shop.screenshot("review-product-zh-CN")
    problems += [f"product [zh-CN]: {v}" for v in serious_violations(page)]

    # The server's rating says the same.
    rating = requests.get(shop.stack.url(f"/products/{sku}"), timeout=10).json()["rating"]
    assert rating["count"] == 1 and rating["average"] == 4.0
    assert rating["histogram"]["4"] == 1

    # In English, the same page and the write page (now editing the review written).
    page.get_by_role("button", name="切换到英文").click()
    expect(page.get_by_test_id("rating-count")).to_have_text("1 review")
    expect(page.get_by_role("heading", name="Reviews")).to_be_visible()
    shop.screenshot("review-product-en")
    page.get_by_role("link", name="Edit your review").click()
    expect(page.get_by_test_id("edit-note")).to_contain_text("You reviewed this already")
    expect(page.get_by_label("Your review")).to_have_value(BODY)
    shop.screenshot("review-edit-en")
    problems += [f"edit [en]: {v}" for v in serious_violations(page)]
    assert not problems, "\n".join(problems)


def test_another_shopper_sorts_filters_and_finds_a_review_helpful_once(shop: Shop) -> None:
    stack = shop.stack
    sku = a_product(stack)
    written = {}
    for stars, body in ((2, "盖子有点漏水，其他还行。"), (5, "非常好用，推荐购买！")):
        buyer = new_user()
        order_id = a_delivered_order(shop, buyer, sku)
        answer = requests.post(
            stack.url(f"/products/{sku}/reviews"),
            json={"order_id": order_id, "rating": stars, "body": body},
            headers=stack.auth(buyer, "customers"),
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        written[stars] = answer.json()["review_id"]

    replied = requests.post(
        stack.url(f"/reviews/{written[2]}/reply"),
        json={"body": "很抱歉！我们已为您补发新的盖子。"},
        headers=stack.auth("support-browser-reviews", "support"),
        timeout=30,
    )
    assert replied.status_code == 200, replied.text

    sign_in(shop, new_user())
    shop.open(f"products/{sku}")
    page = shop.page
    reviews = page.get_by_test_id("review")
    expect(page.get_by_test_id("rating-average")).to_have_text("3.5")
    expect(reviews).to_have_count(2)
    expect(reviews.first).to_contain_text("非常好用")  # the most recent first
    page.get_by_label("排序").select_option(label="评分从低到高")
    expect(reviews.first).to_contain_text("盖子有点漏水")
    expect(reviews.first.get_by_test_id("review-reply")).to_contain_text("商家回复")
    expect(reviews.first.get_by_test_id("review-reply")).to_contain_text("补发新的盖子")
    page.get_by_label("星级", exact=True).select_option(label="5 星")
    expect(reviews).to_have_count(1)
    expect(reviews).to_contain_text("非常好用")
    page.get_by_label("星级", exact=True).select_option(label="全部")
    expect(reviews).to_have_count(2)
    # A histogram row filters too, and pressing it again shows all.
    row = page.get_by_role("button", name="2 星：1 条，只看这些")
    row.click()
    expect(reviews).to_have_count(1)
    expect(reviews).to_contain_text("盖子有点漏水")
    row.click()
    expect(reviews).to_have_count(2)

    low = reviews.filter(has_text="盖子有点漏水")
    low.get_by_role("button", name="有用（0）").click()
    expect(low.get_by_role("button", name="已觉得有用（1）")).to_be_disabled()
    page.reload()
    expect(low.get_by_role("button", name="已觉得有用（1）")).to_be_disabled()

    listed = requests.get(stack.url(f"/products/{sku}/reviews?sort=helpful"), timeout=10).json()
    shop.screenshot("review-sorted-zh-CN")
    assert [(r["review_id"], r["helpful"]) for r in listed["items"]] == [
        (written[2], 1),
        (written[5], 0),
    ]


def test_the_sixth_review_of_a_day_is_refused_with_a_clear_message_on_a_phone(
    phone_shop: Shop,
) -> None:
    shop = phone_shop
    stack = shop.stack
    word = f"flask{uuid.uuid4().hex[:8]}"
    skus = [a_product(stack, {"zh-CN": f"保温杯 {word}", "en": f"Flask {word}"})]
    skus += [a_product(stack) for _ in range(5)]
    buyer = new_user()
    headers = stack.auth(buyer, "customers")
    placed = requests.post(
        stack.url("/orders"),
        json={"lines": [{"sku": s, "quantity": 1} for s in skus], "shipping_address": ADDRESS},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    pay_and_wait_for_delivery(shop, buyer, order_id)
    for sku in skus[:5]:
        body = {"order_id": order_id, "rating": 5, "body": "Five reviews in one day."}
        written = requests.post(
            stack.url(f"/products/{sku}/reviews"), json=body, headers=headers, timeout=30
        )
        assert written.status_code == 201, written.text

    sign_in(shop, buyer)
    page = shop.page
    # Without a SKU (the delivered message's SMS link), the page lists the order's lines.
    shop.open(f"orders/{order_id}/review")
    links = page.get_by_role("link", name=re.compile("^写评价"))
    expect(links).to_have_count(6)
    page.locator(f'a[href$="sku={skus[5]}"]').click()
    page.wait_for_url(re.compile(rf"review\?sku={skus[5]}$"))
    stars = page.get_by_role("radiogroup", name="评分")
    stars.locator("label", has_text="1 星").click()
    page.get_by_label("评价内容").fill("第六条评价，今天发不出去。")
    page.get_by_role("button", name="发布评价").click()
    expect(page.get_by_test_id("review-refusal")).to_have_text(
        "每天最多发布 5 条评价，请明天再来。"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shop.screenshot("review-refused-phone-zh-CN")
    rating = requests.get(stack.url(f"/products/{skus[5]}"), timeout=10).json()["rating"]
    assert rating["count"] == 0

    # Lists show the average compactly.
    shop.open(f"search?q={word}")
    tile = page.get_by_role("link", name=re.compile(word))
    expect(tile.get_by_role("img", name="5 星（满分 5 星）")).to_be_visible()
    shop.screenshot("review-list-phone-zh-CN")

    shop.open(f"products/{skus[0]}")
    expect(page.get_by_test_id("rating-average")).to_have_text("5.0")
    expect(page.get_by_test_id("review")).to_contain_text("Five reviews in one day.")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shop.screenshot("review-product-phone-zh-CN")
