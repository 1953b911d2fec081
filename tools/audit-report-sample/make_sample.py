"""Write the README's sample audit report (docs/audit-report-sample.svg) from a synthetic archive.

90 minutes of decisions (a burst of forged tokens from three addresses, a blocked address,
rate-limited service keys, RBAC denials) go through the real sink (in memory), are copied to a
folder like ``aws s3 sync`` would, and ``gatekeeper archive report`` draws them::

    python tools/audit-report-sample/make_sample.py /tmp/demo-archive
    gatekeeper archive report --path /tmp/demo-archive -o docs/audit-report-sample.svg
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from gatekeeper.audit.archive import ArchiveWriter, Layout
from gatekeeper.audit.event import AuditEvent, RateLimitInfo, iso_time
from gatekeeper.audit.signer import LocalRsaSigner
from gatekeeper.audit.sink import AuditSink, records_from_event
from gatekeeper.audit.store import MemoryObjectStore
from gatekeeper.clock import FakeClock
from gatekeeper.testing.audit_events import direct_payload, kinesis_event

START = 1_795_640_400.0  # 2026-11-25T21:00:00Z
PRINCIPALS = ["corp:alice", "corp:bob", "svc:billing", "svc:reports", "corp:carol"]
ROUTES = [("GET", "/orders"), ("GET", "/orders/{id}"), ("POST", "/orders"),
          ("DELETE", "/orders/{id}"), ("GET", "/admin/users")]  # fmt: skip


def decision(n: int, rng: random.Random) -> AuditEvent:
    minute = n * 90 / 1400
    method, route = rng.choice(ROUTES)
    principal = rng.choice(PRINCIPALS)
    fields: dict[str, Any] = {
        "event_id": f"{n:032x}", "time": iso_time(START + minute * 60), "decision": "allow",
        "reason": "allowed", "principal_id": principal, "method": method,
        "path": route.replace("{id}", str(n % 50)), "route_key": f"{method} {route}",
        "source_ip": "203.0.113.10", "api_id": "a1b2c3d4e5", "stage": "prod", "latency_ms": 0.4,
    }  # fmt: skip
    r = rng.random()
    anonymous = {"principal_id": None}
    if 40 <= minute <= 48 and r < 0.6:
        fields.update(anonymous, decision="unauthorized", reason="invalid_signature",
                      source_ip=f"198.51.100.{n % 3 + 7}")  # fmt: skip
    elif r < 0.08:
        fields.update(decision="deny", reason="no_matching_permission")
    elif r < 0.12 and principal.startswith("svc:"):
        limit = RateLimitInfo(rule_id=rng.choice(["per-key-minute", "orders-post"]),
                              limited=True, counter=101, limit=100)  # fmt: skip
        fields.update(decision="deny", reason="rate_limited", key_id="0123456789abcdef",
                      rate_limit=limit)  # fmt: skip
    elif r < 0.14:
        fields.update(anonymous, decision="deny", reason="blocked", source_ip="203.0.113.66")
    elif r < 0.16:
        fields.update(anonymous, decision="unauthorized", reason="token_expired")
    return AuditEvent.model_validate(fields)


def main(folder: Path) -> None:
    rng = random.Random(7)  # noqa: S311 - a reproducible sample, not a secret
    events = [decision(n, rng) for n in range(1400)]
    store = MemoryObjectStore("demo")
    writer = ArchiveWriter(store, LocalRsaSigner.generate("demo"), layout=Layout("audit/"),
                           clock=FakeClock(START + 7200))  # fmt: skip
    sink = AuditSink(writer)
    for i in range(0, len(events), 100):
        batch = kinesis_event([direct_payload(e) for e in events[i : i + 100]], first=i)
        assert not sink.process(records_from_event(batch)).failed
    for key in store.list("audit/"):
        found = store.get(key)
        assert found is not None
        path = folder / key.removeprefix("audit/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(found.body)
    print(f"{len(events)} decisions archived under {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-archive"))
