"""Support conversations: statuses, limits, the first-response clock and the assistant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.errors import InvalidInput, InvalidTransition
from chalicelib.domain.support import (
    AlreadyRated,
    CannedReply,
    Conversation,
    ConversationClosed,
    ConversationStatus,
    SupportSummary,
    clean_body,
    clean_photos,
    rate_window,
)
from chalicelib.domain.support_assistant import (
    Intent,
    OrderFacts,
    ParcelFacts,
    answer,
    language_of,
    order_id_in,
    recognise,
)

AT = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
SLA = timedelta(minutes=15)


def conversation(**changes: object) -> Conversation:
    start = Conversation.start(
        conversation_id="sc_1",
        customer_id="c1",
        subject="Help",
        order_id=None,
        locale="en",
        at=AT,
    )
    return start if not changes else start.__class__(**{**_fields(start), **changes})


def _fields(c: Conversation) -> dict[str, object]:
    return {name: getattr(c, name) for name in c.__slots__}


def test_new_conversation_is_open_without_a_due_time_until_handed_over() -> None:
    c = conversation()
    assert c.status is ConversationStatus.OPEN
    assert c.first_response_due_at is None
    handed = c.hand_over("human", AT, SLA)
    assert handed.first_response_due_at == AT + SLA
    assert handed.waiting_for_first_human


def test_support_reply_waits_on_customer_and_stops_the_clock() -> None:
    c = conversation().hand_over("unknown", AT, SLA)
    replied = c.support_wrote("agent-1", AT + timedelta(minutes=3))
    assert replied.status is ConversationStatus.WAITING_ON_CUSTOMER
    assert not replied.waiting_for_first_human
    assert not replied.missed_first_response(AT + timedelta(hours=1))
    assert replied.first_human_response_at == AT + timedelta(minutes=3)
    assert replied.assigned_to == "agent-1"
    assert not replied.is_overdue(AT + timedelta(hours=1))


@pytest.mark.parametrize("status", ["waiting_on_customer", "resolved"])
def test_customer_message_reopens(status: str) -> None:
    c = conversation(status=ConversationStatus(status), resolved_at=AT)
    reopened = c.customer_wrote(AT + timedelta(minutes=1))
    assert reopened.status is ConversationStatus.OPEN
    assert reopened.resolved_at is None


def test_messages_on_a_closed_conversation_are_refused() -> None:
    c = conversation(status=ConversationStatus.CLOSED)
    with pytest.raises(ConversationClosed) as raised:
        c.customer_wrote(AT)
    assert raised.value.code == "conversation_closed"
    with pytest.raises(ConversationClosed):
        c.support_wrote("agent-1", AT)


def test_overdue_only_after_the_due_time_while_waiting_for_a_person() -> None:
    c = conversation().hand_over("human", AT, SLA)
    assert not c.is_overdue(AT + SLA - timedelta(seconds=1))
    assert c.is_overdue(AT + SLA)
    assert not conversation().is_overdue(AT + timedelta(days=1))


def test_closes_only_seven_days_after_resolved() -> None:
    resolved = conversation().resolve(AT)
    assert resolved.close_due_at == AT + timedelta(days=7)
    with pytest.raises(InvalidTransition):
        resolved.close(AT + timedelta(days=6))
    closed = resolved.close(AT + timedelta(days=7))
    assert closed.status is ConversationStatus.CLOSED
    with pytest.raises(InvalidTransition):
        conversation().close(AT + timedelta(days=30))


def test_resolved_without_a_person_counts_as_resolved_by_the_assistant() -> None:
    assert conversation().resolve(AT).resolved_by_assistant
    helped = conversation().hand_over("human", AT, SLA).support_wrote("a", AT).resolve(AT)
    assert not helped.resolved_by_assistant


def test_rating_once_and_only_after_resolved() -> None:
    with pytest.raises(InvalidTransition):
        conversation().rate(5, None, AT)
    rated = conversation().resolve(AT).rate(4, " fine ", AT)
    assert (rated.rating, rated.rating_comment) == (4, "fine")
    with pytest.raises(AlreadyRated):
        rated.rate(5, None, AT)
    with pytest.raises(InvalidInput):
        conversation().resolve(AT).rate(6, None, AT)


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001, None])
def test_bodies_must_be_1_to_2000_characters(body: object) -> None:
    with pytest.raises(InvalidInput):
        clean_body(body)  # type: ignore[arg-type]


def test_bodies_are_kept_as_text() -> None:
    assert clean_body("<b>hi</b>\x00") == "<b>hi</b>"
    assert len(clean_body("好" * 2000)) == 2000


def test_rate_window_is_the_calendar_minute() -> None:
    key, retry = rate_window(AT + timedelta(seconds=50))
    assert key == "20261206T0600" and retry == 10


def test_canned_reply_needs_both_languages() -> None:
    with pytest.raises(InvalidInput):
        CannedReply.of("greeting", {"en": "Hi"}, at=AT, by="s")
    with pytest.raises(InvalidInput):
        CannedReply.of("Bad Key", {"en": "Hi", "zh-CN": "你好"}, at=AT, by="s")
    reply = CannedReply.of("greeting", {"en": "Hi", "zh-CN": "你好"}, at=AT, by="s")
    assert reply.texts == {"zh-CN": "你好", "en": "Hi"}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我的快递到哪了", Intent.WHERE_IS_MY_ORDER),
        ("我的订单到哪了？", Intent.WHERE_IS_MY_ORDER),
        ("物流信息", Intent.WHERE_IS_MY_ORDER),
        ("Where is my order?", Intent.WHERE_IS_MY_ORDER),
        ("tracking please", Intent.WHERE_IS_MY_ORDER),
        ("能取消订单吗", Intent.CANCEL),
        ("Can I cancel my order", Intent.CANCEL),
        ("我想退货", Intent.RETURN_OR_EXCHANGE),
        ("how do I exchange a shirt", Intent.RETURN_OR_EXCHANGE),
        ("付款失败了", Intent.PAYMENT),
        ("my payment did not go through", Intent.PAYMENT),
        ("转人工", Intent.HUMAN),
        ("人工客服", Intent.HUMAN),
        ("I want to talk to a human", Intent.HUMAN),
        ("agent please, where is my order", Intent.HUMAN),
        ("你们几点下班", Intent.UNKNOWN),
        ("hello there", Intent.UNKNOWN),
    ],
)
def test_recognises_questions_in_both_languages(text: str, intent: Intent) -> None:
    assert recognise(text) is intent


def test_language_from_profile_else_script() -> None:
    assert language_of("where is it", "zh-CN") == "zh-CN"
    assert language_of("我的快递", None) == "zh-CN"
    assert language_of("where is it", None) == "en"
    assert language_of("我的快递", "en-GB") == "en"


def test_finds_an_order_id_in_the_text() -> None:
    assert order_id_in("订单 ord_01JABCDEFGHJKMNPQRSTVWXYZ0 到哪了") == (
        "ord_01JABCDEFGHJKMNPQRSTVWXYZ0"
    )
    assert order_id_in("no order here") is None


SHIPPED = OrderFacts(
    order_id="ord_1",
    status="shipped",
    can_cancel=False,
    parcels=(
        ParcelFacts(
            carrier="shunfeng",
            tracking_number="SF123",
            status="shipped",
            latest_description="已到达分拣中心",
            latest_place="上海",
            latest_at=datetime(2026, 12, 6, 2, 30, tzinfo=UTC),
            estimated_delivery=datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
        ),
    ),
)


def test_tracking_answer_in_chinese_carries_the_live_facts() -> None:
    reply = answer(Intent.WHERE_IS_MY_ORDER, "zh-CN", SHIPPED)
    assert not reply.hand_over
    for fact in ("ord_1", "已发货", "shunfeng", "SF123", "上海", "已到达分拣中心"):
        assert fact in reply.body
    assert "2026-12-06 10:30" in reply.body  # the event, in business time (UTC+8)
    assert "2026-12-07 18:00" in reply.body  # the ETA
    assert "自动助手" in reply.body


def test_tracking_answer_in_english() -> None:
    reply = answer(Intent.WHERE_IS_MY_ORDER, "en", SHIPPED)
    assert "Order ord_1 is shipped." in reply.body
    assert "tracking number SF123" in reply.body
    assert "automated assistant" in reply.body


def test_cancel_and_payment_answers_follow_the_order() -> None:
    pending = OrderFacts(
        order_id="ord_2",
        status="pending_payment",
        can_cancel=True,
        expires_at=datetime(2026, 12, 6, 6, 15, tzinfo=UTC),
    )
    assert "can still be cancelled" in answer(Intent.CANCEL, "en", pending).body
    assert "no longer be cancelled" in answer(Intent.CANCEL, "en", SHIPPED).body
    assert "2026-12-06 14:15" in answer(Intent.PAYMENT, "en", pending).body
    assert "received the payment" in answer(Intent.PAYMENT, "en", SHIPPED).body


def test_asking_for_a_person_or_unknown_hands_over_without_pretending() -> None:
    for intent in (Intent.HUMAN, Intent.UNKNOWN):
        for language in ("en", "zh-CN"):
            reply = answer(intent, language, None)
            assert reply.hand_over
    assert "automated assistant" in answer(Intent.HUMAN, "en", None).body
    assert "自动助手" in answer(Intent.UNKNOWN, "zh-CN", None).body


def test_order_question_without_an_order_says_so() -> None:
    reply = answer(Intent.WHERE_IS_MY_ORDER, "en", None)
    assert "could not find an order" in reply.body and not reply.hand_over


def test_a_late_first_reply_counts_as_missed() -> None:
    late = conversation().hand_over("human", AT, SLA).support_wrote("a", AT + SLA * 2)
    assert late.missed_first_response(AT + SLA * 3)
    assert not late.is_overdue(AT + SLA * 3)


def test_daily_summary_figures() -> None:
    by_assistant = conversation().resolve(AT + timedelta(minutes=1)).rate(5, None, AT)
    helped = (
        conversation()
        .hand_over("human", AT, SLA)
        .support_wrote("a", AT + timedelta(minutes=4))
        .resolve(AT + timedelta(minutes=5))
        .rate(2, None, AT)
    )
    slow = conversation().hand_over("human", AT, SLA).support_wrote("a", AT + timedelta(minutes=20))
    waiting = conversation().hand_over("unknown", AT, SLA)
    summary = SupportSummary.of([by_assistant, helped, slow, waiting], AT + timedelta(hours=1))
    assert summary.row() == {
        "conversations": 4,
        "handed_to_support": 3,
        "resolved": 2,
        "resolved_by_assistant": 1,
        "resolved_by_assistant_share": 0.5,
        "median_first_human_response_seconds": 720,
        "overdue": 2,
        "ratings": 2,
        "average_satisfaction": 3.5,
    }
    empty = SupportSummary.of([], AT).row()
    assert empty["resolved_by_assistant_share"] is None and empty["average_satisfaction"] is None


def test_a_message_takes_up_to_six_different_photos() -> None:
    six = [f"upl_{n:032x}" for n in range(6)]
    assert clean_photos(six) == tuple(six)
    assert clean_photos([]) == ()
    with pytest.raises(InvalidInput):
        clean_photos([*six, "upl_" + "f" * 32])
    with pytest.raises(InvalidInput) as repeated:
        clean_photos([six[0], six[0]])
    assert repeated.value.details == [{"field": "photos", "message": "at most 6, no repeats"}]
