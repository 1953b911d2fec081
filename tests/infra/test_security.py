"""Encryption everywhere, TTL, public access, TLS-only, and least privilege on every role."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth

# Services whose actions touch data: none of their actions may contain a wildcard.
DATA_SERVICES = ("dynamodb", "s3", "kinesis", "sqs", "sns", "kms", "events", "logs", "glue")
STACK_OUTPUTS_ACTION = "cloudformation:DescribeStacks"
OPERATOR_CONTROL_ACTIONS = (STACK_OUTPUTS_ACTION, "lambda:InvokeFunction")


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy (inline role policies and AWS::IAM::Policy)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, res in synth.resources.items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props["PolicyDocument"]]
        elif res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        else:
            continue
        for doc in docs:
            found.extend((logical_id, st) for st in doc["Statement"])
    return found


def role_actions(synth: Synth, role_prefix: str) -> dict[str, set[str]]:
    """Sid -> actions for the default policy of the role whose logical id starts with prefix."""
    policies = [
        r
        for k, r in synth.of_type("AWS::IAM::Policy").items()
        if k.startswith(f"{role_prefix}RoleDefaultPolicy")
    ]
    assert len(policies) == 1, role_prefix
    out: dict[str, set[str]] = {}
    for st in policies[0]["Properties"]["PolicyDocument"]["Statement"]:
        out.setdefault(st.get("Sid", "XRay"), set()).update(_listify(st["Action"]))
    return out


def test_no_wildcard_action_in_any_identity_policy(synth: Synth) -> None:
    statements = identity_statements(synth)
    assert len(statements) > 20
    for logical_id, st in statements:
        assert st["Effect"] == "Allow", (logical_id, st)
        for action in _listify(st["Action"]):
            assert "*" not in action, f"{logical_id}: wildcard action {action}"
            service = action.split(":", 1)[0]
            if logical_id.startswith("OperatorPolicy") and action in OPERATOR_CONTROL_ACTIONS:
                continue  # the CLI reads this stack's outputs, replays (test_operator.py)
            assert service in (*DATA_SERVICES, "xray"), f"{logical_id}: unexpected {action}"


def test_resource_wildcard_only_for_xray(synth: Synth) -> None:
    for logical_id, st in identity_statements(synth):
        if "*" in _listify(st["Resource"]):
            actions = set(_listify(st["Action"]))
            assert actions <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, logical_id


def test_the_wildcard_check_catches_a_bad_statement(synth: Synth) -> None:
    """The check above is not vacuous: a statement like CDK's grant helpers write fails it."""
    bad = {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "arn:table"}
    assert any("*" in a for a in _listify(bad["Action"]))


def test_authorizer_role_is_exact(synth: Synth) -> None:
    assert role_actions(synth, "Authorizer") == {
        "WriteOwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "XRay": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        "ReadConfig": {"dynamodb:GetItem", "dynamodb:Query"},
        "CountRequests": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "TablesKey": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
    }


def test_sink_role_is_exact(synth: Synth) -> None:
    assert role_actions(synth, "AuditSink") == {
        "WriteOwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "XRay": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        "ReadAuditStream": {
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
        },
        "StreamKey": {"kms:Decrypt"},
        "WriteArchive": {"s3:PutObject"},
        "LockArchiveObjects": {"s3:PutObjectRetention"},
        "ReadArchive": {"s3:GetObject"},
        "FindMissingState": {"s3:ListBucket"},
        "ArchiveKey": {"kms:Decrypt", "kms:GenerateDataKey"},
        "SignDigests": {"kms:Sign", "kms:GetPublicKey"},
        "Alerts": {"events:PutEvents"},
        "DetectionCounters": {"dynamodb:UpdateItem", "dynamodb:PutItem"},
        "TablesKey": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
        "WriteFailedBatches": {"s3:PutObject"},
        "ListFailedBatches": {"s3:ListBucket"},
    }


def test_admin_role_is_exact(synth: Synth) -> None:
    assert role_actions(synth, "Admin") == {
        "WriteOwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "XRay": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        "ManageConfig": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        },
        "InspectCounters": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        },
        "TablesKey": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
    }


def _ref(value: Any) -> str:
    """The logical id a Ref / GetAtt points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def test_statements_target_the_right_resources(synth: Synth) -> None:
    policy = next(
        r
        for k, r in synth.of_type("AWS::IAM::Policy").items()
        if k.startswith("AuthorizerRoleDefaultPolicy")
    )
    by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert _ref(by_sid["ReadConfig"]["Resource"]).startswith("ConfigTable")
    assert _ref(by_sid["CountRequests"]["Resource"]).startswith("CountersTable")
    assert _ref(by_sid["TablesKey"]["Resource"]).startswith("DataKey")
    assert "kms:ViaService" in by_sid["TablesKey"]["Condition"]["StringEquals"]
    sink = next(
        r
        for k, r in synth.of_type("AWS::IAM::Policy").items()
        if k.startswith("AuditSinkRoleDefaultPolicy")
    )
    sink_sids = {s.get("Sid"): s for s in sink["Properties"]["PolicyDocument"]["Statement"]}
    assert _ref(sink_sids["SignDigests"]["Resource"]).startswith("DigestSigningKey")
    archive = sorted(str(r["Fn::Join"][1][1]) for r in sink_sids["WriteArchive"]["Resource"])
    assert archive == [
        "/audit/digests/*",
        "/audit/events/*",
        "/audit/quarantine/*",
        "/audit/state/*",
    ]
    assert _ref(sink_sids["DetectionCounters"]["Resource"]).startswith("CountersTable")


def test_tables_on_demand_pitr_cmk(synth: Synth) -> None:
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert len(tables) == 2
    for res in tables.values():
        props = res["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"
        assert _ref(props["SSESpecification"]["KMSMasterKeyId"]).startswith("DataKey")
        assert props["DeletionProtectionEnabled"] is True
        assert res["DeletionPolicy"] == "Retain"
        assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]


def test_counters_ttl_is_expires_at(synth: Synth) -> None:
    from gatekeeper.store.tables import TTL_ATTRIBUTE

    ttl = {
        k.split("Table")[0]: r["Properties"].get("TimeToLiveSpecification")
        for k, r in synth.of_type("AWS::DynamoDB::Table").items()
    }
    assert ttl["Counters"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert ttl["Config"] is None


def test_stream_topic_logs_encrypted(synth: Synth) -> None:
    (stream,) = synth.of_type("AWS::Kinesis::Stream").values()
    enc = stream["Properties"]["StreamEncryption"]
    assert enc["EncryptionType"] == "KMS" and _ref(enc["KeyId"]).startswith("DataKey")
    assert synth.of_type("AWS::SQS::Queue") == {}  # failed batches go to S3 (whole, replayable)
    (topic,) = synth.of_type("AWS::SNS::Topic").values()
    assert _ref(topic["Properties"]["KmsMasterKeyId"]).startswith("DataKey")
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert len(groups) >= 6
    for logical_id, res in groups.items():
        assert _ref(res["Properties"]["KmsKeyId"]).startswith("DataKey"), logical_id
        assert res["Properties"]["RetentionInDays"] > 0, logical_id


def test_keys(synth: Synth) -> None:
    keys = synth.of_type("AWS::KMS::Key")
    data = next(r for k, r in keys.items() if k.startswith("DataKey"))
    assert data["Properties"]["EnableKeyRotation"] is True
    signing = next(r for k, r in keys.items() if k.startswith("DigestSigningKey"))
    assert signing["Properties"]["KeySpec"] == "RSA_2048"
    assert signing["Properties"]["KeyUsage"] == "SIGN_VERIFY"


def test_buckets(synth: Synth) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    archive = next(r for k, r in buckets.items() if k.startswith("ArchiveBucket"))["Properties"]
    rule = archive["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _ref(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]).startswith("DataKey")
    assert rule["BucketKeyEnabled"] is True
    assert archive["VersioningConfiguration"]["Status"] == "Enabled"
    # Object Lock on, no default retention: the sink locks write-once objects itself
    assert archive["ObjectLockEnabled"] is True
    assert archive["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    transitions = [
        t["StorageClass"]
        for r in archive["LifecycleConfiguration"]["Rules"]
        for t in r.get("Transitions", [])
    ]
    assert transitions == ["GLACIER_IR", "DEEP_ARCHIVE"]
    for res in buckets.values():
        block = res["Properties"]["PublicAccessBlockConfiguration"]
        assert all(block[k] for k in block), block
        # access logs bucket: SSE-S3, because S3 log delivery cannot write SSE-KMS objects
        assert res["Properties"]["BucketEncryption"]
    for policy in synth.of_type("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_object_lock_variant(synth_variant: Synth) -> None:
    """objectLockDays is the sink's per-object retention, never a bucket default."""
    archive = next(
        r for k, r in synth_variant.of_type("AWS::S3::Bucket").items() if k.startswith("Archive")
    )["Properties"]
    assert archive["ObjectLockEnabled"] is True
    assert "Rule" not in archive["ObjectLockConfiguration"]
    (sink,) = [
        r["Properties"]["Environment"]["Variables"]
        for k, r in synth_variant.of_type("AWS::Lambda::Function").items()
        if k.startswith("AuditSink") and "Environment" in r["Properties"]
    ]
    assert sink["GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS"] == "30"


def test_topic_tls_only(synth: Synth) -> None:
    (policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s) for s in statements)
