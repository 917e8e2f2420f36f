"""Uploads: presigned S3 POSTs for customers' files, and who may attach which upload."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.uploads import UPLOAD_ID, UnknownUpload, require_owned
from chalicelib.store import uploads as store


def require_own_uploads(customer_id: str, upload_ids: Sequence[str]) -> None:
    """Refuse (400 ``unknown_upload``) unless every id is one of the customer's uploads."""
    if not upload_ids:
        return
    malformed = [upload_id for upload_id in upload_ids if not UPLOAD_ID.fullmatch(upload_id)]
    if malformed:
        raise UnknownUpload(malformed)
    require_owned(customer_id, upload_ids, store.get_uploads(upload_ids))
