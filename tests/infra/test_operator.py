"""What the CLI needs from a deployed stack: outputs, and a least-privilege operator policy."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


def _ref(value: Any) -> str:
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def test_outputs_name_everything_the_cli_needs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    expected = {
        "ConfigTableName": "ConfigTable",
        "CountersTableName": "CountersTable",
        "ArchiveBucketName": "ArchiveBucket",
        "AuditStreamName": "AuditStream",
        "DigestSigningKeyArn": "DigestSigningKey",
        "DigestSigningKeyId": "DigestSigningKey",
        "OperatorPolicyArn": "OperatorPolicy",
        "AuditSinkFunctionName": "AuditSink",
        "FailureBucketName": "FailedBatchesBucket",
    }
    for name, target in expected.items():
        assert _ref(outputs[name]["Value"]).startswith(target), name
    assert outputs["DigestSigningKeyArn"]["Value"]["Fn::GetAtt"][1] == "Arn"
    assert outputs["ArchivePrefix"]["Value"] == "audit/"
    assert outputs["Region"]["Value"] == {"Ref": "AWS::Region"}
    assert "AdminApiUrl" in outputs


def test_every_output_the_cli_reads_exists(synth: Synth) -> None:
    """``--stack-outputs`` fills CLI options from these names (gatekeeper.commands._admin)."""
    from gatekeeper.commands._admin import STACK_OUTPUTS

    assert STACK_OUTPUTS["function"] == "AuditSinkFunctionName"  # archive replay --function
    assert set(STACK_OUTPUTS.values()) <= set(synth.template["Outputs"])


def test_archive_prefix_output_is_the_sinks_prefix(synth: Synth) -> None:
    (sink,) = [
        r["Properties"]
        for k, r in synth.of_type("AWS::Lambda::Function").items()
        if k.startswith("AuditSink") and "Environment" in r["Properties"]
    ]
    prefix = sink["Environment"]["Variables"]["GATEKEEPER_AUDIT_PREFIX"]
    assert synth.template["Outputs"]["ArchivePrefix"]["Value"] == prefix


def _operator_statements(synth: Synth) -> dict[str, dict[str, Any]]:
    (policy,) = synth.of_type("AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    return {s["Sid"]: s for s in statements}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_operator_policy_is_exact(synth: Synth) -> None:
    by_sid = _operator_statements(synth)
    assert {sid: _actions(s) for sid, s in by_sid.items()} == {
        "ManageConfig": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DescribeTable",
        },
        "InspectCounters": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
        },
        "TablesKey": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
        "AuditCliChanges": {"kinesis:PutRecord", "kinesis:PutRecords"},
        "StreamKey": {"kms:GenerateDataKey"},
        "ListArchive": {"s3:ListBucket", "s3:ListBucketVersions"},
        "ArchiveVersioning": {"s3:GetBucketVersioning"},
        "ReadArchive": {"s3:GetObject", "s3:GetObjectVersion"},
        "ListFailedBatches": {"s3:ListBucket"},
        "ReadFailedBatches": {"s3:GetObject"},
        "ReplayToSink": {"lambda:InvokeFunction"},
        "ArchiveKey": {"kms:Decrypt"},
        "DigestPublicKey": {"kms:GetPublicKey", "kms:DescribeKey"},
        "StackOutputs": {"cloudformation:DescribeStacks"},
    }
    for statement in by_sid.values():
        assert statement["Effect"] == "Allow"


def test_operator_policy_targets_the_stacks_own_resources(synth: Synth) -> None:
    by_sid = _operator_statements(synth)
    assert _ref(by_sid["ManageConfig"]["Resource"]).startswith("ConfigTable")
    assert _ref(by_sid["InspectCounters"]["Resource"]).startswith("CountersTable")
    assert _ref(by_sid["AuditCliChanges"]["Resource"]).startswith("AuditStream")
    assert _ref(by_sid["DigestPublicKey"]["Resource"]).startswith("DigestSigningKey")
    assert by_sid["StackOutputs"]["Resource"] == {"Ref": "AWS::StackId"}
    for sid, service in (("TablesKey", "dynamodb"), ("StreamKey", "kinesis"), ("ArchiveKey", "s3")):
        statement = by_sid[sid]
        assert _ref(statement["Resource"]).startswith("DataKey"), sid
        via = "".join(
            str(p) for p in statement["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1]
        )
        assert via.startswith(f"{service}."), sid
    # the archive: read-only, and only under audit/
    assert _ref(by_sid["ListArchive"]["Resource"]).startswith("ArchiveBucket")
    assert by_sid["ListArchive"]["Condition"] == {"StringLike": {"s3:prefix": ["audit/*"]}}
    assert _ref(by_sid["ArchiveVersioning"]["Resource"]).startswith("ArchiveBucket")
    objects = by_sid["ReadArchive"]["Resource"]["Fn::Join"][1]
    assert _ref(objects[0]).startswith("ArchiveBucket") and objects[1] == "/audit/*"
    every_action = {a for s in by_sid.values() for a in _actions(s)}
    read_only = {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketVersioning",
    }
    assert {a for a in every_action if a.startswith("s3:")} == read_only
    assert "kms:Sign" not in every_action  # operators verify digests, never sign them


def test_operator_policy_can_replay(synth: Synth) -> None:
    """archive replay: read the failed batches, invoke the sink (nothing else in Lambda)."""
    by_sid = _operator_statements(synth)
    assert _ref(by_sid["ListFailedBatches"]["Resource"]).startswith("FailedBatchesBucket")
    objects = by_sid["ReadFailedBatches"]["Resource"]["Fn::Join"][1]
    assert _ref(objects[0]).startswith("FailedBatchesBucket") and objects[1] == "/*"
    assert by_sid["ReplayToSink"]["Resource"]["Fn::GetAtt"][0].startswith("AuditSink")
    assert by_sid["ReplayToSink"]["Resource"]["Fn::GetAtt"][1] == "Arn"
