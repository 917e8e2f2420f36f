"""The local carrier over real HTTP: our Kuaidi100 client books and subscribes, the emulator
drives parcels and pushes signed updates, and a small receiver reads them with our adapters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import carriers
from chalicelib.adapters.carriers import (
    CarrierError,
    ParcelRequest,
    Party,
    TrackingUpdate,
    WebhookRejected,
)
from chalicelib.adapters.carriers.kuaidi100 import Kuaidi100Client, partner_accounts
from chalicelib.domain.tracking import Booking, Timeline, TrackingStatus
from infra.local.emulators.carrier import CarrierEmulator

S = TrackingStatus
REPO_ROOT = Path(__file__).resolve().parents[2]
SENDER = Party(
    "王磊", "13800138001", "CN", "上海市", "上海市", "浦东新区张江路 88 号", "201203", "华东仓"
)
RECIPIENT = Party("王芳", "+8613700000000", "CN", "江苏", "南京市", "中山路 1 号", "210000")


def parcel_for(reference: str, carrier: str = "shunfeng", **changes: Any) -> ParcelRequest:
    values: dict[str, Any] = {
        "reference": reference,
        "carrier": carrier,
        "sender": SENDER,
        "recipient": RECIPIENT,
        "description": "紫砂壶",
        "quantity": 1,
        "weight_grams": 500,
    }
    return ParcelRequest(**{**values, **changes})


@dataclass
class Delivery:
    format: str
    status_code: int
    body: bytes
    update: TrackingUpdate | None


@dataclass
class Receiver:
    """Our side of the webhooks: POST /webhooks/carriers/{format}, verified by the adapters."""

    secrets: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0  # answer this many pushes with a 500 first
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def callback_url(self) -> str:
        return f"{self.url}/webhooks/carriers/kuaidi100?shop=demo"

    def accepted(self, number: str | None = None) -> list[TrackingUpdate]:
        with self.lock:
            return [
                d.update
                for d in self.deliveries
                if d.update is not None
                and d.status_code == 200
                and (number is None or d.update.tracking_number == number)
            ]

    def timeline(self, number: str) -> Timeline:
        timeline = Timeline()
        for update in self.accepted(number):
            timeline = timeline.add(update.events)
        return timeline

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> carriers.WebhookReply:
        route = urllib.parse.urlsplit(path).path
        name = route.rsplit("/", 1)[-1]
        assert route == f"/webhooks/carriers/{name}", f"pushed to {route}"
        module = carriers.webhook_format(name)
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                reply = module.reject("try again later", 500)
                self.deliveries.append(Delivery(name, reply.status_code, body, None))
                return reply
        try:
            update = module.verify_and_parse(headers, body, self.secrets[name])
            reply = module.acknowledge()
        except WebhookRejected as rejected:
            update, reply = None, module.reject(str(rejected), rejected.status_code)
        with self.lock:
            self.deliveries.append(Delivery(name, reply.status_code, body, update))
        return reply


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = state.handle(self.path, dict(self.headers.items()), body)
            payload = reply.body.encode()
            self.send_response(reply.status_code)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def start_emulator(
    state_dir: Path, receiver: Receiver, step_seconds: float = 3600.0, **options: Any
) -> CarrierEmulator:
    emulator = CarrierEmulator(state_dir, step_seconds, webhook_url=receiver.url, **options)
    emulator.start()
    env = emulator.app_env()
    receiver.secrets.update(
        kuaidi100=env["CARRIER_WEBHOOK_SECRET"],
        aftership=env["AFTERSHIP_WEBHOOK_SECRET"],
        easypost=env["EASYPOST_WEBHOOK_SECRET"],
    )
    return emulator


@pytest.fixture
def emulator(tmp_path: Path, receiver: Receiver) -> Iterator[CarrierEmulator]:
    emulator = start_emulator(tmp_path, receiver)
    yield emulator
    emulator.stop()


def client_for(emulator: CarrierEmulator, **changes: Any) -> Kuaidi100Client:
    env = emulator.app_env()
    options: dict[str, Any] = {
        "secret": env["CARRIER_SECRET"],
        "label_base_url": env["CARRIER_LABEL_BASE_URL"],
        "partners": partner_accounts(env["KUAIDI100_PARTNERS"]),
        "tracking_url_template": env["CARRIER_TRACKING_URL_TEMPLATE"],
    }
    key = changes.pop("key", env["CARRIER_KEY"])
    return Kuaidi100Client(env["CARRIER_BASE_URL"], key, **{**options, **changes})


def book(emulator: CarrierEmulator, receiver: Receiver, shipment_id: str) -> Booking:
    salt = emulator.app_env()["CARRIER_WEBHOOK_SECRET"]
    return client_for(emulator).book(parcel_for(shipment_id), receiver.callback_url, salt)


def control(emulator: CarrierEmulator, path: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(emulator.url + path, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def get(emulator: CarrierEmulator, path: str) -> Any:
    with urllib.request.urlopen(emulator.url + path, timeout=10) as response:
        return json.loads(response.read())


def test_a_booked_parcel_is_pushed_step_by_step_until_delivered(emulator, receiver):
    booking = book(emulator, receiver, "shp_0001")
    number = booking.tracking_number

    statuses = []
    while True:
        outcome = control(emulator, f"/_emulator/parcels/{number}/advance")
        if outcome["push"] is None:
            break
        assert outcome["push"]["ok"] is True and outcome["push"]["attempts"] == 1
        statuses.append(receiver.timeline(number).current_status)

    assert booking.tracking_url == f"{emulator.url}/chaxun?com=shunfeng&nu={number}"
    assert (booking.booking_provider, booking.tracking_provider) == ("kuaidi100", "kuaidi100")
    assert number.startswith("SF") and booking.label_url
    with urllib.request.urlopen(booking.label_url, timeout=10) as label:
        assert label.headers["Content-Type"] == "image/png"
    # collected, through two hubs, into the destination city, out, delivered
    assert statuses[0] is S.IN_TRANSIT
    assert statuses[-2:] == [S.OUT_FOR_DELIVERY, S.DELIVERED]
    assert len(statuses) >= 6
    timeline = receiver.timeline(number)
    assert timeline.current_status is S.DELIVERED
    cities = {e.location.city for e in timeline.events}
    assert len(cities) >= 3
    # The estimate came with the pushes while the parcel was on its way.
    assert any(e.estimated_delivery is not None for e in timeline.events)
    updates = receiver.accepted(number)
    assert {u.source for u in updates} == {"kuaidi100"}
    assert updates[-1].subscription_ended is True and updates[0].subscription_ended is False
    assert all(u.carrier == "shunfeng" for u in updates)
    # The tracking page shows the same journey.
    with urllib.request.urlopen(booking.tracking_url, timeout=10) as page:
        html = page.read().decode()
    assert timeline.events[-1].description in html


def test_parcels_take_the_three_push_formats_in_turn(tmp_path, receiver):
    emulator = start_emulator(
        tmp_path, receiver, push_formats=("kuaidi100", "aftership", "easypost")
    )
    try:
        numbers = [book(emulator, receiver, f"shp_rr_{i}").tracking_number for i in range(3)]

        control(emulator, "/_emulator/fast-forward")

        for number, expected_format in zip(
            numbers, ["kuaidi100", "aftership", "easypost"], strict=True
        ):
            updates = receiver.accepted(number)
            assert {u.source for u in updates} == {expected_format}
            assert receiver.timeline(number).current_status is S.DELIVERED
        paths = {d.format for d in receiver.deliveries}
        assert paths == {"kuaidi100", "aftership", "easypost"}
        assert all(
            u.event_id for u in receiver.accepted(numbers[1]) + receiver.accepted(numbers[2])
        )
        assert not any(d.status_code != 200 for d in receiver.deliveries)
    finally:
        emulator.stop()


def test_a_parcel_can_be_switched_to_another_format(emulator, receiver):
    number = book(emulator, receiver, "shp_switch").tracking_number

    control(emulator, f"/_emulator/parcels/{number}/advance", {"format": "easypost"})
    control(emulator, f"/_emulator/parcels/{number}/advance", {"format": "aftership"})

    assert [u.source for u in receiver.accepted(number)] == ["easypost", "aftership"]
    assert get(emulator, f"/_emulator/parcels/{number}")["format"] == "aftership"


def test_a_repeated_order_id_is_refused_and_subscribing_twice_is_fine(emulator, receiver):
    first = book(emulator, receiver, "shp_retry")

    with pytest.raises(CarrierError) as refused:
        book(emulator, receiver, "shp_retry")

    assert (refused.value.code, refused.value.retryable) == ("30001", False)
    assert "orderId" in str(refused.value)
    client_for(emulator).subscribe(
        "shunfeng", first.tracking_number, receiver.callback_url, "salt"
    )  # 501 already subscribed counts as subscribed
    parcels = [
        p for p in get(emulator, "/_emulator/parcels")["parcels"] if p["shipment_id"] == "shp_retry"
    ]
    assert len(parcels) == 1
    assert parcels[0]["callback_url"] == receiver.callback_url


def test_a_subscription_with_the_wrong_key_is_refused_and_not_worth_retrying(emulator, receiver):
    client = client_for(emulator, key="not-our-key")

    with pytest.raises(CarrierError) as refused:
        client.subscribe("shunfeng", "SF100", receiver.callback_url, "salt")
    assert (refused.value.code, refused.value.retryable) == ("600", False)
    with pytest.raises(CarrierError) as no_waybill:
        client.book(parcel_for("shp_x"), receiver.callback_url, "salt")
    assert no_waybill.value.code == "30003"
    assert get(emulator, "/_emulator/parcels")["parcels"] == []


@pytest.mark.parametrize(
    ("parcel", "client_changes", "code", "words"),
    [
        (parcel_for("o1", carrier="pigeonpost"), {}, "30001", "kuaidicom"),
        (
            parcel_for("o2", recipient=Party("王芳", "", "CN", "江苏", "南京市", "中山路", "1")),
            {},
            "30001",
            "recMan.mobile",
        ),
        (
            parcel_for("o3", sender=Party("", "13800138001", "CN", "上海市", "上海市", "路", "1")),
            {},
            "30001",
            "sendMan.name",
        ),
        (
            parcel_for("o4", recipient=Party("王芳", "13700000000", "CN", "", "", "", "1")),
            {},
            "30001",
            "recMan.printAddr",
        ),
        (parcel_for("o5"), {"secret": "not-our-secret"}, "30002", "签名"),
        (parcel_for("o6", carrier="zhongtong"), {"partners": {}}, "30001", "partnerId"),
    ],
)
def test_the_e_waybill_desk_refuses_what_kuaidi100_refuses(
    emulator, parcel, client_changes, code, words
):
    client = client_for(emulator, **client_changes)

    with pytest.raises(CarrierError) as refused:
        client.order_waybill(parcel)

    assert (refused.value.code, refused.value.retryable) == (code, False)
    assert words in str(refused.value)
    assert get(emulator, "/_emulator/parcels")["parcels"] == []


def test_a_recipient_with_only_a_landline_may_ship_with_any_carrier_but_sf_express(emulator):
    landline_only = Party("王芳", "025-84123456", "CN", "江苏", "南京市", "中山路 1 号", "210000")
    waybill = client_for(emulator).order_waybill(
        parcel_for("o-zt", carrier="zhongtong", recipient=landline_only)
    )

    assert waybill.tracking_number.startswith("ZT")
    with pytest.raises(CarrierError):
        client_for(emulator).order_waybill(parcel_for("o-sf", recipient=landline_only))


def test_a_kuaidi100_outage_is_worth_retrying(emulator):
    control(emulator, "/_emulator/outage", {"provider": "kuaidi100", "requests": 1})

    with pytest.raises(CarrierError) as down:
        client_for(emulator).order_waybill(parcel_for("o-down"))
    waybill = client_for(emulator).order_waybill(parcel_for("o-down"))

    assert (down.value.code, down.value.retryable) == ("-1", True)
    assert waybill.tracking_number


def test_an_unreachable_carrier_is_worth_retrying(receiver):
    client = Kuaidi100Client("http://127.0.0.1:9", "key", timeout=2)

    with pytest.raises(CarrierError) as unreachable:
        client.subscribe("shunfeng", "SF100", receiver.callback_url, "salt")
    assert unreachable.value.retryable is True


def test_subscribe_posts_kuaidi100s_own_form():
    captured: dict[str, Any] = {}

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            captured.update(path=self.path, form=dict(urllib.parse.parse_qsl(body.decode())))
            answer = json.dumps({"result": False, "returnCode": "501", "message": "重复订阅"})
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer.encode())))
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        client = Kuaidi100Client(f"http://127.0.0.1:{server.server_address[1]}/", "K")
        client.subscribe(
            "shunfeng", "SF1", "https://api.example/webhooks/carriers/kuaidi100", "S", "13800000000"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert captured["path"] == "/poll"
    assert captured["form"]["schema"] == "json"
    assert json.loads(captured["form"]["param"]) == {
        "company": "shunfeng",
        "number": "SF1",
        "key": "K",
        "parameters": {
            "callbackurl": "https://api.example/webhooks/carriers/kuaidi100",
            "salt": "S",
            "resultv2": "1",
            "phone": "13800000000",
        },
    }


def test_late_and_duplicate_pushes_leave_the_timeline_delivered(emulator, receiver):
    number = book(emulator, receiver, "shp_late").tracking_number
    control(emulator, f"/_emulator/parcels/{number}/advance")  # collected
    control(emulator, "/_emulator/fast-forward")
    assert receiver.timeline(number).current_status is S.DELIVERED
    delivered_at = receiver.timeline(number).current_event.occurred_at

    # A scan from before the delivery arrives late, then the last push arrives twice.
    earlier = (delivered_at - timedelta(hours=3)).isoformat()
    late = control(
        emulator,
        f"/_emulator/parcels/{number}/push",
        {"status": "in_transit", "occurred_at": earlier, "city": "杭州"},
    )
    deliveries_before = len(receiver.deliveries)
    duplicate = control(emulator, f"/_emulator/parcels/{number}/push")
    stray = control(emulator, f"/_emulator/parcels/{number}/push", {"status": "in_transit"})

    assert late["push"]["ok"] and duplicate["push"]["ok"] and stray["push"]["ok"]
    assert (
        receiver.deliveries[deliveries_before].body
        == receiver.deliveries[deliveries_before - 1].body
    )
    timeline = receiver.timeline(number)
    assert timeline.current_status is S.DELIVERED
    hangzhou = [e for e in timeline.events if e.location.city == "杭州市"]
    assert hangzhou and hangzhou[0].occurred_at == datetime.fromisoformat(earlier)
    assert timeline.events[-1].status is S.IN_TRANSIT  # the stray scan is history only
    assert len(timeline) == len(Timeline(timeline.events).add(timeline.events))


def test_an_exception_then_recovery_is_followed_by_the_timeline(emulator, receiver):
    number = book(emulator, receiver, "shp_exception").tracking_number
    control(emulator, f"/_emulator/parcels/{number}/advance")
    control(
        emulator,
        f"/_emulator/parcels/{number}/push",
        {"status": "exception", "format": "aftership"},
    )
    assert receiver.timeline(number).current_status is S.EXCEPTION

    control(emulator, f"/_emulator/parcels/{number}/advance")

    assert receiver.timeline(number).current_status is S.IN_TRANSIT


def test_a_refused_push_is_retried_until_it_is_accepted(emulator, receiver):
    number = book(emulator, receiver, "shp_retry_push").tracking_number
    receiver.fail_next = 2

    outcome = control(emulator, f"/_emulator/parcels/{number}/advance")

    assert outcome["push"]["ok"] is True
    assert outcome["push"]["attempts"] == 3
    assert [d.status_code for d in receiver.deliveries] == [500, 500, 200]
    assert receiver.timeline(number).current_status is S.IN_TRANSIT


def test_a_push_signed_with_another_salt_is_rejected_by_us(emulator, receiver):
    client = client_for(emulator)
    booking = client.book(parcel_for("shp_forged"), receiver.callback_url, "a-salt-we-do-not-use")

    outcome = control(emulator, f"/_emulator/parcels/{booking.tracking_number}/advance")

    assert outcome["push"]["ok"] is False
    assert outcome["push"]["status_code"] == 401
    assert receiver.accepted() == []
    assert {d.status_code for d in receiver.deliveries} == {401}


def test_parcels_move_on_by_themselves(tmp_path, receiver):
    emulator = start_emulator(tmp_path, receiver, step_seconds=0.1)
    try:
        number = book(emulator, receiver, "shp_clock").tracking_number
        deadline = time.monotonic() + 30
        while receiver.timeline(number).current_status is not S.DELIVERED:
            assert time.monotonic() < deadline, "the parcel did not arrive in time"
            time.sleep(0.1)
    finally:
        emulator.stop()
    assert get_parcel_after_stop(tmp_path, number)["remaining_steps"] == 0


def get_parcel_after_stop(state_dir: Path, number: str) -> dict[str, Any]:
    stored = json.loads((state_dir / "carrier-parcels.json").read_text())
    parcel = next(p for p in stored if p["tracking_number"] == number)
    return {"remaining_steps": len(parcel["script"])}


def test_secrets_and_parcels_survive_a_restart(tmp_path, receiver):
    first = start_emulator(tmp_path, receiver)
    env = first.app_env()
    number = book(first, receiver, "shp_restart").tracking_number
    first.stop()

    second = start_emulator(tmp_path, receiver)
    try:
        again = second.app_env()
        for name in (
            "CARRIER_KEY",
            "CARRIER_SECRET",
            "EASYPOST_API_KEY",
            "AFTERSHIP_API_KEY",
            "CARRIER_WEBHOOK_SECRET",
            "AFTERSHIP_WEBHOOK_SECRET",
            "EASYPOST_WEBHOOK_SECRET",
        ):
            assert again[name] == env[name] and len(again[name]) >= 32
        assert (tmp_path / "carrier-secrets.json").stat().st_mode & 0o777 == 0o600
        control(second, "/_emulator/fast-forward")
        assert receiver.timeline(number).current_status is S.DELIVERED
    finally:
        second.stop()


def test_control_errors_are_plain_http_errors(emulator):
    for path, body, status in [
        ("/_emulator/parcels/NOPE/advance", None, 404),
        ("/_emulator/parcels/NOPE/push", {"status": "delivered"}, 404),
    ]:
        with pytest.raises(urllib.error.HTTPError) as error:
            control(emulator, path, body)
        assert error.value.code == status


def test_the_emulator_runs_on_its_own(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.local.emulators.carrier",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_emulator/parcels", timeout=10) as response:
            assert json.loads(response.read()) == {"parcels": []}
        assert (tmp_path / "carrier-secrets.json").exists()
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


# --- EasyPost -------------------------------------------------------------------------------


def sdk_for(emulator: CarrierEmulator) -> Any:
    import easypost

    env = emulator.app_env()
    return easypost.EasyPostClient(env["EASYPOST_API_KEY"], api_base=env["EASYPOST_BASE_URL"])


def easypost_address(party: Party, **changes: Any) -> dict[str, Any]:
    return {
        "name": party.name,
        "street1": party.line1,
        "city": party.city,
        "state": party.region,
        "zip": party.postcode,
        "country": party.country,
        "phone": party.phone,
        **changes,
    }


def test_the_official_easypost_sdk_creates_buys_and_tracks_a_shipment(emulator, receiver):
    client = sdk_for(emulator)
    abroad = Party("Ann Lee", "+14155550100", "US", "CA", "San Francisco", "1 Main St", "94105")

    shipment = client.shipment.create(
        to_address=easypost_address(abroad),
        from_address=easypost_address(SENDER),
        parcel={"weight": 17.6},
        reference="shp_sdk",
    )
    cheapest_dhl = min(
        (rate for rate in shipment.rates if rate.carrier == "DHLExpress"),
        key=lambda rate: float(rate.rate),
    )
    bought = client.shipment.buy(shipment.id, rate={"id": cheapest_dhl.id})
    tracker = client.tracker.retrieve(bought.tracker.id)

    assert bought.tracking_code and bought.postage_label.label_url
    assert bought.selected_rate.id == cheapest_dhl.id
    assert tracker.tracking_code == bought.tracking_code and tracker.carrier == "DHLExpress"
    control(emulator, "/_emulator/fast-forward")
    assert receiver.timeline(bought.tracking_code).current_status is S.DELIVERED
    assert {u.source for u in receiver.accepted(bought.tracking_code)} == {"easypost"}


def test_easypost_refuses_an_address_without_a_country_in_its_own_error_shape(emulator):
    import easypost

    client = sdk_for(emulator)
    with pytest.raises(easypost.errors.InvalidRequestError) as refused:
        client.shipment.create(
            to_address=easypost_address(RECIPIENT, country=""),
            from_address=easypost_address(SENDER),
            parcel={"weight": 10},
        )
    body = json.loads(refused.value.http_body)

    assert refused.value.http_status == 422
    assert body["error"]["code"] == "ADDRESS.COUNTRY.INVALID"
    assert body["error"]["errors"][0]["field"] == "shipment.to_address.country"


def test_easypost_refuses_a_wrong_key_and_a_second_purchase(emulator):
    import easypost

    with pytest.raises(easypost.errors.UnauthorizedError):
        easypost.EasyPostClient("nope", api_base=f"{emulator.url}/v2").shipment.create(
            to_address=easypost_address(RECIPIENT), from_address=easypost_address(SENDER)
        )
    client = sdk_for(emulator)
    shipment = client.shipment.create(
        to_address=easypost_address(RECIPIENT),
        from_address=easypost_address(SENDER),
        parcel={"weight": 10},
    )
    client.shipment.buy(shipment.id, rate={"id": shipment.rates[0].id})
    with pytest.raises(easypost.errors.InvalidRequestError):
        client.shipment.buy(shipment.id, rate={"id": shipment.rates[0].id})


def test_our_easypost_client_books_the_cheapest_rate_of_the_carrier(emulator, receiver):
    from chalicelib.adapters.carriers.easypost import EasyPostClient

    env = emulator.app_env()
    client = EasyPostClient(env["EASYPOST_API_KEY"], env["EASYPOST_BASE_URL"])
    abroad = Party("Ann Lee", "+14155550100", "US", "CA", "San Francisco", "1 Main St", "94105")

    booking = client.book(parcel_for("shp_intl", carrier="dhl", recipient=abroad))

    parcel = get(emulator, f"/_emulator/parcels/{booking.tracking_number}")
    assert (booking.booking_provider, booking.tracking_provider) == ("easypost", "easypost")
    assert booking.label_url.endswith(".png") and parcel["booked_by"] == "easypost"
    shipment = sdk_for(emulator).shipment.retrieve(booking.label_reference)
    dhl = [float(r.rate) for r in shipment.rates if r.carrier == "DHLExpress"]
    assert float(shipment.selected_rate.rate) == min(dhl)


def test_our_easypost_client_hears_an_outage_as_worth_retrying(emulator):
    from chalicelib.adapters.carriers.easypost import EasyPostClient

    env = emulator.app_env()
    control(emulator, "/_emulator/outage", {"provider": "easypost", "requests": 1})

    with pytest.raises(CarrierError) as down:
        EasyPostClient(env["EASYPOST_API_KEY"], env["EASYPOST_BASE_URL"]).book(
            parcel_for("shp_down", carrier="dhl")
        )
    assert down.value.retryable is True


# --- AfterShip ------------------------------------------------------------------------------


def test_a_parcel_registered_with_aftership_is_pushed_in_aftership_format(emulator, receiver):
    from chalicelib.adapters.carriers.aftership import AfterShipClient

    env = emulator.app_env()
    waybill = client_for(emulator).order_waybill(parcel_for("shp_as", carrier="yunda"))
    tracker = AfterShipClient(env["AFTERSHIP_API_KEY"], env["AFTERSHIP_BASE_URL"])

    tracker.register("yunda", waybill.tracking_number)
    tracker.register("yunda", waybill.tracking_number)  # already tracked: fine

    control(emulator, "/_emulator/fast-forward")
    assert {u.source for u in receiver.accepted(waybill.tracking_number)} == {"aftership"}
    assert receiver.timeline(waybill.tracking_number).current_status is S.DELIVERED
    with pytest.raises(CarrierError) as refused:
        tracker.register("pigeonpost", "X1")
    assert refused.value.code == "4005"
    with pytest.raises(CarrierError) as unauthorised:
        AfterShipClient("wrong", env["AFTERSHIP_BASE_URL"]).register("yunda", "X2")
    assert unauthorised.value.code == "401"
