"""The DynamoDB table handle: one lazily created client, the table name, and batch helpers.

Nothing is created at import time (cold starts stay cheap, and tests can point boto3 at
moto first). boto3 reaches the local emulator through the standard ``AWS_ENDPOINT_URL``
variable, so there is no endpoint switch here.

Repositories use the low-level client with ``to_item``/``from_item``: it is lighter on
CPU than the resource layer and exposes everything (transactions, cancellation reasons).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

# Attribute names every item may carry (the table's key schema; the store owns them).
PK, SK = "pk", "sk"
GSI1, GSI2, GSI3 = "gsi1", "gsi2", "gsi3"
GSI_KEYS = {GSI1: ("gsi1pk", "gsi1sk"), GSI2: ("gsi2pk", "gsi2sk"), GSI3: ("gsi3pk", "gsi3sk")}
TTL_ATTRIBUTE = "expires_ttl"

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACTION_LIMIT = 100
_MAX_UNPROCESSED_ROUNDS = 8

Item = dict[str, Any]  # plain Python values
RawItem = dict[str, Any]  # DynamoDB attribute values ({"S": ...})


@functools.lru_cache(maxsize=1)
def client() -> Any:
    """The process-wide DynamoDB client (boto3 clients are thread-safe)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
        tcp_keepalive=True,
    )
    return boto3.client("dynamodb", config=config)


def table_name() -> str:
    return get_settings().table_name


def table() -> Any:
    """A boto3 resource ``Table`` for code that prefers it (not shared across threads)."""
    return _table_for(table_name())


@functools.lru_cache(maxsize=4)
def _table_for(name: str) -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(name)


def reset() -> None:
    """Forget cached clients (tests that switch endpoints or start moto call this)."""
    client.cache_clear()
    _table_for.cache_clear()


@functools.lru_cache(maxsize=1)
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@functools.lru_cache(maxsize=1)
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> RawItem:
    """Plain values to attribute values; ``None`` attributes are left out."""
    serialize = _serializer().serialize
    return {name: serialize(value) for name, value in values.items() if value is not None}


def from_item(raw: Mapping[str, Any]) -> Item:
    """Attribute values to plain values (numbers come back as ``Decimal``)."""
    deserialize = _deserializer().deserialize
    return {name: deserialize(value) for name, value in raw.items()}


def timestamp(moment: datetime) -> str:
    """A moment as stored: ISO 8601 in UTC with microseconds, so stored times sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def query_up_to(query: dict[str, Any], count: int) -> list[RawItem]:
    """The first ``count`` items ``query`` finds (fewer at its end), page after page, each
    page asked for no more than are still wanted. ``query`` is moved along as it is read."""
    items: list[RawItem] = []
    while len(items) < count:
        response = client().query(**query, Limit=count - len(items))
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


THROTTLING_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)


def is_throttling(exc: Exception) -> bool:
    """DynamoDB refused for load (after botocore's own retries), not for the request."""
    return error_code(exc) in THROTTLING_CODES


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.0))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_get(keys: Sequence[RawItem], *, consistent: bool = False) -> list[RawItem]:
    """Every existing item among ``keys`` (raw keys), 100 keys per call, in no set order."""
    found: list[RawItem] = []
    name = table_name()
    for chunk in _chunks(list(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {name: {"Keys": list(chunk), "ConsistentRead": consistent}}
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            response = client().batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            _backoff(attempt)
        else:
            raise RuntimeError("DynamoDB kept returning unprocessed keys")
    return found


def batch_write(puts: Sequence[RawItem] = (), deletes: Sequence[RawItem] = ()) -> None:
    """Unconditional puts and deletes, 25 per call; not atomic across calls."""
    requests = [{"PutRequest": {"Item": item}} for item in puts]
    requests += [{"DeleteRequest": {"Key": key}} for key in deletes]
    name = table_name()
    for chunk in _chunks(requests, BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {name: list(chunk)}
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            response = client().batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                break
            _backoff(attempt)
        else:
            raise RuntimeError("DynamoDB kept returning unprocessed items")
