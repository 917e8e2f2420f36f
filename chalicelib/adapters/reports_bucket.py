"""The private, encrypted reports bucket: where finance's files land, read by presigned URL."""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.settings import get_settings

PRESIGNED_URL_SECONDS = 15 * 60


@functools.lru_cache(maxsize=1)
def client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4", retries={"mode": "standard"}))


def reset() -> None:
    client.cache_clear()


def _bucket() -> str:
    bucket = get_settings().reports_bucket
    if not bucket:
        raise RuntimeError("REPORTS_BUCKET is not configured")
    return bucket


def write(key: str, body: bytes, content_type: str) -> None:
    """Put (or overwrite) one object, encrypted at rest."""
    client().put_object(
        Bucket=_bucket(),
        Key=key,
        Body=body,
        ContentType=content_type,
        ServerSideEncryption="AES256",
    )


def read(key: str) -> bytes | None:
    """The object's bytes, or None when there is none."""
    try:
        response = client().get_object(Bucket=_bucket(), Key=key)
    except client().exceptions.NoSuchKey:
        return None
    body: bytes = response["Body"].read()
    return body


def download_url(
    key: str, seconds: int = PRESIGNED_URL_SECONDS, *, filename: str | None = None
) -> str:
    """A short-lived GET URL; with ``filename``, browsers save the file under that name
    instead of showing it (S3 answers with that Content-Disposition)."""
    params = {"Bucket": _bucket(), "Key": key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    url: str = client().generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
    return url
