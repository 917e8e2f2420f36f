"""The address book's rules: a limit, one default, and what deleting the default does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.addresses import (
    MAX_ADDRESSES,
    AddressBook,
    AddressBookFull,
    AddressNotFound,
    SavedAddress,
)
from chalicelib.domain.orders import ShippingAddress

AT = datetime(2026, 12, 1, tzinfo=UTC)


def saved(address_id: str, line1: str = "人民大道 200 号") -> SavedAddress:
    address = ShippingAddress("李雷", "+8613800000000", "CN", "上海", "上海市", line1, "200003")
    return SavedAddress(address_id, address, created_at=AT, updated_at=AT)


def test_the_first_address_becomes_the_default() -> None:
    book = AddressBook("c-1").add(saved("a1"), make_default=False)

    assert book.default_id == "a1"
    assert book.as_dict(book.entries[0])["is_default"] is True


def test_a_later_address_is_default_only_when_asked() -> None:
    book = AddressBook("c-1").add(saved("a1"), make_default=False)

    assert book.add(saved("a2"), make_default=False).default_id == "a1"
    assert book.add(saved("a2"), make_default=True).default_id == "a2"


def test_the_book_refuses_an_address_past_the_limit() -> None:
    book = AddressBook("c-1")
    for number in range(MAX_ADDRESSES):
        book = book.add(saved(f"a{number}"), make_default=False)

    with pytest.raises(AddressBookFull) as refused:
        book.add(saved("one-more"), make_default=False)
    assert refused.value.code == "address_book_full"


def test_changing_keeps_unsets_or_takes_the_default() -> None:
    book = AddressBook("c-1").add(saved("a1"), make_default=False)
    book = book.add(saved("a2"), make_default=False)

    assert book.change(saved("a1", "新"), make_default=None).default_id == "a1"
    assert book.change(saved("a1"), make_default=False).default_id is None
    assert book.change(saved("a2"), make_default=True).default_id == "a2"
    assert book.change(saved("a2"), make_default=False).default_id == "a1"


def test_deleting_the_default_leaves_no_default_and_unknown_ids_are_not_found() -> None:
    book = AddressBook("c-1").add(saved("a1"), make_default=False)
    book = book.add(saved("a2"), make_default=False)

    after = book.remove("a1")
    assert [entry.address_id for entry in after.entries] == ["a2"]
    assert after.default_id is None
    with pytest.raises(AddressNotFound):
        book.remove("nope")
    with pytest.raises(AddressNotFound):
        book.change(saved("nope"), make_default=None)
