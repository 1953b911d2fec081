"""Map an :class:`AuditEvent` onto OCSF 1.6.0 (the archive's record format).

SIEMs and Amazon Security Lake read OCSF without a mapping layer, so the sink archives this shape
and the hot path keeps emitting the flat event. Two classes are used:

- a caller we could not identify (``decision == "unauthorized"``): **Authentication** (3002),
  activity Logon, status Failure;
- every other decision and admin changes: **API Activity** (6003), activity from the HTTP verb
  (GET/HEAD Read, POST Create, PUT/PATCH Update, DELETE Delete) or the admin operation.

Why 1.6.0: it is the oldest OCSF version that holds every record written here. API Activity
takes the ``security_control`` profile (``disposition``, ``action``) only from 1.4.0, and
``http_request.http_method`` accepts ``PATCH`` (which API Gateway routes) only from 1.6.0. Every
record validates against the ``ocsf-json-schema`` package's 1.6.0 schema with the profiles it
declares (``tests/integration/test_audit_ocsf.py``, records written by the real handlers).

Rules the schema imposes, and how they are met:

- no attribute is ``null``: an unknown value is left out (the Athena table reads it as NULL);
- API Activity needs an ``actor`` and a ``src_endpoint``, Authentication a ``user`` and a
  ``service``: when the event does not say (a blocked or unidentified caller, an admin change
  without a source address), they carry an explicit unknown (:data:`UNKNOWN`, ``type_id`` 0)
  instead of being absent; a presented API key's id, when the event has one, is the user's
  ``programmatic_credentials``;
- ``api.operation`` is required: the route key, else ``METHOD path``, else the admin
  operation (``create_role``), else ``unknown``.

Both classes carry ``actor.user.uid`` (the principal), ``src_endpoint.ip``, ``http_request``
and ``api.operation``, so one Athena table and the same queries cover both. Gatekeeper's own facts
(reason, roles, rate limit, policy scope, …) sit under ``unmapped``, which OCSF reserves for
source fields without an OCSF attribute. Built as plain dicts: this runs once per archived event.
"""

from __future__ import annotations

from typing import Any

from gatekeeper.audit.event import AuditEvent

OCSF_VERSION = "1.6.0"
PROFILES = ("cloud", "security_control")
PRODUCT = {"name": "Gatekeeper", "vendor_name": "Gatekeeper", "version": "0.1.0"}
UNKNOWN = "unknown"
"""The name of a user, endpoint or service the event does not identify (``type_id`` 0 where
the object has a type)."""

AUTHENTICATION = 3002
API_ACTIVITY = 6003
_CATEGORY = {
    AUTHENTICATION: (3, "Identity & Access Management"),
    API_ACTIVITY: (6, "Application Activity"),
}
_CLASS_NAME = {AUTHENTICATION: "Authentication", API_ACTIVITY: "API Activity"}
_API_ACTIVITY = {
    "POST": (1, "Create"),
    "GET": (2, "Read"),
    "HEAD": (2, "Read"),
    "PUT": (3, "Update"),
    "PATCH": (3, "Update"),
    "DELETE": (4, "Delete"),
}
_HTTP_METHODS = frozenset(
    {"OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PATCH"}
)  # OCSF 1.6.0's enum for http_request.http_method
_SEVERITY = {"allow": (1, "Informational"), "deny": (2, "Low"), "unauthorized": (3, "Medium")}
_OWN_FAILURES = frozenset(
    {"internal_error", "store_unavailable", "jwks_unavailable", "config_unavailable",
     "discovery_unavailable", "invalid_discovery_document"}
)  # fmt: skip
_AUTH_PROTOCOL = {"jwt": (99, "JWT bearer token"), "api_key": (99, "API key")}
_GATEKEEPER_ONLY = (
    "schema_version", "event_type", "decision", "reason", "tenant", "auth_method", "issuer",
    "key_id", "roles", "event_kind", "event_shape", "api_id", "stage", "route_key", "matched_rule",
    "policy_scope", "config_version", "latency_ms", "rate_limit", "change",
)  # fmt: skip


def class_of(event: AuditEvent) -> int:
    if event.event_type == "authorization" and event.decision == "unauthorized":
        return AUTHENTICATION
    return API_ACTIVITY


def _activity(event: AuditEvent, class_uid: int) -> tuple[int, str]:
    if class_uid == AUTHENTICATION:
        return 1, "Logon"
    if event.change is not None:
        op = event.change.operation.lower()
        if op.startswith("create"):
            return 1, "Create"
        return (4, "Delete") if op.startswith(("delete", "revoke", "remove")) else (3, "Update")
    return _API_ACTIVITY.get((event.method or "").upper(), (99, "Other"))


def _disposition(event: AuditEvent) -> tuple[int, str]:
    """``disposition_id`` (security_control): what Gatekeeper did with the request."""
    if event.decision == "allow":
        return 1, "Allowed"
    if event.reason in _OWN_FAILURES:
        return 27, "Error"  # failed closed: our own fault, not the caller's
    if event.event_type == "authorization" and event.decision == "deny":
        if event.reason in {"rate_limited", "blocked"}:
            return 2, "Blocked"
        return 26, "Unauthorized"  # an authorization check failed (RBAC, tenant, policy)
    return 2, "Blocked"


def _user(event: AuditEvent) -> dict[str, Any]:
    """The caller as an OCSF user: the principal, else what was presented, else unknown."""
    user: dict[str, Any] = {}
    if event.principal_id is not None:
        user["uid"] = event.principal_id
    else:
        user.update(name=UNKNOWN, type_id=0, type="Unknown")
    if event.tenant is not None:
        user["org"] = {"uid": event.tenant}
    if event.key_id is not None:
        user["programmatic_credentials"] = [{"uid": event.key_id, "type": "API key"}]
    return user


def _operation(event: AuditEvent) -> str:
    if event.route_key:
        return event.route_key
    if event.method and event.path:
        return f"{event.method} {event.path}"
    if event.change is not None:
        kind = event.change.resource_type
        return f"{event.change.operation}_{kind}" if kind else event.change.operation
    return UNKNOWN


def _service(event: AuditEvent) -> dict[str, str]:
    if event.api_id:
        return {"name": f"{event.api_id}/{event.stage}" if event.stage else event.api_id}
    if event.change is not None:
        return {"name": "gatekeeper-admin"}
    return {"name": UNKNOWN}


def _http_request(event: AuditEvent) -> dict[str, Any] | None:
    request: dict[str, Any] = {}
    method = (event.method or "").upper()
    if method in _HTTP_METHODS:
        request["http_method"] = method
    if event.path:
        request["url"] = {"path": event.path}
    if event.user_agent:
        request["user_agent"] = event.user_agent
    if request and event.request_id:
        request["uid"] = event.request_id
    return request or None


def to_ocsf(event: AuditEvent) -> dict[str, Any]:
    """The archived record for ``event``; ``metadata.uid`` is the event id (the dedup key)."""
    class_uid = class_of(event)
    activity_id, activity_name = _activity(event, class_uid)
    category_uid, category_name = _CATEGORY[class_uid]
    severity_id, severity = _SEVERITY[event.decision]
    disposition_id, disposition = _disposition(event)
    success = event.decision == "allow"
    metadata: dict[str, Any] = {
        "uid": event.event_id,
        "version": OCSF_VERSION,
        "product": PRODUCT,
        "log_name": "gatekeeper-audit",
        "original_time": event.time,
        "profiles": list(PROFILES),
    }
    if event.request_id:
        metadata["correlation_uid"] = event.request_id
    api: dict[str, Any] = {"operation": _operation(event), "service": _service(event)}
    if event.request_id:
        api["request"] = {"uid": event.request_id}
    user = _user(event)
    record: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": _CLASS_NAME[class_uid],
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{_CLASS_NAME[class_uid]}: {activity_name}",
        "severity_id": severity_id,
        "severity": severity,
        "time": event.epoch_ms(),
        "status_id": 1 if success else 2,
        "status": "Success" if success else "Failure",
        "status_detail": event.reason,
        "message": f"{event.event_type} {event.decision}: {event.reason}",
        "metadata": metadata,
        "cloud": {"provider": "AWS"},
        "action_id": 1 if success else 2,
        "action": "Allowed" if success else "Denied",
        "disposition_id": disposition_id,
        "disposition": disposition,
        "actor": {"user": user},
        "src_endpoint": (
            {"ip": event.source_ip}
            if event.source_ip
            else {"name": UNKNOWN, "type_id": 0, "type": "Unknown"}
        ),
        "api": api,
    }
    http_request = _http_request(event)
    if http_request is not None:
        record["http_request"] = http_request
    if class_uid == API_ACTIVITY and event.change is not None and event.change.target:
        resource = {"uid": event.change.target}
        if event.change.resource_type:
            resource["type"] = event.change.resource_type
        record["resources"] = [resource]
    if class_uid == AUTHENTICATION:
        record["user"] = user
        record["service"] = api["service"]
        protocol_id, protocol = _AUTH_PROTOCOL.get(event.auth_method or "", (0, "Unknown"))
        record["auth_protocol_id"] = protocol_id
        record["auth_protocol"] = protocol
    record["unmapped"] = event.model_dump(include=set(_GATEKEEPER_ONLY), mode="json")
    return record
