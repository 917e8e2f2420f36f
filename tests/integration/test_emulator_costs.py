"""The emulator's cheaper request handling answers exactly as moto's own code does.

Each shortcut that cuts a per-request cost (in ``infra/local/emulator_speedups.py``: the item
size check, parsed update expressions, the SQS retention check and the send's deduplication
check; in the emulator itself: the backend lookup per host) is run here next to the moto code it
replaces, and the outcomes must be the same.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.parsing.ast_nodes import Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs import models as sqs_models

from infra.local import aws_emulator, emulator_speedups
from infra.local.aws_emulator import flat_transactions

REGION = "us-east-1"
TABLE = "costs"


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def _create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


# --- items: one running size total instead of re-measuring on every attribute -------------

names = st.text(alphabet="abcdéf", min_size=1, max_size=4)
values = st.one_of(
    st.builds(lambda n: {"S": "x" * n}, st.integers(0, 160_000)),
    st.builds(lambda s: {"S": s}, st.text(max_size=6)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-(10**12), 10**12)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.builds(lambda b: {"B": b}, st.binary(max_size=4)),
    st.builds(lambda ss: {"SS": sorted(ss)}, st.sets(st.text(min_size=1, max_size=3), min_size=1)),
    st.builds(
        lambda m: {"M": {k: {"S": v} for k, v in m.items()}},
        st.dictionaries(names, st.text(max_size=3), max_size=3),
    ),
    st.builds(
        lambda items: {"L": [{"N": str(i)} for i in items]},
        st.lists(st.integers(0, 99), max_size=3),
    ),
)


def _built(init: Any, attrs: dict[str, Any]) -> tuple[str, Any]:
    item = object.__new__(Item)
    try:
        init(item, DynamoType({"S": "P"}), DynamoType({"S": "S"}), attrs)
    except ItemSizeTooLarge:
        return ("too large", None)
    assert type(item.attrs) is LimitedSizeDict
    return ("built", dict(item.attrs))


@settings(max_examples=150, deadline=None)
@given(attrs=st.dictionaries(names, values, min_size=1, max_size=6))
def test_items_are_built_and_refused_for_size_exactly_as_moto_builds_them(
    attrs: dict[str, Any],
) -> None:
    assert _built(emulator_speedups._item_init, attrs) == _built(
        emulator_speedups._original_item_init, attrs
    )


def test_an_item_at_the_size_limit_is_stored_and_one_byte_more_is_refused() -> None:
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        keys_size = len("pk") + len("P") + len("sk") + len("S")
        at_limit = 405_000 - keys_size - len("a")
        key = {"pk": {"S": "P"}, "sk": {"S": "S"}}
        client.put_item(TableName=TABLE, Item={**key, "a": {"S": "x" * at_limit}})
        with pytest.raises(ClientError) as refused:
            client.put_item(TableName=TABLE, Item={**key, "a": {"S": "x" * (at_limit + 1)}})
        stored = client.get_item(TableName=TABLE, Key=key)["Item"]
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in str(refused.value)
    assert len(stored["a"]["S"]) == at_limit  # the refused put changed nothing


# --- update expressions parsed once per text --------------------------------------------------

UPDATE = (
    "SET #label = :label, n = if_not_exists(n, :zero) + :step, "
    "tags = list_append(if_not_exists(tags, :empty), :tag) REMOVE gone"
)


def _updates(client: Any) -> list[dict[str, Any]]:
    """The same expression texts again and again with other names and values each time."""
    answers = []
    for round_number in range(3):
        for n, label in enumerate(("label", "title", "name")):
            key = {"pk": {"S": f"P{n}"}, "sk": {"S": "S"}}
            answers.append(
                client.update_item(
                    TableName=TABLE,
                    Key=key,
                    UpdateExpression=UPDATE,
                    ExpressionAttributeNames={"#label": label},
                    ExpressionAttributeValues={
                        ":label": {"S": f"{label}-{round_number}"},
                        ":zero": {"N": "0"},
                        ":step": {"N": str(n + round_number)},
                        ":empty": {"L": []},
                        ":tag": {"L": [{"S": f"t{round_number}"}]},
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            )
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": f"P{n}"}, "sk": {"S": "S"}},
                        "UpdateExpression": "SET n = n - :one, gone = :x",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":x": {"S": "x"}},
                    }
                }
                for n in range(3)
            ]
        )
    for n in range(3):
        answers.append(
            client.get_item(TableName=TABLE, Key={"pk": {"S": f"P{n}"}, "sk": {"S": "S"}})["Item"]
        )
    return answers


@contextlib.contextmanager
def _motos_own_update_parser() -> Iterator[None]:
    patched = UpdateExpressionParser.make
    UpdateExpressionParser.make = classmethod(emulator_speedups._original_update_parser_make)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        UpdateExpressionParser.make = patched  # type: ignore[method-assign]


def test_a_parsed_update_expression_is_reused_with_each_requests_own_names_and_values() -> None:
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        ours = _updates(client)
        assert UPDATE in emulator_speedups._parsed_updates
        client.delete_table(TableName=TABLE)
        _create_table(client)
        with _motos_own_update_parser():
            motos = _updates(client)
    assert ours == motos
    assert ours[-1] == {
        "pk": {"S": "P2"},
        "sk": {"S": "S"},
        "name": {"S": "name-2"},
        "n": {"N": "6"},  # (2 + 0) + (2 + 1) + (2 + 2) - 3
        "tags": {"L": [{"S": "t0"}, {"S": "t1"}, {"S": "t2"}]},
        "gone": {"S": "x"},
    }


def test_a_malformed_update_expression_is_refused_every_time_and_never_kept() -> None:
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        for _ in range(2):
            with pytest.raises(ClientError) as refused:
                client.update_item(
                    TableName=TABLE,
                    Key={"pk": {"S": "P"}, "sk": {"S": "S"}},
                    UpdateExpression="SET n = = :v",
                    ExpressionAttributeValues={":v": {"N": "1"}},
                )
            assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "SET n = = :v" not in emulator_speedups._parsed_updates
        assert "Item" not in client.get_item(
            TableName=TABLE, Key={"pk": {"S": "P"}, "sk": {"S": "S"}}
        )


# --- SQS: the retention check reads the period, not every queue attribute ---------------------


def test_a_message_past_the_queues_retention_is_not_received_and_a_fresh_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws(), flat_transactions():
        sqs = boto3.client("sqs", region_name=REGION)
        retention = {"MessageRetentionPeriod": "60"}
        expiring = sqs.create_queue(QueueName="expiring", Attributes=retention)["QueueUrl"]
        fresh = sqs.create_queue(QueueName="fresh", Attributes=retention)["QueueUrl"]
        sqs.send_message(QueueUrl=expiring, MessageBody="old")
        sqs.send_message(QueueUrl=fresh, MessageBody="young")
        now = sqs_models.unix_time()
        monkeypatch.setattr(sqs_models, "unix_time", lambda: now + 61)
        expired = sqs.receive_message(QueueUrl=expiring, MaxNumberOfMessages=10)
        monkeypatch.setattr(sqs_models, "unix_time", lambda: now + 59)
        kept = sqs.receive_message(QueueUrl=fresh, MaxNumberOfMessages=10)
    assert expired.get("Messages", []) == []
    assert [m["Body"] for m in kept["Messages"]] == ["young"]


def test_receiving_never_builds_the_queue_attributes_per_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = []
    original = sqs_models.Queue.attributes

    def counted(queue: Any) -> dict[str, Any]:
        built.append(queue.name)
        return dict(original.fget(queue))  # type: ignore[attr-defined]

    with mock_aws(), flat_transactions():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(30):
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
        monkeypatch.setattr(sqs_models.Queue, "attributes", property(counted))
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == [f"m{n}" for n in range(10)]
    assert built == []


def _sends(fifo: bool) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """Sends to a queue (FIFO with content-based deduplication, or standard) and what comes
    back: each send's outcome (its message id, or the error code) and the messages received."""
    sqs = boto3.client("sqs", region_name=REGION)
    if fifo:
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        url = sqs.create_queue(QueueName="sends.fifo", Attributes=attributes)["QueueUrl"]
    else:
        url = sqs.create_queue(QueueName="sends", Attributes={"DelaySeconds": "0"})["QueueUrl"]
    group = {"MessageGroupId": "g"} if fifo else {}
    outcomes: list[Any] = []

    def send(**kwargs: Any) -> None:
        try:
            outcomes.append(bool(sqs.send_message(QueueUrl=url, **group, **kwargs)["MessageId"]))
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    send(MessageBody="same")
    send(MessageBody="same")  # FIFO: a duplicate of the first by content
    send(MessageBody="other")
    send(MessageBody="same", MessageDeduplicationId="explicit")  # not a duplicate by id
    send(MessageBody="late", DelaySeconds=901)
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "MessageBody": body, **group} for i, body in enumerate("aab")],
    )
    outcomes.append(sorted(entry["Id"] for entry in batch.get("Successful", [])))
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    return outcomes, [
        (
            m["Body"],
            m["Attributes"].get("MessageDeduplicationId", ""),
            m["Attributes"].get("MessageGroupId", ""),
        )
        for m in received
    ]


@pytest.mark.parametrize("fifo", [True, False], ids=["fifo-content-dedup", "standard"])
def test_sends_are_accepted_deduplicated_and_refused_exactly_as_by_motos_send(fifo: bool) -> None:
    with mock_aws():
        motos = _sends(fifo)
    with mock_aws(), flat_transactions():
        ours = _sends(fifo)
    assert ours == motos
    outcomes, received = ours
    assert outcomes[4] == "InvalidParameterValue"  # DelaySeconds over 900 (refused either way)
    bodies = [body for body, _, _ in received]
    if fifo:
        same = hashlib.sha256(b"same").hexdigest()
        assert bodies == ["same", "other", "same", "a", "b"]  # content duplicates dropped
        assert received[0][1] == same and received[2][1] == "explicit"
    else:
        assert bodies == ["same", "same", "other", "same", "a", "a", "b"]


def test_sending_never_builds_the_queue_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    original = sqs_models.Queue.attributes

    def counted(queue: Any) -> dict[str, Any]:
        built.append(queue.name)
        return dict(original.fget(queue))  # type: ignore[attr-defined]

    with mock_aws(), flat_transactions():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        monkeypatch.setattr(sqs_models.Queue, "attributes", property(counted))
        for n in range(3):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"m{n}{i}"} for i in range(10)],
            )
        sqs.send_message(QueueUrl=url, MessageBody="one more")
        stored = sqs_models.sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue("q")._messages
        bodies = sorted(message.body for message in stored)
    assert built == []
    assert bodies == sorted([f"m{n}{i}" for n in range(3) for i in range(10)] + ["one more"])


# --- which backend serves a host, found once ---------------------------------------------------

HOSTS = [
    "dynamodb.us-east-1.amazonaws.com",
    "streams.dynamodb.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "s3.amazonaws.com",
    "uploads.s3.us-east-1.amazonaws.com",
    "sns.us-east-1.amazonaws.com",
    "email.us-east-1.amazonaws.com",
    "dynamodb",
    "moto_api",
    "localhost:5000",
]


def test_the_dispatcher_finds_motos_backend_for_each_host_and_lists_moto_only_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    motos = DomainDispatcherApplication(create_backend_app)
    ours = aws_emulator._Dispatcher(create_backend_app)
    first = [ours.get_backend_for_host(host) for host in HOSTS]
    assert first == [motos.get_backend_for_host(host) for host in HOSTS]
    assert ours.get_backend_for_host(None) is None

    def listed(path: str) -> list[str]:
        raise AssertionError("moto's package directory was listed again")

    monkeypatch.setattr("moto.backends.os.listdir", listed)
    found = [h for h, b in zip(HOSTS, first, strict=True) if b is not None]
    assert [ours.get_backend_for_host(host) for host in found] == [
        b for b in first if b is not None
    ]


def test_patches_are_removed_when_the_last_emulator_stops() -> None:
    with flat_transactions():
        assert Item.__init__ is emulator_speedups._item_init
        assert (
            sqs_models.camelcase_to_underscores
            is emulator_speedups._cached_camelcase_to_underscores
        )
    assert Item.__init__ is emulator_speedups._original_item_init
    assert UpdateExpressionParser.make.__func__ is emulator_speedups._original_update_parser_make  # type: ignore[attr-defined]
    assert (
        sqs_models.SQSBackend.is_message_valid_based_on_retention_period
        is emulator_speedups._original_retention_check
    )
    assert sqs_models.SQSBackend.send_message is emulator_speedups._original_send_message
    assert (
        sqs_models.camelcase_to_underscores is emulator_speedups._original_camelcase_to_underscores
    )


# --- update validation: moto's tree walks with their lookups made once per walk ---------------

SEED = {
    "pk": {"S": "P"},
    "sk": {"S": "S"},
    "n": {"N": "5"},
    "label": {"S": "a"},
    "tags": {"L": [{"S": "t0"}, {"S": "t1"}, {"S": "t2"}]},
    "colours": {"SS": ["red", "blue"]},
    "address": {"M": {"city": {"S": "上海"}, "lines": {"L": [{"S": "1 号"}]}}},
}
UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("SET n = n + :one, label = :s", {}, {":one": {"N": "1"}, ":s": {"S": "b"}}),
    ("SET n = :one - n", {}, {":one": {"N": "1"}}),
    ("SET #c = if_not_exists(#c, :one)", {"#c": "count"}, {":one": {"N": "1"}}),
    ("SET tags = list_append(:l, tags)", {}, {":l": {"L": [{"S": "first"}]}}),
    ("SET address.city = :s, address.lines[1] = :s", {}, {":s": {"S": "北京"}}),
    ("SET address.#z.#y = :s", {"#z": "zone", "#y": "y"}, {":s": {"S": "x"}}),
    ("REMOVE tags[2], tags[0], label", {}, {}),
    ("ADD n :one, colours :c", {}, {":one": {"N": "3"}, ":c": {"SS": ["green"]}}),
    ("DELETE colours :c", {}, {":c": {"SS": ["red"]}}),
    ("SET label = :s REMOVE n ADD fresh :one", {}, {":s": {"S": "c"}, ":one": {"N": "1"}}),
    ("SET n = label + :one", {}, {":one": {"N": "1"}}),
    ("SET missing = missing + :one", {}, {":one": {"N": "1"}}),
    ("SET tags = list_append(label, :l)", {}, {":l": {"L": []}}),
    ("SET address = :s, address.city = :s", {}, {":s": {"S": "x"}}),
    ("SET pk = :s", {}, {":s": {"S": "other"}}),
    ("SET label = :undefined", {}, {":s": {"S": "x"}}),
    ("ADD label :one", {}, {":one": {"N": "1"}}),
    ("SET a = :s ADD b :one SET c = :s", {}, {":s": {"S": "x"}, ":one": {"N": "1"}}),
    ("ADD a :one ADD b :one", {}, {":one": {"N": "1"}}),
    ("SET c = :s SET d = :s REMOVE a REMOVE b", {}, {":s": {"S": "x"}}),
    (
        "REMOVE a SET c = :s, d = :s ADD e :one DELETE colours :c",
        {},
        {":s": {"S": "x"}, ":one": {"N": "1"}, ":c": {"SS": ["blue"]}},
    ),
]


def _apply_updates(client: Any) -> list[Any]:
    outcomes: list[Any] = []
    key = {"pk": {"S": "P"}, "sk": {"S": "S"}}
    for expression, names, values in UPDATES:
        client.put_item(TableName=TABLE, Item=SEED)
        extra: dict[str, Any] = {}
        if names:
            extra["ExpressionAttributeNames"] = names
        if values:
            extra["ExpressionAttributeValues"] = values
        try:
            client.update_item(TableName=TABLE, Key=key, UpdateExpression=expression, **extra)
        except ClientError as error:
            outcomes.append(("refused", error.response["Error"]["Code"], str(error)))
        outcomes.append(client.get_item(TableName=TABLE, Key=key)["Item"])
    return outcomes


@contextlib.contextmanager
def _motos_own_traversal() -> Iterator[None]:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.validators import ActionCountValidator

    patched = DepthFirstTraverser.traverse
    patched_counts = ActionCountValidator.verify_action_counts
    DepthFirstTraverser.traverse = emulator_speedups._original_traverse  # type: ignore[method-assign]
    ActionCountValidator.verify_action_counts = emulator_speedups._original_verify_action_counts  # type: ignore[method-assign]
    del Node.__deepcopy__  # type: ignore[attr-defined]
    try:
        yield
    finally:
        DepthFirstTraverser.traverse = patched  # type: ignore[method-assign]
        ActionCountValidator.verify_action_counts = patched_counts  # type: ignore[method-assign]
        Node.__deepcopy__ = emulator_speedups._node_deepcopy  # type: ignore[attr-defined]


def test_updates_are_validated_and_applied_exactly_as_by_motos_tree_walks() -> None:
    with mock_aws(), flat_transactions():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        ours = _apply_updates(client)
        with _motos_own_traversal():
            motos = _apply_updates(client)
    assert ours == motos
    refused = [outcome for outcome in ours if isinstance(outcome, tuple)]
    assert len(refused) >= 8  # the refusals are part of what is compared
    once = [r[2].split(": ")[-1] for r in refused if "used once" in r[2]]
    assert once == [
        f'The "{clause}" section can only be used once in an update expression;'
        for clause in ("SET", "ADD", "REMOVE")
    ]
    assert (ours[0]["n"], ours[1]["n"]) == ({"N": "6"}, {"N": "-4"})


def test_each_response_class_has_its_action_names_listed_once_and_as_moto_lists_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core import responses as core_responses
    from moto.dynamodb.responses import DynamoHandler

    with flat_transactions():
        listed = core_responses.method_names_from_class(DynamoHandler)
        assert listed == emulator_speedups._original_method_names_from_class(DynamoHandler)
        assert "transact_write_items" in listed

        def walked(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the class was listed again")

        monkeypatch.setattr("moto.core.utils.inspect.getmembers", walked)
        assert core_responses.method_names_from_class(DynamoHandler) == listed


def _shape(node: Any, parent: Any = None) -> Any:
    """A node tree as plain data, checking that every node points at its own parent."""
    if not isinstance(node, Node):
        return node.to_json() if isinstance(node, DynamoType) else node
    assert node.parent is parent
    fields = {k: v for k, v in vars(node).items() if k not in ("parent", "children")}
    children = [_shape(child, node) for child in node.children or []]
    return (type(node).__name__, repr(sorted(fields.items(), key=lambda kv: kv[0])), children)


def test_a_copied_update_tree_has_the_same_shape_and_its_own_nodes() -> None:
    import copy

    tree = emulator_speedups._original_update_parser_make(UpdateExpressionParser, UPDATE)
    with flat_transactions():
        ours = copy.deepcopy(tree)
    motos = copy.deepcopy(tree)
    assert _shape(ours) == _shape(motos) == _shape(tree)
    assert ours is not tree and ours.children[0] is not tree.children[0]


def test_stats_report_the_bytes_stored_and_the_memory_moto_holds_for_them() -> None:
    import json
    import urllib.request

    with aws_emulator.start_in_thread() as server:
        client = boto3.client(
            "dynamodb",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="stats",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def stats() -> dict[str, Any]:
            with urllib.request.urlopen(f"{server.url}/_emulator/stats", timeout=30) as answer:
                return dict(json.load(answer))

        before = stats()
        for n in range(20):
            client.put_item(
                TableName="stats", Item={"pk": {"S": f"K{n:02d}"}, "v": {"S": "x" * 98}}
            )
        after = stats()
        client.delete_table(TableName="stats")
    # DynamoDB's item size: names and values, 2 + 3 + 1 + 98 bytes each.
    assert after["stored_bytes"] - before["stored_bytes"] == 20 * 104
    assert after["stored_items"] - before["stored_items"] == 20
    assert after["stored_items_memory"] - before["stored_items_memory"] > 20 * 104
    assert after["operations"]["DynamoDB_20120810.PutItem"][0] >= 20


# --- stream records kept packed until read ---------------------------------------------------


def _stream_of_writes(packed: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every stream record of the same writes, read twice, with records packed or as moto's."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import StreamRecord

    with aws_emulator.start_in_thread() as server:
        if not packed:
            StreamRecord.__init__ = emulator_speedups._original_stream_record_init  # type: ignore[method-assign]
            StreamRecord.to_json = emulator_speedups._original_stream_record_to_json  # type: ignore[method-assign]
        options = {
            "endpoint_url": server.url,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        client = boto3.client("dynamodb", **options)
        streams = boto3.client("dynamodbstreams", **options)
        _create_table(client)
        client.update_table(
            TableName=TABLE,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        key = {"pk": {"S": "P"}, "sk": {"S": "S"}}
        item = {
            **key,
            "n": {"N": "1.50"},
            "b": {"B": b"\x00\xff"},
            "ss": {"SS": ["a", "b"]},
            "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "2"}}}]},
            "m": {"M": {"city": {"S": "上海"}, "on": {"BOOL": True}, "none": {"NULL": True}}},
        }
        client.put_item(TableName=TABLE, Item=item)
        client.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET n = n + :one, l[0] = :s",
            ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": "y"}},
        )
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": {**item, "sk": {"S": "T"}}}}]
        )
        client.delete_item(TableName=TABLE, Key=key)
        arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]

        def read() -> list[dict[str, Any]]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records = streams.get_records(ShardIterator=iterator)["Records"]
            for record in records:  # differ between any two runs
                del record["eventID"]
                del record["dynamodb"]["ApproximateCreationDateTime"]
                # moto's estimate measures the time too, whose digits vary
                assert record["dynamodb"].pop("SizeBytes") > 100
            return records

        first, second = read(), read()
        assert first == second
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)
        fields = [sorted(vars(record)) for record in table.stream_shard.items]
        client.delete_table(TableName=TABLE)
        return first, fields


def test_stream_records_are_kept_packed_and_read_exactly_as_moto_built_them() -> None:
    ours, our_fields = _stream_of_writes(packed=True)
    motos, moto_fields = _stream_of_writes(packed=False)
    assert ours == motos
    assert [r["eventName"] for r in ours] == ["INSERT", "MODIFY", "INSERT", "REMOVE"]
    assert ours[1]["dynamodb"]["NewImage"]["n"] == {"N": "2.50"}
    assert our_fields == [["packed_record"]] * 4
    assert moto_fields == [["record"]] * 4
