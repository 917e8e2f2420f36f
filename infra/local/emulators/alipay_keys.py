"""The Alipay emulator's two RSA key pairs and its RSA2 (SHA256withRSA, PKCS#1 v1.5) signing.

"Alipay's" pair signs answers, notifications and page-pay returns; the merchant app's public
half checks requests, as if the merchant had uploaded it, and ``app_env()`` hands the app the
other halves. Both are created once per state directory (mode 0600). Written from Alipay's
documentation on its own, not shared with the app's client, so a mistake on one side shows
up as a failed check on the other.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from infra.local.identity import load_or_create_key

PLATFORM_KEY_FILE = "alipay-platform-key.pem"
APP_KEY_FILE = "alipay-app-key.pem"


def signing_content(params: dict[str, str], *, exclude: tuple[str, ...]) -> str:
    """What a request or a page-pay return is signed over: the non-empty parameters but
    ``exclude``, sorted, as ``k=v`` joined with ``&``."""
    pairs = sorted((k, v) for k, v in params.items() if k not in exclude and v != "")
    return "&".join(f"{k}={v}" for k, v in pairs)


def notification_content(params: dict[str, str]) -> str:
    """What a notification is signed over: every parameter, empty ones too (requests are
    not), but ``sign`` and ``sign_type``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type"))


class AlipayKeys:
    def __init__(self, state_dir: Path) -> None:
        self._platform_key = load_or_create_key(state_dir / PLATFORM_KEY_FILE)
        self._app_key = load_or_create_key(state_dir / APP_KEY_FILE)
        self._merchant_public_key = self._app_key.public_key()

    def sign(self, content: str) -> str:
        signature = self._platform_key.sign(
            content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
        return base64.b64encode(signature).decode("ascii")

    def verify_merchant(self, content: str, signature: str) -> bool:
        try:
            self._merchant_public_key.verify(
                base64.b64decode(signature, validate=True),
                content.encode("utf-8"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def app_private_pem(self) -> str:
        """The merchant app's private key, for the app to sign its requests with."""
        return self._app_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def platform_public_pem(self) -> str:
        """Alipay's public key, for the app to check answers and notifications with."""
        return (
            self._platform_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
