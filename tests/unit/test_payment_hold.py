"""A pending payment extends the order's hold on its stock, within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.services.payments import hold_until
from chalicelib.settings import get_settings

PLACED = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hold_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PAYMENT_HOLD_SECONDS", "1800")
    monkeypatch.setenv("MAX_ORDER_HOLD_SECONDS", "3600")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def an_order(expires_in: timedelta = timedelta(minutes=15)) -> Any:
    return SimpleNamespace(created_at=PLACED, expires_at=PLACED + expires_in)


def test_a_payment_started_early_holds_the_stock_thirty_minutes_from_now() -> None:
    now = PLACED + timedelta(minutes=5)
    assert hold_until(an_order(), now) == now + timedelta(minutes=30)


def test_the_hold_never_reaches_past_an_hour_from_the_order() -> None:
    now = PLACED + timedelta(minutes=50)
    assert hold_until(an_order(timedelta(minutes=55)), now) == PLACED + timedelta(hours=1)


def test_the_hold_is_never_shortened() -> None:
    order = an_order(timedelta(hours=2))  # ops gave it longer
    assert hold_until(order, PLACED + timedelta(minutes=1)) == order.expires_at
