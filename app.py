"""orderdesk: the Chalice application. It registers blueprints and event handlers only."""

from chalice import Chalice

from chalicelib import api

app = Chalice(app_name="orderdesk")
api.register(app)
