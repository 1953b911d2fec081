"""Client certificates for the tests and the demo, made with ``cryptography`` at run time.

No private key is ever written to disk or committed; a certificate (public) may be, as in the
``events/mtls_*.json`` samples. :func:`with_client_cert` puts one where API Gateway does.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its PEM; the key stays in memory."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def subject_dn(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def issuer_dn(self) -> str:
        return self.cert.issuer.rfc4514_string()


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def make_ca(common_name: str = "Gatekeeper Test CA", *, now: float) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name, "Gatekeeper Tests")
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue_client_cert(
    ca: Issued,
    common_name: str,
    *,
    now: float,
    organization: str = "Example Corp",
    sans: tuple[x509.GeneralName, ...] = (),
    valid_from: float | None = None,
    valid_days: float = 30,
    serial: int | None = None,
) -> Issued:
    """A client certificate signed by ``ca``, valid from ``valid_from`` (default: an hour before
    ``now``) for ``valid_days``."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.fromtimestamp(valid_from if valid_from is not None else now - 3600, dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_server_cert(ca: Issued, host: str, *, now: float) -> Issued:
    """A TLS server certificate for ``host`` (a DNS name), signed by ``ca``: for local HTTPS
    endpoints (an issuer behind a proxy) that a client verifies against ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.fromtimestamp(now - 3600, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host, "Gatekeeper Tests"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def client_cert_block(issued: Issued) -> dict[str, Any]:
    """``clientCert`` as API Gateway passes it to an authorizer."""
    cert = issued.cert
    return {
        "clientCertPem": issued.pem,
        "subjectDN": issued.subject_dn,
        "issuerDN": issued.issuer_dn,
        "serialNumber": format(cert.serial_number, "X"),
        "validity": {
            "notBefore": cert.not_valid_before_utc.strftime("%b %d %H:%M:%S %Y GMT"),
            "notAfter": cert.not_valid_after_utc.strftime("%b %d %H:%M:%S %Y GMT"),
        },
    }


def with_client_cert(event: dict[str, Any], issued: Issued | dict[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` carrying the certificate where API Gateway puts it: REST (and HTTP
    API 1.0, WebSocket) ``requestContext.identity.clientCert``, HTTP API 2.0
    ``requestContext.authentication.clientCert``."""
    block = client_cert_block(issued) if isinstance(issued, Issued) else issued
    out = copy.deepcopy(event)
    ctx = out.setdefault("requestContext", {})
    if out.get("version") == "2.0":
        ctx.setdefault("authentication", {})["clientCert"] = block
    else:
        ctx.setdefault("identity", {})["clientCert"] = block
    return out
