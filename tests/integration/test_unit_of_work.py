"""The unit of work over moto: all or nothing, and cancellations that say which action refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain import inventory as rules
from chalicelib.store import inventory, outbox, stock_ledger, tables
from chalicelib.store.unit_of_work import (
    CONDITIONAL_CHECK_FAILED,
    TRANSACTION_CONFLICT,
    TransactionCancelled,
    UnitOfWork,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def item(pk: str, **values: Any) -> dict[str, Any]:
    return tables.to_item({"pk": pk, "sk": "X", **values})


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "X"}}


def stored(pk: str) -> dict[str, Any] | None:
    raw = tables.client().get_item(TableName=tables.table_name(), Key=key(pk)).get("Item")
    return tables.from_item(raw) if raw else None


def received(sku: str, warehouse: str, quantity: int) -> None:
    _, movement = rules.receive(rules.StockLevel.empty(sku, warehouse), quantity, at=NOW, actor="t")
    uow = UnitOfWork()
    inventory.add_movement(uow, movement)
    uow.commit()


def reservation(sku: str, warehouse: str, quantity: int, order_id: str) -> rules.Movement:
    """A reservation planned against a level the caller believes holds plenty."""
    plenty = rules.StockLevel(sku, warehouse, on_hand=1_000)
    return rules.reserve(plenty, quantity, order_id=order_id, at=NOW, actor="t")[1]


def test_every_action_lands_together(aws_table: str) -> None:
    uow = UnitOfWork()
    uow.put(item("A#1", n=1), tag=("a", 1))
    uow.put(item("A#2", n=2), tag=("a", 2))
    uow.update(key("A#3"), "SET n = :n", tag=("a", 3), values={":n": {"N": "3"}})
    assert len(uow) == 3 and uow.tags == [("a", 1), ("a", 2), ("a", 3)]
    uow.commit()
    assert [stored(f"A#{i}")["n"] for i in (1, 2, 3)] == [1, 2, 3]


def test_a_failed_condition_cancels_everything_and_names_the_action_by_its_tag(
    aws_table: str,
) -> None:
    tables.client().put_item(TableName=aws_table, Item=item("TAKEN", n=1))
    uow = UnitOfWork()
    uow.put(item("NEW", n=1), tag=("new",))
    uow.put(
        item("TAKEN", n=2),
        tag=("idempotency", "customer-1", "key-1"),
        condition="attribute_not_exists(pk)",
    )
    uow.delete(key("ANOTHER"), tag=("another",))
    with pytest.raises(TransactionCancelled) as raised:
        uow.commit()

    cancelled = raised.value
    assert [r.tag for r in cancelled.reasons] == [
        ("new",),
        ("idempotency", "customer-1", "key-1"),
        ("another",),
    ]
    assert [r.code for r in cancelled.reasons] == [None, CONDITIONAL_CHECK_FAILED, None]
    assert cancelled.failed_tags() == [("idempotency", "customer-1", "key-1")]
    assert cancelled.condition_failed and not cancelled.conflicted
    # The refused item as it stood, so callers can report what they found.
    assert tables.from_item(cancelled.reasons[1].item)["n"] == 1
    assert stored("NEW") is None
    assert stored("TAKEN")["n"] == 1


def test_a_short_stock_line_is_named_by_sku_and_warehouse_and_no_line_moves(
    aws_table: str,
) -> None:
    received("SKU-A", "wh-1", 5)
    received("SKU-B", "wh-2", 1)
    uow = UnitOfWork()
    inventory.add_movement(uow, reservation("SKU-A", "wh-1", 2, "ord_1"))
    inventory.add_movement(uow, reservation("SKU-B", "wh-2", 3, "ord_1"))
    outbox.add_event(uow, "order.placed", {"order_id": "ord_1"})
    with pytest.raises(TransactionCancelled) as raised:
        uow.commit()

    assert raised.value.failed_tags(CONDITIONAL_CHECK_FAILED) == [
        inventory.stock_tag("SKU-B", "wh-2")
    ]
    short = raised.value.failed(CONDITIONAL_CHECK_FAILED)[0]
    assert inventory.level_from_item(short.item).available == 1
    levels = inventory.get_levels_many([("SKU-A", "wh-1"), ("SKU-B", "wh-2")], consistent=True)
    assert [lv.reserved for lv in levels.values()] == [0, 0]
    assert [m.type for m in stock_ledger.iter_ledger("SKU-A", "wh-1")] == ["received"]


def test_a_movement_that_needs_stock_fails_on_a_level_that_does_not_exist(aws_table: str) -> None:
    uow = UnitOfWork()
    inventory.add_movement(uow, reservation("SKU-A", "wh-1", 1, "ord_1"))
    with pytest.raises(TransactionCancelled) as raised:
        uow.commit()
    assert raised.value.failed_tags() == [("stock", "SKU-A", "wh-1")]
    assert inventory.existing_levels([("SKU-A", "wh-1")], consistent=True) == []


def test_an_outbox_event_id_can_be_written_only_once(aws_table: str) -> None:
    first = UnitOfWork()
    event_id = outbox.add_event(first, "order.placed", {"order_id": "ord_1", "lat": 31.23})
    first.commit()
    again = UnitOfWork()
    outbox.add_event(again, "order.placed", {"order_id": "ord_1"}, event_id=event_id)
    with pytest.raises(TransactionCancelled) as raised:
        again.commit()
    assert raised.value.failed_tags() == [("outbox", event_id)]

    raw = tables.client().get_item(
        TableName=aws_table, Key={"pk": {"S": f"OUTBOX#{event_id}"}, "sk": {"S": "EVENT"}}
    )["Item"]
    event = outbox.event_from_item(raw)
    assert (event.event_id, event.type) == (event_id, "order.placed")
    assert event.payload == {"order_id": "ord_1", "lat": 31.23}


def test_a_collision_with_another_transaction_is_reported_as_a_conflict(
    aws_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB's answer when another transaction holds an item (moto never collides)."""
    response = {
        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
        "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
    }

    def colliding(**_: Any) -> None:
        raise ClientError(response, "TransactWriteItems")

    monkeypatch.setattr(tables.client(), "transact_write_items", colliding)
    uow = UnitOfWork()
    uow.put(item("A", n=1), tag=("a",))
    uow.put(item("B", n=1), tag=("b",))
    with pytest.raises(TransactionCancelled) as raised:
        uow.commit()
    assert raised.value.conflicted and not raised.value.condition_failed
    assert raised.value.failed_tags(TRANSACTION_CONFLICT) == [("b",)]


def test_other_errors_pass_through_untouched(aws_table: str) -> None:
    uow = UnitOfWork()
    uow.put(item("A", n=1), tag=("a",), condition="this is not an expression")
    with pytest.raises(ClientError):
        uow.commit()


def test_a_unit_of_work_holds_at_most_100_actions(aws_table: str) -> None:
    uow = UnitOfWork()
    for n in range(100):
        uow.put(item(f"A#{n}"), tag=("a", n))
    with pytest.raises(AssertionError):
        uow.put(item("A#100"), tag=("a", 100))
    uow.commit()
    assert stored("A#99") is not None


def test_a_unit_of_work_commits_once(aws_table: str) -> None:
    uow = UnitOfWork()
    uow.commit()  # nothing to write is fine
    with pytest.raises(RuntimeError):
        uow.commit()
    with pytest.raises(RuntimeError):
        uow.put(item("A"), tag=("a",))
