"""Structured logging and metrics, configured once and imported everywhere.

Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the
environment; the defaults here keep local runs and tests identical to Lambda.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "orderdesk"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Orderdesk", service=SERVICE)
