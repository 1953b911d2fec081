"""OIDC discovery: an issuer by its URL alone, against a real local issuer (HTTP server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from gatekeeper.clock import FakeClock
from gatekeeper.errors import DiscoveryUnavailable, InvalidDiscoveryDocument, JwksUnavailable
from gatekeeper.identity.discovery import OidcDiscovery, discovery_uri, jwks_uri_from
from gatekeeper.identity.jwt_verifier import IssuerConfig, JwtVerifier
from gatekeeper.testing import LocalJwksServer, SigningKey, claims_for, mint, public_jwks, rsa_key
from gatekeeper.testing.jwks_server import TricklingServer
from tests.conftest import FAST, LOCAL_FETCH_TIMEOUT

AUD = "orders-api"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("d1")


@pytest.fixture
def idp(key: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(key)) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def config(idp: LocalJwksServer, **overrides: Any) -> IssuerConfig:
    fields: dict[str, Any] = {
        "name": "idp",
        "issuer": idp.issuer,
        "audiences": [AUD],
        "jwks_timeout_seconds": LOCAL_FETCH_TIMEOUT,
    }
    return IssuerConfig(**(fields | overrides))


def token(idp: LocalJwksServer, key: SigningKey, clock: FakeClock, **extra: Any) -> str:
    return mint(claims_for(idp.issuer, AUD, now=clock(), extra=extra), key)


def reason_of(verifier: JwtVerifier, jwt: str) -> str:
    with pytest.raises(JwksUnavailable) as info:
        verifier.verify(jwt)
    return info.value.reason


# --- the happy path ---------------------------------------------------------------------------
def test_issuer_url_alone_finds_the_keys(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    verifier = JwtVerifier([config(idp)], clock=clock)
    assert verifier.verify(token(idp, key, clock)).principal_id == "idp:user-1"
    assert (idp.discovery_hits, idp.hits) == (1, 1)
    verifier.verify(token(idp, key, clock))
    assert (idp.discovery_hits, idp.hits) == (1, 1)


def test_jwks_uri_stays_an_override(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    idp.serve_discovery({"issuer": "https://elsewhere.example.com", "jwks_uri": "x"})
    verifier = JwtVerifier([config(idp, jwks_uri=idp.uri)], clock=clock)
    assert verifier.verify(token(idp, key, clock))
    assert idp.discovery_hits == 0


def test_discovery_uri_is_the_issuer_without_trailing_slash() -> None:
    assert discovery_uri("https://a.example.com/") == (
        "https://a.example.com/.well-known/openid-configuration"
    )
    assert discovery_uri("https://login.example.com/tenant/v2.0") == (
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
    )


# --- bad documents ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("document", "issuer"),
    [
        ([], "https://a.example.com"),
        ({"jwks_uri": "https://a.example.com/jwks"}, "https://a.example.com"),
        ({"issuer": "https://a.example.com/", "jwks_uri": "https://a.example.com/j"},
         "https://a.example.com"),  # not exactly equal
        ({"issuer": "https://A.example.com", "jwks_uri": "https://a.example.com/j"},
         "https://a.example.com"),
        ({"issuer": "https://a.example.com"}, "https://a.example.com"),
        ({"issuer": "https://a.example.com", "jwks_uri": 7}, "https://a.example.com"),
        ({"issuer": "https://a.example.com", "jwks_uri": "/jwks"}, "https://a.example.com"),
        ({"issuer": "https://a.example.com", "jwks_uri": "http://a.example.com/j"},
         "https://a.example.com"),  # a downgrade
        ({"issuer": "https://a.example.com", "jwks_uri": "file:///etc/passwd"},
         "https://a.example.com"),
        ({"issuer": "https://a.example.com", "jwks_uri": "https://a.example.com/" + "x" * 3000},
         "https://a.example.com"),
    ],
    ids=["not-object", "no-issuer", "trailing-slash", "case", "no-jwks-uri", "jwks-uri-number",
         "relative", "downgrade", "file", "huge"],
)  # fmt: skip
def test_invalid_documents(document: object, issuer: str) -> None:
    with pytest.raises(InvalidDiscoveryDocument) as info:
        jwks_uri_from(document, issuer)
    assert info.value.reason == "invalid_discovery_document"


def test_a_document_for_another_issuer_is_refused_end_to_end(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    idp.serve_discovery({"issuer": "https://attacker.example.com", "jwks_uri": idp.uri})
    verifier = JwtVerifier([config(idp)], clock=clock)
    assert reason_of(verifier, token(idp, key, clock)) == "invalid_discovery_document"
    assert idp.hits == 0  # the JWKS it names was never fetched


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b"{}"), (404, b"{}"), (200, b"<html>"), (200, b'{"a": "' + b"x" * 70_000 + b'"}')],
    ids=["500", "404", "not-json", "too-large"],
)
def test_discovery_failures(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock, status: int, body: bytes
) -> None:
    idp.serve_discovery(status=status, body=body)
    verifier = JwtVerifier([config(idp)], clock=clock)
    assert reason_of(verifier, token(idp, key, clock)) == "discovery_unavailable"


def test_discovery_errors_carry_nothing_of_the_document(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    idp.serve_discovery({"issuer": "https://secret-looking.example.com", "jwks_uri": idp.uri})
    verifier = JwtVerifier([config(idp)], clock=clock)
    with pytest.raises(DiscoveryUnavailable) as info:
        verifier.verify(token(idp, key, clock))
    assert "secret-looking" not in str(info.value)


def test_a_trickling_discovery_endpoint_is_cut_at_the_timeout() -> None:
    with TricklingServer(b"{}") as slow:
        discovery = OidcDiscovery(slow.base, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(DiscoveryUnavailable) as info:
            discovery()
        assert info.value.reason == "discovery_unavailable"
        assert time.monotonic() - started < FAST


def test_issuer_must_be_a_url_when_jwks_uri_is_absent() -> None:
    with pytest.raises(ValidationError, match="OIDC discovery"):
        IssuerConfig(name="x", issuer="corp-issuer", audiences=["a"])
    assert IssuerConfig(name="x", issuer="corp-issuer", audiences=["a"], jwks_uri="https://j/k")


# --- caching under the JWKS rules ---------------------------------------------------------------
def test_discovery_is_cached_for_max_age_and_reread_after(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    verifier = JwtVerifier(
        [config(idp, jwks_max_age_seconds=600, kid_refetch_interval_seconds=10)], clock=clock
    )
    verifier.verify(token(idp, key, clock))
    new = rsa_key("d2")
    idp.serve(public_jwks(key, new))
    clock.advance(20)
    assert verifier.verify(token(idp, new, clock))  # a new kid: JWKS refetched
    assert (idp.discovery_hits, idp.hits) == (1, 2)  # discovery answered from cache
    clock.advance(600)
    assert verifier.verify(token(idp, new, clock))  # max age: both re-read
    assert (idp.discovery_hits, idp.hits) == (2, 3)


def test_forged_kids_cause_no_discovery_storm(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    verifier = JwtVerifier([config(idp, jwks_max_age_seconds=60)], clock=clock)
    verifier.verify(token(idp, key, clock))
    for i in range(20):
        clock.advance(5)
        forged = mint(claims_for(idp.issuer, AUD, now=clock()), key, kid=f"forged-{i}")
        with pytest.raises(Exception):  # noqa: B017, PT011 - unknown_kid, the type is not the point
            verifier.verify(forged)
    assert idp.hits <= 3 and idp.discovery_hits <= 3  # 100 s, a 60 s penalty window


def test_discovery_down_uses_the_cached_uri_until_the_ceiling(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    discovery = OidcDiscovery(idp.issuer, clock=clock, max_age=600, stale_if_error=600)
    assert discovery() == idp.uri
    idp.serve_discovery(status=500, body=b"{}")
    clock.advance(600)
    assert discovery() == idp.uri  # stale, endpoint down: the cached URI
    assert idp.discovery_hits == 2
    clock.advance(2)
    assert discovery() == idp.uri  # within failure_retry: no fetch
    assert idp.discovery_hits == 2
    clock.advance(598)
    with pytest.raises(DiscoveryUnavailable) as info:
        discovery()
    assert info.value.reason == "discovery_unavailable"
    idp.serve_discovery()
    clock.advance(5)
    assert discovery() == idp.uri


def test_a_failed_discovery_is_retried_after_failure_retry_with_its_own_reason(
    idp: LocalJwksServer, key: SigningKey, clock: FakeClock
) -> None:
    idp.serve_discovery(status=503, body=b"{}")
    verifier = JwtVerifier([config(idp)], clock=clock)
    jwt = token(idp, key, clock)
    assert reason_of(verifier, jwt) == "discovery_unavailable"
    assert reason_of(verifier, jwt) == "discovery_unavailable"  # not retried yet, same reason
    assert idp.discovery_hits == 1
    idp.serve_discovery()
    clock.advance(5)
    assert verifier.verify(jwt)
    assert (idp.discovery_hits, idp.hits) == (2, 1)
