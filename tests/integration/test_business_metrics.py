"""Business metrics reach CloudWatch as EMF lines printed by the invocation that counted them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from test_orders_api import order_body, place, receive
from test_orders_api import world as world

from chalicelib.observability import count

if TYPE_CHECKING:
    from conftest import Api


def emitted(output: str) -> dict[str, float]:
    """Each metric's total over the EMF lines in ``output``, keyed name[dimension=value]."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        try:
            document: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            dimensions = [d for group in directive["Dimensions"] for d in group if d != "service"]
            label = ",".join(f"{d}={document[d]}" for d in dimensions)
            for metric in directive["Metrics"]:
                name = f"{metric['Name']}[{label}]" if label else metric["Name"]
                values = document[metric["Name"]]
                totals[name] = totals.get(name, 0) + sum(
                    values if isinstance(values, list) else [values]
                )
    return totals


def test_a_placed_order_and_a_stock_out_are_counted(
    world: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    receive("MUG", "SH", 1)
    capsys.readouterr()

    assert place(world, order_body({"MUG": 1})).status_code == 201
    assert place(world, order_body({"MUG": 1})).status_code == 409

    totals = emitted(capsys.readouterr().out)
    assert totals.get("OrdersPlaced") == 1
    assert totals.get("StockOuts") == 1


def test_a_metric_with_a_dimension_is_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    count("PaymentsSucceeded", method="alipay")
    count("PaymentsSucceeded", method="alipay")
    count("NotificationsSent", channel="sms")

    assert emitted(capsys.readouterr().out) == {
        "PaymentsSucceeded[method=alipay]": 2,
        "NotificationsSent[channel=sms]": 1,
    }
