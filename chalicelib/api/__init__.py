"""HTTP entrypoints: one blueprint per resource area, registered by ``register``."""

from __future__ import annotations

from chalice import Chalice

from chalicelib import observability
from chalicelib.api import cors, health
from chalicelib.api.errors import as_error_response

BLUEPRINTS = [health.blueprint]


def register(app: Chalice) -> None:
    observability.register(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # Map every view's errors to our error shape in one place.
    for methods in app.routes.values():
        for entry in methods.values():
            entry.view_function = as_error_response(entry.view_function)
    cors.register(app)
