"""``gatekeeper archive replay``: the records the event source mapping gave up on during an
outage are archived from its on-failure destination, and the chain's gap closes.

S3 destinations keep the invocation's payload; SQS destinations keep only the batch's shard and
sequence numbers, so the records are read back from the stream (while it retains them).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatekeeper import cli
from gatekeeper.audit.archive import Layout
from gatekeeper.audit.sink import AuditSink
from gatekeeper.audit.store import S3ObjectStore
from gatekeeper.audit.verify import verify_archive
from gatekeeper.clock import FakeClock
from gatekeeper.commands import archive_replay
from gatekeeper.commands.archive_replay import _read_back
from tests.audit_helpers import T0, FlakyStore, archived_ids, event, make_sink, public_key, run
from tests.integration.test_audit_integrity import failure_record

REGION = "us-east-1"
ARCHIVE = "gk-replay-archive"


class FakeLambda:
    """``lambda.invoke`` of the sink function, in process (the handler's replay path)."""

    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink
        self.calls = 0

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.calls += 1
        result = self.sink.replay(json.loads(Payload))
        if result.failed:
            body = {"errorMessage": f"replay: {len(result.failed)} record(s) not archived"}
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        answer = {"replayed": len(result.archived), "gaps_closed": result.gaps_closed}
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=ARCHIVE)
        yield


def lose(sink: AuditSink, outage: dict[str, bool], batches: list[dict[str, Any]]) -> None:
    """batches[0] archived; batches[1] fails 6 times (the mapping gives up); batches[2] ok."""
    assert run(sink, batches[0]) == []
    outage["on"] = True
    for _ in range(6):
        assert run(sink, batches[1])
    outage["on"] = False
    assert run(sink, batches[2]) == []


def gap_sink(clock: FakeClock) -> tuple[AuditSink, S3ObjectStore, dict[str, bool]]:
    store = S3ObjectStore(boto3.client("s3", region_name=REGION), ARCHIVE)
    outage = {"on": False}
    flaky = FlakyStore(store, lambda key, op: outage["on"] and "/events/" in key)
    return make_sink(flaky, clock), store, outage


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeLambda) -> None:
    def client(_args: Any, service: Any) -> Any:
        return fake if service == "lambda" else boto3.client(service, region_name=REGION)

    monkeypatch.setattr(archive_replay, "client", client)


def kinesis_batch(payloads: list[bytes], first: int) -> dict[str, Any]:
    from gatekeeper.testing.audit_events import kinesis_event

    return kinesis_event(payloads, first=first)


def line(n: int) -> bytes:
    return json.dumps(event(n).model_dump(mode="json")).encode()


def test_replay_from_an_s3_destination_closes_the_gap(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(T0 + 3600)
    sink, store, outage = gap_sink(clock)
    batches = [kinesis_batch([line(0)], 0), kinesis_batch([line(1), line(2)], 1),
               kinesis_batch([line(3)], 3)]  # fmt: skip
    lose(sink, outage, batches)
    assert [f.kind for f in verify_archive(store, public_key, Layout("audit/")).findings] == ["gap"]

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="gk-failures")
    key = "aws/lambda/esm-uuid/shardId-000000000000/2026/11/25/2026-11-25T22.00.00-x"
    s3.put_object(Bucket="gk-failures", Key=key, Body=json.dumps(failure_record(batches[1])))
    fake = FakeLambda(sink)
    use(monkeypatch, fake)
    argv = ["archive", "replay", "--from", "s3://gk-failures/aws/lambda/", "--function", "sink"]
    assert cli.main([*argv, "--dry-run"]) == 0
    assert fake.calls == 0 and "would replay" in capsys.readouterr().out
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 event(s) archived" in out and "1 on-failure record(s) replayed, 0 failed" in out
    assert sorted(archived_ids(store)) == sorted(event(n).event_id for n in range(4))
    report = verify_archive(store, public_key, Layout("audit/"))
    assert report.ok, report.findings
    assert cli.main(argv) == 0, "replaying twice is harmless"
    assert sorted(archived_ids(store)) == sorted(event(n).event_id for n in range(4))


def test_replay_from_an_sqs_destination_reads_the_records_back_from_the_stream(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="gatekeeper-audit", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="gatekeeper-audit")["StreamDescription"]["StreamARN"]
    for n in range(4):
        kinesis.put_record(StreamName="gatekeeper-audit", Data=line(n), PartitionKey=f"p{n}")
    shard = kinesis.list_shards(StreamName="gatekeeper-audit")["Shards"][0]
    everything = {
        "streamArn": arn,
        "shardId": shard["ShardId"],
        "startingSequenceNumber": shard["SequenceNumberRange"]["StartingSequenceNumber"],
        "endingSequenceNumber": str(10**60),
    }
    records = list(_read_back(kinesis, everything))
    assert len(records) == 4
    batches = [{"Records": records[:1]}, {"Records": records[1:3]}, {"Records": records[3:]}]
    sink, store, outage = gap_sink(FakeClock(T0 + 3600))
    lose(sink, outage, batches)

    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="gatekeeper-audit-dlq")["QueueUrl"]
    info = {k: v for k, v in failure_record(batches[1]).items() if k != "payload"}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(info))
    use(monkeypatch, FakeLambda(sink))
    argv = ["archive", "replay", "--from", "sqs://" + queue.removeprefix("https://")]
    assert cli.main([*argv, "--function", "sink"]) == 0, capsys.readouterr()
    assert "2 event(s) archived" in capsys.readouterr().out
    assert verify_archive(store, public_key, Layout("audit/")).ok
    assert "Messages" not in sqs.receive_message(QueueUrl=queue), "replayed: deleted"


def test_a_record_without_payload_or_a_failing_sink_exits_1(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(T0 + 3600)
    sink, _store, outage = gap_sink(clock)
    batch = kinesis_batch([line(5)], 5)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="gk-failures")
    record = failure_record(batch)
    s3.put_object(Bucket="gk-failures", Key="a", Body=json.dumps(record))
    s3.put_object(Bucket="gk-failures", Key="b", Body=json.dumps(record | {"payload": None}))
    use(monkeypatch, FakeLambda(sink))
    outage["on"] = True  # still down
    assert cli.main(["archive", "replay", "--from", "s3://gk-failures/", "--function", "f"]) == 1
    out = capsys.readouterr().out
    assert "the sink failed: replay: 1 record(s) not archived" in out
    assert "no payload" in out and "0 on-failure record(s) replayed, 2 failed" in out
