"""Move dead letters back to their queue: ``make redrive QUEUE=fulfilment [PORT=8000]``.

    python -m infra.local.redrive --port 8000 QUEUE [--limit N]

Against the local stack it reads the queue URLs from ``.local/stack-<port>.json``; against
AWS, run ``python -m infra.local.redrive --from-environment QUEUE`` with the stage's
``<NAME>_QUEUE_URL`` / ``<NAME>_DLQ_URL`` variables and credentials in the environment.
"""

from __future__ import annotations

import argparse
import os
import sys

from infra.local.stack import STATE_DIR, read_stack_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.redrive")
    parser.add_argument("queue", help="the queue's name, e.g. fulfilment or notifications")
    parser.add_argument("--port", type=int, default=8000, help="the local stack's API port")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument(
        "--from-environment", action="store_true", help="use this environment, not a stack"
    )
    args = parser.parse_args(argv)
    if not args.from_environment:
        try:
            stack = read_stack_file(args.port, STATE_DIR)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        os.environ.update({str(k): str(v) for k, v in stack["env"].items()})

    from chalicelib.domain.errors import DomainError
    from chalicelib.services import operations

    try:
        moved = operations.redrive(args.queue, limit=args.limit)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"moved {moved} message(s) from the {args.queue} dead-letter queue back to the queue")
    return 0


if __name__ == "__main__":
    sys.exit(main())
