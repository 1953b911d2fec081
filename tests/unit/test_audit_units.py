"""Pure pieces of the audit pipeline: schema, decoding, redaction, OCSF, positions, detection."""

from __future__ import annotations

import gzip
import json

import pytest
from pydantic import ValidationError

from gatekeeper.audit.archive import ShardState, chain_link, genesis_link, gzip_lines
from gatekeeper.audit.decode import Payload, Undecodable, decode_record, logs_subscription_data
from gatekeeper.audit.detect import (
    DetectionSettings,
    Detector,
    ListPublisher,
    MemoryWindowCounters,
    source_range,
)
from gatekeeper.audit.event import AuditEvent, RateLimitInfo
from gatekeeper.audit.ocsf import to_ocsf
from gatekeeper.audit.redact import MARK, redact, redact_text
from tests.audit_helpers import T0, event

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhbGljZSJ9.SGVsbG9TaWduYXR1cmVCeXRlcw"
KEY = "gk_0123456789abcdef_q9WzL3vR8sK2mN5pT7xY1bC4dF6gH0jA2eI8oU3yZ5w"


def test_schema_accepts_minor_versions_and_rejects_other_majors() -> None:
    base = event(1).model_dump(mode="json")
    for version in ("1", "1.1", "1.7"):
        assert AuditEvent.model_validate(base | {"schema_version": version})
    with pytest.raises(ValidationError, match="unsupported schema version"):
        AuditEvent.model_validate(base | {"schema_version": "2.0"})
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base | {"token": JWT})  # no field can hold a credential


def test_rate_limit_block_round_trips() -> None:
    info = RateLimitInfo(rule_id="per-key", limited=True, counter=101, limit=100, remaining=0,
                         reset_seconds=12, retry_after_seconds=12)  # fmt: skip
    loaded = AuditEvent.model_validate(event(1, rate_limit=info).model_dump(mode="json"))
    assert loaded.rate_limit == info
    assert to_ocsf(loaded)["unmapped"]["rate_limit"]["limited"] is True


def test_decode_subscription_skips_control_and_noise() -> None:
    line = json.dumps({"level": "INFO", "audit": event(1).model_dump(mode="json")})
    data = logs_subscription_data(
        ["START RequestId: x", f"2026-11-25T00:00:00Z\tabc\tINFO\t{line}"]
    )
    [item] = decode_record(data)
    assert isinstance(item, Payload) and item.data["event_id"] == event(1).event_id
    assert decode_record(logs_subscription_data(["CWL CONTROL MESSAGE"], control=True)) == []


def test_decode_direct_records_plain_wrapped_and_gzipped() -> None:
    body = event(2).model_dump(mode="json")
    for data in (json.dumps(body).encode(), json.dumps({"audit": body}).encode(),
                 gzip.compress(json.dumps(body).encode())):  # fmt: skip
        [item] = decode_record(data)
        assert isinstance(item, Payload) and item.data == body


@pytest.mark.parametrize("data", [b"\x1f\x8bnot-gzip", b"[1, 2]", b"plain text", b'{"audit": 3}'])
def test_undecodable_records_say_why(data: bytes) -> None:
    [item] = decode_record(data)
    assert isinstance(item, Undecodable) and item.error


AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example id, assembled at run time


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"/orders?jwt={JWT}", "/orders?jwt="),
        (f"Bearer {JWT}", "Bearer "),
        (KEY, "gk_0123456789abcdef_"),
        ("curl/8.0 authorization: Basic dXNlcjpwYXNzd29yZA==", "curl/8.0 authorization"),
        ("/login?password=hunter2hunter2", "/login?password="),
        (f"{AWS_KEY_ID} in a path", " in a path"),
    ],
)
def test_redaction_removes_credentials(text: str, kept: str) -> None:
    out = redact_text(text)
    assert MARK in out and kept in out
    for secret in (JWT, KEY.rsplit("_", 1)[1], "hunter2hunter2", "dXNlcjpwYXNzd29yZA==",
                   AWS_KEY_ID):  # fmt: skip
        assert secret not in out


@pytest.mark.parametrize(
    "text",
    ["corp:alice", "/orders/o-1001", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
     "0123456789abcdef0123456789abcdef", "GET /tenants/{tenantId}/reports"],
)  # fmt: skip
def test_redaction_keeps_ordinary_values(text: str) -> None:
    assert redact_text(text) == text


def test_redact_walks_structures_and_blanks_secret_keys() -> None:
    out = redact({"password": "p", "nested": [{"ua": f"x {JWT}"}], "n": 3})
    assert out == {"password": MARK, "nested": [{"ua": f"x {MARK}"}], "n": 3}


def test_ocsf_classes_and_base_fields() -> None:
    allow = to_ocsf(event(1))
    assert (allow["class_uid"], allow["activity_id"], allow["type_uid"]) == (6003, 2, 600302)
    assert allow["metadata"]["uid"] == event(1).event_id and allow["metadata"]["version"]
    assert allow["actor"]["user"]["uid"] == "corp:alice" and allow["src_endpoint"]["ip"]
    assert allow["status_id"] == 1 and allow["disposition"] == "Allowed"
    failed = to_ocsf(event(2, decision="unauthorized", reason="token_expired", principal_id=None))
    assert (failed["class_uid"], failed["category_uid"], failed["type_uid"]) == (3002, 3, 300201)
    assert failed["status"] == "Failure" and failed["status_detail"] == "token_expired"
    assert failed["time"] == event(2).epoch_ms()


def test_positions_survive_a_failure_in_the_middle() -> None:
    state = ShardState.genesis("s.shard")
    state.record_batch([((1, 0), True), ((2, 0), False), ((3, 0), True), ((3, 1), True)])
    assert state.done_through == (1, 0)
    assert state.is_done((3, 1)) and not state.is_done((2, 0))
    state.record_batch([((2, 0), True), ((3, 0), True), ((3, 1), True), ((4, 0), True)])
    assert state.done_through == (4, 0) and state.done_ranges == []


def test_chain_links_depend_on_key_content_and_order() -> None:
    g = genesis_link("c")
    a, b = chain_link(g, "k1", "aa"), chain_link(g, "k2", "aa")
    assert len({a, b, chain_link(g, "k1", "ab"), chain_link(a, "k2", "bb")}) == 4
    assert gzip_lines([b"x"]) == gzip_lines([b"x"]), "deterministic bytes for retries"


def test_source_ranges() -> None:
    assert source_range("203.0.113.77") == "203.0.113.0/24"
    assert source_range("2001:db8::1") == "2001:db8::/64"
    assert source_range("unknown") is None


def detector(**thresholds: int) -> tuple[Detector, ListPublisher, list[tuple[str, int, str]]]:
    blocks: list[tuple[str, int, str]] = []

    class Blocks:
        def block(self, ip: str, until: int, reason: str) -> None:
            blocks.append((ip, until, reason))

    publisher = ListPublisher()
    settings = DetectionSettings.model_validate(thresholds)
    return (
        Detector(settings, MemoryWindowCounters(), publisher, Blocks(), lambda: T0),
        publisher,
        blocks,
    )


def failures(
    first: int, count: int, ip: str = "198.51.100.7", **fields: object
) -> list[AuditEvent]:
    values = {"decision": "unauthorized", "reason": "invalid_signature", "principal_id": None}
    return [event(first + n, source_ip=ip, **(values | fields)) for n in range(count)]


def test_failed_login_burst_from_one_ip_alerts_once_and_blocks() -> None:
    det, publisher, blocks = detector(failed_per_ip=5, failed_per_range=1000)
    assert det.observe(failures(0, 3)) == []
    alerts = det.observe(failures(3, 3))  # crosses across batches
    assert [(a.kind, a.subject, a.count) for a in alerts] == [("failed_auth_ip", "198.51.100.7", 6)]
    assert blocks == [("198.51.100.7", int(T0) + 900, "failed_auth_ip: 6 in 300s")]
    assert det.observe(failures(6, 5)) == [], "one alert per window"
    assert len(publisher.alerts) == 1


def test_range_spraying_principal_many_ips_and_deny_spike() -> None:
    det, _, blocks = detector(failed_per_ip=100, failed_per_range=4, principal_ips=3, deny_spike=3)
    spray = [
        e for n in range(4) for e in failures(n, 1, ip=f"192.0.2.{n + 1}", principal_id="corp:bob")
    ]
    denies = [event(50 + n, decision="deny", reason="no_matching_permission") for n in range(3)]
    kinds = {(a.kind, a.subject) for a in det.observe(spray + denies)}
    assert kinds == {
        ("failed_auth_range", "192.0.2.0/24"),
        ("principal_many_ips", "corp:bob"),
        ("deny_spike", "a1b2c3d4e5/prod"),
    }
    assert blocks == [], "only single-IP bursts block"


def test_our_own_failures_never_count() -> None:
    det, _, _ = detector(failed_per_ip=2)
    assert det.observe(failures(0, 5, reason="jwks_unavailable")) == []


# --- hostile input (issue 12): caps, zlib, shapes ----------------------------------------------
def test_caps_are_the_documented_ones() -> None:
    from gatekeeper.audit.decode import Limits

    limits = Limits()
    assert (limits.max_decompressed_bytes, limits.max_depth) == (8 * 1024 * 1024, 32)
    assert (limits.max_line_chars, limits.keep_chars) == (64 * 1024, 64 * 1024)


def test_inflate_streams_gzip_members_and_zlib_and_stops_at_the_cap() -> None:
    import zlib

    from gatekeeper.audit.decode import TooLarge, inflate

    text = b"x" * 10_000
    assert inflate(zlib.compress(text), 10_000) == text
    assert inflate(gzip.compress(text[:4000]) + gzip.compress(text[4000:]), 10_000) == text
    with pytest.raises(TooLarge) as cut:
        inflate(gzip.compress(b"A" * 5_000_000), 100_000)
    assert len(cut.value.head) <= 64 * 1024 and set(cut.value.head) == {ord("A")}
    with pytest.raises(EOFError):
        inflate(gzip.compress(text)[:-12], 10_000)


def test_decode_zlib_records_by_header() -> None:
    import zlib

    body = event(3).model_dump(mode="json")
    [item] = decode_record(zlib.compress(json.dumps(body).encode()))
    assert isinstance(item, Payload) and item.data == body
    cwl = gzip.decompress(logs_subscription_data([json.dumps({"audit": body})]))
    [item] = decode_record(zlib.compress(cwl))
    assert isinstance(item, Payload) and item.data == body


@pytest.mark.parametrize("depth", [33, 600, 100_000])
def test_decode_cuts_deep_nesting_at_any_depth(depth: int) -> None:
    from gatekeeper.audit.decode import CUT_DEPTH, Limits

    data = ("[" * depth + "]" * depth).encode()
    [item] = decode_record(b'{"audit": {"x": ' + data + b"}}")
    assert isinstance(item, Undecodable) and item.cut == CUT_DEPTH
    assert len(item.raw) <= Limits().keep_chars
    line = '{"audit": {"x": ' + data.decode() + "}}"
    [item] = decode_record(logs_subscription_data([line]))
    assert isinstance(item, Undecodable) and item.cut in {CUT_DEPTH, "line_chars"}
    shallow = "[" * 30 + "]" * 30  # 32 deep with the two objects around it
    [item] = decode_record(b'{"audit": {"x": ' + shallow.encode() + b"}}")
    assert isinstance(item, Payload), "an ordinary payload is never cut"


def test_redact_is_bounded_on_deep_structures() -> None:
    from gatekeeper.audit.redact import CUT_MARK

    deep: object = JWT
    for _ in range(5000):
        deep = [deep]
    out = redact({"a": deep})
    text = json.dumps(out)
    assert CUT_MARK in text and JWT not in text
    assert redact([[[JWT]]]) == [[[MARK]]]


def test_partition_refuses_times_the_archive_cannot_hold() -> None:
    from gatekeeper.audit.archive import OutOfRange, partition

    assert partition(int(T0 * 1000)) == "dt=2026-11-25/hour=21"
    for bad in (-62135647200000, 0, 253402300800000):
        with pytest.raises(OutOfRange):
            partition(bad)


@pytest.mark.parametrize(
    ("event", "kind", "records"),
    [({}, "empty", 0), ({"Records": []}, "empty", 0), ({"x": 1}, "unknown", 1),
     ("text", "unknown", 1), ({"Records": [{"body": "sqs"}]}, "kinesis", 1),
     ({"awslogs": {"data": "???"}}, "logs", 1)],
)  # fmt: skip
def test_parse_event_never_raises(event: object, kind: str, records: int) -> None:
    from gatekeeper.audit.sink import UNRECOGNISED_STREAM, parse_event

    parsed = parse_event(event)
    assert (parsed.kind, len(parsed.records)) == (kind, records)
    assert all(r.stream == UNRECOGNISED_STREAM for r in parsed.records)
    assert not parsed.identifiers


def test_the_sink_applies_its_limits() -> None:
    from gatekeeper.audit.decode import CUT_LINE, Limits
    from gatekeeper.audit.store import MemoryObjectStore
    from gatekeeper.testing.audit_events import direct_payload, kinesis_event
    from tests.audit_helpers import make_sink, run

    memory = MemoryObjectStore()
    sink = make_sink(memory, limits=Limits(max_line_chars=200))
    assert run(sink, kinesis_event([direct_payload(event(1))])) == []
    [marker] = [json.loads(v.body) for k, v in memory.objects.items() if "/quarantine/" in k]
    assert [item["cut"] for item in marker["items"]] == [CUT_LINE]
