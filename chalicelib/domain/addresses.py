"""A shopper's address book: saved shipping addresses, one of them the default.

The book holds at most ``MAX_ADDRESSES``. Its first address becomes the default; choosing
another default moves the mark; deleting the default leaves the book without one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.orders import ShippingAddress

MAX_ADDRESSES = 20


class AddressBookFull(Conflict):
    code = "address_book_full"

    def __init__(self) -> None:
        super().__init__(
            f"The address book holds at most {MAX_ADDRESSES} addresses; delete one first.",
            {"max_addresses": MAX_ADDRESSES},
        )


class AddressNotFound(NotFound):
    def __init__(self, address_id: str) -> None:
        super().__init__(f"Address {address_id} not found.", {"address_id": address_id})


@dataclass(frozen=True, slots=True)
class SavedAddress:
    address_id: str
    address: ShippingAddress
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AddressBook:
    """Every saved address of one customer (oldest first), the default's id, and a version
    that guards concurrent changes."""

    customer_id: str
    entries: tuple[SavedAddress, ...] = ()
    default_id: str | None = None
    version: int | None = None  # None: nothing saved yet

    def entry(self, address_id: str) -> SavedAddress:
        for saved in self.entries:
            if saved.address_id == address_id:
                return saved
        raise AddressNotFound(address_id)

    def add(self, saved: SavedAddress, *, make_default: bool) -> AddressBook:
        if len(self.entries) >= MAX_ADDRESSES:
            raise AddressBookFull()
        default_id = saved.address_id if make_default or self.default_id is None else None
        return replace(
            self, entries=(*self.entries, saved), default_id=default_id or self.default_id
        )

    def change(self, saved: SavedAddress, *, make_default: bool | None) -> AddressBook:
        self.entry(saved.address_id)
        entries = tuple(saved if e.address_id == saved.address_id else e for e in self.entries)
        default_id = self.default_id
        if make_default:
            default_id = saved.address_id
        elif make_default is False and default_id == saved.address_id:
            default_id = None
        return replace(self, entries=entries, default_id=default_id)

    def remove(self, address_id: str) -> AddressBook:
        self.entry(address_id)
        entries = tuple(e for e in self.entries if e.address_id != address_id)
        default_id = None if self.default_id == address_id else self.default_id
        return replace(self, entries=entries, default_id=default_id)

    def as_dict(self, saved: SavedAddress) -> dict[str, Any]:
        """One address as the API shows it: the shipping address, its id, whether default."""
        return {
            **saved.address.as_dict(),
            "address_id": saved.address_id,
            "is_default": saved.address_id == self.default_id,
        }
