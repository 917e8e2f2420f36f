"""Operations views: queue depths (dead letters need a person)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import models
from chalicelib.api.auth import OPS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.services import operations

blueprint = Blueprint(__name__)


class QueueBody(models.ResponseModel):
    queue: str
    visible: int
    in_flight: int
    delayed: int
    dead_letters: int | None


class QueueList(models.ResponseModel):
    items: list[QueueBody]


@blueprint.route("/ops/queues", methods=["GET"], authorizer=authorizer)
@operation(
    "Queue depths",
    description=(
        "Each queue's waiting, in-flight and delayed messages, and how many wait in its "
        "dead-letter queue (move them back with `make redrive QUEUE=<name>` once fixed)."
    ),
    tags=("operations",),
    responses={200: QueueList},
)
def queue_depths() -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS)
    return {"items": operations.queue_depths()}
