"""The event pump: what Lambda's event source mappings and EventBridge do, on one machine.

``python -m infra.local.pump [--app app:app] [--env-file FILE]`` runs it in its own process
(the local stack starts it that way); ``Pump(app, env).start()`` runs it in a thread.

It reads ``app.event_sources`` (what Chalice registered for ``on_sqs_message``,
``on_dynamodb_record`` and ``schedule``) and calls the very handler objects in
``app.handler_map`` that Lambda would call, with Lambda-shaped events:

* **SQS**: up to ``batch_size`` messages per invocation; a returned
  ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`` deletes only the others, an
  exception deletes none, and an invalid failure list counts as a failed batch (as in
  Lambda). Failed messages become visible again after ``sqs_retry_delay`` seconds and moto's
  redrive policy moves them to the dead-letter queue after ``maxReceiveCount`` receives.
  Receives use short polling: the emulator serves one request at a time, so a long poll would
  hold up every other client. While a queue keeps filling whole batches it is received from
  again in the same pass (at most ``sqs_batches_per_pass`` batches), so a backlog drains.
* **DynamoDB streams**: every shard from TRIM_HORIZON (the table and its mapping are created
  together), records shaped as Lambda delivers them (``eventSourceARN``, epoch-seconds
  ``ApproximateCreationDateTime``, base64 binary attributes), in batches of ``batch_size``.
  A returned ``batchItemFailures`` (``itemIdentifier`` = SequenceNumber) checkpoints before
  the first failed record and retries from there; an exception bisects the batch. After
  ``stream_max_retries`` retries the record at the head is given up on, logged, and (when
  configured) described on the on-failure queue, so one bad record cannot block the shard.
  While a shard keeps yielding full batches it is read again in the same pass (at most
  ``stream_batches_per_pass`` batches), as Lambda keeps invoking while a shard has a backlog.
* **Schedules**: ``rate(...)`` and ``cron(...)`` (UTC; minutes, hours, day of month, month,
  day of week, year with ``*``, ``?``, values, names, lists, ranges and steps) fire Scheduled
  Events at their times; ``tick(name)`` fires one now.

One loop polls every source in turn, so handlers never run concurrently with each other; a
handler that raises is logged and never stops the pump.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import (
    Chalice,
    DynamoDBEventConfig,
    ScheduledEventConfig,
    ScheduleExpression,
    SQSEventConfig,
)

from infra.local.gateway import (
    ACCOUNT_ID,
    lambda_context,
    load_app,
    read_env_file,
    set_parent_death_signal,
)

log = logging.getLogger("infra.local.pump")  # not __name__: these run as __main__

DEFAULT_REGION = "us-east-1"
# Chalice's default function timeout; what the handler's context reports as time left.
HANDLER_TIMEOUT_SECONDS = 60
SQS_RECEIVE_LIMIT = 10  # per ReceiveMessage call
_SOURCE_RETRY_SECONDS = 5.0  # how often to retry a queue or stream that cannot be found yet
_SHARD_REFRESH_SECONDS = 5.0

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class PumpSettings:
    poll_interval: float = 0.25  # idle pause between passes over every source
    sqs_retry_delay: int = 1  # seconds before a failed message is visible again
    stream_max_retries: int = 2  # retries of a failing stream record before giving up on it
    stream_retry_delay: float = 0.5
    # An idle shard is read at most this often: moto keeps every shard iterator it hands out.
    stream_idle_interval: float = 0.5
    # A shard that keeps returning full batches is read again in the same pass, up to this
    # many batches, so a backlog drains without starving the other sources and schedules.
    stream_batches_per_pass: int = 10
    stream_bisect_on_error: bool = True
    # Likewise a queue that keeps filling whole batches is received from again in the same
    # pass, up to this many batches of the handler's batch size.
    sqs_batches_per_pass: int = 10
    on_failure_queue_url: str | None = None  # where given-up stream records are described


# --- schedule expressions ------------------------------------------------------------------------


class Schedule(Protocol):
    expression: str

    def next_after(self, moment: datetime) -> datetime: ...


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


_MONTH_NAMES = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_CRON_FIELDS = (  # name, lowest, highest, names
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 1, 7, _DAY_NAMES),
    ("year", 1970, 2199, {}),
)


@dataclass(frozen=True)
class CronSchedule:
    """An EventBridge cron expression (UTC). ``None`` for a field means "any"."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = Sunday ... 7 = Saturday, as in AWS
    years: frozenset[int] | None

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.years is not None and day.year not in self.years:
            return False
        if self.days_of_month is not None and day.day not in self.days_of_month:
            return False
        aws_weekday = (day.weekday() + 1) % 7 + 1
        return self.days_of_week is None or aws_weekday in self.days_of_week

    def next_after(self, moment: datetime) -> datetime:
        """The first time strictly after ``moment`` (UTC) that the expression names."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(366 * 30):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ValueError(f"{self.expression} never fires")


def _cron_values(text: str, lowest: int, highest: int, names: Mapping[str, int]) -> set[int]:
    def number(token: str) -> int:
        token = token.strip().upper()
        value = names.get(token)
        if value is None:
            if not token.isdigit():
                # L, W and # (last day, weekday, nth weekday) are not evaluated locally.
                raise ValueError(f"{token!r} is not supported by the local scheduler")
            value = int(token)
        if not lowest <= value <= highest:
            raise ValueError(f"{value} is outside {lowest}-{highest}")
        return value

    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be positive")
        if base == "*":
            first, last = lowest, highest
        elif "-" in base:
            first_text, last_text = base.split("-", 1)
            first, last = number(first_text), number(last_text)
        else:
            first = number(base)
            last = highest if step_text else first
        if first > last:
            raise ValueError(f"range {base!r} runs backwards")
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression: str) -> CronSchedule:
    inner = expression.strip()[len("cron(") : -1]
    fields = inner.split()
    if len(fields) != 6:
        raise ValueError(f"{expression}: cron needs 6 fields (min hour dom month dow year)")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    parsed: dict[str, frozenset[int] | None] = {}
    for text, (name, lowest, highest, names) in zip(fields, _CRON_FIELDS, strict=True):
        if text == "?" or (text == "*" and name in ("day-of-month", "day-of-week", "year")):
            if text == "?" and name not in ("day-of-month", "day-of-week"):
                raise ValueError(f"{expression}: '?' is only allowed for the day fields")
            parsed[name] = None  # any
            continue
        try:
            parsed[name] = frozenset(_cron_values(text, lowest, highest, names))
        except ValueError as exc:
            raise ValueError(f"{expression}: {name}: {exc}") from None
    return CronSchedule(
        expression,
        minutes=parsed["minutes"] or frozenset(),
        hours=parsed["hours"] or frozenset(),
        days_of_month=parsed["day-of-month"],
        months=parsed["month"] or frozenset(),
        days_of_week=parsed["day-of-week"],
        years=parsed["year"],
    )


def parse_schedule(expression: str | ScheduleExpression) -> RateSchedule | CronSchedule:
    """Parse ``rate(5 minutes)`` or ``cron(30 16 * * ? *)`` (or Chalice's Rate / Cron)."""
    text = expression if isinstance(expression, str) else expression.to_string()
    text = text.strip()
    rate = _RATE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ValueError(f"{text}: the rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ValueError(f"{text}: use the singular unit for 1 and the plural otherwise")
        return RateSchedule(text, value * _RATE_UNITS[unit.rstrip("s")])
    if text.startswith("cron(") and text.endswith(")"):
        return parse_cron(text)
    raise ValueError(f"{text!r} is neither rate(...) nor cron(...)")


# --- Lambda-shaped events ---------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(
    rule_name: str,
    *,
    region: str = DEFAULT_REGION,
    when: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The EventBridge Scheduled Event a schedule handler receives."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": _iso(when or datetime.now(UTC)),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": dict(detail or {}),
    }


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda's SQS event source puts it in ``Records``."""
    attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [_b64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = _b64(value["BinaryValue"])
    return shaped


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def _json_attribute_value(value: Any) -> Any:
    """DynamoDB JSON as Lambda delivers it: binary values base64-encoded, numbers as strings."""
    if not isinstance(value, Mapping):
        return value
    shaped: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B":
            shaped[kind] = _b64(inner)
        elif kind == "BS":
            shaped[kind] = [_b64(item) for item in inner]
        elif kind == "M":
            shaped[kind] = {k: _json_attribute_value(v) for k, v in inner.items()}
        elif kind == "L":
            shaped[kind] = [_json_attribute_value(item) for item in inner]
        else:
            shaped[kind] = inner
    return shaped


def stream_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB stream record (as boto3 returns it) shaped as Lambda delivers it."""
    source = raw.get("dynamodb") or {}
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created_epoch = float(int(created.timestamp()))
    elif created is None:
        created_epoch = float(int(time.time()))
    else:
        created_epoch = float(created)
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created_epoch,
        "Keys": {k: _json_attribute_value(v) for k, v in (source.get("Keys") or {}).items()},
        "SequenceNumber": str(source["SequenceNumber"]),
        "SizeBytes": int(source.get("SizeBytes", 0)),
        "StreamViewType": source.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    for image in ("NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = {k: _json_attribute_value(v) for k, v in source[image].items()}
    record: dict[str, Any] = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = dict(raw["userIdentity"])
    return record


# --- batch responses -----------------------------------------------------------------------------


class _InvalidBatchResponse(Exception):
    pass


def failed_item_ids(result: Any, known_ids: list[str]) -> set[str]:
    """The ids a handler reported in ``batchItemFailures``.

    As in Lambda, a malformed list (or an id that is not in the batch) fails the whole batch.
    """
    if not isinstance(result, Mapping) or result.get("batchItemFailures") is None:
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        raise _InvalidBatchResponse("batchItemFailures is not a list")
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known_ids:
            raise _InvalidBatchResponse(f"itemIdentifier {identifier!r} is not in the batch")
        failed.add(identifier)
    return failed


# --- sources -------------------------------------------------------------------------------------


@dataclass
class _Invoker:
    """Calls one registered handler as Lambda would: event dict plus a context."""

    name: str
    handler: Handler
    function_name: str

    def __call__(self, event: dict[str, Any]) -> Any:
        context = lambda_context(self.function_name, HANDLER_TIMEOUT_SECONDS)
        return self.handler(event, context)


class SqsSource:
    def __init__(
        self,
        invoker: _Invoker,
        config: SQSEventConfig,
        queue_resolver: Callable[[SQSEventConfig], str | None],
        sqs: Any,
        region: str,
        settings: PumpSettings,
    ) -> None:
        self.invoker = invoker
        self.config = config
        self.batch_size = max(1, int(config.batch_size))
        self._resolve = queue_resolver
        self._sqs = sqs
        self._region = region
        self._settings = settings
        self.queue_url: str | None = None
        self.queue_arn = ""
        self._next_resolve = 0.0
        self._warned = False

    def poll(self) -> int:
        """Deliver what the queue holds: batch after batch while they come back full, at most
        ``sqs_batches_per_pass`` batches, as Lambda keeps polling a queue with a backlog."""
        if not self._ready():
            return 0
        delivered = 0
        for _ in range(max(1, self._settings.sqs_batches_per_pass)):
            count = self._deliver_batch()
            delivered += count
            if count < self.batch_size:
                break
        return delivered

    def _deliver_batch(self) -> int:
        messages = self._receive()
        if not messages:
            return 0
        records = [sqs_record(message, self.queue_arn, self._region) for message in messages]
        ids = [record["messageId"] for record in records]
        try:
            result = self.invoker({"Records": records})
            failed = failed_item_ids(result, ids)
        except _InvalidBatchResponse as exc:
            log.error("%s: %s; the whole batch will be retried", self.invoker.name, exc)
            failed = set(ids)
        except Exception:
            log.exception(
                "%s raised; the whole batch of %d will be retried", self.invoker.name, len(ids)
            )
            failed = set(ids)
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        retried = [m for m in messages if m["MessageId"] in failed]
        self._delete(succeeded)
        self._make_visible(retried)
        if retried:
            log.info("%s: %d of %d messages failed", self.invoker.name, len(retried), len(ids))
        return len(messages)

    def _ready(self) -> bool:
        if self.queue_url:
            return True
        now = time.monotonic()
        if now < self._next_resolve:
            return False
        self._next_resolve = now + _SOURCE_RETRY_SECONDS
        try:
            url = self._resolve(self.config)
            if url:
                attributes = self._sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn"]
                )["Attributes"]
                self.queue_arn = attributes["QueueArn"]
                self.queue_url = url
        except (ClientError, BotoCoreError) as exc:
            self._warn_once(f"queue {_queue_label(self.config)} is not available yet: {exc}")
            return False
        if not self.queue_url:
            self._warn_once(f"no queue found for {_queue_label(self.config)}; retrying")
        return bool(self.queue_url)

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s: %s", self.invoker.name, message)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            wanted = min(SQS_RECEIVE_LIMIT, self.batch_size - len(messages))
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages") or []
            messages.extend(received)
            if len(received) < wanted:
                break
        return messages

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_RECEIVE_LIMIT):
            chunk = messages[start : start + SQS_RECEIVE_LIMIT]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )

    def _make_visible(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_RECEIVE_LIMIT):
            chunk = messages[start : start + SQS_RECEIVE_LIMIT]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self._settings.sqs_retry_delay,
                    }
                    for i, m in enumerate(chunk)
                ],
            )


def _queue_label(config: SQSEventConfig) -> str:
    return config.queue or config.queue_arn or "?"


@dataclass
class _ShardReader:
    shard_id: str
    iterator: str | None = None
    closed: bool = False
    read_after: float = 0.0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_sequence: str | None = None
    attempts: int = 0
    retry_at: float = 0.0


class StreamSource:
    def __init__(
        self,
        invoker: _Invoker,
        config: DynamoDBEventConfig,
        stream_resolver: Callable[[DynamoDBEventConfig], str | None],
        streams: Any,
        sqs: Any,
        region: str,
        settings: PumpSettings,
    ) -> None:
        self.invoker = invoker
        self.config = config
        self.batch_size = max(1, int(config.batch_size))
        self._resolve = stream_resolver
        self._streams = streams
        self._sqs = sqs
        self._region = region
        self._settings = settings
        self.stream_arn: str | None = None
        self._shards: dict[str, _ShardReader] = {}
        self._next_refresh = 0.0

    def poll(self) -> int:
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + (
                _SHARD_REFRESH_SECONDS if self.stream_arn else _SOURCE_RETRY_SECONDS
            )
            self._refresh_shards()
        delivered = 0
        for reader in list(self._shards.values()):
            delivered += self._poll_shard(reader)
        return delivered

    def _refresh_shards(self) -> None:
        try:
            if self.stream_arn is None:
                self.stream_arn = self._resolve(self.config)
                if self.stream_arn is None:
                    log.warning(
                        "%s: no stream found for %s", self.invoker.name, self.config.stream_arn
                    )
                    return
            description = self._streams.describe_stream(StreamArn=self.stream_arn)
        except (ClientError, BotoCoreError) as exc:
            log.warning("%s: stream not available yet: %s", self.invoker.name, exc)
            return
        for shard in description["StreamDescription"].get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._shards:
                self._shards[shard_id] = _ShardReader(shard_id)

    def _poll_shard(self, reader: _ShardReader) -> int:
        """Deliver full batches from the shard while it has them, up to the pass's bound."""
        delivered = 0
        for _ in range(max(1, self._settings.stream_batches_per_pass)):
            count = self._deliver_next_batch(reader)
            delivered += count
            if count < self.batch_size or reader.retry_at > time.monotonic():
                break
        return delivered

    def _deliver_next_batch(self, reader: _ShardReader) -> int:
        if not reader.buffer and not reader.closed and time.monotonic() >= reader.read_after:
            self._read(reader)
        if not reader.buffer or time.monotonic() < reader.retry_at:
            return 0
        batch = reader.buffer[: self.batch_size]
        first_failed = self._deliver(batch)
        if first_failed is None:
            del reader.buffer[: len(batch)]
            reader.attempts = 0
            return len(batch)
        # Checkpoint just before the first failure and retry from there.
        del reader.buffer[:first_failed]
        reader.attempts += 1
        if reader.attempts > self._settings.stream_max_retries:
            self._give_up(reader.buffer.pop(0), reader.shard_id)
            reader.attempts = 0
        else:
            reader.retry_at = time.monotonic() + self._settings.stream_retry_delay
        return first_failed

    def _read(self, reader: _ShardReader) -> None:
        assert self.stream_arn is not None
        try:
            if reader.iterator is None:
                kwargs: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
                if reader.last_sequence is not None:
                    kwargs = {
                        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": reader.last_sequence,
                    }
                reader.iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=reader.shard_id, **kwargs
                )["ShardIterator"]
            response = self._streams.get_records(
                ShardIterator=reader.iterator, Limit=min(self.batch_size, 1000)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                reader.iterator = None
                return
            log.warning("%s: reading shard %s failed: %s", self.invoker.name, reader.shard_id, exc)
            return
        except BotoCoreError as exc:
            log.warning("%s: reading shard %s failed: %s", self.invoker.name, reader.shard_id, exc)
            return
        reader.iterator = response.get("NextShardIterator")
        if reader.iterator is None:
            reader.closed = True
        records = [
            stream_record(raw, self.stream_arn, self._region) for raw in response.get("Records", [])
        ]
        if records:
            reader.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
        else:
            reader.read_after = time.monotonic() + self._settings.stream_idle_interval
        reader.buffer.extend(records)

    def _deliver(self, records: list[dict[str, Any]]) -> int | None:
        """Index of the first record that failed, or None when the whole batch succeeded."""
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        try:
            result = self.invoker({"Records": records})
            failed = failed_item_ids(result, sequence_numbers)
        except _InvalidBatchResponse as exc:
            log.error("%s: %s; retrying the batch", self.invoker.name, exc)
            return 0
        except Exception:
            log.exception("%s raised on %d records", self.invoker.name, len(records))
            if self._settings.stream_bisect_on_error and len(records) > 1:
                middle = len(records) // 2
                first = self._deliver(records[:middle])
                if first is not None:
                    return first
                second = self._deliver(records[middle:])
                return None if second is None else middle + second
            return 0
        if not failed:
            return None
        return min(sequence_numbers.index(sequence) for sequence in failed)

    def _give_up(self, record: dict[str, Any], shard_id: str) -> None:
        sequence = record["dynamodb"]["SequenceNumber"]
        log.error(
            "%s: giving up on stream record %s (%s %s) after %d retries",
            self.invoker.name,
            sequence,
            record["eventName"],
            json.dumps(record["dynamodb"].get("Keys")),
            self._settings.stream_max_retries,
        )
        queue_url = self._settings.on_failure_queue_url
        if not queue_url:
            return
        # What Lambda's on-failure destination receives for a stream batch it gave up on.
        document = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self._region}:{ACCOUNT_ID}:function:"
                f"{self.invoker.function_name}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self._settings.stream_max_retries + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": _iso(datetime.now(UTC)),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence,
                "endSequenceNumber": sequence,
                "approximateArrivalOfFirstRecord": _iso(
                    datetime.fromtimestamp(record["dynamodb"]["ApproximateCreationDateTime"], UTC)
                ),
                "approximateArrivalOfLastRecord": _iso(
                    datetime.fromtimestamp(record["dynamodb"]["ApproximateCreationDateTime"], UTC)
                ),
                "batchSize": 1,
                "streamArn": self.stream_arn,
            },
        }
        try:
            self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(document))
        except (ClientError, BotoCoreError):
            log.exception("%s: could not describe the record on %s", self.invoker.name, queue_url)


class ScheduleSource:
    def __init__(
        self, invoker: _Invoker, schedule: RateSchedule | CronSchedule, rule_name: str, region: str
    ) -> None:
        self.invoker = invoker
        self.schedule = schedule
        self.rule_name = rule_name
        self._region = region
        self.next_run: datetime | None = None

    def poll(self, now: datetime) -> int:
        if self.next_run is None:
            # Like a new EventBridge rule: the first rate event comes one interval from now.
            self.next_run = self.schedule.next_after(now)
            return 0
        if now < self.next_run:
            return 0
        due = self.next_run
        self.next_run = self.schedule.next_after(due)
        while self.next_run <= now:  # fell behind: fire once, not once per missed slot
            self.next_run = self.schedule.next_after(self.next_run)
        self.fire(when=due)
        return 1

    def fire(self, *, when: datetime | None = None, detail: Mapping[str, Any] | None = None) -> Any:
        event = scheduled_event(self.rule_name, region=self._region, when=when, detail=detail)
        try:
            return self.invoker(event)
        except Exception:
            log.exception("schedule %s raised", self.invoker.name)
            raise


def schedule_names(app: Chalice) -> list[str]:
    return sorted(c.name for c in app.event_sources if isinstance(c, ScheduledEventConfig))


def invoke_schedule(
    app: Chalice,
    name: str,
    *,
    detail: Mapping[str, Any] | None = None,
    when: datetime | None = None,
    stage: str = "local",
    region: str = DEFAULT_REGION,
) -> Any:
    """Call the schedule handler ``name`` once, with a Scheduled Event for ``when`` (default
    now; a later moment runs the job as it will run then) (``make tick``)."""
    if name not in schedule_names(app):
        known = ", ".join(schedule_names(app)) or "none"
        raise KeyError(f"no schedule handler named {name!r} (known: {known})")
    rule_name = f"{app.app_name}-{stage}-{name}"
    invoker = _Invoker(name, app.handler_map[name], rule_name)
    return invoker(scheduled_event(rule_name, region=region, when=when, detail=detail))


# --- the pump ------------------------------------------------------------------------------------


def _logical_queue_urls(env: Mapping[str, str]) -> dict[str, str]:
    """Queue URLs by the logical names handlers use (``fulfilment``, ``notifications``)."""
    try:
        from infra.local.provision import queue_urls_by_logical_name
    except ImportError:
        queue_urls_by_logical_name = None
    urls: dict[str, str] = {}
    if queue_urls_by_logical_name is not None:
        with contextlib.suppress(Exception):
            urls.update(queue_urls_by_logical_name(dict(env)))
    # Fallback and complement: FULFILMENT_QUEUE_URL -> "fulfilment".
    for key, value in env.items():
        if key.endswith("_QUEUE_URL") and value:
            logical = key[: -len("_QUEUE_URL")].lower().replace("_", "-")
            urls.setdefault(logical, value)
            urls.setdefault(logical.replace("-", "_"), value)
    return urls


class Pump:
    """Delivers SQS messages, stream records and schedules to the app's handlers."""

    def __init__(
        self,
        app: Chalice,
        env: Mapping[str, str] | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        settings: PumpSettings | None = None,
    ) -> None:
        self.app = app
        self.env = dict(os.environ if env is None else env)
        self.region = region or self.env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.endpoint_url = endpoint_url or self.env.get("AWS_ENDPOINT_URL")
        self.settings = settings or PumpSettings(
            on_failure_queue_url=self.env.get("STREAM_FAILURE_QUEUE_URL") or None
        )
        self.stage = self.env.get("STAGE", "local")
        client_config = Config(
            retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30
        )
        self._sqs = self._client("sqs", client_config)
        self._streams = self._client("dynamodbstreams", client_config)
        self.sqs_sources: list[SqsSource] = []
        self.stream_sources: list[StreamSource] = []
        self.schedule_sources: dict[str, ScheduleSource] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._build_sources()

    def _client(self, service: str, config: Config) -> Any:
        credentials = {
            "aws_access_key_id": self.env.get("AWS_ACCESS_KEY_ID", "testing"),
            "aws_secret_access_key": self.env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        }
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=config,
            **credentials,
        )

    def _invoker(self, name: str) -> _Invoker:
        return _Invoker(
            name, self.app.handler_map[name], f"{self.app.app_name}-{self.stage}-{name}"
        )

    def _build_sources(self) -> None:
        for config in self.app.event_sources:
            if isinstance(config, SQSEventConfig):
                self.sqs_sources.append(
                    SqsSource(
                        self._invoker(config.name),
                        config,
                        self.queue_url_for,
                        self._sqs,
                        self.region,
                        self.settings,
                    )
                )
            elif isinstance(config, DynamoDBEventConfig):
                self.stream_sources.append(
                    StreamSource(
                        self._invoker(config.name),
                        config,
                        self.stream_arn_for,
                        self._streams,
                        self._sqs,
                        self.region,
                        self.settings,
                    )
                )
            elif isinstance(config, ScheduledEventConfig):
                try:
                    schedule = parse_schedule(config.schedule_expression)
                except ValueError as exc:
                    log.error("schedule %s will not fire on its own: %s", config.name, exc)
                    schedule = None
                source = ScheduleSource(
                    self._invoker(config.name),
                    schedule or RateSchedule("never", 10**9),
                    f"{self.app.app_name}-{self.stage}-{config.name}",
                    self.region,
                )
                if schedule is None:
                    source.next_run = datetime.max.replace(tzinfo=UTC)
                self.schedule_sources[config.name] = source
            else:
                log.info(
                    "%s (%s) is not delivered by the local pump",
                    config.name,
                    type(config).__name__,
                )

    # --- resolving what handlers name ---

    def queue_url_for(self, config: SQSEventConfig) -> str | None:
        """The URL of the queue an ``on_sqs_message`` handler names (logical name or ARN)."""
        name = config.queue or (config.queue_arn or "").rsplit(":", 1)[-1]
        if not name:
            return None
        by_logical_name = _logical_queue_urls(self.env)
        if name in by_logical_name:
            return by_logical_name[name]
        for candidate in (name, f"{self.app.app_name}-{self.stage}-{name}"):
            try:
                return str(self._sqs.get_queue_url(QueueName=candidate)["QueueUrl"])
            except ClientError:
                continue
        return None

    def stream_arn_for(self, config: DynamoDBEventConfig) -> str | None:
        """The stream an ``on_dynamodb_record`` handler reads: as declared if it exists here,
        else the main table's (production patches the real ARN into the event source)."""
        declared = config.stream_arn
        if declared:
            try:
                self._streams.describe_stream(StreamArn=declared)
                return declared
            except (ClientError, BotoCoreError):
                pass
        return self.env.get("TABLE_STREAM_ARN") or None

    # --- running ---

    def run_once(self, now: datetime | None = None) -> int:
        """One pass over every source; returns how many messages/records/events it delivered."""
        delivered = 0
        for source in [*self.sqs_sources, *self.stream_sources]:
            try:
                delivered += source.poll()
            except Exception:
                log.exception("polling %s failed", source.invoker.name)
        moment = now or datetime.now(UTC)
        for schedule in self.schedule_sources.values():
            with contextlib.suppress(Exception):  # already logged by fire()
                delivered += schedule.poll(moment)
        return delivered

    def run_forever(self) -> None:
        names = [s.invoker.name for s in [*self.sqs_sources, *self.stream_sources]]
        names += list(self.schedule_sources)
        log.info("pump delivering to: %s", ", ".join(names) or "(no event handlers)")
        while not self._stop.is_set():
            if self.run_once() == 0:
                self._stop.wait(self.settings.poll_interval)

    def start(self) -> threading.Thread:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="event-pump", daemon=True)
        self._thread.start()
        return self._thread

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def tick(self, name: str, *, detail: Mapping[str, Any] | None = None) -> Any:
        """Fire the schedule handler ``name`` once, now."""
        source = self.schedule_sources.get(name)
        if source is None:
            known = ", ".join(sorted(self.schedule_sources)) or "none"
            raise KeyError(f"no schedule handler named {name!r} (known: {known})")
        return source.fire(detail=detail)


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.pump",
        description="Deliver SQS messages, stream records and schedules to the app's handlers.",
    )
    parser.add_argument("--app", default="app:app", help="module:attribute of the Chalice app")
    parser.add_argument("--env-file", type=Path, help="JSON env (or a stack file) for the app")
    parser.add_argument("--poll-interval", type=float, default=PumpSettings.poll_interval)
    parser.add_argument("--sqs-retry-delay", type=int, default=PumpSettings.sqs_retry_delay)
    parser.add_argument("--parent-pid", type=int, help="stop when this parent process is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s pump[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("infra.local").setLevel(logging.INFO)  # not boto3's chatter
    if args.parent_pid:
        set_parent_death_signal()
        if os.getppid() != args.parent_pid:
            return 1
    if args.env_file:
        os.environ.update(read_env_file(args.env_file))
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # The environment is complete before the app (and its settings) are imported.
    app = load_app(args.app)
    pump = Pump(
        app,
        settings=PumpSettings(
            poll_interval=args.poll_interval,
            sqs_retry_delay=args.sqs_retry_delay,
            on_failure_queue_url=os.environ.get("STREAM_FAILURE_QUEUE_URL") or None,
        ),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        pump.request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    if args.parent_pid:
        threading.Thread(
            target=_watch_parent, args=(args.parent_pid, pump), name="parent-watch", daemon=True
        ).start()
    pump.run_forever()
    log.info("pump stopped")
    return 0


def _watch_parent(parent_pid: int, pump: Pump) -> None:
    while not pump.stopping:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            log.warning("the process that started the pump is gone; stopping")
            pump.request_stop()


if __name__ == "__main__":
    sys.exit(main())
