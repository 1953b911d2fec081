"""The verified-token cache inside the authorizer: a repeated JWT skips the signature check, and
nothing the verifier would refuse gets through because an earlier request was allowed."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.authorizer import AuthorizerResult
from gatekeeper.rbac.model import Role
from gatekeeper.testing import claims_for, mint, public_jwks, rsa_key
from gatekeeper.testing.events import rest_token_event
from tests.conftest import AUDIENCE, ISSUER, World


@pytest.fixture
def verifications(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    verifier = world.authorizer._jwt
    real = verifier.verify
    calls: list[str] = []

    def counting(token: str) -> Any:
        calls.append(token)
        return real(token)

    monkeypatch.setattr(verifier, "verify", counting)
    return calls


def decide(
    world: World, token: str, method: str = "GET", path: str = "/orders"
) -> AuthorizerResult:
    return world.authorizer.authorize(rest_token_event(f"Bearer {token}", method, path))


def allowed(result: AuthorizerResult) -> bool:
    return result.audit.decision == "allow"


def long_token(world: World, key: Any = None, ttl: float = 86_400) -> str:
    claims = claims_for(
        ISSUER, AUDIENCE, now=world.clock(), subject="alice", ttl=ttl, extra={"tenant": "acme"}
    )
    return mint(claims, key or world.signing_key)


def test_a_repeated_token_is_verified_once(world: World, verifications: list[str]) -> None:
    token = world.token()
    for _ in range(5):
        assert allowed(decide(world, token))
    assert len(verifications) == 1
    other = world.token()
    assert allowed(decide(world, other))
    assert len(verifications) == 2


def test_a_cached_token_still_gets_each_requests_own_rbac_answer(world: World) -> None:
    token = world.token()
    assert allowed(decide(world, token, "GET", "/orders"))
    denied = decide(world, token, "DELETE", "/orders/1")
    assert denied.audit.decision == "deny" and denied.audit.reason == "explicit_deny"


def test_failures_are_never_cached_and_a_forgery_is_another_token(
    world: World, verifications: list[str]
) -> None:
    token = world.token()
    assert allowed(decide(world, token))
    head, body, _ = token.split(".")
    forged = f"{head}.{body}.{mint({'x': 1}, world.signing_key).split('.')[2]}"
    for _ in range(2):
        result = decide(world, forged)
        assert result.unauthorized and result.audit.reason == "invalid_signature"
    assert verifications.count(forged) == 2


def test_an_expired_token_is_refused_even_after_being_cached(world: World) -> None:
    token = world.token()  # 300 s
    assert allowed(decide(world, token))
    world.clock.advance(300 + 31)  # past exp and the verifier's 30 s leeway
    result = decide(world, token)
    assert result.unauthorized and result.audit.reason == "token_expired"


def test_a_key_withdrawn_from_the_jwks_is_refused_once_the_key_set_is_re_read(
    world: World, verifications: list[str]
) -> None:
    """The issuer rotates: the old key leaves the JWKS. A token signed with a new key makes the
    verifier re-read the set; the cached token of the old key is judged again, and refused."""
    old = long_token(world)
    assert allowed(decide(world, old))
    new_key = rsa_key("next-2027")
    world.jwks.serve(public_jwks(new_key))
    world.clock.advance(61)  # past the unknown-kid refetch penalty
    assert allowed(decide(world, long_token(world, new_key)))
    result = decide(world, old)
    assert result.unauthorized and result.audit.reason == "unknown_kid"


def test_a_withdrawn_key_stops_working_at_the_jwks_max_age_without_other_traffic(
    world: World,
) -> None:
    """No other token triggers a re-read: the cache must not outlive the key set's max age."""
    old = long_token(world)
    assert allowed(decide(world, old))
    world.jwks.serve(public_jwks(rsa_key("next-2027")))
    world.clock.advance(1800)
    assert allowed(decide(world, old))  # the verifier itself would still accept it here
    world.clock.advance(1800)  # 3600 s: the key set is re-read on this request
    result = decide(world, old)
    assert result.unauthorized and result.audit.reason == "unknown_kid"


def test_a_key_replaced_under_the_same_kid_is_refused(world: World) -> None:
    old = long_token(world)
    assert allowed(decide(world, old))
    impostor = rsa_key(world.signing_key.kid)  # same kid, other key material
    world.jwks.serve(public_jwks(impostor))
    world.clock.advance(3600)
    result = decide(world, old)
    assert result.unauthorized and result.audit.reason == "invalid_signature"


def test_a_config_version_change_drops_the_cache(world: World, verifications: list[str]) -> None:
    token = world.token()
    assert allowed(decide(world, token))
    world.store.put(Role(name="spare", permissions=()))  # a new config version
    world.clock.advance(5)  # the next request re-reads the version
    assert allowed(decide(world, token))
    assert allowed(decide(world, token))
    assert len(verifications) == 2  # once before the change, once after it
