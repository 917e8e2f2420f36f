"""Daily settlement reconciliation: each provider's own settlement data, pulled through its
real API, against the payments we captured and the refunds we paid that day.

The result is written to the reports bucket as JSON Lines under
``reports/settlement/reconciliation/dt=YYYY-MM-DD/part-0.jsonl`` (one discrepancy per line)
with a summary beside it, and read back by ``GET /ops/reconciliation?date=``. Running a
day again overwrites the same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.adapters import alerts, reports_bucket
from chalicelib.adapters.payments import PROVIDERS, ProviderError, SettlementKind
from chalicelib.adapters.payments.providers import get_provider
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.reconciliation import KINDS, Entry, Outcome, reconcile
from chalicelib.domain.time_zones import CHINA_TIME
from chalicelib.observability import logger
from chalicelib.store import payments as store

PREFIX = "reports/settlement/reconciliation"


def _day_prefix(day: date) -> str:
    return f"{PREFIX}/dt={day.isoformat()}"


def previous_business_day(now: datetime) -> date:
    """Providers publish a day's bills the next morning, China time."""
    return now.astimezone(CHINA_TIME).date() - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    day: date
    outcomes: list[Outcome]
    failed_providers: dict[str, str]

    @property
    def discrepancy_count(self) -> int:
        return sum(len(outcome.discrepancies) for outcome in self.outcomes)


def _our_entries(provider: str, day: date) -> list[Entry]:
    payments, refunds = store.settled_on(provider, day)
    entries = [
        Entry("payment", p.payment_id, p.captured or p.amount, p.provider_payment_id)
        for p in payments
    ]
    entries += [Entry("refund", r.refund_id, r.amount, r.provider_refund_id) for r in refunds]
    return entries


def _their_entries(provider: str, day: date) -> list[Entry]:
    return [
        Entry(
            "payment" if line.kind is SettlementKind.PAYMENT else "refund",
            line.reference,
            line.amount,
            line.provider_reference,
            settlement=line.settlement or line.amount,
            fee=line.fee,
        )
        for line in get_provider(provider).settlement(day)
    ]


def reconcile_day(day: date, *, now: datetime | None = None) -> ReconciliationRun:
    """Reconcile every configured provider for ``day`` and write the result."""
    outcomes: list[Outcome] = []
    failed: dict[str, str] = {}
    for provider in PROVIDERS:
        try:
            theirs = _their_entries(provider, day)
        except ProviderError as exc:
            logger.error(
                "could not fetch settlement data", extra={"provider": provider, "code": exc.code}
            )
            failed[provider] = exc.code
            continue
        outcomes.append(reconcile(provider, day, _our_entries(provider, day), theirs))
    run = ReconciliationRun(day=day, outcomes=outcomes, failed_providers=failed)
    _write(run, now or datetime.now(UTC))
    if run.discrepancy_count or failed:
        alerts.publish(
            f"Reconciliation {day.isoformat()}: {run.discrepancy_count} discrepancies",
            {"date": day.isoformat(), "failed_providers": failed},
            kind="payments.reconciliation",
        )
    return run


def _summary(run: ReconciliationRun, generated_at: datetime) -> dict[str, Any]:
    providers: dict[str, dict[str, int]] = {}
    for outcome in run.outcomes:
        counts = {kind: 0 for kind in KINDS}
        for found in outcome.discrepancies:
            counts[found.type] += 1
        providers[outcome.provider] = {"matched": outcome.matched, **counts}
    return {
        "date": run.day.isoformat(),
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
        "providers": providers,
        "failed_providers": run.failed_providers,
    }


def _write(run: ReconciliationRun, generated_at: datetime) -> None:
    lines = [
        json.dumps(found.as_dict(), ensure_ascii=False, sort_keys=True)
        for outcome in run.outcomes
        for found in outcome.discrepancies
    ]
    prefix = _day_prefix(run.day)
    reports_bucket.write(
        f"{prefix}/part-0.jsonl",
        ("\n".join(lines) + "\n" if lines else "").encode(),
        "application/x-ndjson",
    )
    summary = json.dumps(_summary(run, generated_at), ensure_ascii=False, sort_keys=True)
    reports_bucket.write(f"{prefix}/_summary.json", summary.encode(), "application/json")


def report_for(day_text: str) -> dict[str, Any]:
    """What reconciling ``day_text`` found, as the API returns it."""
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise InvalidInput(
            "date must be a calendar date, YYYY-MM-DD.",
            [{"field": "date", "message": "not a date"}],
        ) from None
    prefix = _day_prefix(day)
    summary = reports_bucket.read(f"{prefix}/_summary.json")
    if summary is None:
        raise NotFound(f"{day.isoformat()} has not been reconciled yet.", {"date": day_text})
    body = reports_bucket.read(f"{prefix}/part-0.jsonl") or b""
    items = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    return {**json.loads(summary), "items": items}
