"""`gatekeeper certs` and `gatekeeper signing-keys` against moto, proven by the authorizer: a
rule or key written by the CLI lets a real certificate (made with cryptography) or a request
signed by the library's signer through, and a revocation made by the CLI refuses it again."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gatekeeper import cli
from gatekeeper.identity.mtls import parse_certificate
from gatekeeper.testing.certs import Issued, issue_client_cert, make_ca, with_client_cert
from gatekeeper.testing.events import rest_request_event
from gatekeeper.testing.signing import public_pem, sign_request
from tests.conftest import COUNTERS, TABLE, World, make_world

AWS = ["--config-table", TABLE, "--counters-table", COUNTERS]
SPIFFE = "URI:spiffe://example.com/orders"


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("GATEKEEPER_AUDIT_LOG", str(path))
    return path


def gk(capsys: pytest.CaptureFixture[str], *argv: str, change: bool = True) -> tuple[int, str]:
    code = cli.main([*AWS, *argv, *(["--actor", "tester"] if change else [])])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


# --- client certificates --------------------------------------------------------------------
@pytest.fixture
def world(dynamodb: Any, jwks_server: Any, signing_key: Any) -> World:
    return make_world(dynamodb, jwks_server, signing_key, mtls=True, counters_table=COUNTERS)


@pytest.fixture
def ca(world: World) -> Issued:
    return make_ca(now=world.clock())


@pytest.fixture
def client(world: World, ca: Issued) -> Issued:
    spiffe = x509.UniformResourceIdentifier("spiffe://example.com/orders")
    return issue_client_cert(ca, "orders-svc", now=world.clock(), sans=(spiffe,))


def decide(world: World, event: dict[str, Any]) -> tuple[str, str | None]:
    world.clock.advance(60)  # past the config refresh interval
    result = world.authorizer.authorize(event)
    return result.audit.decision, result.audit.reason


def cert_request(cert: Issued, method: str = "GET") -> dict[str, Any]:
    return with_client_cert(rest_request_event({}, method, "/orders"), cert)


def test_a_certificate_mapped_and_revoked_from_the_cli(
    world: World, ca: Issued, client: Issued, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert decide(world, cert_request(client))[1] == "unknown_client_certificate"
    code, out = gk(
        capsys,
        "certs",
        "map",
        "--san",
        SPIFFE,
        "--principal",
        "svc:orders",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
        "--issuer-dn",
        ca.subject_dn,
    )
    assert code == 0 and "svc:orders" in out
    assert decide(world, cert_request(client)) == ("allow", "allowed")
    assert decide(world, cert_request(client, "POST"))[0] == "deny"  # orders-reader: no POST
    # another CA's certificate with the same SAN does not match a rule limited to one issuer
    other = issue_client_cert(
        make_ca("Other CA", now=world.clock()),
        "orders-svc",
        now=world.clock(),
        sans=(x509.UniformResourceIdentifier("spiffe://example.com/orders"),),
    )
    assert decide(world, cert_request(other))[1] == "unknown_client_certificate"

    pem = tmp_path / "orders-svc.pem"
    pem.write_text(client.pem)
    code, out = gk(capsys, "certs", "revoke", "--cert", str(pem), "--reason", "key compromise")
    assert code == 0 and out.startswith("Revoked (sha256-")
    assert decide(world, cert_request(client))[1] == "client_certificate_revoked"
    code, out = gk(capsys, "certs", "revoke", "--cert", str(pem))
    assert code == 0 and "Already revoked" in out  # again: no change
    code, out = gk(capsys, "certs", "revocations", "--json", change=False)
    [listed] = json.loads(out)
    fingerprint = parse_certificate(client.pem).fingerprint
    assert listed["fingerprint"] == fingerprint and listed["reason"] == "key compromise"
    assert listed["revoked_at"] is not None

    assert gk(capsys, "certs", "unrevoke", listed["id"])[0] == 0
    assert decide(world, cert_request(client)) == ("allow", "allowed")
    code, out = gk(capsys, "certs", "mappings", "--json", change=False)
    [rule] = json.loads(out)
    assert rule["match"] == "san" and rule["value"] == SPIFFE and rule["id"].startswith("san-")
    assert gk(capsys, "certs", "unmap", rule["id"]) == (0, f"Deleted mapping {rule['id']}.\n")
    assert decide(world, cert_request(client))[1] == "unknown_client_certificate"
    code, out = gk(capsys, "certs", "unmap", rule["id"])
    assert code == 0 and "nothing to do" in out


def test_a_fingerprint_rule_from_a_certificate_file_and_a_serial_revocation(
    world: World, ca: Issued, client: Issued, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pem = tmp_path / "orders-svc.pem"
    pem.write_text(client.pem)
    code, _ = gk(
        capsys,
        "certs",
        "map",
        "--cert",
        str(pem),
        "--principal",
        "svc:pinned",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
    )
    assert code == 0
    result = world.authorizer.authorize(cert_request(client))  # refresh interval not yet passed
    world.clock.advance(60)
    result = world.authorizer.authorize(cert_request(client))
    assert result.audit.decision == "allow" and result.audit.principal_id == "svc:pinned"
    # the same rule again is a conflict; --replace changes it
    code, out = gk(capsys, "certs", "map", "--cert", str(pem), "--principal", "svc:pinned")
    assert code == 1 and "already exists" in out
    code, _ = gk(
        capsys,
        "certs",
        "map",
        "--cert",
        str(pem),
        "--principal",
        "svc:pinned",
        "--tenant",
        "acme",
        "--role",
        "orders-clerk",
        "--replace",
    )
    assert code == 0
    serial = format(parse_certificate(client.pem).serial_number, "x")
    code, _ = gk(capsys, "certs", "revoke", "--issuer-dn", ca.subject_dn, "--serial", serial)
    assert code == 0
    assert decide(world, cert_request(client))[1] == "client_certificate_revoked"


def test_a_serial_is_hex_as_openssl_prints_it_even_when_all_digits(
    world: World, ca: Issued, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spiffe = x509.UniformResourceIdentifier("spiffe://example.com/orders")
    cert = issue_client_cert(ca, "digits", now=world.clock(), sans=(spiffe,), serial=0x1234)
    code, _ = gk(
        capsys,
        "certs",
        "map",
        "--san",
        SPIFFE,
        "--principal",
        "svc:orders",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
    )
    assert code == 0
    assert decide(world, cert_request(cert))[0] == "allow"
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_text(ca.pem)  # the issuer by its certificate: no DN to type
    code, _ = gk(capsys, "certs", "revoke", "--issuer-cert", str(ca_pem), "--serial", "serial=1234")
    assert code == 0
    assert decide(world, cert_request(cert))[1] == "client_certificate_revoked"
    with pytest.raises(SystemExit) as usage:  # argparse: exit 2 with the usage line
        gk(capsys, "certs", "revoke", "--issuer-dn", ca.subject_dn, "--serial", "12zz")
    assert usage.value.code == 2 and "hex digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--san", "spiffe://no-kind", "--principal", "p"], "--san: a SAN is DNS:"),
        (["--fingerprint", "abc", "--principal", "p"], "64 hex digits"),
        (["--subject-dn", "CN=x", "--principal", "p", "--role", "nope"], "unknown role(s): nope"),
    ],
)
def test_bad_mapping_input_is_one_line_and_nothing_is_stored(
    world: World, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out = gk(capsys, "certs", "map", *argv)
    assert code == 1 and says in out and len(out.strip().splitlines()) == 1
    assert gk(capsys, "certs", "mappings", "--json", change=False) == (0, "[]\n")


def test_a_dn_in_openssl_default_form_is_refused_not_stored_to_never_match(
    world: World, ca: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    """``openssl x509 -noout -issuer`` prints ``CN = x, O = y``; the authorizer compares RFC 4514
    (``O=y,CN=x`` here): a rule or revocation with the former would silently never apply."""
    openssl_default = ", ".join(
        f"{a.rfc4514_attribute_name} = {a.value!s}" for a in ca.cert.subject
    )
    code, out = gk(
        capsys,
        "certs",
        "map",
        "--san",
        SPIFFE,
        "--principal",
        "svc:orders",
        "--issuer-dn",
        openssl_default,
    )
    assert code == 1 and "--issuer-dn: not an RFC 4514 DN" in out and "RFC2253" in out
    code, out = gk(capsys, "certs", "revoke", "--serial", "1f", "--issuer-dn", openssl_default)
    assert code == 1 and "--issuer-dn: not an RFC 4514 DN" in out
    code, out = gk(
        capsys,
        "certs",
        "map",
        "--subject-dn",
        "CN = orders, O = Example",
        "--principal",
        "svc:orders",
    )
    assert code == 1 and "--subject-dn: not an RFC 4514 DN" in out
    assert gk(capsys, "certs", "mappings", "--json", change=False) == (0, "[]\n")
    assert gk(capsys, "certs", "revocations", "--json", change=False) == (0, "[]\n")


def test_a_file_that_is_not_a_certificate_is_named(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n")
    code, out = gk(capsys, "certs", "revoke", "--cert", str(bad))
    assert code == 1 and out == f"gatekeeper: error: {bad}: not a PEM certificate\n"
    code, out = gk(capsys, "certs", "revoke", "--serial", "0a")
    assert code == 1 and "--serial and --issuer-dn (or --issuer-cert) go together" in out


# --- request-signing keys -------------------------------------------------------------------
def signed_request(world: World, private: Any, key_id: str) -> dict[str, Any]:
    headers = sign_request(
        private,
        key_id=key_id,
        method="GET",
        path="/orders",
        nonce=secrets.token_urlsafe(18),
        created=world.clock(),
    )
    event = rest_request_event(headers, "GET", "/orders")
    event["requestContext"]["path"] = "/orders"  # a custom domain without a base path
    return event


def write_pem(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_a_signing_key_registered_revoked_and_deleted_from_the_cli(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pub = write_pem(tmp_path / "reporting.pub.pem", public_pem(private))
    assert decide(world, signed_request(world, private, "reporting-ed"))[1] == (
        "unknown_signing_key"
    )
    code, out = gk(
        capsys,
        "signing-keys",
        "add",
        "reporting-ed",
        "--public-key",
        pub,
        "--principal",
        "svc:reporting",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
        "--expires-in",
        "90d",
    )
    assert code == 0 and "ed25519" in out and "Public key SHA-256: " in out
    result_event = signed_request(world, private, "reporting-ed")
    assert decide(world, result_event) == ("allow", "allowed")
    code, out = gk(capsys, "signing-keys", "list", "--json", change=False)
    [view] = json.loads(out)
    assert view["state"] == "active" and view["principal_id"] == "svc:reporting"
    assert view["expires_at"] > world.clock() + 89 * 86_400

    assert gk(capsys, "signing-keys", "revoke", "reporting-ed")[0] == 0
    assert decide(world, signed_request(world, private, "reporting-ed"))[1] == (
        "signing_key_revoked"
    )
    code, out = gk(capsys, "signing-keys", "revoke", "reporting-ed")
    assert code == 0 and out == "Signing key reporting-ed is revoked.\n"  # again: no change
    code, out = gk(capsys, "signing-keys", "show", "reporting-ed", change=False)
    assert code == 0 and "BEGIN PUBLIC KEY" in out and "revoked" in out
    assert gk(capsys, "signing-keys", "delete", "reporting-ed")[0] == 0
    assert decide(world, signed_request(world, private, "reporting-ed"))[1] == (
        "unknown_signing_key"
    )
    code, out = gk(capsys, "signing-keys", "delete", "reporting-ed")
    assert code == 0 and "nothing to do" in out


def test_the_algorithm_comes_from_the_key_and_a_mismatch_is_refused(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pub = write_pem(tmp_path / "ec.pub.pem", public_pem(private))
    code, out = gk(
        capsys,
        "signing-keys",
        "add",
        "billing-ec",
        "--public-key",
        pub,
        "--principal",
        "svc:billing",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
        "--algorithm",
        "ed25519",
    )
    assert code == 1 and "public_key: ed25519 needs an Ed25519 key" in out
    code, out = gk(
        capsys,
        "signing-keys",
        "add",
        "billing-ec",
        "--public-key",
        pub,
        "--principal",
        "svc:billing",
        "--tenant",
        "acme",
        "--role",
        "orders-reader",
    )
    assert code == 0 and "ecdsa-p256-sha256" in out
    assert decide(world, signed_request(world, private, "billing-ec")) == ("allow", "allowed")
    # registering again needs --replace (the stored key is not silently swapped)
    code, out = gk(
        capsys,
        "signing-keys",
        "add",
        "billing-ec",
        "--public-key",
        pub,
        "--principal",
        "svc:billing",
    )
    assert code == 1 and "If-Match" in out


def test_keys_that_must_not_be_registered_are_refused_without_echo(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    secret_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    leaked = write_pem(tmp_path / "private.pem", secret_pem)
    code, out = gk(
        capsys, "signing-keys", "add", "k1", "--public-key", leaked, "--principal", "svc:x"
    )
    assert code == 1 and "holds a private key" in out
    body = b"".join(secret_pem.splitlines()[1:-1]).decode()
    assert body[:20] not in out
    rsa_like = write_pem(tmp_path / "p384.pem", public_pem(ec.generate_private_key(ec.SECP384R1())))
    code, out = gk(
        capsys, "signing-keys", "add", "k2", "--public-key", rsa_like, "--principal", "svc:x"
    )
    assert code == 1 and "neither an Ed25519 nor an EC P-256 public key" in out
    code, out = gk(
        capsys,
        "signing-keys",
        "add",
        "bad id!",
        "--public-key",
        write_pem(tmp_path / "ok.pem", public_pem(private)),
        "--principal",
        "svc:x",
    )
    assert code == 1 and "key_id" in out
    assert gk(capsys, "signing-keys", "list", "--json", change=False) == (0, "[]\n")
