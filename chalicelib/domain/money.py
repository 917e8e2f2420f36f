"""Money: an integer amount of a currency's minor unit (fen, cents) and its ISO 4217 code.

There are no floats anywhere in here: prices, totals and refunds are exact. Amounts of
different currencies never mix silently; doing so raises ``CurrencyMismatch``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidInput

CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
# ISO 4217 currencies whose minor unit is not 1/100; everything else has two decimals.
_MINOR_UNIT_DIGITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3}


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but True is not an amount of money.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not _is_int(self.amount):
            raise InvalidInput(f"Money amount must be an integer, got {self.amount!r}.")
        if not isinstance(self.currency, str) or not CURRENCY_PATTERN.fullmatch(self.currency):
            raise InvalidInput(f"Currency must be three capital letters, got {self.currency!r}.")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def total(cls, amounts: Iterable[Money], currency: str) -> Money:
        """The sum of ``amounts``; ``currency`` gives the answer for an empty iterable."""
        result = cls.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    @property
    def minor_unit_digits(self) -> int:
        return _MINOR_UNIT_DIGITS.get(self.currency, 2)

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"Expected Money, got {type(other).__name__}.")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"Cannot combine {self.currency} with {other.currency}.",
                {"currencies": [self.currency, other.currency]},
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, quantity: int) -> Money:
        """This amount ``quantity`` times (a line total is ``unit_price.times(quantity)``)."""
        if not _is_int(quantity):
            raise InvalidInput(f"Quantity must be an integer, got {quantity!r}.")
        return Money(self.amount * quantity, self.currency)

    def __mul__(self, quantity: int) -> Money:
        return self.times(quantity)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        """Split into parts proportional to ``weights`` that add up exactly to this amount.

        Remainders go one minor unit at a time to the largest fractional shares (ties to
        the earlier part), so a discount or refund spread over lines never gains or loses
        a fen.
        """
        if not weights or any(not _is_int(w) or w < 0 for w in weights) or sum(weights) == 0:
            raise InvalidInput("Weights must be non-negative integers with a positive sum.")
        total_weight = sum(weights)
        sign = -1 if self.amount < 0 else 1
        magnitude = abs(self.amount)
        shares = [magnitude * w // total_weight for w in weights]
        remainders = [magnitude * w % total_weight for w in weights]
        leftover = magnitude - sum(shares)
        by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for index in by_remainder[:leftover]:
            shares[index] += 1
        return [Money(sign * share, self.currency) for share in shares]

    def as_dict(self) -> dict[str, Any]:
        """The wire shape used everywhere: ``{"amount": 12900, "currency": "CNY"}``."""
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Money:
        """The inverse of ``as_dict`` (stored numbers may come back as ``Decimal``)."""
        return cls(int(data["amount"]), str(data["currency"]))

    def __str__(self) -> str:
        digits = self.minor_unit_digits
        sign = "-" if self.amount < 0 else ""
        if digits == 0:
            return f"{sign}{abs(self.amount)} {self.currency}"
        major, minor = divmod(abs(self.amount), 10**digits)
        return f"{sign}{major}.{minor:0{digits}d} {self.currency}"
