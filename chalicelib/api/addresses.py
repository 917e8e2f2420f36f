"""The signed-in shopper's address book: ``/me/addresses`` (their own, nobody else's)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import authorizer, principal
from chalicelib.api.openapi import operation
from chalicelib.api.orders import ShippingAddressIn
from chalicelib.api.requests import parse_body
from chalicelib.domain.addresses import MAX_ADDRESSES, AddressBook, SavedAddress
from chalicelib.services import addresses

blueprint = Blueprint(__name__)

ADDRESS_ID_PARAMETER = {"address_id": {"type": "string", "pattern": models.ID_PATTERN}}
JSON = {"Content-Type": "application/json"}


class AddressIn(ShippingAddressIn):
    """A ``POST /orders`` shipping address, and whether it is the default."""

    is_default: bool | None = Field(
        default=None,
        description=(
            "true makes it the default. Left out: a new address is the default only when "
            "the book has none; a changed one keeps its status."
        ),
    )


class AddressLocationBody(models.ResponseModel):
    lat: float
    lon: float


class AddressBody(models.ResponseModel):
    address_id: str
    is_default: bool
    name: str
    phone: str
    country: str
    region: str
    city: str
    line1: str
    postcode: str
    location: AddressLocationBody | None = None


class AddressList(models.ResponseModel):
    items: list[AddressBody]


def _body(book: AddressBook, saved: SavedAddress) -> dict[str, Any]:
    return book.as_dict(saved)


@blueprint.route("/me/addresses", methods=["GET"], authorizer=authorizer)
@operation(
    "My saved addresses",
    description="Oldest first; at most one has is_default true.",
    tags=("me",),
    responses={200: AddressList},
)
def list_addresses() -> dict[str, Any]:
    caller = principal(blueprint.current_request)
    book = addresses.address_book(caller.user_id)
    return {"items": [_body(book, saved) for saved in book.entries]}


@blueprint.route("/me/addresses", methods=["POST"], authorizer=authorizer)
@operation(
    "Save an address",
    description=f"201 with the address. At most {MAX_ADDRESSES}: then 409 address_book_full.",
    tags=("me",),
    request=AddressIn,
    responses={201: AddressBody},
    headers={201: ("Location",)},
)
def add_address() -> Response:
    request = blueprint.current_request
    caller = principal(request)
    body = parse_body(request, AddressIn)
    book, saved = addresses.add_address(
        caller.user_id, body.to_domain(), make_default=bool(body.is_default)
    )
    headers = {**JSON, "Location": f"/me/addresses/{saved.address_id}"}
    return Response(body=_body(book, saved), status_code=201, headers=headers)


@blueprint.route("/me/addresses/{address_id}", methods=["PUT"], authorizer=authorizer)
@operation(
    "Replace a saved address",
    tags=("me",),
    request=AddressIn,
    responses={200: AddressBody},
    path_params=ADDRESS_ID_PARAMETER,
)
def put_address(address_id: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = principal(request)
    body = parse_body(request, AddressIn)
    book, saved = addresses.change_address(
        caller.user_id, address_id, body.to_domain(), make_default=body.is_default
    )
    return _body(book, saved)


@blueprint.route("/me/addresses/{address_id}", methods=["DELETE"], authorizer=authorizer)
@operation(
    "Delete a saved address",
    description="204; deleting the default leaves the book without one.",
    tags=("me",),
    responses={204: None},
    path_params=ADDRESS_ID_PARAMETER,
)
def delete_address(address_id: str) -> Response:
    caller = principal(blueprint.current_request)
    addresses.delete_address(caller.user_id, address_id)
    return Response(body="", status_code=204)
