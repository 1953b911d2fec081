"""Turn one record's bytes into the audit payloads it carries (pure, no I/O, bounded memory).

Two record kinds reach the sink:

- **CloudWatch Logs subscription** payloads (on the Kinesis stream, or delivered straight to the
  function as ``{"awslogs": {"data": …}}``): gzip'd JSON ``{messageType, logGroup, logStream,
  logEvents: [{id, timestamp, message}]}``. ``CONTROL_MESSAGE`` records (CloudWatch checking the
  destination) carry nothing and are skipped. Each log event's message is a Powertools JSON line;
  lines without an ``audit`` key (START/END/REPORT, other logs) are ignored, not errors.
- **Direct** records, put by :class:`~gatekeeper.audit.emit.KinesisAuditEmitter`: one JSON audit
  event (or ``{"audit": {...}}``), possibly gzip'd or zlib'd.

Anything that claims to be audit data but cannot be read becomes an :class:`Undecodable` item, so
the sink can quarantine it with the reason instead of dropping or retrying it forever. Input is
hostile (anyone who can write to a subscribed log group writes here), so every step is capped
(:class:`Limits`): the decompressed size (streamed, a gzip bomb never inflates past the cap), the
JSON nesting depth and the length of one audit line. An item cut by a cap says which
(:attr:`Undecodable.cut`) and keeps at most :attr:`Limits.keep_chars` of the raw text as evidence.
Powertools' CloudWatch Logs decoder (``CloudWatchLogsEvent.parse_logs_data``) inflates the whole
payload in one call, which is exactly the bomb; hence the streaming ``zlib.decompressobj`` here.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one record may cost. Defaults sized from AWS's own limits, with headroom.

    - ``max_decompressed_bytes`` (8 MiB): a CloudWatch Logs batch is at most 1 MiB of events
      (PutLogEvents) plus per-event JSON overhead, so a genuine payload inflates to a few MiB;
      the 65 KB → 64 MB bomb of issue 12 stops at 8 MiB.
    - ``max_depth`` (32): an audit event nests 4 deep (``audit.rate_limit.shadow_limited``);
      Python's parser and any recursive walk fail near 1,000.
    - ``max_line_chars`` (64 KiB): an audit line is 1-2 KB; API Gateway caps a request's path
      and headers near 10 KB, so a longer audit line was not written by the authorizer.
    - ``keep_chars`` (64 KiB): raw evidence kept in a quarantine marker.
    """

    max_decompressed_bytes: int = 8 * 1024 * 1024
    max_depth: int = 32
    max_line_chars: int = 64 * 1024
    keep_chars: int = 64 * 1024


DEFAULT_LIMITS = Limits()

CUT_DECOMPRESSED = "decompressed_bytes"
CUT_DEPTH = "depth"
CUT_LINE = "line_chars"


@dataclass(frozen=True, slots=True)
class Payload:
    """An audit event as received (not yet validated)."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Audit data that cannot be read; ``cut`` names the cap that stopped it (if one did)."""

    error: str
    raw: str
    cut: str | None = None
    raw_chars: int | None = None  # the raw text's full length when ``raw`` was shortened


Item = Payload | Undecodable


class TooLarge(ValueError):
    """Decompressing would exceed :attr:`Limits.max_decompressed_bytes`; ``head`` is the start."""

    def __init__(self, message: str, head: bytes) -> None:
        super().__init__(message)
        self.head = head


def _is_zlib(data: bytes) -> bool:
    """A zlib (RFC 1950) header: deflate, window <= 32 KiB, check bits, no preset dictionary."""
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


def inflate(data: bytes, max_bytes: int) -> bytes:
    """gzip (one or more members) or zlib ``data``, inflated to at most ``max_bytes``.

    Streams through :class:`zlib.decompressobj` with ``max_length``: memory never exceeds the
    cap, whatever the compression ratio. Raises :class:`TooLarge` past the cap, ``zlib.error``
    or ``EOFError`` for corrupt or truncated data.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: gzip or zlib, by header
        pending = rest
        while not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            out += chunk
            if len(out) > max_bytes:
                raise TooLarge(f"inflates past {max_bytes} bytes", bytes(out[:_CHUNK]))
            pending = inflater.unconsumed_tail
            if not chunk and not pending and not inflater.eof:
                raise EOFError("compressed data ends early")
        rest = inflater.unused_data
        if rest[:2] != GZIP_MAGIC:  # trailing bytes after the last member are ignored, as gzip
            return bytes(out)


def _too_deep(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests deeper than ``max_depth`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _loads(text: str | bytes, limits: Limits) -> Any:
    """``json.loads`` that refuses documents nested deeper than ``limits.max_depth``.

    Raises :class:`ValueError` (not JSON) or :class:`RecursionError` (too deep).
    """
    document = json.loads(text)  # RecursionError itself near 1,000 levels
    # a cheap necessary condition first (C speed): fewer brackets than the cap cannot nest past it
    if isinstance(text, bytes):
        brackets = text.count(b"{") + text.count(b"[")
    else:
        brackets = text.count("{") + text.count("[")
    if brackets > limits.max_depth and _too_deep(document, limits.max_depth):
        raise RecursionError(f"nested deeper than {limits.max_depth}")
    return document


def _text(data: bytes | str, limits: Limits) -> tuple[str, int | None]:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if len(text) > limits.keep_chars:
        return text[: limits.keep_chars], len(text)
    return text, None


def _undecodable(
    error: str, data: bytes | str, limits: Limits, cut: str | None = None
) -> Undecodable:
    raw, full = _text(data, limits)
    return Undecodable(error, raw, cut, full)


def read_document(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any] | Undecodable:
    """One record's JSON object: inflated (gzip or zlib, by header) and parsed within ``limits``."""
    if data[:2] == GZIP_MAGIC or _is_zlib(data):
        kind = "gzip" if data[:2] == GZIP_MAGIC else "zlib"
        try:
            data = inflate(data, limits.max_decompressed_bytes)
        except TooLarge as exc:
            return _undecodable(f"{kind} payload {exc}", exc.head, limits, CUT_DECOMPRESSED)
        except (EOFError, zlib.error) as exc:
            return _undecodable(f"bad {kind}: {exc}", data[:2048], limits)
    elif len(data) > limits.max_decompressed_bytes:
        error = f"record larger than {limits.max_decompressed_bytes} bytes"
        return _undecodable(error, data[: limits.keep_chars], limits, CUT_DECOMPRESSED)
    try:
        document = _loads(data, limits)
    except RecursionError:
        return _undecodable(f"JSON nested deeper than {limits.max_depth}", data, limits, CUT_DEPTH)
    except ValueError as exc:
        return _undecodable(f"not JSON: {exc}", data, limits)
    if not isinstance(document, dict):
        return _undecodable("not a JSON object", data, limits)
    if "messageType" not in document and len(data) > limits.max_line_chars:
        error = f"audit record longer than {limits.max_line_chars} characters"
        return _undecodable(error, data, limits, CUT_LINE)
    return document


def decode_record(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[Item]:
    """Every audit payload in one record, in order; ``[]`` for control messages and noise."""
    document = read_document(data, limits)
    if isinstance(document, Undecodable):
        return [document]
    if "messageType" in document:
        return decode_logs_payload(document, limits)
    audit = document.get("audit", document)
    if not isinstance(audit, dict):
        return [_undecodable("audit is not an object", data, limits)]
    return [Payload(audit)]


def decode_logs_payload(document: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> list[Item]:
    kind = document.get("messageType")
    if kind == "CONTROL_MESSAGE":
        return []
    events = document.get("logEvents")
    if kind != "DATA_MESSAGE" or not isinstance(events, list):
        error = f"unexpected CloudWatch Logs payload ({str(kind)[:64]})"
        return [_undecodable(error, json.dumps(document), limits)]
    items: list[Item] = []
    for log_event in events:
        message = log_event.get("message") if isinstance(log_event, dict) else None
        if isinstance(message, str):
            item = decode_log_line(message, limits)
            if item is not None:
                items.append(item)
        else:
            items.append(_undecodable("log event without a message", json.dumps(log_event), limits))
    return items


def decode_log_line(message: str, limits: Limits = DEFAULT_LIMITS) -> Item | None:
    """The audit payload of one log line, or None if the line carries none.

    Tolerates a prefix before the JSON (Lambda's text format adds time, request id, level).
    """
    if '"audit"' not in message:
        return None
    if len(message) > limits.max_line_chars:
        error = f"audit line longer than {limits.max_line_chars} characters"
        return _undecodable(error, message, limits, CUT_LINE)
    start = message.find("{")
    try:
        line = _loads(message[start:], limits) if start >= 0 else None
    except RecursionError:
        error = f"audit line nested deeper than {limits.max_depth}"
        return _undecodable(error, message, limits, CUT_DEPTH)
    except ValueError as exc:
        return _undecodable(f"audit line is not JSON: {exc}", message, limits)
    audit = line.get("audit") if isinstance(line, dict) else None
    if audit is None:
        return None
    if not isinstance(audit, dict):
        return _undecodable("audit is not an object", message, limits)
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
