"""Prove the running local stack's stock balances: ``make check-stock [PORT=8000]``.

    python -m infra.local.check_stock --port 8000 [--json]

For every (SKU, warehouse): ``on_hand`` equals the sum of its ledger, and ``reserved`` the
sum of open reservations (see ``chalicelib.services.stock_audit``). It reads the stack's
environment from ``.local/stack-<port>.json``, prints a summary (or the full report with
``--json``) and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.local.stack import STATE_DIR, read_stack_file


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.check_stock",
        description="Check every stock level of the local stack on --port against its ledger "
        "and the open orders.",
    )
    parser.add_argument("--port", type=int, default=8000, help="the stack's API port")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        stack = read_stack_file(args.port, args.state_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The store reads its settings (table, endpoint) from the environment: set it first.
    os.environ.update({str(k): str(v) for k, v in stack["env"].items()})
    from chalicelib.services.stock_audit import audit_stock

    report = audit_stock()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(
            f"checked {report.levels_checked} stock levels ({report.skus} SKUs x "
            f"{report.warehouses} warehouses) against {report.ledger_entries} ledger entries "
            "and the open orders"
        )
        for mismatch in report.mismatches:
            print(
                f"MISMATCH {mismatch.sku} @ {mismatch.warehouse}: {mismatch.check}: "
                f"stored {mismatch.stored}, expected {mismatch.expected}"
            )
        print("stock balances" if report.balanced else f"{len(report.mismatches)} mismatches")
    return 0 if report.balanced else 1


if __name__ == "__main__":
    sys.exit(main())
