"""Admin access to the counters table: read and reset usage, list and edit IP blocks.

The rate limiter (:mod:`gatekeeper.rate_limit.counters`) owns the hot-path primitives; this
module only reads and deletes the same items, through the key helpers of
:mod:`gatekeeper.store.tables`. Usage lives under ``RL#<rule id>#<scope key>`` (one item per
window, ``count``) and ``TB#<rule id>#<scope key>`` (token bucket ``tat``); blocks under
``BLOCK#ip#<ip>`` / ``BLOCK`` (``until``, ``reason``, ``expires_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gatekeeper.store import tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BLOCK_TTL_GRACE_SECONDS = 3600
"""``expires_at`` of a block item is ``until`` plus this (TTL deletes late; readers check)."""


@dataclass(frozen=True, slots=True)
class WindowCount:
    window_start: int
    count: int


@dataclass(frozen=True, slots=True)
class Usage:
    windows: tuple[WindowCount, ...]
    bucket_tat_ms: int | None


@dataclass(frozen=True, slots=True)
class BlockItem:
    value: str
    until: int
    reason: str


class CountersAdminStore(Protocol):
    def usage(self, rule_id: str, scope_key: str) -> Usage: ...

    def reset_usage(self, rule_id: str, scope_key: str) -> int:
        """Delete every window item and the bucket of this rule and scope key; returns how many."""
        ...

    def get_block(self, kind: str, value: str) -> BlockItem | None: ...

    def list_blocks(
        self, kind: str, *, limit: int, after: str | None
    ) -> tuple[list[BlockItem], str | None]: ...

    def put_block(self, kind: str, value: str, until: int, reason: str) -> None: ...

    def delete_block(self, kind: str, value: str) -> bool: ...


def _key(key: dict[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}


class DynamoCountersAdminStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _window_items(self, rule_id: str, scope_key: str) -> list[dict[str, Any]]:
        pk = tables.counter_key(rule_id, scope_key, 0)["pk"]
        items: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items

    def usage(self, rule_id: str, scope_key: str) -> Usage:
        windows = sorted(
            (
                WindowCount(int(item["sk"]["S"]), int(item["count"]["N"]))
                for item in self._window_items(rule_id, scope_key)
                if "count" in item and item["sk"]["S"].isdigit()
            ),
            key=lambda w: w.window_start,
        )
        bucket = self._client.get_item(
            TableName=self._table,
            Key=_key(tables.bucket_key(rule_id, scope_key)),
            ConsistentRead=True,
        ).get("Item")
        tat = int(bucket["tat"]["N"]) if bucket and "tat" in bucket else None
        return Usage(tuple(windows), tat)

    def reset_usage(self, rule_id: str, scope_key: str) -> int:
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._window_items(rule_id, scope_key)]
        deleted = 0
        for key in keys:
            self._client.delete_item(TableName=self._table, Key=key)
            deleted += 1
        response = self._client.delete_item(
            TableName=self._table,
            Key=_key(tables.bucket_key(rule_id, scope_key)),
            ReturnValues="ALL_OLD",
        )
        return deleted + (1 if response.get("Attributes") else 0)

    def get_block(self, kind: str, value: str) -> BlockItem | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(tables.block_key(kind, value)), ConsistentRead=True
        ).get("Item")
        return _block(item, kind) if item else None

    def list_blocks(
        self, kind: str, *, limit: int, after: str | None
    ) -> tuple[list[BlockItem], str | None]:
        prefix = tables.block_key(kind, "")["pk"]
        found: list[BlockItem] = []
        start: dict[str, Any] | None = _key(tables.block_key(kind, after)) if after else None
        while True:
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            response = self._client.scan(
                TableName=self._table,
                FilterExpression="begins_with(pk, :p) AND sk = :sk",
                ExpressionAttributeValues={":p": {"S": prefix}, ":sk": {"S": tables.BLOCK_SK}},
                Limit=200,
                **extra,
            )
            for item in response.get("Items", []):
                if len(found) == limit:
                    return found, found[-1].value
                found.append(_block(item, kind))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found, None
            start = dict(last)

    def put_block(self, kind: str, value: str, until: int, reason: str) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **_key(tables.block_key(kind, value)),
                "until": {"N": str(until)},
                "reason": {"S": reason},
                tables.TTL_ATTRIBUTE: {"N": str(until + BLOCK_TTL_GRACE_SECONDS)},
            },
        )

    def delete_block(self, kind: str, value: str) -> bool:
        response = self._client.delete_item(
            TableName=self._table, Key=_key(tables.block_key(kind, value)), ReturnValues="ALL_OLD"
        )
        return bool(response.get("Attributes"))


def _block(item: dict[str, Any], kind: str) -> BlockItem:
    value = item["pk"]["S"].removeprefix(tables.block_key(kind, "")["pk"])
    return BlockItem(value, int(float(item["until"]["N"])), item.get("reason", {}).get("S", ""))
