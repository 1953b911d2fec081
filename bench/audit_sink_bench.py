"""Audit sink throughput in-process: decode → validate → dedup → redact → OCSF → chain → gzip.

Run: ``.venv/bin/python bench/audit_sink_bench.py`` (offline; an in-memory object store, so S3
latency is excluded: what is measured is the CPU cost per event that bounds one shard's sink).
Events are realistic Powertools log lines (about 900 bytes each, a third of them failures),
packed as CloudWatch Logs subscription records (``--per-record`` log events each) in Lambda
batches of ``--batch`` records; the direct-put path (one event per record) is measured too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from gatekeeper.audit.archive import ArchiveWriter, Layout
from gatekeeper.audit.event import AuditEvent, iso_time
from gatekeeper.audit.signer import LocalRsaSigner
from gatekeeper.audit.sink import AuditSink, records_from_event
from gatekeeper.audit.store import MemoryObjectStore
from gatekeeper.testing.audit_events import direct_payload, kinesis_event, subscription_payloads

GOAL = 5000


def make_events(n: int, start: float) -> list[AuditEvent]:
    events = []
    for i in range(n):
        failed = i % 3 == 0
        events.append(
            AuditEvent(
                event_id=f"{i:032x}",
                time=iso_time(start + i / 1000),
                request_id=f"c0ffee00-{i:04x}-4222-8333-444455556666"[:36],
                decision="unauthorized" if failed else "allow",
                reason="invalid_signature" if failed else "allowed",
                principal_id=None if failed else f"corp:user{i % 50}",
                tenant=None if failed else "acme",
                auth_method=None if failed else "jwt",
                issuer=None if failed else "corp",
                roles=() if failed else ("orders-clerk", "orders-reader", "public"),
                event_kind="rest_request",
                api_id="a1b2c3d4e5",
                stage="prod",
                method="GET",
                path=f"/orders/o-{i}",
                source_ip=f"203.0.113.{i % 250}",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
                matched_rule=None if failed else "orders-reader:GET /orders/**",
                policy_scope=None if failed else "api",
                config_version=7,
                latency_ms=0.3,
            )
        )
    return events


def log_line(event: AuditEvent) -> str:
    return json.dumps(
        {
            "level": "INFO",
            "location": "emit:44",
            "message": f"authorization {event.decision}: {event.reason}",
            "timestamp": event.time,
            "service": "gatekeeper-authorizer",
            "cold_start": False,
            "function_name": "gatekeeper-authorizer",
            "function_request_id": "5f9c0a8e-3c1d-4a57-9d7e-1f2a3b4c5d6e",
            "audit": event.model_dump(mode="json"),
        }
    )


def run_batches(batches: list[dict[str, Any]]) -> tuple[float, int, MemoryObjectStore]:
    store = MemoryObjectStore()
    sink = AuditSink(
        ArchiveWriter(store, LocalRsaSigner.generate("bench"), layout=Layout("audit/")),
        dedup_window=2000,
    )
    archived = 0
    started = time.perf_counter()
    for batch in batches:
        result = sink.process(records_from_event(batch))
        assert not result.failed
        archived += len(result.archived)
    return time.perf_counter() - started, archived, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000, help="events")
    parser.add_argument("--per-record", type=int, default=50, help="log events per record")
    parser.add_argument("--batch", type=int, default=100, help="records per Lambda batch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.n, start=1_795_640_400.0)

    payloads = subscription_payloads([log_line(e) for e in events], per_record=args.per_record)
    logs_batches = [
        kinesis_event(payloads[i : i + args.batch], first=i)
        for i in range(0, len(payloads), args.batch)
    ]
    direct = [direct_payload(e) for e in events]
    direct_batches = [
        kinesis_event(direct[i : i + args.batch], first=i)
        for i in range(0, len(direct), args.batch)
    ]
    for name, batches in (
        (f"CloudWatch Logs subscription ({args.per_record} events/record)", logs_batches),
        ("direct Kinesis puts (1 event/record)", direct_batches),
    ):
        rates = []
        for _ in range(args.repeat):
            elapsed, archived, store = run_batches(batches)
            assert archived == args.n
            rates.append(archived / elapsed)
        size = sum(len(o.body) for k, o in store.objects.items() if "/events/" in k)
        print(
            f"{name}: median {statistics.median(rates):,.0f} events/s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); {args.n} events, "
            f"{len(batches)} batches, archive {size / args.n:.0f} B/event gzip'd; "
            f"goal {GOAL:,}/s: {'met' if min(rates) >= GOAL else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
