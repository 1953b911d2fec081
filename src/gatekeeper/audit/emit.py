"""Where audit events go: a JSON log line (default) or a direct Kinesis put.

- ``log`` (:class:`LogAuditEmitter`): one compact JSON line on the function's log stream,
  ``{"level":"INFO","audit":{...}}`` (see :func:`compact_json`). No added latency; a CloudWatch
  Logs subscription filter (``{ $.audit.event_id = "*" }``) forwards the lines to the audit
  stream. Compact because CloudWatch Logs bills every byte ingested, and the log line is most of
  what a decision costs: no logger envelope (the log group and stream name the function, the
  event carries its own time and API Gateway request id), no null fields and no fields at their
  default; the sink reads the line back into the same :class:`AuditEvent` either way.
- ``kinesis`` (:class:`KinesisAuditEmitter`): ``PutRecords`` straight to the stream, so events
  reach the archive without the CloudWatch Logs hop (and its ingestion cost). Never fatal: a
  failed or partially failed put sends the affected events to the log line instead, and the
  decision is already made. Costs one PutRecords round trip per flush (short timeouts).

Pick with ``GATEKEEPER_AUDIT_TRANSPORT`` (see :func:`emitter_from_settings`).
"""

from __future__ import annotations

import atexit
import json
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from gatekeeper.audit.event import AuditEvent

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient

    from gatekeeper.config import Settings

MAX_PUT_RECORDS = 500  # Kinesis PutRecords limit per call


class AuditEmitter(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


def compact(event: AuditEvent) -> dict[str, Any]:
    """The event without null fields or fields at their default; reads back to an equal event.

    ``schema_version`` and ``event_id`` are always written: a reader must never fill them with
    its own defaults (another version, a new random id).
    """
    body = event.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return {"schema_version": event.schema_version, "event_id": event.event_id, **body}


def compact_json(event: AuditEvent) -> str:
    """One compact JSON object (no spaces), as logged and as put on Kinesis."""
    return json.dumps(compact(event), separators=(",", ":"))


class LogAuditEmitter:
    """Writes one compact line per event on the stream of ``logger``'s handler (stdout in
    Lambda), bypassing the logger's envelope; ``level`` lets Lambda's log-level filter (JSON log
    format) see an INFO line."""

    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def emit(self, event: AuditEvent) -> None:
        line = f'{{"level":"INFO","audit":{compact_json(event)}}}\n'
        handler = self._logger.logger_handler
        stream = getattr(handler, "stream", None)
        if stream is None:  # not a stream handler: let the logger format it
            self._logger.info("audit", extra={"audit": compact(event)})
            return
        handler.acquire()
        try:
            stream.write(line)
            stream.flush()
        finally:
            handler.release()


class ListAuditEmitter:
    """Collects events in memory (tests, the demo)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)


class KinesisAuditEmitter:
    """Buffers events and puts them with ``PutRecords``; failures fall back to ``fallback``.

    ``batch_size`` 1 (the default) puts every event at once: a Lambda container can be frozen
    or reclaimed between invocations, so a buffered event might never be sent. Larger batches
    suit long-lived processes; :meth:`flush` also runs at interpreter exit. The partition key is
    the event id: duplicates of one event (a retried put) land on the same shard, where the
    sink's dedup window catches them.
    """

    def __init__(
        self,
        client: KinesisClient,
        stream: str,
        fallback: AuditEmitter,
        *,
        batch_size: int = 1,
    ) -> None:
        self._kinesis = client
        self._stream = (
            {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        )
        self._fallback = fallback
        self._batch_size = max(1, min(batch_size, MAX_PUT_RECORDS))
        self._buffer: list[AuditEvent] = []
        self.fallbacks = 0
        if self._batch_size > 1:
            atexit.register(self.flush)

    def emit(self, event: AuditEvent) -> None:
        self._buffer.append(event)
        if len(self._buffer) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        events, self._buffer = self._buffer, []
        if not events:
            return
        records = [{"Data": compact_json(e).encode(), "PartitionKey": e.event_id} for e in events]
        try:
            response = self._kinesis.put_records(Records=records, **self._stream)  # type: ignore[arg-type]
        except Exception:
            self._fall_back(events)
            return
        if response.get("FailedRecordCount"):
            results = response["Records"]
            self._fall_back([e for e, r in zip(events, results, strict=True) if "ErrorCode" in r])

    def _fall_back(self, events: list[AuditEvent]) -> None:
        self.fallbacks += len(events)
        for event in events:
            try:
                self._fallback.emit(event)
            except Exception:  # noqa: S112 - the decision stands whatever happens here
                continue


def emitter_from_settings(settings: Settings, logger: Logger) -> AuditEmitter:
    """The emitter ``GATEKEEPER_AUDIT_TRANSPORT`` asks for (the log line is always the fallback)."""
    log = LogAuditEmitter(logger)
    if settings.audit_transport != "kinesis" or not settings.audit_stream:
        return log
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=0.5, read_timeout=0.5, retries={"mode": "standard", "max_attempts": 2}
    )
    client = boto3.client("kinesis", config=config)
    return KinesisAuditEmitter(
        client, settings.audit_stream, log, batch_size=settings.audit_batch_size
    )
