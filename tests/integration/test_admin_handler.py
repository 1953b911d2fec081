"""The deployed admin handler: secrets shown once, never logged or stored; changes reach a warm
authorizer within the refresh bound; the committed OpenAPI document matches the code."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from gatekeeper.admin.api import document
from gatekeeper.admin.audit import ListAdminAuditEmitter
from gatekeeper.admin.service import AdminService
from gatekeeper.audit.event import AuditEvent
from gatekeeper.identity.api_keys import parse_key
from gatekeeper.testing.events import rest_token_event
from tests.conftest import COUNTERS, TABLE, World
from tests.integration.admin_helpers import call

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parents[2]


def load_admin_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "admin_handler_under_test", ROOT / "functions" / "admin" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, io.StringIO]:
    monkeypatch.setenv("GATEKEEPER_CONFIG_TABLE", TABLE)
    monkeypatch.setenv("GATEKEEPER_COUNTERS_TABLE", COUNTERS)
    module = load_admin_handler()
    log = io.StringIO()
    module.logger.logger_handler.setStream(log)
    return module, log


def all_items(client: DynamoDBClient) -> str:
    dump = []
    for table in (TABLE, COUNTERS):
        for page in client.get_paginator("scan").paginate(TableName=table):
            dump += page["Items"]
    return json.dumps(dump)


def test_key_secret_appears_in_exactly_one_response(
    handler: tuple[ModuleType, io.StringIO], world: World
) -> None:
    module, log = handler
    responses = []

    def api(method: str, path: str, **kwargs: Any) -> Any:
        reply = call(module.lambda_handler, method, path, **kwargs)
        responses.append(reply.raw)
        assert reply.status < 300, reply.body
        return reply.body

    created = api("POST", "/keys", body={"principal_id": "svc:ci", "roles": ["orders-reader"]})
    plaintext = created["api_key"]
    key_id = created["key"]["key_id"]
    rotated = api("POST", f"/keys/{key_id}/rotate", body={"grace_seconds": 60})
    new_plaintext = rotated["api_key"]
    api("GET", "/keys", query={"limit": "100"})
    api("GET", f"/keys/{key_id}")
    api("GET", f"/keys/{rotated['new']['key_id']}")
    api("POST", f"/keys/{key_id}/revoke")

    stored = all_items(world.client)
    logged = log.getvalue()
    assert '"audit"' in logged and "admin_change" in logged  # the log was captured
    for secret in (plaintext, new_plaintext):
        needles = [secret, parse_key(secret, "gk")[1]]
        for needle in needles:
            assert sum(needle in r for r in responses) == 1
            assert needle not in logged
            assert needle not in stored
    # the keys really work with the authorizer, so the needles were the real secrets
    world.clock.advance(10)
    result = world.authorizer.authorize(rest_token_event(new_plaintext, "GET", "/orders"))
    assert result.audit.decision == "allow"


def test_audit_lines_name_the_caller_and_digests(
    handler: tuple[ModuleType, io.StringIO], world: World
) -> None:
    module, log = handler
    reply = call(module.lambda_handler, "PUT", "/roles/auditor", body={"name": "auditor"})
    assert reply.status == 200
    [line] = [json.loads(x) for x in log.getvalue().splitlines() if '"audit"' in x]
    audit = AuditEvent.model_validate(line["audit"])  # the common schema the sink archives
    assert audit.event_type == "admin_change" and audit.change is not None
    assert audit.principal_id is not None and audit.principal_id.startswith("arn:aws:iam::")
    assert audit.change.actor_kind == "iam"
    assert audit.change.operation == "create" and audit.change.target == "auditor"
    assert audit.change.before_digest is None
    assert audit.change.after_digest == reply.etag.strip('"')
    assert audit.config_version == world.store.get_version()


def test_unconfigured_handler_answers_500_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEKEEPER_CONFIG_TABLE", raising=False)
    module = load_admin_handler()
    module.logger.logger_handler.setStream(io.StringIO())
    reply = call(module.lambda_handler, "GET", "/roles")
    assert reply.status == 500 and reply.body["error"]["code"] == "internal_error"


def test_role_change_through_the_api_reaches_a_warm_authorizer_within_the_bound(
    world: World,
) -> None:
    service = AdminService(world.store, emitter=ListAdminAuditEmitter(), clock=world.clock)
    from gatekeeper.admin.api import build_app

    app = build_app(lambda: service, admin_roles=lambda: frozenset({"gatekeeper-admin"}))
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/admin/users")
    assert world.authorizer.authorize(event).audit.decision == "deny"  # warm, and denied

    current = call(app, "GET", "/roles/tenant-analyst")
    role = {
        **current.body,
        "permissions": [*current.body["permissions"], {"methods": ["GET"], "path": "/admin/users"}],
    }
    changed = call(
        app,
        "PUT",
        "/roles/tenant-analyst",
        body=role,
        headers={"If-Match": current.etag},
        caller="admin",
    )
    assert changed.status == 200

    bound = world.authorizer._settings.config_refresh_seconds
    world.clock.advance(bound)
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/admin/users")
    assert world.authorizer.authorize(event).audit.decision == "allow"


def test_committed_openapi_document_matches_the_code() -> None:
    committed = (ROOT / "functions" / "admin" / "openapi.json").read_text()
    assert committed == document(), (
        "regenerate: python -m gatekeeper.admin.api > functions/admin/openapi.json"
    )
