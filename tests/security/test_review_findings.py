"""Regression tests for the security review findings (each failed before its fix)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatekeeper.audit.detect import write_block
from gatekeeper.clock import FakeClock
from gatekeeper.errors import MalformedApiKey
from gatekeeper.identity.api_keys import parse_key
from gatekeeper.rate_limit.brute_force import BruteForceGuard
from gatekeeper.rate_limit.counters import DynamoCounterStore, InMemoryCounterStore
from gatekeeper.rate_limit.limiter import Applied, RateLimiter
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import RoleAssignment
from gatekeeper.store import tables
from gatekeeper.testing import LocalJwksServer, SigningKey
from gatekeeper.testing.events import http_api_event, rest_request_event
from tests.conftest import COUNTERS, TABLE, make_world

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class LaggingReplica:
    """A DynamoDB client whose eventually consistent reads may answer from before a write.

    DynamoDB documents that a read without ``ConsistentRead`` might not reflect a recently
    completed write. ``freeze_*`` records what an item (or a partition) holds now; until
    ``catch_up``, eventually consistent reads of it get that stale answer. Strongly consistent
    reads and everything else go to the real (moto) client.
    """

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self._items: dict[tuple[str, str], Any] = {}
        self._partitions: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def freeze_item(self, key: dict[str, str]) -> None:
        self._items[(key["pk"], key["sk"])] = self._client.get_item(
            TableName=TABLE, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
        )

    def freeze_partition(self, pk: str) -> None:
        self._partitions[pk] = self._client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )

    def catch_up(self) -> None:
        self._items.clear()
        self._partitions.clear()

    def get_item(self, **kwargs: Any) -> Any:
        key = (kwargs["Key"]["pk"]["S"], kwargs["Key"]["sk"]["S"])
        if not kwargs.get("ConsistentRead") and key in self._items:
            return self._items[key]
        return self._client.get_item(**kwargs)

    def query(self, **kwargs: Any) -> Any:
        pk = kwargs["ExpressionAttributeValues"][":pk"]["S"]
        if not kwargs.get("ConsistentRead") and pk in self._partitions:
            return self._partitions[pk]
        return self._client.query(**kwargs)


# --- F1: a stale read after a version bump was cached until the *next* config change ----------
def test_revoked_key_is_not_cached_from_a_stale_replica_read(
    dynamodb: DynamoDBClient, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    replica = LaggingReplica(dynamodb)
    world = make_world(replica, jwks_server, signing_key)  # type: ignore[arg-type]
    event = http_api_event({"x-api-key": world.keys.active}, "GET", "/orders/1")
    assert world.authorizer.authorize(event).audit.decision == "allow"  # now cached
    key_id = parse_key(world.keys.active, "gk")[0]
    record = world.store.get_api_key(key_id)
    assert record is not None
    replica.freeze_item(tables.apikey_key(key_id))  # a replica that has not seen the revocation
    world.store.put(record.model_copy(update={"status": "revoked"}))

    world.clock.advance(6)  # past the refresh interval: the new version is seen
    first = world.authorizer.authorize(event)
    replica.catch_up()  # replication completes a moment later
    world.clock.advance(6)
    later = world.authorizer.authorize(event)

    assert first.unauthorized and first.audit.reason == "api_key_revoked"
    assert later.unauthorized and later.audit.reason == "api_key_revoked"


def test_removed_assignment_is_not_cached_from_a_stale_replica_read(
    dynamodb: DynamoDBClient, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    replica = LaggingReplica(dynamodb)
    world = make_world(replica, jwks_server, signing_key)  # type: ignore[arg-type]
    token = world.token()
    event = rest_request_event({"Authorization": f"Bearer {token}"}, "POST", "/orders")
    assert world.authorizer.authorize(event).audit.decision == "allow"
    replica.freeze_partition(f"{tables.PRINCIPAL_PREFIX}corp:alice")
    world.store.put(RoleAssignment(principal_id="corp:alice", tenant="acme", roles=()))

    world.clock.advance(6)
    first = world.authorizer.authorize(event)
    replica.catch_up()
    world.clock.advance(6)
    later = world.authorizer.authorize(event)

    assert first.audit.decision == "deny"
    assert later.audit.decision == "deny"


# --- F2: a duplicated tenant header was checked on one value while the backend may read another
def test_duplicate_tenant_header_values_are_a_mismatch(world: Any) -> None:
    event = rest_request_event(
        {"Authorization": f"Bearer {world.token()}", "X-Tenant-Id": "acme"}, "GET", "/orders"
    )
    event["multiValueHeaders"]["X-Tenant-Id"] = ["globex", "acme"]  # `headers` keeps the last
    result = world.authorizer.authorize(event)
    assert result.audit.decision == "deny" and result.audit.reason == "tenant_mismatch"


def test_tenant_header_in_two_spellings_is_a_mismatch(world: Any) -> None:
    event = rest_request_event(
        {
            "Authorization": f"Bearer {world.token()}",
            "X-Tenant-Id": "globex",
            "x-tenant-id": "acme",
        },
        "GET",
        "/orders",
    )
    result = world.authorizer.authorize(event)
    assert result.audit.decision == "deny" and result.audit.reason == "tenant_mismatch"


def test_two_api_keys_in_multi_value_headers_are_refused(world: Any) -> None:
    event = rest_request_event({"x-api-key": world.keys.active}, "GET", "/orders/1")
    event["multiValueHeaders"]["x-api-key"] = [world.keys.revoked, world.keys.active]
    result = world.authorizer.authorize(event)
    assert result.unauthorized


def test_identical_duplicate_headers_still_work(world: Any) -> None:
    event = rest_request_event(
        {"Authorization": f"Bearer {world.token()}", "X-Tenant-Id": "acme"}, "GET", "/orders"
    )
    event["multiValueHeaders"]["X-Tenant-Id"] = ["acme", "acme"]
    assert world.authorizer.authorize(event).audit.decision == "allow"


# --- F3: the brute-force guard overwrote a longer block (admin's or the audit sink's) ----------
def test_brute_force_never_shortens_a_longer_block(dynamodb: DynamoDBClient) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    store = DynamoCounterStore(dynamodb, COUNTERS)
    guard = BruteForceGuard(store, clock=clock, threshold=3, block_seconds=900)
    ip = "203.0.113.66"
    assert guard.blocked(ip) is None  # cached "not blocked" for a few seconds
    long_until = int(clock()) + 86_400
    assert write_block(dynamodb, COUNTERS, ip, until=long_until, reason="sink: burst")
    for _ in range(3):
        guard.record_failure(ip, None, "invalid_signature")
    block = store.get_block("ip", ip)
    assert block is not None and block.until == long_until


def test_in_memory_store_never_shortens_a_block() -> None:
    store = InMemoryCounterStore()
    store.put_block("ip", "192.0.2.1", 2_000.0, "long")
    store.put_block("ip", "192.0.2.1", 1_000.0, "short")
    block = store.get_block("ip", "192.0.2.1")
    assert block is not None and block.until == 2_000.0


# --- F4: the token bucket's interval was rounded (down as often as up): over-admission ---------
def test_token_bucket_never_admits_more_than_capacity_plus_rate() -> None:
    clock = FakeClock(start=1_800_000_000.0)
    limiter = RateLimiter(InMemoryCounterStore(), clock=clock)
    rule = LimitRule(
        rule_id="tb", scope="principal", limit=3, window="second", algorithm="token_bucket"
    )
    applied = [Applied(rule, "p")]
    admitted = 0
    start = clock()
    for offset_ms in (0, 0, 0, 333, 666, 999):
        clock.now = start + offset_ms / 1000
        admitted += limiter.check(applied).allowed
    # any token bucket of capacity 3 and rate 3/s admits at most 3 + 3 * 0.999 in 0.999 s
    assert admitted <= 5


# --- F5: the key id check used `$`, which also matches before a trailing newline -------------
def test_api_key_id_with_newline_is_malformed() -> None:
    with pytest.raises(MalformedApiKey):
        parse_key("gk_0123456789abcdef\n_" + "A" * 43, "gk")
