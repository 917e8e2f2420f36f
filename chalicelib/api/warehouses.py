"""Warehouses: where stock is kept and orders ship from (operations staff only)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import models
from chalicelib.api.auth import OPS, authorizer, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.services import catalogue

blueprint = Blueprint(__name__)

ID_PARAMETER = {"warehouse_id": {"type": "string", "pattern": models.ID_PATTERN}}


@blueprint.route("/warehouses/{warehouse_id}", methods=["PUT"], authorizer=authorizer)
@operation(
    "Create or replace a warehouse",
    description="201 when the id is new, 200 when it replaces (or repeats) the warehouse.",
    tags=("warehouses",),
    request=models.WarehousePut,
    responses={200: models.WarehouseBody, 201: models.WarehouseBody},
    headers={201: ("Location",)},
    path_params=ID_PARAMETER,
)
def put_warehouse(warehouse_id: str) -> Response:
    request = blueprint.current_request
    require_groups(request, OPS)
    details = parse_body(request, models.WarehousePut).to_domain()
    saved = catalogue.put_warehouse(warehouse_id, details)
    headers = {"Location": f"/warehouses/{warehouse_id}"} if saved.created else {}
    return Response(
        body=models.dump(models.WarehouseBody.of(saved.value)),
        status_code=201 if saved.created else 200,
        headers={"Content-Type": "application/json", **headers},
    )


@blueprint.route("/warehouses/{warehouse_id}", methods=["GET"], authorizer=authorizer)
@operation(
    "A warehouse",
    tags=("warehouses",),
    responses={200: models.WarehouseBody},
    path_params=ID_PARAMETER,
)
def get_warehouse(warehouse_id: str) -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS)
    return models.dump(models.WarehouseBody.of(catalogue.get_warehouse(warehouse_id)))


@blueprint.route("/warehouses", methods=["GET"], authorizer=authorizer)
@operation(
    "Every warehouse",
    tags=("warehouses",),
    responses={200: models.WarehouseList},
)
def list_warehouses() -> dict[str, Any]:
    require_groups(blueprint.current_request, OPS)
    items = [models.WarehouseBody.of(w) for w in catalogue.list_warehouses()]
    return models.dump(models.WarehouseList(items=items))
