"""Support conversations through the real app over moto: the assistant's live answers,
replies, statuses, limits, listing, SLA and auto-close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from chalicelib.services import support as support_service
from chalicelib.store import outbox, tables
from chalicelib.store import support as support_store
from tests.support_world import shipped_order

if TYPE_CHECKING:
    from conftest import Api

CUSTOMER = "customer-1"


def start(api: Api, message: str, *, user: str = CUSTOMER, **extra: Any) -> Any:
    body = {"subject": "帮助", "message": message, **extra}
    return api.request("POST", "/support/conversations", body, api.token(user, "customers"))


def events(event_type: str) -> list[outbox.OutboxEvent]:
    response = tables.client().scan(TableName=tables.table_name())  # test inspection only
    return [
        outbox.event_from_item(raw)
        for raw in response["Items"]
        if raw["pk"]["S"].startswith(outbox.OUTBOX_PREFIX) and raw["type"]["S"] == event_type
    ]


def test_where_is_my_order_is_answered_at_once_from_live_tracking(api: Api) -> None:
    order_id = shipped_order()
    response = start(api, "我的订单到哪了", order_id=order_id)
    assert response.status_code == 201, response.body
    body = response.json_body
    assert body["status"] == "open" and body["order_id"] == order_id
    assert body["first_response_due_at"] is None
    authors = [m["author"] for m in body["messages"]]
    assert authors == ["customer", "assistant"]
    answer = body["messages"][1]["body"]
    for fact in ("SF1234567890", "shunfeng", "杭州", "快件已到达杭州转运中心", "已发货"):
        assert fact in answer
    assert "2026-12-05 10:30" in answer and "2026-12-07 12:00" in answer
    assert len(events(support_service.STARTED)) == 1


def test_without_an_order_the_most_recent_one_is_used(api: Api) -> None:
    shipped_order()
    body = start(api, "where is my order?").json_body
    assert "SF1234567890" in body["messages"][1]["body"]
    assert body["messages"][1]["body"].startswith("Hello, this is the automated assistant")


def test_someone_elses_order_is_404_and_nothing_is_written(api: Api) -> None:
    order_id = shipped_order(owner="customer-2")
    response = start(api, "物流", order_id=order_id)
    assert response.status_code == 404
    assert (
        support_store.customer_conversations_page(
            CUSTOMER, status=None, limit=10, cursor=None
        ).items
        == []
    )


def test_asking_for_a_person_hands_over_and_an_agent_reply_waits_on_the_customer(
    api: Api,
) -> None:
    body = start(api, "转人工").json_body
    conversation_id = body["conversation_id"]
    assert body["first_response_due_at"] is not None
    assert body["messages"][-1]["author"] == "assistant"
    reply = api.request(
        "POST",
        f"/support/conversations/{conversation_id}/messages",
        {"body": "您好，我来看看"},
        api.support,
    )
    assert reply.status_code == 201
    assert reply.json_body["status"] == "waiting_on_customer"
    assert reply.json_body["message"]["author"] == "agent"
    assert reply.json_body["replies"] == []
    stored = support_store.get_conversation(conversation_id)
    assert stored is not None and stored.first_human_response_at is not None
    assert not stored.waiting_for_first_human
    # The customer has no socket: the reply also goes to their notification channels.
    assert [e.payload["conversation_id"] for e in events(support_service.REPLY_POSTED)] == [
        conversation_id
    ]
    # The customer writes back: open again, and the assistant stays quiet now.
    again = api.request(
        "POST",
        f"/support/conversations/{conversation_id}/messages",
        {"body": "物流呢"},
        api.customer,
    )
    assert again.json_body["status"] == "open" and again.json_body["replies"] == []
    moved = [(e.payload["from"], e.payload["to"]) for e in events(support_service.STATUS_CHANGED)]
    assert sorted(moved) == [("open", "waiting_on_customer"), ("waiting_on_customer", "open")]


def test_polling_after_a_message_returns_only_later_ones(api: Api) -> None:
    body = start(api, "hello there").json_body
    first = body["messages"][0]["message_id"]
    read = api.request(
        "GET", f"/support/conversations/{body['conversation_id']}?after={first}", None, api.customer
    )
    assert read.status_code == 200
    assert [m["author"] for m in read.json_body["messages"]] == ["assistant"]
    other = api.request(
        "GET",
        f"/support/conversations/{body['conversation_id']}",
        None,
        api.token("customer-2", "customers"),
    )
    assert other.status_code == 404


def test_closed_conversation_refuses_messages_with_409(api: Api) -> None:
    conversation_id = start(api, "hello").json_body["conversation_id"]
    assert (
        api.request(
            "POST", f"/support/conversations/{conversation_id}/resolve", None, api.support
        ).json_body["status"]
        == "resolved"
    )
    closed = support_service.close_resolved(datetime.now(UTC) + timedelta(days=7, seconds=1))
    assert closed == 1
    assert support_store.get_conversation(conversation_id).status.value == "closed"
    response = api.request(
        "POST", f"/support/conversations/{conversation_id}/messages", {"body": "hi"}, api.customer
    )
    assert response.status_code == 409
    assert response.json_body["error"] == "conversation_closed"


def test_resolved_conversation_reopens_on_a_customer_message_and_is_rated_once(api: Api) -> None:
    conversation_id = start(api, "hello").json_body["conversation_id"]
    path = f"/support/conversations/{conversation_id}"
    assert api.request("POST", f"{path}/rating", {"score": 5}, api.customer).status_code == 409
    api.request("POST", f"{path}/resolve", None, api.support)
    assert api.request("POST", f"{path}/rating", {"score": 4}, api.customer).status_code == 200
    again = api.request("POST", f"{path}/rating", {"score": 5}, api.customer)
    assert again.status_code == 409 and again.json_body["error"] == "already_rated"
    reopened = api.request("POST", f"{path}/messages", {"body": "one more"}, api.customer)
    assert reopened.json_body["status"] == "open"


def test_at_most_five_open_conversations(api: Api) -> None:
    for _ in range(5):
        assert start(api, "hello").status_code == 201
    refused = start(api, "hello")
    assert refused.status_code == 429
    assert refused.json_body["error"] == "too_many_open_conversations"
    assert "Retry-After" in refused.headers
    # Resolving one makes room.
    first = support_store.customer_conversations_page(
        CUSTOMER, status=None, limit=10, cursor=None
    ).items[0]
    api.request("POST", f"/support/conversations/{first.conversation_id}/resolve", None, api.ops)
    assert start(api, "hello").status_code == 201


def test_thirty_messages_a_minute_then_429(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2026, 12, 6, 6, 0, 1, tzinfo=UTC)
    monkeypatch.setattr(support_service, "_now", lambda: fixed)
    conversation_id = start(api, "hello").json_body["conversation_id"]
    path = f"/support/conversations/{conversation_id}/messages"
    for _ in range(29):
        assert api.request("POST", path, {"body": "hi"}, api.customer).status_code == 201
    refused = api.request("POST", path, {"body": "hi"}, api.customer)
    assert refused.status_code == 429 and refused.json_body["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "59"
    # "hello" went to support, so the assistant stays quiet: 1 + its answer + 29.
    assert len(support_store.messages_of(conversation_id)) == 31


@pytest.mark.parametrize("body", [{"body": ""}, {"body": "x" * 2001}, {"body": 5}, {}])
def test_bad_bodies_are_400(api: Api, body: dict[str, Any]) -> None:
    conversation_id = start(api, "hello").json_body["conversation_id"]
    response = api.request(
        "POST", f"/support/conversations/{conversation_id}/messages", body, api.customer
    )
    assert response.status_code == 400
    assert len(support_store.messages_of(conversation_id)) == 2


def test_unanswered_conversation_becomes_overdue_and_leads_the_queue(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = start(api, "人工客服").json_body["conversation_id"]
    fresh = start(api, "where is my order?", user="customer-2").json_body["conversation_id"]
    later = datetime.now(UTC) + timedelta(minutes=16)
    assert support_service.check_overdue(later) == 1
    monkeypatch.setattr(support_service, "_now", lambda: later)
    listing = api.request("GET", "/support/conversations", None, api.support).json_body
    assert [c["conversation_id"] for c in listing["items"]][:1] == [late]
    assert listing["items"][0]["overdue"] is True
    only = api.request("GET", "/support/conversations?overdue=true", None, api.support).json_body
    assert [c["conversation_id"] for c in only["items"]] == [late]
    mine = api.request(
        "GET", "/support/conversations", None, api.token("customer-2", "customers")
    ).json_body
    assert [c["conversation_id"] for c in mine["items"]] == [fresh]


def test_staff_actions_are_for_support_and_ops(api: Api) -> None:
    conversation_id = start(api, "hello").json_body["conversation_id"]
    path = f"/support/conversations/{conversation_id}"
    assert api.request("POST", f"{path}/resolve", None, api.customer).status_code == 403
    assigned = api.request("POST", f"{path}/assign", {"agent_id": "support-2"}, api.support)
    assert assigned.json_body["assigned_to"] == "support-2"
    queue = api.request(
        "GET", "/support/conversations?assigned_to=support-2&status=open", None, api.support
    )
    assert [c["conversation_id"] for c in queue.json_body["items"]] == [conversation_id]


def test_canned_replies_in_both_languages(api: Api) -> None:
    saved = api.request(
        "PUT", "/support/canned-replies/greeting", {"zh-CN": "您好", "en": "Hello"}, api.support
    )
    assert saved.status_code == 200 and saved.json_body["zh-CN"] == "您好"
    missing = api.request("PUT", "/support/canned-replies/bye", {"en": "Bye"}, api.support)
    assert missing.status_code == 400
    listed = api.request("GET", "/support/canned-replies", None, api.support).json_body
    assert [(r["key"], r["en"]) for r in listed["items"]] == [("greeting", "Hello")]
    assert api.request("GET", "/support/canned-replies", None, api.customer).status_code == 403


def test_socket_ticket_works_once(api: Api) -> None:
    issued = api.request("POST", "/support/socket-tickets", None, api.customer)
    assert issued.status_code == 201
    assert issued.json_body["expires_in"] == 60
    ticket = issued.json_body["ticket"]
    assert support_service.connect("conn-1", ticket) is True
    assert support_service.connect("conn-2", ticket) is False
    assert support_store.connections_of(CUSTOMER) == ["conn-1"]
    support_service.disconnect("conn-1")
    assert support_store.connections_of(CUSTOMER) == []


def test_nightly_summary_counts_the_days_conversations(api: Api) -> None:
    from zoneinfo import ZoneInfo

    by_assistant = start(api, "where is my order?").json_body["conversation_id"]
    api.request("POST", f"/support/conversations/{by_assistant}/resolve", None, api.support)
    api.request("POST", f"/support/conversations/{by_assistant}/rating", {"score": 5}, api.customer)
    helped = start(api, "转人工", user="customer-2").json_body["conversation_id"]
    api.request("POST", f"/support/conversations/{helped}/messages", {"body": "hi"}, api.support)
    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    table = support_service.summary_table(today, zone)
    assert table.name == "support/summary"
    (row,) = table.rows
    assert row["conversations"] == 2 and row["handed_to_support"] == 1
    assert row["resolved_by_assistant"] == 1 and row["resolved_by_assistant_share"] == 1.0
    assert row["median_first_human_response_seconds"] is not None
    assert row["average_satisfaction"] == 5.0 and row["overdue"] == 0
    (yesterday,) = support_service.summary_table(today - timedelta(days=1), zone).rows
    assert yesterday["conversations"] == 0


def test_the_profile_locale_wins_over_the_messages_script(api: Api) -> None:
    profile = {"email": None, "phone": None, "name": None, "locale": "en"}
    saved = api.request("PUT", "/me", profile, api.customer)
    assert saved.status_code == 200, saved.body
    shipped_order()
    body = start(api, "我的快递到哪了").json_body
    answer = body["messages"][1]["body"]
    assert answer.startswith("Hello, this is the automated assistant")
    assert "tracking number SF1234567890" in answer
