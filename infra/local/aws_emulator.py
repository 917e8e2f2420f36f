"""The local AWS emulator: moto's server, one request at a time, with flat-cost transactions.

Run it with ``python -m infra.local.aws_emulator --port N`` (blocks until SIGINT/SIGTERM), or
from tests and benchmarks with ``start_in_thread()``.

Two things make stock moto unfit to stand in for DynamoDB under concurrent load:

* moto is not thread-safe. Concurrent ``TransactWriteItems`` against an unlocked server leave
  items that received identical decrements with different values. Every request therefore
  goes through one process-wide lock, response body included.
* moto's ``TransactWriteItems`` deep-copies every table it touches so that it can swap the
  copy back in on failure. The cost grows with the table (13 ms per transaction at 100 items,
  873 ms at 20,000), and the swap replaces the ``Table`` and its ``StreamShard``: a stream
  reader still holding the old shard sees records of the cancelled writes and misses every
  later one. While an emulator runs, ``DynamoDBBackend.transact_write_items`` is replaced by
  ``_transact_write_items`` below, which checks everything first and writes only after.

* moto's ``Query`` walks and sorts the whole table and then keeps the queried partition, so a
  query got slower as history grew (an empty partition: 35.8 ms with 1x history, 160.7 ms with
  10x). ``Table.query`` is replaced by ``_partition_query`` below, which runs moto's own query
  on just the queried partition: the table's items under that hash key, or, for a secondary
  index, a per-index map from index partition key to items, built on first use and moved along
  by every write path (put, update, delete, transactions, batches go through those).

moto also keeps what nobody needs any more: every model instance ever made (items, stream
records, queue messages) in a class-level list for its dashboard, every stream record, and
every shard iterator. While an emulator runs, instances are not tracked, stream records that
have been read are dropped once ``STREAM_RECORDS_KEPT`` newer ones exist, and only the newest
``SHARD_ITERATORS_KEPT`` iterators stay valid, so memory grows with the data stored.
``infra.local.emulator_speedups`` (installed and removed with the patches here) cuts moto's
per-request costs and keeps stream records packed until they are read.

Contention mode (off by default; ``--contention``, ``set_contention()``, or ``PUT`` on
``/_emulator/contention`` of a running emulator) brings back what the lock takes away: a
transaction touching an item that another transaction held within the last
``conflict_window_s`` is cancelled with ``TransactionConflict``, and write units are counted per
partition key over the last second (2 per transactional write, 1 per PutItem/UpdateItem/
DeleteItem); beyond ``partition_wcu`` a transaction is cancelled with ``ThrottlingError`` and a
plain write answers ``ThrottlingException``. BatchWriteItem is not throttled.

All emulators started in one process share moto's in-memory state (moto keeps it in module
globals), hence one lock per process rather than per server.

A request is held under the lock until moto has answered it, so a moto feature that calls out
over HTTP while handling a request (an SNS ``http`` subscription) must not call back into this
same emulator, or it waits on itself.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import functools
import gc
import inspect
import io
import itertools
import json
import os
import pstats
import signal
import sys
import threading
import time
import tracemalloc
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.exceptions import JsonRESTError
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer

from infra.local import emulator_speedups, ses_rules

HOST = "127.0.0.1"

# moto's state lives in module globals, so every emulator in this process shares this lock.
_MOTO_LOCK = threading.Lock()


# --- TransactWriteItems without table copies ------------------------------------------------


class _ConditionNotMet(ConditionalCheckFailed):
    """A failed ConditionExpression, with the item to report under ALL_OLD (or None)."""

    def __init__(self, old_image: dict[str, Any] | None) -> None:
        super().__init__()
        self.old_image = old_image


@dataclass(frozen=True)
class _PlannedWrite:
    """One write of a transaction whose outcome is fully computed but not yet applied."""

    table: Table
    hash_key: DynamoType
    range_key: DynamoType | None
    old: Item | None
    new: Item | None  # None: delete

    def apply(self) -> None:
        if self.new is None:
            # moto's own delete: drops the item and records REMOVE if there was one.
            self.table.delete_item(self.hash_key, self.range_key)
            return
        if self.range_key is None:
            self.table.items[self.hash_key] = self.new
        else:
            self.table.items[self.hash_key][self.range_key] = self.new
        _reindex(self.table, self.hash_key, self.range_key)
        if self.table.stream_shard is not None:
            # One record per written item, as DynamoDB emits (moto's update path emits two
            # INSERTs when an update creates an item).
            self.table.stream_shard.add(self.old, self.new)


class _OneTableBackend:
    """Stands in for the backend so that moto's own update code runs on a scratch table."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get_table(self, table_name: str) -> Table:
        return self._table


def _peek(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    """The stored item, looked up without creating empty entries in moto's defaultdict."""
    stored = table.items.get(hash_key)
    if range_key is None or stored is None:
        return stored
    return stored.get(range_key)


def _scratch_table(
    table: Table, hash_key: DynamoType, range_key: DynamoType | None, current: Item | None
) -> Table:
    """A stand-in for ``table`` that holds only a copy of one item and has no stream.

    It shares the schema and indexes with the real table, so moto's put/update code validates
    and computes the new item exactly as it would on the real one, without touching it. Built
    with ``object.__new__`` because moto's ``BaseModel.__new__`` keeps every instance in a
    class-level list forever; a scratch table per operation would leak.
    """
    scratch = object.__new__(Table)
    scratch.__dict__.update(table.__dict__)
    scratch.items = defaultdict(dict)
    scratch.stream_shard = None
    scratch.__dict__.pop(_INDEXES_ATTR, None)  # writes to the scratch copy index nothing
    if current is not None:
        if range_key is None:
            scratch.items[hash_key] = copy.deepcopy(current)
        else:
            scratch.items[hash_key][range_key] = copy.deepcopy(current)
    return scratch


def _plan_operation(
    backend: DynamoDBBackend, op_type: str, op: dict[str, Any], touched: set[tuple[str, str]]
) -> _PlannedWrite | None:
    """Validate one operation and evaluate its condition; compute its write without doing it."""
    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        raise ValueError("Unsupported transaction operation")
    table_name = op["TableName"]
    table = backend.get_table(table_name)
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    else:
        key = op["Key"]

    # Same identity as moto uses, so the same requests are rejected as duplicates.
    identity = (str(table_name), str(dict(sorted(key.items()))))
    if identity in touched:
        raise MultipleTransactionsException()
    touched.add(identity)

    hash_key, range_key = backend.get_keys_value(table, key)
    current = _peek(table, hash_key, range_key)

    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    condition = get_filter_expression(op.get("ConditionExpression"), names, values)
    if not condition.expr(current):
        wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        raise _ConditionNotMet(current.to_json()["Attributes"] if wants_old and current else None)

    if op_type == "ConditionCheck":
        return None
    if op_type == "Delete":
        return _PlannedWrite(table, hash_key, range_key, current, None)
    if op_type == "Put":
        new = _scratch_table(table, hash_key, range_key, None).put_item(op["Item"])
    else:
        scratch = _scratch_table(table, hash_key, range_key, current)
        new = _original_update_item(
            _OneTableBackend(scratch),  # type: ignore[arg-type]
            table_name,
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    return _PlannedWrite(table, hash_key, range_key, current, new)


def _transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """``DynamoDBBackend.transact_write_items`` that never copies or replaces a table.

    Phase 1 validates every operation, evaluates every condition against the current items and
    computes each new item on a scratch copy of just that item; nothing real changes. Only when
    every operation passed does phase 2 store the new items and emit their stream records, so a
    cancelled transaction changes nothing and emits nothing. Both phases run under the request
    lock, so nobody sees between them. Errors are moto's own exception types, raised in the
    same cases (validation errors as ValidationException, otherwise TransactionCanceledException
    with one CancellationReason per operation), so the wire format is unchanged.
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    touched: set[tuple[str, str]] = set()
    planned: list[_PlannedWrite] = []
    reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for transact_item in transact_items:
        if len(transact_item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(transact_item.items()))
        try:
            write = _plan_operation(backend, op_type, op, touched)
        except MockValidationException:
            raise
        except _ConditionNotMet as failed:
            reasons.append(("ConditionalCheckFailed", failed.message, failed.old_image))
        except Exception as error:  # noqa: BLE001 - moto reports any other failure as a reason
            reasons.append((type(error).__name__, str(error), None))
        else:
            reasons.append((None, None, None))
            if write is not None:
                planned.append(write)
    refused = _contention_for_transaction(backend, transact_items)
    if refused is not None:
        raise TransactionCanceledException(refused)
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    for write in planned:
        write.apply()


# --- Query that reads only the queried partition -------------------------------------------


_INDEXES_ATTR = "_emulator_index_partitions"
_PrimaryKey = tuple[DynamoType, DynamoType | None]
_original_table_query = Table.query
_original_table_put_item = Table.put_item
_original_table_delete_item = Table.delete_item
_original_update_item = DynamoDBBackend.update_item
_query_signature = inspect.signature(_original_table_query)
# Bumped each time the patches go in: writes made while they were out were not indexed, so an
# index built before then is rebuilt on its next use.
_index_generation = 0


@dataclass
class _IndexPartitions:
    """One secondary index's items grouped by the index's partition key value(s)."""

    generation: int
    hash_attrs: tuple[str, ...]
    partitions: dict[tuple[DynamoType, ...], dict[_PrimaryKey, Item]]
    placed: dict[_PrimaryKey, tuple[DynamoType, ...]]

    def partition_of(self, item: Item) -> tuple[DynamoType, ...] | None:
        values = []
        for name in self.hash_attrs:
            value = item.attrs.get(name)
            if value is None:
                return None  # an item without the index's key is not in the index
            values.append(value)
        return tuple(values)

    def place(self, primary: _PrimaryKey, item: Item | None) -> None:
        """Put ``item`` (None: deleted) where its current index key says it belongs."""
        previous = self.placed.pop(primary, None)
        if previous is not None:
            bucket = self.partitions[previous]
            bucket.pop(primary, None)
            if not bucket:
                del self.partitions[previous]
        partition = self.partition_of(item) if item is not None else None
        if partition is not None:
            self.partitions.setdefault(partition, {})[primary] = item  # type: ignore[assignment]
            self.placed[primary] = partition


def _stored_items(table: Table) -> Iterator[Item]:
    for stored in table.items.values():
        if table.range_key_attr is None:
            yield stored  # type: ignore[misc]
        else:
            yield from stored.values()


def _index_partitions(table: Table, index_name: str) -> _IndexPartitions | None:
    """The index's partitions, built from the table on first use and kept in step after."""
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return None
    hash_attrs = tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
    if not hash_attrs:
        return None
    indexes: dict[str, _IndexPartitions] = table.__dict__.setdefault(_INDEXES_ATTR, {})
    built = indexes.get(index_name)
    if built is not None and (built.generation, built.hash_attrs) == (
        _index_generation,
        hash_attrs,
    ):
        return built
    built = _IndexPartitions(_index_generation, hash_attrs, {}, {})
    for item in _stored_items(table):
        built.place((item.hash_key, item.range_key), item)
    indexes[index_name] = built
    return built


def _reindex(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    """Called after every write of one item: move it in each index built for the table."""
    indexes: dict[str, _IndexPartitions] | None = table.__dict__.get(_INDEXES_ATTR)
    if not indexes:
        return
    item = _peek(table, hash_key, range_key)
    for built in indexes.values():
        built.place((hash_key, range_key), item)


def _all_items_order(item: Item) -> Any:
    # The order moto's Table.all_items() returns, which its stable sorts then build on.
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


def _partition_candidates(
    table: Table,
    hash_key: DynamoType | None,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
) -> list[Item] | None:
    """Every item that can match the query's partition key; None: no shortcut, walk the table."""
    if not index_name:
        if hash_key is None:
            return None
        stored = table.items.get(hash_key)
        if stored is None:
            return []
        if table.range_key_attr is None:
            return [stored]  # type: ignore[list-item]
        return sorted(stored.values(), key=_all_items_order)
    built = _index_partitions(table, index_name)
    conditions = dict(hash_key_conditions or [])
    if built is None or set(conditions) != set(built.hash_attrs):
        return None
    partition = tuple(conditions[name] for name in built.hash_attrs)
    return sorted(built.partitions.get(partition, {}).values(), key=_all_items_order)


def _partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    """``Table.query`` that hands moto's own query only the queried partition's items.

    moto's query walks ``all_items()`` (the whole table, sorted) and then filters, sorts,
    pages and projects. Here it runs unchanged, but ``all_items`` answers with the items of the
    one partition, in the same order; everything else in moto's result follows from those.
    """
    bound = _query_signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    candidates = _partition_candidates(
        self,
        bound.arguments["hash_key"],
        bound.arguments["index_name"],
        bound.arguments["hash_key_conditions"],
    )
    if candidates is None:
        return _original_table_query(self, *args, **kwargs)
    self.all_items = lambda: candidates  # type: ignore[method-assign]
    try:
        return _original_table_query(self, *args, **kwargs)
    finally:
        del self.all_items


def _indexed_put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item = _original_table_put_item(self, *args, **kwargs)
    _reindex(self, item.hash_key, item.range_key)
    return item


def _indexed_delete_item(
    self: Table, hash_key: DynamoType, range_key: DynamoType | None
) -> Item | None:
    item = _original_table_delete_item(self, hash_key, range_key)
    _reindex(self, hash_key, range_key)
    return item


def _indexed_update_item(self: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Item:
    item = _original_update_item(self, table_name, *args, **kwargs)
    _reindex(self.get_table(table_name), item.hash_key, item.range_key)
    return item


# --- contention mode: conflicts and throttling as DynamoDB has them -----------------------

THROTTLE_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please be patient."
)
CONFLICT_MESSAGE = "Transaction is ongoing for the item"
TRANSACTION_UNITS_PER_WRITE = 2  # a transactional write costs twice a plain one (items <= 1 KB)
_THROTTLE_WINDOW_S = 1.0
# Contention's clock (in-flight windows, write units per second); a test may hold it still.
contention_clock = time.monotonic


@dataclass(frozen=True)
class Contention:
    """What contention mode enforces: how long a transaction keeps its items in flight, and
    how many write units one partition key takes per second."""

    conflict_window_s: float = 0.02
    partition_wcu: int = 1000


class ThrottlingException(DynamodbException):
    error_type = "com.amazonaws.dynamodb.v20120810#ThrottlingException"

    def __init__(self) -> None:
        super().__init__(ThrottlingException.error_type, message=THROTTLE_MESSAGE)


_PartitionKey = tuple[str, str, Any]
_ItemKey = tuple[str, str, Any, str, Any]


class _ContentionState:
    """In-flight items and recent write units; only touched under the request lock."""

    def __init__(self) -> None:
        self.settings: Contention | None = None
        self.in_flight: dict[_ItemKey, float] = {}
        self.units: dict[_PartitionKey, deque[tuple[float, int]]] = {}
        self.conflicts = 0
        self.throttles = 0

    def configure(self, settings: Contention | None) -> None:
        self.settings = settings
        self.in_flight.clear()
        self.units.clear()
        self.conflicts = 0
        self.throttles = 0

    def as_json(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "enabled": settings is not None,
            "conflict_window_ms": round(settings.conflict_window_s * 1000) if settings else None,
            "partition_wcu": settings.partition_wcu if settings else None,
            "conflicts": self.conflicts,
            "throttles": self.throttles,
        }

    def busy_items(self, keys: list[_ItemKey], now: float) -> set[_ItemKey]:
        if len(self.in_flight) > 10_000:  # forget what has long landed
            self.in_flight = {k: t for k, t in self.in_flight.items() if t > now}
        return {key for key in keys if self.in_flight.get(key, 0.0) > now}

    def units_used(self, partition: _PartitionKey, now: float) -> int:
        recent = self.units.get(partition)
        if recent is None:
            return 0
        while recent and recent[0][0] <= now - _THROTTLE_WINDOW_S:
            recent.popleft()
        if not recent:
            del self.units[partition]
            return 0
        return sum(units for _, units in recent)

    def over_rate(self, wanted: dict[_PartitionKey, int], now: float) -> set[_PartitionKey]:
        assert self.settings is not None
        limit = self.settings.partition_wcu
        return {p for p, units in wanted.items() if self.units_used(p, now) + units > limit}

    def spend(self, wanted: dict[_PartitionKey, int], now: float) -> None:
        for partition, units in wanted.items():
            self.units.setdefault(partition, deque()).append((now, units))

    def hold(self, keys: list[_ItemKey], now: float) -> None:
        assert self.settings is not None
        until = now + self.settings.conflict_window_s
        for key in keys:
            self.in_flight[key] = until


_contention = _ContentionState()


def set_contention(settings: Contention | None) -> None:
    """Switch contention mode on (``Contention(...)``) or off (None) for this process."""
    with _MOTO_LOCK:
        _contention.configure(settings)


def contention_status() -> dict[str, Any]:
    return _contention.as_json()


def _typed(value: Any) -> tuple[str, Any]:
    if isinstance(value, DynamoType):
        return value.type, str(value.value)
    ((kind, raw),) = value.items()
    return kind, str(raw)


def _partition_of(table_name: str, key: dict[str, Any], hash_attr: str) -> _PartitionKey:
    return (table_name, *_typed(key[hash_attr]))


def _contention_for_transaction(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> list[tuple[str | None, str | None, dict[str, Any] | None]] | None:
    """Cancellation reasons if contention mode refuses the transaction, else None (and the
    transaction's items are then held in flight and its write units spent)."""
    if _contention.settings is None:
        return None
    now = contention_clock()
    item_keys: list[_ItemKey] = []
    partitions: list[_PartitionKey] = []
    wanted: dict[_PartitionKey, int] = {}
    for transact_item in transact_items:
        op_type, op = next(iter(transact_item.items()))
        table = backend.get_table(op["TableName"])
        key = op["Key"] if op_type != "Put" else op["Item"]
        partition = _partition_of(op["TableName"], key, table.hash_key_attr)
        sort = _typed(key[table.range_key_attr]) if table.range_key_attr else ("", "")
        item_keys.append((*partition, *sort))  # type: ignore[arg-type]
        partitions.append(partition)
        if op_type != "ConditionCheck":
            wanted[partition] = wanted.get(partition, 0) + TRANSACTION_UNITS_PER_WRITE
    busy = _contention.busy_items(item_keys, now)
    if busy:
        _contention.conflicts += 1
        return [
            ("TransactionConflict", CONFLICT_MESSAGE, None) if key in busy else (None, None, None)
            for key in item_keys
        ]
    hot = _contention.over_rate(wanted, now)
    if hot:
        _contention.throttles += 1
        return [
            ("ThrottlingError", THROTTLE_MESSAGE, None) if p in hot else (None, None, None)
            for p in partitions
        ]
    _contention.spend(wanted, now)
    _contention.hold(item_keys, now)
    return None


def _check_single_write(backend: DynamoDBBackend, body: dict[str, Any]) -> None:
    """Contention mode's throttle for PutItem, UpdateItem and DeleteItem (1 unit each)."""
    if _contention.settings is None:
        return
    table_name = body.get("TableName")
    key = body.get("Key") or body.get("Item")
    if not table_name or not isinstance(key, dict):
        return
    try:
        table = backend.get_table(table_name)
        partition = _partition_of(table_name, key, table.hash_key_attr)
    except Exception:  # noqa: BLE001 - moto's own handler reports a malformed request
        return
    now = contention_clock()
    if _contention.over_rate({partition: 1}, now):
        _contention.throttles += 1
        raise ThrottlingException()
    _contention.spend({partition: 1}, now)


def _throttled(handler: Any) -> Any:
    @functools.wraps(handler)
    def checked(self: DynamoHandler) -> Any:
        _check_single_write(self.dynamodb_backend, self.body)
        return handler(self)

    return checked


_original_single_writes = {
    name: getattr(DynamoHandler, name) for name in ("put_item", "update_item", "delete_item")
}


# --- memory that grows only with the data stored --------------------------------------------

# Stream records every reader has been served are dropped once this many newer ones exist
# (a reader that comes back for older ones gets TrimmedDataAccessException, as from DynamoDB
# after 24 hours). Shard iterators beyond the newest this many expire.
STREAM_RECORDS_KEPT = 200
SHARD_ITERATORS_KEPT = 1000
_original_get_records = DynamoDBStreamsBackend.get_records
_original_base_model_new = BaseModel.__new__


class _StreamsError(JsonRESTError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"com.amazonaws.dynamodb.v20120810#{code}", message)


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    """moto's ``BaseModel.__new__`` without the class-level list that keeps every instance
    (every item, stream record and queue message ever made) alive for its dashboard."""
    return object.__new__(cls)


def _get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> Any:
    """GetRecords that lets go of what has been read: served records beyond the newest
    ``STREAM_RECORDS_KEPT`` and iterators beyond the newest ``SHARD_ITERATORS_KEPT``."""
    iterator = self.shard_iterators.get(iterator_arn)
    if iterator is None:
        raise _StreamsError("ExpiredIteratorException", "Iterator expired")
    shard = iterator.stream_shard
    if iterator.sequence_number < shard.starting_sequence_number:
        raise _StreamsError("TrimmedDataAccessException", "The requested records have been trimmed")
    result = _original_get_records(self, iterator_arn, limit)
    served = iterator.sequence_number - shard.starting_sequence_number + len(result["Records"])
    cut = min(served, len(shard.items) - STREAM_RECORDS_KEPT)
    if cut >= STREAM_RECORDS_KEPT:  # in steps, so that the list is not shifted on every read
        del shard.items[:cut]
        shard.starting_sequence_number += cut
    surplus = len(self.shard_iterators) - SHARD_ITERATORS_KEPT
    if surplus > 0:
        for stale in list(itertools.islice(self.shard_iterators, surplus)):
            del self.shard_iterators[stale]
    return result


# --- serializing items without walking every AttributeValue member --------------------------

_original_json_structure = BaseJSONSerializer._serialize_type_structure
_SCALAR_TYPES = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_SET_TYPES = {"SS", "NS"}


def _plain_attribute_value(value: Any) -> bool:
    """An AttributeValue already in its wire shape (nothing to encode: no binary, no objects)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    scalar = _SCALAR_TYPES.get(kind)
    if scalar is not None:
        return type(inner) is scalar
    if kind in _SET_TYPES:
        return isinstance(inner, list) and all(type(v) is str for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(
            type(k) is str and _plain_attribute_value(v) for k, v in inner.items()
        )
    if kind == "L":
        return isinstance(inner, list) and all(_plain_attribute_value(v) for v in inner)
    return False


def _json_structure(
    self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
) -> None:
    """moto's JSON structure serializer, except that an AttributeValue already in wire shape
    is written as it is. The generic path looks up each of the ten possible members of every
    attribute value under several spellings; it was the emulator's largest cost."""
    if shape.name == "AttributeValue" and key and _plain_attribute_value(value):
        self._default_serialize(serialized, value, shape, key)
        return
    _original_json_structure(self, serialized, value, shape, key)


_original_transact_write_items = DynamoDBBackend.transact_write_items
_patch_users = 0
_patch_lock = threading.Lock()


def _install_transaction_patch() -> None:
    """Replace moto's transaction and query code, and SES's sending checks (``ses_rules``),
    while at least one emulator runs here."""
    global _patch_users, _index_generation
    with _patch_lock:
        _patch_users += 1
        if _patch_users == 1:
            _index_generation += 1
        DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        DynamoDBBackend.update_item = _indexed_update_item  # type: ignore[method-assign]
        Table.put_item = _indexed_put_item  # type: ignore[method-assign]
        Table.delete_item = _indexed_delete_item  # type: ignore[method-assign]
        Table.query = _partition_query  # type: ignore[method-assign]
        for name, handler in _original_single_writes.items():
            setattr(DynamoHandler, name, _throttled(handler))
        DynamoDBStreamsBackend.get_records = _get_records  # type: ignore[method-assign]
        BaseModel.__new__ = _untracked_new  # type: ignore[method-assign,assignment]
        BaseJSONSerializer._serialize_type_structure = _json_structure  # type: ignore[method-assign]
        ses_rules.install()
        emulator_speedups.install()


def _remove_transaction_patch() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users -= 1
        if _patch_users == 0:
            DynamoDBBackend.transact_write_items = _original_transact_write_items  # type: ignore[method-assign]
            DynamoDBBackend.update_item = _original_update_item  # type: ignore[method-assign]
            Table.put_item = _original_table_put_item  # type: ignore[method-assign]
            Table.delete_item = _original_table_delete_item  # type: ignore[method-assign]
            Table.query = _original_table_query  # type: ignore[method-assign]
            for name, handler in _original_single_writes.items():
                setattr(DynamoHandler, name, handler)
            DynamoDBStreamsBackend.get_records = _original_get_records  # type: ignore[method-assign]
            BaseModel.__new__ = _original_base_model_new  # type: ignore[method-assign]
            BaseJSONSerializer._serialize_type_structure = _original_json_structure  # type: ignore[method-assign]
            ses_rules.remove()
            emulator_speedups.remove()


@contextlib.contextmanager
def flat_transactions() -> Iterator[None]:
    """The same transaction code for in-process ``mock_aws`` tests (one thread only)."""
    _install_transaction_patch()
    try:
        yield
    finally:
        _remove_transaction_patch()


# --- the HTTP server ------------------------------------------------------------------------


class _SerializedApp:
    """WSGI middleware that lets one request at a time into moto, until its body is built."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == CONTROL_PATH:
            return _control(environ, start_response)
        if path == STATS_PATH:
            return _stats(environ, start_response)
        if path == SENT_PATH:
            return _sent_messages(start_response)
        with _MOTO_LOCK:
            profiler = _profiler
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            try:
                response = self._app(environ, start_response)
                try:
                    body = b"".join(response)
                finally:
                    close = getattr(response, "close", None)
                    if close is not None:
                        close()
            finally:
                if profiler is not None:
                    profiler.disable()
                spent = _OPERATION_COSTS.setdefault(_operation_of(environ), [0, 0.0])
                spent[0] += 1
                spent[1] += time.process_time() - started
        return [body]


# The process's own figures, for benchmarks: ``GET /_emulator/stats`` (memory, CPU, requests,
# and with ``?profile=start`` / ``?profile=top`` a profile of moto's request handling).
STATS_PATH = "/_emulator/stats"
# When set, ``?profile=top`` also writes the whole profile into this directory.
PROFILE_DIR_ENV = "AWS_EMULATOR_PROFILE_DIR"
_profiler: cProfile.Profile | None = None
# ``?memory=start`` / ``?memory=top``: where the memory kept since then was allocated.
_memory_baseline: list[tracemalloc.Snapshot] = []
# Requests and CPU seconds per operation (``DynamoDB_20120810.Query``, ``sqs.ReceiveMessage``).
_OPERATION_COSTS: dict[str, list[Any]] = {}


def _operation_of(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target)
    return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO', '')[:40]}"


def _resident_bytes() -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _deep_size(root: Any) -> int:
    """Bytes held by ``root`` and everything it reaches through containers and attributes
    (classes not walked). Nothing is remembered between objects, so that measuring does not
    itself take memory; an object reached twice (a shared string) is counted twice."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, type):
            continue
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset | deque):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not callable(obj):
            stack.append(obj.__dict__)
    return total


def _live_objects_by_type(top: int) -> list[tuple[str, int, int]]:
    """The types with the most live objects the collector tracks: (type, count, bytes)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for obj in gc.get_objects():
        kind = type(obj)
        tally = counts[f"{kind.__module__}.{kind.__qualname__}"]
        tally[0] += 1
        tally[1] += sys.getsizeof(obj)
    ranked = sorted(counts.items(), key=lambda entry: entry[1][1], reverse=True)[:top]
    return [(name, count, size) for name, (count, size) in ranked]


def _stats(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    global _profiler
    query = environ.get("QUERY_STRING", "")
    figures: dict[str, Any] = {
        "pid": os.getpid(),
        "rss_bytes": _resident_bytes(),
        "cpu_seconds": time.process_time(),
        "operations": {name: list(spent) for name, spent in _OPERATION_COSTS.items()},
    }
    with _MOTO_LOCK:
        items = [
            item
            for regions in dynamodb_backends.values()
            for backend in regions.values()
            for table in backend.tables.values()
            for item in _stored_items(table)
        ]
        figures["stored_items"] = len(items)
        # What those items and the stream records take in moto's objects (deep sizes).
        figures["stored_items_memory"] = sum(_deep_size(item) for item in items)
        figures["stream_records_memory"] = sum(
            _deep_size(table.stream_shard.items)
            for regions in dynamodb_backends.values()
            for backend in regions.values()
            for table in backend.tables.values()
            if table.stream_shard is not None
        )
        figures["stream_records"] = {
            table.name: len(table.stream_shard.items)
            for regions in dynamodb_backends.values()
            for backend in regions.values()
            for table in backend.tables.values()
            if table.stream_shard is not None
        }
        # DynamoDB's own measure of an item (attribute names plus values), summed.
        figures["stored_bytes"] = sum(item.size() for item in items)
    with _MOTO_LOCK:
        if query == "profile=start":
            # CPU time of the thread serving the request: wall time on a busy machine misleads.
            _profiler = cProfile.Profile(time.thread_time)
        elif query == "gc=collect":  # how much of the memory was garbage awaiting collection
            figures["collected"] = gc.collect()
            figures["rss_bytes_after_collect"] = _resident_bytes()
        elif query == "objects=top":
            figures["objects"] = _live_objects_by_type(15)
        elif query == "memory=start":
            tracemalloc.start()
            _memory_baseline[:] = [tracemalloc.take_snapshot()]
        elif query == "memory=top" and _memory_baseline:
            grown = tracemalloc.take_snapshot().compare_to(_memory_baseline[0], "lineno")
            figures["memory"] = [str(line) for line in grown[:15]]
            tracemalloc.stop()
            _memory_baseline.clear()
        elif query == "profile=top" and _profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(_profiler, stream=out)
            stats.sort_stats("tottime").print_stats(15)
            stats.sort_stats("cumulative").print_stats(25)
            figures["profile"] = out.getvalue()
            dump_to = os.environ.get(PROFILE_DIR_ENV)
            if dump_to:  # the whole profile, for pstats or snakeviz
                path = Path(dump_to) / f"aws-emulator-{os.getpid()}-{time.time():.0f}.prof"
                stats.dump_stats(path)
                figures["profile_file"] = str(path)
            _profiler = None
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(figures).encode()]


# What the stack sent through SES and SNS SMS, oldest first (``GET /_emulator/sent-messages``):
# where, locally, a contact-verification code can be read.
SENT_PATH = "/_emulator/sent-messages"


def _sent_messages(start_response: Any) -> Iterable[bytes]:
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    sent: list[dict[str, Any]] = []
    with _MOTO_LOCK:
        for ses_regions in ses_backends.values():
            for ses in ses_regions.values():
                for message in ses.sent_messages:
                    destinations = getattr(message, "destinations", None) or {}
                    sent.append(
                        {
                            "channel": "email",
                            "to": list(destinations.get("ToAddresses", [])),
                            "subject": getattr(message, "subject", None),
                            "body": getattr(message, "body", None),
                        }
                    )
        for sns_regions in sns_backends.values():
            for sns in sns_regions.values():
                for phone, text in sns.sms_messages.values():
                    sent.append({"channel": "sms", "to": [phone], "subject": None, "body": text})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"messages": sent}, ensure_ascii=False).encode()]


CONTROL_PATH = "/_emulator/contention"


def _control(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``GET`` contention mode and its counters; ``PUT`` ``{"enabled", "conflict_window_ms",
    "partition_wcu"}`` to switch it (tests and benchmarks do, against a running stack)."""
    if environ.get("REQUEST_METHOD") == "PUT":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        wanted = json.loads(environ["wsgi.input"].read(length) or b"{}")
        defaults = Contention()
        set_contention(
            Contention(
                conflict_window_s=float(
                    wanted.get("conflict_window_ms", defaults.conflict_window_s * 1000)
                )
                / 1000,
                partition_wcu=int(wanted.get("partition_wcu", defaults.partition_wcu)),
            )
            if wanted.get("enabled", True)
            else None
        )
    body = json.dumps(contention_status()).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _EmulatorWSGIServer(ThreadedWSGIServer):
    # Many clients connect at once in concurrency tests; don't let the listen queue overflow.
    request_queue_size = 1024


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host name. moto's own lookup
    lists its package directory (a ``listdir`` and ~150 ``isdir`` calls) on every request."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backends: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        backend = self._backends.get(host)
        if backend is None:
            backend = super().get_backend_for_host(host)
            if backend is not None:
                self._backends[host] = backend
        return backend


def _make_server(port: int) -> _EmulatorWSGIServer:
    app = _SerializedApp(_Dispatcher(create_backend_app))
    return _EmulatorWSGIServer(HOST, port, app, handler=_QuietRequestHandler)


class EmulatorServer:
    """A running emulator: ``url`` to point boto3 at (``endpoint_url``), ``stop()`` to end it."""

    def __init__(self, server: _EmulatorWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        _remove_transaction_patch()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_thread(port: int = 0) -> EmulatorServer:
    """Serve on 127.0.0.1:``port`` (0: any free port) from a daemon thread; returns when ready."""
    _install_transaction_patch()
    try:
        server = _make_server(port)
    except BaseException:
        _remove_transaction_patch()
        raise
    thread = threading.Thread(
        target=server.serve_forever, name=f"aws-emulator-{server.server_port}", daemon=True
    )
    thread.start()
    return EmulatorServer(server, thread)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.aws_emulator",
        description="moto in server mode on 127.0.0.1, requests serialized behind one lock.",
    )
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument(
        "--contention",
        action="store_true",
        help="cancel overlapping transactions and throttle hot partitions, as DynamoDB does",
    )
    parser.add_argument("--conflict-window-ms", type=float, default=20.0)
    parser.add_argument("--partition-wcu", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.contention:
        set_contention(Contention(args.conflict_window_ms / 1000, args.partition_wcu))

    _install_transaction_patch()
    server = _make_server(args.port)  # a port in use: werkzeug says so and exits with 1
    # moto builds the endpoints it hands to the code it runs (Lambda, CloudFormation) from this.
    os.environ.setdefault("MOTO_PORT", str(server.server_port))
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    print(f"aws emulator listening on http://{HOST}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
