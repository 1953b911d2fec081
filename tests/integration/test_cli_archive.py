"""``gatekeeper archive verify`` as an operator meets it: it never says OK about nothing, a wrong
key is one line, ``--json`` for scripts, progress only on a terminal, defaults from the stack."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from gatekeeper import cli
from gatekeeper.audit.signer import LocalRsaSigner
from gatekeeper.audit.store import S3ObjectStore
from gatekeeper.commands._admin import Progress
from tests.audit_helpers import SIGNER, direct_event, event, make_sink, run

BUCKET = "gk-archive"


@pytest.fixture
def archive() -> Iterator[S3ObjectStore]:
    """An archive under ``audit/`` (as the stack writes it): 3 batches, a digest after each."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        store = S3ObjectStore(s3, BUCKET)
        sink = make_sink(store)
        for batch in range(3):
            assert (
                run(sink, direct_event([event(batch * 10 + n) for n in range(3)], batch * 10)) == []
            )
        yield store


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(SIGNER.public_key_pem())
    return path


def verify(*extra: str) -> list[str]:
    # the fixture's archive is written at a fixed fake time (November 2026): its newest digest
    # is old by the wall clock, so freshness (tests/integration/test_audit_integrity.py) is off
    return ["archive", "verify", "--bucket", BUCKET, "--max-age", "off", *extra]


def test_the_default_prefix_is_the_stacks(
    archive: S3ObjectStore,
    pem: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GATEKEEPER_AUDIT_PREFIX", raising=False)
    assert cli.main(verify("--public-key", str(pem))) == 0
    out = capsys.readouterr().out
    assert f"s3://{BUCKET}/audit/: OK" in out and "9 event(s) verified" in out


@pytest.mark.parametrize("prefix", ["", "logs/"])
def test_nothing_to_verify_is_a_failure_that_says_where_digests_are(
    prefix: str, archive: S3ObjectStore, pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(verify("--prefix", prefix, "--public-key", str(pem))) == 1
    out, err = capsys.readouterr()
    assert "OK" not in out
    [line] = err.strip().splitlines()
    assert "nothing to verify" in line and "try --prefix audit/" in line


def test_an_empty_bucket_fails_and_names_the_stack_prefix(
    pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="empty")
        code = cli.main(["archive", "verify", "--bucket", "empty", "--public-key", str(pem)])
    assert code == 1
    err = capsys.readouterr().err
    assert "nothing to verify" in err and "'audit/'" in err


def test_a_wrong_key_is_one_line(
    archive: S3ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(LocalRsaSigner.generate("someone-else").public_key_pem())
    assert cli.main(verify("--public-key", str(wrong))) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2, lines  # the diagnosis and the summary
    assert "no digest verifies with this key (3 digest(s) checked)" in lines[0]
    assert "FAILED: 1 finding(s)" in lines[1]


def test_one_forged_digest_among_good_ones_is_still_reported_by_key(
    archive: S3ObjectStore, pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = sorted(archive.list("audit/digests/"))[-1]
    found = archive.get(digest)
    assert found is not None
    forged = LocalRsaSigner.generate("x").sign(b"anything").hex()
    boto3.client("s3", region_name="us-east-1").put_object(  # re-signed by a forger's key
        Bucket=BUCKET, Key=digest, Body=found.body, Metadata={**found.metadata, "signature": forged}
    )
    assert cli.main(verify("--public-key", str(pem))) == 1
    out = capsys.readouterr().out
    assert f"DIGEST_INVALID  {digest}" in out and "no digest verifies" not in out


def test_json_output(archive: S3ObjectStore, pem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--json", *verify("--public-key", str(pem))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["empty"] is False
    assert (report["digests"], report["events"], report["findings"]) == (3, 9, [])
    assert cli.main(verify("--public-key", str(pem), "--prefix", "nope/", "--json")) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["empty"] is True
    assert report["suggested_prefix"] == "audit/"


def test_progress_is_drawn_on_a_terminal_only() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress("verifying", stream=stream)
        for done in range(1, 5):
            progress(done, 4)
    assert pipe.getvalue() == ""
    assert tty.getvalue().endswith("\rverifying [##############################] 4/4\n")


def test_bucket_prefix_and_key_come_from_the_stack_outputs(
    archive: S3ObjectStore, pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "Gatekeeper": {
                    "ConfigTableName": "cfg",
                    "ArchiveBucketName": BUCKET,
                    "ArchivePrefix": "audit/",
                    "Region": "us-east-1",
                    "DigestSigningKeyArn": "arn:aws:kms:us-east-1:111122223333:key/none",
                }
            }
        )
    )
    argv = ["--stack-outputs", str(outputs), "archive", "verify", "--public-key", str(pem)]
    argv += ["--max-age", "off"]  # written at a fixed fake time
    assert cli.main(argv) == 0  # the key file wins over the output's KMS key
    assert f"s3://{BUCKET}/audit/: OK" in capsys.readouterr().out
    assert cli.main(["--stack-outputs", str(outputs), "archive", "verify"]) == 1
    err = capsys.readouterr().err  # the KMS key of the outputs was used (and does not exist)
    assert "KMS key 'arn:aws:kms:us-east-1:111122223333:key/none'" in err


def test_stack_outputs_that_are_not_a_stacks_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "outputs.json"
    bad.write_text("{")
    assert cli.main(["--stack-outputs", str(bad), "keys", "list"]) == 1
    assert f"{bad}: not JSON" in capsys.readouterr().err
    bad.write_text("{}")
    assert cli.main(["--stack-outputs", str(bad), "keys", "list"]) == 1
    assert "found 0" in capsys.readouterr().err


def test_the_prefix_hint_is_best_effort(
    archive: S3ObjectStore,
    pem: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator allowed to list only under audit/ still gets the one-line failure."""
    from botocore.exceptions import ClientError

    listing = S3ObjectStore.list

    def only_under_audit(self: S3ObjectStore, prefix: str) -> Iterator[str]:
        if not prefix.startswith("audit/"):
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2")
        yield from listing(self, prefix)

    monkeypatch.setattr(S3ObjectStore, "list", only_under_audit)
    assert cli.main(verify("--public-key", str(pem), "--prefix", "audit/x/")) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "nothing to verify" in line and "check --bucket and --prefix" in line
