"""Detection on the archived stream: bursts of failed logins, credential spraying, deny spikes.

Four signals, each counted in fixed windows of event time (so a retried batch lands in the same
window) across batches and shards through a small counter store (the counters table in AWS):

- ``failed_auth_ip``: failed authentications from one source IP;
- ``failed_auth_range``: the same from one /24 (IPv4) or /64 (IPv6) range;
- ``principal_many_ips``: one principal failing from many distinct IPs;
- ``deny_spike``: denials for one API stage.

A signal raises at most one alert per subject and window (a conditional "alerted" mark), sent
to EventBridge; a per-IP burst can also write a temporary block item that the authorizer checks
before any signature work (:func:`write_block`). Failures that are ours, not the caller's
(``internal_error``, an unreachable store or JWKS), never count. Detection is best effort: the
sink archives first and never fails a batch because detection did.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.audit.event import AuditEvent
from gatekeeper.clock import Clock, system_clock
from gatekeeper.store import tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient

AlertKind = Literal["failed_auth_ip", "failed_auth_range", "principal_many_ips", "deny_spike"]
ALERT_SOURCE = "gatekeeper.audit"
ALERT_DETAIL_TYPE = "Gatekeeper security alert"


class DetectionSettings(BaseModel):
    """Thresholds (per window); ``GATEKEEPER_AUDIT_DETECTION`` as a JSON object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    window_seconds: int = Field(default=300, ge=10, le=86_400)
    failed_per_ip: int = Field(default=20, ge=1)
    failed_per_range: int = Field(default=100, ge=1)
    principal_ips: int = Field(
        default=5, ge=2, description="Distinct IPs one principal fails from."
    )
    deny_spike: int = Field(default=200, ge=1, description="Denials per API stage per window.")
    block_seconds: int = Field(default=900, ge=0, description="0: alert only, never block.")
    ignored_reasons: tuple[str, ...] = (
        "internal_error",
        "store_unavailable",
        "jwks_unavailable",
        "config_unavailable",
    )


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    subject: str
    count: int
    threshold: int
    window_start: int
    window_seconds: int
    event_ids: tuple[str, ...] = ()
    blocked_until: int | None = None

    def detail(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "count": self.count,
            "threshold": self.threshold,
            "windowStart": self.window_start,
            "windowSeconds": self.window_seconds,
            "sampleEventIds": list(self.event_ids[:10]),
            "blockedUntil": self.blocked_until,
        }


@dataclass
class _Tally:
    count: int = 0
    members: set[str] = field(default_factory=set)
    event_ids: list[str] = field(default_factory=list)


def source_range(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def tally(
    events: Iterable[AuditEvent], settings: DetectionSettings
) -> dict[tuple[AlertKind, str, int], _Tally]:
    """Pure: what one batch adds to each (signal, subject, window)."""
    out: dict[tuple[AlertKind, str, int], _Tally] = defaultdict(_Tally)
    width = settings.window_seconds
    for event in events:
        if event.event_type != "authorization" or event.reason in settings.ignored_reasons:
            continue
        window = event.epoch_ms() // 1000 // width * width
        if event.decision == "unauthorized" and event.source_ip:
            keys: list[tuple[AlertKind, str]] = [("failed_auth_ip", event.source_ip)]
            block = source_range(event.source_ip)
            if block:
                keys.append(("failed_auth_range", block))
            for kind, subject in keys:
                entry = out[(kind, subject, window)]
                entry.count += 1
                entry.event_ids.append(event.event_id)
            if event.principal_id:
                entry = out[("principal_many_ips", event.principal_id, window)]
                entry.members.add(event.source_ip)
                entry.event_ids.append(event.event_id)
        elif event.decision == "deny":
            entry = out[("deny_spike", f"{event.api_id}/{event.stage}", window)]
            entry.count += 1
            entry.event_ids.append(event.event_id)
    return out


class WindowCounters(Protocol):
    def add(self, key: str, window: int, amount: int, members: set[str], expires_at: int) -> int:
        """Add ``amount`` (or the ``members`` to a set); return the count / set size after."""
        ...

    def claim_alert(self, key: str, window: int) -> bool:
        """True exactly once per (key, window): the right to raise its alert."""
        ...


class MemoryWindowCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = defaultdict(int)
        self._sets: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._alerted: set[tuple[str, int]] = set()

    def add(self, key: str, window: int, amount: int, members: set[str], expires_at: int) -> int:
        with self._lock:
            if members:
                self._sets[(key, window)] |= members
                return len(self._sets[(key, window)])
            self._counts[(key, window)] += amount
            return self._counts[(key, window)]

    def claim_alert(self, key: str, window: int) -> bool:
        with self._lock:
            if (key, window) in self._alerted:
                return False
            self._alerted.add((key, window))
            return True


class DynamoWindowCounters:
    """Items ``pk=DETECT#<signal>#<subject>``, ``sk=<window start>`` in the counters table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._ddb = client
        self._table = table

    def _key(self, key: str, window: int) -> dict[str, Any]:
        return {"pk": {"S": f"DETECT#{key}"}, "sk": {"S": str(window)}}

    def add(self, key: str, window: int, amount: int, members: set[str], expires_at: int) -> int:
        values: dict[str, Any] = {":ttl": {"N": str(expires_at)}}
        if members:
            update, values[":m"] = "ADD members :m", {"SS": sorted(members)}
        else:
            update, values[":n"] = "ADD hits :n", {"N": str(amount)}
        response = self._ddb.update_item(
            TableName=self._table,
            Key=self._key(key, window),
            UpdateExpression=f"{update} SET {tables.TTL_ATTRIBUTE} = :ttl",
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        attrs = response.get("Attributes", {})
        if members:
            return len(attrs.get("members", {}).get("SS", []))
        return int(attrs.get("hits", {}).get("N", "0"))

    def claim_alert(self, key: str, window: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key(key, window),
                UpdateExpression="SET alerted = :t",
                ConditionExpression="attribute_not_exists(alerted)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def write_block(
    client: DynamoDBClient, table: str, ip: str, *, until: int, reason: str, ttl_grace: int = 3600
) -> bool:
    """Block ``ip`` until ``until`` (epoch s): the item the authorizer checks before anything.

    Never shortens an existing block. Returns False if a longer block was already there.
    """
    from botocore.exceptions import ClientError

    key = tables.block_key("ip", ip)
    try:
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": key["pk"]},
                "sk": {"S": key["sk"]},
                "until": {"N": str(until)},
                "reason": {"S": reason},
                tables.TTL_ATTRIBUTE: {"N": str(until + ttl_grace)},
            },
            ConditionExpression="attribute_not_exists(pk) OR #u < :until",
            ExpressionAttributeNames={"#u": "until"},
            ExpressionAttributeValues={":until": {"N": str(until)}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


class Blocker(Protocol):
    def block(self, ip: str, until: int, reason: str) -> None: ...


class DynamoBlocker:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._ddb = client
        self._table = table

    def block(self, ip: str, until: int, reason: str) -> None:
        write_block(self._ddb, self._table, ip, until=until, reason=reason)


class AlertPublisher(Protocol):
    def publish(self, alerts: Sequence[Alert]) -> None: ...


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str = "default") -> None:
        self._events = client
        self._bus = bus_name

    def publish(self, alerts: Sequence[Alert]) -> None:
        for start in range(0, len(alerts), 10):  # PutEvents takes at most 10 entries
            entries = [
                {
                    "Source": ALERT_SOURCE,
                    "DetailType": ALERT_DETAIL_TYPE,
                    "Detail": json.dumps(alert.detail()),
                    "EventBusName": self._bus,
                }
                for alert in alerts[start : start + 10]
            ]
            response = self._events.put_events(Entries=entries)  # type: ignore[arg-type]
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} alert(s)")


class ListPublisher:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def publish(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)


class Detector:
    def __init__(
        self,
        settings: DetectionSettings,
        counters: WindowCounters,
        publisher: AlertPublisher,
        blocker: Blocker | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._settings = settings
        self._counters = counters
        self._publisher = publisher
        self._blocker = blocker
        self._clock = clock

    def _threshold(self, kind: AlertKind) -> int:
        s = self._settings
        return {
            "failed_auth_ip": s.failed_per_ip,
            "failed_auth_range": s.failed_per_range,
            "principal_many_ips": s.principal_ips,
            "deny_spike": s.deny_spike,
        }[kind]

    def observe(self, events: Sequence[AuditEvent]) -> list[Alert]:
        if not self._settings.enabled or not events:
            return []
        width = self._settings.window_seconds
        alerts: list[Alert] = []
        for (kind, subject, window), entry in tally(events, self._settings).items():
            key = f"{kind}#{subject}"
            total = self._counters.add(
                key, window, entry.count, entry.members, expires_at=window + 2 * width
            )
            threshold = self._threshold(kind)
            if total < threshold or not self._counters.claim_alert(key, window):
                continue
            blocked_until = None
            if kind == "failed_auth_ip" and self._blocker and self._settings.block_seconds:
                blocked_until = int(self._clock()) + self._settings.block_seconds
                self._blocker.block(subject, blocked_until, f"{kind}: {total} in {width}s")
            alerts.append(
                Alert(kind, subject, total, threshold, window, width, tuple(entry.event_ids),
                      blocked_until)
            )  # fmt: skip
        if alerts:
            self._publisher.publish(alerts)
        return alerts
