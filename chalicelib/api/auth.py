"""Who is calling: the built-in authorizer and the per-route group checks.

Routes that need a signed-in caller pass ``authorizer=authorizer`` to ``@blueprint.route``
and check groups in the view with ``require_groups``. Public routes that show more to staff
call ``optional_principal``. API Gateway (and the local gateway) runs ``authorizer`` before
the view: a raised ``Unauthorized`` becomes a 401 without the view ever running.

The authorizer lives on this module's own blueprint so that its Lambda handler is
``chalicelib.api.auth.authorizer``; ``chalicelib.api.register`` registers ``blueprint``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from chalice import AuthResponse, Blueprint
from chalice.app import AuthRequest, Request

from chalicelib.adapters.identity import Claims, InvalidToken, JwksUnavailable, TokenVerifier
from chalicelib.api.errors import ApiError, forbidden, unauthorized
from chalicelib.observability import logger
from chalicelib.settings import get_settings

CUSTOMERS = "customers"
OPS = "ops"
FINANCE = "finance"
SUPPORT = "support"
STAFF = frozenset({OPS, SUPPORT})
REPORT_READERS = frozenset({FINANCE, OPS})

# API Gateway caches an authorizer's answer per token for this long. The policy allows
# every route, so one cached answer is right for any route the token is used on.
AUTHORIZER_CACHE_SECONDS = 300

blueprint = Blueprint(__name__)


class Unauthorized(Exception):
    """Raised by the authorizer; API Gateway answers 401 only for exactly this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request."""

    user_id: str
    groups: frozenset[str]
    email: str | None = None
    phone_number: str | None = None
    name: str | None = None
    locale: str | None = None
    email_verified: bool = False
    phone_number_verified: bool = False

    def in_any(self, *groups: str) -> bool:
        return not self.groups.isdisjoint(groups)

    @property
    def contact_claims(self) -> dict[str, str | bool | None]:
        """What the token says about how to reach the caller (a new profile starts here)."""
        return {
            "email": self.email,
            "email_verified": self.email_verified,
            "phone_number": self.phone_number,
            "phone_number_verified": self.phone_number_verified,
            "name": self.name,
            "locale": self.locale,
        }

    @property
    def is_staff(self) -> bool:
        return self.in_any(*STAFF)

    @property
    def can_write_ops(self) -> bool:
        return self.in_any(OPS)

    @property
    def can_read_reports(self) -> bool:
        return self.in_any(*REPORT_READERS)


def bearer_token(header_value: str | None) -> str:
    """The token from an Authorization header value, with an optional "Bearer " prefix."""
    value = (header_value or "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value


def verifier() -> TokenVerifier:
    settings = get_settings()
    return _verifier_for(settings.jwt_issuer, settings.jwks_url, settings.jwt_client_ids)


@functools.lru_cache(maxsize=4)
def _verifier_for(issuer: str, jwks_url: str, client_ids: tuple[str, ...]) -> TokenVerifier:
    # One verifier (and so one cached JWKS) per process and configuration.
    return TokenVerifier(issuer, jwks_url, client_ids)


@blueprint.authorizer(ttl_seconds=AUTHORIZER_CACHE_SECONDS)
def authorizer(auth_request: AuthRequest) -> AuthResponse:
    """Verify the bearer token and hand the caller's identity to the view."""
    try:
        claims = verifier().verify(bearer_token(auth_request.token))
    except InvalidToken as exc:
        logger.info("bearer token rejected", extra={"reason": exc.reason})
        raise Unauthorized() from None
    except JwksUnavailable:
        # Not the caller's fault: let API Gateway answer 500 rather than a misleading 401.
        logger.exception("identity keys unavailable")
        raise
    return AuthResponse(routes=["*"], principal_id=claims.user_id, context=_context_for(claims))


def _context_for(claims: Claims) -> dict[str, str]:
    # API Gateway context values must be strings, numbers or booleans.
    return {
        "user_id": claims.user_id,
        # A JSON list, not a comma-joined string: a group name may itself hold a comma.
        "groups": json.dumps(sorted(claims.groups)),
        "token_use": claims.token_use,
        "email": claims.email or "",
        "phone_number": claims.phone_number or "",
        "name": claims.name or "",
        "locale": claims.locale or "",
        "email_verified": "true" if claims.email_verified else "",
        "phone_number_verified": "true" if claims.phone_number_verified else "",
    }


def principal(request: Request) -> Principal:
    """The caller of a route that has ``authorizer=authorizer``."""
    context: dict[str, Any] = (request.context or {}).get("authorizer") or {}
    user_id = context.get("user_id")
    if not user_id:
        # The route has no authorizer; refuse rather than guess who is calling.
        raise unauthorized()
    return Principal(
        user_id=str(user_id),
        groups=_groups_from(context.get("groups")),
        email=str(context.get("email") or "") or None,
        phone_number=str(context.get("phone_number") or "") or None,
        name=str(context.get("name") or "") or None,
        locale=str(context.get("locale") or "") or None,
        email_verified=str(context.get("email_verified") or "") == "true",
        phone_number_verified=str(context.get("phone_number_verified") or "") == "true",
    )


def _groups_from(value: Any) -> frozenset[str]:
    """The groups the authorizer passed on (a JSON list); anything else means none."""
    try:
        groups = json.loads(value) if isinstance(value, str) and value else []
    except ValueError:
        return frozenset()
    if not isinstance(groups, list):
        return frozenset()
    return frozenset(group for group in groups if isinstance(group, str) and group)


def require_groups(request: Request, *groups: str) -> Principal:
    """The caller, if they belong to at least one of ``groups``; otherwise 403 forbidden."""
    caller = principal(request)
    if groups and not caller.in_any(*groups):
        raise forbidden()
    return caller


def optional_principal(request: Request) -> Principal | None:
    """The caller of a public route if they sent a token; an invalid token is still a 401."""
    context = (request.context or {}).get("authorizer") or {}
    if context.get("user_id"):
        return principal(request)
    header = (request.headers or {}).get("authorization")
    if header is None or not header.strip():
        return None
    try:
        claims = verifier().verify(bearer_token(header))
    except InvalidToken as exc:
        logger.info("bearer token rejected", extra={"reason": exc.reason})
        raise unauthorized() from None
    except JwksUnavailable:
        logger.exception("identity keys unavailable")
        raise ApiError(
            503, "service_unavailable", "Sign-in cannot be checked right now; try again."
        ) from None
    return Principal(
        user_id=claims.user_id,
        groups=claims.groups,
        email=claims.email,
        phone_number=claims.phone_number,
        name=claims.name,
        locale=claims.locale,
        email_verified=claims.email_verified,
        phone_number_verified=claims.phone_number_verified,
    )
