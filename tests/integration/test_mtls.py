"""Mutual TLS through the authorizer: certificates (made with cryptography) mapped to principals
by rules in the config table, expiry, revocation, and certificate-bound tokens (RFC 8705)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from gatekeeper.identity.mtls import CertMapping, CertRevocation, parse_certificate
from gatekeeper.rbac.model import RoleAssignment
from gatekeeper.testing.certs import Issued, issue_client_cert, make_ca, with_client_cert
from gatekeeper.testing.events import http_api_event, rest_request_event
from tests.conftest import World, make_world

SPIFFE = "URI:spiffe://example.com/orders"


@pytest.fixture
def world(dynamodb: Any, jwks_server: Any, signing_key: Any) -> World:
    return make_world(dynamodb, jwks_server, signing_key, mtls=True)


@pytest.fixture
def ca(world: World) -> Issued:
    return make_ca(now=world.clock())


@pytest.fixture
def client(world: World, ca: Issued) -> Issued:
    return issue_client_cert(
        ca,
        "orders-svc",
        now=world.clock(),
        sans=(x509.UniformResourceIdentifier("spiffe://example.com/orders"),),
    )


@pytest.fixture
def mapped(world: World) -> World:
    world.store.put(
        CertMapping(
            match="san",
            value=SPIFFE,
            principal_id="svc:orders",
            tenant="acme",
            roles=("orders-reader",),
        ),
    )
    world.clock.advance(60)
    return world


def rest(cert: Issued | dict[str, Any], headers: dict[str, str] | None = None,
         method: str = "GET", path: str = "/orders") -> dict[str, Any]:  # fmt: skip
    return with_client_cert(rest_request_event(headers or {}, method, path), cert)


def test_a_mapped_certificate_alone_is_a_principal(mapped: World, client: Issued) -> None:
    result = mapped.authorizer.authorize(rest(client))
    assert result.audit.decision == "allow"
    assert result.audit.principal_id == "svc:orders" and result.audit.auth_method == "mtls"
    assert result.response is not None
    assert result.response["context"]["authMethod"] == "mtls"
    denied = mapped.authorizer.authorize(rest(client, method="POST"))
    assert denied.audit.decision == "deny"  # orders-reader may not POST


def test_http_api_certificates_too(mapped: World, client: Issued) -> None:
    event = with_client_cert(http_api_event({}, "GET", "/orders"), client)
    result = mapped.authorizer.authorize(event)
    assert result.response == {"isAuthorized": True, "context": result.response["context"]}  # type: ignore[index]
    assert result.audit.principal_id == "svc:orders"


def test_an_unmapped_certificate_is_a_401(mapped: World, ca: Issued) -> None:
    stranger = issue_client_cert(ca, "stranger", now=mapped.clock())
    result = mapped.authorizer.authorize(rest(stranger))
    assert result.unauthorized and result.audit.reason == "unknown_client_certificate"
    assert mapped.audit.events[-1].reason == "unknown_client_certificate"


def test_an_expired_certificate_is_a_401_even_with_a_mapping(mapped: World, ca: Issued) -> None:
    old = issue_client_cert(
        ca, "orders-svc", now=mapped.clock(), valid_from=mapped.clock() - 10 * 86_400,
        valid_days=5, sans=(x509.UniformResourceIdentifier("spiffe://example.com/orders"),),
    )  # fmt: skip
    result = mapped.authorizer.authorize(rest(old))
    assert result.unauthorized and result.audit.reason == "client_certificate_expired"


def test_revocation_takes_effect_within_the_refresh_interval(mapped: World, client: Issued) -> None:
    assert mapped.authorizer.authorize(rest(client)).audit.decision == "allow"
    fingerprint = parse_certificate(client.pem).fingerprint
    mapped.store.put(CertRevocation(fingerprint=fingerprint, reason="key compromise"))
    mapped.clock.advance(5)  # GATEKEEPER_CONFIG_REFRESH_SECONDS
    result = mapped.authorizer.authorize(rest(client))
    assert result.unauthorized and result.audit.reason == "client_certificate_revoked"


def test_a_revoked_certificate_is_refused_whatever_the_credential(
    mapped: World, client: Issued
) -> None:
    mapped.store.put(CertRevocation(fingerprint=parse_certificate(client.pem).fingerprint))
    mapped.clock.advance(60)
    result = mapped.authorizer.authorize(rest(client, {"x-api-key": mapped.keys.active}))
    assert result.unauthorized and result.audit.reason == "client_certificate_revoked"


@pytest.mark.parametrize(
    "block",
    [
        {"clientCertPem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {"subjectDN": "CN=orders-svc"},  # no PEM: the DN strings alone are not trusted
    ],
    ids=["garbage", "no-pem"],
)
def test_malformed_certificates_are_a_401(mapped: World, block: dict[str, Any]) -> None:
    result = mapped.authorizer.authorize(rest(block))
    assert result.unauthorized and result.audit.reason == "invalid_client_certificate"


def test_a_malformed_client_cert_block_is_a_malformed_event(mapped: World) -> None:
    result = mapped.authorizer.authorize(rest({"clientCertPem": 7}))
    assert result.unauthorized and result.audit.reason == "malformed_event"


def test_a_credential_beside_a_certificate_names_the_principal(
    mapped: World, client: Issued
) -> None:
    result = mapped.authorizer.authorize(
        rest(client, {"Authorization": f"Bearer {mapped.token()}"})
    )
    assert result.audit.principal_id == "corp:alice" and result.audit.auth_method == "jwt"


# --- RFC 8705: certificate-bound access tokens --------------------------------------------------
def test_a_bound_token_needs_its_certificate(mapped: World, client: Issued, ca: Issued) -> None:
    thumbprint = parse_certificate(client.pem).thumbprint
    token = mapped.token(cnf={"x5t#S256": thumbprint})
    bearer = {"Authorization": f"Bearer {token}"}
    ok = mapped.authorizer.authorize(rest(client, bearer))
    assert ok.audit.decision == "allow" and ok.audit.principal_id == "corp:alice"
    other = issue_client_cert(ca, "other", now=mapped.clock())
    for event in (rest(other, bearer), rest_request_event(bearer, "GET", "/orders")):
        result = mapped.authorizer.authorize(event)
        assert result.unauthorized and result.audit.reason == "certificate_binding_mismatch"


@pytest.mark.parametrize(
    "cnf",
    ["x", {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, {"x5t#S256": "short"}],
    ids=["not-object", "dpop-only", "bad-thumbprint"],
)
def test_a_confirmation_we_cannot_enforce_is_refused(mapped: World, cnf: object) -> None:
    token = mapped.token(cnf=cnf)
    result = mapped.authorizer.authorize(
        rest_request_event({"Authorization": f"Bearer {token}"}, "GET", "/orders")
    )
    assert result.unauthorized and result.audit.reason == "invalid_cnf_claim"


def test_roles_from_an_assignment_apply_to_certificate_principals(
    mapped: World, client: Issued
) -> None:
    mapped.store.put(
        RoleAssignment(principal_id="svc:orders", tenant="acme", roles=("orders-clerk",))
    )
    mapped.clock.advance(60)
    result = mapped.authorizer.authorize(rest(client, method="POST"))
    assert result.audit.decision == "allow"


def test_without_mtls_certificates_are_ignored(
    dynamodb: Any, jwks_server: Any, signing_key: Any
) -> None:
    """As in SAM's sample REQUEST event, whose clientCert is a placeholder: mTLS is opt-in."""
    plain = make_world(dynamodb, jwks_server, signing_key)
    placeholder = {"clientCertPem": "CERT_CONTENT", "subjectDN": "www.example.com"}
    result = plain.authorizer.authorize(rest(placeholder, {"x-api-key": plain.keys.active}))
    assert result.audit.decision == "allow" and result.audit.principal_id == "svc:billing"
    alone = plain.authorizer.authorize(rest(placeholder))
    assert alone.unauthorized and alone.audit.reason == "missing_credentials"
    bound = plain.token(cnf={"x5t#S256": "A" * 43})
    refused = plain.authorizer.authorize(rest(placeholder, {"Authorization": f"Bearer {bound}"}))
    assert refused.unauthorized and refused.audit.reason == "certificate_binding_mismatch"
