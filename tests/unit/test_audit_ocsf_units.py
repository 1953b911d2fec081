"""OCSF mapping edge cases, each validated against the OCSF schema (``tests/ocsf_check.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.audit.event import AdminChange, AuditEvent, RateLimitInfo
from gatekeeper.audit.ocsf import OCSF_VERSION, UNKNOWN, to_ocsf
from tests.audit_helpers import event
from tests.ocsf_check import ocsf_errors


def valid(record: dict[str, Any]) -> dict[str, Any]:
    assert ocsf_errors(record) == [], record
    return record


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_http_verb(method: str) -> None:
    record = valid(to_ocsf(event(1, method=method)))
    assert record["http_request"]["http_method"] == method
    assert record["metadata"]["version"] == OCSF_VERSION


def test_a_verb_ocsf_does_not_know_is_left_out_not_invalid() -> None:
    record = valid(to_ocsf(event(1, method="ANY", route_key="$connect", path=None)))
    assert "http_method" not in record.get("http_request", {})
    assert record["api"]["operation"] == "$connect" and record["activity_id"] == 99


def test_a_presented_key_id_without_a_principal_is_the_users_credential() -> None:
    record = valid(
        to_ocsf(
            event(
                1,
                decision="unauthorized",
                reason="api_key_revoked",
                principal_id=None,
                key_id="0123456789abcdef",
            )
        )
    )
    assert record["user"]["name"] == UNKNOWN
    assert record["user"]["programmatic_credentials"] == [
        {"uid": "0123456789abcdef", "type": "API key"}
    ]


def test_our_own_failures_are_errors_not_the_callers() -> None:
    record = valid(to_ocsf(event(1, decision="deny", reason="store_unavailable")))
    assert (record["disposition_id"], record["disposition"]) == (27, "Error")


def test_a_rate_limited_request() -> None:
    limit = RateLimitInfo(rule_id="per-key", limited=True, counter=6, limit=5, remaining=0)
    record = valid(to_ocsf(event(1, decision="deny", reason="rate_limited", rate_limit=limit)))
    assert record["disposition"] == "Blocked" and record["action"] == "Denied"
    assert record["unmapped"]["rate_limit"]["limited"] is True


def test_an_admin_change_without_source_or_request() -> None:
    change = AdminChange(
        operation="revoke",
        resource_type="api_key",
        target="0123456789abcdef",
        actor_kind="cli",
        source="cli",
    )
    record = valid(
        to_ocsf(
            event(
                1,
                event_type="admin_change",
                reason="revoke_api_key",
                principal_id="cli:ops",
                method=None,
                path=None,
                source_ip=None,
                api_id=None,
                stage=None,
                change=change,
            )
        )
    )
    assert (record["activity_id"], record["activity_name"]) == (4, "Delete")
    assert record["src_endpoint"] == {"name": UNKNOWN, "type_id": 0, "type": "Unknown"}
    assert record["api"] == {"operation": "revoke_api_key", "service": {"name": "gatekeeper-admin"}}
    assert "http_request" not in record


texts = st.text(min_size=1, max_size=20)
optional = st.none() | texts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decision=st.sampled_from(["allow", "deny", "unauthorized"]),
    event_type=st.sampled_from(["authorization", "admin_change"]),
    principal_id=optional,
    tenant=optional,
    key_id=optional,
    method=st.none() | st.sampled_from(["GET", "PATCH", "ANY", "get", "$connect"]),
    path=optional,
    route_key=optional,
    source_ip=st.none() | st.ip_addresses().map(str),
    user_agent=optional,
    request_id=optional,
    api_id=optional,
    stage=optional,
    auth_method=st.none() | st.sampled_from(["jwt", "api_key", "other"]),
    change=st.none()
    | st.builds(AdminChange, operation=texts, resource_type=optional, target=optional),
)
def test_any_valid_audit_event_maps_to_valid_ocsf(**fields: Any) -> None:
    audit_event: AuditEvent = event(1, reason="r", **fields)
    assert ocsf_errors(to_ocsf(audit_event)) == []
