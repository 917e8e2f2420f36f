"""The emulator's Query reads only the queried partition and answers exactly as moto's does.

Each example builds a table with two global and one local secondary index, writes to it through
every write path (PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem), then
runs random queries page by page twice: once through the emulator's partition query and once
through moto's own Query, which walks the whole table. Every page must be the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models.table import Table

from infra.local import aws_emulator
from infra.local.aws_emulator import flat_transactions

TABLE = "query-equivalence"
PARTITIONS = ("P0", "P1", "P2")
INDEX_PARTITIONS = ("G0", "G1")
SORT_KEYS = tuple(f"S{n:02d}" for n in range(12))


def _create_table(client: Any) -> None:
    string = "S"
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": string},
            {"AttributeName": "sk", "AttributeType": string},
            {"AttributeName": "gpk", "AttributeType": string},
            {"AttributeName": "gsk", "AttributeType": string},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-g-keys",
                "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-n",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


# --- writes ---------------------------------------------------------------------------------

keys = st.fixed_dictionaries({"pk": st.sampled_from(PARTITIONS), "sk": st.sampled_from(SORT_KEYS)})
item_bodies = st.fixed_dictionaries(
    {},
    optional={
        "gpk": st.sampled_from(INDEX_PARTITIONS),
        "gsk": st.sampled_from(SORT_KEYS),
        "n": st.integers(min_value=0, max_value=5),
        "note": st.sampled_from(("a", "b", "ab")),
    },
)


def _attribute(value: str | int) -> dict[str, str]:
    return {"N": str(value)} if isinstance(value, int) else {"S": value}


def _item(key: dict[str, str], body: dict[str, str | int]) -> dict[str, Any]:
    return {name: _attribute(value) for name, value in {**key, **body}.items()}


def _key(key: dict[str, str]) -> dict[str, Any]:
    return {name: {"S": value} for name, value in key.items()}


puts = st.builds(lambda k, b: ("put", k, b), keys, item_bodies)
deletes = st.builds(lambda k: ("delete", k, {}), keys)
updates = st.builds(
    lambda k, g, n: ("update", k, {"gpk": g, "n": n}),
    keys,
    st.sampled_from((*INDEX_PARTITIONS, None)),
    st.integers(min_value=0, max_value=5),
)
single_writes = st.one_of(puts, deletes, updates)
writes = st.one_of(
    single_writes,
    st.builds(lambda ops: ("transact", ops, {}), st.lists(single_writes, min_size=1, max_size=4)),
    st.builds(lambda ops: ("batch", ops, {}), st.lists(st.one_of(puts, deletes), max_size=5)),
)


def _update_args(key: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if body["gpk"] is None:
        expression = "SET n = :n REMOVE gpk"
        values = {":n": {"N": str(body["n"])}}
    else:
        expression = "SET n = :n, gpk = :g"
        values = {":n": {"N": str(body["n"])}, ":g": {"S": body["gpk"]}}
    return {
        "TableName": TABLE,
        "Key": _key(key),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }


def _transaction_op(kind: str, key: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if kind == "put":
        return {"Put": {"TableName": TABLE, "Item": _item(key, body)}}
    if kind == "delete":
        return {"Delete": {"TableName": TABLE, "Key": _key(key)}}
    return {"Update": _update_args(key, body)}


def _write(client: Any, operation: tuple[str, Any, Any]) -> None:
    kind, target, body = operation
    if kind == "put":
        client.put_item(TableName=TABLE, Item=_item(target, body))
    elif kind == "delete":
        client.delete_item(TableName=TABLE, Key=_key(target))
    elif kind == "update":
        client.update_item(**_update_args(target, body))
    elif kind == "transact":
        unique = {(k["pk"], k["sk"]): (op, k, b) for op, k, b in target}
        client.transact_write_items(TransactItems=[_transaction_op(*op) for op in unique.values()])
    else:
        unique = {(k["pk"], k["sk"]): (op, k, b) for op, k, b in target}
        requests = [
            {"PutRequest": {"Item": _item(k, b)}}
            if op == "put"
            else {"DeleteRequest": {"Key": _key(k)}}
            for op, k, b in unique.values()
        ]
        if requests:
            client.batch_write_item(RequestItems={TABLE: requests})


# --- queries --------------------------------------------------------------------------------

sort_conditions = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(("=", "<", "<=", ">", ">=")), st.sampled_from(SORT_KEYS)),
    st.tuples(st.just("begins_with"), st.sampled_from(("S0", "S1", "S"))),
    st.tuples(st.just("between"), st.sampled_from(SORT_KEYS), st.sampled_from(SORT_KEYS)),
)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    index = draw(st.sampled_from((None, "by-g", "by-g-keys", "by-n")))
    names = {"#p": "gpk" if index in ("by-g", "by-g-keys") else "pk"}
    values: dict[str, Any] = {
        ":p": {
            "S": draw(
                st.sampled_from(INDEX_PARTITIONS if index in ("by-g", "by-g-keys") else PARTITIONS)
            )
        }
    }
    expression = "#p = :p"
    condition = draw(sort_conditions) if index != "by-g-keys" else None
    if condition is not None and index == "by-n":  # a number sort key: no begins_with
        numbers = {"begins_with": None, "between": ("between", "1", "3")}
        condition = numbers.get(condition[0], (condition[0], "2"))
    if condition is not None:
        names["#s"] = {None: "sk", "by-g": "gsk", "by-n": "n"}[index]
        kind = condition[0]
        as_value = (lambda v: {"N": v}) if index == "by-n" else (lambda v: {"S": v})
        if kind == "begins_with":
            expression += " AND begins_with(#s, :a)"
            values[":a"] = as_value(condition[1])
        elif kind == "between":
            low, high = sorted(condition[1:])
            expression += " AND #s BETWEEN :a AND :b"
            values[":a"], values[":b"] = as_value(low), as_value(high)
        else:
            expression += f" AND #s {kind} :a"
            values[":a"] = as_value(condition[1])
    request: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": expression,
        "ScanIndexForward": draw(st.booleans()),
    }
    if index is not None:
        request["IndexName"] = index
    limit = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
    if limit is not None:
        request["Limit"] = limit
    if draw(st.booleans()):
        request["FilterExpression"] = "attribute_exists(note) OR n > :f"
        values[":f"] = {"N": "2"}
    if draw(st.booleans()):
        request["Select"] = "COUNT"
    elif index != "by-g-keys" and draw(st.booleans()):
        request["ProjectionExpression"] = "pk, sk, note"
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return request


@contextlib.contextmanager
def _motos_own_query() -> Iterator[None]:
    patched = Table.query
    Table.query = aws_emulator._original_table_query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.query = patched  # type: ignore[method-assign]


def _pages(client: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    pages = []
    start: dict[str, Any] | None = None
    while True:
        answer = client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        answer.pop("ResponseMetadata")
        pages.append(answer)
        start = answer.get("LastEvaluatedKey")
        if start is None or len(pages) > 50:
            return pages


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    history=st.lists(writes, min_size=1, max_size=30),
    asked=st.lists(queries(), min_size=1, max_size=6),
)
def test_partition_query_answers_every_page_exactly_as_motos_query(
    monkeypatch: pytest.MonkeyPatch,
    history: list[tuple[str, Any, Any]],
    asked: list[dict[str, Any]],
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        # Queries in the middle of the history build the indexes early, so that the writes
        # after them have to keep the indexes in step.
        middle = len(history) // 2
        for operation in history[:middle]:
            _write(client, operation)
        for request in asked:
            _pages(client, request)
        for operation in history[middle:]:
            _write(client, operation)
        for request in asked:
            ours = _pages(client, request)
            with _motos_own_query():
                motos = _pages(client, request)
            assert ours == motos, request


def test_query_does_not_walk_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        for number in range(30):
            key = {"pk": PARTITIONS[number % 3], "sk": f"S{number:02d}"}
            client.put_item(TableName=TABLE, Item=_item(key, {"gpk": "G0", "gsk": "S01", "n": 1}))

        def walked(self: Table) -> list[Any]:
            raise AssertionError("the query walked the whole table")

        monkeypatch.setattr(Table, "all_items", walked)
        on_table = client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "P1"}},
        )
        on_index = client.query(
            TableName=TABLE,
            IndexName="by-g",
            KeyConditionExpression="gpk = :g",
            ExpressionAttributeValues={":g": {"S": "G0"}},
        )
    assert on_table["Count"] == 10
    assert on_index["Count"] == 30


# --- items on the wire --------------------------------------------------------------------

names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
scalar_values = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-1000, 1000)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=4)),
    st.builds(
        lambda ss: {"SS": sorted(ss)},
        st.sets(st.text(min_size=1, max_size=3), min_size=1, max_size=3),
    ),
    st.builds(
        lambda ns: {"NS": [str(n) for n in sorted(ns)]},
        st.sets(st.integers(0, 50), min_size=1, max_size=3),
    ),
)
attribute_values = st.recursive(
    scalar_values,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=6,
)


@contextlib.contextmanager
def _motos_own_serializer() -> Iterator[None]:
    from moto.core.serialize import BaseJSONSerializer

    patched = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = aws_emulator._original_json_structure  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseJSONSerializer._serialize_type_structure = patched  # type: ignore[method-assign]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(attributes=st.dictionaries(names, attribute_values, min_size=1, max_size=4))
def test_items_reach_the_client_exactly_as_motos_serializer_sends_them(
    monkeypatch: pytest.MonkeyPatch, attributes: dict[str, Any]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        key = {"pk": {"S": "P0"}, "sk": {"S": "S00"}}
        client.put_item(TableName=TABLE, Item={**attributes, **key})

        def read() -> list[Any]:
            got = client.get_item(TableName=TABLE, Key=key)
            queried = client.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "P0"}},
            )
            return [got["Item"], queried["Items"]]

        ours = read()
        with _motos_own_serializer():
            motos = read()
    assert ours == motos
    assert ours[0] == {**attributes, **key}
