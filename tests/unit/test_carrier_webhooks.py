from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone

import pytest
from easypost.errors import SignatureVerificationError
from easypost.util import validate_webhook

from chalicelib.adapters import carriers
from chalicelib.adapters.carriers import (
    TrackingUpdate,
    UnknownWebhookFormat,
    WebhookRejected,
    aftership,
    easypost,
    kuaidi100,
)
from chalicelib.domain.tracking import Timeline, TrackingLocation, TrackingStatus
from chalicelib.settings import Settings

S = TrackingStatus
BEIJING = timezone(timedelta(hours=8))
SALT = "0f6c0e5d3b1a4c2e9d8f7a6b5c4d3e2f"
AFTERSHIP_SECRET = "as-webhook-secret"
EASYPOST_SECRET = "ep-webhook-secret"


# --- kuaidi100 ---------------------------------------------------------------------------------


def kuaidi100_param(**overrides) -> dict:
    param = {
        "status": "polling",
        "billstatus": "got",
        "message": "",
        "lastResult": {
            "message": "ok",
            "state": "0",
            "status": "200",
            "condition": "F00",
            "ischeck": "0",
            "com": "shunfeng",
            "nu": "SF1234567890123",
            "arrivalTime": "2026-05-22 18",
            "data": [
                {
                    "context": "快件已到达【郑州转运中心】",
                    "time": "2026-05-20 22:10:00",
                    "ftime": "2026-05-20 22:10:00",
                    "status": "干线",
                    "statusCode": "1002",
                    "areaCode": "CN410100000000",
                    "areaName": "河南,郑州市",
                },
                {
                    "context": "【深圳市】顺丰速运 已揽收",
                    "time": "2026-05-20 09:05:00",
                    "ftime": "2026-05-20 09:05:00",
                    "status": "揽收",
                    "statusCode": "103",
                    "areaCode": "CN440300000000",
                    "areaName": "广东,深圳市",
                },
            ],
        },
    }
    param.update(overrides)
    return param


def kuaidi100_body(param: dict | str, salt: str = SALT, *, sign: str | None = None) -> bytes:
    text = param if isinstance(param, str) else json.dumps(param, ensure_ascii=False)
    if sign is None:
        sign = hashlib.md5((text + salt).encode()).hexdigest().upper()
    return urllib.parse.urlencode({"param": text, "sign": sign}).encode()


def test_kuaidi100_push_signed_with_our_salt_is_read_into_events():
    update = kuaidi100.verify_and_parse({}, kuaidi100_body(kuaidi100_param()), SALT)

    assert (update.source, update.carrier, update.tracking_number) == (
        "kuaidi100",
        "shunfeng",
        "SF1234567890123",
    )
    assert update.event_id is None and update.subscription_ended is False
    collected, hub = sorted(update.events, key=lambda e: e.occurred_at)
    assert collected.status is S.IN_TRANSIT and collected.carrier_status == "103"
    assert collected.occurred_at == datetime(2026, 5, 20, 9, 5, tzinfo=BEIJING)
    assert collected.location == TrackingLocation(city="深圳市", region="广东", country="CN")
    assert hub.description == "快件已到达【郑州转运中心】"
    # The map-track estimate goes on the newest record only.
    assert hub.estimated_delivery == datetime(2026, 5, 22, 18, 0, tzinfo=BEIJING)
    assert collected.estimated_delivery is None


def test_kuaidi100_sign_is_the_upper_case_md5_of_param_and_salt():
    param = json.dumps(kuaidi100_param(), ensure_ascii=False)
    lower_case_sign = hashlib.md5((param + SALT).encode()).hexdigest()

    update = kuaidi100.verify_and_parse({}, kuaidi100_body(param, sign=lower_case_sign), SALT)

    assert update.tracking_number == "SF1234567890123"


@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        (kuaidi100_body(kuaidi100_param(), salt="another-salt"), 401),  # wrong secret
        (kuaidi100_body(kuaidi100_param(), sign=""), 401),  # no sign
        (urllib.parse.urlencode({"param": "{}"}).encode(), 401),  # no sign field at all
        (urllib.parse.urlencode({"sign": "ABC"}).encode(), 401),  # nothing signed
        (b"\xff\xfe not utf-8", 400),
    ],
)
def test_kuaidi100_push_without_a_valid_sign_is_rejected(body, status_code):
    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, body, SALT)
    assert rejected.value.status_code == status_code


def test_kuaidi100_push_with_param_changed_after_signing_is_rejected():
    text = json.dumps(kuaidi100_param(), ensure_ascii=False)
    body = kuaidi100_body(text)
    tampered = body.replace(urllib.parse.quote_plus("SF1234567890123").encode(), b"SF9999999999999")
    assert tampered != body

    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, tampered, SALT)
    assert rejected.value.status_code == 401


@pytest.mark.parametrize(
    "param",
    [
        "not json",
        "[]",
        json.dumps({"status": "polling"}),  # no lastResult
        json.dumps({"lastResult": {"com": "shunfeng", "data": []}}),  # no nu
        json.dumps({"lastResult": {"com": "shunfeng", "nu": "SF1", "data": {}}}),
    ],
)
def test_kuaidi100_signed_but_malformed_param_is_a_bad_request(param):
    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT)
    assert rejected.value.status_code == 400


def test_kuaidi100_push_is_refused_when_no_salt_is_configured():
    body = kuaidi100_body(kuaidi100_param(), salt="")
    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, body, "")
    assert rejected.value.status_code == 401


def test_kuaidi100_duplicate_form_fields_are_refused():
    body = kuaidi100_body(kuaidi100_param()) + b"&sign=ABC"
    with pytest.raises(WebhookRejected):
        kuaidi100.verify_and_parse({}, body, SALT)


def test_kuaidi100_oversized_push_is_refused_before_it_is_parsed(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("the form was parsed")

    body = kuaidi100_body(kuaidi100_param()) + b"&pad=" + b"x" * (kuaidi100.MAX_PUSH_BYTES + 1)
    monkeypatch.setattr(kuaidi100.urllib.parse, "parse_qsl", no_parsing)

    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, body, SALT)
    assert rejected.value.status_code == 413


def test_kuaidi100_push_with_too_many_fields_is_refused_before_it_is_parsed(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("the form was parsed")

    body = kuaidi100_body(kuaidi100_param()) + b"".join(b"&f%d=1" % i for i in range(50))
    monkeypatch.setattr(kuaidi100.urllib.parse, "parse_qsl", no_parsing)

    with pytest.raises(WebhookRejected) as rejected:
        kuaidi100.verify_and_parse({}, body, SALT)
    assert rejected.value.status_code == 400


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", S.IN_TRANSIT),
        ("1", S.IN_TRANSIT),
        ("101", S.INFO_RECEIVED),
        ("102", S.INFO_RECEIVED),
        ("103", S.IN_TRANSIT),
        ("1001", S.IN_TRANSIT),
        ("2", S.EXCEPTION),
        ("204", S.ATTEMPT_FAIL),
        ("206", S.ATTEMPT_FAIL),
        ("209", S.EXCEPTION),
        ("3", S.DELIVERED),
        ("304", S.DELIVERED),
        ("4", S.RETURNED_TO_SENDER),
        ("5", S.OUT_FOR_DELIVERY),
        ("501", S.AVAILABLE_FOR_PICKUP),
        ("6", S.EXCEPTION),
        ("7", S.IN_TRANSIT),
        ("8", S.IN_TRANSIT),
        ("10", S.IN_TRANSIT),
        ("13", S.EXCEPTION),
        ("14", S.EXCEPTION),
    ],
)
def test_kuaidi100_state_codes_map_onto_tracking_statuses(code, status):
    param = kuaidi100_param()
    param["lastResult"]["data"] = [
        {"context": "…", "time": "2026-05-20 10:00:00", "statusCode": code, "areaName": "上海"}
    ]

    (event,) = kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT).events

    assert event.status is status
    assert event.carrier_status == code


def test_kuaidi100_records_without_codes_are_in_transit_but_the_newest_takes_the_state():
    param = kuaidi100_param()
    param["lastResult"]["state"] = "3"
    param["lastResult"]["data"] = [
        {"context": "已签收", "time": "2026-05-21 15:00:00"},
        {"context": "派件中", "time": "2026-05-21 09:00:00", "status": "派件"},
        {"context": "运输中", "time": "2026-05-20 22:00:00"},
    ]

    update = kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT)

    statuses = [e.status for e in sorted(update.events, key=lambda e: e.occurred_at)]
    assert statuses == [S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED]
    assert Timeline(update.events).current_status is S.DELIVERED


def test_kuaidi100_area_names_give_city_and_region():
    param = kuaidi100_param()
    param["lastResult"]["data"] = [
        {"context": "a", "time": "2026-05-20 10:00:00", "areaName": "上海"},
        {"context": "b", "time": "2026-05-20 11:00:00", "areaName": "广东"},
        {"context": "c", "time": "2026-05-20 12:00:00", "areaName": "浙江,杭州市,西湖区"},
        {"context": "d", "time": "2026-05-20 13:00:00", "areaCode": "US000000000000"},
    ]
    events = sorted(
        kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT).events,
        key=lambda e: e.occurred_at,
    )

    assert [e.location for e in events] == [
        TrackingLocation(city="上海", country="CN"),
        TrackingLocation(region="广东", country="CN"),
        TrackingLocation(city="杭州市", region="浙江", country="CN"),
        TrackingLocation(country="US"),
    ]


def test_kuaidi100_records_without_a_readable_time_are_left_out():
    param = kuaidi100_param()
    param["lastResult"]["data"].append({"context": "?", "time": "yesterday"})
    param["lastResult"]["data"].append({"context": "?"})

    assert len(kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT).events) == 2


@pytest.mark.parametrize(
    ("status", "ended"), [("shutdown", True), ("abort", True), ("updateall", False)]
)
def test_kuaidi100_says_when_it_stops_pushing(status, ended):
    param = kuaidi100_param(status=status, message="3天查询无记录" if status == "abort" else "")
    param["lastResult"]["data"] = []

    update = kuaidi100.verify_and_parse({}, kuaidi100_body(param), SALT)

    assert update.subscription_ended is ended
    assert update.events == ()
    assert update.message == ("3天查询无记录" if status == "abort" else "")


def test_kuaidi100_replies_in_the_shape_it_expects():
    assert kuaidi100.acknowledge() == (
        200,
        "application/json",
        json.dumps({"result": True, "returnCode": "200", "message": "成功"}, ensure_ascii=False),
    )
    status, content_type, body = kuaidi100.reject("sign does not match", 401)
    assert (status, content_type) == (401, "application/json")
    assert json.loads(body) == {
        "result": False,
        "returnCode": "500",
        "message": "sign does not match",
    }


# --- aftership ---------------------------------------------------------------------------------


def aftership_document(**overrides) -> dict:
    document = {
        "event": "tracking_update",
        "event_id": "9f2c1d8e-2b7a-4a53-9d77-2b1c1e0f6a11",
        "is_tracking_first_tag": True,
        "ts": 1779264000,
        "msg": {
            "id": "5b74f4958776db0e00b6f5ed",
            "tracking_number": "YT1234567890",
            "slug": "yto",
            "tag": "OutForDelivery",
            "subtag": "OutForDelivery_001",
            "expected_delivery": "2026-05-21T18:00:00+08:00",
            "destination_country_iso3": "CHN",
            "checkpoints": [
                {
                    "checkpoint_time": "2026-05-20T09:05:00+08:00",
                    "city": "杭州市",
                    "state": "浙江",
                    "country_iso3": "CHN",
                    "country_name": "China",
                    "message": "已揽收",
                    "tag": "InTransit",
                    "subtag": "InTransit_002",
                },
                {
                    "checkpoint_time": "2026-05-21T08:30:00",  # local time, no offset
                    "city": "上海市",
                    "state": "上海",
                    "country_iso3": "CHN",
                    "message": "派件中",
                    "tag": "OutForDelivery",
                    "subtag": "OutForDelivery_001",
                },
            ],
        },
    }
    document.update(overrides)
    return document


def aftership_signature(body: bytes, secret: str = AFTERSHIP_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_aftership_push_signed_with_the_webhook_secret_is_read_into_events():
    body = json.dumps(aftership_document()).encode()
    headers = {"Aftership-Hmac-Sha256": aftership_signature(body)}  # any header case

    update = aftership.verify_and_parse(headers, body, AFTERSHIP_SECRET)

    assert (update.source, update.carrier, update.tracking_number, update.event_id) == (
        "aftership",
        "yto",
        "YT1234567890",
        "9f2c1d8e-2b7a-4a53-9d77-2b1c1e0f6a11",
    )
    collected, out = sorted(update.events, key=lambda e: e.occurred_at)
    assert (collected.status, collected.carrier_status) == (S.IN_TRANSIT, "InTransit_002")
    assert collected.location == TrackingLocation(city="杭州市", region="浙江", country="CHN")
    assert out.status is S.OUT_FOR_DELIVERY
    assert out.occurred_at == datetime(2026, 5, 21, 8, 30, tzinfo=BEIJING)  # Chinese local time
    assert out.estimated_delivery == datetime(2026, 5, 21, 18, 0, tzinfo=BEIJING)
    assert Timeline(update.events).estimated_delivery == out.estimated_delivery


def test_aftership_push_with_a_wrong_secret_tampered_body_or_no_header_is_rejected():
    body = json.dumps(aftership_document()).encode()
    cases = [
        ({"aftership-hmac-sha256": aftership_signature(body, "not-the-secret")}, body),
        ({"aftership-hmac-sha256": aftership_signature(body)}, body.replace(b"YT123", b"YT999")),
        ({}, body),
        ({"aftership-hmac-sha256": ""}, body),
    ]
    for headers, sent in cases:
        with pytest.raises(WebhookRejected) as rejected:
            aftership.verify_and_parse(headers, sent, AFTERSHIP_SECRET)
        assert rejected.value.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"event": "tracking_update"}).encode(),  # no msg
        json.dumps({"event": "tracking_update", "msg": {"slug": "yto"}}).encode(),
        json.dumps(
            {"event": "tracking_update", "msg": {"slug": "yto", "tracking_number": {"nu": 1}}}
        ).encode(),
        json.dumps(
            {
                "event": "tracking_update",
                "msg": {"slug": "yto", "tracking_number": "Y1", "checkpoints": "x"},
            }
        ).encode(),
    ],
)
def test_aftership_signed_but_malformed_body_is_a_bad_request(body):
    with pytest.raises(WebhookRejected) as rejected:
        aftership.verify_and_parse(
            {"aftership-hmac-sha256": aftership_signature(body)}, body, AFTERSHIP_SECRET
        )
    assert rejected.value.status_code == 400


def test_aftership_events_that_are_not_tracking_updates_are_authentic_but_ignored():
    body = json.dumps(aftership_document(event="tracking_pending_time")).encode()

    assert (
        aftership.verify_and_parse(
            {"aftership-hmac-sha256": aftership_signature(body)}, body, AFTERSHIP_SECRET
        )
        is None
    )


@pytest.mark.parametrize(
    ("tag", "subtag", "status"),
    [
        ("Pending", "Pending_001", S.INFO_RECEIVED),
        ("InfoReceived", "InfoReceived_001", S.INFO_RECEIVED),
        ("InTransit", "InTransit_007", S.IN_TRANSIT),
        ("OutForDelivery", "OutForDelivery_003", S.OUT_FOR_DELIVERY),
        ("AttemptFail", "AttemptFail_001", S.ATTEMPT_FAIL),
        ("AvailableForPickup", "AvailableForPickup_001", S.AVAILABLE_FOR_PICKUP),
        ("Delivered", "Delivered_002", S.DELIVERED),
        ("Exception", "Exception_010", S.EXCEPTION),  # on its way back
        ("Exception", "Exception_011", S.RETURNED_TO_SENDER),  # back with the sender
        ("Expired", "Expired_001", S.EXCEPTION),
    ],
)
def test_aftership_tags_map_onto_tracking_statuses(tag, subtag, status):
    document = aftership_document()
    document["msg"]["checkpoints"] = [
        {"checkpoint_time": "2026-05-20T10:00:00Z", "message": "…", "tag": tag, "subtag": subtag}
    ]
    body = json.dumps(document).encode()

    (event,) = aftership.verify_and_parse(
        {"aftership-hmac-sha256": aftership_signature(body)}, body, AFTERSHIP_SECRET
    ).events

    assert event.status is status


def test_aftership_checkpoints_with_unknown_tags_or_no_time_are_left_out():
    document = aftership_document()
    document["msg"]["checkpoints"] += [
        {"checkpoint_time": "2026-05-21T10:00:00Z", "tag": "Teleported"},
        {"tag": "InTransit"},
    ]
    body = json.dumps(document).encode()

    update = aftership.verify_and_parse(
        {"aftership-hmac-sha256": aftership_signature(body)}, body, AFTERSHIP_SECRET
    )

    assert len(update.events) == 2


# --- easypost ----------------------------------------------------------------------------------


def easypost_event(**overrides) -> dict:
    event = {
        "id": "evt_5b3a1f2c9d8e4f60a1b2c3d4e5f60718",
        "object": "Event",
        "mode": "test",
        "description": "tracker.updated",
        "previous_attributes": {"status": "in_transit"},
        "result": {
            "id": "trk_0c1d2e3f",
            "object": "Tracker",
            "mode": "test",
            "tracking_code": "9400100000000000000000",
            "status": "delivered",
            "carrier": "USPS",
            "est_delivery_date": "2026-05-21T00:00:00Z",
            "tracking_details": [
                {
                    "object": "TrackingDetail",
                    "message": "Arrived at USPS Facility",
                    "status": "in_transit",
                    "datetime": "2026-05-20T03:15:00Z",
                    "tracking_location": {
                        "object": "TrackingLocation",
                        "city": "SAN FRANCISCO",
                        "state": "CA",
                        "country": "US",
                        "zip": "94107",
                    },
                },
                {
                    "object": "TrackingDetail",
                    "message": "Delivered, In/At Mailbox",
                    "status": "delivered",
                    "datetime": "2026-05-21T17:02:00Z",
                    "tracking_location": {"city": "OAKLAND", "state": "CA", "country": "US"},
                },
                {
                    "object": "TrackingDetail",
                    "message": "Status not recognised",
                    "status": "unknown",
                    "datetime": "2026-05-21T18:00:00Z",
                },
            ],
        },
    }
    event.update(overrides)
    return event


def easypost_signature(body: bytes, secret: str = EASYPOST_SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"hmac-sha256-hex={digest}"


def test_easypost_tracker_event_is_read_into_events():
    body = json.dumps(easypost_event()).encode()

    update = easypost.verify_and_parse(
        {"x-hmac-signature": easypost_signature(body)}, body, EASYPOST_SECRET
    )

    assert (update.source, update.carrier, update.tracking_number, update.event_id) == (
        "easypost",
        "USPS",
        "9400100000000000000000",
        "evt_5b3a1f2c9d8e4f60a1b2c3d4e5f60718",
    )
    arrived, delivered = sorted(update.events, key=lambda e: e.occurred_at)  # unknown left out
    assert arrived.status is S.IN_TRANSIT
    assert arrived.location == TrackingLocation(city="SAN FRANCISCO", region="CA", country="US")
    assert delivered.status is S.DELIVERED
    assert delivered.occurred_at == datetime(2026, 5, 21, 17, 2, tzinfo=UTC)
    assert delivered.estimated_delivery == datetime(2026, 5, 21, tzinfo=UTC)
    assert Timeline(update.events).current_status is S.DELIVERED


def test_easypost_signature_agrees_with_easyposts_own_validate_webhook():
    # A secret that NFKD normalisation changes: full-width letters and a ligature.
    secret = "ｓｅｃｒｅｔ-ﬁle-key"
    body = json.dumps(easypost_event()).encode()
    headers = {"X-Hmac-Signature": easypost_signature(body, "secret-file-key")}

    assert validate_webhook(body, headers, secret)["id"] == easypost_event()["id"]
    assert easypost.verify_and_parse(headers, body, secret) is not None

    forged = {"X-Hmac-Signature": easypost_signature(body, "secret-file-keY")}
    with pytest.raises(SignatureVerificationError):
        validate_webhook(body, forged, secret)
    with pytest.raises(WebhookRejected):
        easypost.verify_and_parse(forged, body, secret)


def test_easypost_push_with_a_wrong_secret_tampered_body_or_no_header_is_rejected():
    body = json.dumps(easypost_event()).encode()
    cases = [
        ({"X-Hmac-Signature": easypost_signature(body, "not-the-secret")}, body),
        ({"X-Hmac-Signature": easypost_signature(body)}, body.replace(b"delivered", b"in_transit")),
        ({"X-Hmac-Signature": easypost_signature(body).removeprefix("hmac-sha256-hex=")}, body),
        ({}, body),
    ]
    for headers, sent in cases:
        with pytest.raises(WebhookRejected) as rejected:
            easypost.verify_and_parse(headers, sent, EASYPOST_SECRET)
        assert rejected.value.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"description": "tracker.updated", "id": "evt_1"}).encode(),  # no result
        json.dumps(
            {"description": "tracker.updated", "result": {"tracking_code": "1", "carrier": "USPS"}}
        ).encode(),
        json.dumps(easypost_event(result={"carrier": "USPS"})).encode(),
    ],
)
def test_easypost_signed_but_malformed_body_is_a_bad_request(body):
    with pytest.raises(WebhookRejected) as rejected:
        easypost.verify_and_parse(
            {"X-Hmac-Signature": easypost_signature(body)}, body, EASYPOST_SECRET
        )
    assert rejected.value.status_code == 400


def test_easypost_events_about_other_things_are_authentic_but_ignored():
    body = json.dumps(
        {"id": "evt_2", "object": "Event", "description": "batch.updated", "result": {}}
    ).encode()

    assert (
        easypost.verify_and_parse(
            {"X-Hmac-Signature": easypost_signature(body)}, body, EASYPOST_SECRET
        )
        is None
    )


@pytest.mark.parametrize(
    ("carrier_status", "status"),
    [
        ("pre_transit", S.INFO_RECEIVED),
        ("in_transit", S.IN_TRANSIT),
        ("out_for_delivery", S.OUT_FOR_DELIVERY),
        ("available_for_pickup", S.AVAILABLE_FOR_PICKUP),
        ("delivered", S.DELIVERED),
        ("return_to_sender", S.RETURNED_TO_SENDER),
        ("failure", S.EXCEPTION),
        ("cancelled", S.EXCEPTION),
        ("error", S.EXCEPTION),
    ],
)
def test_easypost_statuses_map_onto_tracking_statuses(carrier_status, status):
    document = easypost_event()
    document["result"]["tracking_details"] = [
        {"message": "…", "status": carrier_status, "datetime": "2026-05-20T10:00:00Z"}
    ]
    body = json.dumps(document).encode()

    (event,) = easypost.verify_and_parse(
        {"X-Hmac-Signature": easypost_signature(body)}, body, EASYPOST_SECRET
    ).events

    assert event.status is status


@pytest.mark.parametrize("module", [aftership, easypost])
def test_aftership_and_easypost_replies_use_the_api_error_shape(module):
    assert module.acknowledge().status_code == 200
    status, content_type, body = module.reject("no", 401)
    assert (status, content_type) == (401, "application/json")
    assert json.loads(body) == {"error": "webhook_rejected", "message": "no", "details": None}


@pytest.mark.parametrize("module", [kuaidi100, aftership, easypost])
def test_no_format_accepts_a_push_when_its_secret_is_not_configured(module):
    with pytest.raises(WebhookRejected) as rejected:
        module.verify_and_parse({}, b"", "")
    assert rejected.value.status_code == 401


# --- the package's lookups -------------------------------------------------------------------


def test_webhook_formats_are_found_by_name_and_unknown_ones_are_not():
    names = ["kuaidi100", "aftership", "easypost"]
    assert [carriers.webhook_format(name).NAME for name in names] == names
    with pytest.raises(UnknownWebhookFormat):
        carriers.webhook_format("fedex")
    with pytest.raises(UnknownWebhookFormat):
        carriers.webhook_format("__init__")


def test_webhook_secrets_come_from_settings(monkeypatch):
    monkeypatch.setenv("CARRIER_WEBHOOK_SECRET", "salt")
    monkeypatch.setenv("AFTERSHIP_WEBHOOK_SECRET", "as")
    monkeypatch.setenv("EASYPOST_WEBHOOK_SECRET", "ep")
    settings = Settings.from_environment()

    assert [carriers.webhook_secret(n, settings) for n in carriers.WEBHOOK_FORMATS] == [
        "salt",
        "as",
        "ep",
    ]


def test_a_tracking_update_is_plain_data():
    update = TrackingUpdate(
        source="kuaidi100", carrier="shunfeng", tracking_number="SF1", events=()
    )
    assert update.event_id is None and not update.subscription_ended
