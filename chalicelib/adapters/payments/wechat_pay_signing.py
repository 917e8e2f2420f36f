"""WeChat Pay APIv3's signature scheme and its keys, as pure functions.

- A request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``: SHA256withRSA (PKCS#1 v1.5) with the
  merchant key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
- An answer or a notification is signed with a platform key over
  ``TIMESTAMP\\nNONCE\\nBODY\\n`` (headers ``Wechatpay-Timestamp``, ``-Nonce``,
  ``-Signature``, ``-Serial``); the key is chosen by serial among the configured ones only,
  and a timestamp 300 s or more away from our clock is stale.
- A notification's ``resource`` is AEAD_AES_256_GCM-encrypted with the APIv3 key.
- Keys are configured as PEM text: the merchant's private key, and the platform's public
  key or certificates (a certificate's serial is its upper-case hex serial number).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.adapters.payments import ProviderError

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
TIMESTAMP_TOLERANCE_SECONDS = 300
MIN_KEY_BITS = 2048
TIMESTAMP = re.compile(r"[0-9]{1,12}")
NONCE = re.compile(r"[!-~]{1,64}")  # printable ASCII, no spaces or newlines
SIGNATURE_HEADERS = (
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
)


def request_message(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: str
) -> str:
    """What the merchant signs for a request."""
    return f"{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n"


def sign_message(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) over ``message`` in UTF-8."""
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def build_authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    path_with_query: str,
    body: str,
    timestamp: str,
    nonce: str,
) -> str:
    """The ``Authorization`` header value for one request."""
    signature = sign_message(
        private_key, request_message(method, path_with_query, timestamp, nonce, body)
    )
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


class SignatureRejected(Exception):
    """A WeChat Pay signature that must not be trusted; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_signature(
    headers: Mapping[str, str] | Any,
    body: bytes,
    platform_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    now: float,
) -> str:
    """Check a WeChat Pay answer's or notification's signature; returns the key serial.

    ``headers`` is any mapping with ``items()`` (names matched case-insensitively). Raises
    ``SignatureRejected``; never touches the network.
    """
    found = _lower_headers(headers)
    values: dict[str, str] = {}
    for name in SIGNATURE_HEADERS:
        value = found.get(name, "").strip()
        if not value:
            raise SignatureRejected(f"missing {name} header")
        values[name] = value
    signature_type = found.get("wechatpay-signature-type")
    if signature_type is not None and signature_type.strip() != AUTH_SCHEME:
        raise SignatureRejected("unsupported signature type")
    timestamp = values["wechatpay-timestamp"]
    nonce = values["wechatpay-nonce"]
    if not TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("malformed timestamp")
    if abs(now - int(timestamp)) >= TIMESTAMP_TOLERANCE_SECONDS:
        raise SignatureRejected("stale timestamp")
    if not NONCE.fullmatch(nonce):
        raise SignatureRejected("malformed nonce")
    serial = values["wechatpay-serial"]
    # A certificate serial is hex: its case does not matter.
    key = _find_by_serial(platform_keys, serial) or _find_by_serial(platform_keys, serial.upper())
    if key is None:
        raise SignatureRejected("unknown platform key serial")
    try:
        signature = base64.b64decode(values["wechatpay-signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("malformed signature") from None
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRejected("signature does not verify") from None
    return serial


def decrypt_resource(
    apiv3_key: bytes, *, nonce: str, ciphertext: str, associated_data: str
) -> bytes:
    """Open an AEAD_AES_256_GCM resource (ciphertext is base64 of ciphertext + tag)."""
    return AESGCM(apiv3_key).decrypt(
        nonce.encode("utf-8"),
        base64.b64decode(ciphertext, validate=True),
        associated_data.encode("utf-8"),
    )


def _lower_headers(headers: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = str(name).lower()
        if key in found and found[key] != value:
            raise SignatureRejected(f"conflicting {key} headers")
        found[key] = str(value)
    return found


def _find_by_serial(keys: Mapping[str, rsa.RSAPublicKey], serial: str) -> rsa.RSAPublicKey | None:
    # Compare against every serial, in constant time each, whatever matches first.
    wanted = serial.encode("utf-8", "replace")
    match = None
    for known, key in keys.items():
        if hmac.compare_digest(known.encode("utf-8"), wanted):
            match = key
    return match


def certificate_serial(certificate: x509.Certificate) -> str:
    """A platform certificate's serial as WeChat Pay writes it: upper-case hex."""
    return format(certificate.serial_number, "X")


def platform_certificates(bundle: str) -> dict[str, str]:
    """serial -> PEM for each certificate in ``bundle`` (PEM text, one or more), oldest
    first by the start of their validity."""
    text = bundle.strip().replace("\\n", "\n")
    if not text:
        return {}
    try:
        loaded = x509.load_pem_x509_certificates(text.encode("ascii", "replace"))
    except ValueError:
        raise not_configured("a platform certificate cannot be read") from None
    loaded.sort(key=lambda cert: cert.not_valid_before_utc)
    return {
        certificate_serial(cert): cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        for cert in loaded
    }


def _pem(text: str, label: str) -> bytes:
    """PEM text as configured: literal ``\\n`` (one-line env values) and bare base64 allowed."""
    text = text.strip().replace("\\n", "\n")
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        text = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return text.encode("ascii", "replace")


def not_configured(message: str) -> ProviderError:
    return ProviderError(f"WeChat Pay is misconfigured: {message}", code="not_configured")


def load_merchant_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(_pem(pem, "PRIVATE KEY"), password=None)
    except (ValueError, TypeError):
        raise not_configured("the merchant private key cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise not_configured(f"the merchant key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def load_platform_key(pem: str) -> rsa.RSAPublicKey:
    """A platform public key, or the public key of a platform certificate."""
    try:
        if "CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(_pem(pem, "CERTIFICATE")).public_key()
        else:
            key = serialization.load_pem_public_key(_pem(pem, "PUBLIC KEY"))
    except (ValueError, TypeError):
        raise not_configured("a platform public key cannot be read") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise not_configured(f"platform keys must be RSA of at least {MIN_KEY_BITS} bits")
    return key
