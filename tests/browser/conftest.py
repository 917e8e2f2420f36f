"""Browser tests: the storefront in Debian's Chromium (headless), against one local stack.

The stack starts once per session as the e2e tests start theirs (free ports, its own process
group, stopped whatever happens), with the warehouse simulator and the carrier quick so an
order moves from paid to shipped within seconds. Each test gets a fresh browser context
(its own storage: cart, language, tokens) and can sign in as a new user through the local
identity provider's hosted sign-in page, as a shopper would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStackUnderTest, running_stack

playwright_api = pytest.importorskip("playwright.sync_api")

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
EXPECT_TIMEOUT_MS = 15_000
MANUAL_WAREHOUSE = "wh-console-test"


@pytest.fixture(scope="session")
def shop_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackUnderTest]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (make install puts Debian's there)")
    options = (
        "--workers",
        "3",
        # The warehouse picks, packs and ships within seconds; the carrier follows.
        "--warehouse-delay",
        "0.5",
        "--carrier-step",
        "1",
        # The console's warehouse screen is tested on a warehouse left to people.
        "--manual-warehouse",
        MANUAL_WAREHOUSE,
    )
    with running_stack(tmp_path_factory.mktemp("shop-stack"), *options) as started:
        yield started


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


class AppTab:
    """A browser tab on one of the web apps (``app``: its path), collecting page errors."""

    app = ""
    screenshot_prefix = ""

    def __init__(self, stack: LocalStackUnderTest, page: Any) -> None:
        self.stack = stack
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @property
    def url(self) -> str:
        return f"{self.stack.api_url}/{self.app}/"

    def open(self, path: str = "") -> None:
        self.page.goto(self.url + path.lstrip("/"))
        self.page.locator("main").wait_for()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.screenshot_prefix}{name}.png"
        self.page.screenshot(path=str(path), full_page=True)


class Shop(AppTab):
    """One shopper's browser tab on the shop, with the steps the tests share."""

    app = "shop"

    def set_language(self, lang: str) -> None:
        """Start in ``lang`` (as if chosen before), without clicking the switch."""
        self.page.add_init_script(f"localStorage.setItem('orderdesk.lang', '{lang}')")

    def sign_in_on_provider_page(self, user_id: str) -> None:
        """On the identity provider's page: sign in as a new user id, back to the shop."""
        self.page.locator("#new_username").fill(user_id)
        self.page.get_by_role("button", name="继续 / Continue").click()
        self.page.wait_for_url(f"{self.url}**")

    def seed_cart(self, *lines: tuple[str, int]) -> None:
        items = []
        for sku, quantity in lines:
            product = requests.get(self.stack.url(f"/products/{sku}"), timeout=10).json()
            items.append(
                {
                    "sku": sku,
                    "name": product["name"],
                    "price": product["price"],
                    "quantity": quantity,
                    "max": product["availability"]["available"],
                }
            )
        self.page.evaluate(
            "items => localStorage.setItem('orderdesk.cart', JSON.stringify(items))", items
        )

    def place_order_by_api(self, user_id: str, sku: str = "EL-EARBUDS-PRO") -> str:
        """An order for ``user_id`` placed over the API (to reach the payment page quickly)."""
        answer = requests.post(
            self.stack.url("/orders"),
            headers={**self.stack.auth(user_id, "customers"), "Idempotency-Key": uuid.uuid4().hex},
            json={"lines": [{"sku": sku, "quantity": 1}], "shipping_address": ADDRESS},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["order_id"])

    def order(self, user_id: str, order_id: str) -> dict[str, Any]:
        answer = requests.get(
            self.stack.url(f"/orders/{order_id}"),
            headers=self.stack.auth(user_id, "customers"),
            timeout=10,
        )
        return dict(answer.json())

    def payments(self, user_id: str, order_id: str) -> list[dict[str, Any]]:
        answer = requests.get(
            self.stack.url(f"/orders/{order_id}/payments"),
            headers=self.stack.auth(user_id, "customers"),
            timeout=10,
        )
        return list(answer.json()["items"])


ADDRESS = {
    "name": "爱丽丝",
    "phone": "+8613800000001",
    "country": "CN",
    "region": "上海",
    "city": "上海市",
    "line1": "南京东路 1 号",
    "postcode": "200001",
}


def new_user() -> str:
    return f"shopper-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shop(shop_stack: LocalStackUnderTest, browser: Any) -> Iterator[Shop]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    playwright_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    page = context.new_page()
    shop = Shop(shop_stack, page)
    yield shop
    context.close()
    assert not shop.errors, f"errors on the page: {shop.errors}"


@pytest.fixture
def phone_shop(shop_stack: LocalStackUnderTest, browser: Any) -> Iterator[Shop]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    shop = Shop(shop_stack, page)
    yield shop
    context.close()
    assert not shop.errors, f"errors on the page: {shop.errors}"


# --- the staff console ------------------------------------------------------------------------

CONSOLE_WORDS = {
    "zh-CN": {"sign_in": "登录", "staff_only": "控制台仅供员工使用"},
    "en": {"sign_in": "Sign in", "staff_only": "This console is for staff"},
}


class Console(AppTab):
    """One staff member's tab on the console."""

    app = "console"
    screenshot_prefix = "console-"

    def sign_in(self, user_id: str, lang: str = "zh-CN", *, new: bool = False) -> None:
        self.page.add_init_script(f"localStorage.setItem('orderdesk.lang', '{lang}')")
        self.open()
        self.page.get_by_role("button", name=CONSOLE_WORDS[lang]["sign_in"], exact=True).click()
        if new:
            self.page.locator("#new_username").fill(user_id)
            self.page.get_by_role("button", name="继续 / Continue").click()
        else:
            self.page.locator(f"button[name=username][value='{user_id}']").click()
        # Signed in once the callback has traded the code for tokens and moved on.
        self.page.wait_for_url(lambda url: url.startswith(self.url) and "callback" not in url)
        self.page.locator("main h1").first.wait_for()


@pytest.fixture
def new_console(shop_stack: LocalStackUnderTest, browser: Any) -> Iterator[Callable[[], Console]]:
    contexts: list[tuple[Any, Console]] = []

    def make() -> Console:
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        console = Console(shop_stack, context.new_page())
        contexts.append((context, console))
        return console

    playwright_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield make
    for context, console in contexts:
        context.close()
        assert not console.errors, f"errors on the page: {console.errors}"
