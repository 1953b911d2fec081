"""Turn one Kinesis record's bytes into the audit payloads it carries (pure, no I/O).

Two record kinds reach the sink:

- **CloudWatch Logs subscription** records: gzip'd JSON ``{messageType, logGroup, logStream,
  logEvents: [{id, timestamp, message}]}``. ``CONTROL_MESSAGE`` records (CloudWatch checking the
  destination) carry nothing and are skipped. Each log event's message is a Powertools JSON line;
  lines without an ``audit`` key (START/END/REPORT, other logs) are ignored, not errors.
- **Direct** records, put by :class:`~gatekeeper.audit.emit.KinesisAuditEmitter`: one JSON audit
  event (or ``{"audit": {...}}``), possibly gzip'd.

Anything that claims to be audit data but cannot be read becomes an :class:`Undecodable` item, so
the sink can quarantine it with the reason instead of dropping or retrying it forever.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Payload:
    """An audit event as received (not yet validated)."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Undecodable:
    error: str
    raw: str


Item = Payload | Undecodable


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return zlib.decompress(data, wbits=zlib.MAX_WBITS | 32)  # zlib or truncated gzip


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def decode_record(data: bytes) -> list[Item]:
    """Every audit payload in one record, in order; ``[]`` for control messages and noise."""
    if data[:2] == GZIP_MAGIC:
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            return [Undecodable(f"bad gzip: {exc}", _text(data[:2048]))]
    try:
        document = json.loads(data)
    except ValueError as exc:
        return [Undecodable(f"not JSON: {exc}", _text(data))]
    if not isinstance(document, dict):
        return [Undecodable("not a JSON object", _text(data))]
    if "messageType" in document:
        return decode_logs_payload(document)
    audit = document.get("audit", document)
    if not isinstance(audit, dict):
        return [Undecodable("audit is not an object", _text(data))]
    return [Payload(audit)]


def decode_logs_payload(document: dict[str, Any]) -> list[Item]:
    kind = document.get("messageType")
    if kind == "CONTROL_MESSAGE":
        return []
    events = document.get("logEvents")
    if kind != "DATA_MESSAGE" or not isinstance(events, list):
        return [Undecodable(f"unexpected CloudWatch Logs payload ({kind})", json.dumps(document))]
    items: list[Item] = []
    for log_event in events:
        message = log_event.get("message") if isinstance(log_event, dict) else None
        if isinstance(message, str):
            item = decode_log_line(message)
            if item is not None:
                items.append(item)
        else:
            items.append(Undecodable("log event without a message", json.dumps(log_event)))
    return items


def decode_log_line(message: str) -> Item | None:
    """The audit payload of one log line, or None if the line carries none.

    Tolerates a prefix before the JSON (Lambda's text format adds time, request id, level).
    """
    if '"audit"' not in message:
        return None
    start = message.find("{")
    try:
        line = json.loads(message[start:]) if start >= 0 else None
    except ValueError as exc:
        return Undecodable(f"audit line is not JSON: {exc}", message)
    audit = line.get("audit") if isinstance(line, dict) else None
    if audit is None:
        return None
    if not isinstance(audit, dict):
        return Undecodable("audit is not an object", message)
    return Payload(audit)


def logs_subscription_data(
    messages: list[str],
    *,
    log_group: str = "/aws/lambda/gatekeeper-authorizer",
    log_stream: str = "2026/11/25/[$LATEST]0123456789abcdef",
    first_id: int = 0,
    timestamp_ms: int = 0,
    control: bool = False,
) -> bytes:
    """The gzip'd payload CloudWatch Logs puts on the stream for ``messages`` (tests, demo)."""
    document = {
        "messageType": "CONTROL_MESSAGE" if control else "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["gatekeeper-audit"],
        "logEvents": [
            {"id": str(first_id + n).rjust(56, "0"), "timestamp": timestamp_ms, "message": m}
            for n, m in enumerate(messages)
        ],
    }
    return gzip.compress(json.dumps(document).encode(), mtime=0)
