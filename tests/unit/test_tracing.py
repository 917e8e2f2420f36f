"""X-Ray tracing: on in Lambda, where each invocation becomes a subsegment; off everywhere
else, without importing the X-Ray SDK or sending anything.

Each check runs in a fresh interpreter, because the Tracer is made once per process. In
"Lambda", a UDP socket stands in for the X-Ray daemon and Lambda's trace header is set, as
the Lambda runtime does with ``Tracing: Active``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INVOKE = """
import json, socket, sys, os
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(0.5 if os.environ.get("EXPECT_NOTHING") else 10)
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % daemon.getsockname()[1]
from chalicelib import observability
class Context:
    function_name = "orderdesk-dev-expire_unpaid_orders"
    aws_request_id = "req-1"
class Event:
    context = Context()
results = [observability._observe(Event(), lambda event: 42) for _ in range(2)]
received = []
try:
    while True:
        received.append(daemon.recv(65535).decode())
except socket.timeout:
    pass
print(json.dumps({
    "results": results,
    "received": received,
    "xray_imported": "aws_xray_sdk" in sys.modules,
}))
"""

LAMBDA = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "orderdesk-dev-expire_unpaid_orders",
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
}


def _invoke_twice(environment: dict[str, str]) -> dict[str, object]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*LAMBDA, "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE")
    }
    completed = subprocess.run(
        [sys.executable, "-c", INVOKE],
        cwd=ROOT,
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _subsegments(received: list[str]) -> list[dict[str, object]]:
    documents = []
    for datagram in received:
        _header, body = datagram.split("\n", 1)
        documents.append(json.loads(body))
    return documents


def test_in_lambda_each_invocation_is_a_subsegment_marked_cold_only_first() -> None:
    outcome = _invoke_twice(LAMBDA)
    assert outcome["results"] == [42, 42]
    subsegments = _subsegments(outcome["received"])  # type: ignore[arg-type]
    assert [s["name"] for s in subsegments] == ["## orderdesk-dev-expire_unpaid_orders"] * 2
    assert [s["annotations"] for s in subsegments] == [
        {"ColdStart": True, "Service": "orderdesk"},
        {"ColdStart": False, "Service": "orderdesk"},
    ]
    assert {s["trace_id"] for s in subsegments} == {"1-5759e988-bd862e3fe1be46a994272793"}


def test_outside_lambda_nothing_is_traced_and_the_sdk_is_not_loaded() -> None:
    outcome = _invoke_twice({"EXPECT_NOTHING": "1"})
    assert outcome == {"results": [42, 42], "received": [], "xray_imported": False}


def test_trace_disabled_in_lambda_sends_nothing() -> None:
    outcome = _invoke_twice({**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true", "EXPECT_NOTHING": "1"})
    assert outcome == {"results": [42, 42], "received": [], "xray_imported": False}
