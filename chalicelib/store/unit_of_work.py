"""One use case's writes, committed together in a single ``TransactWriteItems``.

Services hand the store a ``UnitOfWork``; store modules add their actions to it (a stock
movement adds the level's guarded update and its ledger entry, ``outbox.add_event`` adds
an event) and the service commits once. Either every action lands or none does.

Every action carries a *tag* naming what it guards, e.g. ``("stock", sku, warehouse)`` or
``("idempotency", customer_id, key)``. When DynamoDB cancels the transaction it answers
with one reason per action, in order; ``TransactionCancelled.reasons`` pairs each reason
with its action's tag so the caller can say which SKU ran short, or that the idempotency
key already exists, without knowing anything about DynamoDB.

Actions take raw attribute values (``{"S": ...}``): the store modules that build them own
the item shapes (see ``tables.to_item``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.store import tables

Tag = tuple[Hashable, ...]

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"
THROTTLING_ERROR = "ThrottlingError"


@dataclass(frozen=True, slots=True)
class CancellationReason:
    """Why DynamoDB refused one action of a cancelled transaction.

    ``code`` is ``None`` for actions that were fine (DynamoDB says "None"); ``item`` is the
    item as it stood when its condition failed, when DynamoDB returned it.
    """

    tag: Tag
    code: str | None
    message: str | None = None
    item: tables.RawItem | None = None

    @property
    def condition_failed(self) -> bool:
        return self.code == CONDITIONAL_CHECK_FAILED

    @property
    def conflicted(self) -> bool:
        return self.code == TRANSACTION_CONFLICT


class TransactionCancelled(Exception):
    """The transaction wrote nothing; ``reasons`` has one entry per action, in order."""

    def __init__(self, reasons: list[CancellationReason], message: str = "") -> None:
        failed = [f"{r.tag}: {r.code}" for r in reasons if r.code is not None]
        super().__init__(message or f"Transaction cancelled ({', '.join(failed) or 'no reason'})")
        self.reasons = reasons

    def failed(self, code: str | None = None) -> list[CancellationReason]:
        """The reasons that refused an action (``code`` narrows to one kind)."""
        return [r for r in self.reasons if r.code is not None and (code is None or r.code == code)]

    def failed_tags(self, code: str | None = None) -> list[Tag]:
        return [r.tag for r in self.failed(code)]

    @property
    def conflicted(self) -> bool:
        """Another transaction was touching the same items: retrying may well succeed."""
        return any(r.conflicted for r in self.reasons) or not self.failed()

    @property
    def condition_failed(self) -> bool:
        return bool(self.failed(CONDITIONAL_CHECK_FAILED))


@dataclass(slots=True)
class _Action:
    tag: Tag
    request: dict[str, Any]


@dataclass(slots=True)
class UnitOfWork:
    """Collects transaction actions; ``commit`` sends them in one ``TransactWriteItems``."""

    actions: list[_Action] = field(default_factory=list)
    committed: bool = False

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def tags(self) -> list[Tag]:
        return [action.tag for action in self.actions]

    def put(
        self,
        item: tables.RawItem,
        *,
        tag: Tag,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request = {"TableName": tables.table_name(), "Item": dict(item)}
        self._add("Put", tag, request, condition, names, values)

    def put_versioned(
        self, item: tables.RawItem, *, tag: Tag, previous_version: int | None
    ) -> None:
        """Put ``item`` if it is new (``previous_version`` None) or the stored one still has
        ``previous_version``: the optimistic lock of every versioned entity."""
        if previous_version is None:
            self.put(item, tag=tag, condition="attribute_not_exists(pk)")
            return
        self.put(
            item,
            tag=tag,
            condition="#version = :expected_version",
            names={"#version": "version"},
            values={":expected_version": {"N": str(previous_version)}},
        )

    def update(
        self,
        key: tables.RawItem,
        update_expression: str,
        *,
        tag: Tag,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request = {
            "TableName": tables.table_name(),
            "Key": dict(key),
            "UpdateExpression": update_expression,
        }
        self._add("Update", tag, request, condition, names, values)

    def delete(
        self,
        key: tables.RawItem,
        *,
        tag: Tag,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request = {"TableName": tables.table_name(), "Key": dict(key)}
        self._add("Delete", tag, request, condition, names, values)

    def condition_check(
        self,
        key: tables.RawItem,
        condition: str,
        *,
        tag: Tag,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request = {"TableName": tables.table_name(), "Key": dict(key)}
        self._add("ConditionCheck", tag, request, condition, names, values)

    def _add(
        self,
        kind: str,
        tag: Tag,
        request: dict[str, Any],
        condition: str | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        if self.committed:
            raise RuntimeError("This unit of work was already committed; start a new one.")
        if len(self.actions) >= tables.TRANSACTION_LIMIT:
            raise AssertionError(
                f"A transaction holds at most {tables.TRANSACTION_LIMIT} actions; "
                "the caller must keep its use case within one."
            )
        if condition:
            request["ConditionExpression"] = condition
            # The item as it stood lets callers report e.g. what was actually available.
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = dict(values)
        self.actions.append(_Action(tag=tag, request={kind: request}))

    def commit(self, *, client_request_token: str | None = None) -> None:
        """Write every action or none; ``TransactionCancelled`` says which ones refused."""
        if self.committed:
            raise RuntimeError("This unit of work was already committed.")
        if not self.actions:
            self.committed = True
            return
        arguments: dict[str, Any] = {"TransactItems": [a.request for a in self.actions]}
        if client_request_token:
            arguments["ClientRequestToken"] = client_request_token
        try:
            tables.client().transact_write_items(**arguments)
        except Exception as exc:
            cancelled = self._cancellation(exc)
            if cancelled is None:
                raise
            raise cancelled from None
        self.committed = True

    def _cancellation(self, exc: Exception) -> TransactionCancelled | None:
        code = tables.error_code(exc)
        if code == "TransactionCanceledException":
            raw_reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
            reasons = [
                CancellationReason(
                    tag=action.tag,
                    code=_reason_code(raw),
                    message=raw.get("Message"),
                    item=raw.get("Item"),
                )
                for action, raw in zip(self.actions, raw_reasons, strict=False)
            ]
            return TransactionCancelled(reasons, str(exc))
        if code in ("TransactionConflictException", "TransactionInProgressException"):
            # The whole request collided with another one: every action may be retried.
            reasons = [
                CancellationReason(tag=a.tag, code=TRANSACTION_CONFLICT) for a in self.actions
            ]
            return TransactionCancelled(reasons, str(exc))
        return None


def _reason_code(raw: Mapping[str, Any]) -> str | None:
    code = raw.get("Code")
    return None if code in (None, "", "None") else str(code)
