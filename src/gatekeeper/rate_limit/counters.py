"""The counters table: a handful of atomic primitives, in DynamoDB and in memory.

Every primitive is a single-item atomic operation (``UpdateItem`` with ``ADD``/``SET`` and a
``ConditionExpression``), so concurrent containers never race on read-modify-write. A failed
condition returns the item as it was (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), so a
rejection needs no second read. ``ADD`` is not idempotent: if the SDK retries an update whose
first attempt did land (a timeout after the write), the counter counts that request twice. The
bound: at most one extra count per retried call; never a missed count.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gatekeeper.store import tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Added:
    """Result of a conditional add: ``ok`` with the new count, or refused with the old one."""

    ok: bool
    count: int


@dataclass(frozen=True, slots=True)
class Block:
    until: float
    reason: str


class CounterStore(Protocol):
    def add(self, key: dict[str, str], amount: int, cap: int, expires_at: int) -> Added:
        """Add ``amount`` if the count stays ``<= cap``; atomically."""
        ...

    def subtract(self, key: dict[str, str], amount: int) -> None:
        """Give back ``amount`` (compensation of an add whose request was rejected elsewhere)."""
        ...

    def get_count(self, key: dict[str, str]) -> int: ...

    def take_token(
        self,
        key: dict[str, str],
        *,
        now: int,
        interval: int,
        tolerance: int,
        idle: bool,
        expires_at: int,
    ) -> tuple[bool, int | None]:
        """One GCRA step on the bucket's theoretical arrival time ``tat`` (milliseconds).

        ``idle``: the bucket is full (``tat <= now`` or absent), so ``tat = now + interval``.
        Otherwise ``tat = tat + interval`` if ``now < tat <= now + tolerance``. Returns
        (taken, tat): the new ``tat`` when taken, the current one (None if absent) when not.
        """
        ...

    def give_back_token(self, key: dict[str, str], interval: int) -> None: ...

    def get_block(self, kind: str, value: str) -> Block | None: ...

    def put_block(self, kind: str, value: str, until: float, reason: str) -> None:
        """Block until ``until``; never shortens a longer block (the sink's or an admin's)."""
        ...

    def add_failure(self, kind: str, value: str, window_start: int, expires_at: int) -> int: ...


# --- DynamoDB -------------------------------------------------------------------------------
def _key(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in key.items()}


def _failed_item(exc: Exception) -> dict[str, dict[str, str]]:
    """The item as it was, from a ConditionalCheckFailedException (ALL_OLD)."""
    response: dict[str, Any] = getattr(exc, "response", {})
    item: dict[str, dict[str, str]] = response.get("Item", {})
    return item


class DynamoCounterStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._condition_failed = client.exceptions.ConditionalCheckFailedException

    def add(self, key: dict[str, str], amount: int, cap: int, expires_at: int) -> Added:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_key(key),
                UpdateExpression="ADD #c :n SET #e = if_not_exists(#e, :e)",
                ConditionExpression="attribute_not_exists(#c) OR #c <= :max",
                ExpressionAttributeNames={"#c": "count", "#e": tables.TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":n": {"N": str(amount)},
                    ":max": {"N": str(cap - amount)},
                    ":e": {"N": str(expires_at)},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._condition_failed as exc:
            item = _failed_item(exc)
            return Added(False, int(item["count"]["N"]) if "count" in item else cap)
        return Added(True, int(response["Attributes"]["count"]["N"]))

    def subtract(self, key: dict[str, str], amount: int) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="ADD #c :n",
            ConditionExpression="attribute_exists(#c)",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":n": {"N": str(-amount)}},
        )

    def get_count(self, key: dict[str, str]) -> int:
        item = self._client.get_item(TableName=self._table, Key=_key(key), ConsistentRead=True).get(
            "Item"
        )
        return int(item["count"]["N"]) if item and "count" in item else 0

    def take_token(
        self,
        key: dict[str, str],
        *,
        now: int,
        interval: int,
        tolerance: int,
        idle: bool,
        expires_at: int,
    ) -> tuple[bool, int | None]:
        if idle:
            update, condition = "SET #t = :next, #e = :e", "attribute_not_exists(#t) OR #t <= :now"
            values = {":now": {"N": str(now)}, ":next": {"N": str(now + interval)}}
        else:
            update, condition = "SET #t = #t + :i, #e = :e", "#t > :now AND #t <= :tol"
            values = {
                ":now": {"N": str(now)},
                ":tol": {"N": str(now + tolerance)},
                ":i": {"N": str(interval)},
            }
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_key(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#t": "tat", "#e": tables.TTL_ATTRIBUTE},
                ExpressionAttributeValues={**values, ":e": {"N": str(expires_at)}},
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._condition_failed as exc:
            item = _failed_item(exc)
            return False, int(item["tat"]["N"]) if "tat" in item else None
        return True, int(response["Attributes"]["tat"]["N"])

    def give_back_token(self, key: dict[str, str], interval: int) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="SET #t = #t - :i",
            ConditionExpression="attribute_exists(#t)",
            ExpressionAttributeNames={"#t": "tat"},
            ExpressionAttributeValues={":i": {"N": str(interval)}},
        )

    def get_block(self, kind: str, value: str) -> Block | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(tables.block_key(kind, value))
        ).get("Item")
        if not item:
            return None
        return Block(float(item["until"]["N"]), item.get("reason", {}).get("S", ""))

    def put_block(self, kind: str, value: str, until: float, reason: str) -> None:
        # a failed condition means a longer block is already there: it stands
        with contextlib.suppress(self._condition_failed):
            self._client.put_item(
                TableName=self._table,
                Item={
                    **_key(tables.block_key(kind, value)),
                    "until": {"N": str(int(until))},
                    "reason": {"S": reason},
                    tables.TTL_ATTRIBUTE: {"N": str(int(until) + 3600)},
                },
                ConditionExpression="attribute_not_exists(#u) OR #u < :until",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues={":until": {"N": str(int(until))}},
            )

    def add_failure(self, kind: str, value: str, window_start: int, expires_at: int) -> int:
        response = self._client.update_item(
            TableName=self._table,
            Key=_key(tables.failure_key(kind, value, window_start)),
            UpdateExpression="ADD #c :one SET #e = if_not_exists(#e, :e)",
            ExpressionAttributeNames={"#c": "count", "#e": tables.TTL_ATTRIBUTE},
            ExpressionAttributeValues={":one": {"N": "1"}, ":e": {"N": str(expires_at)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["count"]["N"])


# --- in memory --------------------------------------------------------------------------------
class InMemoryCounterStore:
    """Same semantics as DynamoDB, for unit tests and the demo; counts its calls."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, float]] = {}
        self.calls = 0
        self.fail: Exception | None = None
        self._lock = threading.Lock()

    def _item(self, key: dict[str, str]) -> dict[str, float]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return self.items.setdefault((key["pk"], key["sk"]), {})

    def add(self, key: dict[str, str], amount: int, cap: int, expires_at: int) -> Added:
        with self._lock:
            item = self._item(key)
            count = int(item.get("count", 0))
            if count + amount > cap:
                return Added(False, count)
            item["count"] = count + amount
            item.setdefault(tables.TTL_ATTRIBUTE, expires_at)
            return Added(True, count + amount)

    def subtract(self, key: dict[str, str], amount: int) -> None:
        with self._lock:
            item = self._item(key)
            item["count"] = item.get("count", 0) - amount

    def get_count(self, key: dict[str, str]) -> int:
        with self._lock:
            return int(self._item(key).get("count", 0))

    def take_token(
        self,
        key: dict[str, str],
        *,
        now: int,
        interval: int,
        tolerance: int,
        idle: bool,
        expires_at: int,
    ) -> tuple[bool, int | None]:
        with self._lock:
            item = self._item(key)
            old = int(item["tat"]) if "tat" in item else None
            if idle:
                if old is not None and old > now:
                    return False, old
                item["tat"] = now + interval
            else:
                if old is None or not now < old <= now + tolerance:
                    return False, old
                item["tat"] = old + interval
            item[tables.TTL_ATTRIBUTE] = expires_at
            return True, int(item["tat"])

    def give_back_token(self, key: dict[str, str], interval: int) -> None:
        with self._lock:
            item = self._item(key)
            if "tat" in item:
                item["tat"] -= interval

    def get_block(self, kind: str, value: str) -> Block | None:
        with self._lock:
            item = self._item(tables.block_key(kind, value))
            return Block(item["until"], "") if "until" in item else None

    def put_block(self, kind: str, value: str, until: float, reason: str) -> None:
        with self._lock:
            item = self._item(tables.block_key(kind, value))
            item["until"] = max(until, item.get("until", until))

    def add_failure(self, kind: str, value: str, window_start: int, expires_at: int) -> int:
        with self._lock:
            item = self._item(tables.failure_key(kind, value, window_start))
            item["count"] = item.get("count", 0) + 1
            return int(item["count"])
