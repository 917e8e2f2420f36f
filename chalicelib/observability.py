"""Structured logging, metrics and tracing, configured once and imported everywhere.

Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the
environment; the defaults here keep local runs and tests identical to Lambda.
``register(app)`` wires them into every invocation through Chalice middleware.

Tracing (X-Ray, through Powertools Tracer) runs only in Lambda, where the template turns
it on (``xray`` in ``.chalice/config.json``): each invocation is a ``## <handler>``
subsegment annotated with ``ColdStart`` and ``Service``, and every AWS SDK call and
outgoing HTTP request under it is a subsegment of its own. Outside Lambda (the local
stack, tests, ``make tick``) and with ``POWERTOOLS_TRACE_DISABLED=true`` no Tracer is
made, so the X-Ray SDK is never imported and nothing is sent.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from chalice import Chalice
from chalice.app import Request

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "orderdesk"
# Path parameters put on every log line of a request, so an order's lines can be found by id.
LOGGED_PATH_IDS = frozenset({"order_id", "shipment_id", "sku", "warehouse_id", "warehouse"})

NAMESPACE = "Orderdesk"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# What X-Ray records besides our handlers: AWS SDK calls and outgoing HTTP (http.client,
# which urllib, requests and so the payment and carrier adapters go through).
TRACED_MODULES = ("botocore", "httplib")
_cold_start = True


def tracing_enabled() -> bool:
    """Powertools' own rule: on in Lambda, off under SAM or Chalice local, and off
    wherever POWERTOOLS_TRACE_DISABLED is true."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true", "yes", "on"):
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated


@functools.cache
def tracer() -> Tracer | None:
    """The process's Tracer, made on first use (it imports the X-Ray SDK and patches
    ``TRACED_MODULES``); None where tracing is off."""
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Add ``value`` to the business metric ``name`` (CloudWatch EMF). Without dimensions it is
    flushed with the invocation's other metrics; with them (a payment method, a channel) it is
    its own EMF line, as one line holds one set of dimensions."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


def correlation_id() -> str | None:
    """The id tying what this invocation does to the request that started it all."""
    return logger.get_correlation_id()


@contextmanager
def correlated_with(origin: str | None) -> Iterator[None]:
    """Log under ``origin``, the correlation id an event was written under, while handling
    it: one id then follows an order from the API call through every queue it reaches, and
    events written meanwhile carry it on. This invocation's own id stays on each line."""
    invocation = logger.get_correlation_id()
    if origin:
        logger.set_correlation_id(origin)
        logger.append_keys(invocation_id=invocation)
    try:
        yield
    finally:
        logger.set_correlation_id(invocation)
        logger.remove_keys(["invocation_id"])


def _request_id(event: Any) -> str | None:
    if isinstance(event, Request):
        return (event.context or {}).get("requestId")
    context = getattr(event, "context", None)
    return getattr(context, "aws_request_id", None)


def _handler_name(event: Any) -> str:
    if isinstance(event, Request):
        return f"{event.method} {event.context.get('resourcePath', event.path)}"
    return str(getattr(getattr(event, "context", None), "function_name", "handler"))


def _traced(event: Any, get_response: Any) -> Any:
    global _cold_start
    active = tracer()
    if active is None:
        return get_response(event)
    cold_start, _cold_start = _cold_start, False
    with active.provider.in_subsegment(name=f"## {_handler_name(event)}") as subsegment:
        subsegment.put_annotation(key="ColdStart", value=cold_start)
        subsegment.put_annotation(key="Service", value=SERVICE)
        try:
            return get_response(event)
        except Exception as error:
            subsegment.put_metadata(key="error", value=repr(error), namespace=SERVICE)
            raise


def _observe(event: Any, get_response: Any) -> Any:
    # One correlation id per invocation; keys appended by a handler (order id, event id)
    # are cleared so they never leak into the next request served by this process.
    logger.clear_state()
    logger.set_correlation_id(_request_id(event))
    if isinstance(event, Request):
        ids = {k: v for k, v in (event.uri_params or {}).items() if k in LOGGED_PATH_IDS}
        logger.append_keys(method=event.method, path=event.context.get("resourcePath"), **ids)
    try:
        return _traced(event, get_response)
    finally:
        if metrics.metric_set:  # EMF lines only when something was measured
            metrics.flush_metrics()


def register(app: Chalice) -> None:
    app.register_middleware(_observe, "all")
