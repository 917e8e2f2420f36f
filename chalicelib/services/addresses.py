"""The shopper's address book: list, add, change and delete saved shipping addresses.

Each change reads the book, asks the domain for the new book, and commits the changed
address with the book's versioned item in one transaction; a concurrent change makes it
read again (a few times) before answering 409 ``conflict``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.domain.addresses import AddressBook, SavedAddress
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.orders import ShippingAddress
from chalicelib.store import addresses as store
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(UTC)


def address_book(customer_id: str) -> AddressBook:
    return store.read_book(customer_id)


def add_address(
    customer_id: str, address: ShippingAddress, *, make_default: bool = False
) -> tuple[AddressBook, SavedAddress]:
    """Save a new address (409 ``address_book_full`` past the limit)."""
    at = _now()
    saved = SavedAddress(sortable_id("adr_", at), address, created_at=at, updated_at=at)

    def change(book: AddressBook, uow: UnitOfWork) -> AddressBook:
        after = book.add(saved, make_default=make_default)
        store.add_entry(uow, customer_id, saved)
        return after

    return _commit(customer_id, change), saved


def change_address(
    customer_id: str, address_id: str, address: ShippingAddress, *, make_default: bool | None
) -> tuple[AddressBook, SavedAddress]:
    """Replace a saved address (404 if it is not this customer's); ``make_default`` None
    leaves the default as it is."""
    at = _now()
    saved: SavedAddress | None = None

    def change(book: AddressBook, uow: UnitOfWork) -> AddressBook:
        nonlocal saved
        current = book.entry(address_id)
        saved = SavedAddress(address_id, address, created_at=current.created_at, updated_at=at)
        after = book.change(saved, make_default=make_default)
        store.add_entry(uow, customer_id, saved)
        return after

    book = _commit(customer_id, change)
    assert saved is not None
    return book, saved


def delete_address(customer_id: str, address_id: str) -> None:
    def change(book: AddressBook, uow: UnitOfWork) -> AddressBook:
        after = book.remove(address_id)
        store.delete_entry(uow, customer_id, address_id)
        return after

    _commit(customer_id, change)


def _commit(
    customer_id: str, change: Callable[[AddressBook, UnitOfWork], AddressBook]
) -> AddressBook:
    for _ in range(ATTEMPTS):
        before = store.read_book(customer_id)
        uow = UnitOfWork()
        after = change(before, uow)
        store.add_book(uow, before, after)
        try:
            uow.commit()
        except TransactionCancelled as cancelled:
            if cancelled.condition_failed or cancelled.conflicted:
                continue  # someone changed the book since we read it
            raise
        return after
    raise Conflict("The address book changed meanwhile; try again.")
