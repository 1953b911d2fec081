"""Map an :class:`AuditEvent` onto OCSF 1.1 (the archive's record format).

SIEMs and Amazon Security Lake read OCSF without a mapping layer, so the sink archives this shape
and the hot path keeps emitting the flat event. Two classes are used:

- a caller we could not identify (``decision == "unauthorized"``): **Authentication** (3002),
  activity Logon, status Failure;
- every other decision and admin changes: **API Activity** (6003), activity from the HTTP verb
  (GET Read, POST Create, PUT/PATCH Update, DELETE Delete), with the Security Control profile's
  ``disposition`` (Allowed/Blocked).

Both carry ``actor.user.uid`` (the principal), ``src_endpoint.ip``, ``http_request`` and
``api.operation``, so one Athena table and the same queries cover both. Gatekeeper's own facts
(reason, roles, rate limit, policy scope, …) sit under ``unmapped``, which OCSF reserves for
source fields without an OCSF attribute. Built as plain dicts: this runs once per archived event.
"""

from __future__ import annotations

from typing import Any

from gatekeeper.audit.event import AuditEvent

OCSF_VERSION = "1.1.0"
PRODUCT = {"name": "Gatekeeper", "vendor_name": "Gatekeeper", "version": "0.1.0"}

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
_SEVERITY = {"allow": (1, "Informational"), "deny": (2, "Low"), "unauthorized": (3, "Medium")}
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
        return (4, "Delete") if op.startswith(("delete", "revoke", "remove")) else (3, "Update")
    return _API_ACTIVITY.get((event.method or "").upper(), (99, "Other"))


def to_ocsf(event: AuditEvent) -> dict[str, Any]:
    """The archived record for ``event``; ``metadata.uid`` is the event id (the dedup key)."""
    class_uid = class_of(event)
    activity_id, activity_name = _activity(event, class_uid)
    category_uid, category_name = _CATEGORY[class_uid]
    severity_id, severity = _SEVERITY[event.decision]
    success = event.decision == "allow"
    operation = event.route_key or (
        f"{event.method} {event.path}" if event.method and event.path else None
    )
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
        "metadata": {
            "uid": event.event_id,
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "log_name": "gatekeeper-audit",
            "original_time": event.time,
            "correlation_uid": event.request_id,
            "profiles": ["cloud", "security_control"],
        },
        "cloud": {"provider": "AWS"},
        "disposition_id": 1 if success else 2,
        "disposition": "Allowed" if success else "Blocked",
        "src_endpoint": {"ip": event.source_ip},
        "http_request": {
            "http_method": event.method,
            "url": {"path": event.path},
            "user_agent": event.user_agent,
            "uid": event.request_id,
        },
        "api": {
            "operation": operation,
            "service": {"name": f"{event.api_id}/{event.stage}" if event.api_id else None},
            "request": {"uid": event.request_id},
        },
    }
    if event.principal_id is not None:
        user = {"uid": event.principal_id, "org": {"uid": event.tenant}}
        record["actor"] = {"user": user}
        if class_uid == AUTHENTICATION:
            record["user"] = user
    if class_uid == AUTHENTICATION:
        record["auth_protocol_id"] = 99
        record["auth_protocol"] = event.auth_method or "unknown"
    fields = event.model_dump(include=set(_GATEKEEPER_ONLY), mode="json")
    record["unmapped"] = fields
    return record
