"""The stack wired to the audit integrity runtime: Object Lock per object, the archive's bucket
policy, the heartbeat, the failed-batches bucket, the integrity alarms, the replay outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synth, synthesize

BREAK_GLASS = "arn:aws:iam::111122223333:role/gatekeeper-break-glass"
WRITE_ONCE = ["/audit/digests/*", "/audit/events/*", "/audit/quarantine/*"]


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _by_prefix(synth: Synth, cfn_type: str, prefix: str) -> dict[str, Any]:
    (res,) = [r for k, r in synth.of_type(cfn_type).items() if k.startswith(prefix)]
    return res


def _sink_env(synth: Synth) -> dict[str, Any]:
    (env,) = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in synth.of_type("AWS::Lambda::Function").items()
        if k.startswith("AuditSink") and "Environment" in r["Properties"]
    ]
    return env  # type: ignore[no-any-return]


def _sink_statements(synth: Synth) -> dict[str, dict[str, Any]]:
    policy = _by_prefix(synth, "AWS::IAM::Policy", "AuditSinkRoleDefaultPolicy")
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}


def _object_suffixes(resources: Any) -> list[str]:
    return sorted(str(r["Fn::Join"][1][1]) for r in _listify(resources))


def _archive_policy(synth: Synth) -> dict[str, dict[str, Any]]:
    policy = _by_prefix(synth, "AWS::S3::BucketPolicy", "ArchiveBucketPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    return {s["Sid"]: s for s in statements if "Sid" in s}


@pytest.fixture(scope="module")
def synth_break_glass(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("cdk-break-glass"),
        {
            "gatekeeper:breakGlassRoleArn": BREAK_GLASS,
            "gatekeeper:objectLockDays": "off",
            "gatekeeper:digestIntervalSeconds": "600",
        },
    )


# --- 1. Object Lock: enabled on the bucket, retention set per object by the sink -------------
def test_archive_has_object_lock_without_default_retention(synth: Synth) -> None:
    archive = _by_prefix(synth, "AWS::S3::Bucket", "ArchiveBucket")["Properties"]
    assert archive["ObjectLockEnabled"] is True
    # a default retention would lock every version of the chain state, rewritten every batch
    assert archive["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    assert archive["VersioningConfiguration"] == {"Status": "Enabled"}


def test_sink_locks_write_once_objects_for_365_days_by_default(synth: Synth) -> None:
    from gatekeeper.config import AuditSinkSettings

    env = _sink_env(synth)
    assert env["GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS"] == "365"
    literal = {k: v for k, v in env.items() if isinstance(v, str) and k.startswith("GATEKEEPER_")}
    settings = AuditSinkSettings.from_env({**literal, "GATEKEEPER_AUDIT_BUCKET": "archive"})
    assert settings.audit_object_lock_days == 365
    retention = _sink_statements(synth)["LockArchiveObjects"]
    assert retention["Action"] == "s3:PutObjectRetention"
    assert _object_suffixes(retention["Resource"]) == WRITE_ONCE  # never the state


def test_object_lock_days_off_means_no_retention_and_no_permission(
    synth_break_glass: Synth,
) -> None:
    archive = _by_prefix(synth_break_glass, "AWS::S3::Bucket", "ArchiveBucket")["Properties"]
    assert archive["ObjectLockEnabled"] is True  # the bucket keeps Object Lock either way
    assert "GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS" not in _sink_env(synth_break_glass)
    assert "LockArchiveObjects" not in _sink_statements(synth_break_glass)


def test_bad_lock_days_or_interval_fail_the_synth() -> None:
    from gatekeeper_cdk.stack import GatekeeperSettings, _check_settings

    _check_settings(GatekeeperSettings())
    for bad, message in (
        (GatekeeperSettings(object_lock_days=0), "object_lock_days"),
        (GatekeeperSettings(digest_interval_seconds=0), "digest_interval_seconds"),
        (GatekeeperSettings(digest_interval_seconds=3601), "digest_interval_seconds"),
        (GatekeeperSettings(failed_batches_retention_days=7), "failed_batches_retention_days"),
    ):
        with pytest.raises(ValueError, match=message):
            _check_settings(bad)


# --- 2. the archive's bucket policy ---------------------------------------------------------
def test_write_once_areas_refuse_puts_without_if_none_match(synth: Synth) -> None:
    deny = _archive_policy(synth)["WriteOnceCreatesOnly"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "s3:PutObject"
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert _object_suffixes(deny["Resource"]) == WRITE_ONCE


def test_only_the_sink_writes_the_chain_state(synth: Synth) -> None:
    deny = _archive_policy(synth)["OnlyTheSinkWritesState"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "s3:PutObject"
    assert _object_suffixes(deny["Resource"]) == ["/audit/state/*"]
    sink_role = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"]
    assert sink_role[0].startswith("AuditSinkRole") and sink_role[1] == "Arn"


def test_nobody_deletes_archive_objects(synth: Synth) -> None:
    deny = _archive_policy(synth)["NoDeletesInTheArchive"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert set(deny["Action"]) == {"s3:DeleteObject*", "s3:BypassGovernanceRetention"}
    assert _object_suffixes(deny["Resource"]) == ["/audit/*"]
    assert "Condition" not in deny  # no break-glass role configured: no exception


def test_the_break_glass_role_is_the_one_exception(synth_break_glass: Synth) -> None:
    deny = _archive_policy(synth_break_glass)["NoDeletesInTheArchive"]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": BREAK_GLASS}}
    # and it gets no exception for the state or the write-once rule
    policy = _archive_policy(synth_break_glass)
    assert BREAK_GLASS not in json.dumps(policy["OnlyTheSinkWritesState"])
    assert BREAK_GLASS not in json.dumps(policy["WriteOnceCreatesOnly"])


# --- 3. heartbeat -----------------------------------------------------------------------------
def test_heartbeat_invokes_the_sink_every_half_digest_interval(synth: Synth) -> None:
    rule = _by_prefix(synth, "AWS::Events::Rule", "AuditHeartbeat")["Properties"]
    assert _sink_env(synth)["GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS"] == "3600"
    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("AuditSink")
    assert json.loads(target["Input"]) == {"gatekeeper": "heartbeat"}
    permission = _by_prefix(synth, "AWS::Lambda::Permission", "AuditHeartbeatAllowEventRule")
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"


def test_the_handler_takes_the_rules_input_for_a_heartbeat() -> None:
    import importlib.util

    from gatekeeper_cdk.stack import HEARTBEAT_INPUT

    path = Path(__file__).resolve().parents[2] / "functions" / "audit_sink" / "handler.py"
    spec = importlib.util.spec_from_file_location("audit_sink_handler_for_infra", path)
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    assert handler.is_heartbeat(HEARTBEAT_INPUT)
    assert not handler.is_heartbeat({"Records": []})


def test_heartbeat_follows_the_digest_interval(synth_break_glass: Synth) -> None:
    rule = _by_prefix(synth_break_glass, "AWS::Events::Rule", "AuditHeartbeat")["Properties"]
    assert _sink_env(synth_break_glass)["GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS"] == "600"
    assert rule["ScheduleExpression"] == "rate(5 minutes)"


# --- 4. the failed-batches bucket -------------------------------------------------------------
def test_failed_batches_go_to_a_dedicated_bucket(synth: Synth) -> None:
    (esm,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    dest = esm["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert (
        dest["Fn::GetAtt"][0].startswith("FailedBatchesBucket") and dest["Fn::GetAtt"][1] == "Arn"
    )
    props = _by_prefix(synth, "AWS::S3::Bucket", "FailedBatchesBucket")["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith(
        "DataKey"
    )
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith(
        "AccessLogsBucket"
    )
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] >= 30
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 30
    policy = _by_prefix(synth, "AWS::S3::BucketPolicy", "FailedBatchesBucketPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_the_mapping_can_write_failed_batches(synth: Synth) -> None:
    """Lambda writes an S3 on-failure record with the function's role: PutObject, ListBucket,
    and GenerateDataKey on the bucket's KMS key (through S3)."""
    statements = _sink_statements(synth)
    put = statements["WriteFailedBatches"]
    assert put["Action"] == "s3:PutObject"
    assert put["Resource"]["Fn::Join"][1][0]["Fn::GetAtt"][0].startswith("FailedBatchesBucket")
    listing = statements["ListFailedBatches"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"]["Fn::GetAtt"][0].startswith("FailedBatchesBucket")
    key = statements["ArchiveKey"]
    assert "kms:GenerateDataKey" in key["Action"]
    via = "".join(str(p) for p in key["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1])
    assert via.startswith("s3.")
    (esm,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    assert any(d.startswith("AuditSinkRoleDefaultPolicy") for d in esm.get("DependsOn", []))


# --- 5. alarms --------------------------------------------------------------------------------
def _alarm(synth: Synth, name: str) -> dict[str, Any]:
    alarm: dict[str, Any] = _by_prefix(synth, "AWS::CloudWatch::Alarm", f"Monitoring{name}")
    return alarm["Properties"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("metric", ["ChainGaps", "StateIncidents"])
def test_integrity_metrics_alarm_on_any(synth: Synth, metric: str) -> None:
    alarm = _alarm(synth, metric)
    assert alarm["Namespace"] == "Gatekeeper"  # functions/audit_sink/handler.py Metrics(...)
    assert alarm["MetricName"] == metric
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "audit-sink"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"][0]["Ref"].startswith("AlarmTopic")


def test_the_sink_emits_the_alarmed_metrics() -> None:
    handler = Path(__file__).resolve().parents[2] / "functions" / "audit_sink" / "handler.py"
    text = handler.read_text(encoding="utf-8")
    assert 'Metrics(namespace="Gatekeeper", service="audit-sink")' in text
    assert '("ChainGaps",' in text and '("StateIncidents",' in text


def test_failed_batches_alarm_on_objects_written(synth: Synth) -> None:
    alarm = _alarm(synth, "FailedBatches")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/S3", "PutRequests")
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dims["BucketName"]["Ref"].startswith("FailedBatchesBucket")
    props = _by_prefix(synth, "AWS::S3::Bucket", "FailedBatchesBucket")["Properties"]
    assert props["MetricsConfigurations"] == [{"Id": dims["FilterId"]}]
    assert alarm["Threshold"] == 0 and alarm["Statistic"] == "Sum"
    delivery = _alarm(synth, "FailedBatchDeliveries")
    assert (delivery["Namespace"], delivery["MetricName"]) == (
        "AWS/Lambda",
        "DestinationDeliveryFailures",
    )


def test_heartbeat_failures_alarm(synth: Synth) -> None:
    alarm = _alarm(synth, "HeartbeatFailures")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "FailedInvocations")
    (dim,) = alarm["Dimensions"]
    assert dim["Name"] == "RuleName" and dim["Value"]["Ref"].startswith("AuditHeartbeat")
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_cfn_lint_and_nag_with_break_glass(synth_break_glass: Synth) -> None:
    from tests.infra.test_checks import _cfn_lint

    _cfn_lint(synth_break_glass)
