"""Parcel tracking: what carriers report about a parcel, and where it stands.

A carrier reports ``TrackingEvent``s (scans, hand-overs, delivery attempts). They arrive late,
twice, out of order and from more than one push, so a ``Timeline`` keeps every distinct event
in time order and works out the parcel's status from the whole set: the same events give the
same timeline in whatever order they arrived.

How the status moves (``Timeline.current_status``). Events are read oldest first; each one may
change the status according to its place on the progress scale:

    info_received < in_transit < {attempt_fail, available_for_pickup, exception}
                  < out_for_delivery < delivered | returned_to_sender

- *Progress* statuses (info_received, in_transit, out_for_delivery) only move forward: a newer
  event behind the furthest progress reached is kept in the history but leaves the status
  alone (an in_transit scan after out_for_delivery, an info_received after in_transit).
- *Detours* (attempt_fail, available_for_pickup, exception) are news whenever they are the
  newest event: an exception after in_transit shows exception; an attempt_fail after
  out_for_delivery shows attempt_fail. They do not count as progress, so a *newer* in_transit
  after an exception returns the status to in_transit (the parcel is moving again), while an
  in_transit that is *older* than the exception (a late push) changes nothing.
- *Terminal* statuses (delivered, returned_to_sender) end it: the first one in time sticks,
  and anything after it (a stray in_transit scan after delivery) stays in history only.

Ties in time are read in progress order, so "collected" and "in transit" stamped with the
same second end at in_transit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from chalicelib.domain.orders import ShipmentStatus


class TrackingStatus(StrEnum):
    INFO_RECEIVED = "info_received"  # the carrier has the shipment's data, not the parcel
    IN_TRANSIT = "in_transit"  # collected, moving through the network
    OUT_FOR_DELIVERY = "out_for_delivery"
    ATTEMPT_FAIL = "attempt_fail"  # a delivery attempt failed; usually retried
    AVAILABLE_FOR_PICKUP = "available_for_pickup"  # at a locker or pickup point (驿站)
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # held, damaged, refused, lost, on its way back...
    RETURNED_TO_SENDER = "returned_to_sender"

    @property
    def rank(self) -> int:
        """Place on the progress scale (detours share one rank)."""
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_detour(self) -> bool:
        """News about the parcel that is not progress towards the shopper."""
        return self in _DETOURS


_T = TrackingStatus
_RANK = {
    _T.INFO_RECEIVED: 0,
    _T.IN_TRANSIT: 1,
    _T.ATTEMPT_FAIL: 2,
    _T.AVAILABLE_FOR_PICKUP: 2,
    _T.EXCEPTION: 2,
    _T.OUT_FOR_DELIVERY: 3,
    _T.DELIVERED: 4,
    _T.RETURNED_TO_SENDER: 4,
}
_TERMINAL = frozenset({_T.DELIVERED, _T.RETURNED_TO_SENDER})
_DETOURS = frozenset({_T.ATTEMPT_FAIL, _T.AVAILABLE_FOR_PICKUP, _T.EXCEPTION})

# What each tracking status proves about the shipment, in the order's own words. A status
# proves at least that much has happened; the order's state machine ignores stages it has
# already passed, so mapping a detour to an earlier stage never moves an order back.
_SHIPMENT_STAGE = {
    _T.INFO_RECEIVED: None,  # a label exists; the parcel has not left the warehouse
    _T.IN_TRANSIT: ShipmentStatus.SHIPPED,
    _T.EXCEPTION: ShipmentStatus.SHIPPED,
    _T.RETURNED_TO_SENDER: ShipmentStatus.SHIPPED,  # it did ship; the return is its own case
    _T.OUT_FOR_DELIVERY: ShipmentStatus.OUT_FOR_DELIVERY,
    _T.ATTEMPT_FAIL: ShipmentStatus.OUT_FOR_DELIVERY,  # it was out and someone tried
    _T.AVAILABLE_FOR_PICKUP: ShipmentStatus.OUT_FOR_DELIVERY,  # last mile: at the locker
    _T.DELIVERED: ShipmentStatus.DELIVERED,
}


def shipment_stage(status: TrackingStatus | str | None) -> ShipmentStatus | None:
    """The shipment stage (shipped / out_for_delivery / delivered) a tracking status proves.

    ``None`` for no status or info_received. A returned parcel maps to ``shipped``: whoever
    acts on a return checks ``status is TrackingStatus.RETURNED_TO_SENDER`` itself.
    """
    if status is None:
        return None
    return _SHIPMENT_STAGE[TrackingStatus(status)]


@dataclass(frozen=True, slots=True)
class TrackingLocation:
    """Where an event happened, as far as the carrier says (any part may be unknown)."""

    city: str | None = None
    region: str | None = None  # province / state
    country: str | None = None  # ISO 3166 code as the carrier gives it (CN, CHN)

    def __str__(self) -> str:
        return ", ".join(part for part in (self.city, self.region, self.country) if part)


NOWHERE = TrackingLocation()


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One thing a carrier reported about a parcel.

    ``dedupe_key`` identifies the event across pushes: the carrier's own event id when it has
    one, otherwise a digest of (status, instant, location, description), so the same scan
    pushed again, or re-sent inside a later full-history push, is recognised.
    """

    status: TrackingStatus
    occurred_at: datetime
    description: str = ""
    location: TrackingLocation = NOWHERE
    estimated_delivery: datetime | None = None
    carrier_status: str = ""  # the carrier's own code or word for it ("InTransit", "1002")
    carrier_event_id: str | None = None
    dedupe_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TrackingStatus(self.status))
        _require_aware(self.occurred_at, "occurred_at")
        if self.estimated_delivery is not None:
            _require_aware(self.estimated_delivery, "estimated_delivery")
        object.__setattr__(self, "dedupe_key", self._digest())

    def _digest(self) -> str:
        if self.carrier_event_id:
            identity = ["id", self.carrier_event_id]
        else:
            where = self.location
            identity = [
                "event",
                self.status.value,
                self.occurred_at.astimezone(UTC).isoformat(),
                (where.city or "").strip(),
                (where.region or "").strip(),
                (where.country or "").strip().upper(),
                " ".join(self.description.split()),
            ]
        return hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:32]


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def _chronological(event: TrackingEvent) -> tuple[datetime, int, str]:
    return (event.occurred_at, event.status.rank, event.dedupe_key)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every distinct event of one parcel, oldest first; immutable.

    ``Timeline(events)`` accepts events in any order and with duplicates; ``add`` returns a
    new timeline. When a duplicate brings a different ETA, the ETA of the one added later
    wins (carriers re-send a checkpoint with a revised estimate); nothing else of a kept
    event changes.
    """

    events: tuple[TrackingEvent, ...] = ()

    def __post_init__(self) -> None:
        unique: dict[str, TrackingEvent] = {}
        for event in self.events:
            kept = unique.get(event.dedupe_key)
            if kept is None:
                unique[event.dedupe_key] = event
            elif (
                event.estimated_delivery is not None
                and event.estimated_delivery != kept.estimated_delivery
            ):
                unique[event.dedupe_key] = replace(
                    kept, estimated_delivery=event.estimated_delivery
                )
        object.__setattr__(self, "events", tuple(sorted(unique.values(), key=_chronological)))

    def add(self, events: Iterable[TrackingEvent]) -> Timeline:
        return Timeline((*self.events, *events))

    def __len__(self) -> int:
        return len(self.events)

    @property
    def latest(self) -> TrackingEvent | None:
        """The newest event in time (not necessarily the one that set the status)."""
        return self.events[-1] if self.events else None

    @property
    def current_event(self) -> TrackingEvent | None:
        """The event that set the current status (see the module's rules)."""
        current: TrackingEvent | None = None
        furthest = -1
        for event in self.events:
            status = event.status
            if current is not None and current.status.is_terminal:
                break
            if status.is_detour:
                current = event
            elif status.rank >= furthest:
                current = event
                furthest = status.rank
        return current

    @property
    def current_status(self) -> TrackingStatus | None:
        current = self.current_event
        return current.status if current is not None else None

    @property
    def estimated_delivery(self) -> datetime | None:
        """The carrier's latest estimate: the newest event carrying one. ``None`` once the
        parcel is delivered or back with the sender (nothing left to estimate)."""
        status = self.current_status
        if status is not None and status.is_terminal:
            return None
        for event in reversed(self.events):
            if event.estimated_delivery is not None:
                return event.estimated_delivery
        return None


@dataclass(frozen=True, slots=True)
class Booking:
    """A parcel handed to a carrier: what the shipment records and the shopper sees.

    ``booking_provider`` booked it (kuaidi100, easypost); ``tracking_provider`` pushes its
    tracking (kuaidi100, easypost, aftership), and is the only one whose pushes may move it.
    """

    carrier: str  # our carrier code, e.g. "shunfeng", "dhl"
    tracking_number: str  # the waybill number
    tracking_url: str
    label_reference: str  # the provider's id for the waybill / label task
    booking_provider: str = ""
    tracking_provider: str = ""
    label_url: str = ""


# Why a booking did not happen: the provider was not reachable (or failed on its side), the
# provider refused the request, or the warehouse lacks what a carrier needs to collect.
CARRIER_UNAVAILABLE = "carrier_unavailable"
CARRIER_REFUSED = "carrier_refused"
WAREHOUSE_INCOMPLETE = "warehouse_incomplete"
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class BookingFailure:
    """The last booking attempt of a packed shipment failed; it is tried again at
    ``retry_at`` (sooner after a few failures, then at most every ``LONGEST_RETRY``)."""

    reason: str  # CARRIER_UNAVAILABLE, CARRIER_REFUSED or WAREHOUSE_INCOMPLETE
    message: str  # the provider's own words, or what the warehouse is missing
    provider: str  # kuaidi100, easypost, aftership, or "" for the warehouse
    attempts: int
    failed_at: datetime
    retry_at: datetime
    missing: tuple[str, ...] = ()  # the warehouse's missing sender fields

    @classmethod
    def after(
        cls,
        previous: BookingFailure | None,
        *,
        reason: str,
        message: str,
        provider: str,
        at: datetime,
        missing: tuple[str, ...] = (),
    ) -> BookingFailure:
        attempts = (previous.attempts if previous else 0) + 1
        delay = min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
        return cls(reason, message, provider, attempts, at, at + delay, missing)

    def is_news(self, previous: BookingFailure | None) -> bool:
        """Whether ops should hear of it: the first failure, or a different one."""
        return previous is None or (previous.reason, previous.message) != (
            self.reason,
            self.message,
        )
