"""How often each policy scope occurs, and what a policy costs, per API shape.

Run: ``.venv/bin/python bench/policy_scopes.py`` (pure: no AWS, no moto).

For every principal of the sample access configuration (``examples/access.yaml``) and every route
of its API, on four shapes of the same API — the catalogued REST API, a proxy API
(``GET /`` + ``ANY /{proxy+}``), an HTTP API with only a ``$default`` route, and no catalog —
it builds the caller's base policy once (what the authorizer memoises per roles, tenant, stage
and config version) and adapts it to each request, and counts the scopes: ``api`` (one cached
answer is right for every route) or ``request`` (right for this request only). It also times
the one-off build and the per-request adaptation (the cost every later request pays).
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.identity.principal import Principal
from gatekeeper.policy_builder import build_base, policy_for_request
from gatekeeper.rbac.evaluator import evaluate, grants_for, resolve_roles
from gatekeeper.rbac.model import ConfigSnapshot
from gatekeeper.testing.sample_access import ASSIGNMENTS, CLAIM_MAPPINGS, ROLES, ROUTES

API, STAGE = "a1b2c3d4e5", "prod"
PREFIX = f"arn:aws:execute-api:us-east-1:123456789012:{API}/{STAGE}"
SHAPES: dict[str, tuple[str, ...] | None] = {
    "catalogued REST API (examples/access.yaml)": ROUTES,
    "proxy API (GET / + ANY /{proxy+})": ("GET /", "ANY /{proxy+}"),
    "HTTP API, $default route only": ("$default",),
    "no route catalog": None,
}
VALUES = {"id": "o-1001", "tenantId": "acme"}


def principals() -> dict[str, Principal]:
    def jwt(sub: str, tenant: str | None = None, **claims: tuple[str, ...]) -> Principal:
        return Principal(
            principal_id=f"corp:{sub}",
            tenant=tenant,
            auth_method="jwt",
            issuer="corp",
            attributes=claims,
        )

    return {
        "corp:alice (orders-clerk, tenant-analyst @acme)": jwt("alice", "acme"),
        "corp:bob (orders-reader @globex)": jwt("bob", "globex"),
        "groups=platform-admins (admin)": jwt("root", groups=("platform-admins",)),
        "scope=orders:read (orders-reader)": jwt("app", scope=("orders:read",)),
        "svc:billing API key (orders-reader @acme)": Principal(
            principal_id="svc:billing",
            tenant="acme",
            auth_method="api_key",
            key_id="0123456789abcdef",
            roles=("orders-reader",),
        ),
        "unassigned user": jwt("nobody"),
    }


def requests() -> list[tuple[str, str]]:
    out = []
    for route in ROUTES:
        verb, path = route.split(" ", 1)
        out.append((verb, re.sub(r"\{(\w+)\}", lambda m: VALUES.get(m.group(1), "x"), path)))
    return out


def main() -> None:
    snapshot = ConfigSnapshot(roles={r.name: r for r in ROLES}, claim_mappings=CLAIM_MAPPINGS)
    print("| API shape | principals x routes | `api` | `request` | build once (median) | "
          "each request after (median) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for shape, catalog in SHAPES.items():
        scopes: Counter[str] = Counter()
        builds: list[float] = []
        adapts: list[float] = []
        for principal in principals().values():
            roles = resolve_roles(snapshot, principal, ASSIGNMENTS)
            grants = grants_for(snapshot, roles, API, STAGE)
            started = time.perf_counter()
            base = build_base(base=PREFIX, grants=grants, tenant=principal.tenant, routes=catalog)
            builds.append(time.perf_counter() - started)
            for verb, path in requests():
                arn = ExecuteApiArn.parse(f"{PREFIX}/{verb}{path}")
                allowed = evaluate(grants, verb, path, principal.tenant).allowed
                started = time.perf_counter()
                result = policy_for_request(base, arn, allowed)
                adapts.append(time.perf_counter() - started)
                assert result.allows_request == allowed
                scopes[result.scope] += 1
        total = sum(scopes.values())
        print(
            f"| {shape} | {total} | {scopes['api']} | {scopes['request']} | "
            f"{statistics.median(builds) * 1000:.2f} ms | "
            f"{statistics.median(adapts) * 1e6:.0f} µs |"
        )


if __name__ == "__main__":
    main()
