"""Every configuration change, implemented once; the admin API and the CLI both call this.

A change is: read the current item (its document is the ETag's source), check the caller's
precondition, validate against the rest of the configuration where needed, then one
conditional transaction (items + config version bump) and one audit event per item changed.
A write never trusts what was read: it is conditional on the document still being the one seen
(:class:`~gatekeeper.store.config_store.Write`), so lost updates are impossible.

Example::

    service = AdminService(DynamoConfigStore(client, "cfg"), emitter=LogAdminAuditEmitter(log))
    stored = service.put_role("reader", Role(name="reader"), if_match=None, actor=actor)
    stored.etag  # send it back as If-Match to update the role
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from gatekeeper.admin import access_file
from gatekeeper.admin.access_file import AccessFile
from gatekeeper.admin.audit import Actor, AdminAuditEmitter, AdminChangeEvent
from gatekeeper.admin.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from gatekeeper.admin.models import (
    BlockCreate,
    BlockView,
    CertMappingView,
    CertRevocationView,
    ClaimMappingView,
    KeyCreate,
    KeyCreated,
    KeyRotate,
    KeyRotated,
    KeyView,
    Page,
    SigningKeyState,
    SigningKeyView,
    UsageReset,
    UsageView,
    WindowUsage,
)
from gatekeeper.admin.settings import check_key_prefix
from gatekeeper.clock import Clock, system_clock
from gatekeeper.identity.api_keys import ApiKeyRecord, generate_key
from gatekeeper.identity.mtls import CertMapping, CertRevocation, dn_fields, dn_problem
from gatekeeper.identity.signatures import (
    SigningKeyRecord,
    key_algorithm_problem,
    public_key_fingerprint,
)
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import (
    ApiRoutes,
    ClaimMapping,
    ConfigSnapshot,
    Role,
    RoleAssignment,
    RoleCycleError,
    check_inheritance,
)
from gatekeeper.store import tables
from gatekeeper.store.config_store import (
    AdminConfigStore,
    ItemKey,
    StoredDoc,
    Write,
    WriteConflict,
    digest,
    item_key,
)
from gatekeeper.store.counters_admin import CountersAdminStore

MAX_PAGE = 100
TRANSACTION_ITEMS = 98
"""Items per transaction (DynamoDB allows 100; one slot is the version bump)."""
MAX_DOC_BYTES = 350_000
"""A stored document's ceiling: DynamoDB refuses items over 400 KB (keys and other attributes
included), and every authorizer loads the whole configuration on each refresh."""


@dataclass(frozen=True, slots=True)
class Change:
    """One item to create, update or delete, with the document it must still have."""

    action: str
    resource_type: str
    resource_id: str
    key: ItemKey
    before: str | None
    after: str | None
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Kept:
    """A stored item the file does not mention, left in place because another tool owns it."""

    resource_type: str
    resource_id: str
    owner: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The diff between an access file and the stored state, in a safe order to apply."""

    changes: tuple[Change, ...]
    kept: tuple[Kept, ...] = ()

    @property
    def deletions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == "delete")

    @property
    def empty(self) -> bool:
        return not self.changes


# --- cursors ----------------------------------------------------------------------------------
def encode_cursor(key: ItemKey | str | None) -> str | None:
    if key is None:
        return None
    raw = json.dumps(list(key) if isinstance(key, tuple) else [key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, parts: int) -> list[str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("cursor is not valid", field="cursor") from None
    if not (
        isinstance(value, list) and len(value) == parts and all(isinstance(v, str) for v in value)
    ):
        raise BadRequest("cursor is not valid", field="cursor")
    return value


def mapping_id(mapping: ClaimMapping) -> str:
    sk = tables.claim_mapping_key(mapping.claim, mapping.value, mapping.issuer)["sk"]
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def _mapping_sk(mid: str) -> str:
    try:
        sk = base64.urlsafe_b64decode(mid + "=" * (-len(mid) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise NotFound(f"claim mapping {mid!r} not found") from None
    if not sk.startswith(tables.CLAIMMAP_PREFIX):
        raise NotFound(f"claim mapping {mid!r} not found")
    return sk


_CERT_MAPPING_ID = re.compile(r"^(fingerprint|san|subject_dn)-[0-9a-f]{32}$")
_CERT_REVOCATION_ID = re.compile(r"^(sha256-[0-9a-f]{64}|serial-[0-9a-f]{32})$")


def cert_mapping_id(mapping: CertMapping) -> str:
    """``<match>-<hash>``: the rule's storage key, safe in a URL path."""
    return mapping.key.replace("#", "-", 1)


def cert_revocation_id(revocation: CertRevocation) -> str:
    return revocation.key.replace("#", "-", 1)


def _id_key(ident: str, pattern: re.Pattern[str], what: str) -> str:
    """The storage key of a path id; an id of the wrong shape is simply not found."""
    if not pattern.match(ident):
        raise NotFound(f"{what} {ident!r} not found")
    return ident.replace("-", "#", 1)


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return limit


def _match(field: str, body_value: object, path_value: object) -> None:
    if body_value != path_value:
        raise Invalid(
            f"{field} in the body ({body_value!r}) differs from the path ({path_value!r})",
            field=field,
        )


def _check_precondition(current: StoredDoc | None, if_match: str | None, what: str) -> None:
    if current is None:
        if if_match is not None:
            raise PreconditionFailed(f"{what} does not exist, but If-Match was given")
        return
    if if_match is None:
        raise PreconditionRequired(f"{what} exists: send If-Match with its ETag to change it")
    if normalize_etag(if_match) != current.etag:
        raise PreconditionFailed(f"{what} has changed since it was read (stale If-Match)")


def normalize_etag(value: str) -> str:
    value = value.strip()
    value = value.removeprefix("W/")
    return value.strip('"')


class AdminService:
    def __init__(
        self,
        store: AdminConfigStore,
        *,
        emitter: AdminAuditEmitter,
        counters: CountersAdminStore | None = None,
        clock: Clock = system_clock,
        key_prefix: str = "gk",
        source: str = "api",
    ) -> None:
        self.store = store
        self.counters = counters
        self._emitter = emitter
        self._clock = clock
        self._key_prefix = check_key_prefix(key_prefix)
        self._source = "cli" if source == "cli" else "api"

    # --- the one write path ---------------------------------------------------------------
    def commit(
        self, changes: Sequence[Change], actor: Actor, *, expect_version: int | None = None
    ) -> int:
        """Write ``changes`` in one transaction, then emit one audit event per change."""
        for c in changes:
            size = len(c.after.encode()) if c.after is not None else 0
            if size > MAX_DOC_BYTES:
                raise Invalid(
                    f"{c.resource_type} {c.resource_id!r} is too large to store "
                    f"({size} bytes as JSON; at most {MAX_DOC_BYTES})"
                )
        writes = [Write(c.key, c.after, c.before, c.kind) for c in changes]
        try:
            version = self.store.write(writes, expect_version=expect_version)
        except WriteConflict as exc:
            if exc.index < 0:
                raise Conflict(
                    "the configuration changed while this change was being validated; retry"
                ) from None
            c = changes[exc.index]
            if c.before is None:
                raise AlreadyExists(f"{c.resource_type} {c.resource_id!r} already exists") from None
            raise PreconditionFailed(
                f"{c.resource_type} {c.resource_id!r} was changed concurrently; read it again"
            ) from None
        for c in changes:
            self._audit(actor, c.action, c.resource_type, c.resource_id, c.before, c.after, version)
        return version

    def _audit(
        self,
        actor: Actor,
        action: str,
        resource_type: str,
        resource_id: str,
        before: str | None,
        after: str | None,
        version: int | None,
    ) -> None:
        self._emitter.emit(
            AdminChangeEvent(
                time=self._clock(),
                actor=actor.id,
                actor_kind=actor.kind,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                before_digest=digest(before) if before is not None else None,
                after_digest=digest(after) if after is not None else None,
                config_version=version,
                request_id=actor.request_id,
                source="cli" if self._source == "cli" else "api",
            )
        )

    def _get(self, key: dict[str, str], what: str) -> StoredDoc:
        found = self.store.get_doc(item_key(key))
        if found is None:
            raise NotFound(f"{what} not found")
        return found

    def _upsert(
        self,
        resource_type: str,
        resource_id: str,
        key: dict[str, str],
        model: BaseModel,
        if_match: str | None,
        actor: Actor,
        *,
        expect_version: int | None = None,
    ) -> StoredDoc:
        what = f"{resource_type} {resource_id!r}"
        current = self.store.get_doc(item_key(key))
        _check_precondition(current, if_match, what)
        doc = model.model_dump_json()
        k = item_key(key)
        if current is not None and current.doc == doc:
            return current
        change = Change(
            "update" if current else "create",
            resource_type,
            resource_id,
            k,
            current.doc if current else None,
            doc,
            type(model).__name__,
        )
        self.commit([change], actor, expect_version=expect_version)
        return StoredDoc(k[0], k[1], doc)

    def _delete(
        self,
        resource_type: str,
        resource_id: str,
        key: dict[str, str],
        if_match: str | None,
        actor: Actor,
        *,
        expect_version: int | None = None,
    ) -> None:
        what = f"{resource_type} {resource_id!r}"
        current = self._get(key, what)
        if if_match is not None and normalize_etag(if_match) != current.etag:
            raise PreconditionFailed(f"{what} has changed since it was read (stale If-Match)")
        change = Change("delete", resource_type, resource_id, current.key, current.doc, None)
        self.commit([change], actor, expect_version=expect_version)

    def _list(
        self,
        *,
        limit: int,
        cursor: str | None,
        pk: str | None = None,
        pk_prefix: str | None = None,
        sk_prefix: str = "",
    ) -> tuple[list[StoredDoc], str | None]:
        after = decode_cursor(cursor, parts=2)
        if after is not None and not (
            (after[0] == pk if pk is not None else after[0].startswith(pk_prefix or ""))
            and after[1].startswith(sk_prefix)
        ):
            raise BadRequest("cursor does not belong to this list", field="cursor")
        docs, nxt = self.store.list_docs(
            pk=pk,
            pk_prefix=pk_prefix,
            sk_prefix=sk_prefix,
            limit=_page_limit(limit),
            after=(after[0], after[1]) if after else None,
        )
        return docs, encode_cursor(nxt)

    def _known_roles(self, snapshot: ConfigSnapshot, roles: Sequence[str], field: str) -> None:
        unknown = sorted(set(roles) - set(snapshot.roles))
        if unknown:
            raise Invalid(f"unknown role(s): {', '.join(unknown)}", field=field)

    # --- roles ------------------------------------------------------------------------------
    def list_roles(self, *, limit: int = 50, cursor: str | None = None) -> Page[Role]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.ROLE_PREFIX
        )
        return Page[Role](items=[Role.model_validate_json(d.doc) for d in docs], next_cursor=nxt)

    def get_role(self, name: str) -> tuple[Role, str]:
        found = self._get(tables.role_key(name), f"role {name!r}")
        return Role.model_validate_json(found.doc), found.etag

    def put_role(self, name: str, role: Role, *, if_match: str | None, actor: Actor) -> StoredDoc:
        _match("name", role.name, name)
        snapshot = self.store.load_snapshot()
        roles = {**snapshot.roles, name: role}
        try:
            check_inheritance(roles)
        except RoleCycleError as exc:
            raise Invalid(str(exc), field="inherits") from None
        return self._upsert(
            "role",
            name,
            tables.role_key(name),
            role,
            if_match,
            actor,
            expect_version=snapshot.version,
        )

    def delete_role(self, name: str, *, if_match: str | None, actor: Actor) -> None:
        snapshot = self.store.load_snapshot()
        heirs = sorted(r.name for r in snapshot.roles.values() if name in r.inherits)
        if heirs:
            raise Conflict(f"role {name!r} is inherited by {', '.join(heirs)}", field="inherits")
        grants = {
            "claim mapping(s)": sum(name in m.roles for m in snapshot.claim_mappings),
            "certificate mapping(s)": sum(name in m.roles for m in snapshot.cert_mappings),
            "signing key(s)": sum(name in k.roles for k in snapshot.signing_keys.values()),
        }
        for kind, users in grants.items():
            if users:
                raise Conflict(f"role {name!r} is granted by {users} {kind}")
        self._delete(
            "role", name, tables.role_key(name), if_match, actor, expect_version=snapshot.version
        )

    # --- principals and their role assignments ---------------------------------------------
    def list_assignments(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[RoleAssignment]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk_prefix=tables.PRINCIPAL_PREFIX, sk_prefix="TENANT#"
        )
        items = [RoleAssignment.model_validate_json(d.doc) for d in docs]
        return Page[RoleAssignment](items=items, next_cursor=nxt)

    def get_principal(self, principal_id: str) -> list[RoleAssignment]:
        found = list(self.store.get_assignments(principal_id))
        if not found:
            raise NotFound(f"principal {principal_id!r} has no role assignments")
        return found

    def get_assignment(self, principal_id: str, tenant: str) -> tuple[RoleAssignment, str]:
        key = tables.assignment_key(principal_id, tenant)
        found = self._get(key, f"assignment of {principal_id!r} in tenant {tenant!r}")
        return RoleAssignment.model_validate_json(found.doc), found.etag

    def put_assignment(
        self,
        principal_id: str,
        tenant: str,
        assignment: RoleAssignment,
        *,
        if_match: str | None,
        actor: Actor,
    ) -> StoredDoc:
        _match("principal_id", assignment.principal_id, principal_id)
        _match("tenant", assignment.tenant, tenant)
        self._known_roles(self.store.load_snapshot(), assignment.roles, "roles")
        key = tables.assignment_key(principal_id, tenant)
        return self._upsert(
            "assignment", f"{principal_id}@{tenant}", key, assignment, if_match, actor
        )

    def delete_assignment(
        self, principal_id: str, tenant: str, *, if_match: str | None, actor: Actor
    ) -> None:
        key = tables.assignment_key(principal_id, tenant)
        self._delete("assignment", f"{principal_id}@{tenant}", key, if_match, actor)

    # --- claim mappings ---------------------------------------------------------------------
    def list_claim_mappings(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ClaimMappingView]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.CLAIMMAP_PREFIX
        )
        return Page[ClaimMappingView](
            items=[_mapping_view(ClaimMapping.model_validate_json(d.doc)) for d in docs],
            next_cursor=nxt,
        )

    def get_claim_mapping(self, mid: str) -> tuple[ClaimMappingView, str]:
        found = self._get({"pk": tables.RBAC_PK, "sk": _mapping_sk(mid)}, f"claim mapping {mid!r}")
        return _mapping_view(ClaimMapping.model_validate_json(found.doc)), found.etag

    def create_claim_mapping(self, mapping: ClaimMapping, *, actor: Actor) -> StoredDoc:
        # written on condition that the snapshot is unchanged: delete_role checks mappings
        # against the snapshot too, so neither can slip past the other
        snapshot = self.store.load_snapshot()
        self._known_roles(snapshot, mapping.roles, "roles")
        key = tables.claim_mapping_key(mapping.claim, mapping.value, mapping.issuer)
        if self.store.get_doc(item_key(key)) is not None:
            raise AlreadyExists(f"claim mapping {mapping_id(mapping)!r} already exists")
        return self._upsert(
            "claim_mapping",
            mapping_id(mapping),
            key,
            mapping,
            None,
            actor,
            expect_version=snapshot.version,
        )

    def put_claim_mapping(
        self, mid: str, mapping: ClaimMapping, *, if_match: str | None, actor: Actor
    ) -> StoredDoc:
        _match("claim", mapping_id(mapping), mid)
        snapshot = self.store.load_snapshot()
        self._known_roles(snapshot, mapping.roles, "roles")
        key = {"pk": tables.RBAC_PK, "sk": _mapping_sk(mid)}
        return self._upsert(
            "claim_mapping", mid, key, mapping, if_match, actor, expect_version=snapshot.version
        )

    def delete_claim_mapping(self, mid: str, *, if_match: str | None, actor: Actor) -> None:
        key = {"pk": tables.RBAC_PK, "sk": _mapping_sk(mid)}
        self._delete("claim_mapping", mid, key, if_match, actor)

    # --- API route catalogs -----------------------------------------------------------------
    def list_apis(self, *, limit: int = 50, cursor: str | None = None) -> Page[ApiRoutes]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.API_PREFIX
        )
        items = [ApiRoutes.model_validate_json(d.doc) for d in docs]
        return Page[ApiRoutes](items=items, next_cursor=nxt)

    def get_api(self, api_id: str, stage: str) -> tuple[ApiRoutes, str]:
        found = self._get(tables.api_key(api_id, stage), f"API {api_id!r} stage {stage!r}")
        return ApiRoutes.model_validate_json(found.doc), found.etag

    def put_api(
        self, api_id: str, stage: str, api: ApiRoutes, *, if_match: str | None, actor: Actor
    ) -> StoredDoc:
        _match("api_id", api.api_id, api_id)
        _match("stage", api.stage, stage)
        key = tables.api_key(api_id, stage)
        return self._upsert("api", f"{api_id}/{stage}", key, api, if_match, actor)

    def delete_api(self, api_id: str, stage: str, *, if_match: str | None, actor: Actor) -> None:
        key = tables.api_key(api_id, stage)
        self._delete("api", f"{api_id}/{stage}", key, if_match, actor)

    # --- rate-limit rules -------------------------------------------------------------------
    def list_limits(self, *, limit: int = 50, cursor: str | None = None) -> Page[LimitRule]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.LIMIT_PREFIX
        )
        items = [LimitRule.model_validate_json(d.doc) for d in docs]
        return Page[LimitRule](items=items, next_cursor=nxt)

    def get_limit(self, rule_id: str) -> tuple[LimitRule, str]:
        found = self._get(tables.limit_key(rule_id), f"limit rule {rule_id!r}")
        return LimitRule.model_validate_json(found.doc), found.etag

    def put_limit(
        self, rule_id: str, rule: LimitRule, *, if_match: str | None, actor: Actor
    ) -> StoredDoc:
        _match("rule_id", rule.rule_id, rule_id)
        if rule.role is not None:
            self._known_roles(self.store.load_snapshot(), (rule.role,), "role")
        return self._upsert("limit", rule_id, tables.limit_key(rule_id), rule, if_match, actor)

    def delete_limit(self, rule_id: str, *, if_match: str | None, actor: Actor) -> None:
        self._delete("limit", rule_id, tables.limit_key(rule_id), if_match, actor)

    # --- API keys ---------------------------------------------------------------------------
    def list_keys(self, *, limit: int = 50, cursor: str | None = None) -> Page[KeyView]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk_prefix=tables.APIKEY_PREFIX, sk_prefix=tables.APIKEY_SK
        )
        now = self._clock()
        items = [KeyView.of(ApiKeyRecord.model_validate_json(d.doc), now) for d in docs]
        return Page[KeyView](items=items, next_cursor=nxt)

    def _key_record(self, key_id: str) -> tuple[ApiKeyRecord, StoredDoc]:
        found = self._get(tables.apikey_key(key_id), f"API key {key_id!r}")
        return ApiKeyRecord.model_validate_json(found.doc), found

    def get_key(self, key_id: str) -> tuple[KeyView, str]:
        record, found = self._key_record(key_id)
        return KeyView.of(record, self._clock()), found.etag

    def create_key(self, body: KeyCreate, *, actor: Actor) -> KeyCreated:
        if body.roles:
            self._known_roles(self.store.load_snapshot(), body.roles, "roles")
        now = self._clock()
        if body.expires_at is not None and body.expires_at <= now:
            raise Invalid("expires_at must be in the future", field="expires_at")
        new = generate_key(self._key_prefix)
        record = ApiKeyRecord(
            key_id=new.key_id, secret_hash=new.secret_hash, created_at=now, **body.model_dump()
        )
        self.commit([_key_change("create", None, record)], actor)
        return KeyCreated(key=KeyView.of(record, now), api_key=new.plaintext)

    def revoke_key(self, key_id: str, *, if_match: str | None, actor: Actor) -> tuple[KeyView, str]:
        record, found = self._key_record(key_id)
        if if_match is not None and normalize_etag(if_match) != found.etag:
            raise PreconditionFailed(f"API key {key_id!r} has changed since it was read")
        now = self._clock()
        if record.status == "revoked":
            return KeyView.of(record, now), found.etag
        revoked = record.model_copy(update={"status": "revoked"})
        self.commit([_key_change("revoke", found.doc, revoked)], actor)
        return KeyView.of(revoked, now), digest(revoked.model_dump_json())

    def rotate_key(
        self, key_id: str, body: KeyRotate, *, if_match: str | None, actor: Actor
    ) -> KeyRotated:
        old, found = self._key_record(key_id)
        if if_match is not None and normalize_etag(if_match) != found.etag:
            raise PreconditionFailed(f"API key {key_id!r} has changed since it was read")
        if old.status == "revoked":
            raise Conflict(f"API key {key_id!r} is revoked; create a new key instead")
        if old.replaced_by is not None:
            raise Conflict(f"API key {key_id!r} was already rotated (to {old.replaced_by})")
        now = self._clock()
        new = generate_key(self._key_prefix)
        record = old.model_copy(
            update={"key_id": new.key_id, "secret_hash": new.secret_hash, "created_at": now}
        )
        retiring = old.model_copy(
            update={"replaced_by": new.key_id, "grace_until": now + body.grace_seconds}
        )
        self.commit(
            [_key_change("rotate", found.doc, retiring), _key_change("create", None, record)],
            actor,
        )
        return KeyRotated(
            old=KeyView.of(retiring, now), new=KeyView.of(record, now), api_key=new.plaintext
        )

    # --- client-certificate mappings and revocations (mTLS) ---------------------------------
    def list_cert_mappings(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[CertMappingView]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.CERTMAP_PREFIX
        )
        items = [cert_mapping_view(CertMapping.model_validate_json(d.doc)) for d in docs]
        return Page[CertMappingView](items=items, next_cursor=nxt)

    def get_cert_mapping(self, mid: str) -> tuple[CertMappingView, str]:
        key = tables.cert_mapping_key(_id_key(mid, _CERT_MAPPING_ID, "certificate mapping"))
        found = self._get(key, f"certificate mapping {mid!r}")
        return cert_mapping_view(CertMapping.model_validate_json(found.doc)), found.etag

    def create_cert_mapping(self, mapping: CertMapping, *, actor: Actor) -> StoredDoc:
        """A new rule; one rule per match and value (another issuer's needs its own value)."""
        mid = cert_mapping_id(mapping)
        if self.store.get_doc(item_key(tables.cert_mapping_key(mapping.key))) is not None:
            raise AlreadyExists(f"certificate mapping {mid!r} already exists")
        return self.put_cert_mapping(mid, mapping, if_match=None, actor=actor)

    def put_cert_mapping(
        self, mid: str, mapping: CertMapping, *, if_match: str | None, actor: Actor
    ) -> StoredDoc:
        _match("value", cert_mapping_id(mapping), mid)
        check_dns(mapping)
        snapshot = self.store.load_snapshot()  # conditional on it: see create_claim_mapping
        self._known_roles(snapshot, mapping.roles, "roles")
        return self._upsert(
            "cert_mapping",
            mid,
            tables.cert_mapping_key(mapping.key),
            mapping,
            if_match,
            actor,
            expect_version=snapshot.version,
        )

    def delete_cert_mapping(self, mid: str, *, if_match: str | None, actor: Actor) -> None:
        key = tables.cert_mapping_key(_id_key(mid, _CERT_MAPPING_ID, "certificate mapping"))
        self._delete("cert_mapping", mid, key, if_match, actor)

    def list_cert_revocations(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[CertRevocationView]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.CERTREVOKED_PREFIX
        )
        items = [_revocation_view(CertRevocation.model_validate_json(d.doc)) for d in docs]
        return Page[CertRevocationView](items=items, next_cursor=nxt)

    def revoke_cert(
        self, revocation: CertRevocation, *, actor: Actor
    ) -> tuple[CertRevocationView, bool]:
        """Revoke a certificate (``revoked_at`` defaults to now); True if newly revoked.
        Revoking again changes nothing, like revoking a key twice."""
        check_dns(revocation)
        key = tables.cert_revocation_key(revocation.key)
        found = self.store.get_doc(item_key(key))
        if found is not None:
            return _revocation_view(CertRevocation.model_validate_json(found.doc)), False
        if revocation.revoked_at is None:
            revocation = revocation.model_copy(update={"revoked_at": self._clock()})
        rid = cert_revocation_id(revocation)
        self._upsert("cert_revocation", rid, key, revocation, None, actor)
        return _revocation_view(revocation), True

    def delete_cert_revocation(self, rid: str, *, actor: Actor) -> None:
        """Lift a revocation (a mistaken one); raises :class:`NotFound` if there is none."""
        key = tables.cert_revocation_key(_id_key(rid, _CERT_REVOCATION_ID, "revocation"))
        self._delete("cert_revocation", rid, key, None, actor)

    # --- request-signing public keys (HTTP Message Signatures) ------------------------------
    def list_signing_keys(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Page[SigningKeyView]:
        docs, nxt = self._list(
            limit=limit, cursor=cursor, pk=tables.RBAC_PK, sk_prefix=tables.SIGKEY_PREFIX
        )
        now = self._clock()
        items = [_signing_view(SigningKeyRecord.model_validate_json(d.doc), now) for d in docs]
        return Page[SigningKeyView](items=items, next_cursor=nxt)

    def get_signing_key(self, key_id: str) -> tuple[SigningKeyView, str]:
        found = self._get(tables.signing_key_key(key_id), f"signing key {key_id!r}")
        record = SigningKeyRecord.model_validate_json(found.doc)
        return _signing_view(record, self._clock()), found.etag

    def put_signing_key(
        self, key_id: str, record: SigningKeyRecord, *, if_match: str | None, actor: Actor
    ) -> tuple[SigningKeyView, StoredDoc]:
        """Register (no If-Match) or replace a public key; its type must suit the algorithm."""
        _match("key_id", record.key_id, key_id)
        problem = key_algorithm_problem(record)
        if problem is not None:
            raise Invalid(f"public_key: {problem}", field="public_key")
        if record.expires_at is not None and record.expires_at <= self._clock():
            raise Invalid("expires_at must be in the future", field="expires_at")
        snapshot = self.store.load_snapshot()
        self._known_roles(snapshot, record.roles, "roles")
        key = tables.signing_key_key(key_id)
        stored = self._upsert(
            "signing_key", key_id, key, record, if_match, actor, expect_version=snapshot.version
        )
        return _signing_view(record, self._clock()), stored

    def revoke_signing_key(
        self, key_id: str, *, if_match: str | None, actor: Actor
    ) -> tuple[SigningKeyView, str]:
        """Revoke now (effective within the config refresh interval); again: no change."""
        found = self._get(tables.signing_key_key(key_id), f"signing key {key_id!r}")
        if if_match is not None and normalize_etag(if_match) != found.etag:
            raise PreconditionFailed(f"signing key {key_id!r} has changed since it was read")
        record = SigningKeyRecord.model_validate_json(found.doc)
        if record.status == "revoked":
            return _signing_view(record, self._clock()), found.etag
        revoked = record.model_copy(update={"status": "revoked"})
        doc = revoked.model_dump_json()
        change = Change(
            "revoke", "signing_key", key_id, found.key, found.doc, doc, "SigningKeyRecord"
        )
        self.commit([change], actor)
        return _signing_view(revoked, self._clock()), digest(doc)

    def delete_signing_key(self, key_id: str, *, if_match: str | None, actor: Actor) -> None:
        self._delete("signing_key", key_id, tables.signing_key_key(key_id), if_match, actor)

    # --- usage (counters table) -------------------------------------------------------------
    def _counters(self) -> CountersAdminStore:
        if self.counters is None:
            raise BadRequest("no counters table is configured")
        return self.counters

    def _rule(self, rule_id: str) -> LimitRule:
        for rule in self.store.load_snapshot().limits:
            if rule.rule_id == rule_id:
                return rule
        raise NotFound(f"limit rule {rule_id!r} not found")

    def usage(self, rule_id: str, scope_key: str) -> UsageView:
        rule = self._rule(rule_id)
        usage = self._counters().usage(rule_id, scope_key)
        width = rule.window_seconds
        start = int(self._clock()) // width * width
        current = next((w.count for w in usage.windows if w.window_start == start), 0)
        return UsageView(
            rule_id=rule_id,
            scope_key=scope_key,
            limit=rule.limit,
            window_seconds=width,
            current_window_start=start,
            current_count=current,
            remaining=max(rule.limit - current, 0),
            windows=[
                WindowUsage(window_start=w.window_start, count=w.count) for w in usage.windows
            ],
            bucket_tat_ms=usage.bucket_tat_ms,
        )

    def reset_usage(self, rule_id: str, scope_key: str, *, actor: Actor) -> UsageReset:
        self._rule(rule_id)
        before = self.usage(rule_id, scope_key)
        deleted = self._counters().reset_usage(rule_id, scope_key)
        self._audit(
            actor, "reset", "usage", f"{rule_id}/{scope_key}", before.model_dump_json(), None, None
        )
        return UsageReset(rule_id=rule_id, scope_key=scope_key, deleted_items=deleted)

    # --- IP blocklist (counters table) ------------------------------------------------------
    def _block_view(self, ip: str, until: int, reason: str) -> BlockView:
        return BlockView(ip=ip, until=until, reason=reason, active=until > self._clock())

    def list_blocks(self, *, limit: int = 50, cursor: str | None = None) -> Page[BlockView]:
        after = decode_cursor(cursor, parts=1)
        items, nxt = self._counters().list_blocks(
            "ip", limit=_page_limit(limit), after=after[0] if after else None
        )
        return Page[BlockView](
            items=[self._block_view(b.value, b.until, b.reason) for b in items],
            next_cursor=encode_cursor(nxt),
        )

    def get_block(self, ip: str) -> BlockView:
        ip = _ip(ip)
        found = self._counters().get_block("ip", ip)
        if found is None:
            raise NotFound(f"no block for {ip}")
        return self._block_view(found.value, found.until, found.reason)

    def add_block(self, ip: str, body: BlockCreate, *, actor: Actor) -> BlockView:
        ip = _ip(ip)
        counters = self._counters()
        before = counters.get_block("ip", ip)
        until = int(self._clock()) + body.seconds
        counters.put_block("ip", ip, until, body.reason)
        view = self._block_view(ip, until, body.reason)
        old = self._block_view(ip, before.until, before.reason) if before else None
        self._audit(
            actor,
            "update" if before else "create",
            "block",
            ip,
            old.model_dump_json() if old else None,
            view.model_dump_json(),
            None,
        )
        return view

    def remove_block(self, ip: str, *, actor: Actor) -> None:
        ip = _ip(ip)
        counters = self._counters()
        before = counters.get_block("ip", ip)
        if before is None or not counters.delete_block("ip", ip):
            raise NotFound(f"no block for {ip}")
        old = self._block_view(ip, before.until, before.reason)
        self._audit(actor, "delete", "block", ip, old.model_dump_json(), None, None)

    # --- authorization as code --------------------------------------------------------------
    def _stored(self) -> dict[ItemKey, StoredDoc]:
        stored: dict[ItemKey, StoredDoc] = {}
        for query in ({"pk": tables.RBAC_PK}, {"pk_prefix": tables.PRINCIPAL_PREFIX}):
            after: ItemKey | None = None
            while True:
                docs, after = self.store.list_docs(**query, limit=MAX_PAGE, after=after)
                stored.update((d.key, d) for d in docs)
                if after is None:
                    break
        stored.pop(item_key(tables.version_key()), None)
        return stored

    def export(self) -> AccessFile:
        stored = self._stored()
        by_prefix: dict[str, list[str]] = {}
        for (pk, sk), d in sorted(stored.items()):
            prefix = "PRINCIPAL" if pk.startswith(tables.PRINCIPAL_PREFIX) else sk.split("#")[0]
            by_prefix.setdefault(prefix, []).append(d.doc)
        docs = by_prefix.get
        return access_file.from_models(
            roles=[Role.model_validate_json(d) for d in docs("ROLE", [])],
            assignments=[RoleAssignment.model_validate_json(d) for d in docs("PRINCIPAL", [])],
            claim_mappings=[ClaimMapping.model_validate_json(d) for d in docs("CLAIMMAP", [])],
            apis=[ApiRoutes.model_validate_json(d) for d in docs("API", [])],
            limits=[LimitRule.model_validate_json(d) for d in docs("LIMIT", [])],
            cert_mappings=[CertMapping.model_validate_json(d) for d in docs("CERTMAP", [])],
        )

    def plan(self, wanted: AccessFile, *, owners: Mapping[ItemKey, str] | None = None) -> Plan:
        """The changes that make the stored state ``wanted``; items in ``owners`` (owned by
        another tool, see :mod:`gatekeeper.admin.ownership`) are never deleted, only kept."""
        owners = owners or {}
        stored = self._stored()
        snapshot_roles = {
            k: Role.model_validate_json(d.doc)
            for k, d in stored.items()
            if k[0] == tables.RBAC_PK and k[1].startswith(tables.ROLE_PREFIX)
        }
        sections: list[
            tuple[str, Callable[[ItemKey], bool], list[tuple[str, dict[str, str], BaseModel]]]
        ] = []
        if wanted.roles is not None:
            sections.append(
                (
                    "role",
                    lambda k: k[0] == tables.RBAC_PK and k[1].startswith(tables.ROLE_PREFIX),
                    [(r.name, tables.role_key(r.name), r) for r in wanted.role_models()],
                )
            )
        if wanted.assignments is not None:
            sections.append(
                (
                    "assignment",
                    lambda k: k[0].startswith(tables.PRINCIPAL_PREFIX),
                    [
                        (
                            f"{a.principal_id}@{a.tenant}",
                            tables.assignment_key(a.principal_id, a.tenant),
                            a,
                        )
                        for a in wanted.assignments
                    ],
                )
            )
        if wanted.claim_mappings is not None:
            sections.append(
                (
                    "claim_mapping",
                    lambda k: k[0] == tables.RBAC_PK and k[1].startswith(tables.CLAIMMAP_PREFIX),
                    [
                        (mapping_id(m), tables.claim_mapping_key(m.claim, m.value, m.issuer), m)
                        for m in wanted.claim_mappings
                    ],
                )
            )
        if wanted.apis is not None:
            sections.append(
                (
                    "api",
                    lambda k: k[0] == tables.RBAC_PK and k[1].startswith(tables.API_PREFIX),
                    [
                        (f"{a.api_id}/{a.stage}", tables.api_key(a.api_id, a.stage), a)
                        for a in wanted.apis
                    ],
                )
            )
        if wanted.limits is not None:
            sections.append(
                (
                    "limit",
                    lambda k: k[0] == tables.RBAC_PK and k[1].startswith(tables.LIMIT_PREFIX),
                    [(r.rule_id, tables.limit_key(r.rule_id), r) for r in wanted.limits],
                )
            )
        if wanted.cert_mappings is not None:
            sections.append(
                (
                    "cert_mapping",
                    lambda k: k[0] == tables.RBAC_PK and k[1].startswith(tables.CERTMAP_PREFIX),
                    [
                        (cert_mapping_id(m), tables.cert_mapping_key(m.key), m)
                        for m in wanted.cert_mappings
                    ],
                )
            )
        puts: list[Change] = []
        deletes: list[Change] = []
        kept: list[Kept] = []
        for resource_type, owns, items in sections:
            desired = {item_key(key): (rid, model) for rid, key, model in items}
            for k, (rid, model) in desired.items():
                doc = model.model_dump_json()
                current = stored.get(k)
                if current is None:
                    puts.append(
                        Change("create", resource_type, rid, k, None, doc, type(model).__name__)
                    )
                elif current.doc != doc:
                    puts.append(
                        Change(
                            "update", resource_type, rid, k, current.doc, doc, type(model).__name__
                        )
                    )
            for k, current in stored.items():
                if owns(k) and k not in desired and k in owners:
                    kept.append(
                        Kept(resource_type, _resource_id(resource_type, current), owners[k])
                    )
                elif owns(k) and k not in desired:
                    deletes.append(
                        Change(
                            "delete",
                            resource_type,
                            _resource_id(resource_type, current),
                            k,
                            current.doc,
                            None,
                        )
                    )
        final_roles = (
            {r.name: r for r in wanted.role_models()}
            if wanted.roles is not None
            else {k[1].removeprefix(tables.ROLE_PREFIX): r for k, r in snapshot_roles.items()}
        )
        _check_references(wanted, final_roles)
        depth = _depths(final_roles)
        old_depth = _depths({r.name: r for r in snapshot_roles.values()}, lenient=True)
        # Parents before children when creating, children before parents when deleting, and
        # roles before what grants them: every intermediate state (between transactions) is valid.
        puts.sort(key=lambda c: (c.resource_type != "role", depth.get(c.resource_id, 0), c.key))
        deletes.sort(
            key=lambda c: (c.resource_type == "role", -old_depth.get(c.resource_id, 0), c.key)
        )
        return Plan(tuple(puts + deletes), tuple(kept))

    def apply(
        self,
        plan: Plan,
        *,
        actor: Actor,
        progress: Callable[[int, int], None] | None = None,
    ) -> int | None:
        """Apply exactly ``plan``, conditional on every item still being as planned.

        Up to :data:`TRANSACTION_ITEMS` items per transaction; a larger plan is several
        transactions, each leaving a valid configuration (see :meth:`plan`'s ordering)."""
        version: int | None = None
        done = 0
        total = len(plan.changes)
        for start in range(0, total, TRANSACTION_ITEMS):
            chunk = plan.changes[start : start + TRANSACTION_ITEMS]
            version = self.commit(chunk, actor)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        return version


def _resource_id(resource_type: str, stored: StoredDoc) -> str:
    match resource_type:
        case "role":
            return stored.sk.removeprefix(tables.ROLE_PREFIX)
        case "assignment":
            a = RoleAssignment.model_validate_json(stored.doc)
            return f"{a.principal_id}@{a.tenant}"
        case "claim_mapping":
            return mapping_id(ClaimMapping.model_validate_json(stored.doc))
        case "api":
            api = ApiRoutes.model_validate_json(stored.doc)
            return f"{api.api_id}/{api.stage}"
        case "cert_mapping":
            return cert_mapping_id(CertMapping.model_validate_json(stored.doc))
    return stored.sk.removeprefix(tables.LIMIT_PREFIX)


def _check_references(wanted: AccessFile, roles: dict[str, Role]) -> None:
    """Sections in the file may name roles that are stored (when ``roles`` is not managed)."""
    refs = [
        *(("assignments", r) for a in wanted.assignments or () for r in a.roles),
        *(("claim_mappings", r) for m in wanted.claim_mappings or () for r in m.roles),
        *(("limits", r.role) for r in wanted.limits or () if r.role),
        *(("cert_mappings", r) for m in wanted.cert_mappings or () for r in m.roles),
    ]
    for section, name in refs:
        if name not in roles:
            raise Invalid(f"{section}: unknown role {name!r}", field=section)


def _depths(roles: dict[str, Role], *, lenient: bool = False) -> dict[str, int]:
    """Inheritance depth of every role (0: inherits nothing)."""
    if not lenient:
        check_inheritance(roles)
    depth: dict[str, int] = {}

    def visit(name: str, trail: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        role = roles.get(name)
        parents = [p for p in role.inherits if p not in trail] if role else []
        depth[name] = 1 + max((visit(p, trail | {name}) for p in parents), default=-1)
        return depth[name]

    for name in roles:
        visit(name, frozenset())
    return depth


def _mapping_view(mapping: ClaimMapping) -> ClaimMappingView:
    return ClaimMappingView(id=mapping_id(mapping), **mapping.model_dump())


def check_dns(item: CertMapping | CertRevocation) -> None:
    """Every DN of a rule or revocation in the form the authorizer compares (a DN in another
    form would silently never match: a rule that maps nothing, a revocation that revokes
    nothing)."""
    for field, dn in dn_fields(item).items():
        if (problem := dn_problem(dn)) is not None:
            raise Invalid(f"{field}: {problem}", field=field)


def cert_mapping_view(mapping: CertMapping) -> CertMappingView:
    return CertMappingView(id=cert_mapping_id(mapping), **mapping.model_dump())


def _revocation_view(revocation: CertRevocation) -> CertRevocationView:
    return CertRevocationView(id=cert_revocation_id(revocation), **revocation.model_dump())


def _signing_view(record: SigningKeyRecord, now: float) -> SigningKeyView:
    state: SigningKeyState = "active"
    if record.status == "revoked":
        state = "revoked"
    elif record.expires_at is not None and now >= record.expires_at:
        state = "expired"
    return SigningKeyView(
        state=state, fingerprint=public_key_fingerprint(record.public_key), **record.model_dump()
    )


def _key_change(action: str, before: str | None, record: ApiKeyRecord) -> Change:
    k = item_key(tables.apikey_key(record.key_id))
    return Change(
        action, "api_key", record.key_id, k, before, record.model_dump_json(), "ApiKeyRecord"
    )


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"{value!r} is not an IP address", field="ip") from None


def validation_problem(exc: ValidationError) -> Invalid:
    """The first pydantic error as an :class:`Invalid` naming its field (dotted path)."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    return Invalid(f"{field}: {err['msg']}" if field else err["msg"], field=field)
