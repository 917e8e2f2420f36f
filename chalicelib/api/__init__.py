"""HTTP entrypoints: one blueprint per resource area, registered by ``register``."""

from __future__ import annotations

from typing import Any

from chalice import Chalice

from chalicelib import observability, public_api
from chalicelib.api import (
    addresses,
    alerts,
    auth,
    cors,
    health,
    me,
    openapi,
    operations,
    orders,
    payments,
    places,
    products,
    reports,
    reviews,
    shipments,
    stock,
    uploads,
    warehouses,
)
from chalicelib.api.errors import as_error_response

BLUEPRINTS = [auth.blueprint, health.blueprint]
BLUEPRINTS += [products.blueprint, warehouses.blueprint, openapi.blueprint]
BLUEPRINTS += [stock.blueprint]
BLUEPRINTS += [orders.blueprint, payments.blueprint]
BLUEPRINTS += [me.blueprint]
BLUEPRINTS += [shipments.blueprint, operations.blueprint]
BLUEPRINTS += [alerts.blueprint]
BLUEPRINTS += [reports.blueprint]
BLUEPRINTS += [places.blueprint, addresses.blueprint, reviews.blueprint, uploads.blueprint]


_registered = False


def _public_url_of_request(event: Any, get_response: Any) -> Any:
    # Without PUBLIC_API_URL, notify URLs are built from the URL this request came in at.
    with public_api.serving(event.context):
        return get_response(event)


def register(app: Chalice) -> None:
    # Chalice consumes a blueprint's route options on first registration: registering the
    # same blueprints with a second app would silently drop their authorizers.
    global _registered
    if _registered:
        raise RuntimeError("chalicelib.api.register may run once per process (use app.app)")
    _registered = True
    observability.register(app)
    app.register_middleware(_public_url_of_request, "http")
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # Map every view's errors to our error shape in one place.
    for methods in app.routes.values():
        for entry in methods.values():
            entry.view_function = as_error_response(entry.view_function)
    cors.register(app)
