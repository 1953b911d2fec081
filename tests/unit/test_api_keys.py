"""API keys: format, hashing, and every key state."""

from __future__ import annotations

import pytest

from gatekeeper.errors import (
    ExpiredApiKey,
    InvalidApiKeySecret,
    MalformedApiKey,
    RevokedApiKey,
    RotatedApiKey,
)
from gatekeeper.identity.api_keys import (
    ApiKeyRecord,
    check_key,
    generate_key,
    hash_secret,
    parse_key,
)

NOW = 1_800_000_000.0


def make(**kw: object) -> tuple[ApiKeyRecord, str]:
    new = generate_key("gk")
    _, secret = parse_key(new.plaintext, "gk")
    record = ApiKeyRecord(
        key_id=new.key_id,
        secret_hash=new.secret_hash,
        principal_id="svc:billing",
        tenant="acme",
        roles=("reader",),
        scopes=("orders:read",),
        usage_identifier="usage-123",
        **kw,
    )
    return record, secret


def test_generated_key_round_trips_and_stores_only_a_hash() -> None:
    new = generate_key("gk")
    key_id, secret = parse_key(new.plaintext, "gk")
    assert key_id == new.key_id
    assert new.secret_hash == hash_secret(secret)
    assert secret not in new.secret_hash
    assert new.plaintext not in repr(new)
    assert generate_key("gk").key_id != new.key_id


def test_valid_key_yields_principal() -> None:
    record, secret = make()
    principal = check_key(record, secret, NOW)
    assert principal.principal_id == "svc:billing"
    assert principal.auth_method == "api_key"
    assert principal.key_id == record.key_id
    assert principal.tenant == "acme"
    assert principal.roles == {"reader"}
    assert principal.usage_identifier == "usage-123"


def test_wrong_secret() -> None:
    record, secret = make()
    other = generate_key("gk")
    _, wrong = parse_key(other.plaintext, "gk")
    with pytest.raises(InvalidApiKeySecret) as info:
        check_key(record, wrong, NOW)
    assert wrong not in str(info.value) and secret not in str(info.value)


def test_wrong_secret_is_reported_before_revocation() -> None:
    """Someone without the secret must not learn the key's state."""
    record, _ = make(status="revoked")
    _, wrong = parse_key(generate_key("gk").plaintext, "gk")
    with pytest.raises(InvalidApiKeySecret):
        check_key(record, wrong, NOW)


def test_revoked() -> None:
    record, secret = make(status="revoked")
    with pytest.raises(RevokedApiKey):
        check_key(record, secret, NOW)


def test_expired() -> None:
    record, secret = make(expires_at=NOW)
    with pytest.raises(ExpiredApiKey):
        check_key(record, secret, NOW)
    assert check_key(record, secret, NOW - 1).key_id == record.key_id


def test_replaced_key_works_within_grace_and_fails_after() -> None:
    record, secret = make(replaced_by="0123456789abcdef", grace_until=NOW + 3600)
    assert check_key(record, secret, NOW + 3599).key_id == record.key_id
    with pytest.raises(RotatedApiKey):
        check_key(record, secret, NOW + 3600)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "gk",
        "gk_",
        "xx_0123456789abcdef_" + "a" * 43,
        "gk_0123456789ABCDEF_" + "a" * 43,
        "gk_0123456789abcdef_" + "a" * 42,
        "gk_0123456789abcdef_" + "a" * 42 + "!",
        "gk_0123456789abcdef",
        "gk_" + "0" * 200,
    ],
)
def test_malformed_keys(value: str) -> None:
    with pytest.raises(MalformedApiKey) as info:
        parse_key(value, "gk")
    if len(value) > 20:
        assert value[20:] not in str(info.value)


def test_secret_may_contain_separators() -> None:
    key_id, secret = parse_key("gk_0123456789abcdef_" + "a_b-" * 10 + "abc", "gk")
    assert key_id == "0123456789abcdef"
    assert secret.startswith("a_b-")
