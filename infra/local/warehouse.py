"""The warehouse simulator of the local stack: staff who pick, pack and ship on their own.

    python -m infra.local.warehouse --delay 10 [--parent-pid PID]

Every second it looks at each warehouse's work list (pending, picking, packed: the same
Query ``GET /warehouses/{id}/shipments`` uses) and moves every shipment that has waited at
least ``--delay`` seconds one step forward through ``services.fulfilment.advance_shipment``,
the function behind ``POST /shipments/{id}/pick|pack|ship``: shipping books the parcel with
the (emulated) carrier, which then pushes its tracking. ``make run`` starts it; ``--delay 0``
(``WAREHOUSE_DELAY=0``) leaves the warehouse to people.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from chalicelib.domain.errors import DomainError
from chalicelib.domain.orders import ShipmentStatus
from chalicelib.services import fulfilment, stock

log = logging.getLogger("infra.local.warehouse")
ACTOR = "warehouse-simulator"
NEXT_STEP = {
    ShipmentStatus.PENDING: ShipmentStatus.PICKING,
    ShipmentStatus.PICKING: ShipmentStatus.PACKED,
    ShipmentStatus.PACKED: ShipmentStatus.SHIPPED,
}


def work_once(
    delay: timedelta, now: datetime | None = None, *, manual: frozenset[str] = frozenset()
) -> int:
    """Move every shipment that has waited ``delay`` one step, except in the ``manual``
    warehouses (left to people at the console); how many moved."""
    moment = now or datetime.now(UTC)
    moved = 0
    for warehouse in stock.known_warehouses():
        if warehouse.id in manual:
            continue
        for status, step in NEXT_STEP.items():
            page = fulfilment.warehouse_work(warehouse.id, status.value, limit=25)
            for record in page.items:
                if moment - record.updated_at < delay:
                    continue
                if record.booking_failure is not None:
                    continue  # the booking retry schedule owns it now, not the warehouse
                try:
                    fulfilment.advance_shipment(record.shipment_id, step, actor=ACTOR)
                except DomainError as exc:  # cancelled meanwhile, or the carrier said no
                    log.info("left %s: %s", record.shipment_id, exc)
                    continue
                moved += 1
    return moved


def _parent_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.warehouse")
    parser.add_argument("--delay", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument(
        "--manual",
        action="append",
        default=[],
        metavar="WAREHOUSE",
        help="a warehouse whose shipments are left to people (repeatable)",
    )
    args = parser.parse_args(argv)
    manual = frozenset(args.manual)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    delay = timedelta(seconds=args.delay)
    if args.once:
        print(f"moved {work_once(delay, manual=manual)} shipment(s) one step")
        return 0
    while _parent_alive(args.parent_pid):
        try:
            work_once(delay, manual=manual)
        except Exception:  # a simulator keeps going; the error is logged
            log.exception("warehouse round failed")
        time.sleep(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
