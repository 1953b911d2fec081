"""The config store: a small protocol, one DynamoDB implementation and one in memory.

Shaped after Powertools idempotency's persistence layer: the algorithm that uses the store
(caching, version checks) lives once in :mod:`gatekeeper.store.config_cache` over these few
primitives; implementations only move bytes. Every write bumps the config version in the same
transaction, so a warm authorizer never sees a change without also seeing a new version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from gatekeeper.identity.api_keys import ApiKeyRecord
from gatekeeper.identity.mtls import CertMapping, CertRevocation
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import ApiRoutes, ClaimMapping, ConfigSnapshot, Role, RoleAssignment
from gatekeeper.store import tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )


class ConfigStore(Protocol):
    """The primitives the authorizer reads and the admin tools write."""

    def get_version(self) -> int: ...

    def load_snapshot(self) -> ConfigSnapshot: ...

    def get_assignments(self, principal_id: str) -> tuple[RoleAssignment, ...]: ...

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def put(self, *items: BaseModel) -> int:
        """Store roles, claim mappings, route catalogs, assignments or keys; returns the version."""
        ...


# --- admin primitives: read one document, list a key range, conditional writes ---------------
ItemKey = tuple[str, str]
"""(pk, sk) of a config-table item."""


def digest(doc: str) -> str:
    """The content digest of a stored document: the admin API's ETag and the audit digests."""
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """One config-table item as stored: its key and the JSON document."""

    pk: str
    sk: str
    doc: str

    @property
    def key(self) -> ItemKey:
        return (self.pk, self.sk)

    @property
    def etag(self) -> str:
        return digest(self.doc)


@dataclass(frozen=True, slots=True)
class Write:
    """Put ``doc`` at ``key`` (``doc=None``: delete it), if the item is still ``expect``.

    ``expect`` is the document the writer last saw (``None``: the item must not exist), so every
    write is conditional and a concurrent change makes the whole transaction fail.
    """

    key: ItemKey
    doc: str | None
    expect: str | None
    kind: str = ""


class WriteConflict(Exception):
    """A conditional write failed: ``index`` is the write whose item changed (-1: the version)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"conditional write {index} failed")
        self.index = index


def item_key(key: dict[str, str]) -> ItemKey:
    return (key["pk"], key["sk"])


class AdminConfigStore(ConfigStore, Protocol):
    """What the admin API and the CLI need beyond the authorizer's primitives."""

    def get_doc(self, key: ItemKey) -> StoredDoc | None: ...

    def list_docs(
        self,
        *,
        pk: str | None = None,
        pk_prefix: str | None = None,
        sk_prefix: str = "",
        limit: int = 100,
        after: ItemKey | None = None,
    ) -> tuple[list[StoredDoc], ItemKey | None]:
        """Items of partition ``pk`` (or of every partition starting with ``pk_prefix``) whose
        sort key starts with ``sk_prefix``, at most ``limit``, after ``after``; plus the cursor
        for the next page (``None`` when there is none)."""
        ...

    def write(self, writes: Sequence[Write], *, expect_version: int | None = None) -> int:
        """All writes and a version bump in one transaction; raises :class:`WriteConflict`.

        ``expect_version``: also require the config version to be unchanged (for changes that
        were validated against the whole snapshot, such as role inheritance)."""
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
        case CertMapping():
            return tables.cert_mapping_key(item.key)
        case CertRevocation():
            return tables.cert_revocation_key(item.key)
        case SigningKeyRecord():
            return tables.signing_key_key(item.key_id)
    raise TypeError(f"cannot store {type(item).__name__}")


def _snapshot_from_docs(version: int, docs: Iterable[tuple[str, str]]) -> ConfigSnapshot:
    roles: dict[str, Role] = {}
    mappings: list[ClaimMapping] = []
    apis: list[ApiRoutes] = []
    limits: list[LimitRule] = []
    certs: list[CertMapping] = []
    revoked: list[CertRevocation] = []
    signing: dict[str, SigningKeyRecord] = {}
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
        elif sk.startswith(tables.CERTMAP_PREFIX):
            certs.append(CertMapping.model_validate_json(doc))
        elif sk.startswith(tables.CERTREVOKED_PREFIX):
            revoked.append(CertRevocation.model_validate_json(doc))
        elif sk.startswith(tables.SIGKEY_PREFIX):
            record = SigningKeyRecord.model_validate_json(doc)
            signing[record.key_id] = record
    return ConfigSnapshot(
        version=version,
        roles=roles,
        claim_mappings=tuple(mappings),
        apis=tuple(apis),
        limits=tuple(limits),
        cert_mappings=tuple(certs),
        cert_revocations=tuple(revoked),
        signing_keys=signing,
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

    def load_snapshot(self) -> ConfigSnapshot:
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

    def get_doc(self, key: ItemKey) -> StoredDoc | None:
        self.reads += 1
        doc = self.items.get(key)
        return StoredDoc(key[0], key[1], doc) if doc is not None else None

    def list_docs(
        self,
        *,
        pk: str | None = None,
        pk_prefix: str | None = None,
        sk_prefix: str = "",
        limit: int = 100,
        after: ItemKey | None = None,
    ) -> tuple[list[StoredDoc], ItemKey | None]:
        self.reads += 1
        found = [
            StoredDoc(p, s, doc)
            for (p, s), doc in sorted(self.items.items())
            if (p == pk if pk is not None else p.startswith(pk_prefix or ""))
            and s.startswith(sk_prefix)
            and (after is None or (p, s) > after)
        ]
        page = found[:limit]
        return page, (page[-1].key if len(found) > limit else None)

    def write(self, writes: Sequence[Write], *, expect_version: int | None = None) -> int:
        if expect_version is not None and expect_version != self.version:
            raise WriteConflict(-1)
        for i, w in enumerate(writes):
            if self.items.get(w.key) != w.expect:
                raise WriteConflict(i)
        for w in writes:
            if w.doc is None:
                self.items.pop(w.key, None)
            else:
                self.items[w.key] = w.doc
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

    def load_snapshot(self) -> ConfigSnapshot:
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
        # Strongly consistent, like the version read: the cache keeps this answer until the
        # next version, so a stale replica read right after a change would outlive it.
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"{tables.PRINCIPAL_PREFIX}{principal_id}"}},
            ConsistentRead=True,
        )
        return tuple(
            RoleAssignment.model_validate_json(item["doc"]["S"])
            for item in response.get("Items", [])
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={k: {"S": v} for k, v in tables.apikey_key(key_id).items()},
            ConsistentRead=True,  # cached until the next version: see get_assignments
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

    def get_doc(self, key: ItemKey) -> StoredDoc | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            ConsistentRead=True,
        ).get("Item")
        return StoredDoc(key[0], key[1], item["doc"]["S"]) if item and "doc" in item else None

    def list_docs(
        self,
        *,
        pk: str | None = None,
        pk_prefix: str | None = None,
        sk_prefix: str = "",
        limit: int = 100,
        after: ItemKey | None = None,
    ) -> tuple[list[StoredDoc], ItemKey | None]:
        """A Query for one partition, a filtered Scan across partitions (admin use only)."""
        found: list[StoredDoc] = []
        start: dict[str, AttributeValueTypeDef] | None = (
            {"pk": {"S": after[0]}, "sk": {"S": after[1]}} if after else None
        )
        while True:
            extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            # begins_with with an empty prefix is refused by DynamoDB: leave the clause out
            sk_clause = " AND begins_with(sk, :sk)" if sk_prefix else ""
            values: dict[str, Any] = {":sk": {"S": sk_prefix}} if sk_prefix else {}
            if pk is not None:
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression=f"pk = :pk{sk_clause}",
                    ExpressionAttributeValues={":pk": {"S": pk}, **values},
                    Limit=limit - len(found) + 1,
                    ConsistentRead=True,
                    **extra,
                )
            elif pk_prefix:
                response = self._client.scan(
                    TableName=self._table,
                    FilterExpression=f"begins_with(pk, :pk){sk_clause}",
                    ExpressionAttributeValues={":pk": {"S": pk_prefix}, **values},
                    Limit=200,
                    ConsistentRead=True,
                    **extra,
                )
            else:
                raise ValueError("list_docs needs pk or a non-empty pk_prefix")
            for item in response.get("Items", []):
                if "doc" not in item:
                    continue
                if len(found) == limit:  # one more exists: the page is full
                    return found, found[-1].key
                found.append(StoredDoc(item["pk"]["S"], item["sk"]["S"], item["doc"]["S"]))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found, None
            start = last

    def write(self, writes: Sequence[Write], *, expect_version: int | None = None) -> int:
        if not 1 <= len(writes) <= 99:
            raise ValueError("write takes 1 to 99 items per transaction")
        ops: list[Any] = []  # TransactWriteItemTypeDef, built from parts
        for w in writes:
            key: dict[str, AttributeValueTypeDef] = {"pk": {"S": w.key[0]}, "sk": {"S": w.key[1]}}
            if w.expect is None:
                cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                cond = {
                    "ConditionExpression": "#doc = :expect",
                    "ExpressionAttributeNames": {"#doc": "doc"},
                    "ExpressionAttributeValues": {":expect": {"S": w.expect}},
                }
            if w.doc is None:
                ops.append({"Delete": {"TableName": self._table, "Key": key, **cond}})
            else:
                item = {**key, "doc": {"S": w.doc}, "kind": {"S": w.kind}}
                ops.append({"Put": {"TableName": self._table, "Item": item, **cond}})
        bump: dict[str, Any] = {
            "TableName": self._table,
            "Key": {k: {"S": v} for k, v in tables.version_key().items()},
            "UpdateExpression": "ADD version :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        if expect_version is not None:
            bump["ConditionExpression"] = (
                "attribute_not_exists(version) OR version = :v"
                if expect_version == 0
                else "version = :v"
            )
            bump["ExpressionAttributeValues"][":v"] = {"N": str(expect_version)}
        ops.append({"Update": bump})
        try:
            self._client.transact_write_items(TransactItems=ops)
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            for i, reason in enumerate(reasons):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise WriteConflict(i if i < len(writes) else -1) from None
            raise
        return self.get_version()
