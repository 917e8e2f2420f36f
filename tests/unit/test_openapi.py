"""The OpenAPI generator on a small app of its own (no AWS, no blueprints)."""

from __future__ import annotations

from enum import StrEnum

from chalice import AuthResponse, Chalice
from openapi_spec_validator import validate as validate_openapi
from pydantic import BaseModel

from chalicelib.api.openapi import build_spec, operation, render_docs


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class PaintQuery(BaseModel):
    colour: Colour | None = None
    limit: int = 10


class Paint(BaseModel):
    colour: Colour
    litres: int


class PaintIn(BaseModel):
    litres: int


def build_app() -> Chalice:
    app = Chalice(app_name="paint-shop")

    @app.authorizer()
    def token_check(auth_request: object) -> AuthResponse:
        return AuthResponse(routes=["*"], principal_id="someone")

    @app.route("/paints", methods=["GET"])
    @operation("Find paints", query=PaintQuery, responses={200: Paint}, tags=("paint",))
    def find_paints() -> dict:
        return {}

    @app.route("/paints/{paint_id}", methods=["PUT"], authorizer=token_check)
    @operation("Mix paint", request=PaintIn, responses={201: Paint}, errors=(422,))
    def mix_paint(paint_id: str) -> dict:
        return {}

    @app.route("/paints/{paint_id}", methods=["DELETE", "OPTIONS"], authorizer=token_check)
    def spill_paint(paint_id: str) -> dict:
        return {}

    return app


def test_spec_is_valid_openapi_3_1_with_query_enums_as_components() -> None:
    spec = build_spec(build_app())
    validate_openapi(spec)
    parameters = {p["name"]: p for p in spec["paths"]["/paints"]["get"]["parameters"]}
    assert parameters["colour"]["schema"] == {"$ref": "#/components/schemas/Colour"}
    assert parameters["limit"]["required"] is False
    assert spec["components"]["schemas"]["Colour"]["enum"] == ["red", "blue"]


def test_every_route_is_listed_even_without_a_description_but_preflights_are_not() -> None:
    paths = build_spec(build_app())["paths"]
    assert set(paths["/paints/{paint_id}"]) == {"put", "delete"}
    spill = paths["/paints/{paint_id}"]["delete"]
    assert spill["security"] == [{"bearerAuth": []}]
    assert {"400", "401", "403", "404", "409"} <= set(spill["responses"])


def test_errors_follow_from_the_route_and_extra_ones_are_added() -> None:
    paths = build_spec(build_app())["paths"]
    mix = paths["/paints/{paint_id}"]["put"]
    assert set(mix["responses"]) == {"201", "400", "401", "403", "404", "409", "413", "415", "422"}
    assert mix["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaintIn"
    }
    find = paths["/paints"]["get"]
    assert set(find["responses"]) == {"200", "400"}
    assert "security" not in find


def test_docs_page_shows_each_operation_and_escapes_text() -> None:
    spec = build_spec(build_app())
    spec["paths"]["/paints"]["get"]["summary"] = "<b>Find</b> paints"
    page = render_docs(spec)
    assert ">/paints/{paint_id}<" in page
    assert "&lt;b&gt;Find&lt;/b&gt;" in page and "<b>Find</b>" not in page
