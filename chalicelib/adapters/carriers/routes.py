"""Which provider books a carrier's parcels, and which provider tracks them.

Domestic carriers (Kuaidi100 company codes) are booked through Kuaidi100's e-waybill API and
tracked by its push subscription; international ones are booked and tracked through
EasyPost. ``CARRIER_ROUTES`` changes or adds routes, comma-separated
``carrier=booking[/tracking]``: ``yunda=kuaidi100/aftership`` books Yunda through Kuaidi100
and has AfterShip track it; ``ups=easypost`` books and tracks UPS through EasyPost.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.adapters.carriers import AFTERSHIP, EASYPOST, KUAIDI100

BOOKING_PROVIDERS = (KUAIDI100, EASYPOST)
TRACKING_PROVIDERS = (KUAIDI100, EASYPOST, AFTERSHIP)
DOMESTIC_CARRIERS = (
    "shunfeng",
    "zhongtong",
    "yuantong",
    "shentong",
    "yunda",
    "ems",
    "jd",
    "jtexpress",
)
INTERNATIONAL_CARRIERS = ("dhl", "ups", "fedex", "usps")


@dataclass(frozen=True, slots=True)
class Route:
    carrier: str
    booking: str  # kuaidi100 or easypost
    tracking: str  # kuaidi100, easypost or aftership


class UnknownCarrier(ValueError):
    pass


DEFAULT_ROUTES = {
    **{code: Route(code, KUAIDI100, KUAIDI100) for code in DOMESTIC_CARRIERS},
    **{code: Route(code, EASYPOST, EASYPOST) for code in INTERNATIONAL_CARRIERS},
}


def parse_routes(text: str) -> dict[str, Route]:
    """The routes ``text`` sets (``ValueError`` naming a bad entry)."""
    routes: dict[str, Route] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        carrier, _, providers = entry.partition("=")
        booking, _, tracking = providers.strip().partition("/")
        carrier, booking, tracking = carrier.strip(), booking.strip(), tracking.strip() or booking
        if not carrier or booking not in BOOKING_PROVIDERS or tracking not in TRACKING_PROVIDERS:
            raise ValueError(
                f"CARRIER_ROUTES entry {entry!r} is not carrier=booking[/tracking] with booking "
                f"one of {', '.join(BOOKING_PROVIDERS)} and tracking one of "
                f"{', '.join(TRACKING_PROVIDERS)}"
            )
        routes[carrier] = Route(carrier, booking.strip(), tracking)
    return routes


def route_for(carrier: str, configured: str = "") -> Route:
    """The route of ``carrier``: the configured one, else the default (``UnknownCarrier``)."""
    route = {**DEFAULT_ROUTES, **parse_routes(configured)}.get(carrier)
    if route is None:
        raise UnknownCarrier(f"no booking provider is configured for carrier {carrier!r}")
    return route
