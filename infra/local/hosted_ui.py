"""The local identity provider's sign-in flow, shaped like Cognito's hosted UI.

OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636) for public web clients:

- ``GET /oauth2/authorize`` checks the client, its callback URL, ``response_type=code`` and
  an S256 ``code_challenge``, then shows a sign-in page (the demo users and their groups, and
  a box for a new user id). Signing in (``POST /login``) starts a provider session (a cookie)
  and redirects to the callback with ``code`` and ``state``; while the session lasts, the
  next authorize redirects at once, as Cognito's hosted UI does.
- ``POST /oauth2/token`` takes the ``authorization_code`` grant (the code is single-use,
  lives five minutes, and needs the PKCE ``code_verifier``) and the ``refresh_token`` grant.
- ``GET /logout`` (``client_id`` + one of its sign-out URLs as ``logout_uri``) ends the session.

Tokens are Cognito's: the access token carries ``client_id``, ``token_use=access``,
``scope``, ``username`` and ``cognito:groups``; the ID token ``aud``, ``token_use=id`` and
the contact claims; refresh tokens are opaque. Errors a client can be told about go back to
its callback (``error``, ``error_description``, ``state``); an unknown client or callback
URL gets an error page and no redirect. The token endpoint answers errors as
``{"error", "error_description"}`` with 400.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.identity import USER_ID_PATTERN

AUTHORIZE_PATH = "/oauth2/authorize"
LOGIN_PATH = "/login"
TOKEN_PATH = "/oauth2/token"
LOGOUT_PATH = "/logout"
SESSION_COOKIE = "orderdesk_idp_session"

CODE_TTL_SECONDS = 300  # Cognito's authorization codes last five minutes
ACCESS_TOKEN_TTL_SECONDS = 3600
SESSION_TTL_SECONDS = 3600
REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600
SCOPES = ("openid", "email", "phone", "profile", "aws.cognito.signin.user.admin")
NEW_USER_GROUPS = ("customers",)
# RFC 7636 section 4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9\-_]{43}")
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class User:
    """A user of the pool and the attributes its tokens carry."""

    user_id: str
    groups: tuple[str, ...]
    email: str | None = None
    name: str | None = None
    phone_number: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class WebClient:
    """A public app client: no secret, PKCE, callback and sign-out URLs allowed exactly."""

    client_id: str
    callback_urls: tuple[str, ...]
    logout_urls: tuple[str, ...]

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(_origin(url) for url in (*self.callback_urls, *self.logout_urls))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    user: User
    scopes: tuple[str, ...]
    nonce: str | None
    expires_at: float


@dataclass(frozen=True)
class _Grant:
    """What a refresh token stands for."""

    client_id: str
    user: User
    scopes: tuple[str, ...]
    expires_at: float


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class HostedUi:
    """The sign-in flow's state (sessions, codes, refresh tokens), all in memory."""

    issuer: Callable[[], str]
    sign: Callable[[dict[str, Any]], str]
    users: tuple[User, ...] = ()
    clients: dict[str, WebClient] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    _sessions: dict[str, tuple[User, float]] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_client(
        self, client_id: str, callback_urls: Iterable[str], logout_urls: Iterable[str]
    ) -> WebClient:
        client = WebClient(client_id, tuple(callback_urls), tuple(logout_urls))
        self.clients[client_id] = client
        return client

    def endpoints(self, base_url: str) -> dict[str, str]:
        """The discovery document's endpoint entries for a server at ``base_url``."""
        return {
            "authorization_endpoint": f"{base_url}{AUTHORIZE_PATH}",
            "token_endpoint": f"{base_url}{TOKEN_PATH}",
            "end_session_endpoint": f"{base_url}{LOGOUT_PATH}",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
        }

    def handles(self, path: str) -> bool:
        return path in (AUTHORIZE_PATH, LOGIN_PATH, TOKEN_PATH, LOGOUT_PATH)

    def handle(
        self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]
    ) -> Reply:
        headers = {name.lower(): value for name, value in headers.items()}
        params = _single_values(query)
        origin = headers.get("origin")
        if path == AUTHORIZE_PATH and method == "GET":
            return self.authorize(params, _cookie(headers, SESSION_COOKIE))
        if path == LOGIN_PATH and method == "POST":
            return self.login(_single_values(body.decode("utf-8", "replace")))
        if path == TOKEN_PATH and method == "OPTIONS":
            return self._preflight(origin)
        if path == TOKEN_PATH and method == "POST":
            reply = self.token(headers.get("content-type", ""), body)
            return _with_cors(reply, origin, self._allowed_origins())
        if path == LOGOUT_PATH and method == "GET":
            return self.logout(params, _cookie(headers, SESSION_COOKIE))
        return _json_reply(405, {"error": "invalid_request", "error_description": "method"})

    # --- /oauth2/authorize and the sign-in page ---

    def authorize(self, params: dict[str, str], session_id: str | None) -> Reply:
        client, redirect_uri, refusal = self._client_and_callback(params)
        if refusal is not None:
            return refusal
        assert client is not None and redirect_uri is not None
        state = params.get("state")
        try:
            scopes = self._check_request(params)
        except OAuthError as exc:
            return _redirect(redirect_uri, _error_params(exc, state))
        user = self._session_user(session_id)
        if user is not None:
            return self._issue_code(client, redirect_uri, params, scopes, user, None)
        return _html_reply(200, self._sign_in_page(params))

    def login(self, form: dict[str, str]) -> Reply:
        """The sign-in page's form: every authorize parameter again, plus the user."""
        client, redirect_uri, refusal = self._client_and_callback(form)
        if refusal is not None:
            return refusal
        assert client is not None and redirect_uri is not None
        try:
            scopes = self._check_request(form)
        except OAuthError as exc:
            return _redirect(redirect_uri, _error_params(exc, form.get("state")))
        user_id = (form.get("username") or form.get("new_username") or "").strip()
        if not USER_ID_PATTERN.fullmatch(user_id):
            page = self._sign_in_page(form, problem="A user id is 1-64 letters, digits, . _ -")
            return _html_reply(400, page)
        user = self._user(user_id)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = (user, self.clock() + SESSION_TTL_SECONDS)
        cookie = (
            f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; "
            f"Max-Age={SESSION_TTL_SECONDS}"
        )
        return self._issue_code(client, redirect_uri, form, scopes, user, cookie)

    def _client_and_callback(
        self, params: Mapping[str, str]
    ) -> tuple[WebClient | None, str | None, Reply | None]:
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return None, None, _error_page("invalid_client", "Unknown client_id.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.callback_urls:
            # Never redirect to a URL the client did not register.
            return None, None, _error_page("redirect_mismatch", "Unregistered redirect_uri.")
        return client, redirect_uri, None

    def _check_request(self, params: Mapping[str, str]) -> tuple[str, ...]:
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if not CHALLENGE_PATTERN.fullmatch(params.get("code_challenge", "")):
            raise OAuthError("invalid_request", "code_challenge must be a base64url SHA-256")
        requested = params.get("scope", "").split()
        unknown = [scope for scope in requested if scope not in SCOPES]
        if unknown:
            raise OAuthError("invalid_scope", f"unknown scope {unknown[0]}")
        return tuple(dict.fromkeys(requested)) or SCOPES

    def _issue_code(
        self,
        client: WebClient,
        redirect_uri: str,
        params: Mapping[str, str],
        scopes: tuple[str, ...],
        user: User,
        cookie: str | None,
    ) -> Reply:
        code = str(uuid.uuid4())
        with self._lock:
            self._codes[code] = _Code(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                user=user,
                scopes=scopes,
                nonce=params.get("nonce") or None,
                expires_at=self.clock() + CODE_TTL_SECONDS,
            )
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = params["state"]
        reply = _redirect(redirect_uri, answer)
        if cookie is None:
            return reply
        return Reply(reply.status, (*reply.headers, ("Set-Cookie", cookie)), reply.body)

    def _session_user(self, session_id: str | None) -> User | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session[1] <= self.clock():
                del self._sessions[session_id]
                return None
            return session[0]

    def _user(self, user_id: str) -> User:
        for user in self.users:
            if user.user_id == user_id:
                return user
        # A new user signs up in one step: a customer with a confirmed example address.
        return User(user_id, NEW_USER_GROUPS, email=f"{user_id}@example.com", locale="zh-CN")

    def _sign_in_page(self, params: Mapping[str, str], problem: str | None = None) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
            if name not in ("username", "new_username")
        )
        rows = "".join(
            '<li><button type="submit" name="username" '
            f'value="{html.escape(user.user_id)}">{html.escape(user.name or user.user_id)}'
            f"</button> <code>{html.escape(user.user_id)}</code> "
            f"<span>{html.escape(', '.join(user.groups) or '-')}</span></li>"
            for user in self.users
        )
        alert = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
        return (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>登录 / Sign in</title>"
            "<style>body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;max-width:32rem;"
            "margin:2rem auto;padding:0 1rem}li{margin:.5rem 0}button{min-width:8rem;"
            "padding:.4rem}input[type=text]{padding:.4rem}</style></head><body>"
            "<main><h1>登录 / Sign in</h1>"
            f'{alert}<form method="post" action="{LOGIN_PATH}">{hidden}'
            f"<h2>演示用户 / Demo users</h2><ul>{rows}</ul>"
            '<h2><label for="new_username">新用户 / New user id</label></h2>'
            '<input type="text" id="new_username" name="new_username" '
            'pattern="[A-Za-z0-9._\\-]{1,64}" autocomplete="username"> '
            '<button type="submit">继续 / Continue</button>'
            "</form></main></body></html>"
        )

    # --- /oauth2/token ---

    def token(self, content_type: str, body: bytes) -> Reply:
        try:
            if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "the body must be form-urlencoded")
            if len(body) > MAX_FORM_BYTES:
                raise OAuthError("invalid_request", "the body is too large")
            form = _single_values(body.decode("utf-8", "replace"))
            client = self.clients.get(form.get("client_id", ""))
            if client is None:
                raise OAuthError("invalid_client", "unknown client_id")
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                tokens = self._exchange_code(client, form)
            elif grant_type == "refresh_token":
                tokens = self._refresh(client, form)
            else:
                raise OAuthError("unsupported_grant_type", "authorization_code or refresh_token")
        except OAuthError as exc:
            return _json_reply(400, {"error": exc.error, "error_description": exc.description})
        return _json_reply(200, tokens)

    def _exchange_code(self, client: WebClient, form: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            # Single use: the first attempt consumes the code, whatever its outcome.
            code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "the code is unknown, used or expired")
        if code.client_id != client.client_id or code.redirect_uri != form.get("redirect_uri"):
            raise OAuthError("invalid_grant", "the code was issued to another client or URL")
        verifier = form.get("code_verifier", "")
        if not VERIFIER_PATTERN.fullmatch(verifier) or not secrets.compare_digest(
            s256(verifier), code.challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        refresh_token = secrets.token_urlsafe(96)
        with self._lock:
            self._grants[refresh_token] = _Grant(
                client.client_id, code.user, code.scopes, self.clock() + REFRESH_TOKEN_TTL_SECONDS
            )
        tokens = self._tokens(client, code.user, code.scopes, code.nonce)
        tokens["refresh_token"] = refresh_token
        return tokens

    def _refresh(self, client: WebClient, form: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            grant = self._grants.get(form.get("refresh_token", ""))
        if grant is None or grant.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "Invalid Refresh Token")
        if grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Invalid Refresh Token")
        # As Cognito without rotation: new access and ID tokens, the same refresh token.
        return self._tokens(client, grant.user, grant.scopes, None)

    def _tokens(
        self, client: WebClient, user: User, scopes: tuple[str, ...], nonce: str | None
    ) -> dict[str, Any]:
        now = int(self.clock())
        common: dict[str, Any] = {
            "sub": user.user_id,
            "iss": self.issuer(),
            "iat": now,
            "auth_time": now,
            "exp": now + ACCESS_TOKEN_TTL_SECONDS,
            "origin_jti": str(uuid.uuid4()),
        }
        if user.groups:
            common["cognito:groups"] = list(user.groups)  # left out for a user in no group
        access = {
            **common,
            "jti": str(uuid.uuid4()),
            "token_use": "access",
            "client_id": client.client_id,
            "scope": " ".join(scopes),
            "username": user.user_id,
        }
        answer: dict[str, Any] = {
            "access_token": self.sign(access),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_SECONDS,
        }
        if "openid" in scopes:
            answer["id_token"] = self.sign(self._id_claims(common, client, user, nonce))
        return answer

    def _id_claims(
        self, common: dict[str, Any], client: WebClient, user: User, nonce: str | None
    ) -> dict[str, Any]:
        claims = {
            **common,
            "jti": str(uuid.uuid4()),
            "token_use": "id",
            "aud": client.client_id,
            "cognito:username": user.user_id,
        }
        if user.email:
            claims.update(email=user.email, email_verified=True)
        if user.phone_number:
            claims.update(phone_number=user.phone_number, phone_number_verified=True)
        if user.name:
            claims["name"] = user.name
        if user.locale:
            claims["locale"] = user.locale
        if nonce:
            claims["nonce"] = nonce
        return claims

    def _allowed_origins(self) -> frozenset[str]:
        return frozenset().union(*(client.origins for client in self.clients.values()))

    def _preflight(self, origin: str | None) -> Reply:
        reply = Reply(
            204,
            (
                ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Content-Type, Authorization"),
                ("Access-Control-Max-Age", "600"),
            ),
        )
        return _with_cors(reply, origin, self._allowed_origins())

    # --- /logout ---

    def logout(self, params: Mapping[str, str], session_id: str | None) -> Reply:
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return _error_page("invalid_client", "Unknown client_id.")
        logout_uri = params.get("logout_uri", "")
        if logout_uri not in client.logout_urls:
            return _error_page("redirect_mismatch", "Unregistered logout_uri.")
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)
        expired = f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        return Reply(302, (("Location", logout_uri), ("Set-Cookie", expired)))


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier: base64url(SHA-256(verifier)), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _single_values(encoded: str) -> dict[str, str]:
    # A parameter sent twice is ambiguous (RFC 6749 section 3.1): keep none of it.
    pairs = urllib.parse.parse_qsl(encoded, keep_blank_values=True)
    seen: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in seen:
            repeated.add(name)
        seen[name] = value
    return {name: value for name, value in seen.items() if name not in repeated}


def _cookie(headers: Mapping[str, str], name: str) -> str | None:
    raw = headers.get("cookie") or ""
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _redirect(url: str, params: Mapping[str, str]) -> Reply:
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    location = f"{url}{separator}{urllib.parse.urlencode(params)}"
    return Reply(302, (("Location", location), ("Cache-Control", "no-store")))


def _error_params(exc: OAuthError, state: str | None) -> dict[str, str]:
    answer = {"error": exc.error, "error_description": exc.description}
    if state:
        answer["state"] = state
    return answer


def _json_reply(status: int, document: Mapping[str, Any]) -> Reply:
    headers = (
        ("Content-Type", "application/json;charset=UTF-8"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
    )
    return Reply(status, headers, json.dumps(document).encode())


def _html_reply(status: int, page: str) -> Reply:
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY"),
        # No form-action: browsers apply it to the redirect a sign-in answers with.
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    )
    return Reply(status, headers, page.encode())


def _error_page(error: str, description: str) -> Reply:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title>'
        f'</head><body><main><h1>An error was encountered</h1><p data-error="{error}">'
        f"{html.escape(error)}: {html.escape(description)}</p></main></body></html>"
    )
    return _html_reply(400, page)


def _with_cors(reply: Reply, origin: str | None, allowed: frozenset[str]) -> Reply:
    if not origin or origin not in allowed:
        return reply
    cors = (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))
    return Reply(reply.status, (*reply.headers, *cors), reply.body)
