"""Products: ops create and replace them; anyone browses and searches the active ones.

The stock-planning fields (default threshold, unit cost, lead time, days of cover) are ops
only: ops send them with PUT and read them with GET; everyone else sees the public product
shape (as does the PUT response, the product as shoppers will see it).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.auth import OPS, authorizer, optional_principal, require_groups
from chalicelib.api.openapi import operation
from chalicelib.api.requests import parse_body
from chalicelib.domain.catalogue import Location
from chalicelib.services import catalogue, reviews, stock

blueprint = Blueprint(__name__)

SKU_PARAMETER = {"sku": {"type": "string", "pattern": models.ID_PATTERN}}


def _caller_is_staff() -> bool:
    caller = optional_principal(blueprint.current_request)
    return caller is not None and caller.is_staff


def _caller_is_ops() -> bool:
    caller = optional_principal(blueprint.current_request)
    return caller is not None and caller.in_any(OPS)


@blueprint.route("/products/{sku}", methods=["PUT"], authorizer=authorizer)
@operation(
    "Create or replace a product",
    description="201 when the SKU is new, 200 when it replaces (or repeats) the product. "
    "Stock levels without a threshold of their own take default_low_stock_threshold.",
    tags=("catalogue",),
    request=models.ProductPut,
    responses={200: models.ProductBody, 201: models.ProductBody},
    headers={201: ("Location",)},
    path_params=SKU_PARAMETER,
)
def put_product(sku: str) -> Response:
    request = blueprint.current_request
    require_groups(request, OPS)
    details = parse_body(request, models.ProductPut).to_domain()
    saved = catalogue.put_product(sku, details)
    # Also when nothing changed: completes a run that failed after the product was saved.
    stock.apply_default_threshold(saved.value)
    headers = {"Location": f"/products/{sku}"} if saved.created else {}
    return Response(
        body=models.dump(models.ProductBody.of(saved.value, reviews.rating_of(sku))),
        status_code=201 if saved.created else 200,
        headers={"Content-Type": "application/json", **headers},
    )


@blueprint.route("/products/{sku}", methods=["GET"])
@operation(
    "A product",
    description="Inactive products are found only with a staff (ops or support) token. "
    "The stock-planning fields are included for ops only.",
    tags=("catalogue",),
    query=models.ProductDetailQuery,
    responses={200: models.OpsProductDetailBody},
    auth="optional",
    path_params=SKU_PARAMETER,
)
def get_product(sku: str) -> dict[str, Any]:
    params = models.ProductDetailQuery.model_validate(blueprint.current_request.query_params or {})
    product = catalogue.get_product(sku, staff=_caller_is_staff())
    near = None if params.lat is None else Location(params.lat, params.lon)
    fields = {
        **models.ProductBody.of(product, reviews.rating_of(sku)).model_dump(),
        "availability": models.AvailabilityBody(**stock.availability(sku, near)),
    }
    if _caller_is_ops():
        body: models.ProductDetailBody = models.OpsProductDetailBody(
            **fields, **models.ReorderFieldsBody.values(product)
        )
    else:
        body = models.ProductDetailBody(**fields)
    return models.dump(body)


@blueprint.route("/products", methods=["GET"])
@operation(
    "Browse or search products",
    description=(
        "Without q: products by SKU, optionally in one category. With q: products whose "
        "names or descriptions (zh-CN or en) contain every word, best matches first. "
        "Staff also see inactive products."
    ),
    tags=("catalogue",),
    query=models.ProductListQuery,
    responses={200: models.ProductPage},
    auth="optional",
)
def list_products() -> dict[str, Any]:
    request = blueprint.current_request
    params = models.ProductListQuery.model_validate(request.query_params or {})
    page = catalogue.list_products(
        query=params.q,
        category=params.category,
        limit=params.limit,
        cursor=params.cursor,
        staff=_caller_is_staff(),
    )
    ratings = reviews.ratings_of(product.sku for product in page.items)
    body = models.ProductPage(
        items=[models.ProductBody.of(product, ratings[product.sku]) for product in page.items],
        next_cursor=page.next_cursor,
    )
    return models.dump(body)


class CategoryBody(models.ResponseModel):
    id: str = Field(pattern=models.CATEGORY_PATTERN, examples=["electronics"])
    name: models.LocalizedTextBody
    product_count: int = Field(description="Active products in the category.")


class CategoryList(models.ResponseModel):
    items: list[CategoryBody]


@blueprint.route("/categories", methods=["GET"])
@operation(
    "The categories shoppers can browse",
    description=(
        "Categories holding active products, by id, with their zh-CN and en names. The "
        "counts are kept up to date by every product write (no table scan)."
    ),
    tags=("catalogue",),
    responses={200: CategoryList},
)
def list_categories() -> dict[str, Any]:
    items = [
        CategoryBody(
            id=category.id, name=category.name.as_dict(), product_count=category.product_count
        )
        for category in catalogue.list_categories()
    ]
    return models.dump(CategoryList(items=items))
