"""The admin-change audit event: who changed what, with digests of the item before and after.

Emitted as one JSON log line under the ``audit`` key in the common schema
(:class:`gatekeeper.audit.event.AuditEvent` with ``event_type="admin_change"``), so the same
CloudWatch Logs subscription and audit sink carry it with the authorizer's decisions.
Digests are :func:`gatekeeper.store.config_store.digest` of the stored document (the API's
ETag), never the document itself: API-key records hold a secret hash, and audit lines must not.
"""

from __future__ import annotations

from typing import Literal, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from gatekeeper.audit.emit import AuditEmitter
from gatekeeper.audit.event import AdminChange, AuditEvent, iso_time

ActorKind = Literal["iam", "authorizer", "cli"]


class Actor(BaseModel):
    """The caller making a change: an IAM ARN, an authorizer principal id, or a CLI user."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: ActorKind
    roles: tuple[str, ...] = ()
    request_id: str | None = None


class AdminChangeEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_type: Literal["admin_change"] = "admin_change"
    time: float
    actor: str
    actor_kind: ActorKind
    action: str
    """``create``, ``update``, ``delete``, ``revoke``, ``rotate``, ``reset``."""
    resource_type: str
    resource_id: str
    before_digest: str | None
    after_digest: str | None
    config_version: int | None
    """The config version this change produced (None for counters-table changes)."""
    request_id: str | None = None
    source: Literal["api", "cli"] = "api"

    def to_audit_event(self) -> AuditEvent:
        """The common audit schema: the actor is the principal, the change its own block."""
        return AuditEvent(
            event_type="admin_change",
            time=iso_time(self.time),
            request_id=self.request_id,
            decision="allow",
            reason=f"{self.action}_{self.resource_type}",
            principal_id=self.actor,
            auth_method=self.actor_kind,
            config_version=self.config_version,
            latency_ms=0.0,
            change=AdminChange(
                operation=self.action,
                resource_type=self.resource_type,
                target=self.resource_id,
                actor_kind=self.actor_kind,
                source=self.source,
                before_digest=self.before_digest,
                after_digest=self.after_digest,
                config_version_after=self.config_version,
            ),
        )


class AdminAuditEmitter(Protocol):
    def emit(self, event: AdminChangeEvent) -> None: ...


class LogAdminAuditEmitter:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def emit(self, event: AdminChangeEvent) -> None:
        self._logger.info(
            f"admin {event.action} {event.resource_type} {event.resource_id}",
            extra={"audit": event.to_audit_event().model_dump(mode="json")},
        )


class ListAdminAuditEmitter:
    """Collects events in memory (tests)."""

    def __init__(self) -> None:
        self.events: list[AdminChangeEvent] = []

    def emit(self, event: AdminChangeEvent) -> None:
        self.events.append(event)


class SchemaAdminAuditEmitter:
    """Sends admin changes, in the common schema, through any audit transport (e.g. Kinesis)."""

    def __init__(self, inner: AuditEmitter) -> None:
        self._inner = inner

    def emit(self, event: AdminChangeEvent) -> None:
        self._inner.emit(event.to_audit_event())
