"""The WeChat Pay emulator's identity and keys, how it signs what it sends, and how it checks
the merchant's signature on what it receives.

WeChat Pay has two kinds of platform key, and a merchant moving from one to the other meets
both: the WeChat Pay public key (``PUB_KEY_ID_…``) and platform certificates (named by their
serial numbers). The emulator holds one of each. An API answer is signed with the key the
request named in ``Wechatpay-Serial`` (a request without the header gets the certificate's,
as merchants on certificates always did; an unknown serial is a ``PARAM_ERROR``), and
callbacks are signed with ``callback_key`` (``"public_key"`` or ``"certificate"``).

Keys and the identity are generated once per state directory into files only the owner can
read; the certificate is self-signed (valid five years from its creation).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from infra.local.emulators.wechat_pay_requests import ApiError
from infra.local.identity import load_or_create_key

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
REQUEST_TOLERANCE_SECONDS = 300
STATE_FILE = "wechatpay-emulator.json"
PLATFORM_KEY_FILE = "wechatpay-platform-key.pem"
CERTIFICATE_KEY_FILE = "wechatpay-platform-cert-key.pem"
CERTIFICATE_FILE = "wechatpay-platform-cert.pem"
MERCHANT_KEY_FILE = "wechatpay-merchant-key.pem"
PUBLIC_KEY = "public_key"
CERTIFICATE = "certificate"


class UnknownSerial(Exception):
    """A request named a platform key serial this merchant does not have."""


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) with ``data`` unless it exists; the first writer wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def load_or_create_identity(path: Path) -> dict[str, str]:
    if not path.exists():
        identity = {
            "mchid": "19" + _digits(8),
            "appid": "wx" + secrets.token_hex(8),
            "merchant_serial": secrets.token_hex(20).upper(),
            "platform_serial": "PUB_KEY_ID_01" + _digits(30),
            "apiv3_key": "".join(
                secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                for _ in range(32)
            ),
        }
        write_private(path, json.dumps(identity, indent=2).encode())
    identity = json.loads(path.read_text())
    if not isinstance(identity, dict) or len(identity.get("apiv3_key", "")) != 32:
        raise ValueError(f"{path} does not hold a WeChat Pay emulator identity")
    return identity


def pem_public(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _load_or_create_certificate(path: Path, key: rsa.RSAPrivateKey, mchid: str) -> x509.Certificate:
    if not path.exists():
        # 160 bits, like WeChat Pay's 40-hex-digit serials.
        serial_number = secrets.randbits(159) | (1 << 158)
        certificate = _self_signed(key, serial_number, mchid)
        write_private(path, certificate.public_bytes(serialization.Encoding.PEM))
    return x509.load_pem_x509_certificate(path.read_bytes())


def _self_signed(key: rsa.RSAPrivateKey, serial_number: int, mchid: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (local emulator)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Tenpay.com Root CA for {mchid}"),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial_number)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )


class PlatformKeys:
    """The platform public key and platform certificate of one emulated merchant."""

    def __init__(self, state_dir: Path, public_key_id: str, mchid: str) -> None:
        self.public_key_id = public_key_id
        self._public_key = load_or_create_key(state_dir / PLATFORM_KEY_FILE)
        self._certificate_key = load_or_create_key(state_dir / CERTIFICATE_KEY_FILE)
        certificate = _load_or_create_certificate(
            state_dir / CERTIFICATE_FILE, self._certificate_key, mchid
        )
        self.certificate_serial = format(certificate.serial_number, "X")
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        self.callback_key = PUBLIC_KEY  # which key signs callbacks

    @property
    def public_key_pem(self) -> str:
        return pem_public(self._public_key)

    def serial_for(self, kind: str) -> str:
        return self.public_key_id if kind == PUBLIC_KEY else self.certificate_serial

    def answer_serial(self, requested: str | None) -> str:
        """The key an answer is signed with, for a request's ``Wechatpay-Serial``."""
        if requested is None or not requested.strip():
            return self.certificate_serial
        requested = requested.strip()
        if requested == self.public_key_id:
            return requested
        if requested.upper().lstrip("0") == self.certificate_serial.lstrip("0"):
            return self.certificate_serial
        raise UnknownSerial(requested)

    def signed_headers(self, body: bytes, serial: str | None = None) -> dict[str, str]:
        """WeChat Pay's signature headers for ``body``, with the key named ``serial``
        (default: the one callbacks are signed with)."""
        serial = serial or self.serial_for(self.callback_key)
        key = self._public_key if serial == self.public_key_id else self._certificate_key
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16).upper()
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": AUTH_SCHEME,
        }


def check_authorization(
    method: str,
    target: str,
    body: bytes,
    authorization: str | None,
    *,
    mchid: str,
    merchant_serial: str,
    merchant_key: rsa.RSAPublicKey,
) -> None:
    """Refuse a request (401 ``SIGN_ERROR``) unless the merchant ``mchid`` signed it with the
    key behind ``merchant_serial`` over ``METHOD\\nTARGET\\nTIMESTAMP\\nNONCE\\nBODY\\n``, a
    timestamp at most five minutes away."""
    prefix = AUTH_SCHEME + " "
    if not authorization or not authorization.startswith(prefix):
        raise ApiError(401, "SIGN_ERROR", "Authorization is missing or not " + AUTH_SCHEME)
    params = dict(re.findall(r'(\w+)="([^"]*)"', authorization[len(prefix) :]))
    missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - params.keys()
    if missing:
        raise ApiError(401, "SIGN_ERROR", f"Authorization lacks {', '.join(sorted(missing))}")
    if params["mchid"] != mchid:
        raise ApiError(401, "SIGN_ERROR", "mchid does not match the signing merchant")
    if params["serial_no"] != merchant_serial:
        raise ApiError(401, "SIGN_ERROR", "unknown merchant certificate serial_no")
    timestamp = params["timestamp"]
    if not timestamp.isascii() or not timestamp.isdigit():
        raise ApiError(401, "SIGN_ERROR", "timestamp is not a number")
    if abs(time.time() - int(timestamp)) > REQUEST_TOLERANCE_SECONDS:
        raise ApiError(401, "SIGN_ERROR", "timestamp is too far from now")
    message = f"{method}\n{target}\n{timestamp}\n{params['nonce_str']}\n".encode()
    message += body + b"\n"
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        merchant_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise ApiError(401, "SIGN_ERROR", "signature does not verify") from None
