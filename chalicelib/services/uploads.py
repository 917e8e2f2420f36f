"""Uploads: presigned S3 POSTs for customers' files, and who may attach which upload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import uploads_bucket
from chalicelib.domain.uploads import UPLOAD_ID, UnknownUpload, Upload, require_owned
from chalicelib.store import uploads as store


def require_own_uploads(customer_id: str, upload_ids: Sequence[str]) -> None:
    """Refuse (400 ``unknown_upload``) unless every id is one of the customer's uploads."""
    if not upload_ids:
        return
    malformed = [upload_id for upload_id in upload_ids if not UPLOAD_ID.fullmatch(upload_id)]
    if malformed:
        raise UnknownUpload(malformed)
    require_owned(customer_id, upload_ids, store.get_uploads(upload_ids))


# How long a link to a customer's photo works for the staff member who opened it.
PHOTO_LINK_SECONDS = 300


def photo_links(upload_ids: Sequence[str], *, now: datetime | None = None) -> list[dict[str, Any]]:
    """``{"upload_id", "url", "expires_at"}`` for each upload that exists: short-lived GET URLs,
    so a customer's photo is never public."""
    if not upload_ids:
        return []
    found = store.get_uploads(upload_ids)
    expires_at = (now or datetime.now(UTC)) + timedelta(seconds=PHOTO_LINK_SECONDS)
    return [
        {
            "upload_id": upload_id,
            "url": uploads_bucket.download_url(
                found[upload_id].object_key, expires_in=PHOTO_LINK_SECONDS
            ),
            "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        }
        for upload_id in upload_ids
        if upload_id in found
    ]


@dataclass(frozen=True, slots=True)
class UploadTicket:
    upload: Upload
    url: str
    fields: dict[str, str]


def request_upload(
    customer_id: str, *, content_type: str, size: int, now: datetime | None = None
) -> UploadTicket:
    """Record the upload, then hand out the presigned POST that can write it (and nothing
    else: another key, type or size is refused by S3 itself)."""
    upload = Upload.request(customer_id, content_type, size, now or datetime.now(UTC))
    store.save_upload(upload)
    seconds = int((upload.expires_at - upload.created_at).total_seconds())
    post = uploads_bucket.presigned_post(
        upload.object_key,
        content_type=upload.content_type,
        max_bytes=upload.max_bytes,
        expires_in=seconds,
    )
    return UploadTicket(upload=upload, url=post["url"], fields=dict(post["fields"]))
