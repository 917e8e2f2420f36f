"""Which provider books and tracks each carrier, and how Kuaidi100's e-waybill is signed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.carriers import routes
from chalicelib.adapters.carriers.kuaidi100 import label_sign, partner_accounts
from chalicelib.domain.catalogue import Location, PostalAddress, Warehouse
from chalicelib.domain.tracking import CARRIER_UNAVAILABLE, BookingFailure


def test_domestic_carriers_are_booked_and_tracked_through_kuaidi100_by_default():
    for carrier in ("shunfeng", "zhongtong", "yuantong", "ems"):
        assert routes.route_for(carrier) == routes.Route(carrier, "kuaidi100", "kuaidi100")


def test_international_carriers_are_booked_and_tracked_through_easypost_by_default():
    assert routes.route_for("dhl") == routes.Route("dhl", "easypost", "easypost")


def test_a_configured_route_can_hand_tracking_to_aftership():
    configured = "yunda=kuaidi100/aftership, ups=easypost"

    assert routes.route_for("yunda", configured) == routes.Route("yunda", "kuaidi100", "aftership")
    assert routes.route_for("ups", configured) == routes.Route("ups", "easypost", "easypost")
    assert routes.route_for("shunfeng", configured).booking == "kuaidi100"


@pytest.mark.parametrize("configured", ["yunda=aftership", "yunda", "=kuaidi100", "dhl=fedex"])
def test_a_route_booked_by_a_provider_that_cannot_book_is_refused(configured):
    with pytest.raises(ValueError):
        routes.parse_routes(configured)


def test_an_unknown_carrier_has_no_route():
    with pytest.raises(routes.UnknownCarrier):
        routes.route_for("pigeon")


def test_label_sign_is_the_upper_case_md5_of_param_t_key_and_secret():
    expected = hashlib.md5(b'{"a":1}1576123932000KEYSECRET').hexdigest().upper()

    assert label_sign('{"a":1}', "1576123932000", "KEY", "SECRET") == expected


def test_partner_accounts_are_read_per_carrier():
    accounts = partner_accounts('{"shunfeng": {"partnerId": "0755123", "partnerKey": "k"}}')

    assert accounts == {"shunfeng": {"partnerId": "0755123", "partnerKey": "k"}}
    with pytest.raises(ValueError):
        partner_accounts('["not", "an", "object"]')


def warehouse(**changes) -> Warehouse:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    values = {
        "id": "wh-1",
        "name": "DC",
        "city": "Shanghai",
        "location": Location(31.2, 121.5),
        "created_at": now,
        "updated_at": now,
        "address": PostalAddress("上海市", "上海市", "张江路 88 号", "201203"),
        "contact_name": "王磊",
        "phone": "13800138001",
    }
    return Warehouse(**{**values, **changes})


def test_a_warehouse_with_address_contact_and_phone_can_book():
    assert warehouse().missing_for_booking() == []


def test_a_warehouse_names_every_sender_field_it_lacks():
    lacking = warehouse(address=None, phone=" ")

    assert lacking.missing_for_booking() == ["address", "phone"]


def test_booking_retries_back_off_and_only_a_new_failure_is_news():
    at = datetime(2026, 5, 1, tzinfo=UTC)
    first = BookingFailure.after(
        None, reason=CARRIER_UNAVAILABLE, message="down", provider="kuaidi100", at=at
    )
    second = BookingFailure.after(
        first, reason=CARRIER_UNAVAILABLE, message="down", provider="kuaidi100", at=at
    )
    many = first
    for _ in range(10):
        many = BookingFailure.after(
            many, reason=CARRIER_UNAVAILABLE, message="down", provider="kuaidi100", at=at
        )

    assert (first.attempts, first.retry_at - at) == (1, timedelta(minutes=5))
    assert (second.attempts, second.retry_at - at) == (2, timedelta(minutes=10))
    assert many.retry_at - at == timedelta(hours=2)
    assert first.is_news(None) and not second.is_news(first)
