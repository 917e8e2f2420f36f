"""Where the API is reached from outside: the base of the notify URLs Alipay and WeChat Pay
post to.

``PUBLIC_API_URL`` (the stack parameter ``PublicApiUrl``: the API's custom domain) when it
is set. Otherwise, while the API serves a request, the URL API Gateway was called at:
``https://<requestContext.domainName>/<requestContext.stage>``. A job has no request: without
the setting it cannot build a notify URL, so whatever needs one is refused with
``PaymentsUnavailable`` (503 ``payments_unavailable`` over HTTP), never a relative URL, and
the configuration error is logged when the process starts its first job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.observability import logger
from chalicelib.settings import get_settings

_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(?::[0-9]{1,5})?")
_STAGE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_from_request: ContextVar[str | None] = ContextVar("public_api_url_from_request", default=None)
_reported = False


class PaymentsUnavailable(ServiceUnavailable):
    code = "payments_unavailable"


def from_request_context(context: Mapping[str, Any] | None) -> str | None:
    """``https://<domainName>/<stage>`` from an API Gateway requestContext, if it has both."""
    context = context or {}
    domain, stage = context.get("domainName"), context.get("stage")
    if not isinstance(domain, str) or not _HOST.fullmatch(domain):
        return None
    if not isinstance(stage, str) or not _STAGE.fullmatch(stage) or stage == "$default":
        return f"https://{domain}"
    return f"https://{domain}/{stage}"


@contextmanager
def serving(context: Mapping[str, Any] | None) -> Iterator[None]:
    """While a request is served: its own URL stands in for an unset PUBLIC_API_URL."""
    token = _from_request.set(from_request_context(context))
    try:
        yield
    finally:
        _from_request.reset(token)


def base_url() -> str:
    """The API's public base URL; ``PaymentsUnavailable`` when nothing says it."""
    configured = get_settings().public_api_url
    if configured:
        return configured
    derived = _from_request.get()
    if derived:
        return derived
    raise PaymentsUnavailable(
        "Alipay and WeChat Pay are unavailable: PUBLIC_API_URL is not configured.",
        {"setting": "PUBLIC_API_URL"},
    )


def report_if_unresolvable_for_jobs() -> None:
    """Log once per process (at its first job) that jobs cannot build notify URLs."""
    global _reported
    if _reported:
        return
    _reported = True
    if not get_settings().public_api_url:
        logger.error(
            "configuration error: PUBLIC_API_URL (stack parameter PublicApiUrl) is empty; "
            "jobs refuse Alipay and WeChat Pay calls that need a notify URL"
        )
