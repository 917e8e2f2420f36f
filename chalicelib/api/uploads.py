"""Uploads: a customer asks to upload one file and gets a presigned S3 POST for it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import CUSTOMERS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain.uploads import MAX_BYTES
from chalicelib.services import uploads

blueprint = Blueprint(__name__)


class UploadIn(models.RequestModel):
    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    bytes: models.JsonInt = Field(ge=1, le=MAX_BYTES, description="The file's size (at most 5 MB).")


class UploadBody(models.ResponseModel):
    upload_id: str = Field(description="Attach it, e.g. as a review's photo, once uploaded.")
    url: str = Field(description="POST a multipart form here: every field, then the file.")
    fields: dict[str, str]
    expires_at: datetime


@blueprint.route("/uploads", methods=["POST"], authorizer=authorizer)
@operation(
    "Upload a photo",
    description="A presigned S3 POST for one image under your own key prefix; its policy "
    "fixes the key, the content type and the size, so S3 refuses anything else.",
    tags=("uploads",),
    request=UploadIn,
    responses={201: UploadBody},
)
def request_upload() -> Response:
    request = blueprint.current_request
    caller = require_groups(request, CUSTOMERS)
    body = parse_body(request, UploadIn)
    ticket = uploads.request_upload(caller.user_id, content_type=body.content_type, size=body.bytes)
    answer = UploadBody(
        upload_id=ticket.upload.upload_id,
        url=ticket.url,
        fields=ticket.fields,
        expires_at=ticket.upload.expires_at,
    )
    return Response(
        body=models.dump(answer), status_code=201, headers={"Content-Type": "application/json"}
    )
