"""Payments, refunds, saved payment methods and webhook receipts in the main table.

Item shapes (the only place that knows them):

    payment        pk=PAYMENT#<payment_id>           sk=PAYMENT
                   gsi1pk=ORDERPAYMENTS#<order_id>   gsi1sk=<created_at>#<payment_id>
                   gsi2pk=SETTLED#<method>#<day>     gsi2sk=P#<payment_id>   once captured
    order's link   pk=ORDER#<order_id>               sk=PAYMENT#<payment_id>   written with the
                   payment, so an order's payments are read from the base table, consistently
                   gsi2pk=PAYMENTS#PENDING#<method>  gsi2sk=<created_at>#<payment_id>
                                                     while pending (sparse)
    refund         pk=REFUND#<refund_id>             sk=REFUND
                   gsi1pk=ORDERREFUNDS#<order_id>    gsi1sk=<created_at>#<refund_id>
                   gsi2pk=SETTLED#<method>#<day>     gsi2sk=R#<refund_id>    once succeeded
    request key    pk=PAYKEY#<order_id>#<key> / REFUNDKEY#<order_id>#<key>   sk=KEY
                   request_hash, target_id (the payment or refund it created), expires_ttl
    webhook        pk=WEBHOOK#<provider>#<event_id>  sk=RECEIPT   expires_ttl
    saved method   pk=WALLET#<customer_id>           sk=METHOD#<method_id>
    provider's id  pk=WALLET#<customer_id>           sk=PROVIDERCUSTOMER#<provider>
    for the shopper

Money is stored as {amount, currency}. ``day`` in the settlement index is the provider's
own settlement day (see ``domain.reconciliation.settlement_day``), so reconciling a day is
one Query per provider. Every change to a payment or refund is conditional on the version
it was read with; a webhook receipt is claimed with ``attribute_not_exists`` in the same
transaction as the change it causes, so a replayed notification changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.domain.payments import (
    Failure,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    ReviewFlag,
)
from chalicelib.domain.reconciliation import settlement_day
from chalicelib.store import tables
from chalicelib.store.orders import ORDER_PREFIX, timestamp
from chalicelib.store.unit_of_work import UnitOfWork

PAYMENT_PREFIX = "PAYMENT#"
REFUND_PREFIX = "REFUND#"
ORDER_PAYMENTS_PREFIX = "ORDERPAYMENTS#"
ORDER_PAYMENT_SK_PREFIX = "PAYMENT#"
ORDER_REFUNDS_PREFIX = "ORDERREFUNDS#"
SETTLED_PREFIX = "SETTLED#"
PENDING_REFUNDS = "REFUNDS#PENDING"
PENDING_PAYMENTS_PREFIX = "PAYMENTS#PENDING#"
WEBHOOK_PREFIX = "WEBHOOK#"
WALLET_PREFIX = "WALLET#"
METHOD_SK_PREFIX = "METHOD#"
PROVIDER_CUSTOMER_SK_PREFIX = "PROVIDERCUSTOMER#"
# A provider retries a notification for a day or so (Alipay up to 25 h, WeChat Pay 24 h);
# its receipt is kept well beyond that.
WEBHOOK_RETENTION = timedelta(days=30)
REQUEST_KEY_RETENTION = timedelta(hours=48)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _optional_time(text: str | None) -> datetime | None:
    return _parse_time(text) if text else None


def _money(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else money.as_dict()


def _money_from(value: Mapping[str, Any] | None) -> Money | None:
    return None if value is None else Money.from_dict(value)


def _failure_from(value: Mapping[str, Any] | None) -> Failure | None:
    return None if value is None else Failure(str(value["code"]), str(value["message"]))


def _key(pk: str, sk: str) -> tables.RawItem:
    return {tables.PK: {"S": pk}, tables.SK: {"S": sk}}


def payment_key(payment_id: str) -> tables.RawItem:
    return _key(PAYMENT_PREFIX + payment_id, "PAYMENT")


def refund_key(refund_id: str) -> tables.RawItem:
    return _key(REFUND_PREFIX + refund_id, "REFUND")


def _settled_partition(method: str, day: date) -> str:
    return f"{SETTLED_PREFIX}{method}#{day.isoformat()}"


# --- payments ------------------------------------------------------------------------------


def payment_item(payment: Payment) -> tables.RawItem:
    values: dict[str, Any] = {
        tables.PK: PAYMENT_PREFIX + payment.payment_id,
        tables.SK: "PAYMENT",
        "entity": "payment",
        "gsi1pk": ORDER_PAYMENTS_PREFIX + payment.order_id,
        "gsi1sk": f"{timestamp(payment.created_at)}#{payment.payment_id}",
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "customer_id": payment.customer_id,
        "method": payment.method,
        "amount": _money(payment.amount),
        "status": payment.status.value,
        "created_at": timestamp(payment.created_at),
        "updated_at": timestamp(payment.updated_at),
        "provider_payment_id": payment.provider_payment_id,
        "captured": _money(payment.captured),
        "captured_at": timestamp(payment.captured_at) if payment.captured_at else None,
        "refunded": _money(payment.refunded),
        "refund_committed": _money(payment.refund_committed),
        "next_action": payment.next_action,
        "failure": payment.failure.as_dict() if payment.failure else None,
        "review": (
            {
                "reason": payment.review.reason,
                "expected": _money(payment.review.expected),
                "received": _money(payment.review.received),
            }
            if payment.review
            else None
        ),
        "saved_method_id": payment.saved_method_id,
        "version": payment.version,
    }
    if payment.captured_at is not None:
        day = settlement_day(payment.method, payment.captured_at)
        values["gsi2pk"] = _settled_partition(payment.method, day)
        values["gsi2sk"] = "P#" + payment.payment_id
    elif payment.status is PaymentStatus.PENDING:
        # Findable by the resolving sweep while its outcome is not known.
        values["gsi2pk"] = PENDING_PAYMENTS_PREFIX + payment.method
        values["gsi2sk"] = f"{timestamp(payment.created_at)}#{payment.payment_id}"
    return tables.to_item(values)


def payment_from_item(raw: Mapping[str, Any]) -> Payment:
    item = tables.from_item(raw)
    review = item.get("review")
    return Payment(
        payment_id=item["payment_id"],
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        method=item["method"],
        amount=Money.from_dict(item["amount"]),
        status=PaymentStatus(item["status"]),
        created_at=_parse_time(item["created_at"]),
        updated_at=_parse_time(item["updated_at"]),
        provider_payment_id=item.get("provider_payment_id"),
        captured=_money_from(item.get("captured")),
        captured_at=_optional_time(item.get("captured_at")),
        refunded=_money_from(item.get("refunded")),
        refund_committed=_money_from(item.get("refund_committed")),
        next_action=_plain(item.get("next_action")),
        failure=_failure_from(item.get("failure")),
        review=(
            ReviewFlag(
                reason=review["reason"],
                expected=Money.from_dict(review["expected"]),
                received=Money.from_dict(review["received"]),
            )
            if review
            else None
        ),
        saved_method_id=item.get("saved_method_id"),
        version=int(item.get("version", 1)),
    )


def _plain(value: Any) -> Any:
    """Decimals from DynamoDB back to ints (next_action holds only strings and ints)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value)
    return value


def add_new_payment(uow: UnitOfWork, payment: Payment) -> None:
    """The payment and its link in its order's partition (see ``order_payments``)."""
    uow.put_versioned(
        payment_item(payment), tag=("payment", payment.payment_id), previous_version=None
    )
    link = {
        tables.PK: ORDER_PREFIX + payment.order_id,
        tables.SK: ORDER_PAYMENT_SK_PREFIX + payment.payment_id,
        "entity": "order_payment",
        "payment_id": payment.payment_id,
    }
    uow.put(
        tables.to_item(link),
        tag=("payment_link", payment.payment_id),
        condition="attribute_not_exists(pk)",
    )


def add_payment_change(uow: UnitOfWork, payment: Payment, *, previous: Payment) -> None:
    """Write ``payment`` if the stored one is still ``previous`` (same version)."""
    uow.put_versioned(
        payment_item(payment),
        tag=("payment", payment.payment_id),
        previous_version=previous.version,
    )


def get_payment(payment_id: str) -> Payment | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=payment_key(payment_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return payment_from_item(raw) if raw else None


def _query_all(
    partition: str,
    index: str,
    *,
    prefix: str | None = None,
    between: tuple[str, str] | None = None,
) -> list[tables.RawItem]:
    pk_name, sk_name = tables.GSI_KEYS[index]
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "IndexName": index,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": pk_name},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
    }
    if prefix is not None:
        query["KeyConditionExpression"] += " AND begins_with(#sk, :prefix)"
        query["ExpressionAttributeNames"]["#sk"] = sk_name
        query["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
    if between is not None:
        query["KeyConditionExpression"] += " AND #sk BETWEEN :low AND :high"
        query["ExpressionAttributeNames"]["#sk"] = sk_name
        query["ExpressionAttributeValues"][":low"] = {"S": between[0]}
        query["ExpressionAttributeValues"][":high"] = {"S": between[1]}
    items: list[tables.RawItem] = []
    while True:
        response = tables.client().query(**query)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def payments_of_order(order_id: str) -> list[Payment]:
    """Every payment attempt for an order, oldest first (index copies: may lag a moment)."""
    return [
        payment_from_item(raw) for raw in _query_all(ORDER_PAYMENTS_PREFIX + order_id, tables.GSI1)
    ]


def order_payments(order_id: str) -> list[Payment]:
    """Every payment of an order as it stands now, oldest first: its links are read from the
    base table and each payment by key, all with consistent reads (unlike
    ``payments_of_order``, a payment committed a moment ago is never missed or stale)."""
    query: dict[str, Any] = {
        "TableName": tables.table_name(),
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": tables.PK, "#sk": tables.SK},
        "ExpressionAttributeValues": {
            ":pk": {"S": ORDER_PREFIX + order_id},
            ":prefix": {"S": ORDER_PAYMENT_SK_PREFIX},
        },
        "ConsistentRead": True,
    }
    payment_ids: list[str] = []
    while True:
        response = tables.client().query(**query)
        payment_ids.extend(item["payment_id"]["S"] for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    found = [get_payment(payment_id) for payment_id in payment_ids]
    payments = [payment for payment in found if payment is not None]
    return sorted(payments, key=lambda p: (p.created_at, p.payment_id))


# --- refunds -------------------------------------------------------------------------------


def refund_item(refund: Refund) -> tables.RawItem:
    values: dict[str, Any] = {
        tables.PK: REFUND_PREFIX + refund.refund_id,
        tables.SK: "REFUND",
        "entity": "refund",
        "gsi1pk": ORDER_REFUNDS_PREFIX + refund.order_id,
        "gsi1sk": f"{timestamp(refund.created_at)}#{refund.refund_id}",
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "customer_id": refund.customer_id,
        "method": refund.method,
        "amount": _money(refund.amount),
        "reason": refund.reason,
        "status": refund.status.value,
        "requested_by": refund.requested_by,
        "created_at": timestamp(refund.created_at),
        "updated_at": timestamp(refund.updated_at),
        "provider_refund_id": refund.provider_refund_id,
        "failure": refund.failure.as_dict() if refund.failure else None,
        "settled_at": timestamp(refund.settled_at) if refund.settled_at else None,
        "automatic": refund.automatic,
        "version": refund.version,
    }
    if refund.status is RefundStatus.SUCCEEDED and refund.settled_at is not None:
        day = settlement_day(refund.method, refund.settled_at)
        values["gsi2pk"] = _settled_partition(refund.method, day)
        values["gsi2sk"] = "R#" + refund.refund_id
    elif refund.status is RefundStatus.PENDING:
        # Findable by the retry sweep until settled; one partition, as refunds are few.
        values["gsi2pk"] = PENDING_REFUNDS
        values["gsi2sk"] = f"{timestamp(refund.created_at)}#{refund.refund_id}"
    return tables.to_item(values)


def refund_from_item(raw: Mapping[str, Any]) -> Refund:
    item = tables.from_item(raw)
    return Refund(
        refund_id=item["refund_id"],
        payment_id=item["payment_id"],
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        method=item["method"],
        amount=Money.from_dict(item["amount"]),
        reason=item["reason"],
        status=RefundStatus(item["status"]),
        requested_by=item["requested_by"],
        created_at=_parse_time(item["created_at"]),
        updated_at=_parse_time(item["updated_at"]),
        provider_refund_id=item.get("provider_refund_id"),
        failure=_failure_from(item.get("failure")),
        settled_at=_optional_time(item.get("settled_at")),
        automatic=bool(item.get("automatic", False)),
        version=int(item.get("version", 1)),
    )


def add_new_refund(uow: UnitOfWork, refund: Refund) -> None:
    uow.put_versioned(refund_item(refund), tag=("refund", refund.refund_id), previous_version=None)


def add_refund_change(uow: UnitOfWork, refund: Refund, *, previous: Refund) -> None:
    uow.put_versioned(
        refund_item(refund), tag=("refund", refund.refund_id), previous_version=previous.version
    )


def get_refund(refund_id: str) -> Refund | None:
    response = tables.client().get_item(
        TableName=tables.table_name(), Key=refund_key(refund_id), ConsistentRead=True
    )
    raw = response.get("Item")
    return refund_from_item(raw) if raw else None


def refunds_of_order(order_id: str) -> list[Refund]:
    return [
        refund_from_item(raw) for raw in _query_all(ORDER_REFUNDS_PREFIX + order_id, tables.GSI1)
    ]


def pending_refunds(created_from: datetime, created_before: datetime) -> list[Refund]:
    """Refunds still waiting for their provider, created in [from, before), oldest first
    (index copies: read each again before acting on it)."""
    between = (timestamp(created_from), timestamp(created_before))
    return [
        refund_from_item(raw) for raw in _query_all(PENDING_REFUNDS, tables.GSI2, between=between)
    ]


def pending_payments(
    method: str, created_from: datetime, created_before: datetime
) -> list[Payment]:
    """``method``'s payments still pending, created in [from, before), oldest first (index
    copies: read each again before acting on it)."""
    between = (timestamp(created_from), timestamp(created_before))
    return [
        payment_from_item(raw)
        for raw in _query_all(PENDING_PAYMENTS_PREFIX + method, tables.GSI2, between=between)
    ]


def settled_on(method: str, day: date) -> tuple[list[Payment], list[Refund]]:
    """Payments captured and refunds completed with ``method`` on its settlement ``day``."""
    payments: list[Payment] = []
    refunds: list[Refund] = []
    for raw in _query_all(_settled_partition(method, day), tables.GSI2):
        if raw.get("entity", {}).get("S") == "payment":
            payments.append(payment_from_item(raw))
        else:
            refunds.append(refund_from_item(raw))
    return payments, refunds


# --- request keys (Idempotency-Key per order) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestKey:
    kind: str  # "payment" | "refund"
    order_id: str
    key: str
    request_hash: str
    target_id: str  # the payment or refund the first request created


def _request_key_pk(kind: str, order_id: str, key: str) -> str:
    prefix = "PAYKEY#" if kind == "payment" else "REFUNDKEY#"
    return f"{prefix}{order_id}#{key}"


def add_request_key(uow: UnitOfWork, record: RequestKey, *, at: datetime) -> None:
    """Claim the key in ``uow``; the transaction is cancelled if a live claim exists."""
    item = tables.to_item(
        {
            tables.PK: _request_key_pk(record.kind, record.order_id, record.key),
            tables.SK: "KEY",
            "entity": "request_key",
            "kind": record.kind,
            "order_id": record.order_id,
            "request_key": record.key,
            "request_hash": record.request_hash,
            "target_id": record.target_id,
            tables.TTL_ATTRIBUTE: int((at + REQUEST_KEY_RETENTION).timestamp()),
        }
    )
    uow.put(
        item,
        tag=("request_key", record.kind, record.order_id, record.key),
        condition="attribute_not_exists(pk) OR #ttl < :now",
        names={"#ttl": tables.TTL_ATTRIBUTE},
        values={":now": {"N": str(int(at.timestamp()))}},
    )


def get_request_key(kind: str, order_id: str, key: str) -> RequestKey | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_key(_request_key_pk(kind, order_id, key), "KEY"),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    if not raw:
        return None
    item = tables.from_item(raw)
    return RequestKey(
        kind=item["kind"],
        order_id=item["order_id"],
        key=item["request_key"],
        request_hash=item["request_hash"],
        target_id=item["target_id"],
    )


# --- webhook receipts ----------------------------------------------------------------------


def _receipt_item(provider: str, event_id: str, at: datetime, summary: str) -> tables.RawItem:
    return tables.to_item(
        {
            tables.PK: f"{WEBHOOK_PREFIX}{provider}#{event_id}",
            tables.SK: "RECEIPT",
            "entity": "webhook_receipt",
            "provider": provider,
            "event_id": event_id,
            "summary": summary,
            "received_at": timestamp(at),
            tables.TTL_ATTRIBUTE: int((at + WEBHOOK_RETENTION).timestamp()),
        }
    )


def add_webhook_receipt(
    uow: UnitOfWork, provider: str, event_id: str, *, at: datetime, summary: str
) -> None:
    """Claim the provider's event id: a second copy of the notification cancels ``uow``."""
    uow.put(
        _receipt_item(provider, event_id, at, summary),
        tag=("webhook", provider, event_id),
        condition="attribute_not_exists(pk)",
    )


def record_webhook_receipt(provider: str, event_id: str, *, at: datetime, summary: str) -> bool:
    """Claim the event id on its own (a notification that changes nothing); whether this
    was the first copy."""
    try:
        tables.client().put_item(
            TableName=tables.table_name(),
            Item=_receipt_item(provider, event_id, at, summary),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except Exception as exc:
        if tables.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def webhook_seen(provider: str, event_id: str) -> bool:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_key(f"{WEBHOOK_PREFIX}{provider}#{event_id}", "RECEIPT"),
        ConsistentRead=True,
    )
    return "Item" in response


# --- saved payment methods -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMethod:
    method_id: str
    customer_id: str
    provider: str
    provider_customer_id: str
    provider_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.method_id,
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
        }


def put_saved_method(method: StoredMethod) -> None:
    """Saved after the payment that created it succeeded; one item per card at the
    provider, so saving the same card twice keeps one entry."""
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: WALLET_PREFIX + method.customer_id,
                tables.SK: METHOD_SK_PREFIX + method.method_id,
                "entity": "saved_method",
                "method_id": method.method_id,
                "customer_id": method.customer_id,
                "provider": method.provider,
                "provider_customer_id": method.provider_customer_id,
                "provider_method_id": method.provider_method_id,
                "brand": method.brand,
                "last4": method.last4,
                "exp_month": method.exp_month,
                "exp_year": method.exp_year,
                "created_at": timestamp(method.created_at),
            }
        ),
    )


def _method_from(raw: Mapping[str, Any]) -> StoredMethod:
    item = tables.from_item(raw)
    return StoredMethod(
        method_id=item["method_id"],
        customer_id=item["customer_id"],
        provider=item["provider"],
        provider_customer_id=item["provider_customer_id"],
        provider_method_id=item["provider_method_id"],
        brand=item["brand"],
        last4=item["last4"],
        exp_month=int(item["exp_month"]),
        exp_year=int(item["exp_year"]),
        created_at=_parse_time(item["created_at"]),
    )


def saved_methods(customer_id: str) -> list[StoredMethod]:
    response = tables.client().query(
        TableName=tables.table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": WALLET_PREFIX + customer_id},
            ":prefix": {"S": METHOD_SK_PREFIX},
        },
        ConsistentRead=True,
    )
    methods = [_method_from(raw) for raw in response.get("Items", [])]
    return sorted(methods, key=lambda m: m.created_at)


def get_saved_method(customer_id: str, method_id: str) -> StoredMethod | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_key(WALLET_PREFIX + customer_id, METHOD_SK_PREFIX + method_id),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    return _method_from(raw) if raw else None


def delete_saved_method(customer_id: str, method_id: str) -> bool:
    """Whether there was one to delete."""
    response = tables.client().delete_item(
        TableName=tables.table_name(),
        Key=_key(WALLET_PREFIX + customer_id, METHOD_SK_PREFIX + method_id),
        ReturnValues="ALL_OLD",
    )
    return "Attributes" in response


def get_provider_customer(customer_id: str, provider: str) -> str | None:
    response = tables.client().get_item(
        TableName=tables.table_name(),
        Key=_key(WALLET_PREFIX + customer_id, PROVIDER_CUSTOMER_SK_PREFIX + provider),
        ConsistentRead=True,
    )
    raw = response.get("Item")
    return str(tables.from_item(raw)["provider_customer_id"]) if raw else None


def put_provider_customer(customer_id: str, provider: str, provider_customer_id: str) -> None:
    tables.client().put_item(
        TableName=tables.table_name(),
        Item=tables.to_item(
            {
                tables.PK: WALLET_PREFIX + customer_id,
                tables.SK: PROVIDER_CUSTOMER_SK_PREFIX + provider,
                "entity": "provider_customer",
                "provider_customer_id": provider_customer_id,
            }
        ),
    )
