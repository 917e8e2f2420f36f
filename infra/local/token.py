"""Print a bearer token for a running local stack: ``make token ID=alice GROUPS=customers``.

Only the token goes to stdout, so ``TOKEN=$(make token ID=alice GROUPS=ops)`` works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.local.identity import mint_for_stack
from infra.local.stack import STATE_DIR, stack_file_for


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.token",
        description="Print a bearer token for the local stack serving the API on --port.",
    )
    parser.add_argument("--port", type=int, default=8000, help="the stack's API port")
    parser.add_argument("--id", dest="user_id", required=True, help="the user id (token sub)")
    parser.add_argument(
        "--groups", default="", help="comma-separated groups: customers, ops, finance, support"
    )
    parser.add_argument("--email", default=None)
    parser.add_argument("--expires-in", type=int, default=3600, help="lifetime in seconds")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.user_id.strip():
        print("error: --id must not be empty (make token ID=<user id>)", file=sys.stderr)
        return 1
    stack_file = stack_file_for(args.port, args.state_dir)
    if not stack_file.exists():
        print(
            f"error: no local stack on port {args.port} ({stack_file} not found); "
            f"start one with `make run PORT={args.port}`",
            file=sys.stderr,
        )
        return 1
    groups = [group.strip() for group in args.groups.split(",") if group.strip()]
    try:
        token = mint_for_stack(
            stack_file, args.user_id.strip(), groups, expires_in=args.expires_in, email=args.email
        )
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot mint a token for port {args.port}: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
