"""orderdesk: the Chalice application. It registers blueprints and event handlers only."""

from typing import Any

from chalice import Chalice
from chalice.app import WebsocketEvent

from chalicelib import api
from chalicelib.workers import (
    analytics,
    email_feedback,
    fulfilment,
    notifications,
    operations,
    outbox,
    schedules,
    support_socket,
)

app = Chalice(app_name="orderdesk")
app.experimental_feature_flags.update(["WEBSOCKETS"])
api.register(app)
app.register_blueprint(outbox.blueprint)
app.register_blueprint(schedules.blueprint)
app.register_blueprint(notifications.blueprint)
app.register_blueprint(fulfilment.blueprint)
app.register_blueprint(operations.blueprint)
app.register_blueprint(analytics.blueprint)
app.register_blueprint(email_feedback.blueprint)


# The live support WebSocket (see chalicelib/workers/support_socket.py).
@app.on_ws_connect()
def support_socket_connect(event: WebsocketEvent) -> dict[str, Any]:
    return support_socket.on_connect(event)


@app.on_ws_disconnect()
def support_socket_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return support_socket.on_disconnect(event)


@app.on_ws_message()
def support_socket_message(event: WebsocketEvent) -> dict[str, Any]:
    return support_socket.on_message(event)
