"""Audit sink: Kinesis or a direct CloudWatch Logs subscription → tamper-evident S3 archive.

Thin by design: :func:`~gatekeeper.audit.sink.parse_event` turns whatever arrived into records
(it never raises), :meth:`~gatekeeper.audit.sink.AuditSink.process` archives or quarantines each
of them in one call, and the answer depends on how the function was invoked:

- **Kinesis** (event source mapping): Powertools' partial batch response reports exactly the
  records whose events could not be archived, so Lambda retries only from there. Mapping:
  ``FunctionResponseTypes=[ReportBatchItemFailures]``, ``ParallelizationFactor=1`` (the hash
  chain is per shard), ``BisectBatchOnFunctionError``, and finite ``MaximumRetryAttempts`` /
  ``MaximumRecordAgeInSeconds`` with an on-failure destination.
- **Direct CloudWatch Logs subscription** (``{"awslogs": {"data": …}}``, an asynchronous
  invocation): there is no per-record failure report, so if anything could not be written the
  handler raises and Lambda retries the whole payload; event-id dedup and write-once keys make
  the retry write only what is missing.
- **Empty or unrecognised** events: ``{"batchItemFailures": []}``; an unrecognised one is
  logged as an error and quarantined (its start) as evidence.
- **Heartbeat** (an EventBridge schedule, ``"source": "aws.events"``, every digest interval):
  signs a digest of every idle chain, so ``archive verify`` can require a recent digest of
  every chain (``--max-age``); metric ``HeartbeatDigests``.
- **Replay** (an event source mapping on-failure record with its ``payload``, as an S3
  destination keeps it; ``gatekeeper archive replay`` sends them): archives the records the
  mapping gave up on and closes the chain's gap; raises if anything could not be archived.

Metrics to alarm on: ``ChainGaps`` (the mapping gave up on records: replay them),
``StateIncidents`` (a chain state was missing or forged and rebuilt from a digest),
``RecordsFailed``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.audit.sink import AuditSink, parse_event, sink_from_settings
from gatekeeper.config import AuditSinkSettings

logger = Logger(service="gatekeeper-audit-sink")
metrics = Metrics(namespace="Gatekeeper", service="audit-sink")
processor = BatchProcessor(
    event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
)

_sink: AuditSink | None = None


class NotArchived(Exception):
    """Some events could not be written; Lambda retries (this record, or the whole payload)."""


def get_sink() -> AuditSink:
    global _sink  # noqa: PLW0603 - per-container singleton, the Lambda way
    if _sink is None:
        _sink = sink_from_settings(AuditSinkSettings.from_env(), logger)
    return _sink


def is_heartbeat(event: Any) -> bool:
    return isinstance(event, dict) and (
        event.get("source") == "aws.events" or event.get("gatekeeper") == "heartbeat"
    )


def is_failure_record(event: Any) -> bool:
    """An event source mapping's on-failure record (``KinesisBatchInfo``, and ``payload`` when
    the destination is S3)."""
    return isinstance(event, dict) and isinstance(event.get("KinesisBatchInfo"), dict)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sink = get_sink()
    if is_heartbeat(event):
        digests = sink.heartbeat()
        metrics.add_metric(name="HeartbeatDigests", unit=MetricUnit.Count, value=len(digests))
        return {"digests": digests}
    if is_failure_record(event):
        return _replay(sink, event)
    parsed = parse_event(event, sink.limits)
    if parsed.error:
        logger.error(parsed.error, extra={"event_kind": parsed.kind})
    result = sink.process(parsed.records)
    failed = set(result.failed)
    for name, value in (
        ("EventsArchived", len(result.archived)),
        ("EventsQuarantined", result.quarantined_items),
        ("EventsDuplicate", result.duplicates),
        ("RecordsFailed", len(failed)),
        ("ItemsCut", sum(result.cut.values())),
        ("ChainGaps", len(result.gaps)),
        ("StateIncidents", len(result.state_incidents)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if result.cut:
        logger.warning("items cut by a decode cap were quarantined", extra={"cut": result.cut})

    unreported = failed - parsed.identifiers
    if unreported:  # a direct subscription, or a record Lambda cannot retry by sequence number
        logger.error(
            "not archived; Lambda retries the whole invocation", extra={"failed": len(failed)}
        )
        raise NotArchived(f"{len(failed)} record(s) not archived")
    if parsed.kind != "kinesis":
        return {"batchItemFailures": []}

    def record_handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.sequence_number in failed:
            raise NotArchived(record.kinesis.sequence_number)

    reportable = [r for r in event["Records"] if _sequence_number(r) in parsed.identifiers]
    if not reportable:
        return {"batchItemFailures": []}
    response = process_partial_response(
        event={"Records": reportable},
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
    return dict(response)


def _replay(sink: AuditSink, event: dict[str, Any]) -> dict[str, Any]:
    info = event["KinesisBatchInfo"]
    result = sink.replay(event)
    metrics.add_metric(name="EventsReplayed", unit=MetricUnit.Count, value=len(result.archived))
    logger.info(
        "replayed an on-failure record",
        extra={"batch": info, "archived": len(result.archived), "gaps_closed": result.gaps_closed},
    )
    if result.failed:
        raise NotArchived(f"replay: {len(result.failed)} record(s) not archived")
    return {
        "replayed": len(result.archived),
        "quarantined": result.quarantined_items,
        "gaps_closed": result.gaps_closed,
    }


def _sequence_number(record: Any) -> Any:
    kinesis = record.get("kinesis") if isinstance(record, dict) else None
    return kinesis.get("sequenceNumber") if isinstance(kinesis, dict) else None
