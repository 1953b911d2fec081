"""OIDC discovery through the authorizer: the issuer's URL alone is enough; a bad document is a
401 with its reason code and an audit event."""

from __future__ import annotations

from typing import Any

from gatekeeper.testing import LocalJwksServer, SigningKey, claims_for, mint
from gatekeeper.testing.events import rest_token_event
from tests.conftest import AUDIENCE, World, make_world


def discovered_world(dynamodb: Any, idp: LocalJwksServer, key: SigningKey) -> World:
    issuers = [{"name": "corp", "issuer": idp.issuer, "audiences": [AUDIENCE]}]
    return make_world(dynamodb, idp, key, issuers=issuers)


def token(world: World, idp: LocalJwksServer) -> str:
    claims = claims_for(
        idp.issuer, AUDIENCE, now=world.clock(), subject="alice", extra={"tenant": "acme"}
    )
    return mint(claims, world.signing_key)


def test_an_issuer_by_url_alone_is_discovered(
    dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    world = discovered_world(dynamodb, jwks_server, signing_key)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {token(world, jwks_server)}", "GET", "/orders")
    )
    assert result.audit.decision == "allow" and result.audit.principal_id == "corp:alice"
    assert (jwks_server.discovery_hits, jwks_server.hits) == (1, 1)


def test_a_document_for_another_issuer_is_a_401(
    dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    jwks_server.serve_discovery({"issuer": "https://evil.example.com", "jwks_uri": jwks_server.uri})
    world = discovered_world(dynamodb, jwks_server, signing_key)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {token(world, jwks_server)}", "GET", "/orders")
    )
    assert result.unauthorized and result.response is None
    assert result.audit.reason == "invalid_discovery_document"
    assert [e.reason for e in world.audit.events] == ["invalid_discovery_document"]
    assert jwks_server.hits == 0


def test_an_unreachable_discovery_endpoint_is_a_401(
    dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    jwks_server.serve_discovery(status=500, body=b"{}")
    world = discovered_world(dynamodb, jwks_server, signing_key)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {token(world, jwks_server)}", "GET", "/orders")
    )
    assert result.unauthorized and result.audit.reason == "discovery_unavailable"
