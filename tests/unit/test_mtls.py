"""Client certificates (mutual TLS) as pure functions, over certificates made with cryptography."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from gatekeeper.errors import (
    CertificateBindingMismatch,
    ClientCertificateNotYetValid,
    ExpiredClientCertificate,
    InvalidClientCertificate,
    RevokedClientCertificate,
    UnknownClientCertificate,
)
from gatekeeper.identity.mtls import (
    CertMapping,
    CertRevocation,
    certificate_principal,
    check_binding,
    check_certificate,
    find_mapping,
    parse_certificate,
)
from gatekeeper.identity.principal import Principal
from gatekeeper.requests import EventKind, parse_event
from gatekeeper.testing.certs import Issued, issue_client_cert, make_ca, with_client_cert
from gatekeeper.testing.events import http_api_event, rest_request_event

NOW = time.time()
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca(now=NOW)


@pytest.fixture(scope="module")
def client(ca: Issued) -> Issued:
    return issue_client_cert(
        ca,
        "orders-svc",
        now=NOW,
        sans=(
            x509.UniformResourceIdentifier("spiffe://example.com/orders"),
            x509.DNSName("orders.internal"),
            x509.RFC822Name("ops@example.com"),
        ),
    )


# --- parsing ---------------------------------------------------------------------------------
def test_parse_reads_the_facts_rules_match_on(client: Issued, ca: Issued) -> None:
    cert = parse_certificate(client.pem)
    der = client.cert.public_bytes(serialization.Encoding.DER)
    assert cert.fingerprint == client.cert.fingerprint(hashes.SHA256()).hex()
    digest = client.cert.fingerprint(hashes.SHA256())
    assert cert.thumbprint == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(der) > 0 and len(cert.thumbprint) == 43
    assert cert.subject_dn == "O=Example Corp,CN=orders-svc"
    assert cert.issuer_dn == ca.subject_dn
    assert cert.sans == ("DNS:orders.internal", "URI:spiffe://example.com/orders",
                         "email:ops@example.com")  # fmt: skip


@pytest.mark.parametrize(
    "pem",
    [
        None,
        "",
        "not a pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n" + "A" * 20_000 + "\n-----END CERTIFICATE-----\n",
        "é-unicode",
    ],
    ids=["none", "empty", "text", "garbage-der", "huge", "non-ascii"],
)
def test_malformed_certificates_are_refused(pem: str | None) -> None:
    with pytest.raises(InvalidClientCertificate) as info:
        parse_certificate(pem)
    assert type(info.value) is InvalidClientCertificate
    assert info.value.reason == "invalid_client_certificate"


def test_a_private_key_is_not_a_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(InvalidClientCertificate) as info:
        parse_certificate(pem)
    assert "PRIVATE" not in str(info.value)


# --- validity and revocation ---------------------------------------------------------------------
def test_validity_is_checked_by_our_clock(ca: Issued) -> None:
    issued = issue_client_cert(ca, "x", now=NOW, valid_from=NOW, valid_days=1)
    cert = parse_certificate(issued.pem)
    check_certificate(cert, NOW + 10, ())
    with pytest.raises(ClientCertificateNotYetValid):
        check_certificate(cert, NOW - 10, ())
    with pytest.raises(ExpiredClientCertificate) as info:
        check_certificate(cert, NOW + 86_400, ())
    assert info.value.reason == "client_certificate_expired"


def test_revoked_by_fingerprint_or_by_issuer_and_serial(ca: Issued, client: Issued) -> None:
    cert = parse_certificate(client.pem)
    by_fp = CertRevocation(
        fingerprint=":".join(f"{b:02X}" for b in bytes.fromhex(cert.fingerprint))
    )
    with pytest.raises(RevokedClientCertificate) as info:
        check_certificate(cert, NOW, [by_fp])
    assert info.value.reason == "client_certificate_revoked"
    by_serial = CertRevocation(
        issuer_dn=ca.subject_dn, serial_number=format(client.cert.serial_number, "X")
    )
    with pytest.raises(RevokedClientCertificate):
        check_certificate(cert, NOW, [by_serial])
    other_ca = CertRevocation(issuer_dn="CN=Other CA", serial_number=str(client.cert.serial_number))
    check_certificate(cert, NOW, [other_ca])  # the same serial from another CA is another cert


def test_revocations_need_one_form() -> None:
    for bad in ({}, {"fingerprint": "ab"}, {"issuer_dn": "CN=x"}, {"serial_number": "1"},
                {"issuer_dn": "CN=x", "serial_number": "zz-not-a-number"}):  # fmt: skip
        with pytest.raises(ValidationError):
            CertRevocation.model_validate(bad)


# --- mapping rules --------------------------------------------------------------------------
def test_mapping_precedence_fingerprint_then_san_then_dn(client: Issued, ca: Issued) -> None:
    cert = parse_certificate(client.pem)
    by_dn = CertMapping(match="subject_dn", value=cert.subject_dn, principal_id="svc:dn")
    by_san = CertMapping(
        match="san", value="URI:spiffe://example.com/orders", principal_id="svc:san"
    )
    by_fp = CertMapping(match="fingerprint", value=cert.fingerprint.upper(), principal_id="svc:fp")
    assert find_mapping(cert, [by_dn, by_san, by_fp]).principal_id == "svc:fp"
    assert find_mapping(cert, [by_dn, by_san]).principal_id == "svc:san"
    assert find_mapping(cert, [by_dn]).principal_id == "svc:dn"
    with pytest.raises(UnknownClientCertificate):
        find_mapping(cert, [CertMapping(match="san", value="DNS:other", principal_id="svc:x")])


def test_a_rule_can_be_limited_to_one_issuer(client: Issued, ca: Issued) -> None:
    cert = parse_certificate(client.pem)
    rule = CertMapping(match="subject_dn", value=cert.subject_dn, principal_id="svc:dn",
                       issuer_dn="CN=Another CA")  # fmt: skip
    with pytest.raises(UnknownClientCertificate):
        find_mapping(cert, [rule])
    ours = rule.model_copy(update={"issuer_dn": ca.subject_dn})
    assert find_mapping(cert, [ours]) == ours


def test_mapping_rules_are_validated() -> None:
    with pytest.raises(ValidationError):
        CertMapping(match="fingerprint", value="abc", principal_id="x")
    with pytest.raises(ValidationError):
        CertMapping(match="san", value="spiffe://no-kind", principal_id="x")
    rule = CertMapping(match="subject_dn", value="CN=" + "x" * 900, principal_id="x")
    assert len(rule.key) < 64  # storage keys stay short whatever the DN


def test_certificate_principal(client: Issued) -> None:
    cert = parse_certificate(client.pem)
    rule = CertMapping(match="fingerprint", value=cert.fingerprint, principal_id="svc:orders",
                       tenant="acme", roles=("orders-clerk",), scopes=("orders:read",))  # fmt: skip
    principal = certificate_principal(cert, rule)
    assert (principal.principal_id, principal.auth_method, principal.tenant) == (
        "svc:orders", "mtls", "acme")  # fmt: skip
    assert principal.roles == {"orders-clerk"} and principal.scopes == {"orders:read"}


# --- RFC 8705 binding -------------------------------------------------------------------------
def test_certificate_bound_tokens(client: Issued, ca: Issued) -> None:
    cert = parse_certificate(client.pem)
    other = parse_certificate(issue_client_cert(ca, "other", now=NOW).pem)
    bound = Principal(principal_id="corp:x", auth_method="jwt", bound_thumbprint=cert.thumbprint)
    check_binding(bound, cert)
    for presented in (other, None):
        with pytest.raises(CertificateBindingMismatch) as info:
            check_binding(bound, presented)
        assert info.value.reason == "certificate_binding_mismatch"
    check_binding(Principal(principal_id="corp:y", auth_method="jwt"), None)  # not bound


# --- the event shapes -----------------------------------------------------------------------------
def test_rest_and_http_api_events_carry_the_certificate(client: Issued) -> None:
    rest = parse_event(with_client_cert(rest_request_event({}, "GET", "/orders"), client))
    assert rest.client_cert is not None and rest.client_cert.pem == client.pem
    assert rest.client_cert.subject_dn == client.subject_dn
    http = parse_event(with_client_cert(http_api_event({}, "GET", "/orders"), client))
    assert http.kind is EventKind.HTTP_V2
    assert http.client_cert is not None and http.client_cert.pem == client.pem
    assert parse_event(rest_request_event({}, "GET", "/orders")).client_cert is None
    assert "BEGIN CERTIFICATE" not in repr(rest) and "client_cert" not in rest.model_dump()


@pytest.mark.parametrize("name", ["mtls_rest_request.json", "mtls_http_api_v2.json"])
def test_sample_mtls_events(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    request = parse_event(event)
    assert request.client_cert is not None
    cert = parse_certificate(request.client_cert.pem)
    assert cert.subject_dn == request.client_cert.subject_dn == "O=Example Corp,CN=orders-svc"
    assert "URI:spiffe://example.com/orders" in cert.sans
    assert "PRIVATE KEY" not in (EVENTS / name).read_text()
