"""The configured provider for each payment method, built once per process.

Provider modules are imported on first use: a function that never takes a card payment
never pays for importing ``stripe``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from chalicelib.adapters.payments import (
    ALIPAY,
    CARD,
    PROVIDERS,
    WECHAT_PAY,
    CardProvider,
    PaymentProvider,
)
from chalicelib.settings import get_settings


class UnknownProvider(LookupError):
    pass


@lru_cache(maxsize=len(PROVIDERS))
def get_provider(name: str) -> PaymentProvider:
    settings = get_settings()
    if name == CARD:
        from chalicelib.adapters.payments.card import StripeCardProvider

        return StripeCardProvider.from_settings(settings)
    if name == ALIPAY:
        from chalicelib.adapters.payments.alipay import AlipayProvider

        return AlipayProvider.from_settings(settings)
    if name == WECHAT_PAY:
        from chalicelib.adapters.payments.wechat_pay import WeChatPayProvider

        return WeChatPayProvider.from_settings(settings)
    raise UnknownProvider(name)


def card_provider() -> CardProvider:
    return cast(CardProvider, get_provider(CARD))


def reset() -> None:
    """Forget built providers (tests that change settings call this)."""
    get_provider.cache_clear()
