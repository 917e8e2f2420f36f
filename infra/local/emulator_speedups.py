"""Cuts to moto's per-request costs and memory that do not change what it answers.

Installed by the emulator (``infra.local.aws_emulator``) while one runs in the process, and
taken out with it: ``install()`` and ``remove()`` are called under the emulator's patch lock.

* Items are built with their size check kept as a running total (moto re-measures the item on
  every attribute it adds).
* Update expressions are parsed once per text, their trees are walked with each step's lookups
  made once per walk, clause counts are kept per subtree, and trees are copied without
  ``__reduce_ex__``.
* Stream records are kept pickled until a reader asks for them.
* An SQS receive checks retention without rebuilding every queue attribute per message, and a
  send reads the queue's content-based deduplication flag instead of every queue attribute.
* Names moto converts or lists on every request are looked up once.

``tests/integration/test_emulator_costs.py`` compares each of these with moto's own code.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import pickle
import string
from typing import Any

from moto.core import responses as core_responses
from moto.dynamodb.exceptions import ItemSizeTooLarge, TooManyClauses
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import StreamRecord
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.ast_nodes import (
    DepthFirstTraverser,
    Expression,
    Node,
    UpdateExpressionAddClause,
    UpdateExpressionFunction,
    UpdateExpressionRemoveClause,
    UpdateExpressionSetClause,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.validators import ActionCountValidator
from moto.sqs import models as sqs_models

# --- stream records kept packed until read ---------------------------------------------------

_original_stream_record_init = StreamRecord.__init__
_original_stream_record_to_json = StreamRecord.to_json


def _packed_stream_record_init(self: StreamRecord, *args: Any, **kwargs: Any) -> None:
    """moto's stream record, kept pickled until a reader asks for it.

    A record holds the item's old and new image as nested dicts, about ten times the bytes of
    the data; while the stream consumer is behind (it is, locally, under sustained load) those
    records were most of the emulator's memory. The record is built by moto as before and
    comes back from ``to_json`` equal to what moto built, a fresh copy on every read."""
    _original_stream_record_init(self, *args, **kwargs)
    self.__dict__["packed_record"] = pickle.dumps(
        self.__dict__.pop("record"), protocol=pickle.HIGHEST_PROTOCOL
    )


def _unpacked_stream_record(self: StreamRecord) -> dict[str, Any]:
    packed = self.__dict__.get("packed_record")
    if packed is None:  # made while the patches were out
        return _original_stream_record_to_json(self)
    return dict(pickle.loads(packed))  # our own bytes, never from a request


# --- per-request costs ---------------------------------------------------------------------

# DynamoDB's item limit as moto enforces it (LimitedSizeDict): names plus values, 405,000 bytes.
_ITEM_SIZE_LIMIT = 405_000
_original_item_init = Item.__init__


def _item_init(
    self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]
) -> None:
    """moto's ``Item.__init__`` with its size check kept as a running total.

    moto's ``LimitedSizeDict`` re-measures every attribute already stored each time one is
    added, so building an item costs the square of its attribute count. The sum is the same,
    checked at the same attribute, and the same ``ItemSizeTooLarge`` is raised."""
    self.hash_key = hash_key
    self.range_key = range_key
    checked = LimitedSizeDict()
    size = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        size += bytesize(key) + typed.size()
        if size > _ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(checked, key, typed)
    self.attrs = checked


# Parsed update expressions by their text. moto parses each one twice per request (handler and
# model) and never changes the tree it gets: its validator works on a deep copy.
_PARSED_UPDATES_KEPT = 1024
_parsed_updates: dict[str, Any] = {}
_original_update_parser_make = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]


def _parsed_update_expression(cls: type, expression: str) -> Any:
    parsed = _parsed_updates.get(expression)
    if parsed is None:
        parsed = _original_update_parser_make(cls, expression)  # a bad expression raises here
        if len(_parsed_updates) >= _PARSED_UPDATES_KEPT:
            _parsed_updates.clear()
        _parsed_updates[expression] = parsed
    return parsed


_original_traverse = DepthFirstTraverser.traverse


def _traverse(self: DepthFirstTraverser, node: Any) -> Any:
    """moto's depth-first walk of an update expression's tree, with each step's lookups made
    once per walk instead of once per node.

    moto asks ``_processing_map()`` (a new dict of bound methods) twice for every node it
    visits, and every one of its nine validators walks the whole tree; those lookups were the
    largest share of an UpdateItem. The order of visits, the ``pre_processing_of_child`` calls,
    which processor handles a node (the first class in the map it is an instance of) and how
    the result replaces the node in its parent are moto's."""
    processors = list(self._processing_map().items())
    handled = tuple(node_type for node_type, _ in processors)
    before_child = self.pre_processing_of_child
    # isinstance() against moto's abstract node classes is slow; the answer depends only on
    # the node's class, so it is looked up once per class and walk.
    processor_of: dict[type, Any] = {}

    def processor_for(node_type: type) -> Any:
        if node_type not in processor_of:
            processor_of[node_type] = next(
                (process for t, process in processors if issubclass(node_type, t)), None
            )
        return processor_of[node_type]

    is_node = _node_classes.get

    def walk(node: Any, child_id: int) -> Any:
        node_type = type(node)
        known = is_node(node_type)
        if known is None:
            known = _is_node(node_type)
        if known:
            parent = node.parent
            if node.children is not None:
                for i, child in enumerate(node.children):
                    before_child(node, i)
                    walk(child, i)
            process = processor_for(node_type) if handled else None
            if process is not None:
                node = process(node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
        return node

    return walk(node, -1)


_node_classes: dict[type, bool] = {}


def _is_node(node_type: type) -> bool:
    known = _node_classes.get(node_type)
    if known is None:
        known = _node_classes[node_type] = issubclass(node_type, Node)
    return known


def _node_deepcopy(self: Node, memo: dict[int, Any]) -> Node:
    """What ``copy.deepcopy`` does for a node of an expression tree (a new instance of its
    class whose attributes are deep copies, sharing the memo), without going through
    ``__reduce_ex__``: moto's validator deep-copies the whole tree before every update."""
    clone = object.__new__(type(self))
    memo[id(self)] = clone
    clone.__dict__.update({name: copy.deepcopy(v, memo) for name, v in self.__dict__.items()})
    return clone


_original_verify_action_counts = ActionCountValidator.verify_action_counts
_ClauseCounts = tuple[int, int, int]  # ADD, REMOVE and SET clauses found under a node


def _clause_counts(node: Any, memo: dict[int, _ClauseCounts]) -> _ClauseCounts:
    """What moto's ``node.find_clauses([...])`` finds for each of the three clause types, in
    one pass: a child of that type counts, any other Expression or function is searched."""
    known = memo.get(id(node))
    if known is not None:
        return known
    add = remove = set_ = 0
    for child in node.children or []:
        child_type = type(child)
        searched = issubclass(child_type, Expression | UpdateExpressionFunction)
        below = _clause_counts(child, memo) if searched else (0, 0, 0)
        add += 1 if child_type is UpdateExpressionAddClause else below[0]
        remove += 1 if child_type is UpdateExpressionRemoveClause else below[1]
        set_ += 1 if child_type is UpdateExpressionSetClause else below[2]
    memo[id(node)] = counts = (add, remove, set_)
    return counts


def _verify_action_counts(self: ActionCountValidator, node: Any) -> Any:
    """moto's check that an update has at most one ADD, REMOVE and SET clause. moto runs it on
    every clause and sub-expression, searching the whole subtree again each time; here each
    subtree's counts are kept for the walk. Same checks, same order, same errors."""
    memo: dict[int, _ClauseCounts] = self.__dict__.setdefault("_clause_counts", {})
    add, remove, set_ = _clause_counts(node, memo)
    if add > 1:
        raise TooManyClauses("ADD")
    if remove > 1:
        raise TooManyClauses("REMOVE")
    if set_ > 1:
        raise TooManyClauses("SET")
    return node


_original_retention_check = sqs_models.SQSBackend.is_message_valid_based_on_retention_period
_original_camelcase_to_underscores = sqs_models.camelcase_to_underscores


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check for one received message, reading the queue's retention period
    itself: moto builds every queue attribute three times per message for it, counting the
    queue's messages each time, so a receive cost the square of the queue's length."""
    retention_period = self.get_queue(queue_name).message_retention_period
    return bool(retention_period + message.sent_timestamp / 1000 > sqs_models.unix_time())


_original_send_message = sqs_models.SQSBackend.send_message


def _send_message(
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    """moto's ``send_message`` reading the queue's ``content_based_deduplication`` flag itself.

    moto asks ``queue.attributes`` whether content-based deduplication is on, and that builds
    every attribute, counting the queue's messages three times: each send (ten per
    SendMessageBatch) cost the length of the queue. Its answer is "true" exactly for a FIFO
    queue with the flag set (standard queues do not list the attribute). The validation, ids,
    delay, sequence number, attributes, error and enqueueing are moto's, in moto's order."""
    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay = queue.delay_seconds if delay_seconds is None else int(delay_seconds)
    message = sqs_models.Message(str(sqs_models.random.uuid4()), message_body, system_attributes)
    if queue.fifo_queue and queue.content_based_deduplication is True:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(
            sqs_models.random.choice(string.digits) for _ in range(20)
        )
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay > sqs_models.MAXIMUM_MESSAGE_DELAY:
        raise sqs_models.InvalidParameterValue(
            f"Value {delay} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message.mark_sent(delay_seconds=delay)
    queue.add_message(message)
    return message


_cached_camelcase_to_underscores = functools.lru_cache(maxsize=256)(
    _original_camelcase_to_underscores
)

_original_method_names_from_class = core_responses.method_names_from_class
_original_response_camelcase = core_responses.camelcase_to_underscores
# The function names of each response class, as moto lists them with inspect.getmembers()
# before every request; emptied whenever the patches go in or out (they change methods).
_method_names: dict[type, list[str]] = {}


def _cached_method_names(clazz: Any) -> list[str]:
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = _original_method_names_from_class(clazz)
    return names


def install() -> None:
    Item.__init__ = _item_init  # type: ignore[method-assign]
    StreamRecord.__init__ = _packed_stream_record_init  # type: ignore[method-assign]
    StreamRecord.to_json = _unpacked_stream_record  # type: ignore[method-assign]
    DepthFirstTraverser.traverse = _traverse  # type: ignore[method-assign]
    Node.__deepcopy__ = _node_deepcopy  # type: ignore[attr-defined]
    ActionCountValidator.verify_action_counts = _verify_action_counts  # type: ignore[method-assign]
    UpdateExpressionParser.make = classmethod(_parsed_update_expression)  # type: ignore[method-assign,assignment]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    sqs_models.SQSBackend.send_message = _send_message  # type: ignore[method-assign]
    sqs_models.camelcase_to_underscores = _cached_camelcase_to_underscores
    core_responses.camelcase_to_underscores = _cached_camelcase_to_underscores
    core_responses.method_names_from_class = _cached_method_names
    _method_names.clear()


def remove() -> None:
    Item.__init__ = _original_item_init  # type: ignore[method-assign]
    StreamRecord.__init__ = _original_stream_record_init  # type: ignore[method-assign]
    StreamRecord.to_json = _original_stream_record_to_json  # type: ignore[method-assign]
    DepthFirstTraverser.traverse = _original_traverse  # type: ignore[method-assign]
    if "__deepcopy__" in Node.__dict__:
        del Node.__deepcopy__  # type: ignore[attr-defined]
    ActionCountValidator.verify_action_counts = _original_verify_action_counts  # type: ignore[method-assign]
    UpdateExpressionParser.make = classmethod(_original_update_parser_make)  # type: ignore[method-assign,assignment]
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        _original_retention_check
    )
    sqs_models.SQSBackend.send_message = _original_send_message  # type: ignore[method-assign]
    sqs_models.camelcase_to_underscores = _original_camelcase_to_underscores
    core_responses.camelcase_to_underscores = _original_response_camelcase
    core_responses.method_names_from_class = _original_method_names_from_class
    _method_names.clear()
