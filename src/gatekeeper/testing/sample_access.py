"""A small, realistic access configuration shared by the demo, the tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

from gatekeeper.identity.api_keys import ApiKeyRecord, generate_key
from gatekeeper.rbac.model import ApiRoutes, ClaimMapping, Permission, Role, RoleAssignment
from gatekeeper.store.config_store import ConfigStore
from gatekeeper.testing.events import HTTP_API, REST_API

ROUTES: tuple[str, ...] = (
    "GET /",
    "GET /health",
    "GET /orders",
    "POST /orders",
    "GET /orders/{id}",
    "PUT /orders/{id}",
    "DELETE /orders/{id}",
    "GET /orders/{id}/invoice",
    "GET /tenants/{tenantId}/reports",
    "POST /tenants/{tenantId}/reports",
    "GET /admin/users",
    "DELETE /admin/users/{id}",
)

ROLES: tuple[Role, ...] = (
    Role(name="public", permissions=(Permission(methods=("GET",), path="/health"),)),
    Role(
        name="orders-reader",
        inherits=("public",),
        permissions=(Permission(methods=("GET",), path="/orders/**"),),
    ),
    Role(
        name="orders-clerk",
        inherits=("orders-reader",),
        permissions=(
            Permission(methods=("POST",), path="/orders"),
            Permission(methods=("PUT",), path="/orders/{id}"),
            Permission(effect="deny", methods=("DELETE",), path="/orders/**"),
        ),
    ),
    Role(
        name="tenant-analyst",
        permissions=(Permission(methods=("GET", "POST"), path="/tenants/{tenant}/reports"),),
    ),
    Role(name="admin", permissions=(Permission(path="/**"),)),
)

ASSIGNMENTS: tuple[RoleAssignment, ...] = (
    RoleAssignment(
        principal_id="corp:alice", tenant="acme", roles=("orders-clerk", "tenant-analyst")
    ),
    RoleAssignment(principal_id="corp:bob", tenant="globex", roles=("orders-reader",)),
)

CLAIM_MAPPINGS: tuple[ClaimMapping, ...] = (
    ClaimMapping(claim="groups", value="platform-admins", roles=("admin",), issuer="corp"),
    ClaimMapping(claim="scope", value="orders:read", roles=("orders-reader",)),
)

APIS: tuple[ApiRoutes, ...] = (
    ApiRoutes(api_id=REST_API, stage="prod", routes=ROUTES),
    ApiRoutes(api_id=HTTP_API, stage="$default", routes=ROUTES),
)


@dataclass(frozen=True)
class SampleKeys:
    """Plaintext keys, as their owners would hold them (generated at run time, never stored)."""

    active: str
    revoked: str
    rotated_in_grace: str
    rotated_expired: str
    expired: str


def seed(store: ConfigStore, *, now: float, prefix: str = "gk") -> SampleKeys:
    """Write the sample configuration and five API keys, one per key state."""
    store.put(*ROLES, *CLAIM_MAPPINGS, *APIS, *ASSIGNMENTS)
    plaintexts: dict[str, str] = {}
    records: list[ApiKeyRecord] = []
    states: dict[str, dict[str, object]] = {
        "active": {},
        "revoked": {"status": "revoked"},
        "rotated_in_grace": {"replaced_by": "0" * 16, "grace_until": now + 3600},
        "rotated_expired": {"replaced_by": "0" * 16, "grace_until": now - 1},
        "expired": {"expires_at": now - 60},
    }
    for state, extra in states.items():
        new = generate_key(prefix)
        plaintexts[state] = new.plaintext
        records.append(
            ApiKeyRecord(
                key_id=new.key_id,
                secret_hash=new.secret_hash,
                principal_id="svc:billing",
                tenant="acme",
                name=f"billing ({state})",
                roles=("orders-reader",),
                created_at=now - 86_400,
                usage_identifier=f"usage-{new.key_id}",
                **extra,
            )
        )
    store.put(*records)
    return SampleKeys(**plaintexts)
