"""Orders: what was bought, at what price, from which warehouses, and where it stands.

An ``Order`` is immutable; every change returns a new one with ``version`` bumped and the
change appended to ``history``, so the store can write it conditionally on the version (or
status) it read. Status only moves forward:

    pending_payment -> paid -> picking -> packed -> shipped -> out_for_delivery
                    -> delivered -> completed           (ends: cancelled, expired)

Each allocated warehouse gives one ``Shipment`` with its own status
(pending -> picking -> packed -> shipped -> out_for_delivery -> delivered). Once paid, the
order's status is that of its least advanced shipment, so a split order is never
"delivered" until every parcel is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain import places
from chalicelib.domain.allocation import Allocation, AllocationPlan, Line
from chalicelib.domain.catalogue import Location
from chalicelib.domain.errors import InvalidInput, InvalidTransition, NotFound, UnknownSku
from chalicelib.domain.money import Money

MAX_LINES_PER_ORDER = 20
MAX_QUANTITY_PER_LINE = 999
DEFAULT_PAYMENT_WINDOW = timedelta(minutes=15)


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ShipmentStatus(StrEnum):
    PENDING = "pending"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"  # only together with its order, before it shipped


_O = OrderStatus
_S = ShipmentStatus

ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _O.PENDING_PAYMENT: frozenset({_O.PAID, _O.CANCELLED, _O.EXPIRED}),
    _O.PAID: frozenset({_O.PICKING, _O.CANCELLED}),
    _O.PICKING: frozenset({_O.PACKED, _O.CANCELLED}),
    _O.PACKED: frozenset({_O.SHIPPED, _O.CANCELLED}),
    # Carriers do not always report "out for delivery" before "delivered".
    _O.SHIPPED: frozenset({_O.OUT_FOR_DELIVERY, _O.DELIVERED}),
    _O.OUT_FOR_DELIVERY: frozenset({_O.DELIVERED}),
    _O.DELIVERED: frozenset({_O.COMPLETED}),
    _O.COMPLETED: frozenset(),
    _O.CANCELLED: frozenset(),
    _O.EXPIRED: frozenset(),
}

SHIPMENT_TRANSITIONS: Mapping[ShipmentStatus, frozenset[ShipmentStatus]] = {
    _S.PENDING: frozenset({_S.PICKING, _S.CANCELLED}),
    _S.PICKING: frozenset({_S.PACKED, _S.CANCELLED}),
    _S.PACKED: frozenset({_S.SHIPPED, _S.CANCELLED}),
    _S.SHIPPED: frozenset({_S.OUT_FOR_DELIVERY, _S.DELIVERED}),
    _S.OUT_FOR_DELIVERY: frozenset({_S.DELIVERED}),
    _S.DELIVERED: frozenset(),
    _S.CANCELLED: frozenset(),
}

# Forward order of a shipment's life, and the order status each stage means once paid.
_SHIPMENT_PROGRESS = (
    _S.PENDING,
    _S.PICKING,
    _S.PACKED,
    _S.SHIPPED,
    _S.OUT_FOR_DELIVERY,
    _S.DELIVERED,
)
_ORDER_STATUS_FOR_SHIPMENT = {
    _S.PENDING: _O.PAID,
    _S.PICKING: _O.PICKING,
    _S.PACKED: _O.PACKED,
    _S.SHIPPED: _O.SHIPPED,
    _S.OUT_FOR_DELIVERY: _O.OUT_FOR_DELIVERY,
    _S.DELIVERED: _O.DELIVERED,
}
_SHIPMENT_STATUS_FOR_ORDER = {
    order: shipment for shipment, order in _ORDER_STATUS_FOR_SHIPMENT.items()
}
_SHIPPED_OR_LATER = frozenset({_S.SHIPPED, _S.OUT_FOR_DELIVERY, _S.DELIVERED})
_FULFILMENT = frozenset({_O.PAID, _O.PICKING, _O.PACKED, _O.SHIPPED, _O.OUT_FOR_DELIVERY})
TERMINAL_STATUSES = frozenset({_O.COMPLETED, _O.CANCELLED, _O.EXPIRED})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class ShippingAddress:
    name: str
    phone: str
    country: str
    region: str
    city: str
    line1: str
    postcode: str
    location: Location | None = None

    @property
    def destination(self) -> Location | None:
        """Where to measure warehouse distances to: the given point, else the city's, else
        the region capital's; None for a place we do not know (no distance preference)."""
        if self.location is not None:
            return self.location
        return places.locate(self.city, self.region)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "phone": self.phone,
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "line1": self.line1,
            "postcode": self.postcode,
        }
        if self.location is not None:
            body["location"] = {"lat": self.location.lat, "lon": self.location.lon}
        return body


@dataclass(frozen=True, slots=True)
class ShippingFeeRule:
    """Free shipping at or above ``free_from`` (if set); otherwise a flat fee per shipment."""

    fee_per_shipment: Money
    free_from: Money | None = None

    def __post_init__(self) -> None:
        if self.fee_per_shipment.is_negative():
            raise InvalidInput("The shipping fee must not be negative.")
        if self.free_from is not None and self.free_from.currency != self.fee_per_shipment.currency:
            raise InvalidInput("The free-shipping threshold and the fee need one currency.")

    def fee(self, subtotal: Money, shipments: int) -> Money:
        if self.free_from is not None and subtotal >= self.free_from:
            return Money.zero(subtotal.currency)
        if subtotal.currency != self.fee_per_shipment.currency:
            raise InvalidInput(
                f"Shipping is charged in {self.fee_per_shipment.currency}, "
                f"the order is in {subtotal.currency}."
            )
        return self.fee_per_shipment.times(shipments)


# Free from 99.00 CNY, else 10.00 CNY per parcel; deployments configure their own.
DEFAULT_SHIPPING_FEE_RULE = ShippingFeeRule(
    fee_per_shipment=Money(1000, "CNY"), free_from=Money(9900, "CNY")
)


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Money  # from the catalogue at order time, never from the client
    allocations: tuple[Allocation, ...]

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "unit_price": self.unit_price.as_dict(),
            "line_total": self.line_total.as_dict(),
            "allocations": [a.as_dict() for a in self.allocations],
        }


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Shipment:
    shipment_id: str
    warehouse: str
    status: ShipmentStatus
    lines: tuple[ShipmentLine, ...]

    @property
    def has_shipped(self) -> bool:
        return self.status in _SHIPPED_OR_LATER

    def as_dict(self) -> dict[str, Any]:
        return {
            "shipment_id": self.shipment_id,
            "warehouse": self.warehouse,
            "status": self.status.value,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in self.lines],
        }


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of an order's history; ``shipment_id`` is set for a shipment's own change."""

    from_status: str | None
    to_status: str
    at: datetime
    actor: str
    reason: str | None = None
    shipment_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": self.from_status,
            "to": self.to_status,
            "at": _iso(self.at),
            "actor": self.actor,
            "reason": self.reason,
        }
        if self.shipment_id is not None:
            body["shipment_id"] = self.shipment_id
        return body


def require_prices(lines: Sequence[Line], prices: Mapping[str, Money]) -> dict[str, Money]:
    """Each line's unit price from the catalogue; ``UnknownSku`` names every SKU without one.

    ``prices`` holds only products that exist and are active.
    """
    unknown = [line.sku for line in lines if line.sku not in prices]
    if unknown:
        raise UnknownSku(unknown)
    return {line.sku: prices[line.sku] for line in lines}


def _validate_lines(lines: Sequence[Line]) -> None:
    if not 1 <= len(lines) <= MAX_LINES_PER_ORDER:
        raise InvalidInput(f"An order has 1 to {MAX_LINES_PER_ORDER} lines.")
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise InvalidInput("Each SKU may appear on one line only.")
    for line in lines:
        quantity = line.quantity
        if (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 1 <= quantity <= MAX_QUANTITY_PER_LINE
        ):
            raise InvalidInput(f"Quantity of {line.sku} must be 1 to {MAX_QUANTITY_PER_LINE}.")


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    shipments: tuple[Shipment, ...]
    shipping_address: ShippingAddress
    subtotal: Money
    shipping_fee: Money
    total: Money
    created_at: datetime
    updated_at: datetime
    expires_at: datetime  # until then an unpaid order holds its stock
    history: tuple[StatusChange, ...]
    note: str | None = None
    version: int = 1

    # -- creation ------------------------------------------------------------------------

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        customer_id: str,
        lines: Sequence[Line],
        prices: Mapping[str, Money],
        plan: AllocationPlan,
        shipping_address: ShippingAddress,
        fee_rule: ShippingFeeRule,
        at: datetime,
        payment_window: timedelta = DEFAULT_PAYMENT_WINDOW,
        note: str | None = None,
        actor: str | None = None,
    ) -> Order:
        """A new ``pending_payment`` order priced from ``prices`` and shipped per ``plan``."""
        _require_aware(at, "at")
        _validate_lines(lines)
        unit_prices = require_prices(lines, prices)
        currencies = {price.currency for price in unit_prices.values()}
        if len(currencies) != 1:
            raise InvalidInput(f"An order is priced in one currency, got {sorted(currencies)}.")
        for line in lines:
            if sum(a.quantity for a in plan.for_sku(line.sku)) != line.quantity:
                raise ValueError(f"The allocation plan does not cover {line.sku} exactly")
        if {a.sku for a in plan.allocations} - set(unit_prices):
            raise ValueError("The allocation plan allocates SKUs the order does not have")

        order_lines = tuple(
            OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=unit_prices[line.sku],
                allocations=plan.for_sku(line.sku),
            )
            for line in lines
        )
        shipments = tuple(
            Shipment(
                shipment_id=f"{order_id}-{number}",
                warehouse=warehouse,
                status=ShipmentStatus.PENDING,
                lines=tuple(ShipmentLine(a.sku, a.quantity) for a in plan.for_warehouse(warehouse)),
            )
            for number, warehouse in enumerate(plan.warehouses, start=1)
        )
        subtotal = Money.total((line.line_total for line in order_lines), currencies.pop())
        shipping_fee = fee_rule.fee(subtotal, len(shipments))
        return cls(
            order_id=order_id,
            customer_id=customer_id,
            status=OrderStatus.PENDING_PAYMENT,
            lines=order_lines,
            shipments=shipments,
            shipping_address=shipping_address,
            subtotal=subtotal,
            shipping_fee=shipping_fee,
            total=subtotal + shipping_fee,
            created_at=at,
            updated_at=at,
            expires_at=at + payment_window,
            history=(
                StatusChange(
                    None, OrderStatus.PENDING_PAYMENT.value, at, actor or customer_id, "placed"
                ),
            ),
            note=note,
        )

    # -- questions -----------------------------------------------------------------------

    @property
    def allocations(self) -> tuple[Allocation, ...]:
        """Every (SKU, warehouse, quantity) this order holds stock for."""
        return tuple(a for line in self.lines for a in line.allocations)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def has_shipped_anything(self) -> bool:
        return any(s.has_shipped for s in self.shipments)

    @property
    def can_cancel_by_owner(self) -> bool:
        """An owner may cancel until the first parcel leaves a warehouse."""
        cancellable = OrderStatus.CANCELLED in ORDER_TRANSITIONS[self.status]
        return cancellable and not self.has_shipped_anything

    def is_owned_by(self, user_id: str) -> bool:
        return self.customer_id == user_id

    def is_due_to_expire(self, now: datetime) -> bool:
        return self.status is OrderStatus.PENDING_PAYMENT and now >= self.expires_at

    def shipment(self, shipment_id: str) -> Shipment:
        for shipment in self.shipments:
            if shipment.shipment_id == shipment_id:
                return shipment
        raise NotFound(
            f"Shipment {shipment_id} is not part of order {self.order_id}.",
            {"order_id": self.order_id, "shipment_id": shipment_id},
        )

    # -- changes -------------------------------------------------------------------------

    def transition(
        self,
        *,
        to: OrderStatus | str,
        at: datetime,
        actor: str,
        reason: str | None = None,
    ) -> Order:
        """Move the order one legal step forward, or raise ``InvalidTransition``.

        Moving a paid order to a fulfilment status (picking ... delivered) brings every
        shipment that is behind it along; cancelling cancels every shipment and is refused
        once anything has shipped; expiring is refused before ``expires_at``.
        """
        _require_aware(at, "at")
        target = _order_status(to)
        if target not in ORDER_TRANSITIONS[self.status]:
            raise InvalidTransition.between(self.status, target)
        if target is OrderStatus.CANCELLED and self.has_shipped_anything:
            raise InvalidTransition.between(self.status, target, "part of it has shipped")
        if target is OrderStatus.EXPIRED and at < self.expires_at:
            raise InvalidTransition.between(self.status, target, "its payment window is open")

        # Shipments of an order that ends unfulfilled will never leave the warehouse.
        ends_unfulfilled = target in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
        shipment_target = (
            ShipmentStatus.CANCELLED if ends_unfulfilled else _SHIPMENT_STATUS_FOR_ORDER.get(target)
        )
        shipments = list(self.shipments)
        changes: list[StatusChange] = []
        # Paying leaves shipments pending; other fulfilment steps bring lagging ones along.
        if shipment_target not in (None, ShipmentStatus.PENDING):
            for index, shipment in enumerate(shipments):
                if not _is_behind(shipment.status, shipment_target):
                    continue
                if shipment_target not in SHIPMENT_TRANSITIONS[shipment.status]:
                    raise InvalidTransition.between(shipment.status, shipment_target)
                shipments[index] = replace(shipment, status=shipment_target)
                changes.append(
                    StatusChange(
                        shipment.status.value,
                        shipment_target.value,
                        at,
                        actor,
                        reason,
                        shipment.shipment_id,
                    )
                )
        changes.append(StatusChange(self.status.value, target.value, at, actor, reason))
        return self._changed(status=target, shipments=tuple(shipments), changes=changes, at=at)

    def advance_shipment(
        self,
        shipment_id: str,
        *,
        to: ShipmentStatus | str,
        at: datetime,
        actor: str,
        reason: str | None = None,
    ) -> Order:
        """Move one shipment forward; the order follows its least advanced shipment."""
        _require_aware(at, "at")
        target = _shipment_status(to)
        shipment = self.shipment(shipment_id)
        if self.status not in _FULFILMENT or target is ShipmentStatus.CANCELLED:
            raise InvalidTransition.between(
                shipment.status, target, f"the order is {self.status.value}"
            )
        if target not in SHIPMENT_TRANSITIONS[shipment.status]:
            raise InvalidTransition.between(shipment.status, target)
        shipments = tuple(
            replace(s, status=target) if s.shipment_id == shipment_id else s for s in self.shipments
        )
        changes = [
            StatusChange(shipment.status.value, target.value, at, actor, reason, shipment_id)
        ]
        status = _least_advanced(shipments)
        if status is not self.status:
            changes.append(StatusChange(self.status.value, status.value, at, actor, reason))
        return self._changed(status=status, shipments=shipments, changes=changes, at=at)

    def cancel(self, *, at: datetime, actor: str, reason: str | None = None) -> Order:
        """Cancel; an already cancelled order is returned unchanged (the same object)."""
        if self.status is OrderStatus.CANCELLED:
            return self
        return self.transition(to=OrderStatus.CANCELLED, at=at, actor=actor, reason=reason)

    def expire(self, *, at: datetime, actor: str = "system") -> Order:
        return self.transition(
            to=OrderStatus.EXPIRED, at=at, actor=actor, reason="payment window closed"
        )

    def extend_expiry(self, until: datetime, *, at: datetime) -> Order:
        """Hold the stock longer while a payment is pending; never shortens the hold."""
        _require_aware(until, "until")
        if self.status is not OrderStatus.PENDING_PAYMENT:
            raise InvalidTransition(
                f"Only an unpaid order's hold can be extended; this one is {self.status.value}.",
                {"from": self.status.value, "to": self.status.value},
            )
        if until <= self.expires_at:
            return self
        return replace(self, expires_at=until, updated_at=at, version=self.version + 1)

    def _changed(
        self,
        *,
        status: OrderStatus,
        shipments: tuple[Shipment, ...],
        changes: list[StatusChange],
        at: datetime,
    ) -> Order:
        return replace(
            self,
            status=status,
            shipments=shipments,
            history=(*self.history, *changes),
            updated_at=at,
            version=self.version + 1,
        )

    # -- wire shape ----------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The order as the API returns it."""
        return {
            "order_id": self.order_id,
            "status": self.status.value,
            "customer_id": self.customer_id,
            "lines": [line.as_dict() for line in self.lines],
            "shipments": [shipment.as_dict() for shipment in self.shipments],
            "shipping_address": self.shipping_address.as_dict(),
            "subtotal": self.subtotal.as_dict(),
            "shipping_fee": self.shipping_fee.as_dict(),
            "total": self.total.as_dict(),
            "note": self.note,
            "expires_at": _iso(self.expires_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "history": [change.as_dict() for change in self.history],
        }


def _order_status(value: OrderStatus | str) -> OrderStatus:
    try:
        return OrderStatus(value)
    except ValueError:
        raise InvalidInput(f"Unknown order status {value!r}.") from None


def _shipment_status(value: ShipmentStatus | str) -> ShipmentStatus:
    try:
        return ShipmentStatus(value)
    except ValueError:
        raise InvalidInput(f"Unknown shipment status {value!r}.") from None


def _is_behind(current: ShipmentStatus, target: ShipmentStatus) -> bool:
    if target is ShipmentStatus.CANCELLED:
        return current is not ShipmentStatus.CANCELLED
    if current is ShipmentStatus.CANCELLED:
        return False
    return _SHIPMENT_PROGRESS.index(current) < _SHIPMENT_PROGRESS.index(target)


def _least_advanced(shipments: Sequence[Shipment]) -> OrderStatus:
    slowest = min(shipments, key=lambda s: _SHIPMENT_PROGRESS.index(s.status))
    return _ORDER_STATUS_FOR_SHIPMENT[slowest.status]
