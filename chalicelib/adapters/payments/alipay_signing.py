"""Alipay's RSA2 scheme (SHA256withRSA, PKCS#1 v1.5), as pure functions: what a request is
signed over (the sorted non-empty ``k=v`` pairs but ``sign``), what a notification is
verified over (every pair but ``sign`` and ``sign_type``, empty values included), the keys
as the Alipay console shows them, and the exact source text of an answer's members, since
Alipay signs a response node as the characters it sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def signing_content(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string a request is signed over: non-empty parameters but ``exclude``, sorted by
    key, as ``k=v`` joined with ``&`` (values not URL-encoded)."""
    return "&".join(
        f"{key}={value}" for key, value in sorted(params.items()) if key not in exclude and value
    )


def notification_signing_content(params: Mapping[str, str]) -> str:
    """The string a notification is verified over: every parameter but ``sign`` and
    ``sign_type``, empty values included (Alipay's documentation and SDK), sorted by key.
    Unlike ``signing_content``: leaving an empty one out would refuse a genuine notification."""
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in ("sign", "sign_type")
    )


def rsa2_sign(private_key: rsa.RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def sign_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> dict[str, str]:
    """``params`` with the request signature added (``sign_type`` is part of what is signed)."""
    return {**params, "sign": rsa2_sign(private_key, signing_content(params))}


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, or from the bare base64 DER the Alipay console shows."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise ValueError("the Alipay app private key is not a readable RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the Alipay app private key is not an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM, or from bare base64 DER (SubjectPublicKeyInfo)."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        raise ValueError("the Alipay public key is not a readable RSA key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key is not an RSA key")
    return key


def response_members(raw: str) -> dict[str, tuple[Any, str]]:
    """The top-level members of a JSON object: ``name -> (value, exact source text)``.

    Alipay signs a response node as the characters it sent, so the node's text is taken
    from the body as it is, never re-serialised. Raises ``ValueError`` for anything but
    one JSON object, or a repeated member name.
    """
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        match = _JSON_SPACE.match(raw, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    pos = skip(0)
    if raw[pos : pos + 1] != "{":
        raise ValueError("not a JSON object")
    members: dict[str, tuple[Any, str]] = {}
    pos = skip(pos + 1)
    if raw[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            if raw[pos : pos + 1] != '"':
                raise ValueError("expected a member name")
            name, pos = decoder.raw_decode(raw, pos)
            pos = skip(pos)
            if raw[pos : pos + 1] != ":":
                raise ValueError("expected ':'")
            start = skip(pos + 1)
            value, end = decoder.raw_decode(raw, start)
            if name in members:
                raise ValueError(f"member {name!r} appears twice")
            members[name] = (value, raw[start:end])
            pos = skip(end)
            if raw[pos : pos + 1] == ",":
                pos = skip(pos + 1)
                continue
            if raw[pos : pos + 1] == "}":
                pos += 1
                break
            raise ValueError("expected ',' or '}'")
    if skip(pos) != len(raw):
        raise ValueError("text after the JSON object")
    return members
