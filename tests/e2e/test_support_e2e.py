"""Live support over real HTTP and a real WebSocket against the local stack.

The assistant answers a tracking question about a shipped order in the same response; a
customer who asks for a person gets the support reply on their open socket within a
second; a closed conversation refuses messages; the SLA schedule counts an unanswered
conversation as overdue once its first-response time has passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support_world import shipped_order

if TYPE_CHECKING:
    from conftest import LocalStackUnderTest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def call(
    stack: LocalStackUnderTest, method: str, path: str, headers: dict[str, str], body: Any = None
) -> requests.Response:
    return requests.request(method, stack.url(path), json=body, headers=headers, timeout=TIMEOUT)


def tick(stack: LocalStackUnderTest, job: str, *options: str) -> dict[str, Any]:
    ran = subprocess.run(
        [sys.executable, "-m", "infra.local.tick", "--port", str(stack.port), job, *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    # The job's metrics (one EMF line each) come first; its report is the last document.
    output = ran.stdout
    start = output.rfind("\n{\n") + 1 if "\n{\n" in output else 0
    report: dict[str, Any] = json.loads(output[start:])
    return report


@pytest.fixture
def stack_store(stack: LocalStackUnderTest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with stack.store_in_this_process(monkeypatch):
        yield


def test_tracking_question_about_a_shipped_order_is_answered_in_the_same_response(
    stack: LocalStackUnderTest, stack_store: None
) -> None:
    customer = "support-e2e-tracking"
    order_id = shipped_order("ord_01JSUPPORTE2ESHIPPED00000A", owner=customer)
    response = call(
        stack,
        "POST",
        "/support/conversations",
        stack.auth(customer, "customers"),
        {"subject": "物流", "message": "我的订单到哪了", "order_id": order_id},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [m["author"] for m in body["messages"]] == ["customer", "assistant"]
    answer = body["messages"][1]["body"]
    for fact in ("SF1234567890", "shunfeng", "杭州", "已发货", "2026-12-07 12:00"):
        assert fact in answer
    assert body["first_response_due_at"] is None


def test_a_support_reply_reaches_the_customers_socket_within_a_second(
    stack: LocalStackUnderTest,
) -> None:
    customer = "support-e2e-socket"
    headers = stack.auth(customer, "customers")
    ticket = call(stack, "POST", "/support/socket-tickets", headers).json()
    assert ticket["expires_in"] == 60 and ticket["url"].startswith("ws://")
    with connect(f"{ticket['url']}?ticket={ticket['ticket']}", open_timeout=10) as socket:
        started = call(
            stack,
            "POST",
            "/support/conversations",
            headers,
            {"subject": "help", "message": "转人工"},
        ).json()
        conversation_id = started["conversation_id"]
        assert started["first_response_due_at"] is not None
        # The customer's own message and the assistant's hand-over arrive first.
        for _ in range(2):
            assert json.loads(socket.recv(timeout=5))["type"] == "message"
        sent_at = time.monotonic()
        reply = call(
            stack,
            "POST",
            f"/support/conversations/{conversation_id}/messages",
            stack.auth("agent-e2e", "support"),
            {"body": "您好，我是客服小王"},
        )
        assert reply.status_code == 201
        pushed = json.loads(socket.recv(timeout=1))
        assert time.monotonic() - sent_at < 1.0 + reply.elapsed.total_seconds()
        assert pushed["type"] == "message"
        assert pushed["conversation_id"] == conversation_id
        assert pushed["message"]["author"] == "agent"
        assert pushed["message"]["body"] == "您好，我是客服小王"
        status = json.loads(socket.recv(timeout=1))
        assert status == {
            "type": "status",
            "conversation_id": conversation_id,
            "status": "waiting_on_customer",
        }
    # The ticket was used up by that connection.
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ticket['url']}?ticket={ticket['ticket']}", open_timeout=10)
    assert refused.value.response.status_code == 401


def test_a_message_on_a_closed_conversation_is_409(stack: LocalStackUnderTest) -> None:
    customer = "support-e2e-closed"
    headers = stack.auth(customer, "customers")
    conversation_id = call(
        stack, "POST", "/support/conversations", headers, {"subject": "x", "message": "hello"}
    ).json()["conversation_id"]
    resolved = call(
        stack,
        "POST",
        f"/support/conversations/{conversation_id}/resolve",
        stack.auth("agent-e2e", "support"),
    )
    assert resolved.json()["status"] == "resolved"
    later = (datetime.now(UTC) + timedelta(days=7, minutes=1)).isoformat()
    assert tick(stack, "close_resolved_conversations", "--at", later)["closed"] >= 1
    read = call(stack, "GET", f"/support/conversations/{conversation_id}", headers).json()
    assert read["status"] == "closed"
    refused = call(
        stack, "POST", f"/support/conversations/{conversation_id}/messages", headers, {"body": "hi"}
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "conversation_closed"


def test_the_sla_marks_an_unanswered_conversation_overdue(stack: LocalStackUnderTest) -> None:
    later = (datetime.now(UTC) + timedelta(minutes=16)).isoformat()
    before = tick(stack, "check_support_overdue", "--at", later)["overdue"]
    due_now = tick(stack, "check_support_overdue")["overdue"]
    started = call(
        stack,
        "POST",
        "/support/conversations",
        stack.auth("support-e2e-sla", "customers"),
        {"subject": "x", "message": "人工客服"},
    ).json()
    assert started["status"] == "open" and started["first_response_due_at"] is not None
    assert tick(stack, "check_support_overdue")["overdue"] == due_now  # not due yet
    assert tick(stack, "check_support_overdue", "--at", later)["overdue"] == before + 1
