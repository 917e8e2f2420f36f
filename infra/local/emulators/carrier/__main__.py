"""``python -m infra.local.emulators.carrier``: the local carrier on its own."""

from infra.local.emulators.carrier.server import main

main()
