"""Bearer tokens shaped like Amazon Cognito's, verified against the issuer's JWKS.

The same code runs in AWS (the Cognito user pool's JWKS) and locally (the JWKS the local
stack serves from its own key pair). PyJWT and cryptography are imported inside the
functions that need them: importing this module must stay cheap for Lambda cold starts.

Rules (Cognito's, see "Verifying a JSON web token" in the Cognito developer guide):
RS256 only; the ``kid`` must be in the issuer's JWKS; ``iss`` matches exactly; ``exp`` has
not passed (small leeway); ``token_use`` is ``access`` (then ``client_id`` must be one of
ours) or ``id`` (then ``aud`` must be one of ours).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALGORITHM = "RS256"
TOKEN_USES = frozenset({"access", "id"})
# Tokens and key sets are small; anything far bigger is not worth parsing.
MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 512 * 1024
# The user id ends up inside DynamoDB keys, so it must be a well-formed id.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class InvalidToken(Exception):
    """The token must not be trusted. ``reason`` is safe to log; it never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwksUnavailable(Exception):
    """The issuer's key set could not be fetched: an outage on our side, not a bad token."""


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    user_id: str
    groups: frozenset[str]
    token_use: str
    client_id: str
    email: str | None = None
    # Contact claims an id token may carry; a new customer profile starts from them.
    phone_number: str | None = None
    name: str | None = None
    locale: str | None = None
    # Whether the identity provider confirmed the email / phone (id token claims).
    email_verified: bool = False
    phone_number_verified: bool = False


class TokenVerifier:
    """Verifies Cognito-shaped RS256 tokens; the key set is fetched once and cached.

    An unknown ``kid`` (the issuer may have rotated its keys) triggers one refetch, but
    only when the cached set is at least ``min_refetch_interval`` seconds old, so tokens
    with made-up key ids cannot make us hammer the issuer.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str,
        client_ids: Iterable[str],
        *,
        leeway_seconds: float = 30.0,
        min_refetch_interval: float = 30.0,
        fetch_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required (JWT_ISSUER)")
        if urllib.parse.urlsplit(jwks_url).scheme not in ("http", "https"):
            # urllib would also open file:// and ftp:// URLs; keys come only over HTTP(S).
            raise ValueError("jwks_url must be an http(s) URL (JWKS_URL)")
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.client_ids = frozenset(client_ids)
        if not self.client_ids:
            raise ValueError("at least one client id is required (JWT_CLIENT_IDS)")
        self._leeway = leeway_seconds
        self._min_refetch_interval = min_refetch_interval
        self._fetch_timeout = fetch_timeout
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._last_fetch: float | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> Claims:
        """Return the token's claims, or raise ``InvalidToken`` (``JwksUnavailable`` on outage)."""
        import jwt

        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        # Check the algorithm before touching any key: "none" and HS256 (with the public
        # key as the HMAC secret) are the classic forgeries.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported algorithm")
        if "crit" in header:
            raise InvalidToken("unsupported critical header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing key id")
        key = self._key_for(kid)
        try:
            payload = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iat", "iss", "token_use"],
                    # Access tokens carry no "aud"; the audience is checked below per token_use.
                    "verify_aud": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not yet valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing claim {exc.claim}") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken("malformed token") from None
        return _claims_from(payload, self.client_ids)

    def _key_for(self, kid: str) -> Any:
        with self._lock:
            if not self._keys:
                # Nothing usable cached (first call, or the last fetch failed): fetch now.
                self._keys = self._fetch_keys()
            elif kid not in self._keys and self._may_refetch():
                self._keys = self._fetch_keys()
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        return key

    def _may_refetch(self) -> bool:
        return (
            self._last_fetch is None
            or self._clock() - self._last_fetch >= self._min_refetch_interval
        )

    def _fetch_keys(self) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        self._last_fetch = self._clock()
        request = urllib.request.Request(self.jwks_url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._fetch_timeout) as response:
                body = response.read(MAX_JWKS_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise JwksUnavailable(f"could not fetch the JWKS: {exc}") from None
        if len(body) > MAX_JWKS_BYTES:
            raise JwksUnavailable("the JWKS is too large")
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("the JWKS is not JSON") from None
        keys = signing_keys(document)
        if not keys:
            raise JwksUnavailable("the JWKS holds no RS256 signing keys")
        return keys


def signing_keys(document: Any) -> dict[str, Any]:
    """The RS256 public keys of a JWKS document, by ``kid``; other keys are skipped."""
    import jwt

    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        return {}
    keys: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        usable = (
            isinstance(kid, str)
            and entry.get("kty") == "RSA"
            and entry.get("use", "sig") == "sig"
            and entry.get("alg", ALGORITHM) == ALGORITHM
        )
        if not usable:
            continue
        try:
            keys[kid] = jwt.PyJWK(dict(entry), algorithm=ALGORITHM).key
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
    return keys


def _claims_from(payload: Mapping[str, Any], client_ids: frozenset[str]) -> Claims:
    token_use = payload.get("token_use")
    if token_use not in TOKEN_USES:
        raise InvalidToken("unsupported token_use")
    if token_use == "access":
        client_id = payload.get("client_id")
        if client_id not in client_ids:
            raise InvalidToken("wrong client id")
    else:
        client_id = _audience_in(payload.get("aud"), client_ids)
        if client_id is None:
            raise InvalidToken("wrong audience")

    user_id = payload.get("sub") or payload.get("username") or payload.get("cognito:username")
    if not isinstance(user_id, str) or not USER_ID_PATTERN.fullmatch(user_id):
        raise InvalidToken("missing or malformed subject")

    groups = payload.get("cognito:groups", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise InvalidToken("malformed cognito:groups")

    return Claims(
        user_id=user_id,
        groups=frozenset(groups),
        token_use=token_use,
        client_id=client_id,
        email=_optional_text(payload, "email"),
        phone_number=_optional_text(payload, "phone_number"),
        name=_optional_text(payload, "name"),
        locale=_optional_text(payload, "locale"),
        email_verified=_is_true(payload.get("email_verified")),
        phone_number_verified=_is_true(payload.get("phone_number_verified")),
    )


def _is_true(value: Any) -> bool:
    """Cognito's id tokens carry booleans; its userInfo answers carry "true"/"false"."""
    return value is True or value == "true"


def _optional_text(payload: dict[str, Any], claim: str) -> str | None:
    value = payload.get(claim)
    return value[:256] if isinstance(value, str) and value else None


def _audience_in(audience: Any, client_ids: frozenset[str]) -> str | None:
    candidates = audience if isinstance(audience, list) else [audience]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate in client_ids:
            return candidate
    return None
