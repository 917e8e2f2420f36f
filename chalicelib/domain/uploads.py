"""Files customers upload (photos of a review, of a return, of a problem).

Pure Python. A customer asks for an upload of one content type and size; they get a
presigned S3 POST whose policy pins the object key under their own prefix, the content type
and a size range, so the storage itself refuses anything else. The upload's id is then what
a review (or any later feature) attaches, and only the customer who asked may attach it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.errors import InvalidInput

CONTENT_TYPES: Mapping[str, str] = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_BYTES = 5 * 1024 * 1024
UPLOAD_WINDOW = timedelta(minutes=15)
KEY_PREFIX = "uploads/"
UPLOAD_ID = re.compile(r"upl_[0-9a-f]{32}")


class UnknownUpload(InvalidInput):
    """Photos that are not the caller's uploads (or do not exist): one answer for both."""

    code = "unknown_upload"

    def __init__(self, upload_ids: Sequence[str]) -> None:
        super().__init__(
            "Only your own uploads can be attached.",
            [{"field": "photos", "upload_id": upload_id} for upload_id in upload_ids],
        )


@dataclass(frozen=True, slots=True)
class Upload:
    upload_id: str
    customer_id: str
    object_key: str
    content_type: str
    max_bytes: int
    created_at: datetime
    expires_at: datetime

    @classmethod
    def request(cls, customer_id: str, content_type: str, size: int, at: datetime) -> Upload:
        """A new upload of ``size`` bytes of ``content_type`` for ``customer_id``."""
        problems = []
        if content_type not in CONTENT_TYPES:
            problems.append(
                {"field": "content_type", "message": f"one of {', '.join(CONTENT_TYPES)}"}
            )
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BYTES:
            problems.append({"field": "bytes", "message": f"1 to {MAX_BYTES} bytes"})
        if problems:
            raise InvalidInput("This upload cannot be accepted.", problems)
        upload_id = "upl_" + secrets.token_hex(16)
        return cls(
            upload_id=upload_id,
            customer_id=customer_id,
            object_key=f"{owner_prefix(customer_id)}{upload_id}.{CONTENT_TYPES[content_type]}",
            content_type=content_type,
            max_bytes=size,
            created_at=at,
            expires_at=at + UPLOAD_WINDOW,
        )


def owner_prefix(customer_id: str) -> str:
    """Every object of one customer lives under this key prefix."""
    return f"{KEY_PREFIX}{customer_id}/"


def require_owned(customer_id: str, upload_ids: Sequence[str], found: Mapping[str, Upload]) -> None:
    """Raise ``UnknownUpload`` naming every id that is not one of ``customer_id``'s uploads."""
    foreign = [
        upload_id
        for upload_id in upload_ids
        if upload_id not in found or found[upload_id].customer_id != customer_id
    ]
    if foreign:
        raise UnknownUpload(foreign)
