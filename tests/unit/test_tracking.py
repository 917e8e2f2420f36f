from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.orders import ShipmentStatus
from chalicelib.domain.tracking import (
    Timeline,
    TrackingEvent,
    TrackingLocation,
    TrackingStatus,
    shipment_stage,
)

S = TrackingStatus
START = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))
SHANGHAI = TrackingLocation(city="上海市", region="上海", country="CN")


def event(status: TrackingStatus, minute: int, **overrides) -> TrackingEvent:
    fields = {
        "status": status,
        "occurred_at": START + timedelta(minutes=minute),
        "description": f"{status} at {minute}",
        "location": SHANGHAI,
    }
    fields.update(overrides)
    return TrackingEvent(**fields)


def status_after(*events: TrackingEvent) -> TrackingStatus | None:
    return Timeline(events).current_status


def test_timeline_keeps_events_in_time_order_whatever_the_arrival_order():
    collected, hub, out = (
        event(S.IN_TRANSIT, 0),
        event(S.IN_TRANSIT, 60),
        event(S.OUT_FOR_DELIVERY, 90),
    )

    timeline = Timeline().add([out]).add([collected, hub])

    assert timeline.events == (collected, hub, out)
    assert timeline.current_status is S.OUT_FOR_DELIVERY
    assert timeline.latest == out


def test_the_same_scan_pushed_twice_is_kept_once_even_in_another_time_zone():
    scan = event(S.IN_TRANSIT, 30)
    same_scan_in_beijing_time = event(
        S.IN_TRANSIT,
        30,
        occurred_at=scan.occurred_at.astimezone(BEIJING),
        description=" in_transit  at 30 ",
    )

    timeline = Timeline([scan]).add([same_scan_in_beijing_time, scan])

    assert len(timeline) == 1
    assert scan.dedupe_key == same_scan_in_beijing_time.dedupe_key


def test_events_that_differ_in_place_or_words_are_distinct():
    scan = event(S.IN_TRANSIT, 30)
    elsewhere = event(S.IN_TRANSIT, 30, location=TrackingLocation(city="杭州市"))
    other_words = event(S.IN_TRANSIT, 30, description="快件已到达【杭州转运中心】")

    assert len(Timeline([scan, elsewhere, other_words])) == 3


def test_the_carriers_event_id_identifies_an_event_when_it_has_one():
    first = event(S.IN_TRANSIT, 10, carrier_event_id="cp-1")
    reworded = event(S.IN_TRANSIT, 10, carrier_event_id="cp-1", description="reworded")
    other = event(S.IN_TRANSIT, 10, carrier_event_id="cp-2")

    assert [e.carrier_event_id for e in Timeline([first, reworded, other]).events] == [
        "cp-1",
        "cp-2",
    ]


def test_a_late_in_transit_after_delivery_is_history_but_the_parcel_stays_delivered():
    delivered = event(S.DELIVERED, 100)
    stray_scan = event(S.IN_TRANSIT, 120)

    timeline = Timeline([event(S.IN_TRANSIT, 0), delivered]).add([stray_scan])

    assert stray_scan in timeline.events
    assert timeline.current_status is S.DELIVERED
    assert timeline.current_event == delivered


def test_an_exception_after_in_transit_shows_exception():
    assert status_after(event(S.IN_TRANSIT, 0), event(S.EXCEPTION, 10)) is S.EXCEPTION


def test_a_newer_in_transit_after_an_exception_returns_to_in_transit():
    assert (
        status_after(event(S.IN_TRANSIT, 0), event(S.EXCEPTION, 10), event(S.IN_TRANSIT, 20))
        is S.IN_TRANSIT
    )


def test_an_older_in_transit_arriving_after_an_exception_changes_nothing():
    timeline = Timeline([event(S.IN_TRANSIT, 0), event(S.EXCEPTION, 10)])

    assert timeline.add([event(S.IN_TRANSIT, 5)]).current_status is S.EXCEPTION


def test_progress_never_goes_back_an_in_transit_scan_after_out_for_delivery_is_ignored():
    assert (
        status_after(event(S.OUT_FOR_DELIVERY, 10), event(S.IN_TRANSIT, 20)) is S.OUT_FOR_DELIVERY
    )
    assert status_after(event(S.IN_TRANSIT, 10), event(S.INFO_RECEIVED, 20)) is S.IN_TRANSIT


def test_a_failed_attempt_while_out_for_delivery_shows_and_a_new_round_moves_on():
    out = event(S.OUT_FOR_DELIVERY, 10)
    failed = event(S.ATTEMPT_FAIL, 20)
    back_at_depot = event(S.IN_TRANSIT, 30)
    out_again = event(S.OUT_FOR_DELIVERY, 40)

    assert status_after(out, failed) is S.ATTEMPT_FAIL
    assert status_after(out, failed, back_at_depot) is S.ATTEMPT_FAIL  # not progress
    assert status_after(out, failed, back_at_depot, out_again) is S.OUT_FOR_DELIVERY
    assert status_after(out, failed, out_again, event(S.DELIVERED, 50)) is S.DELIVERED


def test_a_locker_drop_after_out_for_delivery_is_available_for_pickup():
    assert (
        status_after(event(S.OUT_FOR_DELIVERY, 10), event(S.AVAILABLE_FOR_PICKUP, 20))
        is S.AVAILABLE_FOR_PICKUP
    )


def test_the_first_end_in_time_sticks():
    returned = event(S.RETURNED_TO_SENDER, 10)
    assert status_after(returned, event(S.DELIVERED, 20)) is S.RETURNED_TO_SENDER
    # A delivery that happened earlier, reported late, wins over a later return.
    assert Timeline([returned]).add([event(S.DELIVERED, 5)]).current_status is S.DELIVERED


def test_events_at_the_same_moment_are_read_in_progress_order():
    same_time = dict(occurred_at=START)
    collected = event(S.IN_TRANSIT, 0, **same_time)
    label = event(S.INFO_RECEIVED, 0, **same_time)

    timeline = Timeline([collected, label])

    assert timeline.events == (label, collected)
    assert timeline.current_status is S.IN_TRANSIT


def test_the_estimate_is_the_newest_one_the_carrier_gave_and_gone_once_delivered():
    first_eta = START + timedelta(days=2)
    revised_eta = START + timedelta(days=3)
    timeline = Timeline(
        [
            event(S.IN_TRANSIT, 0, estimated_delivery=first_eta),
            event(S.IN_TRANSIT, 30, estimated_delivery=revised_eta),
            event(S.IN_TRANSIT, 60),  # no estimate on this scan
        ]
    )

    assert timeline.estimated_delivery == revised_eta
    assert timeline.add([event(S.DELIVERED, 90)]).estimated_delivery is None


def test_a_checkpoint_sent_again_with_a_revised_estimate_updates_the_estimate_only():
    scan = event(S.IN_TRANSIT, 30, estimated_delivery=START + timedelta(days=2))
    revised = event(S.IN_TRANSIT, 30, estimated_delivery=START + timedelta(days=4))
    resent_without_estimate = event(S.IN_TRANSIT, 30)

    timeline = Timeline([scan]).add([revised]).add([resent_without_estimate])

    assert len(timeline) == 1
    assert timeline.estimated_delivery == START + timedelta(days=4)


def test_an_empty_timeline_knows_nothing():
    timeline = Timeline()
    assert (timeline.current_status, timeline.estimated_delivery, timeline.latest) == (
        None,
        None,
        None,
    )


def test_events_need_aware_times_and_take_status_names():
    with pytest.raises(ValueError, match="occurred_at"):
        TrackingEvent(status=S.IN_TRANSIT, occurred_at=datetime(2026, 5, 20, 8, 0))
    with pytest.raises(ValueError, match="estimated_delivery"):
        event(S.IN_TRANSIT, 0, estimated_delivery=datetime(2026, 5, 22))
    with pytest.raises(ValueError):
        event("teleported", 0)
    assert event("delivered", 0).status is S.DELIVERED


@pytest.mark.parametrize(
    ("status", "stage"),
    [
        (None, None),
        (S.INFO_RECEIVED, None),
        (S.IN_TRANSIT, ShipmentStatus.SHIPPED),
        (S.EXCEPTION, ShipmentStatus.SHIPPED),
        (S.RETURNED_TO_SENDER, ShipmentStatus.SHIPPED),
        (S.OUT_FOR_DELIVERY, ShipmentStatus.OUT_FOR_DELIVERY),
        (S.ATTEMPT_FAIL, ShipmentStatus.OUT_FOR_DELIVERY),
        (S.AVAILABLE_FOR_PICKUP, ShipmentStatus.OUT_FOR_DELIVERY),
        (S.DELIVERED, ShipmentStatus.DELIVERED),
        ("delivered", ShipmentStatus.DELIVERED),
    ],
)
def test_shipment_stage_names_what_the_order_cares_about(status, stage):
    assert shipment_stage(status) == stage


def test_every_status_has_a_shipment_stage_entry():
    for status in TrackingStatus:
        assert shipment_stage(status) in (None, *ShipmentStatus)


# --- properties ------------------------------------------------------------------------------

events_strategy = st.lists(
    st.builds(
        event,
        st.sampled_from(list(TrackingStatus)),
        st.integers(min_value=0, max_value=12),  # few distinct minutes: plenty of ties
        description=st.sampled_from(["scan", "扫描", ""]),
        estimated_delivery=st.none(),
    ),
    max_size=12,
)


@settings(max_examples=200)
@given(events=events_strategy, data=st.data())
def test_any_arrival_order_gives_the_same_timeline(events, data):
    shuffled = data.draw(st.permutations(events))

    assert Timeline(shuffled) == Timeline(events)
    assert Timeline(shuffled).current_status == Timeline(events).current_status


@settings(max_examples=200)
@given(events=events_strategy, cut=st.integers(min_value=0, max_value=12))
def test_adding_in_batches_equals_adding_at_once_and_adding_again_changes_nothing(events, cut):
    in_batches = Timeline(events[:cut]).add(events[cut:])

    assert in_batches == Timeline(events)
    assert in_batches.add(events) == in_batches
    keys = [e.dedupe_key for e in in_batches.events]
    assert len(keys) == len(set(keys))
    times = [e.occurred_at for e in in_batches.events]
    assert times == sorted(times)


@settings(max_examples=200)
@given(before=events_strategy, after=events_strategy)
def test_an_ended_parcel_stays_ended_and_progress_never_falls_behind(before, after):
    earlier = Timeline(before)
    later = earlier.add(after)

    if earlier.current_status is not None and earlier.current_status.is_terminal:
        assert later.current_status is not None and later.current_status.is_terminal
    current = later.current_event
    if current is not None and not current.status.is_detour:
        furthest_progress_so_far = max(
            e.status.rank
            for e in later.events[: later.events.index(current) + 1]
            if not e.status.is_detour
        )
        assert current.status.rank == furthest_progress_so_far
