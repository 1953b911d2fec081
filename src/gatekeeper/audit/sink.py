"""The audit sink's batch logic: decode → validate → dedup → redact → OCSF → archive → detect.

``functions/audit_sink/handler.py`` turns the invocation into :class:`SinkRecord`s
(:func:`parse_event`: a Kinesis batch, a direct CloudWatch Logs subscription, or anything else),
calls :meth:`AuditSink.process` once and reports :attr:`SinkResult.failed`: through Powertools'
partial batch response for Kinesis, by raising for a direct subscription (Lambda then retries
the whole payload; event-id dedup and write-once keys make that safe). Per chain, in order:

1. load the shard's state (chain head, done positions, recent event ids); if that fails, the
   whole shard's records fail and are retried;
2. decode each record (CloudWatch Logs or direct); skip positions already archived (a retry);
3. validate against :class:`AuditEvent`; a payload that is invalid, or that step 5 cannot
   map (a time the archive cannot hold, anything else that raises), goes to ``quarantine/``
   with the error (redacted, without pydantic's echo of the input; one marker per record) and
   is done, not retried: one bad record never fails a batch;
4. drop event ids already archived (batch or recent window): producers and CloudWatch deliver
   at least once;
5. map to OCSF, redact, and write one object per hour partition (chained, write-once keys);
6. a record fails exactly when one of its events could not be written; the state remembers
   what was done so the retry writes only the rest, and which sequence numbers failed: when a
   later batch starts beyond them, the event source mapping gave up (retries or record age
   exhausted) and the chain records a gap, signed into the next digest, until
   :meth:`AuditSink.replay` archives those records from the mapping's on-failure record;
   then the digest, if due, and the state (signed, written on condition that no other writer
   of the chain saved it meanwhile).

:meth:`AuditSink.heartbeat` (a schedule) signs a digest of every idle chain, so that a verifier
can require a recent digest of every chain.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from gatekeeper.audit.archive import ArchiveWriter, Line, Pos, ShardState, chain_id, partition
from gatekeeper.audit.decode import (
    DEFAULT_LIMITS,
    Item,
    Limits,
    Payload,
    Undecodable,
    decode_logs_payload,
    decode_record,
    read_document,
)
from gatekeeper.audit.detect import Detector
from gatekeeper.audit.event import AuditEvent
from gatekeeper.audit.ocsf import to_ocsf
from gatekeeper.audit.redact import redact, redact_event, redact_text

if TYPE_CHECKING:
    from gatekeeper.config import AuditSinkSettings

MAX_OBJECT_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One unit of input: a Kinesis record, a direct subscription payload, or an unreadable one.

    ``ordered`` records (Kinesis) advance the chain's done positions, so a retry from the first
    failed record skips what was archived; unordered ones (direct CloudWatch Logs deliveries,
    which Lambda may retry after newer ones) rely on event-id dedup and write-once keys only.
    ``items``, when set, were decoded already (or say why the record cannot be).
    """

    sequence_number: str
    shard_id: str
    stream: str
    data: bytes
    ordered: bool = True
    items: tuple[Item, ...] | None = None
    arrival: float | None = None  # epoch seconds (Kinesis arrival): a quarantine marker's hour


UNRECOGNISED_STREAM = "unrecognised"
CUT_KEPT = "kept_chars"
"""Counted when a quarantined item's raw text was shortened to :attr:`Limits.keep_chars`."""


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """What arrived: ``kind`` is ``kinesis``, ``logs`` (direct subscription), ``empty`` or
    ``unknown``; ``identifiers`` are the Kinesis sequence numbers Lambda can retry one by one."""

    kind: str
    records: list[SinkRecord]
    identifiers: frozenset[str] = frozenset()
    error: str | None = None


def parse_event(event: Any, limits: Limits = DEFAULT_LIMITS) -> ParsedEvent:
    """The invocation → records; never raises, whatever arrives.

    >>> parse_event({"Records": []}).kind
    'empty'
    >>> parse_event({}).error
    'unrecognised event: no Records, no awslogs'
    """
    if isinstance(event, dict) and isinstance(event.get("awslogs"), dict):
        return ParsedEvent("logs", [record_from_logs_event(event, limits)])
    if isinstance(event, dict) and "Records" in event:
        raw = event["Records"]
        if isinstance(raw, list) and not raw:
            return ParsedEvent("empty", [])
        if isinstance(raw, list):
            records = [_from_kinesis(record) for record in raw]
            ids = frozenset(r.sequence_number for r in records if r.stream != UNRECOGNISED_STREAM)
            return ParsedEvent("kinesis", records, ids)
    if isinstance(event, dict) and not event:
        return ParsedEvent("empty", [], error="unrecognised event: no Records, no awslogs")
    shape = sorted(event)[:10] if isinstance(event, dict) else type(event).__name__
    error = f"unrecognised event ({shape}): neither Kinesis Records nor awslogs"
    return ParsedEvent("unknown", [_unrecognised(event, error)], error=error)


def records_from_event(event: Mapping[str, Any]) -> list[SinkRecord]:
    """The Kinesis event-source-mapping event → records (``eventID`` is ``<shard>:<seq>``)."""
    return parse_event(dict(event)).records


def _from_kinesis(record: Any) -> SinkRecord:
    kinesis = record.get("kinesis") if isinstance(record, dict) else None
    seq = kinesis.get("sequenceNumber") if isinstance(kinesis, dict) else None
    if not isinstance(kinesis, dict) or not isinstance(seq, str) or not seq.isdigit():
        return _unrecognised(record, "not a Kinesis record (no kinesis.sequenceNumber)")
    event_id, source = record.get("eventID"), record.get("eventSourceARN")
    shard = event_id.split(":", 1)[0] if isinstance(event_id, str) else "unknown-shard"
    stream = source.rsplit("/", 1)[-1] if isinstance(source, str) else "unknown-stream"
    data, arrived = kinesis.get("data"), kinesis.get("approximateArrivalTimestamp")
    arrival = float(arrived) if isinstance(arrived, int | float) and arrived > 0 else None
    try:
        decoded = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except (binascii.Error, ValueError):
        decoded = None
    if decoded is None:
        raw = _dump(record)[: DEFAULT_LIMITS.keep_chars]
        bad = Undecodable("kinesis.data is not base64", raw)
        return SinkRecord(seq, _safe(shard), _safe(stream), b"", items=(bad,), arrival=arrival)
    return SinkRecord(seq, _safe(shard), _safe(stream), decoded, arrival=arrival)


def record_from_logs_event(event: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> SinkRecord:
    """A direct CloudWatch Logs subscription (``{"awslogs": {"data": …}}``) → one record.

    Its chain is the log group and stream (one Lambda log stream is one execution environment,
    written serially); its position is the first log event's id, so a redelivery of the same
    payload derives the same object keys.
    """
    from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

    try:
        raw = CloudWatchLogsEvent(dict(event)).raw_logs_data
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except (KeyError, TypeError, binascii.Error, ValueError):
        data = None
    if data is None:
        return _unrecognised(event, "awslogs.data is not base64")
    document = read_document(data, limits)
    if isinstance(document, Undecodable):
        return _unrecognised(event, document.error, item=document)
    group, log_stream = document.get("logGroup"), document.get("logStream")
    events = document.get("logEvents")
    head = events[0] if isinstance(events, list) and events else None
    first = head.get("id") if isinstance(head, dict) else None
    stamp = head.get("timestamp") if isinstance(head, dict) else None
    seq = _position(first if isinstance(first, str) else json.dumps(document)[:4096])
    items = tuple(decode_logs_payload(document, limits)) if "messageType" in document else None
    if items is None:
        items = (Undecodable("awslogs payload without messageType", json.dumps(document)[:4096]),)
    return SinkRecord(
        sequence_number=str(seq),
        shard_id=_safe(str(log_stream)),
        stream="logs-" + _safe(str(group)),
        data=b"",
        ordered=False,
        items=items,
        arrival=stamp / 1000 if isinstance(stamp, int | float) and stamp > 0 else None,
    )


def _dump(value: Any) -> str:
    """Any received value as JSON text, nesting cut (:func:`redact` bounds the depth)."""
    return json.dumps(redact(value), default=str, sort_keys=True)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    """``name`` as a key-safe chain part (Kinesis names are already); a hash keeps it unique."""
    clean = _UNSAFE.sub("-", name).strip("-.")[:80]
    if clean == name:
        return name
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _position(identifier: str) -> int:
    """A CloudWatch Logs event id is a decimal number; anything else is hashed."""
    if identifier.isdigit() and len(identifier) <= 64:
        return int(identifier)
    return int(hashlib.sha256(identifier.encode()).hexdigest()[:15], 16)


def _unrecognised(value: Any, error: str, item: Undecodable | None = None) -> SinkRecord:
    """A record nobody can retry by id: quarantined under a position derived from its bytes."""
    text = _dump(value)
    raw = text[: DEFAULT_LIMITS.keep_chars]
    full = len(text) if len(text) > len(raw) else None
    bad = item or Undecodable(error, raw, raw_chars=full)
    return SinkRecord(
        sequence_number=str(_position(text)),
        shard_id="records",
        stream=UNRECOGNISED_STREAM,
        data=b"",
        ordered=False,
        items=(bad,),
    )


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
    quarantined: list[str] = field(default_factory=list)  # marker keys, one per record
    quarantined_items: int = 0
    duplicates: int = 0
    already_archived: int = 0
    cut: dict[str, int] = field(default_factory=dict)  # items stopped by a decode cap, by cap
    gaps: list[str] = field(default_factory=list)  # "chain: first..before (n records)" found
    gaps_closed: list[str] = field(default_factory=list)
    state_incidents: list[str] = field(default_factory=list)


class AuditSink:
    def __init__(
        self,
        writer: ArchiveWriter,
        *,
        detector: Detector | None = None,
        logger: Logger | None = None,
        dedup_window: int = 2000,
        max_object_events: int = MAX_OBJECT_EVENTS,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.writer = writer
        self.limits = limits
        self._detector = detector
        self._log = logger or Logger(service="gatekeeper-audit-sink")
        self._dedup_window = dedup_window
        self._max_object_events = max_object_events

    def process(self, records: Sequence[SinkRecord], *, replay: bool = False) -> SinkResult:
        result = SinkResult()
        by_chain: dict[str, list[SinkRecord]] = {}
        for record in records:
            by_chain.setdefault(chain_id(record.stream, record.shard_id), []).append(record)
        for chain, chain_records in by_chain.items():
            self._process_chain(chain, chain_records, result, replay=replay)
        if self._detector is not None and result.archived:
            try:
                self._detector.observe(result.archived)
            except Exception:  # best effort: the archive is what must not fail
                self._log.exception("detection failed; events are archived")
        return result

    def replay(self, failure: Mapping[str, Any]) -> SinkResult:
        """Archive the batch of an event source mapping's on-failure record (an S3 destination
        keeps the invocation's ``payload``): records the mapping gave up on. Positions are not
        trusted as done (the mapping moved past them); event ids and write-once keys keep a
        replay of something archived from writing it twice. Gaps these records fill close."""
        payload = failure.get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
            info = failure.get("KinesisBatchInfo")
            raise ValueError(
                "the on-failure record carries no payload (an SQS or SNS destination keeps only "
                f"the batch info {info}: read those records from the stream while retained)"
            )
        records = [
            dataclasses.replace(record, ordered=False)
            for record in parse_event(payload, self.limits).records
        ]
        return self.process(records, replay=True)

    def heartbeat(self) -> list[str]:
        """Sign a digest of every chain whose last digest is an interval old (a schedule)."""
        try:
            return self.writer.heartbeat()
        except Exception:
            self._log.exception("heartbeat digests failed")
            raise

    def _plan(self, state: ShardState, records: list[SinkRecord], result: SinkResult) -> _Plan:
        """Decode, skip what is done, validate, dedup, map: what this batch must write."""
        plan = _Plan()
        order, quarantine = plan.order, plan.quarantine
        seen = set(state.recent_ids)
        for record in records:
            seq = int(record.sequence_number)
            items = list(record.items) if record.items is not None else self._decode(record)
            if not items:
                order.append(((seq, 0), "done"))
            for idx, item in enumerate(items):
                pos = (seq, idx)
                if record.ordered and state.is_done(pos):
                    result.already_archived += 1
                    order.append((pos, "done"))
                elif isinstance(item, Undecodable):
                    if item.cut is not None or item.raw_chars is not None:
                        kind = item.cut or CUT_KEPT
                        result.cut[kind] = result.cut.get(kind, 0) + 1
                    quarantine[pos] = _quarantined(
                        idx, item.error, raw=item.raw, cut=item.cut, size=item.raw_chars
                    )
                    order.append((pos, "quarantine"))
                else:
                    order.append((pos, self._admit(plan, record, pos, item, seen, result)))
        return plan

    def _decode(self, record: SinkRecord) -> list[Item]:
        try:
            return decode_record(record.data, self.limits)
        except Exception as exc:  # decode is total by design; a miss must not cost the batch
            self._log.exception("record could not be decoded; quarantined")
            raw = record.data[:4096].decode("utf-8", errors="replace")
            return [Undecodable(f"undecodable: {type(exc).__name__}: {exc}", raw)]

    def _admit(
        self,
        plan: _Plan,
        record: SinkRecord,
        pos: Pos,
        item: Payload,
        seen: set[str],
        result: SinkResult,
    ) -> str:
        """Validate, redact and map one payload into ``plan``; its tag in :attr:`_Plan.order`."""
        try:
            event = AuditEvent.model_validate(item.data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            plan.quarantine[pos] = _quarantined(pos[1], str(errors), payload=item.data)
            return "quarantine"
        if event.event_id in seen:
            result.duplicates += 1
            return "done"
        try:
            ocsf = to_ocsf(redact_event(event))
            part = partition(ocsf["time"])
            data = json.dumps(ocsf, separators=(",", ":")).encode()
        except Exception as exc:  # valid by the schema, yet not archivable (e.g. year 0)
            error = f"not archivable: {type(exc).__name__}: {exc}"
            self._log.warning("audit event quarantined", extra={"error": redact_text(error)})
            plan.quarantine[pos] = _quarantined(pos[1], error, payload=item.data)
            return "quarantine"
        seen.add(event.event_id)
        plan.events[event.event_id] = event
        plan.groups.setdefault(part, []).append(Line(pos, event.event_id, data))
        return event.event_id

    def _process_chain(
        self, chain: str, records: list[SinkRecord], result: SinkResult, *, replay: bool = False
    ) -> None:
        records = sorted(records, key=lambda r: int(r.sequence_number))
        ordered = {int(r.sequence_number) for r in records if r.ordered}
        try:
            state = self.writer.load_state(chain)
        except Exception:
            self._log.exception("cannot read the archive state; the batch will be retried")
            result.failed += [r.sequence_number for r in records]
            self.writer.remember_failing(chain, ordered)
            return
        if state.incidents:
            self._log.error("archive state incident", extra={"chain": chain,
                            "incidents": state.incidents})  # fmt: skip
            result.state_incidents += state.incidents
        now = self.writer.now()
        if ordered and not replay:
            self._note_gap(chain, state, ordered, now, result)
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
        stored = self._write_quarantine(state, records, quarantine, result)

        done_ids = set(written)
        flags = [(pos, tag == "done" or pos in stored or tag in done_ids) for pos, tag in order]
        state.record_batch([(pos, ok) for pos, ok in flags if pos[0] in ordered])
        state.remember_ids([*adopted, *written], self._dedup_window)
        failed = {pos[0] for pos, ok in flags if not ok}
        done = {pos[0] for pos, _ in flags} - failed
        for gap in state.note_outcome(failed & ordered, done, now):
            result.gaps_closed.append(f"{chain}: {gap.first}..<{gap.before}")
            self.writer.note_news(state)
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
            self.writer.remember_failing(chain, ordered)
            return
        result.failed += [r.sequence_number for r in records if int(r.sequence_number) in failed]
        result.archived += [events[i] for i in written]

    def _note_gap(
        self, chain: str, state: ShardState, ordered: set[int], now: float, result: SinkResult
    ) -> None:
        """Failed records below this batch's first were given up by the mapping: a gap."""
        gap = state.note_delivery(min(ordered), ordered, now)
        if gap is not None:
            text = f"{chain}: {gap.first}..<{gap.before} ({len(gap.missing)} record(s))"
            self._log.error("the event source mapping gave up on records; replay them from "
                            "its on-failure destination", extra={"gap": text})  # fmt: skip
            result.gaps.append(text)
            self.writer.note_news(state)

    def _write_quarantine(
        self,
        state: ShardState,
        records: list[SinkRecord],
        quarantine: dict[Pos, dict[str, Any]],
        result: SinkResult,
    ) -> set[Pos]:
        """One marker per record (junk lines never cost one PUT each); the positions stored."""
        stored: set[Pos] = set()
        by_record: dict[int, list[Pos]] = {}
        for pos in quarantine:
            by_record.setdefault(pos[0], []).append(pos)
        for record in records:
            positions = by_record.get(int(record.sequence_number), [])
            if not positions:
                continue
            marker = _marker(record, [quarantine[pos] for pos in positions])
            try:
                key = self.writer.write_quarantine(state, positions[0], marker, at=record.arrival)
            except Exception:
                self._log.exception("quarantine write failed")
                continue
            result.quarantined.append(key)
            result.quarantined_items += len(positions)
            stored.update(positions)
        return stored


def _quarantined(
    index: int,
    error: str,
    *,
    raw: str | None = None,
    payload: Any = None,
    cut: str | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """One quarantined item: its index in the record, why, and what arrived (redacted).

    ``cut`` names the decode cap that stopped the item (``decompressed_bytes``, ``depth``,
    ``line_chars``) and ``raw_chars`` the raw text's full length when ``raw`` keeps only its
    start; both are None when nothing was cut.
    """
    return {
        "index": index,
        "error": redact_text(error),
        "cut": cut,
        "raw_chars": size,
        "raw": None if raw is None else redact_text(raw),
        "payload": None if payload is None else redact(payload),
    }


def _marker(record: SinkRecord, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The quarantine object of one record: where it came from and every item it could not
    archive (one object per record, whatever the number of bad lines in it)."""
    return {
        "stream": record.stream,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "items": items,
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
    lock_days = settings.audit_object_lock_days  # write-once objects only, see S3ObjectStore
    writer = ArchiveWriter(
        S3ObjectStore(boto3.client("s3"), settings.audit_bucket, lock_days=lock_days),
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
