"""Review findings on the CDK app, each pinned by a test."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


def _sink_statements(synth: Synth) -> dict[str, dict[str, Any]]:
    policy = next(
        r
        for k, r in synth.of_type("AWS::IAM::Policy").items()
        if k.startswith("AuditSinkRoleDefaultPolicy")
    )
    return {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_sink_may_list_the_archive_bucket_so_a_missing_state_object_is_a_404(
    synth: Synth,
) -> None:
    """The sink's first GetObject of ``state/<chain>.json`` (a new shard) finds nothing. Without
    ``s3:ListBucket`` S3 answers 403 AccessDenied instead of 404 NoSuchKey, the store raises
    instead of returning None, and every batch of a new shard fails forever."""
    statement = _sink_statements(synth).get("FindMissingState")
    assert statement is not None, "the sink role has no s3:ListBucket on the archive bucket"
    assert statement["Action"] == "s3:ListBucket"
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("ArchiveBucket")
