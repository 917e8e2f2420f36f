"""Feed SES's feedback about an address to a running local stack: ``make email-feedback``.

    python -m infra.local.email_feedback --port 8000 ADDRESS [--kind bounce|soft-bounce|complaint]

The emulator's SES sends nothing anywhere and publishes no events, so here nothing ever
bounces. This builds the message SES's configuration set publishes to the email-feedback
topic (event publishing shape: ``eventType``) and invokes the subscribed handler with the
event SNS gives Lambda, with the stack's environment, as ``make tick`` does for schedules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.local.gateway import lambda_context, load_app
from infra.local.stack import REPO_ROOT, STATE_DIR, read_stack_file

HANDLER = "record_email_feedback"
KINDS = ("bounce", "soft-bounce", "complaint")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ses_event(address: str, kind: str, *, sender: str = "orders@orderdesk.local") -> str:
    """What SES publishes for ``kind`` of feedback on an email to ``address``."""
    mail = {
        "timestamp": _now(),
        "source": sender,
        "messageId": f"local-{uuid.uuid4().hex}",
        "destination": [address],
    }
    if kind == "complaint":
        detail: dict[str, Any] = {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": _now(),
            "feedbackId": f"local-{uuid.uuid4().hex}",
            "complaintFeedbackType": "abuse",
        }
        return json.dumps({"eventType": "Complaint", "complaint": detail, "mail": mail})
    permanent = kind == "bounce"
    detail = {
        "bounceType": "Permanent" if permanent else "Transient",
        "bounceSubType": "General" if permanent else "MailboxFull",
        "bouncedRecipients": [
            {
                "emailAddress": address,
                "action": "failed",
                "status": "5.1.1" if permanent else "4.2.2",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                if permanent
                else "smtp; 452 4.2.2 mailbox full",
            }
        ],
        "timestamp": _now(),
        "feedbackId": f"local-{uuid.uuid4().hex}",
        "reportingMTA": "dns; mta.example.com",
    }
    return json.dumps({"eventType": "Bounce", "bounce": detail, "mail": mail})


def sns_event(message: str, topic_arn: str) -> dict[str, Any]:
    """The event SNS invokes a subscribed function with: one record per message."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": _now(),
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.email_feedback",
        description="Have the local stack hear that an email to ADDRESS bounced or complained.",
    )
    parser.add_argument("address")
    parser.add_argument("--kind", choices=KINDS, default="bounce")
    parser.add_argument("--port", type=int, default=8000, help="the stack's API port")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        stack = read_stack_file(args.port, args.state_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = {str(k): str(v) for k, v in stack["env"].items()}
    os.environ.update(env)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    stage = env.get("STAGE", "local")
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:orderdesk-{stage}-email-feedback"
    with contextlib.redirect_stdout(sys.stderr):
        app = load_app("app:app")
        handler = app.handler_map[HANDLER]
        handler(
            sns_event(ses_event(args.address, args.kind), topic_arn),
            lambda_context(f"orderdesk-{stage}-{HANDLER}", 60),
        )
    print(f"{args.kind} of {args.address} delivered to {HANDLER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
