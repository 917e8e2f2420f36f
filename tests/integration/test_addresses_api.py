"""The shopper's address book over the real app and moto: /me/addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from test_orders_api import address, table_snapshot

from chalicelib.domain.addresses import MAX_ADDRESSES
from chalicelib.domain.orders import ShippingAddress
from chalicelib.services import addresses
from chalicelib.store import addresses as address_store

if TYPE_CHECKING:
    from conftest import Api

ALICE = "cust-alice"


def me(api: Api, user: str = ALICE) -> dict[str, str]:
    return api.token(user, "customers")


def save(api: Api, body: dict[str, Any], user: str = ALICE) -> Any:
    return api.request("POST", "/me/addresses", body, me(api, user))


def book(api: Api, user: str = ALICE) -> list[dict[str, Any]]:
    response = api.client.http.get("/me/addresses", headers=me(api, user))
    assert response.status_code == 200
    return list(response.json_body["items"])


def test_an_empty_book_lists_nothing(api: Api) -> None:
    assert book(api) == []


def test_the_first_address_is_saved_as_the_default_in_the_order_shape(api: Api) -> None:
    response = save(api, address(location={"lat": 31.23, "lon": 121.47}))

    assert response.status_code == 201
    saved = response.json_body
    assert saved["is_default"] is True
    assert saved["address_id"].startswith("adr_")
    assert response.headers["Location"] == f"/me/addresses/{saved['address_id']}"
    assert {k: v for k, v in saved.items() if k not in ("address_id", "is_default")} == address(
        location={"lat": 31.23, "lon": 121.47}
    )
    assert book(api) == [saved]


def test_a_new_default_moves_the_mark(api: Api) -> None:
    home = save(api, address()).json_body
    office = save(api, address(line1="陆家嘴环路 1000 号")).json_body
    assert office["is_default"] is False

    made_default = save(api, address(line1="世纪大道 8 号"), user=ALICE).json_body
    assert made_default["is_default"] is False
    changed = api.request(
        "PUT",
        f"/me/addresses/{office['address_id']}",
        {**address(line1="陆家嘴环路 1000 号 5 楼"), "is_default": True},
        me(api),
    )

    assert changed.status_code == 200
    assert changed.json_body["line1"] == "陆家嘴环路 1000 号 5 楼"
    defaults = [item["address_id"] for item in book(api) if item["is_default"]]
    assert defaults == [office["address_id"]]
    assert book(api)[0]["address_id"] == home["address_id"]  # oldest first


def test_saving_with_is_default_true_takes_the_default(api: Api) -> None:
    save(api, address())
    second = save(api, {**address(line1="二号"), "is_default": True}).json_body

    assert [item["is_default"] for item in book(api)] == [False, True]
    assert second["is_default"] is True


def test_changing_without_is_default_keeps_the_default(api: Api) -> None:
    home = save(api, address()).json_body
    api.request("PUT", f"/me/addresses/{home['address_id']}", address(line1="新"), me(api))

    assert book(api)[0]["is_default"] is True and book(api)[0]["line1"] == "新"


def test_delete_is_204_and_removes_the_default_mark(api: Api) -> None:
    home = save(api, address()).json_body
    other = save(api, address(line1="二号")).json_body

    response = api.request("DELETE", f"/me/addresses/{home['address_id']}", None, me(api))

    assert response.status_code == 204
    assert [item["address_id"] for item in book(api)] == [other["address_id"]]
    assert not any(item["is_default"] for item in book(api))
    again = api.request("DELETE", f"/me/addresses/{home['address_id']}", None, me(api))
    assert again.status_code == 404


def test_the_twenty_first_address_is_409_address_book_full_and_writes_nothing(api: Api) -> None:
    for number in range(MAX_ADDRESSES):
        assert save(api, address(line1=f"{number} 号")).status_code == 201
    before = table_snapshot()

    response = save(api, address(line1="one too many"))

    assert response.status_code == 409
    assert response.json_body["error"] == "address_book_full"
    assert table_snapshot() == before
    assert len(book(api)) == MAX_ADDRESSES
    # Deleting one makes room again.
    first = book(api)[0]["address_id"]
    api.request("DELETE", f"/me/addresses/{first}", None, me(api))
    assert save(api, address(line1="room again")).status_code == 201


def test_addresses_belong_to_their_owner(api: Api) -> None:
    mine = save(api, address()).json_body
    path = f"/me/addresses/{mine['address_id']}"
    before = table_snapshot()

    assert book(api, user="cust-bob") == []
    assert api.request("PUT", path, address(), me(api, "cust-bob")).status_code == 404
    assert api.request("DELETE", path, None, me(api, "cust-bob")).status_code == 404
    assert table_snapshot() == before


def test_a_bad_address_is_400_and_writes_nothing(api: Api) -> None:
    before = table_snapshot()

    for body in (
        address(phone="call me"),
        {**address(), "extra": 1},
        {**address(), "is_default": "yes"},
        address(country="China"),
    ):
        response = save(api, body)
        assert response.status_code == 400, body
        assert response.json_body["error"] == "validation_error"
    assert table_snapshot() == before


def test_the_address_book_needs_a_token(api: Api) -> None:
    assert api.client.http.get("/me/addresses").status_code == 401


def test_a_change_read_before_another_lands_is_redone_and_the_limit_holds(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(MAX_ADDRESSES - 1):
        save(api, address(line1=f"{number} 号"))
    real_read = address_store.read_book
    raced: list[bool] = []

    def read_then_lose_the_race(customer_id: str) -> Any:
        book = real_read(customer_id)
        if not raced:
            raced.append(True)
            # Another device saves the twentieth address between our read and our write.
            addresses.add_address(customer_id, ShippingAddress(**address(line1="other")))
        return book

    monkeypatch.setattr(address_store, "read_book", read_then_lose_the_race)

    response = save(api, address(line1="ours"))

    assert response.status_code == 409
    assert response.json_body["error"] == "address_book_full"
    lines = [item["line1"] for item in book(api)]
    assert len(lines) == MAX_ADDRESSES and "other" in lines and "ours" not in lines
