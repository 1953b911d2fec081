"""An audit archive written by the REAL handlers, one of every record kind the sink archives.

The authorizer handler (``functions/authorizer/handler.py``) decides allow, deny (RBAC),
rate-limited, blocked (an IP block the admin API set) and unauthorized requests (a forged token,
an unknown API key, a malformed event); the admin handler (``functions/admin/handler.py``) and
the CLI make admin changes. Their log lines (the CLI's audit log file) go through the audit sink
handler (``functions/audit_sink/handler.py``) as a CloudWatch Logs subscription in Kinesis (the
CLI's as direct Kinesis records), into moto S3. Used by the OCSF validation and the
``archive query`` tests: the records are exactly what the deployed sink writes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from gatekeeper import cli
from gatekeeper.audit.event import AuditEvent
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.testing.audit_events import direct_payload, kinesis_event, subscription_payloads
from gatekeeper.testing.events import http_api_event, rest_request_event, rest_token_event
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import COUNTERS, TABLE, World
from tests.integration.admin_helpers import call
from tests.integration.test_admin_handler import load_admin_handler
from tests.integration.test_audit_pipeline import load_sink_handler

BUCKET = "gatekeeper-audit-demo"
PREFIX = "audit/"
BLOCKED_IP = "192.0.2.66"


@dataclass
class DemoArchive:
    bucket: str
    prefix: str
    events: dict[str, AuditEvent]  # event id → the event the producer emitted
    kinds: dict[str, str]  # event id → record kind (allow, deny, rate_limited, …)
    sink: ModuleType

    def objects(self) -> dict[str, bytes]:
        s3 = boto3.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k: s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}

    def rows(self) -> list[dict[str, Any]]:
        """Every archived OCSF record (the Athena table's rows)."""
        return [
            json.loads(line)
            for key, body in self.objects().items()
            if key.startswith(f"{self.prefix}events/")
            for line in gzip.decompress(body).splitlines()
            if line
        ]

    def download(self, folder: Path) -> Path:
        """The archive as a local folder (what ``aws s3 sync s3://B/audit/ folder`` gives)."""
        for key, body in self.objects().items():
            path = folder / key.removeprefix(self.prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        return folder


def _audit_lines(log: io.StringIO) -> list[str]:
    lines = log.getvalue().splitlines()
    log.seek(0)
    log.truncate()
    return lines


def _kind(audit: dict[str, Any]) -> str:
    if audit.get("event_type") == "admin_change":
        return "admin_change"
    if audit["decision"] == "unauthorized":
        return "unauthorized"
    if audit["reason"] in {"rate_limited", "blocked"}:
        return str(audit["reason"])
    return str(audit["decision"])


def _admin_changes(admin: ModuleType) -> None:
    """Through the admin API: a role (created, then deleted), an IP block, two limit rules."""
    rules = [
        LimitRule(rule_id="one-per-minute", scope="principal", limit=1, window="minute",
                  match={"methods": ["POST"]}),
        LimitRule(rule_id="key-one-per-minute", scope="api_key", limit=1, window="minute",
                  match={"methods": ["GET"], "path": "/orders/42"}),
    ]  # fmt: skip
    changes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PUT", "/roles/auditor", {"name": "auditor"}),
        ("PUT", f"/blocks/{BLOCKED_IP}", {"seconds": 600, "reason": "demo"}),
        *(
            ("PUT", f"/limits/{rule.rule_id}", rule.model_dump(mode="json", exclude_none=True))
            for rule in rules
        ),
    ]
    etag = ""
    for method, path, body in changes:
        reply = call(admin.lambda_handler, method, path, body=body)
        assert reply.status < 300, reply.body
        etag = etag or reply.headers.get("ETag", "")
    reply = call(admin.lambda_handler, "DELETE", "/roles/auditor", headers={"If-Match": etag})
    assert reply.status < 300, reply.body


def build_demo_archive(
    world: World,
    authorizer: tuple[ModuleType, io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> DemoArchive:
    """Drive the handlers (inside the world's ``mock_aws``) and archive what they logged."""
    module, auth_log = authorizer
    monkeypatch.setenv("GATEKEEPER_COUNTERS_TABLE", COUNTERS)
    monkeypatch.setenv("GATEKEEPER_BLOCK_CACHE_SECONDS", "0")
    module.__dict__["_authorizer"] = None  # rebuilt with the counters table
    admin = load_admin_handler()
    admin_log = io.StringIO()
    admin.logger.logger_handler.setStream(admin_log)

    _admin_changes(admin)

    def authorize(request: dict[str, Any]) -> None:
        with contextlib.suppress(module.Unauthorized):
            module.lambda_handler(request, LocalLambdaContext())

    token = f"Bearer {world.token()}"
    authorize(rest_token_event(token, "GET", "/orders"))  # allow (TOKEN)
    authorize(rest_request_event({"Authorization": token}, "GET", "/orders/7"))  # allow
    authorize(http_api_event({"authorization": token}, "GET", "/orders"))  # allow (HTTP API)
    authorize(rest_request_event({"Authorization": token}, "GET", "/admin/users"))  # deny
    authorize(rest_request_event({"Authorization": token}, "POST", "/orders"))  # allow (counted)
    authorize(rest_request_event({"Authorization": token}, "POST", "/orders"))  # rate limited
    authorize(rest_request_event({"Authorization": token}, "GET", "/", source_ip=BLOCKED_IP))
    authorize(rest_request_event({"x-api-key": world.keys.active}, "GET", "/orders"))  # allow
    authorize(rest_request_event({"x-api-key": world.keys.active}, "GET", "/orders/42"))  # allow
    authorize(rest_request_event({"x-api-key": world.keys.active}, "GET", "/orders/42"))  # limited
    authorize(rest_request_event({"x-api-key": world.keys.revoked}, "GET", "/orders"))  # 401
    authorize(rest_request_event({"x-api-key": world.keys.active[:-4] + "AAAA"}, "GET", "/"))
    authorize(rest_token_event(token[:-10] + "AAAAAAAAAA", "DELETE", "/orders/1"))  # 401
    authorize(rest_request_event({}, "GET", "/orders"))  # missing credentials: 401
    authorize({"type": "REQUEST", "methodArn": "garbage"})  # a malformed event: 401

    # an admin change from the CLI (no source IP, actor cli:…), delivered as direct records
    cli_log = tmp_path / "cli-audit.jsonl"
    code = cli.main(["--config-table", TABLE, "--counters-table", COUNTERS, "block", "add",
                     "198.51.100.99", "--for", "15m", "--reason", "demo", "--actor", "cli:ops",
                     "--audit-log", str(cli_log)])  # fmt: skip
    assert code == 0
    cli_lines = cli_log.read_text().splitlines()
    cli_events = [AuditEvent.model_validate(json.loads(x)["audit"]) for x in cli_lines]

    lines = _audit_lines(admin_log) + _audit_lines(auth_log)
    audits = [a for a in (json.loads(x).get("audit") for x in lines if x.startswith("{")) if a]
    audits += [e.model_dump(mode="json") for e in cli_events]
    events = {a["event_id"]: AuditEvent.model_validate(a) for a in audits}
    kinds = {a["event_id"]: _kind(a) for a in audits}

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("GATEKEEPER_AUDIT_BUCKET", BUCKET)
    monkeypatch.setenv("GATEKEEPER_AUDIT_PREFIX", PREFIX)
    monkeypatch.setenv("GATEKEEPER_AUDIT_DIGEST_INTERVAL_SECONDS", "0")
    sink = load_sink_handler()
    payloads = subscription_payloads(["START RequestId: 1 Version: $LATEST", *lines], per_record=5)
    response = sink.lambda_handler(kinesis_event(payloads), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    direct = [direct_payload(e) for e in cli_events]
    response = sink.lambda_handler(
        kinesis_event(direct, first=len(payloads), shard="shardId-000000000001"),
        LocalLambdaContext(),
    )
    assert response == {"batchItemFailures": []}
    return DemoArchive(BUCKET, PREFIX, events, kinds, sink)


@pytest.fixture
def demo_archive(
    world: World,
    handler: tuple[ModuleType, io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> DemoArchive:
    return build_demo_archive(world, handler, monkeypatch, tmp_path)
