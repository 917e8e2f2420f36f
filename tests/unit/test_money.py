from dataclasses import FrozenInstanceError

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import CurrencyMismatch, Money


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def test_adding_and_subtracting_stays_exact_in_minor_units() -> None:
    assert cny(12900) + cny(1) == cny(12901)
    assert cny(10) - cny(25) == cny(-15)
    assert cny(1999).times(3) == cny(5997)
    assert 3 * cny(1999) == cny(5997)


def test_total_of_nothing_is_zero_in_the_given_currency() -> None:
    assert Money.total([], "CNY") == Money.zero("CNY")
    assert Money.total([cny(1), cny(2), cny(3)], "CNY") == cny(6)


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        cny(100) + Money(100, "USD")
    with pytest.raises(CurrencyMismatch):
        assert cny(100) < Money(200, "USD")


@pytest.mark.parametrize("amount", [12.5, 12.0, "12900", True, None])
def test_amount_must_be_an_integer(amount: object) -> None:
    with pytest.raises(InvalidInput):
        Money(amount, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["cny", "CN", "CNYY", "", "C1Y"])
def test_currency_must_be_three_capital_letters(currency: str) -> None:
    with pytest.raises(InvalidInput):
        Money(100, currency)


def test_money_is_immutable_and_comparable() -> None:
    price = cny(100)
    with pytest.raises(FrozenInstanceError):
        price.amount = 5  # type: ignore[misc]
    assert cny(100) < cny(101) <= cny(101)
    assert cny(100) == Money(100, "CNY")
    assert cny(100) != Money(100, "USD")


def test_quantity_must_be_an_integer() -> None:
    with pytest.raises(InvalidInput):
        cny(100).times(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "weights"),
    [(100, [1, 1, 1]), (1001, [3, 7]), (-100, [1, 2]), (5, [1, 0, 1]), (0, [2, 3])],
)
def test_allocating_never_gains_or_loses_a_fen(amount: int, weights: list[int]) -> None:
    parts = cny(amount).allocate(weights)
    assert sum(part.amount for part in parts) == amount
    assert len(parts) == len(weights)
    # Each part is within one minor unit of its exact proportional share.
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.amount - amount * weight / sum(weights)) < 1


def test_allocating_gives_remainders_to_the_earliest_parts() -> None:
    assert cny(100).allocate([1, 1, 1]) == [cny(34), cny(33), cny(33)]


def test_allocating_needs_positive_weights() -> None:
    with pytest.raises(InvalidInput):
        cny(100).allocate([0, 0])
    with pytest.raises(InvalidInput):
        cny(100).allocate([])


def test_wire_shape_and_display() -> None:
    assert cny(12900).as_dict() == {"amount": 12900, "currency": "CNY"}
    assert str(cny(12905)) == "129.05 CNY"
    assert str(cny(-5)) == "-0.05 CNY"
    assert str(Money(1200, "JPY")) == "1200 JPY"
