"""Structured logging and metrics, configured once and imported everywhere.

Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the
environment; the defaults here keep local runs and tests identical to Lambda.
``register(app)`` wires both into every invocation through Chalice middleware.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from chalice import Chalice
from chalice.app import Request

SERVICE = "orderdesk"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Orderdesk", service=SERVICE)


def _request_id(event: Any) -> str | None:
    if isinstance(event, Request):
        return (event.context or {}).get("requestId")
    context = getattr(event, "context", None)
    return getattr(context, "aws_request_id", None)


def _observe(event: Any, get_response: Any) -> Any:
    # One correlation id per invocation; keys appended by a handler (order id, event id)
    # are cleared so they never leak into the next request served by this process.
    logger.clear_state()
    logger.set_correlation_id(_request_id(event))
    if isinstance(event, Request):
        logger.append_keys(method=event.method, path=event.context.get("resourcePath"))
    try:
        return get_response(event)
    finally:
        if metrics.metric_set:  # EMF lines only when something was measured
            metrics.flush_metrics()


def register(app: Chalice) -> None:
    app.register_middleware(_observe, "all")
