"""The production dashboard shows what the deployment issue lists, for every queue."""

from __future__ import annotations

import json
from typing import Any

from infra import production

QUEUES = {"FulfilmentQueue": "fulfilment", "NotificationsQueue": "notifications"}


def _widgets() -> dict[str, list[Any]]:
    body = production.dashboard_resource(QUEUES)["Dashboard"]["Properties"]["DashboardBody"]
    widgets = json.loads(body["Fn::Sub"])["widgets"]
    return {w["properties"]["title"]: w["properties"]["metrics"] for w in widgets}


def _queue_names(metrics: list[Any]) -> set[str]:
    return {m[m.index("QueueName") + 1] for m in metrics if "QueueName" in m}


def test_the_dashboard_has_a_widget_for_each_figure_operators_watch() -> None:
    titles = " | ".join(_widgets())
    for figure in (
        "Orders per minute",
        "Payment success rate",
        "API latency",
        "API 5xx",
        "Oldest message age",
        "Dead letters",
        "Low-stock alerts",
        "econciliation",
    ):
        assert figure in titles, figure


def test_every_queue_shows_its_age_and_its_dead_letters_and_failed_feedback_shows_too() -> None:
    widgets = _widgets()
    assert _queue_names(widgets["Oldest message age per queue (s)"]) == {
        "orderdesk-${Stage}-fulfilment",
        "orderdesk-${Stage}-notifications",
    }
    assert _queue_names(widgets["Dead letters per queue"]) == {
        "orderdesk-${Stage}-fulfilment-dlq",
        "orderdesk-${Stage}-notifications-dlq",
        "orderdesk-${Stage}-email-feedback-failures",
    }
