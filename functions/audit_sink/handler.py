"""Audit sink: Kinesis (CloudWatch Logs subscription or direct puts) → tamper-evident S3 archive.

Thin by design: the batch goes to :meth:`gatekeeper.audit.sink.AuditSink.process` in one call
(objects are written per batch, not per record), and Powertools' partial batch response reports
exactly the records whose events could not be archived, so Lambda retries only from there.
Event source mapping: ``FunctionResponseTypes=[ReportBatchItemFailures]``,
``ParallelizationFactor=1`` (the hash chain is per shard), ``BisectBatchOnFunctionError``,
and finite ``MaximumRetryAttempts`` / ``MaximumRecordAgeInSeconds`` with an on-failure
destination.
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

from gatekeeper.audit.sink import AuditSink, records_from_event, sink_from_settings
from gatekeeper.config import AuditSinkSettings

logger = Logger(service="gatekeeper-audit-sink")
metrics = Metrics(namespace="Gatekeeper", service="audit-sink")
processor = BatchProcessor(
    event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
)

_sink: AuditSink | None = None


class NotArchived(Exception):
    """This record's events could not be written; Lambda retries from it."""


def get_sink() -> AuditSink:
    global _sink  # noqa: PLW0603 - per-container singleton, the Lambda way
    if _sink is None:
        _sink = sink_from_settings(AuditSinkSettings.from_env(), logger)
    return _sink


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = get_sink().process(records_from_event(event))
    failed = set(result.failed)
    for name, value in (
        ("EventsArchived", len(result.archived)),
        ("EventsQuarantined", len(result.quarantined)),
        ("EventsDuplicate", result.duplicates),
        ("RecordsFailed", len(failed)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def record_handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.sequence_number in failed:
            raise NotArchived(record.kinesis.sequence_number)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
