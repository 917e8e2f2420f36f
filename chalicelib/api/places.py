"""Places a shopper can pick: the cities the storefront's "deliver to" picker lists (public)."""

from __future__ import annotations

import functools
from typing import Any

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.api import models
from chalicelib.api.openapi import operation
from chalicelib.domain import places

blueprint = Blueprint(__name__)

# The list is fixed in the code: browsers and CDNs may keep it for a day.
CITIES_CACHE_CONTROL = "public, max-age=86400"


class CityLocationBody(models.ResponseModel):
    lat: float
    lon: float


class CityBody(models.ResponseModel):
    id: str = Field(examples=["shanghai"])
    name: models.LocalizedTextBody
    region: str = Field(
        description="The province-level region, as a shipping address names it.",
        examples=["上海"],
    )
    location: CityLocationBody


class CityList(models.ResponseModel):
    items: list[CityBody]


@functools.cache
def _cities() -> dict[str, Any]:
    items = [
        CityBody(
            id=places.city_id(city),
            name={"zh-CN": city.name_zh, "en": city.name_en},
            region=places.region_of(city).name_zh,
            location=CityLocationBody(lat=city.location.lat, lon=city.location.lon),
        )
        for city in places.CITIES
    ]
    return models.dump(CityList(items=items))


@blueprint.route("/cities", methods=["GET"])
@operation(
    "The cities a delivery can be placed in",
    description="For a 'deliver to' picker: every known city with its region and centre.",
    tags=("places",),
    responses={200: CityList},
)
def list_cities() -> Response:
    return Response(
        body=_cities(),
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": CITIES_CACHE_CONTROL},
    )
