"""The customers' uploads bucket: presigned S3 POSTs whose policy S3 itself enforces."""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.settings import get_settings


@functools.lru_cache(maxsize=1)
def client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4", retries={"mode": "standard"}))


def reset() -> None:
    client.cache_clear()


def _bucket() -> str:
    bucket = get_settings().uploads_bucket
    if not bucket:
        raise RuntimeError("UPLOADS_BUCKET is not configured")
    return bucket


def presigned_post(
    key: str, *, content_type: str, max_bytes: int, expires_in: int
) -> dict[str, Any]:
    """``{"url", "fields"}`` for a browser form POST of exactly this object: the policy
    pins the key, the content type, encryption at rest and a size of 1..``max_bytes``."""
    fields = {"Content-Type": content_type, "x-amz-server-side-encryption": "AES256"}
    conditions: list[Any] = [
        {"key": key},
        {"Content-Type": content_type},
        {"x-amz-server-side-encryption": "AES256"},
        ["content-length-range", 1, max_bytes],
    ]
    post: dict[str, Any] = client().generate_presigned_post(
        Bucket=_bucket(), Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
    )
    return post


def download_url(key: str, *, expires_in: int) -> str:
    """A short-lived GET URL for one object (staff looking at a customer's photo)."""
    url: str = client().generate_presigned_url(
        "get_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=expires_in
    )
    return url
