"""A local carrier: Kuaidi100 (push subscription and e-waybills), EasyPost (shipments,
rates, labels, trackers) and AfterShip (trackings), each speaking its provider's documented
wire format and refusing what that provider refuses, and parcels that move on by themselves
and push their tracking to whoever tracks them.

One module per provider (``kuaidi100``, ``easypost``, ``aftership``), the parcels and their
journeys (``journeys``), the engine that moves and pushes them (``core``), and HTTP
(``server``). Run it alone with ``python -m infra.local.emulators.carrier``.
"""

from infra.local.emulators.carrier.core import (
    PARCELS_FILE,
    SECRETS_FILE,
    CarrierEmulator,
)
from infra.local.emulators.carrier.journeys import FORMATS, EmulatorError

__all__ = ["FORMATS", "PARCELS_FILE", "SECRETS_FILE", "CarrierEmulator", "EmulatorError"]
