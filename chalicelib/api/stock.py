"""Stock per (SKU, warehouse): ops receive, adjust, transfer and set thresholds; ops and
support read levels and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from chalice import Blueprint, Response
from pydantic import Field, StringConstraints, model_validator

from chalicelib.api import models
from chalicelib.api.auth import OPS, SUPPORT, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain import paging
from chalicelib.domain.inventory import (
    MAX_QUANTITY,
    MAX_SHARDS,
    MAX_THRESHOLD,
    Movement,
    StockLevel,
)
from chalicelib.services import stock

blueprint = Blueprint(__name__)

TAGS = ("stock",)
ID_SCHEMA = {"type": "string", "pattern": models.ID_PATTERN}
LEVEL_PATH = {"sku": ID_SCHEMA, "warehouse": ID_SCHEMA}
Id = Annotated[str, StringConstraints(pattern=models.ID_PATTERN)]
Note = Annotated[str, StringConstraints(max_length=500)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


# --- request and response models ----------------------------------------------------------


class ReceiveRequest(models.RequestModel):
    quantity: Quantity = Field(description="Units that arrived.")
    note: Note | None = Field(default=None, description="e.g. the delivery note number.")


class AdjustRequest(models.RequestModel):
    delta: int = Field(
        ge=-MAX_QUANTITY,
        le=MAX_QUANTITY,
        description="Units to add (positive) or remove (negative); never 0.",
    )
    reason: Literal["count", "damage", "loss", "found", "other"]
    note: Note | None = None

    @model_validator(mode="after")
    def _moves_something(self) -> AdjustRequest:
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self


class TransferRequest(models.RequestModel):
    sku: Id
    from_: Id = Field(alias="from", description="The warehouse the units leave.")
    to: Id = Field(description="The warehouse the units arrive at.")
    quantity: Quantity
    note: Note | None = None


class ThresholdRequest(models.RequestModel):
    low_stock_threshold: int = Field(
        ge=0,
        le=MAX_THRESHOLD,
        description="A stock.low alert fires when available falls to or below this.",
    )


class ShardsRequest(models.RequestModel):
    shards: int = Field(
        ge=1,
        le=MAX_SHARDS,
        description="How many shards take the level's stock (an integer); 1 merges them back.",
    )


class ShardedLevelBody(models.ResponseModel):
    sku: str
    warehouse: str
    shards: int = Field(description="Shards taking stock and reservations.")
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int


class LevelBody(models.ResponseModel):
    sku: str
    warehouse: str
    on_hand: int
    reserved: int = Field(description="Held for orders that have not shipped yet.")
    available: int = Field(description="on_hand - reserved: what can still be sold.")
    low_stock_threshold: int

    @classmethod
    def of(cls, level: StockLevel) -> LevelBody:
        return cls(**level.as_dict())


class WarehouseStockBody(models.ResponseModel):
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int


class SkuStockBody(models.ResponseModel):
    sku: str
    warehouses: list[WarehouseStockBody]
    total_available: int

    @classmethod
    def of(cls, sku_stock: stock.SkuStock) -> SkuStockBody:
        return cls(
            sku=sku_stock.sku,
            warehouses=[
                WarehouseStockBody(
                    warehouse=level.warehouse,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    available=level.available,
                    low_stock_threshold=level.low_stock_threshold,
                )
                for level in sku_stock.levels
            ],
            total_available=sku_stock.total_available,
        )


class TransferBody(models.ResponseModel):
    transfer_id: str
    from_: LevelBody = Field(alias="from")
    to: LevelBody


class LedgerEntryBody(models.ResponseModel):
    type: str = Field(
        description="received, reserved, committed, released, shipped, returned, adjusted, "
        "transferred_in, transferred_out or written_off (a returned unit not put back on hand)."
    )
    quantity: int = Field(description="Units moved; signed for adjustments.")
    on_hand: int = Field(description="on_hand after this movement.")
    reserved: int = Field(description="reserved after this movement.")
    reference: str | None = Field(description="The order or transfer id, if any.")
    note: str | None
    reason: str | None = Field(description="For adjustments: count, damage, loss, found, other.")
    at: datetime
    actor: str

    @classmethod
    def of(cls, movement: Movement) -> LedgerEntryBody:
        return cls(
            type=movement.type.value,
            quantity=movement.quantity,
            on_hand=movement.on_hand,
            reserved=movement.reserved,
            reference=movement.reference,
            note=movement.note,
            reason=movement.reason.value if movement.reason else None,
            at=movement.at,
            actor=movement.actor,
        )


class LedgerPage(models.ResponseModel):
    items: list[LedgerEntryBody]
    next_cursor: str | None = Field(
        description="Pass as cursor to get older entries; null on the last page."
    )


class LedgerQuery(models.QueryModel):
    cursor: str | None = Field(default=None, max_length=2048)
    limit: int = Field(default=paging.DEFAULT_LEDGER_PAGE, ge=1, le=paging.MAX_LEDGER_PAGE)


class StockGridQuery(models.QueryModel):
    warehouse: Id | None = Field(default=None, description="Only this warehouse's levels.")
    category: str | None = Field(default=None, description="Only products of this category.")
    low: bool = Field(
        default=False,
        description="true: only levels at or under their low-stock threshold (from the "
        "low-stock index).",
    )
    cursor: str | None = Field(default=None, max_length=2048)
    limit: int = Field(
        default=paging.DEFAULT_GRID_PAGE,
        ge=1,
        le=paging.MAX_GRID_PAGE,
        description="SKUs per page (each with its level in every warehouse asked for); "
        "with low=true, levels per page.",
    )


class StockGridPage(models.ResponseModel):
    items: list[LevelBody]
    next_cursor: str | None = Field(
        description="Pass as cursor to get the next page; null on the last page."
    )


def _created(body: models.ResponseModel) -> Response:
    return Response(
        body=models.dump(body), status_code=201, headers={"Content-Type": "application/json"}
    )


# --- routes --------------------------------------------------------------------------------


@blueprint.route("/stock/{sku}/{warehouse}/receive", methods=["POST"], authorizer=authorizer)
@operation(
    "Receive goods into a warehouse",
    description="on_hand grows by quantity. Answers with the new level.",
    tags=TAGS,
    request=ReceiveRequest,
    responses={201: LevelBody},
    path_params=LEVEL_PATH,
)
def receive_stock(sku: str, warehouse: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = parse_body(request, ReceiveRequest)
    level = stock.receive(sku, warehouse, body.quantity, actor=caller.user_id, note=body.note)
    return _created(LevelBody.of(level))


@blueprint.route("/stock/{sku}/{warehouse}/adjust", methods=["POST"], authorizer=authorizer)
@operation(
    "Correct a level after a count, damage, loss or find",
    description="409 insufficient_stock if it would make available negative.",
    tags=TAGS,
    request=AdjustRequest,
    responses={201: LevelBody},
    path_params=LEVEL_PATH,
)
def adjust_stock(sku: str, warehouse: str) -> Response:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = parse_body(request, AdjustRequest)
    level = stock.adjust(
        sku, warehouse, body.delta, reason=body.reason, actor=caller.user_id, note=body.note
    )
    return _created(LevelBody.of(level))


@blueprint.route("/transfers", methods=["POST"], authorizer=authorizer)
@operation(
    "Move stock between warehouses",
    description="Both sides change in one transaction, or neither does. "
    "409 insufficient_stock if the source has too little available.",
    tags=TAGS,
    request=TransferRequest,
    responses={201: TransferBody},
)
def create_transfer() -> Response:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = parse_body(request, TransferRequest)
    moved = stock.transfer(
        body.sku, body.from_, body.to, body.quantity, actor=caller.user_id, note=body.note
    )
    return _created(
        TransferBody.model_validate(
            {
                "transfer_id": moved.transfer_id,
                "from": LevelBody.of(moved.source),
                "to": LevelBody.of(moved.destination),
            }
        )
    )


@blueprint.route("/stock/{sku}/{warehouse}/threshold", methods=["PUT"], authorizer=authorizer)
@operation(
    "Set the low-stock threshold",
    tags=TAGS,
    request=ThresholdRequest,
    responses={200: LevelBody},
    path_params=LEVEL_PATH,
)
def put_threshold(sku: str, warehouse: str) -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS)
    body = parse_body(request, ThresholdRequest)
    return models.dump(LevelBody.of(stock.set_threshold(sku, warehouse, body.low_stock_threshold)))


@blueprint.route("/stock/{sku}/{warehouse}/shards", methods=["PUT"], authorizer=authorizer)
@operation(
    "Split a level into shards for a flash sale",
    description="Each shard is its own item and partition, so a level can take more writes "
    "per second than one partition allows. The stock is rebalanced over the shards; 1 "
    "merges them back. 404 warehouse_not_found, 404 stock_level_not_found.",
    tags=TAGS,
    request=ShardsRequest,
    responses={200: ShardedLevelBody},
    path_params=LEVEL_PATH,
)
def put_shards(sku: str, warehouse: str) -> dict[str, Any]:
    request = blueprint.current_request
    caller = require_groups(request, OPS)
    body = parse_body(request, ShardsRequest)
    sharded = stock.set_shards(sku, warehouse, body.shards, actor=caller.user_id)
    return models.dump(ShardedLevelBody(**sharded.as_dict()))


@blueprint.route("/stock", methods=["GET"], authorizer=authorizer)
@operation(
    "Stock levels for the staff grid",
    description="Levels by SKU then warehouse, read from indexes (never a table scan); "
    "filter by warehouse, category, or only low levels.",
    tags=TAGS,
    query=StockGridQuery,
    responses={200: StockGridPage},
)
def list_stock() -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS, SUPPORT)
    params = StockGridQuery.model_validate(request.query_params or {})
    page = stock.stock_grid(
        warehouse=params.warehouse,
        category=params.category,
        low=params.low,
        cursor=params.cursor,
        limit=params.limit,
    )
    items = [LevelBody.of(level) for level in page.items]
    return models.dump(StockGridPage(items=items, next_cursor=page.next_cursor))


@blueprint.route("/stock/{sku}", methods=["GET"], authorizer=authorizer)
@operation(
    "A SKU's stock in every warehouse",
    tags=TAGS,
    responses={200: SkuStockBody},
    path_params={"sku": ID_SCHEMA},
)
def get_stock(sku: str) -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS, SUPPORT)
    return models.dump(SkuStockBody.of(stock.stock_of(sku)))


@blueprint.route("/stock/{sku}/{warehouse}/ledger", methods=["GET"], authorizer=authorizer)
@operation(
    "A level's ledger, newest first",
    description="Every movement with the on_hand and reserved it left behind.",
    tags=TAGS,
    query=LedgerQuery,
    responses={200: LedgerPage},
    path_params=LEVEL_PATH,
)
def get_ledger(sku: str, warehouse: str) -> dict[str, Any]:
    request = blueprint.current_request
    require_groups(request, OPS, SUPPORT)
    params = LedgerQuery.model_validate(request.query_params or {})
    page = stock.ledger(sku, warehouse, cursor=params.cursor, limit=params.limit)
    items = [LedgerEntryBody.of(movement) for movement in page.items]
    return models.dump(LedgerPage(items=items, next_cursor=page.next_cursor))
