"""The audit sink's batch logic: decode → validate → dedup → redact → OCSF → archive → detect.

``functions/audit_sink/handler.py`` turns the Kinesis event into :class:`SinkRecord`s, calls
:meth:`AuditSink.process` once per batch and reports :attr:`SinkResult.failed` through
Powertools' partial batch response. Per shard, in stream order:

1. load the shard's state (chain head, done positions, recent event ids); if that fails, the
   whole shard's records fail and are retried;
2. decode each record (CloudWatch Logs or direct); skip positions already archived (a retry);
3. validate against :class:`AuditEvent`; an invalid payload goes to ``quarantine/`` with the
   error (redacted, without pydantic's echo of the input) and is done, not retried;
4. drop event ids already archived (batch or recent window): producers and CloudWatch deliver
   at least once;
5. map to OCSF, redact, and write one object per hour partition (chained, write-once keys);
6. a record fails exactly when one of its events could not be written; the state remembers
   what was done so the retry writes only the rest; then the digest, if due, and the state.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from gatekeeper.audit.archive import ArchiveWriter, Line, Pos, ShardState, chain_id, partition
from gatekeeper.audit.decode import Undecodable, decode_record
from gatekeeper.audit.detect import Detector
from gatekeeper.audit.event import AuditEvent
from gatekeeper.audit.ocsf import to_ocsf
from gatekeeper.audit.redact import redact, redact_event, redact_text

if TYPE_CHECKING:
    from gatekeeper.config import AuditSinkSettings

MAX_OBJECT_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class SinkRecord:
    sequence_number: str
    shard_id: str
    stream: str
    data: bytes


def records_from_event(event: Mapping[str, Any]) -> list[SinkRecord]:
    """The Kinesis event-source-mapping event → records (``eventID`` is ``<shard>:<seq>``)."""
    return [
        SinkRecord(
            sequence_number=record["kinesis"]["sequenceNumber"],
            shard_id=record["eventID"].split(":", 1)[0],
            stream=record["eventSourceARN"].rsplit("/", 1)[-1],
            data=base64.b64decode(record["kinesis"]["data"]),
        )
        for record in event.get("Records", [])
    ]


@dataclass
class _Plan:
    order: list[tuple[Pos, str]] = field(default_factory=list)  # done | quarantine | event id
    events: dict[str, AuditEvent] = field(default_factory=dict)
    groups: dict[str, list[Line]] = field(default_factory=dict)  # partition → lines
    quarantine: dict[Pos, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SinkResult:
    failed: list[str] = field(default_factory=list)
    archived: list[AuditEvent] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    duplicates: int = 0
    already_archived: int = 0


class AuditSink:
    def __init__(
        self,
        writer: ArchiveWriter,
        *,
        detector: Detector | None = None,
        logger: Logger | None = None,
        dedup_window: int = 2000,
        max_object_events: int = MAX_OBJECT_EVENTS,
    ) -> None:
        self.writer = writer
        self._detector = detector
        self._log = logger or Logger(service="gatekeeper-audit-sink")
        self._dedup_window = dedup_window
        self._max_object_events = max_object_events

    def process(self, records: Sequence[SinkRecord]) -> SinkResult:
        result = SinkResult()
        by_chain: dict[str, list[SinkRecord]] = {}
        for record in records:
            by_chain.setdefault(chain_id(record.stream, record.shard_id), []).append(record)
        for chain, chain_records in by_chain.items():
            self._process_chain(chain, chain_records, result)
        if self._detector is not None and result.archived:
            try:
                self._detector.observe(result.archived)
            except Exception:  # best effort: the archive is what must not fail
                self._log.exception("detection failed; events are archived")
        return result

    def _plan(self, state: ShardState, records: list[SinkRecord], result: SinkResult) -> _Plan:
        """Decode, skip what is done, validate, dedup, map: what this batch must write."""
        plan = _Plan()
        order, events, groups, quarantine = plan.order, plan.events, plan.groups, plan.quarantine
        seen = set(state.recent_ids)
        for record in records:
            seq = int(record.sequence_number)
            items = decode_record(record.data)
            if not items:
                order.append(((seq, 0), "done"))
            for idx, item in enumerate(items):
                pos = (seq, idx)
                if state.is_done(pos):
                    result.already_archived += 1
                    order.append((pos, "done"))
                elif isinstance(item, Undecodable):
                    quarantine[pos] = _quarantined(record, idx, item.error, raw=item.raw)
                    order.append((pos, "quarantine"))
                else:
                    try:
                        event = AuditEvent.model_validate(item.data)
                    except ValidationError as exc:
                        errors = exc.errors(include_url=False, include_input=False)
                        quarantine[pos] = _quarantined(record, idx, str(errors), payload=item.data)
                        order.append((pos, "quarantine"))
                        continue
                    if event.event_id in seen:
                        result.duplicates += 1
                        order.append((pos, "done"))
                        continue
                    seen.add(event.event_id)
                    events[event.event_id] = event
                    ocsf = to_ocsf(redact_event(event))
                    data = json.dumps(ocsf, separators=(",", ":")).encode()
                    line = Line(pos, event.event_id, data)
                    groups.setdefault(partition(ocsf["time"]), []).append(line)
                    order.append((pos, event.event_id))
        return plan

    def _process_chain(self, chain: str, records: list[SinkRecord], result: SinkResult) -> None:
        records = sorted(records, key=lambda r: int(r.sequence_number))
        try:
            state = self.writer.load_state(chain)
        except Exception:
            self._log.exception("cannot read the archive state; the batch will be retried")
            result.failed += [r.sequence_number for r in records]
            return
        plan = self._plan(state, records, result)
        order, events, groups, quarantine = plan.order, plan.events, plan.groups, plan.quarantine

        written: list[str] = []
        adopted: list[str] = []  # in an adopted object, not in this batch: archived already
        for part, lines in groups.items():
            for start in range(0, len(lines), self._max_object_events):
                chunk = lines[start : start + self._max_object_events]
                before = len(state.pending)
                try:
                    ids = self.writer.write_object(state, part, chunk)
                except Exception:
                    self._log.exception("archive write failed", extra={"partition": part})
                    continue
                written += [line.event_id for line in chunk if line.event_id in ids]
                adopted += sorted(ids - {line.event_id for line in chunk})
                result.objects += [entry.key for entry in state.pending[before:]]
        stored: set[Pos] = set()
        for pos, document in quarantine.items():
            try:
                result.quarantined.append(self.writer.write_quarantine(chain, pos, document))
                stored.add(pos)
            except Exception:
                self._log.exception("quarantine write failed")

        done_ids = set(written)
        flags = [(pos, tag == "done" or pos in stored or tag in done_ids) for pos, tag in order]
        state.record_batch(flags)
        state.remember_ids([*adopted, *written], self._dedup_window)
        if self.writer.digest_due(state):
            try:
                result.digests.append(self.writer.write_digest(state))
            except Exception:  # the objects stay pending; the next batch signs them
                self._log.exception("digest write failed")
        try:
            self.writer.save_state(state)
        except Exception:
            self._log.exception("cannot save the archive state; the batch will be retried")
            result.failed += [r.sequence_number for r in records]
            return
        failed = {pos[0] for pos, ok in flags if not ok}
        result.failed += [r.sequence_number for r in records if int(r.sequence_number) in failed]
        result.archived += [events[i] for i in written]


def _quarantined(
    record: SinkRecord,
    index: int,
    error: str,
    *,
    raw: str | None = None,
    payload: Any = None,
) -> dict[str, Any]:
    return {
        "error": redact_text(error),
        "stream": record.stream,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "index": index,
        "raw": None if raw is None else redact_text(raw),
        "payload": None if payload is None else redact(payload),
    }


def failed_items(failed: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The partial batch response for ``failed`` sequence numbers."""
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}


def sink_from_settings(settings: AuditSinkSettings, logger: Logger) -> AuditSink:
    """Clients built once per container: S3 (archive), KMS (digests), EventBridge, DynamoDB."""
    import boto3

    from gatekeeper.audit.archive import Layout
    from gatekeeper.audit.detect import (
        DynamoBlocker,
        DynamoWindowCounters,
        EventBridgePublisher,
    )
    from gatekeeper.audit.signer import KmsSigner, LocalRsaSigner, Signer
    from gatekeeper.audit.store import S3ObjectStore

    signer: Signer
    if settings.audit_signing_key_id:
        signer = KmsSigner(boto3.client("kms"), settings.audit_signing_key_id)
    else:  # digests still get written, but a key that dies with the container proves nothing
        logger.warning("GATEKEEPER_AUDIT_SIGNING_KEY_ID is not set: digests use a throwaway key")
        signer = LocalRsaSigner.generate("ephemeral")
    writer = ArchiveWriter(
        S3ObjectStore(boto3.client("s3"), settings.audit_bucket),
        signer,
        layout=Layout(settings.audit_prefix),
        digest_interval_seconds=settings.audit_digest_interval_seconds,
    )
    detector = None
    if settings.audit_detection.enabled and settings.counters_table and settings.audit_alert_bus:
        dynamodb = boto3.client("dynamodb")
        detector = Detector(
            settings.audit_detection,
            DynamoWindowCounters(dynamodb, settings.counters_table),
            EventBridgePublisher(boto3.client("events"), settings.audit_alert_bus),
            DynamoBlocker(dynamodb, settings.counters_table),
        )
    return AuditSink(
        writer, detector=detector, logger=logger, dedup_window=settings.audit_dedup_window
    )
