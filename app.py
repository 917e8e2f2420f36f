"""orderdesk: the Chalice application. It registers blueprints and event handlers only."""

from chalice import Chalice

from chalicelib import api
from chalicelib.workers import (
    analytics,
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
app.register_blueprint(support_socket.blueprint)
