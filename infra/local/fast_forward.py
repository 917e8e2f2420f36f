"""Deliver every parcel of the local stack now: ``make fast-forward [PORT=8000]``.

The emulated carrier otherwise moves each parcel one tracking step every ``CARRIER_STEP``
seconds; this asks it to push every parcel's remaining steps at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

from infra.local.stack import STATE_DIR, read_stack_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.fast_forward")
    parser.add_argument("--port", type=int, default=8000, help="the local stack's API port")
    args = parser.parse_args(argv)
    try:
        carrier = read_stack_file(args.port, STATE_DIR)["emulators"]["carrier"]
    except (FileNotFoundError, KeyError) as exc:
        print(f"error: no carrier emulator for the stack on port {args.port} ({exc})")
        return 1
    request = urllib.request.Request(f"{carrier}/_emulator/fast-forward", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.dumps(json.loads(response.read() or b"{}"), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
