"""Shared builders for the audit tests: synthetic events, an archive in memory, a flaky store."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

from gatekeeper.audit.archive import ArchiveWriter, Layout
from gatekeeper.audit.event import AuditEvent, iso_time
from gatekeeper.audit.signer import LocalRsaSigner
from gatekeeper.audit.sink import AuditSink, records_from_event
from gatekeeper.audit.store import MemoryObjectStore, ObjectStore, StoredObject
from gatekeeper.clock import FakeClock
from gatekeeper.testing.audit_events import direct_payload, kinesis_event

T0 = 1_795_640_400.0  # 2026-11-25T21:40:00Z
SIGNER = LocalRsaSigner.generate("test-key")


def event(n: int, **fields: Any) -> AuditEvent:
    """Event ``n`` at ``T0 + n`` (or ``at + n``); ``fields`` override."""
    at = float(fields.pop("at", T0))
    values: dict[str, Any] = {
        "event_id": f"{n:032x}",
        "time": iso_time(at + n),
        "decision": "allow",
        "reason": "allowed",
        "principal_id": "corp:alice",
        "method": "GET",
        "path": f"/orders/{n}",
        "source_ip": "203.0.113.10",
        "api_id": "a1b2c3d4e5",
        "stage": "prod",
        "latency_ms": 0.2,
    }
    values.update(fields)
    return AuditEvent.model_validate(values)


def direct_event(events: list[AuditEvent], first: int = 0) -> dict[str, Any]:
    return kinesis_event([direct_payload(e) for e in events], first=first)


def make_sink(store: ObjectStore, clock: FakeClock | None = None, **kwargs: Any) -> AuditSink:
    writer = ArchiveWriter(
        store, SIGNER, layout=Layout("audit/"), clock=clock or FakeClock(T0 + 3600),
        digest_interval_seconds=kwargs.pop("digest_interval_seconds", 0),
    )  # fmt: skip
    return AuditSink(writer, **kwargs)


def archived_rows(store: ObjectStore, prefix: str = "audit/events/") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in store.list(prefix):
        found = store.get(key)
        assert found is not None
        rows += [json.loads(line) for line in gzip.decompress(found.body).splitlines() if line]
    return rows


def archived_ids(store: ObjectStore) -> list[str]:
    return [row["metadata"]["uid"] for row in archived_rows(store)]


def public_key(_key_id: str) -> bytes:
    return SIGNER.public_key_pem()


class FlakyStore:
    """Wraps a store; ``fail(key, op)`` says whether this call fails (an S3 outage)."""

    def __init__(self, inner: ObjectStore, fail: Callable[[str, str], bool]) -> None:
        self.inner = inner
        self.bucket = inner.bucket
        self.fail = fail

    def _check(self, key: str, op: str) -> None:
        if self.fail(key, op):
            raise ConnectionError(f"injected S3 failure: {op} {key}")

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        self._check(key, "create")
        self.inner.create(key, body, metadata, content_type)

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        self._check(key, "put")
        return self.inner.put(key, body, content_type, metadata, if_match)

    def get(self, key: str) -> StoredObject | None:
        self._check(key, "get")
        return self.inner.get(key)

    def head(self, key: str) -> dict[str, str] | None:
        return self.inner.head(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)


def run(sink: AuditSink, kinesis: dict[str, Any]) -> list[str]:
    return sink.process(records_from_event(kinesis)).failed


__all__ = ["MemoryObjectStore"]
