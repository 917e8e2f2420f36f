"""Upload records: who asked to upload what, so that only its owner can attach it.

Item shape (the only place that knows it):

    upload   pk=UPLOAD#<upload_id>   sk=UPLOAD
             customer_id, object_key, content_type, max_bytes, created_at, expires_at
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.uploads import Upload
from chalicelib.store import tables
from chalicelib.store.orders import timestamp

UPLOAD_PREFIX = "UPLOAD#"
UPLOAD_SK = "UPLOAD"


def upload_key(upload_id: str) -> tables.RawItem:
    return {tables.PK: {"S": UPLOAD_PREFIX + upload_id}, tables.SK: {"S": UPLOAD_SK}}


def _upload_item(upload: Upload) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: UPLOAD_PREFIX + upload.upload_id,
            tables.SK: UPLOAD_SK,
            "entity": "upload",
            "upload_id": upload.upload_id,
            "customer_id": upload.customer_id,
            "object_key": upload.object_key,
            "content_type": upload.content_type,
            "max_bytes": upload.max_bytes,
            "created_at": timestamp(upload.created_at),
            "expires_at": timestamp(upload.expires_at),
        }
    )


def _upload_from(raw: Mapping[str, Any]) -> Upload:
    item = tables.from_item(raw)
    return Upload(
        upload_id=item["upload_id"],
        customer_id=item["customer_id"],
        object_key=item["object_key"],
        content_type=item["content_type"],
        max_bytes=int(item["max_bytes"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        expires_at=datetime.fromisoformat(item["expires_at"]),
    )


def save_upload(upload: Upload) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=_upload_item(upload),
        ConditionExpression="attribute_not_exists(pk)",
    )


def get_uploads(upload_ids: Iterable[str]) -> dict[str, Upload]:
    keys = [upload_key(upload_id) for upload_id in sorted(set(upload_ids))]
    uploads = (_upload_from(raw) for raw in tables.batch_get(keys, consistent=True))
    return {upload.upload_id: upload for upload in uploads}
