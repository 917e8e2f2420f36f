"""The address book in the main table.

Item shapes (the only place that knows them):

    address      pk=CUSTOMER#<customer_id>   sk=ADDRESS#<address_id>
                 address_id, address {name, phone, country, region, city, line1, postcode,
                 location?}, created_at, updated_at
    book         pk=CUSTOMER#<customer_id>   sk=ADDRESSBOOK
                 count, default_address_id, version

One Query (``begins_with(sk, "ADDRESS")``) reads the whole book. Every change writes the
book item conditionally on the version it read, together with the address it adds, changes
or deletes, in one transaction: two changes at once cannot both pass the limit or leave two
defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.addresses import AddressBook, SavedAddress
from chalicelib.store import tables
from chalicelib.store.customers import CUSTOMER_PREFIX
from chalicelib.store.orders import address_attributes, address_from_attributes, timestamp
from chalicelib.store.unit_of_work import UnitOfWork

ADDRESS_PREFIX = "ADDRESS#"
BOOK_SK = "ADDRESSBOOK"
_BOTH = "ADDRESS"  # the prefix both item kinds share


def _entry_key(customer_id: str, address_id: str) -> tables.RawItem:
    return {
        tables.PK: {"S": CUSTOMER_PREFIX + customer_id},
        tables.SK: {"S": ADDRESS_PREFIX + address_id},
    }


def _book_key(customer_id: str) -> tables.RawItem:
    return {tables.PK: {"S": CUSTOMER_PREFIX + customer_id}, tables.SK: {"S": BOOK_SK}}


def read_book(customer_id: str) -> AddressBook:
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {
            ":pk": {"S": CUSTOMER_PREFIX + customer_id},
            ":prefix": {"S": _BOTH},
        },
        "ConsistentRead": True,
    }
    entries: list[SavedAddress] = []
    book: dict[str, Any] | None = None
    while True:
        response = tables.client().query(**query)
        for raw in response.get("Items", []):
            item = tables.from_item(raw)
            if item[tables.SK] == BOOK_SK:
                book = item
            else:
                entries.append(_entry_from(item))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if book is None:
        return AddressBook(customer_id)
    entries.sort(key=lambda saved: (saved.created_at, saved.address_id))
    return AddressBook(
        customer_id=customer_id,
        entries=tuple(entries),
        default_id=book.get("default_address_id"),
        version=int(book["version"]),
    )


def _entry_from(item: dict[str, Any]) -> SavedAddress:
    return SavedAddress(
        address_id=item["address_id"],
        address=address_from_attributes(item["address"]),
        created_at=datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")),
        updated_at=datetime.fromisoformat(item["updated_at"].replace("Z", "+00:00")),
    )


def add_book(uow: UnitOfWork, before: AddressBook, after: AddressBook) -> None:
    """The book item as ``after`` has it, if the stored one is still ``before``."""
    item = tables.to_item(
        {
            tables.PK: CUSTOMER_PREFIX + after.customer_id,
            tables.SK: BOOK_SK,
            "entity": "address_book",
            "count": len(after.entries),
            "default_address_id": after.default_id,
            "version": (before.version or 0) + 1,
        }
    )
    uow.put_versioned(
        item, tag=("address_book", after.customer_id), previous_version=before.version
    )


def add_entry(uow: UnitOfWork, customer_id: str, saved: SavedAddress) -> None:
    item = tables.to_item(
        {
            tables.PK: CUSTOMER_PREFIX + customer_id,
            tables.SK: ADDRESS_PREFIX + saved.address_id,
            "entity": "address",
            "address_id": saved.address_id,
            "address": address_attributes(saved.address),
            "created_at": timestamp(saved.created_at),
            "updated_at": timestamp(saved.updated_at),
        }
    )
    uow.put(item, tag=("address", customer_id, saved.address_id))


def delete_entry(uow: UnitOfWork, customer_id: str, address_id: str) -> None:
    uow.delete(
        _entry_key(customer_id, address_id),
        tag=("address", customer_id, address_id),
        condition="attribute_exists(pk)",
    )
