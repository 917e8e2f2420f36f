"""Reconciliation: provider settlement lines against our payments and refunds."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chalicelib.domain.money import Money
from chalicelib.domain.reconciliation import (
    AMOUNT_MISMATCH,
    DUPLICATE,
    MISSING_AT_PROVIDER,
    MISSING_IN_RECORDS,
    Entry,
    reconcile,
    settlement_day,
)

DAY = date(2026, 11, 24)


def cny(amount: int) -> Money:
    return Money(amount, "CNY")


def test_matching_lines_are_counted_and_nothing_is_reported() -> None:
    ours = [Entry("payment", "pay_1", cny(100)), Entry("refund", "rfd_1", cny(30))]
    theirs = [Entry("payment", "pay_1", cny(100), "T1"), Entry("refund", "rfd_1", cny(30), "R1")]
    outcome = reconcile("alipay", DAY, ours, theirs)
    assert outcome.matched == 2
    assert outcome.discrepancies == ()


def test_every_kind_of_discrepancy_is_named_with_both_amounts() -> None:
    ours = [
        Entry("payment", "pay_1", cny(100)),  # the provider lists another amount
        Entry("payment", "pay_2", cny(200)),  # the provider does not list it
        Entry("payment", "pay_4", cny(400)),  # listed twice
    ]
    theirs = [
        Entry("payment", "pay_1", cny(90), "T1"),
        Entry("payment", "pay_3", cny(300), "T3"),  # we have no record
        Entry("payment", None, cny(50), "T5"),  # no reference of ours at all
        Entry("payment", "pay_4", cny(400), "T4"),
        Entry("payment", "pay_4", cny(400), "T4b"),
    ]
    found = {(d.type, d.reference): d for d in reconcile("card", DAY, ours, theirs).discrepancies}
    assert set(found) == {
        (AMOUNT_MISMATCH, "pay_1"),
        (MISSING_AT_PROVIDER, "pay_2"),
        (MISSING_IN_RECORDS, "pay_3"),
        (MISSING_IN_RECORDS, None),
        (DUPLICATE, "pay_4"),
    }
    mismatch = found[(AMOUNT_MISMATCH, "pay_1")]
    assert (mismatch.ours, mismatch.theirs) == (cny(100), cny(90))
    assert found[(MISSING_AT_PROVIDER, "pay_2")].theirs is None


def test_a_refund_and_a_payment_with_one_reference_are_different_lines() -> None:
    ours = [Entry("payment", "x", cny(100))]
    theirs = [Entry("refund", "x", cny(100), "R")]
    types = {d.type for d in reconcile("wechat_pay", DAY, ours, theirs).discrepancies}
    assert types == {MISSING_AT_PROVIDER, MISSING_IN_RECORDS}


def test_settlement_days_follow_each_providers_calendar() -> None:
    # 17:00 UTC on the 23rd is 01:00 on the 24th in China.
    moment = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert settlement_day("card", moment) == date(2026, 11, 23)
    assert settlement_day("alipay", moment) == date(2026, 11, 24)
    assert settlement_day("wechat_pay", moment) == date(2026, 11, 24)


def test_a_card_line_settled_in_another_currency_matches_on_its_own_amount() -> None:
    ours = [Entry("payment", "pay_1", cny(12_900)), Entry("refund", "rfd_1", cny(900))]
    theirs = [
        Entry("payment", "pay_1", cny(12_900), "pi_1", Money(14_007, "HKD"), Money(711, "HKD")),
        Entry("refund", "rfd_1", cny(900), "re_1", Money(977, "HKD"), Money(0, "HKD")),
    ]

    outcome = reconcile("card", DAY, ours, theirs)

    assert outcome.matched == 2 and outcome.discrepancies == ()


def test_a_mismatch_reports_the_settled_amount_and_fee_beside_the_amounts() -> None:
    ours = [Entry("payment", "pay_1", cny(12_900))]
    theirs = [
        Entry("payment", "pay_1", cny(12_800), "pi_1", Money(13_898, "HKD"), Money(707, "HKD"))
    ]

    (found,) = reconcile("card", DAY, ours, theirs).discrepancies

    assert found.as_dict()["ours"] == {"amount": 12_900, "currency": "CNY"}
    assert found.as_dict()["theirs"] == {"amount": 12_800, "currency": "CNY"}
    assert found.as_dict()["settlement"] == {"amount": 13_898, "currency": "HKD"}
    assert found.as_dict()["fee"] == {"amount": 707, "currency": "HKD"}
