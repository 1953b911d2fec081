"""Kinesis events for the audit sink, as Lambda's event source mapping delivers them."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from gatekeeper.audit.decode import logs_subscription_data
from gatekeeper.audit.event import AuditEvent

STREAM = "gatekeeper-audit"
STREAM_ARN = f"arn:aws:kinesis:us-east-1:123456789012:stream/{STREAM}"
SHARD = "shardId-000000000000"


def sequence_number(n: int) -> str:
    """A Kinesis-like 56-digit sequence number, increasing with ``n``."""
    return str(49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898 + n)


def kinesis_record(
    data: bytes, n: int, *, shard: str = SHARD, arrival: float = 0
) -> dict[str, Any]:
    seq = sequence_number(n)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": f"pk-{n}",
            "sequenceNumber": seq,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/gatekeeper-audit-sink",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def kinesis_event(
    payloads: Sequence[bytes], *, first: int = 0, shard: str = SHARD
) -> dict[str, Any]:
    return {"Records": [kinesis_record(p, first + i, shard=shard) for i, p in enumerate(payloads)]}


def subscription_payloads(lines: Sequence[str], per_record: int = 10) -> list[bytes]:
    """Log lines → CloudWatch Logs subscription record payloads (gzip'd DATA_MESSAGEs)."""
    return [
        logs_subscription_data(list(lines[i : i + per_record]), first_id=i)
        for i in range(0, len(lines), per_record)
    ]


def direct_payload(event: AuditEvent) -> bytes:
    """What :class:`~gatekeeper.audit.emit.KinesisAuditEmitter` puts for ``event``."""
    return json.dumps(event.model_dump(mode="json")).encode()
