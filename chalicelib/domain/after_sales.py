"""After-sales: refunds, returns, exchanges and repairs of delivered goods (退换货、维修).

A request is its own thing with its own status; it never changes the order it is about.
Status only moves forward, along the flow of its type:

    requested -> approved | rejected | cancelled
    approved  -> refunded (refund_only) | return_in_transit | cancelled | closed
    return_in_transit -> received | cancelled
    received  -> refunded (return) | exchange_shipped (exchange) | repairing (repair)
    repairing -> repair_shipped
    exchange_shipped | repair_shipped -> completed

Who may ask for what, and until when after delivery, is the table below (windows are
configurable per product category; ``DEFAULT_WINDOWS`` are the defaults). The shop's fault
reasons make the shop pay return postage and give the shipping fee back when the whole
order comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import Conflict, InvalidInput, InvalidTransition
from chalicelib.domain.money import Money

MAX_LINES = 20
CLOSE_AFTER = timedelta(days=7)  # in ``approved`` without a return parcel


class AfterSalesType(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN = "return"
    EXCHANGE = "exchange"
    REPAIR = "repair"


class Reason(StrEnum):
    MISSING_ITEM = "missing_item"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    NOT_AS_DESCRIBED = "not_as_described"
    CHANGED_MIND = "changed_mind"
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"


class AfterSalesStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURN_IN_TRANSIT = "return_in_transit"
    RECEIVED = "received"
    REFUNDED = "refunded"
    EXCHANGE_SHIPPED = "exchange_shipped"
    REPAIRING = "repairing"
    REPAIR_SHIPPED = "repair_shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class Disposition(StrEnum):
    RESTOCK = "restock"
    WRITE_OFF = "write_off"


_T, _R, _S = AfterSalesType, Reason, AfterSalesStatus

SHOP_FAULT_REASONS = frozenset(
    {_R.DEFECTIVE, _R.DAMAGED_IN_TRANSIT, _R.WRONG_ITEM, _R.NOT_AS_DESCRIBED, _R.MISSING_ITEM}
)

# (type, reason) -> days after delivery. A pair that is missing is a reason not allowed.
DEFAULT_WINDOWS: Mapping[tuple[AfterSalesType, Reason], int] = {
    (_T.REFUND_ONLY, _R.MISSING_ITEM): 15,
    (_T.REFUND_ONLY, _R.DAMAGED_IN_TRANSIT): 15,
    (_T.REFUND_ONLY, _R.NOT_AS_DESCRIBED): 15,
    (_T.RETURN, _R.CHANGED_MIND): 7,
    (_T.RETURN, _R.DEFECTIVE): 15,
    (_T.RETURN, _R.DAMAGED_IN_TRANSIT): 15,
    (_T.RETURN, _R.WRONG_ITEM): 15,
    (_T.RETURN, _R.NOT_AS_DESCRIBED): 15,
    (_T.EXCHANGE, _R.DEFECTIVE): 15,
    (_T.EXCHANGE, _R.DAMAGED_IN_TRANSIT): 15,
    (_T.EXCHANGE, _R.WRONG_ITEM): 15,
    (_T.EXCHANGE, _R.CHANGED_MIND): 7,
    (_T.REPAIR, _R.DEFECTIVE): 365,
}

# Every status a type can reach, and the moves between them.
_COMMON: Mapping[AfterSalesStatus, frozenset[AfterSalesStatus]] = {
    _S.REQUESTED: frozenset({_S.APPROVED, _S.REJECTED, _S.CANCELLED}),
    _S.APPROVED: frozenset({_S.RETURN_IN_TRANSIT, _S.CANCELLED, _S.CLOSED}),
    _S.RETURN_IN_TRANSIT: frozenset({_S.RECEIVED, _S.CANCELLED}),
}
TRANSITIONS: Mapping[AfterSalesType, Mapping[AfterSalesStatus, frozenset[AfterSalesStatus]]] = {
    _T.REFUND_ONLY: {
        _S.REQUESTED: _COMMON[_S.REQUESTED],
        _S.APPROVED: frozenset({_S.REFUNDED}),
    },
    _T.RETURN: {**_COMMON, _S.RECEIVED: frozenset({_S.REFUNDED})},
    _T.EXCHANGE: {
        **_COMMON,
        _S.RECEIVED: frozenset({_S.EXCHANGE_SHIPPED}),
        _S.EXCHANGE_SHIPPED: frozenset({_S.COMPLETED}),
    },
    _T.REPAIR: {
        **_COMMON,
        _S.RECEIVED: frozenset({_S.REPAIRING}),
        _S.REPAIRING: frozenset({_S.REPAIR_SHIPPED}),
        _S.REPAIR_SHIPPED: frozenset({_S.COMPLETED}),
    },
}
FINAL_STATUSES = frozenset({_S.REJECTED, _S.REFUNDED, _S.COMPLETED, _S.CANCELLED, _S.CLOSED})
# Requests that no longer cover their units (the units may be asked about again).
RELEASING_STATUSES = frozenset({_S.REJECTED, _S.CANCELLED, _S.CLOSED})
# An exchange holds its replacement from approval until it ships.
HOLDING_REPLACEMENT = frozenset({_S.APPROVED, _S.RETURN_IN_TRANSIT, _S.RECEIVED})


class NotEligible(Conflict):
    """The request cannot be made; ``details.reason`` says why (and which line)."""

    code = "not_eligible"

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message, {"reason": reason, **details})

    @property
    def reason(self) -> str:
        return str(self.details["reason"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- windows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """Days after delivery per (type, reason); a category may override per type or per
    ``"type:reason"`` (e.g. ``{"electronics": {"repair": 730, "return:changed_mind": 7}}``).
    """

    overrides: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def days(self, kind: AfterSalesType, reason: Reason, category: str | None) -> int | None:
        default = DEFAULT_WINDOWS.get((kind, reason))
        if default is None:
            return None
        own = self.overrides.get(category or "", {})
        specific = own.get(f"{kind.value}:{reason.value}")
        if specific is not None:
            return int(specific)
        general = own.get(kind.value)
        return int(general) if general is not None else default


def reason_allowed(kind: AfterSalesType, reason: Reason) -> bool:
    return (kind, reason) in DEFAULT_WINDOWS


def is_shop_fault(reason: Reason) -> bool:
    return reason in SHOP_FAULT_REASONS


# --- lines and eligibility -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestLine:
    sku: str
    quantity: int
    reason: Reason
    exchange_sku: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sku": self.sku,
            "quantity": self.quantity,
            "reason": self.reason.value,
        }
        if self.exchange_sku is not None:
            body["exchange_sku"] = self.exchange_sku
        return body


@dataclass(frozen=True, slots=True)
class DeliveredLine:
    """What the order delivered of one SKU: how many, at what price, when (the last
    parcel carrying it), and the product's category (for its windows)."""

    sku: str
    quantity: int
    unit_price: Money
    delivered_at: datetime
    category: str | None = None


def check_eligibility(
    kind: AfterSalesType,
    lines: Sequence[RequestLine],
    *,
    delivered: Mapping[str, DeliveredLine],
    covered: Mapping[str, int],
    exchange_prices: Mapping[str, Money],
    now: datetime,
    windows: WindowPolicy | None = None,
) -> None:
    """Raise ``NotEligible`` for the first rule a line breaks.

    ``covered`` is the quantity per SKU other open or completed requests already cover;
    ``exchange_prices`` the current price of each replacement SKU that is for sale.
    """
    windows = windows or WindowPolicy()
    if not delivered:
        raise NotEligible("not_delivered", "Nothing of this order has been delivered yet.")
    for line in lines:
        if not reason_allowed(kind, line.reason):
            raise NotEligible(
                "reason_not_allowed",
                f"A {kind.value} request cannot give the reason {line.reason.value}.",
                sku=line.sku,
            )
        got = delivered.get(line.sku)
        if got is None:
            raise NotEligible("not_delivered", f"{line.sku} has not been delivered.", sku=line.sku)
        days = windows.days(kind, line.reason, got.category)
        assert days is not None  # the reason is allowed
        closes = got.delivered_at + timedelta(days=days)
        if now > closes:
            raise NotEligible(
                "window_closed",
                f"The {days}-day window for {line.sku} closed at {_iso(closes)}.",
                sku=line.sku,
                closed_at=_iso(closes),
            )
        eligible = got.quantity - covered.get(line.sku, 0)
        if line.quantity > eligible:
            raise NotEligible(
                "quantity_exceeds_eligible",
                f"At most {max(0, eligible)} of {line.sku} can still be asked about.",
                sku=line.sku,
                eligible=max(0, eligible),
            )
        if kind is AfterSalesType.EXCHANGE:
            # The same SKU again is always a like-for-like swap, whatever it costs today.
            wanted = line.exchange_sku or line.sku
            price = exchange_prices.get(wanted)
            if wanted != line.sku and (price is None or price != got.unit_price):
                raise NotEligible(
                    "different_price",
                    f"{wanted} cannot replace {line.sku}: an exchange is for the same price.",
                    sku=line.sku,
                    exchange_sku=wanted,
                )


# --- refunds -------------------------------------------------------------------------------


def refund_share(
    lines: Sequence[tuple[str, int, Reason]],
    *,
    unit_prices: Mapping[str, Money],
    ordered: Mapping[str, int],
    returned_before: Mapping[str, int],
    shipping_fee: Money,
    refundable: Money | None,
) -> Money:
    """What to give back for ``lines`` (sku, quantity, reason): their price, plus the
    shipping fee when every line is the shop's fault and, with what other requests took
    back (``returned_before``), the whole order has come back; never more than
    ``refundable`` (captured minus refunded) when that is known."""
    amount = Money.zero(shipping_fee.currency)
    for sku, quantity, _ in lines:
        amount = amount + unit_prices[sku].times(quantity)
    this = {sku: 0 for sku in ordered}
    for sku, quantity, _ in lines:
        this[sku] = this.get(sku, 0) + quantity
    whole_order = all(
        this.get(sku, 0) + returned_before.get(sku, 0) >= quantity
        for sku, quantity in ordered.items()
    )
    if whole_order and lines and all(is_shop_fault(reason) for _, _, reason in lines):
        amount = amount + shipping_fee
    if refundable is not None and amount > refundable:
        amount = refundable if not refundable.is_negative() else Money.zero(amount.currency)
    return amount


# --- the request ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    status: str
    at: datetime
    actor: str
    note: str | None = None
    from_status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_status,
            "status": self.status,
            "at": _iso(self.at),
            "actor": self.actor,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Held:
    """Stock held for a request (its replacement), or received back, per warehouse."""

    sku: str
    warehouse: str
    quantity: int
    # The shard of a sharded level a replacement is held on (0 for an unsharded level).
    shard: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "warehouse": self.warehouse, "quantity": self.quantity}


@dataclass(frozen=True, slots=True)
class ReceivedLine:
    sku: str
    quantity: int
    disposition: Disposition

    def as_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "quantity": self.quantity, "disposition": self.disposition.value}


@dataclass(frozen=True, slots=True)
class AfterSalesRequest:
    request_id: str
    order_id: str
    customer_id: str
    type: AfterSalesType
    status: AfterSalesStatus
    lines: tuple[RequestLine, ...]
    description: str
    created_at: datetime
    updated_at: datetime
    timeline: tuple[TimelineEntry, ...]
    photos: tuple[str, ...] = ()
    refund_estimate: Money | None = None
    return_shipment: Mapping[str, Any] | None = None
    return_warehouse: str | None = None
    replacement: tuple[Held, ...] = ()
    received: tuple[ReceivedLine, ...] = ()
    refund_id: str | None = None
    refund_amount: Money | None = None  # what was actually owed back (pending until settled)
    outbound_shipment: Mapping[str, Any] | None = None
    version: int = 1

    @classmethod
    def open(
        cls,
        *,
        request_id: str,
        order_id: str,
        customer_id: str,
        kind: AfterSalesType,
        lines: Sequence[RequestLine],
        description: str,
        photos: Sequence[str] = (),
        refund_estimate: Money | None,
        at: datetime,
    ) -> AfterSalesRequest:
        return cls(
            request_id=request_id,
            order_id=order_id,
            customer_id=customer_id,
            type=kind,
            status=AfterSalesStatus.REQUESTED,
            lines=tuple(lines),
            description=description,
            photos=tuple(photos),
            refund_estimate=refund_estimate,
            created_at=at,
            updated_at=at,
            timeline=(TimelineEntry(AfterSalesStatus.REQUESTED.value, at, customer_id),),
        )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def covers_units(self) -> bool:
        """Open or completed requests cover their units against new requests."""
        return self.status not in RELEASING_STATUSES

    @property
    def holds_replacement(self) -> bool:
        return bool(self.replacement) and self.status in HOLDING_REPLACEMENT

    @property
    def completed_at(self) -> datetime | None:
        if self.status not in (AfterSalesStatus.REFUNDED, AfterSalesStatus.COMPLETED):
            return None
        return self.timeline[-1].at

    def quantities(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for line in self.lines:
            counted[line.sku] = counted.get(line.sku, 0) + line.quantity
        return counted

    def can_move_to(self, target: AfterSalesStatus) -> bool:
        return target in TRANSITIONS[self.type].get(self.status, frozenset())

    def transition(
        self,
        to: AfterSalesStatus | str,
        *,
        at: datetime,
        actor: str,
        note: str | None = None,
        **changes: Any,
    ) -> AfterSalesRequest:
        """One legal step forward (``InvalidTransition`` otherwise), with a timeline entry."""
        try:
            target = AfterSalesStatus(to)
        except ValueError:
            raise InvalidTransition.between(self.status, str(to)) from None
        if not self.can_move_to(target):
            raise InvalidTransition.between(self.status, target)
        entry = TimelineEntry(target.value, at, actor, note, self.status.value)
        return replace(
            self,
            status=target,
            timeline=(*self.timeline, entry),
            updated_at=at,
            version=self.version + 1,
            **changes,
        )

    def is_due_to_close(self, now: datetime) -> bool:
        return (
            self.status is AfterSalesStatus.APPROVED
            and self.type is not AfterSalesType.REFUND_ONLY
            and self.return_shipment is None
            and now >= self.timeline[-1].at + CLOSE_AFTER
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "type": self.type.value,
            "status": self.status.value,
            "lines": [line.as_dict() for line in self.lines],
            "description": self.description,
            "photos": list(self.photos),
            "refund_estimate": self.refund_estimate.as_dict() if self.refund_estimate else None,
            "return_shipment": dict(self.return_shipment) if self.return_shipment else None,
            "return_warehouse": self.return_warehouse,
            "replacement": [held.as_dict() for held in self.replacement],
            "received": [line.as_dict() for line in self.received],
            "refund_id": self.refund_id,
            "refund_amount": self.refund_amount.as_dict() if self.refund_amount else None,
            "outbound_shipment": (dict(self.outbound_shipment) if self.outbound_shipment else None),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "timeline": [entry.as_dict() for entry in self.timeline],
        }


def check_receipt(request: AfterSalesRequest, received: Sequence[ReceivedLine]) -> None:
    """Every received line is one the request sent back, in no more than its quantity."""
    wanted = request.quantities()
    got: dict[str, int] = {}
    for line in received:
        got[line.sku] = got.get(line.sku, 0) + line.quantity
    for sku, quantity in got.items():
        if sku not in wanted:
            raise InvalidInput(
                f"{sku} is not part of this request.", [{"field": "lines", "sku": sku}]
            )
        if quantity > wanted[sku]:
            raise InvalidInput(
                f"At most {wanted[sku]} of {sku} come back with this request.",
                [{"field": "lines", "sku": sku}],
            )
