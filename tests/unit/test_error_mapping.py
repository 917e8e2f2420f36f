from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.api.errors import ApiError, response_for
from chalicelib.domain import errors as domain


class _OutOfSomething(domain.Conflict):
    code = "out_of_something"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int


def _body(response) -> dict:
    return json.loads(json.dumps(response.body))


def test_domain_errors_keep_their_code_and_details_and_map_to_status() -> None:
    response = response_for(_OutOfSomething("ran short", [{"sku": "A", "available": 1}]))
    assert response.status_code == 409
    assert _body(response) == {
        "error": "out_of_something",
        "message": "ran short",
        "details": [{"sku": "A", "available": 1}],
    }
    assert response_for(domain.NotFound("no such order")).status_code == 404
    assert response_for(domain.InvalidInput("unknown sku")).status_code == 400


def test_validation_errors_name_each_offending_field() -> None:
    try:
        _Body.model_validate({"quantity": "many", "colour": "red"})
    except ValidationError as exc:
        response = response_for(exc)
    assert response.status_code == 400
    body = _body(response)
    assert body["error"] == "validation_error"
    assert {d["field"] for d in body["details"]} == {"quantity", "colour"}


def test_edge_errors_carry_their_own_status() -> None:
    response = response_for(ApiError(413, "payload_too_large", "too big"))
    assert response.status_code == 413
    assert _body(response)["error"] == "payload_too_large"
