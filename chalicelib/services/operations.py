"""Operations: how deep each queue and its dead-letter queue are, and moving dead letters
back to their queue once the cause is fixed (``make redrive QUEUE=...``)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import queues
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.observability import logger
from chalicelib.settings import get_settings

MAX_REDRIVE = 10_000


def queue_depths() -> list[dict[str, Any]]:
    """Every configured queue with its depth and its dead-letter queue's depth."""
    report = []
    for name, (url, dlq_url) in sorted(get_settings().queues.items()):
        main = queues.depth(url)
        dead = queues.depth(dlq_url) if dlq_url else None
        report.append(
            {
                "queue": name,
                "visible": main.visible,
                "in_flight": main.in_flight,
                "delayed": main.delayed,
                "dead_letters": dead.visible if dead else None,
            }
        )
    return report


def redrive(queue: str, *, limit: int = MAX_REDRIVE) -> int:
    """Move up to ``limit`` messages from ``queue``'s dead-letter queue back to it."""
    configured = get_settings().queues
    if queue not in configured:
        raise NotFound(f"No queue {queue!r}; known: {', '.join(sorted(configured))}.")
    url, dlq_url = configured[queue]
    if not dlq_url:
        raise InvalidInput(f"Queue {queue!r} has no dead-letter queue.")
    moved = queues.move_messages(dlq_url, url, limit=limit)
    logger.info("redrove dead letters", extra={"queue": queue, "moved": moved})
    return moved
