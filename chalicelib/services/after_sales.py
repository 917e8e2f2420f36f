"""After-sales use cases: ask, approve, reject, cancel, receive, refund, and close the
forgotten ones. The parcels (the one sent back, the replacement or repaired goods going
out, and their tracking) are in ``after_sales_parcels``; the exchange's replacement stock
is in ``after_sales_replacement``. Both change a request through ``change`` here.

Every status change is one transaction: the request written conditionally on the status
and version it was read with, its ``after_sales.<status>`` event, and whatever the change
moves — the order's coverage (units under requests), stock with its ledger entries
(``returned``, ``written_off``, the replacement's ``reserved`` / ``released`` /
``shipped`` under the request's id), and the refund it owes (``pending``, sent by the
``refund.pending`` consumer). A lost race reads again and plans again; a move the flow does
not allow is 409 ``invalid_transition``. The order itself is never written.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import after_sales as rules
from chalicelib.domain import inventory as stock_rules
from chalicelib.domain.after_sales import (
    AfterSalesRequest,
    AfterSalesStatus,
    AfterSalesType,
    DeliveredLine,
    Disposition,
    Held,
    ReceivedLine,
    RequestLine,
)
from chalicelib.domain.catalogue import ID_PATTERN, Product
from chalicelib.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from chalicelib.domain.identifiers import sortable_id
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderStatus, ShipmentStatus
from chalicelib.domain.paging import MAX_PAGE_SIZE
from chalicelib.domain.payments import Payment, Refund
from chalicelib.observability import logger
from chalicelib.services import after_sales_replacement, orders, refunds, stock, uploads
from chalicelib.settings import get_settings
from chalicelib.store import after_sales as store
from chalicelib.store import catalogue as catalogue_store
from chalicelib.store import inventory as inventory_store
from chalicelib.store import orders as orders_store
from chalicelib.store import outbox, tables
from chalicelib.store import payments as payments_store
from chalicelib.store.pagination import Page
from chalicelib.store.unit_of_work import TransactionCancelled, UnitOfWork

ATTEMPTS = 5
SYSTEM_ACTOR = "system"
EVENT_PREFIX = "after_sales."
CLOSE_BATCH = 100
_S = AfterSalesStatus


def _now() -> datetime:
    return datetime.now(UTC)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.01 * 2**attempt)))


def windows() -> rules.WindowPolicy:
    raw = get_settings().after_sales_windows.strip()
    return rules.WindowPolicy(json.loads(raw) if raw else {})


class RequestNotFound(NotFound):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"After-sales request {request_id} was not found.", {"request_id": request_id}
        )


def event_payload(request: AfterSalesRequest, *, previous: str | None, **extra: Any) -> dict:
    last = request.timeline[-1]
    return {
        "request_id": request.request_id,
        "order_id": request.order_id,
        "customer_id": request.customer_id,
        "type": request.type.value,
        "status": request.status.value,
        "previous_status": previous,
        "actor": last.actor,
        "note": last.note,
        "lines": [line.as_dict() for line in request.lines],
        "refund_estimate": request.refund_estimate.as_dict() if request.refund_estimate else None,
        **extra,
    }


def _add_events(
    uow: UnitOfWork, before: AfterSalesRequest | None, after: AfterSalesRequest
) -> None:
    """One ``after_sales.<status>`` event per status the change passed through."""
    start = len(before.timeline) if before is not None else 0
    for entry in after.timeline[start:]:
        outbox.add_event(
            uow,
            EVENT_PREFIX + entry.status,
            {
                **event_payload(after, previous=entry.from_status),
                "status": entry.status,
                "actor": entry.actor,
                "note": entry.note,
            },
            occurred_at=entry.at,
        )


# --- reading -------------------------------------------------------------------------------


def get_request(request_id: str, *, viewer_id: str, staff: bool) -> AfterSalesRequest:
    request = store.get_request(request_id) if rules_id_ok(request_id) else None
    if request is None or not (staff or request.customer_id == viewer_id):
        raise RequestNotFound(request_id)
    return request


def rules_id_ok(value: str) -> bool:
    return bool(ID_PATTERN.fullmatch(value))


def requests_of_order(order_id: str, *, viewer_id: str, staff: bool) -> list[AfterSalesRequest]:
    orders.get_order(order_id, viewer_id=viewer_id, staff=staff)  # 404 for others
    coverage = store.get_coverage(order_id)
    return store.get_requests(coverage.request_ids) if coverage.request_ids else []


def list_requests(
    *, status: str | None, kind: str | None, cursor: str | None, limit: int
) -> Page[AfterSalesRequest]:
    statuses = [status] if status else [s.value for s in AfterSalesStatus]
    return store.requests_page(
        statuses, kind=kind, limit=max(1, min(limit, MAX_PAGE_SIZE)), cursor=cursor
    )


# --- creating ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Creation:
    request_id: str
    body: dict[str, Any]
    replayed: bool = False


def products_of(skus: Sequence[str]) -> dict[str, Product]:
    found = tables.batch_get([catalogue_store.product_key(sku) for sku in set(skus)])
    products = [catalogue_store.product_from_item(raw) for raw in found]
    return {p.sku: p for p in products}


def delivered_lines(order: Order, products: dict[str, Product]) -> dict[str, DeliveredLine]:
    """What the order delivered, per SKU: units in delivered parcels, the price paid, and
    when the last of those parcels arrived."""
    prices = {line.sku: line.unit_price for line in order.lines}
    order_delivered = [c.at for c in order.history if c.to_status == OrderStatus.DELIVERED.value]
    quantities: dict[str, int] = {}
    arrived: dict[str, datetime] = {}
    for shipment in order.shipments:
        if shipment.status is not ShipmentStatus.DELIVERED:
            continue
        moments = (
            [
                c.at
                for c in order.history
                if c.shipment_id == shipment.shipment_id
                and c.to_status == ShipmentStatus.DELIVERED.value
            ]
            or order_delivered
            or [order.updated_at]
        )
        for line in shipment.lines:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
            arrived[line.sku] = max(arrived.get(line.sku, moments[-1]), moments[-1])
    return {
        sku: DeliveredLine(
            sku,
            quantity,
            prices[sku],
            arrived[sku],
            products[sku].category if sku in products else None,
        )
        for sku, quantity in quantities.items()
    }


def _captured(order_id: str) -> list[Payment]:
    payments = [p for p in payments_store.order_payments(order_id) if p.is_captured]
    return sorted(payments, key=lambda p: (p.review is not None, p.created_at))


def _refundable(payments: Sequence[Payment], currency: str) -> Money:
    return Money.total((p.refundable for p in payments if p.amount.currency == currency), currency)


def _refund_for(
    order: Order,
    lines: Sequence[tuple[str, int, rules.Reason]],
    coverage: store.Coverage,
    payments: Sequence[Payment],
) -> Money:
    return rules.refund_share(
        lines,
        unit_prices={line.sku: line.unit_price for line in order.lines},
        ordered={line.sku: line.quantity for line in order.lines},
        returned_before=coverage.returned,
        shipping_fee=order.shipping_fee,
        refundable=_refundable(payments, order.total.currency),
    )


def create_request(
    customer_id: str,
    order_id: str,
    *,
    kind: AfterSalesType,
    lines: Sequence[RequestLine],
    description: str,
    photos: Sequence[str] = (),
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Creation:
    """Open a request on a delivered order of the caller's (409 ``not_eligible`` with the
    reason otherwise). The same Idempotency-Key and body answer with the first request.
    Photos must be the customer's own uploads (400 ``unknown_upload``)."""
    order = orders.get_order(order_id, viewer_id=customer_id, staff=False)
    uploads.require_own_uploads(customer_id, photos)
    fingerprint = orders_store.request_hash(
        {
            "type": kind.value,
            "lines": [line.as_dict() for line in lines],
            "description": description,
            "photos": list(photos),
        }
    )
    request_id = sortable_id("afs_", now)
    skus = [line.sku for line in order.lines] + [
        line.exchange_sku for line in lines if line.exchange_sku
    ]
    for attempt in range(ATTEMPTS):
        at = now or _now()
        if idempotency_key is not None:
            record = store.get_creation_key(customer_id, idempotency_key, order_id)
            if record is not None and at < record.expires_at:
                if record.request_hash != fingerprint:
                    raise IdempotencyKeyReused(details={"request_id": record.request_id})
                return Creation(record.request_id, record.response, replayed=True)
        products = products_of(skus)
        coverage = store.get_coverage(order_id)
        rules.check_eligibility(
            kind,
            lines,
            delivered=delivered_lines(order, products),
            covered=coverage.covered,
            exchange_prices={sku: p.price for sku, p in products.items() if p.active},
            now=at,
            windows=windows(),
        )
        estimate = None
        if kind in (AfterSalesType.RETURN, AfterSalesType.REFUND_ONLY):
            estimate = _refund_for(
                order,
                [(line.sku, line.quantity, line.reason) for line in lines],
                coverage,
                _captured(order_id),
            )
        request = AfterSalesRequest.open(
            request_id=request_id,
            order_id=order_id,
            customer_id=customer_id,
            kind=kind,
            lines=lines,
            description=description,
            photos=photos,
            refund_estimate=estimate,
            at=at,
        )
        body = request.as_dict()
        covered = dict(coverage.covered)
        for sku, quantity in request.quantities().items():
            covered[sku] = covered.get(sku, 0) + quantity
        uow = UnitOfWork()
        store.add_new_request(uow, request)
        store.add_coverage_change(
            uow,
            replace(coverage, request_ids=(*coverage.request_ids, request_id), covered=covered),
            previous=coverage,
        )
        if idempotency_key is not None:
            store.add_creation_key(
                uow,
                store.CreationKey(
                    customer_id,
                    idempotency_key,
                    order_id,
                    fingerprint,
                    request_id,
                    body,
                    at + store.IDEMPOTENCY_RETENTION,
                ),
                at=at,
            )
        _add_events(uow, None, request)
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)  # another request of the order (or this key) landed: look again
            continue
        logger.info("after-sales request opened", extra={"request_id": request_id})
        return Creation(request_id, body)
    raise Conflict(f"Order {order_id} is changing too quickly; try again.")


# --- changing ------------------------------------------------------------------------------


Plan = Callable[[AfterSalesRequest, datetime, UnitOfWork], AfterSalesRequest]


def change(request_id: str, plan: Plan, *, now: datetime | None) -> AfterSalesRequest:
    """Read, let ``plan`` add its writes and return the changed request, write it
    conditionally with its events, commit; again from a fresh read after a lost race."""
    for attempt in range(ATTEMPTS):
        at = now or _now()
        current = store.get_request(request_id)
        if current is None:
            raise RequestNotFound(request_id)
        uow = UnitOfWork()
        changed = plan(current, at, uow)
        store.add_request_change(uow, changed, previous=current)
        _add_events(uow, current, changed)
        try:
            uow.commit()
        except TransactionCancelled:
            _pause(attempt)
            continue
        logger.info(
            "after-sales request moved",
            extra={"request_id": request_id, "status": changed.status.value},
        )
        return changed
    raise Conflict(f"After-sales request {request_id} is changing too quickly; try again.")


def require_move(request: AfterSalesRequest, target: AfterSalesStatus) -> None:
    if not request.can_move_to(target):
        raise InvalidTransition.between(request.status, target)


def _give_back_units(uow: UnitOfWork, request: AfterSalesRequest) -> None:
    coverage = store.get_coverage(request.order_id)
    covered = dict(coverage.covered)
    for sku, quantity in request.quantities().items():
        covered[sku] = max(0, covered.get(sku, 0) - quantity)
    store.add_coverage_change(uow, replace(coverage, covered=covered), previous=coverage)


def _default_warehouse(order: Order, request: AfterSalesRequest) -> str:
    skus = {line.sku for line in request.lines}
    for shipment in order.shipments:
        if any(line.sku in skus for line in shipment.lines):
            return shipment.warehouse
    return order.shipments[0].warehouse


def _owe_refund(
    uow: UnitOfWork, order: Order, amount: Money, *, request_id: str, at: datetime
) -> Refund | None:
    """Write the refund this request owes, pending, in ``uow`` (None if nothing is left to
    refund)."""
    for payment in _captured(order.order_id):
        if payment.refundable.is_zero() or payment.amount.currency != amount.currency:
            continue
        committed, refund = refunds.add_refund_owed(
            uow, payment, reason=f"after-sales {request_id}", at=at, amount=amount
        )
        if refund is not None:
            payments_store.add_payment_change(uow, committed, previous=payment)
            return refund
    return None


def approve(
    request_id: str,
    *,
    actor: str,
    note: str | None = None,
    return_warehouse: str | None = None,
    now: datetime | None = None,
) -> AfterSalesRequest:
    """Staff approve: a refund-only request owes its refund now; an exchange reserves its
    replacement (409 ``out_of_stock`` when there is none); the others wait for the parcel."""
    if return_warehouse is not None and return_warehouse not in {
        w.id for w in stock.known_warehouses()
    }:
        raise InvalidInput(
            f"Unknown warehouse {return_warehouse}.", [{"field": "return_warehouse"}]
        )

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        require_move(current, _S.APPROVED)
        order = orders_store.get_order(current.order_id, consistent=True)
        assert order is not None  # a request is only made for an existing order
        if current.type is AfterSalesType.REFUND_ONLY:
            approved = current.transition(_S.APPROVED, at=at, actor=actor, note=note)
            amount = current.refund_estimate or Money.zero(order.total.currency)
            refund = _owe_refund(uow, order, amount, request_id=request_id, at=at)
            if refund is None:
                return approved.transition(
                    _S.REFUNDED, at=at, actor=SYSTEM_ACTOR, note="nothing to refund"
                )
            return replace(approved, refund_id=refund.refund_id, refund_amount=refund.amount)
        warehouse = return_warehouse or _default_warehouse(order, current)
        replacement: tuple[Held, ...] = ()
        if current.type is AfterSalesType.EXCHANGE:
            replacement = after_sales_replacement.reserve(
                uow, current, order, prefer=warehouse, at=at, actor=actor
            )
        return current.transition(
            _S.APPROVED,
            at=at,
            actor=actor,
            note=note,
            return_warehouse=warehouse,
            replacement=replacement,
        )

    return change(request_id, plan, now=now)


def reject(
    request_id: str, *, actor: str, note: str, now: datetime | None = None
) -> AfterSalesRequest:
    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        changed = current.transition(_S.REJECTED, at=at, actor=actor, note=note)
        _give_back_units(uow, current)
        return changed

    return change(request_id, plan, now=now)


def cancel(
    request_id: str, *, customer_id: str, note: str | None = None, now: datetime | None = None
) -> AfterSalesRequest:
    """The customer withdraws the request, before it is received; a held replacement is
    released."""
    get_request(request_id, viewer_id=customer_id, staff=False)

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        changed = current.transition(_S.CANCELLED, at=at, actor=customer_id, note=note)
        _give_back_units(uow, current)
        after_sales_replacement.release(uow, current, at=at, actor=customer_id)
        return changed

    return change(request_id, plan, now=now)


def receive(
    request_id: str,
    received: Sequence[ReceivedLine],
    *,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
) -> AfterSalesRequest:
    """Ops received the parcel: each line restocked (``returned``) or written off
    (``written_off``) in the receiving warehouse, in one transaction with the status. A
    return owes its refund in the same transaction; a repair goes on to ``repairing``; an
    exchange's replacement is shipped by the fulfilment consumer."""

    def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
        require_move(current, _S.RECEIVED)
        rules.check_receipt(current, received)
        warehouse = current.return_warehouse
        assert warehouse is not None  # set on approval
        levels = inventory_store.get_levels_many(
            [(line.sku, warehouse) for line in received], consistent=True
        )
        for line in received:
            before = levels[(line.sku, warehouse)]
            if line.disposition is Disposition.RESTOCK:
                after, movement = stock_rules.return_to_stock(
                    before, line.quantity, reference=request_id, at=at, actor=actor, note=note
                )
            else:
                after, movement = stock_rules.write_off(
                    before, line.quantity, reference=request_id, at=at, actor=actor, note=note
                )
            stock.record_movement(uow, before, after, movement)
            levels[(line.sku, warehouse)] = after
        changed = current.transition(
            _S.RECEIVED, at=at, actor=actor, note=note, received=tuple(received)
        )
        if current.type is AfterSalesType.REPAIR:
            return changed.transition(_S.REPAIRING, at=at, actor=actor)
        if current.type is AfterSalesType.RETURN:
            return _refund_return(uow, changed, at=at)
        return changed

    return change(request_id, plan, now=now)


def _refund_return(
    uow: UnitOfWork, request: AfterSalesRequest, *, at: datetime
) -> AfterSalesRequest:
    order = orders_store.get_order(request.order_id, consistent=True)
    assert order is not None
    reasons = {line.sku: line.reason for line in request.lines}
    back = [(line.sku, line.quantity, reasons[line.sku]) for line in request.received]
    coverage = store.get_coverage(request.order_id)
    amount = _refund_for(order, back, coverage, _captured(order.order_id))
    returned = dict(coverage.returned)
    for sku, quantity, _ in back:
        returned[sku] = returned.get(sku, 0) + quantity
    store.add_coverage_change(uow, replace(coverage, returned=returned), previous=coverage)
    refund = _owe_refund(uow, order, amount, request_id=request.request_id, at=at)
    if refund is None:
        return request.transition(_S.REFUNDED, at=at, actor=SYSTEM_ACTOR, note="nothing to refund")
    return replace(request, refund_id=refund.refund_id, refund_amount=refund.amount)


def on_refund_settled(order_id: str, refund_id: str, *, now: datetime | None = None) -> None:
    """``payment.refunded``: the request that owed this refund is now ``refunded``."""
    coverage = store.get_coverage(order_id)
    for request in store.get_requests(coverage.request_ids):
        if request.refund_id != refund_id or not request.can_move_to(_S.REFUNDED):
            continue

        def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
            return current.transition(_S.REFUNDED, at=at, actor=SYSTEM_ACTOR, note=refund_id)

        change(request.request_id, plan, now=now)


@dataclass(frozen=True, slots=True)
class CloseReport:
    closed: list[str]
    skipped: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"closed": self.closed, "skipped": self.skipped}


def close_overdue(now: datetime | None = None, *, limit: int = CLOSE_BATCH) -> CloseReport:
    """Close requests approved seven days ago with no return parcel (from the due index,
    no Scan); their units and any held replacement are given back."""
    moment = now or _now()
    closed: list[str] = []
    skipped: list[str] = []
    for listed in store.due_to_close(moment, limit=limit):

        def plan(current: AfterSalesRequest, at: datetime, uow: UnitOfWork) -> AfterSalesRequest:
            if not current.is_due_to_close(at):
                raise InvalidTransition.between(current.status, _S.CLOSED, "not due")
            changed = current.transition(
                _S.CLOSED, at=at, actor=SYSTEM_ACTOR, note="no return parcel within 7 days"
            )
            _give_back_units(uow, current)
            after_sales_replacement.release(uow, current, at=at, actor=SYSTEM_ACTOR)
            return changed

        try:
            change(listed.request_id, plan, now=moment)
        except (Conflict, NotFound):
            skipped.append(listed.request_id)
            continue
        closed.append(listed.request_id)
    return CloseReport(closed=closed, skipped=skipped)
