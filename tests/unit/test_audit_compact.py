"""Compact audit lines: fewer bytes logged per decision, the same event read back."""

from __future__ import annotations

import io
import json

import pytest
from aws_lambda_powertools import Logger

from gatekeeper.audit.decode import Payload, decode_log_line
from gatekeeper.audit.emit import LogAuditEmitter, compact, compact_json
from gatekeeper.audit.event import AdminChange, AuditEvent, RateLimitInfo, iso_time

NOW = 1_800_000_000.0

EVENTS = {
    "allow with a rate limit": AuditEvent(
        time=iso_time(NOW),
        request_id="5df663f1-3a96-4158-8190-93992446f726",
        decision="allow",
        reason="allowed",
        principal_id="corp:alice",
        tenant="acme",
        auth_method="jwt",
        issuer="corp",
        roles=("orders-clerk", "orders-reader"),
        event_kind="rest_request",
        event_shape="request",
        api_id="a1b2c3d4e5",
        stage="prod",
        method="GET",
        path="/orders/o-1",
        route_key="GET /orders/{id}",
        source_ip="203.0.113.10",
        user_agent="curl/8.5.0",
        matched_rule="orders-reader#0",
        policy_scope="api",
        config_version=3,
        latency_ms=0.25,
        rate_limit=RateLimitInfo(
            rule_id="per-principal", counter=2, limit=100, remaining=98, reset_seconds=20.0
        ),
    ),
    "unauthorized, almost empty": AuditEvent(
        time=iso_time(NOW), decision="unauthorized", reason="invalid_token", latency_ms=0.0
    ),
    "rate limited, shadow rules, zeros and false kept apart from defaults": AuditEvent(
        time=iso_time(NOW),
        decision="deny",
        reason="rate_limited",
        roles=(),
        config_version=0,
        latency_ms=0.0,
        rate_limit=RateLimitInfo(
            rule_id="r",
            limited=True,
            counter=0,
            remaining=0,
            retry_after_seconds=3.0,
            shadow_limited=("s1",),
            errors=("e1",),
        ),
    ),
    "admin change": AuditEvent(
        event_type="admin_change",
        time=iso_time(NOW),
        decision="allow",
        reason="ok",
        latency_ms=1.0,
        change=AdminChange(operation="revoke", resource_type="api_key", target="0123abcd"),
    ),
}


@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS.keys())
def test_a_compact_event_reads_back_to_the_same_event(event: AuditEvent) -> None:
    again = AuditEvent.model_validate(json.loads(compact_json(event)))
    assert again == event
    assert again.model_dump(mode="json") == event.model_dump(mode="json")


@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS.keys())
def test_id_and_version_are_always_written(event: AuditEvent) -> None:
    body = compact(event)
    assert body["event_id"] == event.event_id
    assert body["schema_version"] == event.schema_version
    assert None not in body.values()


def test_the_log_line_is_what_the_sink_decodes() -> None:
    logger = Logger(service="test-compact")
    stream = io.StringIO()
    logger.logger_handler.setStream(stream)  # type: ignore[attr-defined]
    event = EVENTS["allow with a rate limit"]
    LogAuditEmitter(logger).emit(event)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["level"] == "INFO"
    item = decode_log_line(line)
    assert isinstance(item, Payload)
    assert AuditEvent.model_validate(item.data) == event


def test_the_line_is_much_smaller_than_the_full_dump() -> None:
    event = EVENTS["allow with a rate limit"]
    full = json.dumps({"audit": event.model_dump(mode="json")}, separators=(",", ":"))
    assert len(compact_json(event)) < 0.85 * len(full)
