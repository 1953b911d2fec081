"""Issue 12, "one bad record must never cost a batch": hostile input against the real sink handler.

Every batch is built from real artefacts: payloads compressed with the stdlib, put on a moto
Kinesis stream and read back with GetRecords, shaped as Lambda's event source mapping delivers
them; the archive is moto S3. Each test checks that every record ends in exactly one place
(archive or quarantine) and that the archive still verifies.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatekeeper.audit.archive import Layout
from gatekeeper.audit.decode import logs_subscription_data
from gatekeeper.audit.event import AuditEvent
from gatekeeper.audit.store import S3ObjectStore
from gatekeeper.audit.verify import verify_archive
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.audit_helpers import FlakyStore, archived_ids, event

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "gatekeeper-audit-hostile"
STREAM = "gatekeeper-audit"
MiB = 1024 * 1024
# The caps the README documents (gatekeeper.audit.decode.Limits; the unit tests pin them there).
MAX_DECOMPRESSED = 8 * MiB
MAX_LINE = KEEP = 64 * 1024


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The deployed handler module against moto S3, with a moto Kinesis stream to feed it."""
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)
        monkeypatch.setenv("GATEKEEPER_AUDIT_BUCKET", BUCKET)
        monkeypatch.setenv("GATEKEEPER_AUDIT_PREFIX", "audit/")
        monkeypatch.setenv("GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS", "0")
        spec = importlib.util.spec_from_file_location(
            "audit_sink_handler_hostile", ROOT / "functions" / "audit_sink" / "handler.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def via_kinesis(payloads: list[bytes]) -> dict[str, Any]:
    """Put ``payloads`` on the moto stream, read them back, and shape the Lambda event."""
    kinesis = boto3.client("kinesis")
    for n, data in enumerate(payloads):
        kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=f"pk-{n}")
    description = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]
    shard = description["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    got = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"][-len(payloads) :]
    assert [r["Data"] for r in got] == payloads
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/gatekeeper-audit-sink",
                "awsRegion": "us-east-1",
                "eventSourceARN": description["StreamARN"],
            }
            for r in got
        ]
    }


def direct(e: AuditEvent) -> bytes:
    return json.dumps(e.model_dump(mode="json")).encode()


def line(audit: dict[str, Any]) -> str:
    return json.dumps({"level": "INFO", "service": "gatekeeper-authorizer", "audit": audit})


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def store() -> S3ObjectStore:
    return S3ObjectStore(boto3.client("s3"), BUCKET)


def quarantined() -> list[dict[str, Any]]:
    """Every quarantined item (a marker per record holds the record's items)."""
    s3 = store()
    items = []
    for key in s3.list("audit/quarantine/"):
        found = s3.get(key)
        assert found is not None
        marker = json.loads(found.body)
        items += [item | {"key": key} for item in marker["items"]]
    return items


def assert_verifies(module: ModuleType) -> None:
    pem = module.get_sink().writer.signer.public_key_pem()
    report = verify_archive(store(), lambda _k: pem, Layout("audit/"))
    assert report.ok, report.findings


def invoke(module: ModuleType, event: Any) -> Any:
    return module.lambda_handler(event, LocalLambdaContext())


OK: dict[str, list[Any]] = {"batchItemFailures": []}


# --- a record the sink cannot archive is quarantined; the batch goes on ------------------------
def test_a_year_zero_time_is_quarantined_and_the_rest_archived(sink: ModuleType) -> None:
    """``0001-01-01T00:00:00+14:00`` is valid ISO 8601 but year 0 in UTC (ValueError today)."""
    year_zero = event(90).model_dump(mode="json") | {"time": "0001-01-01T00:00:00+14:00"}
    good = [event(n) for n in range(4)]
    cwl = logs_subscription_data(
        [line(good[2].model_dump(mode="json")), line(year_zero | {"event_id": "e" * 32})]
    )
    payloads = [direct(good[0]), json.dumps(year_zero).encode(), direct(good[1]), cwl,
                direct(good[3])]  # fmt: skip
    assert invoke(sink, via_kinesis(payloads)) == OK

    assert sorted(archived_ids(store())) == sorted(e.event_id for e in good)
    docs = quarantined()
    assert len(docs) == 2, "the direct record and the log line, each in quarantine once"
    assert len({d["key"] for d in docs}) == 2
    assert all("outside 2000-01-01" in d["error"] for d in docs)
    assert all(d["payload"]["time"] == year_zero["time"] for d in docs), "the evidence is kept"
    assert_verifies(sink)


def test_json_nested_600_deep_is_quarantined_and_the_rest_archived(sink: ModuleType) -> None:
    """Nesting used to reach ``redact`` (RecursionError) and fail the whole batch."""
    deep = event(91).model_dump(mode="json") | {"extra": nested(600)}
    good = [event(n) for n in range(3)]
    cwl = logs_subscription_data(
        [line(good[1].model_dump(mode="json")), line(deep | {"event_id": "d" * 32})]
    )
    payloads = [direct(good[0]), json.dumps({"audit": deep}).encode(), cwl, direct(good[2])]
    assert invoke(sink, via_kinesis(payloads)) == OK

    assert sorted(archived_ids(store())) == sorted(e.event_id for e in good)
    docs = quarantined()
    assert [d["cut"] for d in docs] == ["depth", "depth"]
    assert all("nested deeper than 32" in d["error"] for d in docs)
    assert all(len(json.dumps(d)) < KEEP + 4096 for d in docs)
    assert_verifies(sink)


# --- decompression bombs, long lines: capped, counted, quarantined -----------------------------
def bomb_payload(size: int) -> bytes:
    """A CloudWatch Logs payload whose one audit line inflates to ``size`` bytes (stdlib gzip)."""
    message = line(event(50).model_dump(mode="json") | {"path": "PATH"})
    document = json.dumps(
        {"messageType": "DATA_MESSAGE", "owner": "123456789012",
         "logGroup": "/aws/lambda/gatekeeper-authorizer", "logStream": "2026/11/25/[$LATEST]0f",
         "subscriptionFilters": ["gatekeeper-audit"],
         "logEvents": [{"id": "1".rjust(56, "0"), "timestamp": 0, "message": message}]}
    )  # fmt: skip
    before, after = document.split("PATH")
    pad = size - len(before) - len(after)
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)  # gzip framing
    out = [compressor.compress(before.encode())]
    chunk = b"A" * MiB
    out += [compressor.compress(chunk) for _ in range(pad // MiB)]
    out += [compressor.compress(b"A" * (pad % MiB) + after.encode()), compressor.flush()]
    return b"".join(out)


def emf_metrics(stdout: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for text in stdout.splitlines():
        if '"_aws"' in text:
            document = json.loads(text)
            for name in ("ItemsCut", "EventsQuarantined", "EventsArchived"):
                if name in document:
                    value = document[name]  # a list when a flush holds several values
                    values[name] = values.get(name, 0) + sum(
                        value if isinstance(value, list) else [value]
                    )
    return values


def test_a_gzip_bomb_is_cut_at_the_cap_counted_and_the_rest_archived(
    sink: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = bomb_payload(64 * MiB)
    assert len(bomb) < 200_000, "a bomb: tens of KB on the wire"
    good = [event(n) for n in range(2)]
    batch = via_kinesis([direct(good[0]), bomb, direct(good[1])])
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert invoke(sink, batch) == OK
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_DECOMPRESSED, f"peak {peak / MiB:.0f} MiB"
    assert sorted(archived_ids(store())) == sorted(e.event_id for e in good)
    [doc] = quarantined()
    assert doc["cut"] == "decompressed_bytes" and "inflates past" in doc["error"]
    assert len(doc["raw"]) <= KEEP
    assert emf_metrics(capsys.readouterr().out)["ItemsCut"] == 1
    assert_verifies(sink)


def test_an_overlong_audit_line_is_cut_and_counted(
    sink: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    long = event(60).model_dump(mode="json") | {"user_agent": "x" * (MAX_LINE + 1)}
    payloads = [logs_subscription_data([line(long), line(event(61).model_dump(mode="json"))])]
    capsys.readouterr()
    assert invoke(sink, via_kinesis(payloads)) == OK
    assert archived_ids(store()) == [event(61).event_id]
    [doc] = quarantined()
    assert doc["cut"] == "line_chars" and doc["raw_chars"] > len(doc["raw"])
    assert emf_metrics(capsys.readouterr().out)["ItemsCut"] == 1


def test_thousands_of_bad_lines_in_one_record_make_one_quarantine_object(
    sink: ModuleType,
) -> None:
    """Junk is cheap to log: one PUT per bad line would stall the shard (and bill per line)."""
    junk = [json.dumps({"audit": f"junk {n}"}) for n in range(2000)]
    payloads = [logs_subscription_data([*junk, line(event(95).model_dump(mode="json"))])]
    assert invoke(sink, via_kinesis(payloads)) == OK
    assert archived_ids(store()) == [event(95).event_id]
    items = quarantined()
    assert sorted(item["index"] for item in items) == list(range(2000))
    assert len({item["key"] for item in items}) == 1
    assert_verifies(sink)


# --- zlib as well as gzip ----------------------------------------------------------------------
def test_zlib_compressed_records_are_archived(sink: ModuleType) -> None:
    cwl = gzip.decompress(logs_subscription_data([line(event(71).model_dump(mode="json"))]))
    payloads = [zlib.compress(direct(event(70))), zlib.compress(cwl, 9)]
    assert invoke(sink, via_kinesis(payloads)) == OK
    assert sorted(archived_ids(store())) == sorted([event(70).event_id, event(71).event_id])
    assert quarantined() == []


# --- event shapes: direct subscription, empty, unknown, records without kinesis ----------------
def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return loaded


def test_a_direct_subscription_event_is_archived_once(sink: ModuleType) -> None:
    direct_event = sample("audit_sink_cloudwatch_direct.json")
    invoke(sink, direct_event)
    ids = archived_ids(store())
    assert sorted(ids) == ["3c4d5e6f708192a3b4c5d6e7f8091a2b", "4d5e6f708192a3b4c5d6e7f8091a2b3c"]
    keys = set(store().list("audit/events/"))
    invoke(sink, direct_event)  # CloudWatch Logs / Lambda delivered it again
    assert archived_ids(store()) == ids and set(store().list("audit/events/")) == keys
    assert_verifies(sink)


def awslogs(data: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(data).decode()}}


def test_a_direct_subscription_failure_raises_and_the_retry_writes_only_the_rest(
    sink: ModuleType,
) -> None:
    hour = 3600.0
    events = [event(n, at=1_795_640_400.0 + (hour if n % 2 else 0)) for n in range(4)]
    payload = awslogs(logs_subscription_data([line(e.model_dump(mode="json")) for e in events]))
    writer = sink.get_sink().writer
    real = writer.store
    broken = {"on": True}
    writer.store = FlakyStore(real, lambda key, op: broken["on"] and "hour=22" in key)
    with pytest.raises(sink.NotArchived):
        invoke(sink, payload)
    assert sorted(archived_ids(real)) == sorted(e.event_id for e in events[::2])
    broken["on"] = False
    invoke(sink, payload)  # Lambda's asynchronous retry of the whole payload
    assert sorted(archived_ids(real)) == sorted(e.event_id for e in events), "each exactly once"
    assert_verifies(sink)


@pytest.mark.parametrize(
    ("event", "logged"),
    [({}, True), ({"Records": []}, False), ({"foo": "bar"}, True), ([1, 2], True),
     ({"awslogs": {"data": "not base64!"}}, False), ({"awslogs": {}}, False)],
)  # fmt: skip
def test_empty_and_unrecognised_events_get_a_clean_answer(
    sink: ModuleType, caplog: pytest.LogCaptureFixture, event: Any, logged: bool
) -> None:
    assert invoke(sink, event) == OK
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert bool(errors) == logged and not any(r.exc_info for r in errors)
    if event and event != {"Records": []}:
        [doc] = quarantined()
        assert doc["error"]
    else:
        assert quarantined() == []


def test_records_without_kinesis_are_quarantined_and_the_rest_archived(sink: ModuleType) -> None:
    batch = via_kinesis([direct(event(80)), direct(event(81))])
    sqs_like = {"messageId": "m-1", "body": "hello", "eventSource": "aws:sqs"}
    bad_data = json.loads(json.dumps(batch["Records"][0]))
    bad_data["kinesis"]["data"] = "%%% not base64 %%%"
    bad_data["kinesis"]["sequenceNumber"] = str(int(bad_data["kinesis"]["sequenceNumber"]) - 1)
    batch["Records"] = [sqs_like, bad_data, *batch["Records"]]
    assert invoke(sink, batch) == OK
    assert sorted(archived_ids(store())) == sorted([event(80).event_id, event(81).event_id])
    errors = sorted(d["error"] for d in quarantined())
    assert errors == [
        "kinesis.data is not base64",
        "not a Kinesis record (no kinesis.sequenceNumber)",
    ]
    assert_verifies(sink)


def test_an_unrecognised_record_that_cannot_be_quarantined_fails_the_invocation(
    sink: ModuleType,
) -> None:
    """It has no sequence number to report, so only a retry of everything keeps it."""
    batch = via_kinesis([direct(event(85))])
    batch["Records"].append({"eventSource": "aws:sqs", "body": "evidence"})
    writer = sink.get_sink().writer
    writer.store = FlakyStore(writer.store, lambda key, op: "/quarantine/" in key)
    with pytest.raises(sink.NotArchived):
        invoke(sink, batch)
    assert archived_ids(store()) == [event(85).event_id], "the rest is archived all the same"
