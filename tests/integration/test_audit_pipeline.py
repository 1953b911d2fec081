"""End to end: the real authorizer handler → log lines → subscription → audit_sink → S3."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from gatekeeper import cli
from gatekeeper.audit.archive import Layout
from gatekeeper.audit.store import S3ObjectStore
from gatekeeper.audit.verify import verify_archive
from gatekeeper.testing.audit_events import kinesis_event, subscription_payloads
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import World
from tests.integration.test_handler import handler  # noqa: F401 - fixture
from tests.security.test_no_secrets import secrets_of

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "gatekeeper-audit-test"


def load_sink_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_sink_handler_under_test", ROOT / "functions" / "audit_sink" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sink_handler(world: World, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The deployed sink handler against moto S3 (inside the world's mock_aws)."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("GATEKEEPER_AUDIT_BUCKET", BUCKET)
    monkeypatch.setenv("GATEKEEPER_AUDIT_PREFIX", "audit/")
    monkeypatch.setenv("GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS", "0")
    return load_sink_handler()


def all_objects() -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_every_decision_archived_once_without_secrets(
    handler: tuple[ModuleType, io.StringIO],  # noqa: F811
    sink_handler: ModuleType,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module, log = handler
    needles, events = secrets_of(world)
    events.append({"type": "REQUEST", "methodArn": "garbage"})  # a malformed event: 401 too
    for request in events:
        with contextlib.suppress(module.Unauthorized):
            module.lambda_handler(request, LocalLambdaContext())
    lines = log.getvalue().splitlines()
    decisions = {
        a["event_id"]: a["decision"] for a in (json.loads(x).get("audit") for x in lines) if a
    }
    assert len(decisions) == len(events)

    # every line, audit or not (START/REPORT-like noise too), as CloudWatch Logs would forward it
    payloads = subscription_payloads(["START RequestId: 1 Version: $LATEST", *lines], per_record=7)
    first = sink_handler.lambda_handler(kinesis_event(payloads[:3]), LocalLambdaContext())
    rest = sink_handler.lambda_handler(kinesis_event(payloads[3:], first=3), LocalLambdaContext())
    assert first == rest == {"batchItemFailures": []}
    # a redelivered batch (Lambda retried after a timeout) changes nothing
    again = sink_handler.lambda_handler(kinesis_event(payloads[:3]), LocalLambdaContext())
    assert again == {"batchItemFailures": []}

    objects = all_objects()
    rows = [
        json.loads(row)
        for key, body in objects.items()
        if key.startswith("audit/events/")
        for row in gzip.decompress(body).splitlines()
    ]
    archived = [row["metadata"]["uid"] for row in rows]
    assert sorted(archived) == sorted(decisions), "every decision exactly once"
    by_id = {row["metadata"]["uid"]: row for row in rows}
    for event_id, decision in decisions.items():
        assert by_id[event_id]["unmapped"]["decision"] == decision
        assert by_id[event_id]["class_uid"] == (3002 if decision == "unauthorized" else 6003)
    assert not any(k.startswith("audit/quarantine/") for k in objects)
    for key, body in objects.items():
        text = gzip.decompress(body).decode() if key.endswith(".gz") else body.decode()
        leaked = [n for n in needles if n in text]
        assert not leaked, f"{key} holds a credential"

    pem = tmp_path / "digest-key.pem"
    pem.write_bytes(sink_handler.get_sink().writer.signer.public_key_pem())
    code = cli.main(["archive", "verify", "--bucket", BUCKET, "--prefix", "audit/",
                     "--public-key", str(pem)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(decisions)} event(s) verified" in out


def test_s3_outage_fails_the_whole_batch_and_the_retry_archives_once(
    sink_handler: ModuleType, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.audit_helpers import direct_event, event

    events = [event(n) for n in range(6)]
    batch = direct_event(events)
    boto3.client("s3").delete_bucket(Bucket=BUCKET)  # S3 "down" for this bucket
    response = sink_handler.lambda_handler(batch, LocalLambdaContext())
    seqs = [r["kinesis"]["sequenceNumber"] for r in batch["Records"]]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == seqs
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    assert sink_handler.lambda_handler(batch, LocalLambdaContext()) == {"batchItemFailures": []}
    store = S3ObjectStore(boto3.client("s3"), BUCKET)
    from tests.audit_helpers import archived_ids

    signer = sink_handler.get_sink().writer.signer
    assert sorted(archived_ids(store)) == sorted(e.event_id for e in events)
    report = verify_archive(store, lambda _k: signer.public_key_pem(), Layout("audit/"))
    assert report.ok, report.findings


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return loaded


def test_sample_events_are_archived(sink_handler: ModuleType, world: World) -> None:
    for name in ("audit_sink_logs_subscription.json", "audit_sink_direct.json"):
        assert sink_handler.lambda_handler(sample(name), LocalLambdaContext()) == {
            "batchItemFailures": []
        }
    store = S3ObjectStore(boto3.client("s3"), BUCKET)
    from tests.audit_helpers import archived_ids

    assert len(archived_ids(store)) == 3
