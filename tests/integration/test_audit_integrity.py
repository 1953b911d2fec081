"""Archive integrity (issue 12): what CloudTrail's validation detects, ``archive verify`` detects.

Each test archives with the real sink into moto's S3, tampers as an attacker with write and
delete rights on the bucket would (but without the signing key), and runs ``verify``: deleting
or rewriting the chain state, deleting the newest objects, the whole prefix or the newest
digests (a rollback), hiding Object-Locked versions behind delete markers, and the event
source mapping giving up on records during an outage must each be a finding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatekeeper import cli
from gatekeeper.audit.archive import Layout, ShardState, chain_link
from gatekeeper.audit.sink import AuditSink
from gatekeeper.audit.store import S3ObjectStore
from gatekeeper.audit.verify import VerifyReport, verify_archive
from gatekeeper.clock import FakeClock
from gatekeeper.testing.audit_events import sequence_number
from tests.audit_helpers import (
    SIGNER,
    T0,
    FlakyStore,
    archived_ids,
    direct_event,
    event,
    make_sink,
    public_key,
    run,
)

HOUR = 3600.0
BUCKET = "gk-integrity"
LAYOUT = Layout("audit/")


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def bucket(s3: Any, *, versioned: bool = False, locked: bool = False) -> S3ObjectStore:
    if locked:
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
            },
        )
    else:
        s3.create_bucket(Bucket=BUCKET)
        if versioned:
            s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return S3ObjectStore(s3, BUCKET)


def fill(store: Any, clock: FakeClock, batches: int, *, interval: float = 0) -> AuditSink:
    """``batches`` batches one hour apart (a digest each with interval 0)."""
    sink = make_sink(store, clock, digest_interval_seconds=interval)
    for n in range(batches):
        if n:
            clock.advance(HOUR)
        events = [event(n * 10 + i, at=T0 + n * HOUR) for i in range(3)]
        assert run(sink, direct_event(events, first=n * 10)) == []
    return sink


def check(store: Any, clock: FakeClock, max_age: float | None = 2 * HOUR) -> VerifyReport:
    return verify_archive(store, public_key, LAYOUT, now=clock(), max_age=max_age)


def kinds(report: VerifyReport) -> set[str]:
    return {f.kind for f in report.findings}


def delete(s3: Any, prefix: str) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    for key in keys:
        s3.delete_object(Bucket=BUCKET, Key=key)
    return keys


def state_key() -> str:
    [key] = S3ObjectStore(boto3.client("s3", "us-east-1"), BUCKET).list("audit/state/")
    return key


# --- the chain state ---------------------------------------------------------------------------
def test_an_intact_archive_verifies(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    fill(store, clock, 3)
    report = check(store, clock)
    assert report.ok, report.findings


def test_deleting_the_state_is_a_finding(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    fill(store, clock, 3)
    delete(s3, "audit/state/")
    report = check(store, clock)
    assert not report.ok and "state_missing" in kinds(report)


def test_a_state_rewritten_to_adopt_a_forged_object_is_a_finding(s3: Any) -> None:
    """An attacker appends a forged object to the state's pending list, links and all: the sink
    would sign it into the next digest. The state's signature does not cover the forgery."""
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    sink = fill(store, clock, 2, interval=HOUR)
    clock.advance(60)
    assert run(sink, direct_event([event(90), event(91)], first=90)) == []  # not digested yet
    key = state_key()
    found = store.get(key)
    assert found is not None
    state = ShardState.model_validate_json(found.body)
    real = state.pending[-1]
    forged_key = real.key.replace(".jsonl.gz", "9.jsonl.gz")
    body = store.get(real.key).body  # type: ignore[union-attr]
    s3.put_object(Bucket=BUCKET, Key=forged_key, Body=body)
    link = chain_link(state.head, forged_key, real.sha256)
    state.pending.append(
        real.model_copy(update={"key": forged_key, "prev": state.head, "link": link})
    )
    state.head = link
    s3.put_object(
        Bucket=BUCKET, Key=key, Body=state.model_dump_json().encode(), Metadata=found.metadata
    )
    report = check(store, clock)
    assert not report.ok and "state_invalid" in kinds(report)


def test_the_sink_does_not_sign_what_a_forged_state_adopted(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    sink = fill(store, clock, 1)
    key = state_key()
    found = store.get(key)
    assert found is not None
    state = ShardState.model_validate_json(found.body)
    state.done_through = None  # "replay everything": an attacker's rewrite
    body = state.model_dump_json().encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=found.metadata)
    clock.advance(60)
    assert run(sink, direct_event([event(50)], first=50)) == []
    report = check(store, clock)
    # the sink rebuilt its state from the newest digest and said so in the next signed digest
    assert "state_recovered" in kinds(report)
    assert any("signature" in f.detail for f in report.findings if f.kind == "state_recovered")


# --- the newest data ---------------------------------------------------------------------------
def test_deleting_the_newest_objects_and_the_state_is_a_finding(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    sink = fill(store, clock, 3, interval=HOUR)
    clock.advance(60)
    assert run(sink, direct_event([event(90), event(91)], first=90)) == []  # not digested yet
    found = store.get(state_key())
    assert found is not None
    newest = [e.key for e in ShardState.model_validate_json(found.body).pending]
    assert newest
    for key in newest:
        s3.delete_object(Bucket=BUCKET, Key=key)
    delete(s3, "audit/state/")
    report = check(store, clock)
    assert not report.ok and "state_missing" in kinds(report)


def test_rolling_back_to_an_older_digest_is_stale(s3: Any) -> None:
    """Delete the newest digests, their objects and the state: what is left is consistent, and
    old. The sink writes a digest at least every interval, so the newest must be recent."""
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    fill(store, clock, 4, interval=HOUR)
    digests = sorted(store.list("audit/digests/"))
    assert len(digests) >= 3
    newest = json.loads(store.get(digests[-1]).body)  # type: ignore[union-attr]
    assert newest["version"] >= 2 and newest["newest_object"]
    rolled_back = digests[1:]
    for key in rolled_back:
        document = json.loads(store.get(key).body)  # type: ignore[union-attr]
        for entry in document["objects"]:
            s3.delete_object(Bucket=BUCKET, Key=entry["key"])
        s3.delete_object(Bucket=BUCKET, Key=key)
    delete(s3, "audit/state/")
    clock.advance(HOUR / 2)
    report = check(store, clock)
    assert not report.ok and "stale" in kinds(report)
    stale = next(f for f in report.findings if f.kind == "stale")
    assert digests[0] in stale.key or digests[0] in stale.detail


def test_an_idle_chain_stays_fresh_through_heartbeat_digests(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    sink = fill(store, clock, 1, interval=HOUR)
    clock.advance(3 * HOUR)
    assert "stale" in kinds(check(store, clock)), "no digest for 3 hours"
    written = sink.heartbeat()
    assert len(written) == 1
    report = check(store, clock)
    assert report.ok, report.findings


def test_max_age_defaults_to_twice_the_interval_the_digests_name(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    fill(store, clock, 2, interval=HOUR)
    clock.advance(1.5 * HOUR)
    assert check(store, clock, max_age=None).ok
    assert verify_archive(store, public_key, LAYOUT, now=clock()).ok  # twice the 1 h interval
    clock.advance(HOUR)
    assert "stale" in kinds(verify_archive(store, public_key, LAYOUT, now=clock()))


# --- the whole prefix, delete markers and Object Lock -------------------------------------------
def test_deleting_the_whole_prefix_of_a_versioned_bucket_names_what_the_markers_hide(
    s3: Any,
) -> None:
    store, clock = bucket(s3, locked=True), FakeClock(T0 + HOUR)
    fill(store, clock, 2)
    deleted = delete(s3, "audit/")
    report = check(store, clock)
    assert not report.ok
    hidden = {f.key for f in report.findings if "delete marker" in f.detail}
    assert {k for k in deleted if "/state/" not in k} <= hidden
    assert any("state" in f.kind for f in report.findings)


def test_a_delete_marker_over_the_newest_objects_is_a_finding(s3: Any) -> None:
    """Object Lock keeps the version; a plain DELETE still hides it behind a marker. Deleting
    pending objects and restoring the state as it was before them leaves only the markers."""
    store, clock = bucket(s3, versioned=True), FakeClock(T0 + HOUR)
    fill(store, clock, 1, interval=HOUR)
    before = store.get(state_key())
    assert before is not None
    clock.advance(60)
    sink = make_sink(store, clock, digest_interval_seconds=HOUR)
    assert run(sink, direct_event([event(40), event(41)], first=40)) == []
    found = store.get(state_key())
    assert found is not None
    newest = ShardState.model_validate_json(found.body).pending[-1].key
    s3.delete_object(Bucket=BUCKET, Key=newest)
    s3.put_object(Bucket=BUCKET, Key=state_key(), Body=before.body, Metadata=before.metadata)
    report = check(store, clock)
    assert (newest, "deleted") in {(f.key, f.kind) for f in report.findings}


def test_an_overwritten_write_once_object_is_a_finding_even_when_restored(s3: Any) -> None:
    store, clock = bucket(s3, versioned=True), FakeClock(T0 + HOUR)
    fill(store, clock, 2)
    key = sorted(store.list("audit/events/"))[0]
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged")
    s3.put_object(Bucket=BUCKET, Key=key, Body=original)  # and put back
    report = check(store, clock)
    assert ("overwritten", key) in {(f.kind, f.key) for f in report.findings}


def test_an_empty_archive_is_not_ok(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0)
    report = check(store, clock)
    assert report.empty and not report.ok


# --- the event source mapping gives up -----------------------------------------------------------
def failure_record(batch: dict[str, Any]) -> dict[str, Any]:
    """What the mapping's S3 on-failure destination keeps: the batch info and the payload."""
    records = batch["Records"]
    return {
        "version": "1.0",
        "timestamp": "2026-11-25T23:00:00.000Z",
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "responseContext": {"statusCode": 200, "functionError": None},
        "KinesisBatchInfo": {
            "shardId": records[0]["eventID"].split(":")[0],
            "startingSequenceNumber": records[0]["kinesis"]["sequenceNumber"],
            "endingSequenceNumber": records[-1]["kinesis"]["sequenceNumber"],
            "batchSize": len(records),
            "streamArn": records[0]["eventSourceARN"],
        },
        "payload": json.dumps(batch),
    }


def test_records_the_mapping_gave_up_on_are_a_gap_until_replayed(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    outage = {"on": False}
    flaky = FlakyStore(store, lambda key, op: outage["on"] and "/events/" in key)
    sink = make_sink(flaky, clock)
    assert run(sink, direct_event([event(0)], first=0)) == []
    outage["on"] = True
    lost = direct_event([event(n) for n in range(1, 4)], first=1)
    for _ in range(6):  # the first attempt and 5 retries, all during the outage
        assert len(run(sink, lost)) == 3
    outage["on"] = False
    clock.advance(60)
    assert run(sink, direct_event([event(4)], first=4)) == []  # the mapping moved on
    report = check(store, clock)
    gaps = [f for f in report.findings if f.kind == "gap"]
    assert len(gaps) == 1 and sequence_number(1) in gaps[0].detail
    assert "3 record(s)" in gaps[0].detail

    result = sink.replay(failure_record(lost))
    assert result.failed == []
    assert sorted(archived_ids(store)) == sorted(event(n).event_id for n in range(5))
    report = check(store, clock)
    assert report.ok, report.findings
    assert any("replayed" in note for note in report.notes)


def test_a_gap_survives_until_it_is_replayed_even_after_more_digests(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    broken = {"on": True}
    flaky = FlakyStore(store, lambda key, op: broken["on"] and "/events/" in key)
    sink = make_sink(flaky, clock)
    assert len(run(sink, direct_event([event(1)], first=1))) == 1
    broken["on"] = False
    for n in range(2, 5):
        clock.advance(60)
        assert run(sink, direct_event([event(n)], first=n)) == []
    assert [f.kind for f in check(store, clock).findings] == ["gap"]


# --- the CLI ------------------------------------------------------------------------------------
def test_cli_verify_reports_a_stale_archive_and_takes_max_age(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = bucket(s3)
    fill(store, FakeClock(T0 + HOUR), 2, interval=HOUR)  # written in November 2026
    pem = tmp_path / "key.pem"
    pem.write_bytes(SIGNER.public_key_pem())
    argv = ["archive", "verify", "--bucket", BUCKET, "--prefix", "audit/", "--public-key", str(pem)]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "STALE" in out and "FAILED" in out
    assert cli.main([*argv, "--max-age", "off"]) == 0
    out = capsys.readouterr().out
    assert "freshness not checked" in out
    assert cli.main([*argv, "--max-age", "3650d"]) == 0


def downgrade(s3: Any, store: S3ObjectStore) -> None:
    """Rewrite the archive as the sink wrote it before digest version 2: v1 digests (re-signed
    in order, as that sink signed them) and an unsigned state."""
    from gatekeeper.audit.archive import sha256_hex, signing_string

    v2_only = ("objects_total", "newest_object", "done_through", "gaps", "gaps_closed",
               "incidents", "interval_seconds")  # fmt: skip
    previous: str | None = None
    for key in sorted(store.list("audit/digests/")):
        document = json.loads(store.get(key).body)  # type: ignore[union-attr]
        document = {k: v for k, v in document.items() if k not in v2_only} | {"version": 1}
        document["previous_digest_signature"] = previous
        body = json.dumps(document, sort_keys=True, indent=1).encode()
        message = signing_string(document["end_time"], BUCKET, key, sha256_hex(body), previous)
        previous = SIGNER.sign(message).hex()
        metadata = {"signature": previous, "key-id": SIGNER.key_id}
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)
    key = state_key()
    state = json.loads(store.get(key).body)  # type: ignore[union-attr]
    old_fields = set(ShardState.model_fields) - {"state_version", "newest_object", "failing",
                                                 "gaps", "gaps_closed", "incidents"}  # fmt: skip
    state = {k: v for k, v in state.items() if k in old_fields}
    state["last_digest_signature"] = previous
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(state).encode())


def test_archives_from_before_digest_version_2_verify_and_say_so(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    sink = fill(store, clock, 2)
    downgrade(s3, store)
    clock.advance(5 * HOUR)
    report = check(store, clock)
    assert report.ok, report.findings
    assert any("predate" in note for note in report.notes)
    # the sink carries on where the old one stopped, now with version 2 digests
    assert run(sink, direct_event([event(60)], first=60)) == []
    report = check(store, clock)
    assert report.ok, report.findings


# --- the deployed handler: heartbeat schedule and replay ------------------------------------------
def load_sink_handler() -> Any:
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "audit_sink_handler_integrity", root / "functions" / "audit_sink" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_handler_signs_heartbeats_on_schedule_and_replays_failure_records(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gatekeeper.testing.audit_events import kinesis_event
    from gatekeeper.testing.lambda_context import LocalLambdaContext as Context

    bucket(s3)
    monkeypatch.setenv("GATEKEEPER_AUDIT_BUCKET", BUCKET)
    monkeypatch.setenv("GATEKEEPER_AUDIT_PREFIX", "audit/")
    monkeypatch.setenv("GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS", "3600")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Gatekeeper")
    handler = load_sink_handler()
    payloads = [json.dumps(event(n).model_dump(mode="json")).encode() for n in range(2)]
    assert handler.lambda_handler(kinesis_event(payloads), Context()) == {"batchItemFailures": []}
    writer = handler.get_sink().writer
    clock = FakeClock(writer.now() + 2 * HOUR)
    writer._clock = clock
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    answer = handler.lambda_handler(schedule, Context())
    assert len(answer["digests"]) == 1

    lost = kinesis_event([json.dumps(event(7).model_dump(mode="json")).encode()], first=7)
    answer = handler.lambda_handler(failure_record(lost), Context())
    assert answer["replayed"] == 1
    pem = writer.signer.public_key_pem()
    report = verify_archive(
        S3ObjectStore(s3, BUCKET), lambda _k: pem, LAYOUT, now=clock(), max_age=2 * HOUR
    )
    assert report.ok, report.findings
    assert event(7).event_id in archived_ids(S3ObjectStore(s3, BUCKET))


def test_write_once_objects_are_locked_as_they_are_written_and_the_state_is_not(s3: Any) -> None:
    """GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS: compliance retention per archive object, marker and
    digest; the state (rewritten every batch) is left unlocked, which a bucket default would
    not do."""
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    store = S3ObjectStore(s3, BUCKET, lock_days=400)
    clock = FakeClock(T0 + HOUR)
    fill(store, clock, 1)
    keys = list(store.list("audit/"))
    assert any("/digests/" in k for k in keys) and any("/events/" in k for k in keys)
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        if "/state/" in key:
            assert "ObjectLockMode" not in head
        else:
            assert head["ObjectLockMode"] == "COMPLIANCE", key
    assert check(store, clock).ok


def test_a_total_s3_outage_still_leaves_a_gap_when_the_container_survives(s3: Any) -> None:
    """Nothing can be written during the outage, not even the state: the failed sequence
    numbers wait in the container's memory until the next save of the chain."""
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    outage = {"on": False}
    sink = make_sink(FlakyStore(store, lambda key, op: outage["on"]), clock)
    assert run(sink, direct_event([event(0)], first=0)) == []
    outage["on"] = True
    lost = direct_event([event(1), event(2)], first=1)
    for _ in range(6):
        assert len(run(sink, lost)) == 2
    outage["on"] = False
    assert run(sink, direct_event([event(3)], first=3)) == []
    [gap] = [f for f in check(store, clock).findings if f.kind == "gap"]
    assert sequence_number(1) in gap.detail and "2 record(s)" in gap.detail


def test_a_retry_archived_by_another_container_is_no_gap(s3: Any) -> None:
    store, clock = bucket(s3), FakeClock(T0 + HOUR)
    outage = {"on": False}
    first = make_sink(FlakyStore(store, lambda key, op: outage["on"]), clock)
    second = make_sink(store, clock)  # another execution environment of the function
    assert run(first, direct_event([event(0)], first=0)) == []
    outage["on"] = True
    batch = direct_event([event(1), event(2)], first=1)
    assert len(run(first, batch)) == 2  # remembered in the first container's memory
    outage["on"] = False
    assert run(second, batch) == []  # the retry landed elsewhere
    assert run(first, direct_event([event(3)], first=3)) == []
    report = check(store, clock)
    assert report.ok, report.findings


def test_an_untouched_archive_verifies_at_every_step_of_a_long_random_run() -> None:
    """No false finding: batches (events in two hours, junk), hourly heartbeats, lost state
    saves and their retries, idle stretches; verified with freshness after every step."""
    import random

    from gatekeeper.audit.store import MemoryObjectStore

    rng = random.Random(12)
    memory, clock = MemoryObjectStore(), FakeClock(T0 + HOUR)
    lose = {"on": False}
    store = FlakyStore(memory, lambda key, op: lose["on"] and "/state/" in key and op == "put")
    sink = make_sink(store, clock, digest_interval_seconds=HOUR)
    last_beat, n = clock(), 0
    for _step in range(60):
        clock.advance(rng.choice([0, 30, 600, 1800, 3000]))
        if clock() - last_beat >= HOUR:
            sink.heartbeat()
            last_beat = clock()
        size = rng.randint(1, 3)
        payloads = [
            json.dumps(event(n + i, at=T0 + rng.choice([0, HOUR])).model_dump(mode="json")).encode()
            for i in range(size)
        ]
        if rng.random() < 0.2:
            payloads.append(b"{junk")
        from gatekeeper.testing.audit_events import kinesis_event

        batch = kinesis_event(payloads, first=n)
        lose["on"] = rng.random() < 0.15
        if run(sink, batch):
            lose["on"] = False
            assert run(sink, batch) == []  # Lambda's retry
        lose["on"] = False
        n += len(payloads)
        report = verify_archive(memory, public_key, LAYOUT, now=clock(), max_age=2 * HOUR)
        assert report.ok, (_step, report.findings)


@pytest.mark.parametrize("batch_digest", [True, False])
def test_a_heartbeat_racing_a_batch_of_the_chain_leaves_it_consistent(batch_digest: bool) -> None:
    """The scheduled heartbeat and a batch of the same chain in two containers: the state is
    written on condition, so one of them loses and the chain stays one chain."""
    from gatekeeper.audit.store import MemoryObjectStore

    memory, clock = MemoryObjectStore(), FakeClock(T0 + HOUR)
    interval = HOUR if batch_digest else 4 * HOUR
    batches = make_sink(memory, clock, digest_interval_seconds=interval)
    assert run(batches, direct_event([event(0)], first=0)) == []
    clock.advance(HOUR if batch_digest else 0)
    assert run(batches, direct_event([event(1)], first=1)) == []
    clock.advance(HOUR if batch_digest else 4 * HOUR)
    raced = {"done": False}

    def meanwhile(key: str, op: str) -> bool:
        if op == "create" and "/digests/" in key and not raced["done"]:
            raced["done"] = True
            assert run(batches, direct_event([event(2), event(3)], first=2)) == []
        return False

    beats = make_sink(FlakyStore(memory, meanwhile), clock, digest_interval_seconds=interval)
    beats.heartbeat()
    assert raced["done"]
    report = verify_archive(memory, public_key, LAYOUT, now=clock(), max_age=2 * interval)
    assert report.ok, report.findings
    clock.advance(60)
    assert run(batches, direct_event([event(4)], first=4)) == []
    beats.heartbeat()
    clock.advance(interval)
    beats.heartbeat()
    report = verify_archive(memory, public_key, LAYOUT, now=clock(), max_age=2 * interval)
    assert report.ok, report.findings
    assert sorted(archived_ids(memory)) == sorted(event(n).event_id for n in range(5))


def test_the_sink_locks_objects_when_configured(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools import Logger

    from gatekeeper.audit.sink import sink_from_settings
    from gatekeeper.config import AuditSinkSettings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = AuditSinkSettings.from_env(
        {"GATEKEEPER_AUDIT_BUCKET": BUCKET, "GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS": "365"}
    )
    store = sink_from_settings(settings, Logger(service="test")).writer.store
    assert isinstance(store, S3ObjectStore) and store.lock_days == 365


def test_an_operator_who_may_not_list_versions_gets_a_note_not_a_crash(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    store, clock = bucket(s3, versioned=True), FakeClock(T0 + HOUR)
    fill(store, clock, 1)

    def denied(self: S3ObjectStore, prefix: str) -> Iterator[Any]:
        raise ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectVersions")
        yield  # pragma: no cover

    monkeypatch.setattr(S3ObjectStore, "versions", denied)
    report = check(store, clock)
    assert report.ok and any("s3:ListBucketVersions" in note for note in report.notes)
