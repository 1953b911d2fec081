"""Mutual TLS: the client certificate API Gateway verified, as a credential.

With a custom domain and a truststore, API Gateway completes the TLS handshake, checks the
client certificate's chain against the truststore (and its validity), and passes it to the
authorizer: REST ``requestContext.identity.clientCert``, HTTP API
``requestContext.authentication.clientCert`` (``clientCertPem``, ``subjectDN``, ``issuerDN``,
``serialNumber``, ``validity``). Here, with ``cryptography``:

- the PEM is parsed (the event's own DN and serial strings are not trusted over it); a missing or
  unparsable certificate is ``invalid_client_certificate``;
- it must be valid now, by our clock (``client_certificate_expired`` /
  ``client_certificate_not_yet_valid``) and not on the revocation list kept in the config table
  (``client_certificate_revoked``; effective within the config refresh interval);
- alone, it names a principal through a mapping rule (:class:`CertMapping`: SHA-256
  fingerprint, else a subject alternative name, else the subject DN; optionally only for one
  issuer DN), else ``unknown_client_certificate``;
- beside a certificate-bound access token (RFC 8705, ``cnf.x5t#S256``), its thumbprint must be
  the one the token names (``certificate_binding_mismatch``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.errors import (
    CertificateBindingMismatch,
    ClientCertificateNotYetValid,
    ExpiredClientCertificate,
    InvalidClientCertificate,
    RevokedClientCertificate,
    UnknownClientCertificate,
)
from gatekeeper.identity.principal import Principal, checked_principal_id

MAX_PEM_CHARS: Final = 16_384
"""A client certificate PEM is 1-3 KB; a larger one is refused before parsing."""

MatchKind = Literal["fingerprint", "san", "subject_dn"]
_MATCH_ORDER: Final[tuple[MatchKind, ...]] = ("fingerprint", "san", "subject_dn")


def canonical_dn(dn: str) -> str:
    """``dn`` as the authorizer compares it: RFC 4514, as ``cryptography`` prints a certificate's
    names (and ``openssl x509 -noout -subject -nameopt RFC2253``). Raises ``ValueError`` for
    anything else, such as OpenSSL's default ``CN = x, O = y``, which would never match."""
    try:
        return x509.Name.from_rfc4514_string(dn.strip()).rfc4514_string()
    except ValueError:
        raise ValueError(
            "not an RFC 4514 DN (print it with `openssl x509 -noout -subject -nameopt RFC2253`)"
        ) from None


def dn_problem(dn: str) -> str | None:
    """Why the authorizer would never match ``dn`` as written (None: it is canonical)."""
    try:
        canonical = canonical_dn(dn)
    except ValueError as exc:
        return str(exc)
    return None if canonical == dn else f"write it as {canonical!r}"


class CertMapping(BaseModel):
    """A rule mapping client certificates to a principal (stored in the config table).

    ``value`` by ``match``: ``fingerprint`` the certificate's SHA-256 (hex, any case, ``:``
    allowed); ``san`` one subject alternative name as ``DNS:<name>``, ``URI:<uri>``,
    ``email:<address>`` or ``IP:<address>``; ``subject_dn`` the subject DN in RFC 4514 form as
    ``cryptography`` prints it (``CN=orders-svc,O=Example Corp``). A ``san`` or ``subject_dn``
    rule can be limited to certificates of one ``issuer_dn`` (any CA in the truststore can issue
    any name).

    Example::

        CertMapping(match="san", value="URI:spiffe://example.com/orders",
                    principal_id="svc:orders", tenant="acme", roles=("orders-clerk",))
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: MatchKind
    value: str = Field(min_length=1, max_length=1024)
    principal_id: str = Field(min_length=1, max_length=512)
    tenant: str | None = None
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    issuer_dn: str | None = Field(default=None, description="Only certificates of this issuer.")
    description: str = ""

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _valid_value(self) -> CertMapping:
        if self.match == "fingerprint":
            hexed = self.value.replace(":", "").lower()
            if len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
                raise ValueError("a fingerprint is the SHA-256 of the certificate, 64 hex digits")
            object.__setattr__(self, "value", hexed)
        elif self.match == "san":
            kind, sep, rest = self.value.partition(":")
            if not sep or kind not in ("DNS", "URI", "email", "IP") or not rest:
                raise ValueError("a SAN is DNS:<name>, URI:<uri>, email:<address> or IP:<address>")
        return self

    @property
    def key(self) -> str:
        """A bounded storage key for the rule (a DN may be long)."""
        return f"{self.match}#{hashlib.sha256(self.value.encode()).hexdigest()[:32]}"


class CertRevocation(BaseModel):
    """One revoked client certificate (stored in the config table), by SHA-256 fingerprint or
    by issuer DN and serial number (hex or decimal, as the CA's CRL lists it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str | None = None
    issuer_dn: str | None = None
    serial_number: str | None = None
    reason: str = ""
    revoked_at: float | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CertRevocation:
        if self.fingerprint is not None:
            hexed = self.fingerprint.replace(":", "").lower()
            if len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
                raise ValueError("fingerprint must be the certificate's SHA-256, 64 hex digits")
            object.__setattr__(self, "fingerprint", hexed)
            if self.issuer_dn or self.serial_number:
                raise ValueError("give a fingerprint, or an issuer DN and a serial number")
        elif not (self.issuer_dn and self.serial_number):
            raise ValueError("give a fingerprint, or an issuer DN and a serial number")
        else:
            object.__setattr__(self, "serial_number", str(_serial(self.serial_number)))
        return self

    @property
    def key(self) -> str:
        if self.fingerprint is not None:
            return f"sha256#{self.fingerprint}"
        ident = f"{self.issuer_dn}\n{self.serial_number}"
        return f"serial#{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def _serial(value: str) -> int:
    text = value.strip().replace(":", "").lower()
    try:
        if text.startswith("0x"):
            return int(text, 16)
        return int(text) if text.isdigit() else int(text, 16)
    except ValueError:
        raise ValueError(f"serial number {value[:64]!r} is neither decimal nor hex") from None


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A parsed client certificate: the facts rules and revocations are matched on."""

    fingerprint: str  # SHA-256 of the DER, lower-case hex
    thumbprint: str  # RFC 8705 x5t#S256: base64url(SHA-256(DER)), unpadded
    subject_dn: str
    issuer_dn: str
    serial_number: int
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime


def parse_certificate(pem: str | None) -> ClientCertificate:
    """The certificate in ``pem``; :class:`InvalidClientCertificate` if there is none."""
    if not pem or not isinstance(pem, str):
        raise InvalidClientCertificate("no client certificate PEM in the event")
    if len(pem) > MAX_PEM_CHARS:
        raise InvalidClientCertificate("client certificate PEM is too large")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        der = cert.public_bytes(Encoding.DER)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        sans = _sans(cert)
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        serial = cert.serial_number
    except Exception:  # any parse failure: never echo the input
        raise InvalidClientCertificate("client certificate does not parse") from None
    digest = hashlib.sha256(der).digest()
    return ClientCertificate(
        fingerprint=digest.hex(),
        thumbprint=base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        subject_dn=subject,
        issuer_dn=issuer,
        serial_number=serial,
        sans=sans,
        not_before=not_before,
        not_after=not_after,
    )


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    names += [f"URI:{n}" for n in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    names += [f"email:{n}" for n in ext.get_values_for_type(x509.RFC822Name)]
    names += [f"IP:{n}" for n in ext.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def check_certificate(
    cert: ClientCertificate, now: float, revocations: Iterable[CertRevocation]
) -> None:
    """Refuse a certificate outside its validity (by our clock) or on the revocation list."""
    moment = datetime.fromtimestamp(now, UTC)
    if moment < cert.not_before:
        raise ClientCertificateNotYetValid("client certificate is not valid yet")
    if moment >= cert.not_after:
        raise ExpiredClientCertificate("client certificate has expired")
    for revoked in revocations:
        if revoked.fingerprint is not None:
            if revoked.fingerprint == cert.fingerprint:
                raise RevokedClientCertificate("client certificate is revoked")
        elif revoked.issuer_dn == cert.issuer_dn and revoked.serial_number == str(
            cert.serial_number
        ):
            raise RevokedClientCertificate("client certificate is revoked")


def find_mapping(cert: ClientCertificate, mappings: Iterable[CertMapping]) -> CertMapping:
    """The rule for ``cert``: a fingerprint rule first, then a SAN rule, then a subject DN rule
    (within one kind, the first stored); :class:`UnknownClientCertificate` if none."""
    rules = tuple(mappings)
    for kind in _MATCH_ORDER:
        for rule in rules:
            if rule.match != kind:
                continue
            if rule.issuer_dn is not None and rule.issuer_dn != cert.issuer_dn:
                continue
            if (
                (kind == "fingerprint" and rule.value == cert.fingerprint)
                or (kind == "san" and rule.value in cert.sans)
                or (kind == "subject_dn" and rule.value == cert.subject_dn)
            ):
                return rule
    raise UnknownClientCertificate("no mapping rule matches the client certificate")


def certificate_principal(cert: ClientCertificate, rule: CertMapping) -> Principal:
    return Principal(
        principal_id=checked_principal_id(rule.principal_id),
        auth_method="mtls",
        tenant=rule.tenant,
        roles=frozenset(rule.roles),
        scopes=frozenset(rule.scopes),
    )


def check_binding(principal: Principal, cert: ClientCertificate | None) -> None:
    """RFC 8705 section 3: a token bound to a certificate (``cnf.x5t#S256``) is only good over
    a TLS connection with that certificate."""
    bound = principal.bound_thumbprint
    if bound is None:
        return
    if cert is None:
        raise CertificateBindingMismatch("token is bound to a client certificate; none presented")
    if not hmac.compare_digest(bound.encode(), cert.thumbprint.encode()):
        raise CertificateBindingMismatch("token is bound to another client certificate")


def dn_fields(item: CertMapping | CertRevocation) -> dict[str, str]:
    """The DNs a rule or revocation holds, by field: each is compared as written."""
    fields = {"issuer_dn": item.issuer_dn} if item.issuer_dn is not None else {}
    if isinstance(item, CertMapping) and item.match == "subject_dn":
        fields["value"] = item.value
    return fields
