"""A local stand-in for a Cognito user pool: one RSA key, a JWKS endpoint, token minting.

The app verifies local tokens with exactly the code it uses against Cognito
(``chalicelib.adapters.identity``); only the issuer URL and its JWKS differ. The key is
generated once and reused across runs (the stack keeps it in the git-ignored ``.local/``),
so tokens minted by ``make token`` stay valid while a stack restarts.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.identity import USER_ID_PATTERN
from infra.local.hosted_ui import HostedUi, User, WebClient

CLIENT_ID = "orderdesk-local-client"
POOL_PATH = "/local-pool"
KEY_BITS = 2048
MAX_REQUEST_BYTES = 64 * 1024


class LocalIdentityProvider:
    """Serves a JWKS and mints Cognito-shaped RS256 tokens signed with a local key."""

    def __init__(
        self, key_path: Path, *, issuer: str | None = None, client_id: str = CLIENT_ID
    ) -> None:
        self.key_path = Path(key_path)
        self.client_id = client_id
        self._private_key = load_or_create_key(self.key_path)
        self._issuer = issuer
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.jwks_requests = 0  # how often the JWKS was served; lets tests see caching
        # The hosted UI's sign-in flow (authorize, login, token, logout) for web clients.
        self.hosted_ui = HostedUi(issuer=lambda: self.issuer, sign=self.sign)

    @property
    def base_url(self) -> str:
        """Where the hosted UI's endpoints live (Cognito: the user pool's domain)."""
        return self.issuer.removesuffix(POOL_PATH)

    def add_web_client(
        self, client_id: str, callback_urls: list[str], logout_urls: list[str]
    ) -> WebClient:
        """Register a public app client (PKCE, no secret) with its exact URLs."""
        return self.hosted_ui.add_client(client_id, callback_urls, logout_urls)

    def set_users(self, users: list[User]) -> None:
        """The users the sign-in page lists (others may still sign in by typing an id)."""
        self.hosted_ui.users = tuple(users)

    def web_client_config(self, client_id: str) -> dict[str, Any]:
        """What a web app needs to sign in with ``client_id`` (its config.json's part)."""
        client = self.hosted_ui.clients[client_id]
        endpoints = self.hosted_ui.endpoints(self.base_url)
        return {
            "issuer": self.issuer,
            "client_id": client.client_id,
            "authorization_endpoint": endpoints["authorization_endpoint"],
            "token_endpoint": endpoints["token_endpoint"],
            "end_session_endpoint": endpoints["end_session_endpoint"],
            "redirect_uri": client.callback_urls[0],
            "logout_uri": client.logout_urls[0],
            "scope": "openid email phone profile",
        }

    def oidc_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.hosted_ui.endpoints(self.base_url),
        }

    @property
    def issuer(self) -> str:
        if self._issuer is None:
            raise RuntimeError("the identity provider has no issuer until start() is called")
        return self._issuer

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def kid(self) -> str:
        return key_id(self._private_key.public_key())

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self._private_key.public_key())]}

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the JWKS on a background thread; returns the issuer URL."""
        if self._server is not None:
            raise RuntimeError("the identity provider is already running")
        server = ThreadingHTTPServer((host, port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._issuer = f"http://{host}:{server.server_address[1]}{POOL_PATH}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},  # so stop() returns promptly
            name="local-identity-provider",
            daemon=True,
        )
        self._thread.start()
        return self._issuer

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def env(self) -> dict[str, str]:
        """The app's identity settings for this provider."""
        return {
            "JWT_ISSUER": self.issuer,
            "JWKS_URL": self.jwks_url,
            "JWT_CLIENT_IDS": ",".join([self.client_id, *self.hosted_ui.clients]),
        }

    def mint(
        self,
        user_id: str,
        groups: list[str],
        *,
        expires_in: int = 3600,
        email: str | None = None,
        token_use: str = "access",
    ) -> str:
        """A token shaped like the access (or id) token Cognito issues for this user."""
        if token_use not in ("access", "id"):
            raise ValueError("token_use must be 'access' or 'id'")
        if not USER_ID_PATTERN.fullmatch(user_id):
            raise ValueError(f"user id {user_id!r} must match {USER_ID_PATTERN.pattern}")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "iss": self.issuer,
            "token_use": token_use,
            "iat": now,
            "auth_time": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if token_use == "access":
            claims.update(
                client_id=self.client_id, username=user_id, scope="aws.cognito.signin.user.admin"
            )
        else:
            claims.update(aud=self.client_id, **{"cognito:username": user_id})
        if groups:
            # Cognito leaves the claim out for a user in no group.
            claims["cognito:groups"] = list(groups)
        if email is not None:
            claims["email"] = email
        return self.sign(claims)

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign arbitrary claims with this provider's key (RS256, its ``kid``)."""
        return jwt.encode(
            claims,
            self._private_key,
            algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )


def mint_for_stack(
    stack_file: Path,
    user_id: str,
    groups: list[str],
    *,
    key_path: Path | None = None,
    expires_in: int = 3600,
    email: str | None = None,
) -> str:
    """Mint a token for a running local stack from its state file and the shared key.

    The stack writes ``.local/stack-<port>.json`` (with ``issuer`` and ``jwt_client_id``)
    next to the key it serves, so no request to the stack is needed.
    """
    state = json.loads(Path(stack_file).read_text())
    key = Path(key_path) if key_path is not None else Path(stack_file).parent / "idp-key.pem"
    if not key.exists():
        raise FileNotFoundError(f"identity key not found: {key}")
    provider = LocalIdentityProvider(
        key, issuer=state["issuer"], client_id=state.get("jwt_client_id", CLIENT_ID)
    )
    return provider.mint(user_id, groups, expires_in=expires_in, email=email)


def load_or_create_key(key_path: Path) -> rsa.RSAPrivateKey:
    """The RSA key at ``key_path``, created there (mode 0600) on first use."""
    if not key_path.exists():
        _create_key_file(key_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
        raise ValueError(f"{key_path} does not hold an RSA key of at least {KEY_BITS} bits")
    return key


def _create_key_file(key_path: Path) -> None:
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write a private temp file, then link it into place: the key appears complete or not
    # at all, and when two stacks start at once the first key wins and both use it.
    temp_path = key_path.with_name(f".{key_path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(temp_path, key_path)
    finally:
        temp_path.unlink(missing_ok=True)


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": key_id(public_key),
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key's RFC 7638 thumbprint: stable for a key, different for every other key."""
    numbers = public_key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _handler_for(provider: LocalIdentityProvider) -> type[BaseHTTPRequestHandler]:
    class JwksHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == f"{POOL_PATH}/.well-known/jwks.json":
                provider.jwks_requests += 1
                self._send_json(200, provider.jwks())
            elif path == f"{POOL_PATH}/.well-known/openid-configuration":
                self._send_json(200, provider.oidc_configuration())
            elif provider.hosted_ui.handles(path):
                self._hosted_ui("GET")
            else:
                self._send_json(404, {"message": "not found"})

        def do_POST(self) -> None:
            self._hosted_ui("POST")

        def do_OPTIONS(self) -> None:
            self._hosted_ui("OPTIONS")

        def _hosted_ui(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            if not provider.hosted_ui.handles(path):
                self._send_json(404, {"message": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._send_json(413, {"error": "invalid_request"})
                return
            body = self.rfile.read(length) if length > 0 else b""
            reply = provider.hosted_ui.handle(method, path, query, body, dict(self.headers))
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def _send_json(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the stack's console for the app's own logs

    return JwksHandler
