"""GET /categories: bilingual names and active-product counts, kept by product writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from test_catalogue_api import product_body, put_product

if TYPE_CHECKING:
    from conftest import Api


def categories(api: Api) -> dict[str, dict[str, Any]]:
    response = api.client.http.get("/categories")
    assert response.status_code == 200
    return {item["id"]: item for item in response.json_body["items"]}


def counts(api: Api) -> dict[str, int]:
    return {category: item["product_count"] for category, item in categories(api).items()}


def test_no_products_no_categories(api: Api) -> None:
    assert categories(api) == {}


def test_categories_count_active_products_with_bilingual_names(api: Api) -> None:
    put_product(api, "EAR-1")
    put_product(api, "EAR-2")
    put_product(api, "MUG-1", product_body(category="home-kitchen"))
    put_product(api, "GONE-1", product_body(category="home-kitchen", active=False))

    found = categories(api)

    assert found == {
        "electronics": {
            "id": "electronics",
            "name": {"zh-CN": "数码电子", "en": "Electronics"},
            "product_count": 2,
        },
        "home-kitchen": {
            "id": "home-kitchen",
            "name": {"zh-CN": "家居厨房", "en": "Home & Kitchen"},
            "product_count": 1,
        },
    }


def test_moving_deactivating_and_repeating_a_product_keep_counts_right(api: Api) -> None:
    put_product(api, "EAR-1")
    put_product(api, "EAR-2")
    put_product(api, "EAR-1")  # the same product again: no change
    assert counts(api) == {"electronics": 2}

    put_product(api, "EAR-1", product_body(category="garden-tools"))
    assert counts(api) == {"electronics": 1, "garden-tools": 1}

    put_product(api, "EAR-2", product_body(active=False))
    assert counts(api) == {"garden-tools": 1}  # empty categories are not listed

    put_product(api, "EAR-2")
    assert counts(api) == {"electronics": 1, "garden-tools": 1}


def test_a_category_without_a_known_name_is_named_by_its_slug(api: Api) -> None:
    put_product(api, "RAKE-1", product_body(category="garden-tools"))

    assert categories(api)["garden-tools"]["name"] == {
        "zh-CN": "Garden tools",
        "en": "Garden tools",
    }
