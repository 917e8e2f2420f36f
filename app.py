"""orderdesk: the Chalice application. It registers blueprints and event handlers only."""

from chalice import Chalice

from chalicelib import api
from chalicelib.workers import outbox, schedules

app = Chalice(app_name="orderdesk")
api.register(app)
app.register_blueprint(outbox.blueprint)
app.register_blueprint(schedules.blueprint)
