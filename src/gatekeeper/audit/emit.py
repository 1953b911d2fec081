"""Where audit events go. For now: one JSON log line through Powertools Logger.

The log line costs no extra latency; a CloudWatch Logs subscription forwards it to the audit
pipeline. Lines carry the event under the ``audit`` key so the pipeline can pick them out.
"""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools import Logger

from gatekeeper.audit.event import AuditEvent


class AuditEmitter(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class LogAuditEmitter:
    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def emit(self, event: AuditEvent) -> None:
        self._logger.info(
            f"authorization {event.decision}: {event.reason}",
            extra={"audit": event.model_dump(mode="json")},
        )


class ListAuditEmitter:
    """Collects events in memory (tests, the demo)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)
