"""AWS edges of the audit pipeline with moto: Kinesis puts, EventBridge alerts, block items."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto import mock_aws

from gatekeeper.audit.detect import (
    DetectionSettings,
    Detector,
    DynamoBlocker,
    DynamoWindowCounters,
    EventBridgePublisher,
    write_block,
)
from gatekeeper.audit.emit import KinesisAuditEmitter, ListAuditEmitter, emitter_from_settings
from gatekeeper.audit.sink import records_from_event
from gatekeeper.authorizer import Authorizer
from gatekeeper.config import Settings
from gatekeeper.store import tables
from gatekeeper.testing.events import rest_token_event
from tests.audit_helpers import T0, event, make_sink
from tests.conftest import TABLE, World, issuer_settings

STREAM = "gatekeeper-audit"
COUNTERS = "gatekeeper-test-counters"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def stream_records(kinesis: Any) -> list[dict[str, Any]]:
    shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return list(kinesis.get_records(ShardIterator=iterator)["Records"])


def test_kinesis_emitter_puts_batches_that_the_sink_reads(aws: None) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    fallback = ListAuditEmitter()
    emitter = KinesisAuditEmitter(kinesis, STREAM, fallback, batch_size=3)
    events = [event(n) for n in range(4)]
    for e in events:
        emitter.emit(e)
    assert len(stream_records(kinesis)) == 3, "one PutRecords of three, one event buffered"
    emitter.flush()
    records = stream_records(kinesis)
    assert [json.loads(r["Data"])["event_id"] for r in records] == [e.event_id for e in events]
    assert fallback.events == []

    from gatekeeper.audit.store import MemoryObjectStore
    from gatekeeper.testing.audit_events import kinesis_event
    from tests.audit_helpers import archived_ids

    memory = MemoryObjectStore()
    result = make_sink(memory).process(
        records_from_event(kinesis_event([r["Data"] for r in records]))
    )
    assert result.failed == [] and sorted(archived_ids(memory)) == sorted(
        e.event_id for e in events
    )


class _BrokenKinesis:
    def put_records(self, **_: Any) -> dict[str, Any]:
        raise TimeoutError("kinesis is slow today")


class _HalfKinesis:
    def put_records(self, Records: list[Any], **_: Any) -> dict[str, Any]:
        return {
            "FailedRecordCount": 1,
            "Records": [{"SequenceNumber": "1"}, {"ErrorCode": "ProvisionedThroughputExceeded"}],
        }


def test_failed_and_partial_puts_fall_back_to_the_log_line() -> None:
    fallback = ListAuditEmitter()
    KinesisAuditEmitter(_BrokenKinesis(), STREAM, fallback).emit(event(1))  # type: ignore[arg-type]
    half = KinesisAuditEmitter(_HalfKinesis(), STREAM, fallback, batch_size=2)  # type: ignore[arg-type]
    half.emit(event(2))
    half.emit(event(3))
    assert [e.event_id for e in fallback.events] == [event(1).event_id, event(3).event_id]


def test_a_failing_kinesis_put_never_changes_the_decision(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = ListAuditEmitter()
    settings = Settings.model_validate(
        {"config_table": TABLE, "issuers": issuer_settings(world.jwks.uri),
         "audit_transport": "kinesis", "audit_stream": STREAM}
    )  # fmt: skip
    emitter = KinesisAuditEmitter(_BrokenKinesis(), STREAM, fallback)  # type: ignore[arg-type]
    authorizer = Authorizer.from_settings(
        settings, logger=Logger(service="t"), store=world.store, emitter=emitter, clock=world.clock
    )
    result = authorizer.authorize(rest_token_event(f"Bearer {world.token()}", "GET", "/orders"))
    assert result.audit.decision == "allow" and result.response is not None
    assert fallback.events == [result.audit]


def test_transport_setting_selects_the_emitter() -> None:
    base = {"config_table": TABLE}
    log = emitter_from_settings(Settings.model_validate(base), Logger(service="t"))
    assert type(log).__name__ == "LogAuditEmitter"
    kinesis = emitter_from_settings(
        Settings.model_validate(base | {"audit_transport": "kinesis", "audit_stream": STREAM}),
        Logger(service="t"),
    )
    assert isinstance(kinesis, KinesisAuditEmitter)
    with pytest.raises(ValueError, match="AUDIT_STREAM"):
        Settings.model_validate(base | {"audit_transport": "kinesis"})


def test_detection_alerts_on_eventbridge_and_blocks_in_the_counters_table(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(**tables.counters_table_definition(COUNTERS))  # type: ignore[arg-type]
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="alerts", EventPattern=json.dumps({"source": ["gatekeeper.audit"]}))
    events.put_targets(Rule="alerts", Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
    now = time.time()
    detector = Detector(
        DetectionSettings(failed_per_ip=4, failed_per_range=1000),
        DynamoWindowCounters(ddb, COUNTERS),
        EventBridgePublisher(events),
        DynamoBlocker(ddb, COUNTERS),
        clock=lambda: now,
    )
    from gatekeeper.audit.store import MemoryObjectStore
    from tests.audit_helpers import direct_event

    sink = make_sink(MemoryObjectStore(), detector=detector)
    bad = {
        "decision": "unauthorized",
        "reason": "invalid_api_key_secret",
        "source_ip": "198.51.100.9",
    }
    assert (
        sink.process(records_from_event(direct_event([event(n, **bad) for n in range(2)]))).failed
        == []
    )
    batch = direct_event([event(n, **bad) for n in range(2, 5)], first=2)
    assert sink.process(records_from_event(batch)).failed == []

    item = ddb.get_item(
        TableName=COUNTERS, Key={"pk": {"S": "BLOCK#ip#198.51.100.9"}, "sk": {"S": "BLOCK"}}
    )["Item"]
    assert int(item["until"]["N"]) == int(now) + 900 and "failed_auth_ip" in item["reason"]["S"]
    assert int(item["expires_at"]["N"]) > int(item["until"]["N"])
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    [detail] = [json.loads(m["Body"])["detail"] for m in messages]
    assert detail["kind"] == "failed_auth_ip" and detail["subject"] == "198.51.100.9"
    assert detail["count"] == 5 and detail["blockedUntil"] == int(now) + 900
    assert T0  # events carry their own (fixed) time; windows follow event time


def test_a_block_is_never_shortened(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(**tables.counters_table_definition(COUNTERS))  # type: ignore[arg-type]
    assert write_block(ddb, COUNTERS, "192.0.2.1", until=2000, reason="long")
    assert not write_block(ddb, COUNTERS, "192.0.2.1", until=1000, reason="short")
    assert write_block(ddb, COUNTERS, "192.0.2.1", until=3000, reason="longer")
    item = ddb.get_item(
        TableName=COUNTERS, Key={"pk": {"S": "BLOCK#ip#192.0.2.1"}, "sk": {"S": "BLOCK"}}
    )["Item"]
    assert item["until"]["N"] == "3000" and item["reason"]["S"] == "longer"
