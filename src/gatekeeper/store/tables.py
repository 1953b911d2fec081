"""Key design of the config table (single-table, ``pk``/``sk`` strings).

=================================  ==========================  ===============================
pk                                 sk                          holds
=================================  ==========================  ===============================
``RBAC``                           ``VERSION``                 ``version`` (N): bumped by
                                                               every change
``RBAC``                           ``ROLE#<name>``             a role
``RBAC``                           ``CLAIMMAP#<n>``            a claim mapping
``RBAC``                           ``API#<api id>#<stage>``    an API stage's route catalog
``RBAC``                           ``LIMIT#<rule id>``         a rate-limit rule
``RBAC``                           ``CERTMAP#<kind>#<h>``      a client-certificate mapping rule
``RBAC``                           ``CERTREVOKED#<form>#<h>``  a revoked client certificate
``RBAC``                           ``SIGKEY#<key id>``         a request-signing public key
``PRINCIPAL#<principal id>``       ``TENANT#<tenant>``         roles of a principal in a tenant
``APIKEY#<key id>``                ``APIKEY``                  an API key record (hash only)
=================================  ==========================  ===============================

Everything RBAC needs for every request (roles, mappings, catalogs) sits in one partition and
loads with one paginated Query; per-caller items are point reads. Documents are stored as JSON
in a ``doc`` attribute so that the pydantic models stay the single schema.
"""

from __future__ import annotations

RBAC_PK = "RBAC"
VERSION_SK = "VERSION"
ROLE_PREFIX = "ROLE#"
CLAIMMAP_PREFIX = "CLAIMMAP#"
LIMIT_PREFIX = "LIMIT#"
API_PREFIX = "API#"
CERTMAP_PREFIX = "CERTMAP#"
CERTREVOKED_PREFIX = "CERTREVOKED#"
SIGKEY_PREFIX = "SIGKEY#"
PRINCIPAL_PREFIX = "PRINCIPAL#"
TENANT_PREFIX = "TENANT#"
APIKEY_PREFIX = "APIKEY#"
APIKEY_SK = "APIKEY"


def role_key(name: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{ROLE_PREFIX}{name}"}


def claim_mapping_key(claim: str, value: str, issuer: str | None) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{CLAIMMAP_PREFIX}{issuer or '*'}#{claim}#{value}"}


def limit_key(rule_id: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{LIMIT_PREFIX}{rule_id}"}


def api_key(api_id: str, stage: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{API_PREFIX}{api_id}#{stage}"}


def cert_mapping_key(key: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{CERTMAP_PREFIX}{key}"}


def cert_revocation_key(key: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{CERTREVOKED_PREFIX}{key}"}


def signing_key_key(key_id: str) -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": f"{SIGKEY_PREFIX}{key_id}"}


def assignment_key(principal_id: str, tenant: str) -> dict[str, str]:
    return {"pk": f"{PRINCIPAL_PREFIX}{principal_id}", "sk": f"{TENANT_PREFIX}{tenant}"}


def apikey_key(key_id: str) -> dict[str, str]:
    return {"pk": f"{APIKEY_PREFIX}{key_id}", "sk": APIKEY_SK}


def version_key() -> dict[str, str]:
    return {"pk": RBAC_PK, "sk": VERSION_SK}


def table_definition(name: str) -> dict[str, object]:
    """CreateTable arguments for the config table (used by the demo, tests and local set-ups)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


# --- the counters table ------------------------------------------------------------------------
# =====================================  ================  ========================================
# pk                                     sk                holds
# =====================================  ================  ========================================
# ``RL#<rule id>#<scope key>``           window start (s)  ``count`` (N) of a fixed/sliding window
# ``TB#<rule id>#<scope key>``           ``TB``            ``tat`` (N): token bucket (GCRA) state
# ``FAIL#<kind>#<value>``                window start (s)  ``count`` of failed authentications
# ``BLOCK#<kind>#<value>``               ``BLOCK``         ``until`` (N), ``reason`` (S): a block
# =====================================  ================  ========================================
# Every item has ``expires_at`` (N, epoch seconds), the table's TTL attribute. TTL deletes late
# (days), so readers always compare window ids / ``until`` with the clock and never rely on it.
TTL_ATTRIBUTE = "expires_at"
BUCKET_SK = "TB"
BLOCK_SK = "BLOCK"


def counter_key(rule_id: str, scope_key: str, window_start: int) -> dict[str, str]:
    return {"pk": f"RL#{rule_id}#{scope_key}", "sk": str(window_start)}


def bucket_key(rule_id: str, scope_key: str) -> dict[str, str]:
    return {"pk": f"TB#{rule_id}#{scope_key}", "sk": BUCKET_SK}


def failure_key(kind: str, value: str, window_start: int) -> dict[str, str]:
    return {"pk": f"FAIL#{kind}#{value}", "sk": str(window_start)}


def block_key(kind: str, value: str) -> dict[str, str]:
    """``kind`` is ``ip`` (the authorizer checks these before any signature work)."""
    return {"pk": f"BLOCK#{kind}#{value}", "sk": BLOCK_SK}


def counters_table_definition(name: str) -> dict[str, object]:
    """CreateTable arguments for the counters table (TTL is enabled separately)."""
    return table_definition(name)
