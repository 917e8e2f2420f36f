"""Per-customer limit counters: the stock a customer's unpaid orders hold, and recent uses.

Item shapes (the only place that knows them):

    holds   pk=LIMITS#<customer_id>   sk=HOLDS
            open_orders (N), u#<sku> (N) per SKU: units held by unpaid orders
    rate    pk=LIMITS#<customer_id>   sk=RATE#<action>          (orders, payments)
            pk=LIMITS#CONTACT#<contact>  sk=RATE#<action>       (codes to one contact)
            n (N, uses so far), s<i> (N, epoch ms of the use in ring slot i),
            expires_ttl (a window after the last use: the item then goes)

The holds item moves in the same transaction as the orders it counts: placement adds
(guarded by ``open_orders < max`` and, per SKU, ``held <= max - quantity``), and any change
that takes an order out of ``pending_payment`` (paid, cancelled, expired) subtracts, inside
``orders.add_order_change``. A rate item is taken in the transaction that creates the order
or payment, conditional on the use count it was read with, so two uses racing for one
slot cannot both land, and a request that creates nothing (a replay) takes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.limits import CustomerHolds, HoldLimits, RateLimit, RecentUses
from chalicelib.store import tables
from chalicelib.store.unit_of_work import UnitOfWork

LIMITS_PREFIX = "LIMITS#"
HOLDS_SK = "HOLDS"
RATE_PREFIX = "RATE#"
OPEN_ORDERS = "open_orders"
UNITS_PREFIX = "u#"
COUNT = "n"


def contact_subject(contact: str) -> str:
    """Whose uses a rate item counts, for one contact (``contact_verification.contact_key``)
    across all customers: ``add_use`` and ``read_uses`` take it in place of a customer id."""
    return "CONTACT#" + contact


def holds_key(customer_id: str) -> tables.RawItem:
    return {tables.PK: {"S": LIMITS_PREFIX + customer_id}, tables.SK: {"S": HOLDS_SK}}


def rate_key(customer_id: str, action: str) -> tables.RawItem:
    return {tables.PK: {"S": LIMITS_PREFIX + customer_id}, tables.SK: {"S": RATE_PREFIX + action}}


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def holds_from_item(raw: tables.RawItem | None) -> CustomerHolds:
    if not raw:
        return CustomerHolds()
    item = tables.from_item(raw)
    units = {
        name[len(UNITS_PREFIX) :]: int(value)
        for name, value in item.items()
        if name.startswith(UNITS_PREFIX)
    }
    return CustomerHolds(open_orders=int(item.get(OPEN_ORDERS, 0)), units=units)


def uses_from_item(raw: tables.RawItem | None) -> RecentUses:
    if not raw:
        return RecentUses()
    item = tables.from_item(raw)
    slots = {
        int(name[1:]): datetime.fromtimestamp(int(value) / 1000, UTC)
        for name, value in item.items()
        if name[:1] == "s" and name[1:].isdigit()
    }
    return RecentUses(count=int(item.get(COUNT, 0)), slots=slots)


def read_limits(customer_id: str, *actions: str) -> tuple[CustomerHolds, dict[str, RecentUses]]:
    """The customer's holds and their recent uses of ``actions``, strongly consistent."""
    keys = [holds_key(customer_id)] + [rate_key(customer_id, action) for action in actions]
    holds = CustomerHolds()
    uses = {action: RecentUses() for action in actions}
    for raw in tables.batch_get(keys, consistent=True):
        sk = raw[tables.SK]["S"]
        if sk == HOLDS_SK:
            holds = holds_from_item(raw)
        elif sk.startswith(RATE_PREFIX):
            uses[sk[len(RATE_PREFIX) :]] = uses_from_item(raw)
    return holds, uses


def read_uses(customer_id: str, action: str) -> RecentUses:
    return read_limits(customer_id, action)[1][action]


def add_hold(
    uow: UnitOfWork, customer_id: str, lines: Iterable[tuple[str, int]], limits: HoldLimits
) -> None:
    """Count a new unpaid order's lines, unless that takes the customer past ``limits``."""
    names = {"#open": OPEN_ORDERS}
    values: dict[str, tables.RawItem] = {
        ":one": {"N": "1"},
        ":max_open": {"N": str(limits.max_open_orders)},
    }
    adds = ["#open :one"]
    conditions = ["(attribute_not_exists(#open) OR #open < :max_open)"]
    for i, (sku, quantity) in enumerate(lines):
        names[f"#u{i}"] = UNITS_PREFIX + sku
        values[f":q{i}"] = {"N": str(quantity)}
        values[f":cap{i}"] = {"N": str(limits.max_units_per_sku - quantity)}
        adds.append(f"#u{i} :q{i}")
        conditions.append(f"(attribute_not_exists(#u{i}) OR #u{i} <= :cap{i})")
    uow.update(
        holds_key(customer_id),
        "ADD " + ", ".join(adds),
        tag=("holds", customer_id),
        condition=" AND ".join(conditions),
        names=names,
        values=values,
    )


def add_release(uow: UnitOfWork, customer_id: str, lines: Iterable[tuple[str, int]]) -> None:
    """An unpaid order stops holding: paid, cancelled or expired."""
    names = {"#open": OPEN_ORDERS}
    values: dict[str, tables.RawItem] = {":minus_one": {"N": "-1"}}
    adds = ["#open :minus_one"]
    for i, (sku, quantity) in enumerate(lines):
        names[f"#u{i}"] = UNITS_PREFIX + sku
        values[f":q{i}"] = {"N": str(-quantity)}
        adds.append(f"#u{i} :q{i}")
    uow.update(
        holds_key(customer_id),
        "ADD " + ", ".join(adds),
        tag=("holds", customer_id),
        names=names,
        values=values,
    )


def add_use(
    uow: UnitOfWork,
    customer_id: str,
    rate: RateLimit,
    uses: RecentUses,
    *,
    at: datetime,
) -> None:
    """Take the next slot of ``rate`` (``RateLimited`` if none is free), if the use count is
    still the one read."""
    slot = uses.next_slot(rate, at)
    names = {"#n": COUNT, "#slot": f"s{slot}", "#ttl": tables.TTL_ATTRIBUTE}
    values = {
        ":next": {"N": str(uses.count + 1)},
        ":at": {"N": str(_epoch_ms(at))},
        ":ttl": {"N": str(int((at + rate.window + timedelta(minutes=1)).timestamp()))},
    }
    if uses.count == 0:
        condition = "attribute_not_exists(#n)"
    else:
        condition = "#n = :read"
        values[":read"] = {"N": str(uses.count)}
    uow.update(
        rate_key(customer_id, rate.action),
        "SET #n = :next, #slot = :at, #ttl = :ttl",
        tag=("rate", rate.action),
        condition=condition,
        names=names,
        values=values,
    )
