"""Reconciliation: a provider's settlement lines for a day against our own records.

Each provider settles by its own calendar: Stripe's balance transactions by UTC day, Alipay
and WeChat Pay bills by China Standard Time day. ``settlement_day`` puts a capture or a
refund on the day its provider will report it, so a day's comparison reads one index
partition per provider instead of guessing across midnight.

Discrepancies:
- ``missing_at_provider``: we recorded money moving that the provider does not list;
- ``missing_in_records``: the provider lists money moving that we have no record of;
- ``amount_mismatch``: both list it with different amounts (the payment's or refund's own
  amount and currency: a card account settles in its own currency at an exchange rate, so
  the settled amount and the fee are reported beside it, not compared);
- ``duplicate``: the provider lists the same reference more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.domain.time_zones import CHINA_TIME

SETTLEMENT_ZONES = {"card": UTC, "alipay": CHINA_TIME, "wechat_pay": CHINA_TIME}

MISSING_AT_PROVIDER = "missing_at_provider"
MISSING_IN_RECORDS = "missing_in_records"
AMOUNT_MISMATCH = "amount_mismatch"
DUPLICATE = "duplicate"
KINDS = (MISSING_AT_PROVIDER, MISSING_IN_RECORDS, AMOUNT_MISMATCH, DUPLICATE)


def settlement_day(provider: str, moment: datetime) -> date:
    return moment.astimezone(SETTLEMENT_ZONES.get(provider, UTC)).date()


@dataclass(frozen=True, slots=True)
class Entry:
    """One movement of money, ours or the provider's: a payment captured or a refund paid."""

    kind: str  # "payment" | "refund"
    reference: str | None  # our payment or refund id
    amount: Money  # in the payment's own currency: what is compared
    provider_reference: str | None = None
    # The provider's side only: what reached the balance in the settlement currency, and
    # the fee taken; reported beside the amount, never compared with ours.
    settlement: Money | None = None
    fee: Money | None = None


@dataclass(frozen=True, slots=True)
class Discrepancy:
    provider: str
    day: date
    type: str
    kind: str
    reference: str | None
    provider_reference: str | None
    ours: Money | None
    theirs: Money | None
    settlement: Money | None = None
    fee: Money | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "date": self.day.isoformat(),
            "type": self.type,
            "kind": self.kind,
            "reference": self.reference,
            "provider_reference": self.provider_reference,
            "ours": self.ours.as_dict() if self.ours else None,
            "theirs": self.theirs.as_dict() if self.theirs else None,
            "settlement": self.settlement.as_dict() if self.settlement else None,
            "fee": self.fee.as_dict() if self.fee else None,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    provider: str
    day: date
    matched: int
    discrepancies: tuple[Discrepancy, ...]


def reconcile(provider: str, day: date, ours: Iterable[Entry], theirs: Iterable[Entry]) -> Outcome:
    """Match by (kind, our reference); lines without our reference are missing in records."""
    ours_by_key = {(entry.kind, entry.reference): entry for entry in ours}
    lines = list(theirs)
    listed = Counter((line.kind, line.reference) for line in lines if line.reference)
    found: list[Discrepancy] = []
    matched = 0

    def discrepancy(kind: str, entry: Entry, mine: Entry | None, line: Entry | None) -> None:
        found.append(
            Discrepancy(
                provider=provider,
                day=day,
                type=kind,
                kind=entry.kind,
                reference=entry.reference,
                provider_reference=entry.provider_reference,
                ours=mine.amount if mine else None,
                theirs=line.amount if line else None,
                settlement=line.settlement if line else None,
                fee=line.fee if line else None,
            )
        )

    duplicates_noted: set[tuple[str, str | None]] = set()
    for line in lines:
        key = (line.kind, line.reference)
        mine = ours_by_key.get(key) if line.reference else None
        if line.reference and listed[key] > 1:
            if key not in duplicates_noted:
                duplicates_noted.add(key)
                discrepancy(DUPLICATE, line, mine, line)
        elif mine is None:
            discrepancy(MISSING_IN_RECORDS, line, None, line)
        elif mine.amount != line.amount:
            discrepancy(AMOUNT_MISMATCH, line, mine, line)
        else:
            matched += 1
    for key, mine in ours_by_key.items():
        if key not in listed:
            discrepancy(MISSING_AT_PROVIDER, mine, mine, None)
    return Outcome(provider=provider, day=day, matched=matched, discrepancies=tuple(found))
