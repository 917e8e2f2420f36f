"""Run one schedule handler now against a running local stack: ``make tick JOB=<name>``.

    python -m infra.local.tick --port 8000 JOB [--date YYYY-MM-DD] [--at ISO-8601-TIME]

It reads the stack's environment from ``.local/stack-<port>.json``, imports the app with that
environment in place, and calls the handler registered as ``JOB`` with an EventBridge
Scheduled Event, exactly as its schedule would. ``--date`` goes into the event's ``detail``
(``{"date": "YYYY-MM-DD"}``) so a job such as the nightly analytics can run for any day.
``--at`` sets the event's time: a moment still to come runs the job as it will run then
(orders that will have expired, refunds that will be due for another try).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from infra.local.gateway import load_app
from infra.local.pump import invoke_schedule, schedule_names
from infra.local.stack import REPO_ROOT, STATE_DIR, read_stack_file


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _iso_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.tick",
        description="Run a schedule handler once, now, against the local stack on --port.",
    )
    parser.add_argument("job", help="the schedule handler's name")
    parser.add_argument("--port", type=int, default=8000, help="the stack's API port")
    parser.add_argument("--date", type=_iso_date, help="the day to run for (YYYY-MM-DD)")
    parser.add_argument(
        "--at", type=_iso_time, help="the event's time (ISO 8601; UTC unless it says otherwise)"
    )
    parser.add_argument("--app", default="app:app", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        stack = read_stack_file(args.port, args.state_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The app reads its settings from the environment: set it before the import.
    os.environ.update({str(k): str(v) for k, v in stack["env"].items()})
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    # The app's own output (log lines, metrics) goes to stderr: stdout holds only the result.
    with contextlib.redirect_stdout(sys.stderr):
        app = load_app(args.app)
    if args.job not in schedule_names(app):
        known = ", ".join(schedule_names(app)) or "none yet"
        print(f"error: no schedule handler named {args.job!r} (known: {known})", file=sys.stderr)
        return 2
    detail = {"date": args.date} if args.date else None
    with contextlib.redirect_stdout(sys.stderr):
        result = invoke_schedule(
            app, args.job, detail=detail, when=args.at, stage=stack["env"].get("STAGE", "local")
        )
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
