"""The local carrier's engine: parcels that move on by themselves and push their tracking.

Each provider's API lives in its own module and is mixed in here: ``kuaidi100`` (push
subscription, e-waybill desk), ``easypost`` (shipments, rates, buy, trackers) and
``aftership`` (registering a tracking). This module keeps the parcels, moves them forward
one step every ``step_seconds``, and delivers each step to whoever tracks the parcel, in
that provider's format, retrying a push that is not accepted.

Parcels tracked by EasyPost or AfterShip are pushed to ``{webhook_url}/webhooks/carriers/
easypost|aftership`` (the account-level webhook each provider is configured with); Kuaidi100
parcels go to their subscription's ``callbackurl``. ``POST /_emulator/outage`` makes a
provider fail its next requests, as a provider that is down would.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.local.emulators.carrier.aftership import AfterShipDesk
from infra.local.emulators.carrier.easypost import EasyPostDesk
from infra.local.emulators.carrier.journeys import (
    AFTERSHIP,
    BEIJING,
    CITY_BY_NAME,
    DELIVERY_DAYS,
    FORMATS,
    KUAIDI100,
    KUAIDI100_CODES,
    STATUSES,
    EmulatorError,
    Parcel,
    after,
    default_description,
    event,
    last_place,
    parse_time,
    script,
)
from infra.local.emulators.carrier.kuaidi100 import COMPANIES, Kuaidi100Desk
from infra.local.emulators.carrier.server import handler_for

SECRETS_FILE = "carrier-secrets.json"
PARCELS_FILE = "carrier-parcels.json"
PUSH_ATTEMPTS = 4  # the first try and three retries
RETRY_DELAYS = (0.2, 0.5, 1.0)
PUSH_TIMEOUT_SECONDS = 5.0
PUSH_LOG_LENGTH = 20
SECRET_NAMES = (
    "key",
    "secret",
    "salt",
    "aftership_webhook_secret",
    "easypost_webhook_secret",
    "easypost_api_key",
    "aftership_api_key",
)


class CarrierEmulator(Kuaidi100Desk, EasyPostDesk, AfterShipDesk):
    """The local carrier; ``start()`` serves it on a background thread."""

    def __init__(
        self,
        state_dir: Path,
        step_seconds: float = 20.0,
        *,
        push_formats: tuple[str, ...] = (KUAIDI100,),
        webhook_url: str | None = None,
    ) -> None:
        unknown = [name for name in push_formats if name not in FORMATS]
        if unknown or not push_formats:
            raise ValueError(f"push formats must be some of {FORMATS}, got {push_formats}")
        self.state_dir = Path(state_dir)
        self.step_seconds = step_seconds
        self.push_formats = push_formats
        self.webhook_url = webhook_url.rstrip("/") if webhook_url else None
        self._easypost_shipments: dict[str, dict[str, Any]] = {}
        self._outages: dict[str, int] = {}
        self._secrets = _load_or_create_secrets(self.state_dir / SECRETS_FILE)
        self._lock = threading.RLock()
        self._parcel_locks: dict[str, threading.Lock] = {}
        self._parcels: dict[str, Parcel] = self._load_parcels()
        self._next_format = len(self._parcels)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the carrier emulator has no URL until start() is called")
        return self._url

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            raise RuntimeError("the carrier emulator is already running")
        server = ThreadingHTTPServer((host, port), handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._url = f"http://{host}:{server.server_address[1]}"
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="carrier-emulator",
                daemon=True,
            ),
            threading.Thread(target=self._drive, name="carrier-emulator-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self._url

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._server = None
        self._threads = []

    def app_env(self) -> dict[str, str]:
        """The app's carrier settings for this emulator."""
        tracking_page = f"{self.url}/chaxun?com={{carrier}}&nu={{tracking_number}}"
        partners = {
            company: {"partnerId": f"{company}-{self._secrets['key'][:8]}"}
            for company in sorted(COMPANIES)
        }
        return {
            "CARRIER_BASE_URL": self.url,
            "CARRIER_LABEL_BASE_URL": self.url,
            "CARRIER_KEY": self._secrets["key"],
            "CARRIER_SECRET": self._secrets["secret"],
            "CARRIER_WEBHOOK_SECRET": self._secrets["salt"],
            "KUAIDI100_PARTNERS": json.dumps(partners),
            "AFTERSHIP_WEBHOOK_SECRET": self._secrets["aftership_webhook_secret"],
            "AFTERSHIP_API_KEY": self._secrets["aftership_api_key"],
            "AFTERSHIP_BASE_URL": f"{self.url}/tracking/2024-04",
            "EASYPOST_WEBHOOK_SECRET": self._secrets["easypost_webhook_secret"],
            "EASYPOST_API_KEY": self._secrets["easypost_api_key"],
            "EASYPOST_BASE_URL": f"{self.url}/v2",
            "CARRIER_TRACKING_URL_TEMPLATE": tracking_page,
        }

    def fail_next(self, provider: str, requests: int) -> dict[str, int]:
        """The provider's next ``requests`` API calls fail as they do when it is down."""
        if provider not in FORMATS:
            raise EmulatorError(400, f"provider must be one of {', '.join(FORMATS)}")
        with self._lock:
            self._outages[provider] = max(0, int(requests))
            return dict(self._outages)

    # --- control -----------------------------------------------------------------------

    def parcels(self) -> list[dict[str, Any]]:
        with self._lock:
            return [parcel.view() for parcel in self._parcels.values()]

    def parcel(self, number: str) -> dict[str, Any]:
        with self._lock:
            return self._parcel(number).view()

    def advance(self, number: str, push_format: str | None = None) -> dict[str, Any]:
        """Take the parcel's next step and push it; the parcel's state and push outcome."""
        with self._parcel_lock(number):
            with self._lock:
                parcel = self._parcel(number)
                self._switch_format(parcel, push_format)
                if not parcel.script:
                    parcel.next_step_at = None
                    self._save()
                    return {"parcel": parcel.view(), "push": None}
                step = parcel.script.pop(0)
                self._record(parcel, step, after(parcel.events))
                parcel.next_step_at = (
                    time.time() + self.step_seconds
                    if parcel.script and self.step_seconds > 0
                    else None
                )
                push = self._prepare_push(parcel)
                self._save()
            return self._send(number, push)

    def push(
        self,
        number: str,
        *,
        status: str | None = None,
        occurred_at: str | None = None,
        description: str | None = None,
        city: str | None = None,
        push_format: str | None = None,
    ) -> dict[str, Any]:
        """A raw push: one event with ``status``, or, without one, the last push again."""
        with self._parcel_lock(number):
            with self._lock:
                parcel = self._parcel(number)
                if status is None:
                    if parcel.last_push is None:
                        raise EmulatorError(409, f"nothing has been pushed for {number} yet")
                    push = parcel.last_push
                else:
                    if status not in STATUSES:
                        raise EmulatorError(400, f"status must be one of {', '.join(STATUSES)}")
                    self._switch_format(parcel, push_format)
                    when = parse_time(occurred_at) if occurred_at else after(parcel.events)
                    place = CITY_BY_NAME.get(city or "") or last_place(parcel)
                    new_event = event(
                        status,
                        KUAIDI100_CODES[status],
                        description or default_description(status, place),
                        place,
                    )
                    self._record(parcel, new_event, when)
                    push = self._prepare_push(parcel)
                self._save()
            return self._send(number, push)

    def fast_forward(self) -> list[dict[str, Any]]:
        """Every subscribed parcel to the end of its script, pushing each step."""
        with self._lock:
            pending = [
                parcel.tracking_number
                for parcel in self._parcels.values()
                if parcel.callback_url is not None and parcel.script
            ]
        outcomes = []
        for number in pending:
            outcome: dict[str, Any] = {}
            while True:
                with self._lock:
                    if not self._parcels[number].script:
                        break
                outcome = self.advance(number)
            outcomes.append(outcome)
        return outcomes

    # --- internals ---------------------------------------------------------------------

    def _new_parcel(
        self, number: str, company: str, shipment_id: str | None, *, push_format: str | None = None
    ) -> Parcel:
        if push_format is None:
            push_format = self.push_formats[self._next_format % len(self.push_formats)]
            self._next_format += 1
        parcel = Parcel(
            tracking_number=number,
            carrier=company,
            push_format=push_format,
            shipment_id=shipment_id,
            label_reference=f"task-{uuid.uuid5(uuid.NAMESPACE_URL, company + number).hex[:20]}",
            script=script(number, company),
        )
        # The waybill exists from now: the first event is the order reaching the carrier.
        self._record(parcel, parcel.script.pop(0), after([]))
        first = parse_time(parcel.events[0]["occurred_at"])
        eta = (first + timedelta(days=DELIVERY_DAYS)).replace(
            hour=18, minute=0, second=0, microsecond=0
        )
        parcel.estimated_delivery = eta.isoformat()
        self._parcels[number] = parcel
        return parcel

    def _start_tracking(self, parcel: Parcel, push_format: str) -> None:
        """``push_format``'s provider tracks the parcel from now: its steps go there."""
        parcel.push_format = push_format
        if self.webhook_url is not None:
            parcel.callback_url = f"{self.webhook_url}/webhooks/carriers/{push_format}"
        elif parcel.callback_url is not None:
            parcel.callback_url = _callback_for(push_format, parcel.callback_url)
        if parcel.callback_url and self.step_seconds > 0 and parcel.next_step_at is None:
            parcel.next_step_at = time.time() + self.step_seconds

    def _outage(self, provider: str) -> bool:
        """Whether this call to ``provider`` fails (it is down for a few more calls)."""
        with self._lock:
            left = self._outages.get(provider, 0)
            if left <= 0:
                return False
            self._outages[provider] = left - 1
            return True

    def _record(self, parcel: Parcel, event: dict[str, Any], when: datetime) -> None:
        parcel.events.append({**event, "occurred_at": when.astimezone(BEIJING).isoformat()})

    def _switch_format(self, parcel: Parcel, push_format: str | None) -> None:
        if push_format is None:
            return
        if push_format not in FORMATS:
            raise EmulatorError(400, f"format must be one of {', '.join(FORMATS)}")
        parcel.push_format = push_format

    def _parcel(self, number: str) -> Parcel:
        parcel = self._parcels.get(number)
        if parcel is None:
            raise EmulatorError(404, f"no parcel {number}")
        return parcel

    def _parcel_lock(self, number: str) -> threading.Lock:
        with self._lock:
            return self._parcel_locks.setdefault(number, threading.Lock())

    def _prepare_push(self, parcel: Parcel) -> dict[str, Any] | None:
        """The signed request for the parcel's track now (``None`` if nobody subscribed)."""
        if parcel.callback_url is None:
            return None
        push_format = parcel.push_format
        url = _callback_for(push_format, parcel.callback_url)
        if push_format == KUAIDI100:
            body, headers = self.kuaidi100_push(parcel)
        elif push_format == AFTERSHIP:
            body, headers = self.aftership_push(parcel)
        else:
            body, headers = self.easypost_push(parcel)
        push = {"format": push_format, "url": url, "headers": headers, "body": body.decode()}
        parcel.last_push = push
        return push

    def _send(self, number: str, push: dict[str, Any] | None) -> dict[str, Any]:
        outcome = None if push is None else _deliver(push, self._stopping)
        with self._lock:
            parcel = self._parcels[number]
            if outcome is not None:
                parcel.pushes = [*parcel.pushes, outcome][-PUSH_LOG_LENGTH:]
                self._save()
            return {"parcel": parcel.view(), "push": outcome}

    def _drive(self) -> None:
        """Move due parcels forward until stopped."""
        tick = min(1.0, max(0.05, self.step_seconds / 4)) if self.step_seconds > 0 else 1.0
        while not self._stopping.wait(tick):
            if self.step_seconds <= 0:
                continue
            now = time.time()
            with self._lock:
                due = [
                    parcel.tracking_number
                    for parcel in self._parcels.values()
                    if parcel.next_step_at is not None and parcel.next_step_at <= now
                ]
            for number in due:
                if self._stopping.is_set():
                    return
                with contextlib.suppress(EmulatorError):
                    self.advance(number)

    def _load_parcels(self) -> dict[str, Parcel]:
        path = self.state_dir / PARCELS_FILE
        if not path.exists():
            return {}
        stored = json.loads(path.read_text())
        return {item["tracking_number"]: Parcel(**item) for item in stored}

    def _save(self) -> None:
        path = self.state_dir / PARCELS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temp.write_text(
            json.dumps([asdict(p) for p in self._parcels.values()], ensure_ascii=False, indent=1)
        )
        temp.replace(path)


def _callback_for(push_format: str, callback_url: str) -> str:
    """The parcel's callback URL with its format segment (``/kuaidi100``, ``/easypost``,
    ``/aftership``) naming ``push_format``; the segment is added where it has none."""
    parts = urllib.parse.urlsplit(callback_url)
    segments = parts.path.split("/")
    named = [i for i, segment in enumerate(segments) if segment in FORMATS]
    if named:
        segments[named[-1]] = push_format
        path = "/".join(segments)
    else:
        path = f"{parts.path.rstrip('/')}/{push_format}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def _deliver(push: dict[str, Any], stopping: threading.Event) -> dict[str, Any]:
    """POST the push, retrying a few times; what happened."""
    outcome: dict[str, Any] = {
        "format": push["format"],
        "url": push["url"],
        "at": datetime.now(BEIJING).isoformat(timespec="seconds"),
        "attempts": 0,
        "status_code": None,
        "ok": False,
        "error": None,
    }
    for attempt in range(PUSH_ATTEMPTS):
        if attempt and stopping.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]):
            break  # stopping: give up the retries
        outcome["attempts"] = attempt + 1
        request = urllib.request.Request(
            push["url"], data=push["body"].encode(), headers=push["headers"], method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            outcome.update(status_code=None, error=str(error))
            continue
        outcome.update(status_code=status, error=None)
        if 200 <= status < 300 and _accepted(push["format"], answer):
            outcome["ok"] = True
            break
        outcome["error"] = answer.decode(errors="replace")[:200]
    return outcome


def _accepted(push_format: str, answer: bytes) -> bool:
    if push_format != KUAIDI100:
        return True
    try:
        document = json.loads(answer)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and document.get("result") is True
        and str(document.get("returnCode")) == "200"
    )


def _load_or_create_secrets(path: Path) -> dict[str, str]:
    """The emulator's keys and secrets, generated once (mode 0600) and completed when a
    newer emulator needs more of them."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if name not in stored]
    if not missing:
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {**{name: _new_secret(name) for name in missing}, **stored}
    # Write a private temp file and move it into place: complete or absent. When two
    # emulators start at once, the first complete file wins for both.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle)
        if stored:
            os.replace(temp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    loaded: dict[str, str] = json.loads(path.read_text())
    return loaded


def _new_secret(name: str) -> str:
    # Kuaidi100 keys, secrets and salts are 32-character strings.
    return secrets.token_hex(16) if name in ("key", "secret", "salt") else secrets.token_urlsafe(32)
