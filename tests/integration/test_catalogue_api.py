"""Products, search, warehouses and the OpenAPI document, through the real app over moto."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from chalicelib.store import tables

if TYPE_CHECKING:
    from conftest import Api  # the fixture's type, from this folder's conftest.py

EARBUDS = {
    "name": {"zh-CN": "无线蓝牙耳机 Pro", "en": "Wireless Bluetooth Earbuds Pro"},
    "description": {"zh-CN": "主动降噪，续航30小时。", "en": "Active noise cancelling."},
    "category": "electronics",
    "price": {"amount": 12900, "currency": "CNY"},
    "images": ["https://img.example.com/earbuds.jpg"],
    "active": True,
}


def product_body(**overrides: Any) -> dict[str, Any]:
    return {**EARBUDS, **overrides}


def named(zh: str, en: str, **overrides: Any) -> dict[str, Any]:
    return product_body(**{"name": {"zh-CN": zh, "en": en}, "description": {}, **overrides})


def put_product(api: Api, sku: str, body: dict[str, Any] | None = None) -> Any:
    return api.request("PUT", f"/products/{sku}", body or product_body(), api.ops)


def get(api: Api, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return api.request("GET", f"{path}?{query}" if query else path, headers=headers)


def skus(response: Any) -> list[str]:
    return [item["sku"] for item in response.json_body["items"]]


def stored_keys(prefix: str) -> list[str]:
    """Every stored key ``pk`` under ``prefix`` (a test-only look at the table)."""
    found: list[str] = []
    for page in tables.client().get_paginator("scan").paginate(TableName=tables.table_name()):
        found += [item["pk"]["S"] for item in page["Items"] if item["pk"]["S"].startswith(prefix)]
    return found


# --- create, replace, read ---------------------------------------------------------------


def test_new_sku_is_created_201_and_the_same_sku_again_is_replaced_200(api: Api) -> None:
    created = put_product(api, "EAR-1")
    assert created.status_code == 201
    assert created.headers["Location"] == "/products/EAR-1"
    assert created.json_body["sku"] == "EAR-1"
    assert created.json_body["price"] == {"amount": 12900, "currency": "CNY"}
    assert created.json_body["name"]["zh-CN"] == "无线蓝牙耳机 Pro"

    replaced = put_product(api, "EAR-1", product_body(price={"amount": 9900, "currency": "CNY"}))
    assert replaced.status_code == 200
    assert replaced.json_body["price"]["amount"] == 9900
    assert replaced.json_body["created_at"] == created.json_body["created_at"]

    fetched = get(api, "/products/EAR-1")
    assert fetched.status_code == 200
    # The product page is the stored product plus its (here: empty) availability.
    assert {k: v for k, v in fetched.json_body.items() if k != "availability"} == replaced.json_body
    assert fetched.json_body["availability"]["in_stock"] is False


def test_integral_json_number_is_an_integer_price(api: Api) -> None:
    response = put_product(api, "EAR-1", product_body(price={"amount": 12900.0, "currency": "CNY"}))
    assert response.status_code == 201
    assert response.json_body["price"] == {"amount": 12900, "currency": "CNY"}


def test_repeating_the_same_put_is_200_and_changes_nothing(api: Api) -> None:
    first = put_product(api, "EAR-1")
    again = put_product(api, "EAR-1")
    assert again.status_code == 200
    assert again.json_body == first.json_body


def test_unknown_product_is_404_in_the_error_shape(api: Api) -> None:
    response = get(api, "/products/NOPE-1")
    assert response.status_code == 404
    assert response.json_body["error"] == "not_found"
    assert "NOPE-1" in response.json_body["message"]


def test_inactive_product_is_hidden_from_shoppers_but_not_from_staff(api: Api) -> None:
    put_product(api, "EAR-OLD", product_body(active=False))
    put_product(api, "EAR-NEW")

    assert get(api, "/products/EAR-OLD").status_code == 404
    assert get(api, "/products/EAR-OLD", api.customer).status_code == 404
    assert get(api, "/products/EAR-OLD", api.support).json_body["active"] is False

    assert skus(get(api, "/products")) == ["EAR-NEW"]
    assert skus(get(api, "/products", q="耳机")) == ["EAR-NEW"]
    assert skus(get(api, "/products", api.customer, category="electronics")) == ["EAR-NEW"]
    assert set(skus(get(api, "/products", api.ops))) == {"EAR-NEW", "EAR-OLD"}
    assert set(skus(get(api, "/products", api.ops, q="耳机"))) == {"EAR-NEW", "EAR-OLD"}


def test_deactivating_a_product_hides_it_from_listings(api: Api) -> None:
    put_product(api, "EAR-1")
    put_product(api, "EAR-1", product_body(active=False))
    assert skus(get(api, "/products")) == []
    assert skus(get(api, "/products", category="electronics")) == []


# --- search ------------------------------------------------------------------------------


@pytest.fixture
def small_catalogue(api: Api) -> Api:
    put_product(api, "EAR-1")
    put_product(api, "SPK-1", named("便携蓝牙音箱", "Portable Bluetooth Speaker"))
    put_product(api, "KET-1", named("电热水壶", "Electric Kettle", category="home"))
    put_product(api, "TEE-1", named("纯棉T恤", "Cotton T-Shirt", category="apparel"))
    return api


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("蓝牙耳机", ["EAR-1"]),
        ("耳机", ["EAR-1"]),
        ("蓝牙", ["EAR-1", "SPK-1"]),
        ("BLUETOOTH", ["EAR-1", "SPK-1"]),
        ("bluetooth speaker", ["SPK-1"]),
        ("kett", ["KET-1"]),
        ("降噪", ["EAR-1"]),
        ("noise", ["EAR-1"]),
        ("水壶 耳机", []),
        ("zzz", []),
        ("!!", []),
    ],
)
def test_search_covers_names_and_descriptions_in_both_languages(
    small_catalogue: Api, query: str, expected: list[str]
) -> None:
    response = get(small_catalogue, "/products", q=query)
    assert response.status_code == 200
    assert sorted(skus(response)) == expected


def test_search_ranks_name_matches_first(small_catalogue: Api) -> None:
    put_product(
        small_catalogue,
        "CASE-1",
        named("收纳盒", "Storage Box", description={"en": "Fits earbuds and cables."}),
    )
    assert skus(get(small_catalogue, "/products", q="earbuds")) == ["EAR-1", "CASE-1"]


def test_search_and_category_combine(small_catalogue: Api) -> None:
    assert skus(get(small_catalogue, "/products", q="蓝牙", category="home")) == []
    assert skus(get(small_catalogue, "/products", q="电热", category="home")) == ["KET-1"]


def test_category_listing_shows_only_that_category(small_catalogue: Api) -> None:
    assert skus(get(small_catalogue, "/products", category="electronics")) == ["EAR-1", "SPK-1"]
    assert skus(get(small_catalogue, "/products", category="food")) == []


def collect_pages(api: Api, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        response = get(api, "/products", cursor=cursor, **params)
        assert response.status_code == 200, response.json_body
        pages.append(skus(response))
        cursor = response.json_body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


def test_search_pages_with_a_cursor_without_repeats_or_gaps(api: Api) -> None:
    for n in range(5):
        put_product(api, f"EAR-{n}", named(f"蓝牙耳机 {n}", f"Earbuds {n}"))
    pages = collect_pages(api, q="耳机", limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(sku for page in pages for sku in page) == [f"EAR-{n}" for n in range(5)]


def test_listing_pages_with_a_cursor_without_repeats_or_gaps(api: Api) -> None:
    for n in range(5):
        put_product(api, f"P-{n}", named(f"商品{n}", f"Item {n}"))
    assert collect_pages(api, limit=2) == [["P-0", "P-1"], ["P-2", "P-3"], ["P-4"]]
    assert collect_pages(api, limit=5) == [["P-0", "P-1", "P-2", "P-3", "P-4"]]


@pytest.mark.parametrize("cursor", ["garbage", "eyJzIjoieCJ9", "!!!", "e30"])
def test_tampered_cursor_is_400_naming_the_cursor(api: Api, cursor: str) -> None:
    for params in ({}, {"q": "耳机"}, {"category": "electronics"}):
        response = get(api, "/products", cursor=cursor, **params)
        assert response.status_code == 400
        assert response.json_body["error"] == "invalid_cursor"
        assert response.json_body["details"][0]["field"] == "cursor"


def test_cursor_from_another_listing_is_refused(small_catalogue: Api) -> None:
    cursor = get(small_catalogue, "/products", limit=1).json_body["next_cursor"]
    assert cursor
    other = get(small_catalogue, "/products", category="electronics", cursor=cursor)
    assert other.status_code == 400
    staff_cursor = get(small_catalogue, "/products", small_catalogue.ops, limit=1)
    shopper = get(small_catalogue, "/products", cursor=staff_cursor.json_body["next_cursor"])
    assert shopper.status_code == 400


def test_renaming_a_product_removes_its_old_search_terms(api: Api) -> None:
    put_product(api, "EAR-1")
    put_product(api, "EAR-1", named("电热水壶", "Electric Kettle"))
    assert skus(get(api, "/products", q="耳机")) == []
    assert skus(get(api, "/products", q="kettle")) == ["EAR-1"]
    # The index holds no entry for a word the product no longer has.
    assert "TERM#耳机" not in stored_keys("TERM#")
    assert "TERM#kettle" in stored_keys("TERM#")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit")],
)
def test_bad_listing_parameters_are_400_naming_them(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = get(api, "/products", **params)
    assert response.status_code == 400
    assert [d["field"] for d in response.json_body["details"]] == [field]


def test_bad_category_filter_is_400(api: Api) -> None:
    response = get(api, "/products", category="Not A Slug")
    assert response.status_code == 400
    assert response.json_body["details"][0]["field"] == "category"


# --- refusing bad writes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (product_body(colour="blue"), "colour"),
        (product_body(price={"amount": "12900", "currency": "CNY"}), "price.amount"),
        (product_body(price={"amount": 129.5, "currency": "CNY"}), "price.amount"),
        (product_body(price={"amount": -1, "currency": "CNY"}), "price.amount"),
        (product_body(price={"amount": 10**12, "currency": "CNY"}), "price.amount"),
        (product_body(price={"amount": 100, "currency": "cny"}), "price.currency"),
        (product_body(price={"amount": 100}), "price.currency"),
        (product_body(name={}), "name"),
        (product_body(name={"zh-CN": "   "}), "name.zh-CN"),
        (product_body(name={"zh-CN": "x" * 201}), "name.zh-CN"),
        (product_body(name={"fr": "Écouteurs"}), "name.fr"),
        (product_body(name={"zh-CN": None, "en": "Earbuds"}), "name.zh-CN"),
        (product_body(category="Consumer Electronics"), "category"),
        (product_body(images=["javascript:alert(1)"]), "images.0"),
        (product_body(active="yes"), "active"),
        ({k: v for k, v in EARBUDS.items() if k != "price"}, "price"),
        ([1, 2], "body"),
    ],
)
def test_invalid_product_is_400_naming_the_field_and_writes_nothing(
    api: Api, body: Any, field: str
) -> None:
    response = put_product(api, "EAR-1", body)
    assert response.status_code == 400
    assert response.json_body["error"] == "validation_error"
    assert field in [d["field"] for d in response.json_body["details"]]
    assert get(api, "/products/EAR-1", api.ops).status_code == 404
    assert stored_keys("") == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [("{not json", "invalid_json"), ("", "validation_error"), ("null", "validation_error")],
)
def test_malformed_json_is_400_and_writes_nothing(api: Api, raw: str, code: str) -> None:
    response = api.request("PUT", "/products/EAR-1", raw, api.ops)
    assert response.status_code == 400
    assert response.json_body["error"] == code
    assert stored_keys("") == []


def test_oversized_body_is_413_and_writes_nothing(api: Api) -> None:
    huge = product_body(description={"en": "x" * 300_000})
    response = put_product(api, "EAR-1", huge)
    assert response.status_code == 413
    assert response.json_body["error"] == "payload_too_large"
    assert stored_keys("") == []


def test_malformed_sku_in_the_path_is_400(api: Api) -> None:
    response = put_product(api, "bad%20sku")
    assert response.status_code == 400
    assert response.json_body["details"][0]["field"] == "sku"


def test_customers_and_support_may_not_write_products(api: Api) -> None:
    for caller in (api.customer, api.support):
        response = api.request("PUT", "/products/EAR-1", product_body(), caller)
        assert response.status_code == 403
        assert response.json_body["error"] == "forbidden"
    assert stored_keys("") == []


def test_writing_without_a_token_is_401(api: Api) -> None:
    assert api.request("PUT", "/products/EAR-1", product_body()).status_code == 401
    assert stored_keys("") == []


# --- warehouses --------------------------------------------------------------------------

SHANGHAI = {"name": "华东仓", "city": "上海", "location": {"lat": 31.23, "lon": 121.47}}


def test_warehouse_is_created_201_replaced_200_and_listed_for_ops(api: Api) -> None:
    created = api.request("PUT", "/warehouses/wh-sha", SHANGHAI, api.ops)
    assert created.status_code == 201
    assert created.json_body["id"] == "wh-sha"
    assert created.json_body["location"] == {"lat": 31.23, "lon": 121.47}
    beijing = {"name": "华北仓", "city": "北京", "location": {"lat": 39.9, "lon": 116.4}}
    assert api.request("PUT", "/warehouses/wh-bjs", beijing, api.ops).status_code == 201
    renamed = {**SHANGHAI, "name": "上海一号仓"}
    replaced = api.request("PUT", "/warehouses/wh-sha", renamed, api.ops)
    assert replaced.status_code == 200

    listed = get(api, "/warehouses", api.ops)
    assert listed.status_code == 200
    assert [(w["id"], w["name"]) for w in listed.json_body["items"]] == [
        ("wh-bjs", "华北仓"),
        ("wh-sha", "上海一号仓"),
    ]
    assert get(api, "/warehouses/wh-sha", api.ops).json_body["city"] == "上海"
    assert get(api, "/warehouses/wh-xxx", api.ops).status_code == 404


def test_customers_may_not_see_or_write_warehouses(api: Api) -> None:
    assert get(api, "/warehouses", api.customer).status_code == 403
    put = api.request("PUT", "/warehouses/wh-sha", SHANGHAI, api.customer)
    assert put.status_code == 403
    assert stored_keys("WAREHOUSE#") == []


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ({"lat": 91, "lon": 0}, "location.lat"),
        ({"lat": 0, "lon": -180.5}, "location.lon"),
        ({"lat": "31.2", "lon": 121.4}, "location.lat"),
        ({"lat": 31.2}, "location.lon"),
    ],
)
def test_warehouse_outside_the_globe_is_400(api: Api, location: dict[str, Any], field: str) -> None:
    body = {**SHANGHAI, "location": location}
    response = api.request("PUT", "/warehouses/wh-sha", body, api.ops)
    assert response.status_code == 400
    assert field in [d["field"] for d in response.json_body["details"]]
    assert stored_keys("WAREHOUSE#") == []


# --- the OpenAPI document ---------------------------------------------------------------


def schema_validator(spec: dict[str, Any], ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref, "components": spec["components"]})


def test_openapi_lists_every_route_and_is_valid_openapi_3_1(api: Api) -> None:
    from app import app

    response = get(api, "/openapi.json")
    assert response.status_code == 200
    spec = response.json_body
    assert spec["openapi"].startswith("3.1")
    validate_openapi(spec)

    routes = {
        (path, method.lower())
        for path, methods in app.routes.items()
        for method in methods
        if method != "OPTIONS"
    }
    documented = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert documented == routes

    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            error = op["responses"]["400"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
            if app.routes[path][method.upper()].authorizer is not None:
                assert op["security"] == [{"bearerAuth": []}]
                assert {"401", "403"} <= set(op["responses"])
    put = spec["paths"]["/products/{sku}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductPut"
    }
    assert {"200", "201", "400", "401", "403", "404", "409", "413"} <= set(put["responses"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"


def test_openapi_schemas_describe_what_the_api_really_sends_and_accepts(api: Api) -> None:
    spec = get(api, "/openapi.json").json_body
    created = put_product(api, "EAR-1")
    schema_validator(spec, "#/components/schemas/ProductBody").validate(created.json_body)
    page = get(api, "/products", q="耳机")
    schema_validator(spec, "#/components/schemas/ProductPage").validate(page.json_body)
    error = get(api, "/products/NOPE")
    schema_validator(spec, "#/components/schemas/ErrorBody").validate(error.json_body)

    request_schema = schema_validator(spec, "#/components/schemas/ProductPut")
    assert request_schema.is_valid(product_body())
    assert not request_schema.is_valid(product_body(colour="blue"))
    assert not request_schema.is_valid(product_body(price={"amount": -1, "currency": "CNY"}))


def test_docs_page_lists_every_operation_without_outside_resources(api: Api) -> None:
    response = get(api, "/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.body.decode()
    spec = get(api, "/openapi.json").json_body
    for path in spec["paths"]:
        assert f">{path}<" in page
    assert "<script" not in page
    assert 'src="http' not in page and "@import" not in page
    assert json.loads(get(api, "/openapi.json").body)["info"]["title"] == "orderdesk"


# --- demo data ---------------------------------------------------------------------------


def test_demo_data_seeds_a_searchable_catalogue_and_seeding_again_changes_nothing(
    api: Api,
) -> None:
    from infra.local import demo_data

    demo_data.seed()
    before = get(api, "/products", api.ops, limit=100).json_body["items"]
    demo_data.seed()
    after = get(api, "/products", api.ops, limit=100).json_body["items"]
    assert after == before
    assert len(before) == len(demo_data.PRODUCTS) >= 30
    assert {item["category"] for item in before} >= {"electronics", "home", "apparel", "food"}
    assert all(set(item["name"]) == {"zh-CN", "en"} for item in before)

    warehouses = get(api, "/warehouses", api.ops).json_body["items"]
    assert len({w["city"] for w in warehouses}) == len(warehouses) >= 3
    stocked = {warehouse for _, warehouse, _ in demo_data.demo_stock()}
    assert stocked <= {w["id"] for w in warehouses}

    assert "EL-EARBUDS-PRO" in skus(get(api, "/products", q="蓝牙耳机"))
    assert {"customers", "ops", "support", "finance"} <= {
        group for user in demo_data.DEMO_USERS for group in user.groups
    }


def test_demo_users_start_with_their_email_verified(api: Api) -> None:
    from infra.local import demo_data

    demo_data.seed()

    for user in demo_data.DEMO_USERS:
        profile = get(api, "/me", api.token(user.id, *user.groups)).json_body
        assert (profile["email"], profile["email_verified"]) == (user.email, True)
        assert profile["phone_verified"] is False
