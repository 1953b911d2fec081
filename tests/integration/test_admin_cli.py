"""The admin CLI against moto: authorization as code, keys, usage and blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatekeeper import cli
from gatekeeper.admin import access_file
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import ApiRoutes
from gatekeeper.store import tables
from gatekeeper.store.config_store import DynamoConfigStore
from tests.conftest import COUNTERS, TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "access.yaml"
AWS = ["--config-table", TABLE, "--counters-table", COUNTERS]
CHANGES = {
    ("policy", "apply"),
    ("keys", "create"),
    ("keys", "revoke"),
    ("keys", "rotate"),
    ("usage", "reset"),
    ("block", "add"),
    ("block", "remove"),
    ("certs", "map"),
    ("certs", "revoke"),
    ("signing-keys", "add"),
}


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CLI changes are audited into a file by default: keep it in the test's directory."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("GATEKEEPER_AUDIT_LOG", str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Global options before the command (as a person types them); --actor only on changes."""
    actor = ["--actor", "tester"] if tuple(argv[:2]) in CHANGES else []
    code = cli.main([*AWS, *argv, *actor])
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_then_export_round_trips_the_sample_exactly(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE))
    assert code == 0 and "to create, 0 to update, 0 to delete" in out
    code, out, _ = run(capsys, "policy", "apply", "-f", str(SAMPLE))
    assert code == 0 and "Applied" in out
    exported = tmp_path / "exported.yaml"
    code, _, _ = run(capsys, "policy", "export", "-o", str(exported))
    assert code == 0
    assert exported.read_text() == SAMPLE.read_text()
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE), "--detailed-exitcode")
    assert code == 0
    assert out.startswith("No changes.")


def test_plan_shows_and_apply_applies_exactly_the_diff(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "policy", "apply", "-f", str(SAMPLE))[0] == 0
    store = DynamoConfigStore(dynamodb, TABLE)
    # a key made outside the file: apply must leave it (keys are not in the file)
    assert run(capsys, "keys", "create", "--principal", "svc:x")[0] == 0
    text = SAMPLE.read_text()
    text = text.replace(
        "  public:\n    permissions:\n    - methods: [GET]\n      path: /health\n",
        "  public:\n    permissions:\n    - methods: [GET, HEAD]\n      path: /health\n",
    )
    text = text.replace(
        "- principal_id: corp:bob\n  tenant: globex\n  roles: [orders-reader]\n", ""
    )
    text = text.replace(
        "limits:\n", "limits:\n- rule_id: new-rule\n  scope: global\n  limit: 5\n  window: second\n"
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(text)
    code, out, _ = run(capsys, "policy", "plan", "-f", str(changed), "--detailed-exitcode")
    assert code == 2
    assert "~ update role public" in out
    assert any(line.strip().startswith("+") and '"HEAD"' in line for line in out.splitlines())
    assert "- delete assignment corp:bob@globex" in out
    assert "+ create limit new-rule" in out
    assert "Plan: 1 to create, 1 to update, 1 to delete." in out
    version = store.get_version()
    code, _, err = run(capsys, "policy", "apply", "-f", str(changed), "--json")
    assert code == 1 and "deletes 1 item(s)" in err and "--yes" in err  # not without --yes
    assert store.get_version() == version
    code, out, _ = run(capsys, "policy", "apply", "-f", str(changed), "--json", "--yes")
    assert code == 0
    result = json.loads(out)
    assert len(result["applied"]) == 3 and result["config_version"] == version + 1
    assert store.get_assignments("corp:bob") == ()
    assert store.load_snapshot().roles["public"].permissions[0].methods == ("GET", "HEAD")
    assert run(capsys, "policy", "plan", "-f", str(changed))[1].startswith("No changes.")
    [key] = json.loads(run(capsys, "keys", "list", "--json")[1])  # untouched by apply
    assert key["principal_id"] == "svc:x" and key["status"] == "active"


def test_unmanaged_sections_are_left_alone(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = DynamoConfigStore(dynamodb, TABLE)
    store.put(LimitRule(rule_id="kept", scope="global", limit=1, window="second"))
    only_roles = tmp_path / "roles.yaml"
    only_roles.write_text("roles:\n  reader: {permissions: [{methods: [GET], path: /x}]}\n")
    code, out, _ = run(capsys, "policy", "apply", "-f", str(only_roles))
    assert code == 0 and "+ create role reader" in out and "limit" not in out
    assert [r.rule_id for r in store.load_snapshot().limits] == ["kept"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("roles:\n  a: {inherits: [b]}\n  b: {inherits: [a]}\n", "cycle"),
        ("roles:\n  a: {permissions: [{path: nope}]}\n", "roles.a.permissions.0.path"),
        ("assignments: [{principal_id: p, tenant: t, roles: [ghost]}]\n", "unknown role 'ghost'"),
        ("rolez: {}\n", "rolez"),
        ("- just a list\n", "mapping"),
    ],
)
def test_invalid_files_fail_clearly(
    dynamodb: DynamoDBClient,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, _, err = run(capsys, "policy", "apply", "-f", str(bad))
    assert code == 1 and message in err, err
    assert DynamoConfigStore(dynamodb, TABLE).get_version() == 0


def test_missing_table_and_file_are_clear_errors(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKEEPER_CONFIG_TABLE", raising=False)
    assert cli.main(["policy", "export"]) == 1
    assert "--config-table" in capsys.readouterr().err
    code, _, err = run(capsys, "policy", "plan", "-f", "/nonexistent.yaml")
    assert code == 1 and "nonexistent.yaml" in err


def test_keys_commands(dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "keys", "create", "--principal", "svc:ci", "--tenant", "acme", "--json"
    )
    assert code == 0
    created = json.loads(out)
    key_id, plaintext = created["key"]["key_id"], created["api_key"]
    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and key_id in out and plaintext not in out and "KEY_ID" in out
    code, out, _ = run(capsys, "keys", "rotate", key_id, "--grace", "60")
    assert code == 0 and "New API key (shown once" in out and "in_grace" in out
    code, out, _ = run(capsys, "keys", "revoke", key_id)
    assert code == 0 and "revoked" in out
    code, _, err = run(capsys, "keys", "revoke", "0123456789abcdef")
    assert code == 1 and "not_found" in err
    code, _, err = run(capsys, "keys", "rotate", key_id)
    assert code == 1 and "conflict" in err


def test_usage_and_block_commands(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    DynamoConfigStore(dynamodb, TABLE).put(
        LimitRule(rule_id="per-ip", scope="ip", limit=10, window="day")
    )
    import time

    start = int(time.time()) // 86_400 * 86_400
    dynamodb.put_item(
        TableName=COUNTERS,
        Item={
            **{k: {"S": v} for k, v in tables.counter_key("per-ip", "10.0.0.1", start).items()},
            "count": {"N": "4"},
        },
    )
    code, out, _ = run(capsys, "usage", "show", "per-ip", "10.0.0.1")
    assert code == 0 and "4 of 10" in out and "6 remaining" in out
    code, out, _ = run(capsys, "usage", "reset", "per-ip", "10.0.0.1", "--json")
    assert code == 0 and json.loads(out)["deleted_items"] == 1
    assert "0 of 10" in run(capsys, "usage", "show", "per-ip", "10.0.0.1")[1]
    assert run(capsys, "usage", "show", "nope", "x")[0] == 1

    code, out, _ = run(capsys, "block", "add", "198.51.100.7", "--for", "120", "--reason", "scan")
    assert code == 0 and "Blocked 198.51.100.7" in out
    code, out, _ = run(capsys, "block", "list", "--json")
    [block] = json.loads(out)
    assert block["ip"] == "198.51.100.7" and block["reason"] == "scan" and block["active"]
    assert run(capsys, "block", "remove", "198.51.100.7")[0] == 0
    code, out, _ = run(capsys, "block", "remove", "198.51.100.7")  # twice: nothing to do
    assert code == 0 and "nothing to remove" in out
    code, _, err = run(capsys, "block", "add", "not-an-ip")
    assert code == 1 and "field: ip" in err


def test_committed_json_schema_matches_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    committed = json.loads((ROOT / "schemas" / "access.schema.json").read_text())
    assert committed == access_file.json_schema(), (
        "regenerate: gatekeeper policy schema > schemas/access.schema.json"
    )
    assert cli.main(["policy", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == committed


def test_role_spec_has_every_field_of_role_but_the_name() -> None:
    from gatekeeper.admin.access_file import RoleSpec
    from gatekeeper.rbac.model import Role

    assert set(RoleSpec.model_fields) == set(Role.model_fields) - {"name"}


def test_the_sample_is_canonical() -> None:
    text = SAMPLE.read_text()
    assert access_file.render(access_file.parse(text)) == text


def test_cli_against_a_local_endpoint(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--endpoint-url: the same commands against a DynamoDB-compatible server process."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    config, counters = "cli-endpoint-config", "cli-endpoint-counters"
    client.create_table(**tables.table_definition(config))  # type: ignore[arg-type]
    client.create_table(**tables.counters_table_definition(counters))  # type: ignore[arg-type]
    remote = [
        "--endpoint-url", moto_endpoint, "--region", "us-east-1",
        "--config-table", config, "--counters-table", counters,
    ]  # fmt: skip
    assert cli.main(["policy", "apply", "-f", str(SAMPLE), "--actor", "t", *remote]) == 0
    assert cli.main(["policy", "plan", "-f", str(SAMPLE), *remote]) == 0
    assert "No changes." in capsys.readouterr().out
    assert cli.main(["keys", "create", "--principal", "svc:remote", "--json", *remote]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["api_key"].startswith("gk_")
    assert cli.main(["keys", "list", "--json", *remote]) == 0
    listed = capsys.readouterr().out
    assert created["key"]["key_id"] in listed and created["api_key"] not in listed
    assert DynamoConfigStore(client, config).get_version() > 0


def test_cli_changes_are_audited_and_keys_use_the_configured_prefix(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    from gatekeeper.audit.event import AuditEvent

    code, out, err = run(
        capsys, "keys", "create", "--principal", "svc:p", "--json", "--api-key-prefix", "acme"
    )
    assert code == 0
    created = json.loads(out)
    assert created["api_key"].startswith("acme_")
    assert "audit" not in err  # never mixed into the command's output
    [line] = [json.loads(x) for x in audit_log.read_text().splitlines()]
    event = AuditEvent.model_validate(line["audit"])
    assert event.event_type == "admin_change" and event.change is not None
    assert event.change.source == "cli" and event.principal_id == "tester"
    assert created["api_key"] not in audit_log.read_text()  # never the secret


def test_cli_audits_into_the_audit_stream_when_named(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from gatekeeper.audit.event import AuditEvent

    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName="audit", ShardCount=1)
    code, _, err = run(capsys, "keys", "create", "--principal", "svc:p", "--audit-stream", "audit")
    assert code == 0 and '"audit"' not in err  # delivered to the stream, no fallback line
    shard = kinesis.describe_stream(StreamName="audit")["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(
        StreamName="audit", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=iterator)["Records"]
    event = AuditEvent.model_validate_json(record["Data"])
    assert event.event_type == "admin_change" and event.change is not None
    assert event.change.operation == "create"


def _cdk_catalog(dynamodb: DynamoDBClient, api_id: str, stage: str) -> None:
    """What the CDK construct's custom resource writes (see authorizer_construct.py)."""
    doc = json.dumps({"api_id": api_id, "stage": stage, "routes": ["GET /orders"]})
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "RBAC"},
            "sk": {"S": f"API#{api_id}#{stage}"},
            "doc": {"S": doc},
            "kind": {"S": "ApiRoutes"},
            "managed_by": {"S": "cdk:Gatekeeper"},
        },
    )


def test_apply_keeps_the_catalogs_the_cdk_construct_owns(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's deploy walk-through: cdk deploy writes catalogs, then the sample is applied."""
    _cdk_catalog(dynamodb, "restapi123", "prod")
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE))
    assert code == 0 and "keep api restapi123/prod (managed by cdk:Gatekeeper)" in out
    assert "delete" not in out.replace("0 to delete", "")
    code, out, _ = run(capsys, "policy", "apply", "-f", str(SAMPLE), "--json")
    assert code == 0  # no deletion, so no --yes needed
    assert json.loads(out)["kept"] == [
        {"resource_type": "api", "resource_id": "restapi123/prod", "owner": "cdk:Gatekeeper"}
    ]
    apis = {(a.api_id, a.stage) for a in DynamoConfigStore(dynamodb, TABLE).load_snapshot().apis}
    assert ("restapi123", "prod") in apis
    # an unmarked catalog the file does not list is still managed by the file: deleted
    DynamoConfigStore(dynamodb, TABLE).put(
        ApiRoutes(api_id="manual", stage="dev", routes=("GET /x",))
    )
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE))
    assert "- delete api manual/dev" in out and "keep api restapi123/prod" in out


def test_an_empty_section_that_deletes_everything_needs_force(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "policy", "apply", "-f", str(SAMPLE))[0] == 0
    store = DynamoConfigStore(dynamodb, TABLE)
    version = store.get_version()
    empty = tmp_path / "empty.yaml"
    empty.write_text("limits: []\n")
    code, _, err = run(capsys, "policy", "plan", "-f", str(empty))
    assert code == 1 and "limits: [] deletes all" in err and "--force" in err
    code, _, err = run(capsys, "policy", "apply", "-f", str(empty), "--yes")
    assert code == 1 and store.get_version() == version
    code, out, _ = run(capsys, "policy", "apply", "-f", str(empty), "--yes", "--force")
    assert code == 0 and "- delete limit" in out
    assert store.load_snapshot().limits == ()


def test_duplicate_keys_are_an_error_naming_the_line_unless_forced(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text("roles:\n  a: {description: one}\n  a: {description: two}\n")
    code, _, err = run(capsys, "policy", "apply", "-f", str(dup))
    assert code == 1 and f"{dup}: line 3, column 3: duplicate key 'a'" in err
    assert DynamoConfigStore(dynamodb, TABLE).get_version() == 0
    code, _, _ = run(capsys, "policy", "apply", "-f", str(dup), "--force")
    assert code == 0
    assert DynamoConfigStore(dynamodb, TABLE).load_snapshot().roles["a"].description == "two"


def test_permissions_matching_no_catalogued_route_are_warned_about(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = SAMPLE.read_text().replace("path: /health", "path: /helth")
    typo = tmp_path / "typo.yaml"
    typo.write_text(text)
    code, _, err = run(capsys, "policy", "plan", "-f", str(typo))
    assert code == 0
    assert "warning: permission matches no catalogued route: public: GET /helth" in err
    assert "warning" not in run(capsys, "policy", "plan", "-f", str(SAMPLE))[2]


def test_claim_mappings_read_as_claims_and_export_json_is_json(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE))
    assert "+ create claim_mapping scope=orders:read (issuer: any)" in out
    assert "+ create claim_mapping groups=platform-admins (issuer: corp)" in out
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE), "--json")
    labels = {
        c["label"] for c in json.loads(out)["changes"] if c["resource_type"] == "claim_mapping"
    }
    assert labels == {"scope=orders:read (issuer: any)", "groups=platform-admins (issuer: corp)"}
    assert run(capsys, "policy", "apply", "-f", str(SAMPLE))[0] == 0
    code, out, _ = run(capsys, "policy", "export", "--json")
    exported = json.loads(out)
    assert code == 0 and exported["version"] == 1
    assert exported == json.loads(json.dumps(access_file.parse(SAMPLE.read_text()).model_dump(
        mode="json", exclude_defaults=True, exclude_none=True
    ) | {"version": 1}))  # fmt: skip


def test_a_missing_audit_stream_stops_the_change_before_it_is_made(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "keys", "create", "--principal", "svc:p", "--audit-stream", "nope")
    assert code == 1 and "stream 'nope' not found" in err
    code, out, _ = run(capsys, "keys", "list", "--json")
    assert json.loads(out) == []


def test_revoking_twice_succeeds(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "keys", "create", "--principal", "svc:p", "--json")
    key_id = json.loads(out)["key"]["key_id"]
    for _ in range(2):
        code, out, _ = run(capsys, "keys", "revoke", key_id)
        assert code == 0 and f"Key {key_id} is revoked." in out


@pytest.mark.parametrize(("answer", "applied"), [("yes", True), ("n", False), ("", False)])
def test_on_a_terminal_apply_asks_before_deleting(
    answer: str,
    applied: bool,
    dynamodb: DynamoDBClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import sys

    assert run(capsys, "policy", "apply", "-f", str(SAMPLE))[0] == 0
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(SAMPLE.read_text().replace("- rule_id: login-per-ip", "- rule_id: renamed"))
    asked: list[str] = []

    def reply(prompt: str) -> str:
        asked.append(prompt)
        return answer

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", reply)
    code, _, err = run(capsys, "policy", "apply", "-f", str(fewer))
    assert asked == ["Delete 1 item(s) as shown? Type 'yes' to apply: "]
    limits = {r.rule_id for r in DynamoConfigStore(dynamodb, TABLE).load_snapshot().limits}
    assert (code, "renamed" in limits, "login-per-ip" in limits) == (
        (0, True, False) if applied else (1, False, True)
    )
    assert applied or "not confirmed" in err


def test_a_failed_put_into_the_audit_stream_exits_1_and_keeps_the_event(
    dynamodb: DynamoDBClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    audit_log: Path,
) -> None:
    import boto3
    import botocore.client

    boto3.client("kinesis", region_name="us-east-1").create_stream(StreamName="audit", ShardCount=1)
    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def failing_puts(self: object, operation: str, params: dict[str, object]) -> object:
        if operation == "PutRecords":
            raise ConnectionError("the stream is unreachable")
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", failing_puts)
    monkeypatch.delenv("GATEKEEPER_AUDIT_LOG")
    rescue = audit_log.parent / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(rescue))
    code, out, err = run(capsys, "block", "add", "203.0.113.9", "--audit-stream", "audit")
    assert code == 1 and "Blocked 203.0.113.9" in out  # the change was made...
    [line] = err.strip().splitlines()  # ...and the operator is told, in one line
    assert "1 audit event(s) could not be put into stream 'audit'" in line
    rescued = rescue / "gatekeeper" / "audit.jsonl"
    assert f"written to {rescued} instead" in line
    assert '"admin_change"' in rescued.read_text()


def test_a_key_prefix_the_authorizer_would_refuse_mints_nothing(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "keys", "create", "--principal", "svc:p", "--api-key-prefix", "GK-bad"
    )
    assert code == 1 and "invalid API key prefix 'GK-bad'" in err
    assert json.loads(run(capsys, "keys", "list", "--json")[1]) == []


def test_certificate_rules_are_managed_by_the_file_and_credentials_never_are(
    dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from gatekeeper.testing.signing import public_pem

    code, out, _ = run(capsys, "policy", "apply", "-f", str(SAMPLE))
    assert code == 0
    assert "+ create cert_mapping san=URI:spiffe://example.com/orders (issuer: CN=Example" in out
    store = DynamoConfigStore(dynamodb, TABLE)
    [rule] = store.load_snapshot().cert_mappings
    assert rule.principal_id == "svc:orders" and rule.roles == ("orders-clerk",)
    # credentials and revocations made from the CLI are not the file's to manage
    pub = tmp_path / "caller.pub"
    pub.write_text(public_pem(Ed25519PrivateKey.generate()))
    assert run(capsys, "signing-keys", "add", "k1", "--public-key", str(pub),
               "--principal", "svc:x")[0] == 0  # fmt: skip
    assert run(capsys, "certs", "revoke", "--fingerprint", "ab" * 32)[0] == 0
    # a rule made outside the file, in a section the file manages, is planned for deletion
    assert run(capsys, "certs", "map", "--fingerprint", "cd" * 32, "--principal", "svc:y")[0] == 0
    code, out, _ = run(capsys, "policy", "plan", "-f", str(SAMPLE))
    assert f"- delete cert_mapping fingerprint={'cd' * 32} (issuer: any)" in out
    assert "signing" not in out and "revocation" not in out
    assert run(capsys, "policy", "apply", "-f", str(SAMPLE), "--yes")[0] == 0
    snapshot = store.load_snapshot()
    assert [m.principal_id for m in snapshot.cert_mappings] == ["svc:orders"]
    assert list(snapshot.signing_keys) == ["k1"] and len(snapshot.cert_revocations) == 1
    # a file without the section leaves the rules alone; an unknown role is refused
    only_roles = tmp_path / "roles.yaml"
    only_roles.write_text(SAMPLE.read_text().split("\ncert_mappings:")[0] + "\n")
    code, out, _ = run(capsys, "policy", "plan", "-f", str(only_roles))
    assert code == 0 and "cert_mapping" not in out
    ghost = tmp_path / "ghost.yaml"
    ghost.write_text(
        "roles: {r: {}}\ncert_mappings: [{match: san, value: 'DNS:a', principal_id: p, "
        "roles: [ghost]}]\n"
    )
    code, _, err = run(capsys, "policy", "plan", "-f", str(ghost))
    assert code == 1 and "cert_mappings: unknown role 'ghost'" in err
    openssl_style = tmp_path / "dn.yaml"
    openssl_style.write_text(
        "cert_mappings: [{match: subject_dn, value: 'CN = svc, O = Example', principal_id: p}]\n"
    )
    code, _, err = run(capsys, "policy", "plan", "-f", str(openssl_style))
    assert code == 1 and "not an RFC 4514 DN" in err
