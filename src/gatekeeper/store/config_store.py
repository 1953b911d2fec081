"""The config store: a small protocol, one DynamoDB implementation and one in memory.

Shaped after Powertools idempotency's persistence layer: the algorithm that uses the store
(caching, version checks) lives once in :mod:`gatekeeper.store.config_cache` over these few
primitives; implementations only move bytes. Every write bumps the config version in the same
transaction, so a warm authorizer never sees a change without also seeing a new version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from gatekeeper.identity.api_keys import ApiKeyRecord
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import ApiRoutes, ClaimMapping, RbacSnapshot, Role, RoleAssignment
from gatekeeper.store import tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class ConfigStore(Protocol):
    """The primitives the authorizer reads and the admin tools write."""

    def get_version(self) -> int: ...

    def load_snapshot(self) -> RbacSnapshot: ...

    def get_assignments(self, principal_id: str) -> tuple[RoleAssignment, ...]: ...

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def put(self, *items: BaseModel) -> int:
        """Store roles, claim mappings, route catalogs, assignments or keys; returns the version."""
        ...


def _key_for(item: BaseModel) -> dict[str, str]:
    match item:
        case Role():
            return tables.role_key(item.name)
        case ClaimMapping():
            return tables.claim_mapping_key(item.claim, item.value, item.issuer)
        case ApiRoutes():
            return tables.api_key(item.api_id, item.stage)
        case LimitRule():
            return tables.limit_key(item.rule_id)
        case RoleAssignment():
            return tables.assignment_key(item.principal_id, item.tenant)
        case ApiKeyRecord():
            return tables.apikey_key(item.key_id)
    raise TypeError(f"cannot store {type(item).__name__}")


def _snapshot_from_docs(version: int, docs: Iterable[tuple[str, str]]) -> RbacSnapshot:
    roles: dict[str, Role] = {}
    mappings: list[ClaimMapping] = []
    apis: list[ApiRoutes] = []
    limits: list[LimitRule] = []
    for sk, doc in docs:
        if sk.startswith(tables.ROLE_PREFIX):
            role = Role.model_validate_json(doc)
            roles[role.name] = role
        elif sk.startswith(tables.CLAIMMAP_PREFIX):
            mappings.append(ClaimMapping.model_validate_json(doc))
        elif sk.startswith(tables.API_PREFIX):
            apis.append(ApiRoutes.model_validate_json(doc))
        elif sk.startswith(tables.LIMIT_PREFIX):
            limits.append(LimitRule.model_validate_json(doc))
    return RbacSnapshot(
        version=version,
        roles=roles,
        claim_mappings=tuple(mappings),
        apis=tuple(apis),
        limits=tuple(limits),
    )


class InMemoryConfigStore:
    """For unit tests and anything that must not touch AWS; same semantics as DynamoDB."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.version = 0
        self.reads = 0

    def get_version(self) -> int:
        self.reads += 1
        return self.version

    def load_snapshot(self) -> RbacSnapshot:
        self.reads += 1
        docs = sorted((sk, doc) for (pk, sk), doc in self.items.items() if pk == tables.RBAC_PK)
        return _snapshot_from_docs(self.version, docs)

    def get_assignments(self, principal_id: str) -> tuple[RoleAssignment, ...]:
        self.reads += 1
        pk = f"{tables.PRINCIPAL_PREFIX}{principal_id}"
        return tuple(
            RoleAssignment.model_validate_json(doc)
            for (p, _), doc in sorted(self.items.items())
            if p == pk
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        self.reads += 1
        doc = self.items.get((f"{tables.APIKEY_PREFIX}{key_id}", tables.APIKEY_SK))
        return ApiKeyRecord.model_validate_json(doc) if doc else None

    def put(self, *items: BaseModel) -> int:
        staged = {}
        for item in items:
            key = _key_for(item)
            staged[(key["pk"], key["sk"])] = item.model_dump_json()
        self.items.update(staged)
        self.version += 1
        return self.version


class DynamoConfigStore:
    """The config table in DynamoDB, through the low-level client (no resource layer overhead)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_version(self) -> int:
        response = self._client.get_item(
            TableName=self._table,
            Key={k: {"S": v} for k, v in tables.version_key().items()},
            ProjectionExpression="version",
            ConsistentRead=True,
        )
        item = response.get("Item")
        return int(item["version"]["N"]) if item else 0

    def load_snapshot(self) -> RbacSnapshot:
        version = self.get_version()
        docs: list[tuple[str, str]] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": tables.RBAC_PK}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                if "doc" in item:
                    docs.append((item["sk"]["S"], item["doc"]["S"]))
        return _snapshot_from_docs(version, docs)

    def get_assignments(self, principal_id: str) -> tuple[RoleAssignment, ...]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"{tables.PRINCIPAL_PREFIX}{principal_id}"}},
        )
        return tuple(
            RoleAssignment.model_validate_json(item["doc"]["S"])
            for item in response.get("Items", [])
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={k: {"S": v} for k, v in tables.apikey_key(key_id).items()},
        )
        item = response.get("Item")
        return ApiKeyRecord.model_validate_json(item["doc"]["S"]) if item else None

    def put(self, *items: BaseModel) -> int:
        """One transaction: the items and the version bump land together or not at all."""
        if not 1 <= len(items) <= 99:
            raise ValueError("put takes 1 to 99 items per transaction")
        writes: list[TransactWriteItemTypeDef] = []
        for item in items:
            key = _key_for(item)
            doc: dict[str, Any] = {k: {"S": v} for k, v in key.items()}
            doc["doc"] = {"S": item.model_dump_json()}
            doc["kind"] = {"S": type(item).__name__}
            writes.append({"Put": {"TableName": self._table, "Item": doc}})
        writes.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {k: {"S": v} for k, v in tables.version_key().items()},
                    "UpdateExpression": "ADD version :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        )
        self._client.transact_write_items(TransactItems=writes)
        return self.get_version()
