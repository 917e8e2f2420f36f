"""GET /cities: the storefront's "deliver to" picker, public."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.domain import places

if TYPE_CHECKING:
    from conftest import Api


def test_cities_are_public_bilingual_with_region_and_location(api: Api) -> None:
    response = api.client.http.get("/cities")

    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    items = response.json_body["items"]
    assert len(items) == len(places.CITIES)
    by_id = {item["id"]: item for item in items}
    assert by_id["shanghai"] == {
        "id": "shanghai",
        "name": {"zh-CN": "上海", "en": "Shanghai"},
        "region": "上海",
        "location": {"lat": 31.2304, "lon": 121.4737},
    }
    assert by_id["suzhou"]["region"] == "江苏"
    assert by_id["xian"]["name"] == {"zh-CN": "西安", "en": "Xi'an"}
    assert all(set(item) == {"id", "name", "region", "location"} for item in items)


def test_a_city_region_places_an_address_near_the_city(api: Api) -> None:
    # What the picker hands to a shipping address must be understood when placing.
    for item in api.client.http.get("/cities").json_body["items"]:
        assert places.locate(item["name"]["zh-CN"], item["region"]) is not None
