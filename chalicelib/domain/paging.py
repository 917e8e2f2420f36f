"""Page and window sizes: what a list's ``limit`` (or the dashboard's ``days``) defaults to
and may be at most.

The API's query models declare these bounds and the services clamp to them; both read them
here, so declaring the routes does not load the services (see ``chalicelib/services``).
"""

from __future__ import annotations

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# The stock ledger of one (SKU, warehouse) and the stock grid of the console.
DEFAULT_LEDGER_PAGE = 50
MAX_LEDGER_PAGE = 100
DEFAULT_GRID_PAGE = 25
MAX_GRID_PAGE = 100

# The staff dashboard: days of figures shown by default, and at most.
DASHBOARD_DAYS = 14
MAX_DASHBOARD_DAYS = 92
