"""The admin API against moto: every route's success, validation, 404, stale If-Match, access."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gatekeeper.admin.api import build_app, document
from gatekeeper.admin.audit import ListAdminAuditEmitter
from gatekeeper.admin.service import AdminService, cert_mapping_id, mapping_id
from gatekeeper.clock import FakeClock
from gatekeeper.identity.mtls import CertMapping
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import ClaimMapping
from gatekeeper.store import tables
from gatekeeper.store.config_store import DynamoConfigStore
from gatekeeper.store.counters_admin import DynamoCountersAdminStore
from gatekeeper.testing.sample_access import seed
from gatekeeper.testing.signing import public_pem
from tests.conftest import COUNTERS, TABLE
from tests.integration.admin_helpers import IAM_ARN, Reply, call

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

NOW = 1_767_225_600.0


@dataclass
class Admin:
    app: APIGatewayRestResolver
    service: AdminService
    store: DynamoConfigStore
    audit: ListAdminAuditEmitter
    clock: FakeClock
    client: DynamoDBClient

    def __call__(self, method: str, path: str, **kwargs: Any) -> Reply:
        return call(self.app, method, path, **kwargs)


@pytest.fixture
def admin(dynamodb: DynamoDBClient) -> Admin:
    clock = FakeClock(NOW)
    store = DynamoConfigStore(dynamodb, TABLE)
    seed(store, now=clock())
    store.put(LimitRule(rule_id="per-key", scope="api_key", limit=5, window="minute"))
    store.put(CERT, SIGNING_KEY)
    audit = ListAdminAuditEmitter()
    service = AdminService(
        store,
        counters=DynamoCountersAdminStore(dynamodb, COUNTERS),
        emitter=audit,
        clock=clock,
    )
    app = build_app(lambda: service, admin_roles=lambda: frozenset({"gatekeeper-admin"}))
    return Admin(app, service, store, audit, clock, dynamodb)


CLAIM = ClaimMapping(claim="groups", value="platform-admins", roles=("admin",), issuer="corp")
CLAIM_ID = mapping_id(CLAIM)
CERT = CertMapping(
    match="san",
    value="DNS:orders.internal.example",
    principal_id="svc:orders",
    tenant="acme",
    roles=("orders-reader",),
)
CERT_ID = cert_mapping_id(CERT)
CALLER_KEY = ed25519.Ed25519PrivateKey.generate()
SIGNING_KEY = SigningKeyRecord(
    key_id="billing-ed",
    principal_id="svc:billing",
    tenant="acme",
    roles=("orders-reader",),
    algorithm="ed25519",
    public_key=public_pem(CALLER_KEY),
)


@dataclass(frozen=True)
class Resource:
    """One updatable resource: where it lives, a valid new body, and a body that is invalid."""

    name: str
    path: str
    body: dict[str, Any]
    invalid: dict[str, Any]
    invalid_field: str
    missing: str
    collection: str


RESOURCES = [
    Resource(
        "role",
        "/roles/tenant-analyst",
        {"name": "tenant-analyst", "permissions": [{"methods": ["GET"], "path": "/reports"}]},
        {"name": "tenant-analyst", "permissions": [{"path": "orders/**"}]},
        "permissions.0.path",
        "/roles/nope",
        "/roles",
    ),
    Resource(
        "assignment",
        "/principals/corp:alice/tenants/acme",
        {"principal_id": "corp:alice", "tenant": "acme", "roles": ["orders-reader"]},
        {"principal_id": "corp:alice", "tenant": "acme", "roles": 5},
        "roles",
        "/principals/corp:alice/tenants/nope",
        "/principals",
    ),
    Resource(
        "claim_mapping",
        f"/claim-mappings/{CLAIM_ID}",
        {**CLAIM.model_dump(mode="json"), "roles": ["orders-reader"]},
        {**CLAIM.model_dump(mode="json"), "roles": []},
        "roles",
        "/claim-mappings/bm9wZQ",
        "/claim-mappings",
    ),
    Resource(
        "api",
        "/apis/a1b2c3d4e5/stages/prod",
        {"api_id": "a1b2c3d4e5", "stage": "prod", "routes": ["GET /orders"]},
        {"api_id": "a1b2c3d4e5", "stage": "prod", "routes": ["FETCH /orders"]},
        "routes",
        "/apis/a1b2c3d4e5/stages/nope",
        "/apis",
    ),
    Resource(
        "limit",
        "/limits/per-key",
        {"rule_id": "per-key", "scope": "api_key", "limit": 50, "window": "minute"},
        {"rule_id": "per-key", "scope": "api_key", "limit": 0, "window": "minute"},
        "limit",
        "/limits/nope",
        "/limits",
    ),
    Resource(
        "cert_mapping",
        f"/cert-mappings/{CERT_ID}",
        {**CERT.model_dump(mode="json"), "roles": ["orders-clerk"]},
        {**CERT.model_dump(mode="json"), "tenant": 5},
        "tenant",
        "/cert-mappings/san-" + "0" * 32,
        "/cert-mappings",
    ),
    Resource(
        "signing_key",
        "/signing-keys/billing-ed",
        {**SIGNING_KEY.model_dump(mode="json"), "roles": ["orders-clerk"]},
        {**SIGNING_KEY.model_dump(mode="json"), "algorithm": "rsa-pss-sha512"},
        "algorithm",
        "/signing-keys/nope",
        "/signing-keys",
    ),
]
IDS = [r.name for r in RESOURCES]


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_get_update_and_delete(admin: Admin, res: Resource) -> None:
    got = admin("GET", res.path)
    assert got.status == 200 and got.etag
    version = admin.store.get_version()
    put = admin("PUT", res.path, body=res.body, headers={"If-Match": got.etag})
    assert put.status == 200, put.body
    assert put.etag != got.etag
    assert admin.store.get_version() == version + 1
    again = admin("GET", res.path)
    assert again.body == put.body and again.etag == put.etag
    [event] = admin.audit.events
    assert event.actor == IAM_ARN and event.action == "update"
    assert event.before_digest == got.etag.strip('"')
    assert event.after_digest == put.etag.strip('"')
    assert event.config_version == version + 1
    deleted = admin("DELETE", res.path, headers={"If-Match": put.etag})
    assert deleted.status == 204
    assert admin("GET", res.path).status == 404
    assert admin.audit.events[-1].action == "delete"
    assert admin.audit.events[-1].after_digest is None


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_validation_error_names_the_field(admin: Admin, res: Resource) -> None:
    got = admin("GET", res.path)
    reply = admin("PUT", res.path, body=res.invalid, headers={"If-Match": got.etag})
    assert reply.status == 422
    assert reply.error_field() == res.invalid_field
    assert res.invalid_field in reply.body["error"]["message"]
    assert admin("GET", res.path).etag == got.etag  # nothing written
    assert admin.audit.events == []


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_not_found(admin: Admin, res: Resource) -> None:
    for method in ("GET", "DELETE"):
        reply = admin(method, res.missing)
        assert reply.status == 404, (method, reply.body)
        assert reply.body["error"]["code"] == "not_found"


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_stale_if_match_is_412_and_changes_nothing(admin: Admin, res: Resource) -> None:
    stale = admin("GET", res.path).etag
    first = admin("PUT", res.path, body=res.body, headers={"If-Match": stale})
    assert first.status == 200
    version = admin.store.get_version()
    changed = {**res.body}
    for reply in (
        admin("PUT", res.path, body=changed, headers={"If-Match": stale}),
        admin("DELETE", res.path, headers={"If-Match": stale}),
    ):
        assert reply.status == 412, reply.body
        assert reply.body["error"]["code"] == "precondition_failed"
    assert admin.store.get_version() == version
    assert admin("GET", res.path).etag == first.etag


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_update_without_if_match_is_refused(admin: Admin, res: Resource) -> None:
    reply = admin("PUT", res.path, body=res.body)
    assert reply.status == 428 and reply.body["error"]["code"] == "precondition_required"


@pytest.mark.parametrize("res", RESOURCES, ids=IDS)
def test_lists_paginate(admin: Admin, res: Resource) -> None:
    seen: list[Any] = []
    cursor: str | None = None
    for _ in range(50):
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = admin("GET", res.collection, query=query)
        assert page.status == 200 and len(page.body["items"]) <= 1
        seen += page.body["items"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    everything = admin("GET", res.collection, query={"limit": "100"}).body
    assert everything["next_cursor"] is None
    assert seen == everything["items"] and len(seen) >= 1
    bad = admin("GET", res.collection, query={"limit": "0"})
    assert bad.status == 422 and bad.error_field() == "limit"
    assert admin("GET", res.collection, query={"cursor": "!!"}).error_field() == "cursor"


def test_create_refuses_an_existing_item_and_mismatched_path(admin: Admin) -> None:
    body = {"name": "auditor", "permissions": [{"methods": ["GET"], "path": "/audit/**"}]}
    assert admin("PUT", "/roles/auditor", body=body).status == 200
    assert admin("PUT", "/roles/other", body=body).error_field() == "name"
    created = admin(
        "POST", "/claim-mappings", body={"claim": "g", "value": "v", "roles": ["admin"]}
    )
    assert created.status == 201 and created.body["id"]
    again = admin("POST", "/claim-mappings", body={"claim": "g", "value": "v", "roles": ["admin"]})
    assert again.status == 409 and again.body["error"]["code"] == "already_exists"


def test_role_rules_cycles_unknown_roles_and_heirs(admin: Admin) -> None:
    etag = admin("GET", "/roles/public").etag
    cycle = admin(
        "PUT",
        "/roles/public",
        body={"name": "public", "inherits": ["orders-clerk"]},
        headers={"If-Match": etag},
    )
    assert cycle.status == 422 and cycle.error_field() == "inherits"
    assert "cycle" in cycle.body["error"]["message"]
    unknown = admin(
        "PUT",
        "/principals/corp:carol/tenants/acme",
        body={"principal_id": "corp:carol", "tenant": "acme", "roles": ["ghost"]},
    )
    assert unknown.status == 422 and unknown.error_field() == "roles"
    heir = admin("DELETE", "/roles/public")
    assert heir.status == 409 and heir.error_field() == "inherits"
    assert admin.audit.events == []


def test_principal_view_lists_every_tenant(admin: Admin) -> None:
    body = {"principal_id": "corp:alice", "tenant": "globex", "roles": ["orders-reader"]}
    assert admin("PUT", "/principals/corp:alice/tenants/globex", body=body).status == 200
    reply = admin("GET", "/principals/corp:alice")
    assert {a["tenant"] for a in reply.body} == {"acme", "globex"}
    assert admin("GET", "/principals/corp:nobody").status == 404


def test_an_item_too_large_for_dynamodb_is_422_not_500(admin: Admin) -> None:
    version = admin.store.get_version()
    big = admin("PUT", "/roles/big", body={"name": "big", "description": "x" * 400_000})
    assert big.status == 422 and "too large to store" in big.body["error"]["message"]
    huge = {"fingerprint": "ab" * 32, "reason": "x" * 400_000}
    assert admin("POST", "/cert-revocations", body=huge).status == 422
    assert admin.store.get_version() == version and admin.audit.events == []


def test_malformed_json_is_400(admin: Admin) -> None:
    reply = admin("PUT", "/roles/x", body="{not json")
    assert reply.status in (400, 422) and reply.body["error"]["code"] == "validation_error"


# --- client certificates and signing keys ----------------------------------------------------
def test_cert_mappings_are_created_once_and_name_their_field(admin: Admin) -> None:
    body = {"match": "fingerprint", "value": "AB:" * 31 + "AB", "principal_id": "svc:pin"}
    created = admin("POST", "/cert-mappings", body=body)
    assert created.status == 201, created.body
    assert created.body["value"] == "ab" * 32  # normalised: lower case, no colons
    assert created.body["id"].startswith("fingerprint-")
    assert admin("POST", "/cert-mappings", body=body).status == 409
    bad = admin("POST", "/cert-mappings", body={**body, "value": "abc"})
    assert bad.status == 422 and "64 hex digits" in bad.body["error"]["message"]
    ghost = admin("POST", "/cert-mappings", body={**body, "value": "cd" * 32, "roles": ["ghost"]})
    assert ghost.status == 422 and ghost.error_field() == "roles"
    moved = admin(
        "PUT",
        f"/cert-mappings/{created.body['id']}",
        body={**body, "value": "ef" * 32},
        headers={"If-Match": created.etag},
    )
    assert moved.status == 422 and moved.error_field() == "value"
    assert admin("GET", "/cert-mappings/not-an-id").status == 404
    openssl_style = admin(
        "POST", "/cert-mappings", body={**body, "value": "ef" * 32, "issuer_dn": "CN = CA, O = X"}
    )
    assert openssl_style.status == 422 and openssl_style.error_field() == "issuer_dn"
    by_oid = admin(
        "POST", "/cert-revocations", body={"issuer_dn": "O=X,2.5.4.3=CA", "serial_number": "1"}
    )  # parses, but is not how the authorizer prints it
    assert by_oid.status == 422 and "write it as 'O=X,CN=CA'" in by_oid.body["error"]["message"]
    assert [e.action for e in admin.audit.events] == ["create"]


def test_revocations_are_idempotent_and_can_be_lifted(admin: Admin) -> None:
    body = {"issuer_dn": "CN=Example CA", "serial_number": "0x1F", "reason": "superseded"}
    first = admin("POST", "/cert-revocations", body=body)
    assert first.status == 201 and first.body["serial_number"] == "31"
    assert first.body["revoked_at"] == NOW  # the server's clock
    again = admin("POST", "/cert-revocations", body={**body, "serial_number": "31"})
    assert again.status == 200 and again.body == first.body
    both = admin("POST", "/cert-revocations", body={**body, "fingerprint": "ab" * 32})
    assert both.status == 422 and "fingerprint, or an issuer DN" in both.body["error"]["message"]
    listed = admin("GET", "/cert-revocations").body["items"]
    assert [r["id"] for r in listed] == [first.body["id"]]
    assert admin.service.store.load_snapshot().cert_revocations[0].serial_number == "31"
    assert admin("DELETE", f"/cert-revocations/{first.body['id']}").status == 204
    assert admin("DELETE", f"/cert-revocations/{first.body['id']}").status == 404
    assert [e.action for e in admin.audit.events] == ["create", "delete"]
    user = admin("POST", "/cert-revocations", body=body, caller="user")
    assert user.status == 403


def test_a_signing_key_must_suit_its_algorithm_and_never_be_private(admin: Admin) -> None:
    p256 = public_pem(ec.generate_private_key(ec.SECP256R1()))
    body = {**SIGNING_KEY.model_dump(mode="json"), "key_id": "billing-ec", "public_key": p256}
    wrong = admin("PUT", "/signing-keys/billing-ec", body=body)
    assert wrong.status == 422 and wrong.error_field() == "public_key"
    private = CALLER_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    leaked = admin("PUT", "/signing-keys/billing-ec", body={**body, "public_key": private})
    assert leaked.status == 422 and leaked.error_field() == "public_key"
    assert private.splitlines()[1] not in leaked.raw
    ok = admin("PUT", "/signing-keys/billing-ec", body={**body, "algorithm": "ecdsa-p256-sha256"})
    assert ok.status == 200 and ok.body["state"] == "active" and len(ok.body["fingerprint"]) == 64
    past = {**body, "key_id": "old", "algorithm": "ecdsa-p256-sha256", "expires_at": NOW - 1}
    assert admin("PUT", "/signing-keys/old", body=past).error_field() == "expires_at"


def test_signing_key_revocation_is_idempotent(admin: Admin) -> None:
    revoked = admin("POST", "/signing-keys/billing-ed/revoke")
    assert revoked.status == 200 and revoked.body["state"] == "revoked"
    assert admin("POST", "/signing-keys/billing-ed/revoke").etag == revoked.etag
    assert [e.action for e in admin.audit.events] == ["revoke"]
    snapshot = admin.service.store.load_snapshot()
    assert snapshot.signing_keys["billing-ed"].status == "revoked"
    assert admin("POST", "/signing-keys/nope/revoke").status == 404


def test_a_role_granted_by_a_certificate_or_signing_key_cannot_be_deleted(admin: Admin) -> None:
    body = {"name": "svc-only", "permissions": [{"methods": ["GET"], "path": "/svc"}]}
    assert admin("PUT", "/roles/svc-only", body=body).status == 200
    etag = admin("GET", f"/cert-mappings/{CERT_ID}").etag
    rule = {**CERT.model_dump(mode="json"), "roles": ["svc-only"]}
    assert (
        admin("PUT", f"/cert-mappings/{CERT_ID}", body=rule, headers={"If-Match": etag}).status
        == 200
    )
    refused = admin("DELETE", "/roles/svc-only")
    assert refused.status == 409 and "certificate mapping" in refused.body["error"]["message"]
    key_etag = admin("GET", "/signing-keys/billing-ed").etag
    record = {**SIGNING_KEY.model_dump(mode="json"), "roles": ["svc-only"]}
    put = admin("PUT", "/signing-keys/billing-ed", body=record, headers={"If-Match": key_etag})
    assert put.status == 200
    assert admin("DELETE", f"/cert-mappings/{CERT_ID}").status == 204
    refused = admin("DELETE", "/roles/svc-only")
    assert refused.status == 409 and "signing key" in refused.body["error"]["message"]


# --- API keys ---------------------------------------------------------------------------------
def test_key_lifecycle(admin: Admin) -> None:
    created = admin(
        "POST",
        "/keys",
        body={"principal_id": "svc:ci", "tenant": "acme", "roles": ["orders-reader"], "name": "ci"},
    )
    assert created.status == 201
    key_id = created.body["key"]["key_id"]
    plaintext = created.body["api_key"]
    assert plaintext.startswith(f"gk_{key_id}_")
    got = admin("GET", f"/keys/{key_id}")
    assert got.status == 200 and got.body["state"] == "active"
    assert "api_key" not in got.body and "secret_hash" not in got.body
    listed = admin("GET", "/keys", query={"limit": "100"}).body["items"]
    assert key_id in {k["key_id"] for k in listed}

    stale = got.etag
    rotated = admin(
        "POST",
        f"/keys/{key_id}/rotate",
        body={"grace_seconds": 600},
        headers={"If-Match": got.etag},
    )
    assert rotated.status == 201
    assert rotated.body["old"]["replaced_by"] == rotated.body["new"]["key_id"]
    assert rotated.body["old"]["grace_until"] == NOW + 600
    assert rotated.body["old"]["state"] == "in_grace"
    assert rotated.body["api_key"] != plaintext
    assert admin("POST", f"/keys/{key_id}/revoke", headers={"If-Match": stale}).status == 412
    twice = admin("POST", f"/keys/{key_id}/rotate", body={})
    assert twice.status == 409
    revoked = admin("POST", f"/keys/{key_id}/revoke")
    assert revoked.status == 200 and revoked.body["status"] == "revoked"
    assert [e.action for e in admin.audit.events] == ["create", "rotate", "create", "revoke"]


def test_key_mass_assignment_and_validation(admin: Admin) -> None:
    for field, value in (
        ("key_id", "0" * 16),
        ("secret_hash", "sha256$00"),
        ("created_at", 1.0),
        ("status", "active"),
        ("replaced_by", "x"),
        ("grace_until", 1.0),
    ):
        reply = admin("POST", "/keys", body={"principal_id": "svc:x", field: value})
        assert reply.status == 422 and reply.error_field() == field, (field, reply.body)
    assert admin("POST", "/keys", body={"tenant": "acme"}).error_field() == "principal_id"
    assert (
        admin("POST", "/keys", body={"principal_id": "p", "roles": ["ghost"]}).error_field()
        == "roles"
    )
    past = admin("POST", "/keys", body={"principal_id": "p", "expires_at": NOW - 1})
    assert past.error_field() == "expires_at"
    rotate = admin("POST", "/keys/0123456789abcdef/rotate", body={"grace_seconds": -1})
    assert rotate.status == 422 and rotate.error_field() == "grace_seconds"
    for path in ("/keys/0123456789abcdef", "/keys/0123456789abcdef/revoke"):
        assert admin("GET" if path.count("/") == 2 else "POST", path).status == 404
    assert admin("POST", "/keys/0123456789abcdef/rotate", body={}).status == 404
    assert admin.audit.events == []


# --- usage and blocks -------------------------------------------------------------------------
def test_usage_show_and_reset(admin: Admin) -> None:
    start = int(NOW) // 60 * 60
    for window, count in ((start, 3), (start - 60, 9)):
        admin.client.put_item(
            TableName=COUNTERS,
            Item={
                **{k: {"S": v} for k, v in tables.counter_key("per-key", "k1", window).items()},
                "count": {"N": str(count)},
            },
        )
    shown = admin("GET", "/usage/per-key/k1")
    assert shown.status == 200
    assert shown.body["current_count"] == 3 and shown.body["remaining"] == 2
    assert [w["count"] for w in shown.body["windows"]] == [9, 3]
    assert admin("GET", "/usage/nope/k1").status == 404
    assert admin("DELETE", "/usage/nope/k1").status == 404
    reset = admin("DELETE", "/usage/per-key/k1")
    assert reset.status == 200 and reset.body["deleted_items"] == 2
    assert admin("GET", "/usage/per-key/k1").body["current_count"] == 0
    assert admin.audit.events[-1].resource_type == "usage"
    assert admin.audit.events[-1].config_version is None


def test_blocks(admin: Admin) -> None:
    added = admin("PUT", "/blocks/203.0.113.9", body={"seconds": 600, "reason": "abuse"})
    assert added.status == 200 and added.body["until"] == int(NOW) + 600 and added.body["active"]
    item = admin.client.get_item(
        TableName=COUNTERS,
        Key={k: {"S": v} for k, v in tables.block_key("ip", "203.0.113.9").items()},
    )["Item"]
    assert item["until"]["N"] == str(int(NOW) + 600) and item["reason"]["S"] == "abuse"
    assert int(item[tables.TTL_ATTRIBUTE]["N"]) > int(NOW) + 600
    admin("PUT", "/blocks/2001:db8::1", body={"seconds": 60})
    listed = admin("GET", "/blocks", query={"limit": "1"})
    assert len(listed.body["items"]) == 1 and listed.body["next_cursor"]
    rest = admin("GET", "/blocks", query={"cursor": listed.body["next_cursor"]})
    assert {b["ip"] for b in listed.body["items"] + rest.body["items"]} == {
        "203.0.113.9",
        "2001:db8::1",
    }
    assert admin("GET", "/blocks/203.0.113.9").body["reason"] == "abuse"
    assert admin("PUT", "/blocks/not-an-ip", body={"seconds": 60}).error_field() == "ip"
    assert admin("PUT", "/blocks/10.0.0.1", body={"seconds": 0}).error_field() == "seconds"
    assert admin("DELETE", "/blocks/203.0.113.9").status == 204
    assert admin("DELETE", "/blocks/203.0.113.9").status == 404
    assert admin("GET", "/blocks/203.0.113.9").status == 404
    assert [e.action for e in admin.audit.events] == ["create", "create", "delete"]


# --- access control ---------------------------------------------------------------------------
def _routes(methods: set[str]) -> list[tuple[str, str]]:
    paths = json.loads(document())["paths"]
    concrete = {
        "name": "public",
        "principal_id": "corp:alice",
        "tenant": "acme",
        "mapping_id": CLAIM_ID,
        "api_id": "a1b2c3d4e5",
        "stage": "prod",
        "rule_id": "per-key",
        "key_id": "0" * 16,
        "scope_key": "k1",
        "ip": "10.0.0.1",
        "revocation_id": "sha256-" + "ab" * 32,
    }
    out = []
    for path, ops in paths.items():
        for method in ops:
            if method.upper() in methods:
                out.append((method.upper(), path.format(**concrete)))
    return out


MUTATING = _routes({"PUT", "POST", "DELETE", "PATCH"})


def test_every_mutating_route_is_covered() -> None:
    assert len(MUTATING) == 25


@pytest.mark.parametrize(("method", "path"), MUTATING)
def test_non_admin_is_refused_every_mutating_route(admin: Admin, method: str, path: str) -> None:
    version = admin.store.get_version()
    for caller, status in (("user", 403), ("anonymous", 401)):
        reply = admin(method, path, body={}, caller=caller)
        assert reply.status == status, (caller, reply.body)
    assert admin.store.get_version() == version
    assert admin.audit.events == []
    # the same route is open to an admin-role principal (not refused by the access check)
    assert admin(method, path, body={}, caller="admin").status not in (401, 403)


def test_reads_need_a_caller_and_admin_role_changes_are_audited_with_principal(
    admin: Admin,
) -> None:
    assert admin("GET", "/roles", caller="anonymous").status == 401
    assert admin("GET", "/roles", caller="user").status == 200
    body = {"name": "auditor"}
    assert admin("PUT", "/roles/auditor", body=body, caller="admin").status == 200
    assert admin.audit.events[-1].actor == "corp:root"
    assert admin.audit.events[-1].actor_kind == "authorizer"
