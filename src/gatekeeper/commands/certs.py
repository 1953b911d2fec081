"""``gatekeeper certs map|mappings|unmap|revoke|revocations|unrevoke``: mTLS client certificates.

A mapping rule names the principal a certificate acts as (by SHA-256 fingerprint, a subject
alternative name or the subject DN); a revocation refuses a certificate whatever it maps to.
Both live in the config table and reach warm authorizers within the config refresh interval.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import (
    UsageError,
    actor_of,
    all_pages,
    build_service,
    change_options,
    common_options,
    print_json,
    print_list,
    print_table,
    remove_once,
    when,
)

if TYPE_CHECKING:
    from gatekeeper.admin.models import CertMappingView, CertRevocationView
    from gatekeeper.identity.mtls import ClientCertificate

MAPPING_COLUMNS = ("id", "match", "value", "principal_id", "tenant", "roles", "issuer_dn")
REVOCATION_COLUMNS = ("id", "issuer_dn", "serial_number", "reason", "revoked_at")  # id: sha256-<fp>


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "certs", help="manage client-certificate (mTLS) mappings and revocations"
    )
    sub = parser.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()

    mapping = sub.add_parser(
        "map", parents=[common, changes], help="map certificates to a principal"
    )
    by = mapping.add_mutually_exclusive_group(required=True)
    by.add_argument("--cert", type=Path, metavar="PEM", help="this certificate (its fingerprint)")
    by.add_argument("--fingerprint", help="a certificate's SHA-256, hex")
    by.add_argument("--san", help="a subject alternative name: DNS:, URI:, email: or IP:<value>")
    by.add_argument(
        "--subject-dn",
        help="a subject DN, RFC 4514 as `openssl x509 -noout -subject -nameopt RFC2253` prints it",
    )
    mapping.add_argument("--principal", required=True, help="principal id the certificate acts as")
    mapping.add_argument("--tenant", help="tenant of the caller")
    mapping.add_argument("--role", action="append", default=[], help="role (repeatable)")
    mapping.add_argument("--scope", action="append", default=[], help="scope (repeatable)")
    _issuer_options(mapping, "only certificates of this issuer (any trusted CA can issue a name)")
    mapping.add_argument("--description", default="", help="a note")
    mapping.add_argument("--replace", action="store_true", help="replace an existing rule")
    mapping.set_defaults(func=run_map)

    mappings = sub.add_parser("mappings", parents=[common], help="list mapping rules")
    mappings.set_defaults(func=run_mappings)

    unmap = sub.add_parser(
        "unmap", parents=[common, changes], help="delete a mapping rule (none: nothing to do)"
    )
    unmap.add_argument("id", help="the rule's id (certs mappings)")
    unmap.set_defaults(func=run_unmap)

    revoke = sub.add_parser(
        "revoke", parents=[common, changes], help="refuse a certificate (again: no change)"
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--cert", type=Path, metavar="PEM", help="this certificate")
    which.add_argument("--fingerprint", help="a certificate's SHA-256, hex")
    which.add_argument(
        "--serial",
        type=hex_serial,
        help="serial number in hex, as `openssl x509 -noout -serial` prints it (with --issuer-dn)",
    )
    _issuer_options(revoke, "the issuer of the serial number (with --serial)")
    revoke.add_argument("--reason", default="", help="why (kept with the revocation)")
    revoke.set_defaults(func=run_revoke)

    revocations = sub.add_parser("revocations", parents=[common], help="list revocations")
    revocations.set_defaults(func=run_revocations)

    unrevoke = sub.add_parser(
        "unrevoke", parents=[common, changes], help="lift a revocation (none: nothing to do)"
    )
    unrevoke.add_argument("id", help="the revocation's id (certs revocations)")
    unrevoke.set_defaults(func=run_unrevoke)


def _issuer_options(parser: argparse.ArgumentParser, what: str) -> None:
    issuer = parser.add_mutually_exclusive_group()
    issuer.add_argument("--issuer-dn", help=f"{what}: its DN, RFC 4514")
    issuer.add_argument(
        "--issuer-cert", type=Path, metavar="PEM", help=f"{what}: the CA's certificate"
    )


def issuer_of(args: argparse.Namespace) -> str | None:
    """The issuer DN exactly as the authorizer compares it: the CA certificate's subject, or a
    typed DN checked to be RFC 4514 (OpenSSL's default ``CN = x, O = y`` would never match)."""
    if getattr(args, "issuer_cert", None) is not None:
        return certificate_in(args.issuer_cert).subject_dn
    return None if args.issuer_dn is None else dn_option("--issuer-dn", args.issuer_dn)


def dn_option(flag: str, value: str) -> str:
    from gatekeeper.identity.mtls import canonical_dn

    try:
        return canonical_dn(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def hex_serial(text: str) -> str:
    """A serial number as OpenSSL and CRLs print it: hex, always (``1234`` is 0x1234, where the
    stored form would read digits alone as decimal); ``serial=`` and colons are allowed."""
    digits = text.strip().removeprefix("serial=").replace(":", "").lower().removeprefix("0x")
    if not digits or any(c not in "0123456789abcdef" for c in digits) or len(digits) > 64:
        raise argparse.ArgumentTypeError("hex digits, as openssl x509 -noout -serial prints them")
    return f"0x{digits}"


@contextmanager
def _named(flag: str) -> Iterator[None]:
    """A rule the model refuses as a whole (no field in pydantic's location) names the option."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["loc"]:
            raise
        raise UsageError(f"{flag}: {str(first['msg']).removeprefix('Value error, ')}") from None


def certificate_in(path: Path) -> ClientCertificate:
    """The PEM certificate in ``path``, parsed as the authorizer parses one."""
    from gatekeeper.errors import InvalidClientCertificate
    from gatekeeper.identity.mtls import parse_certificate

    try:
        return parse_certificate(path.read_text(encoding="utf-8"))
    except InvalidClientCertificate:
        raise UsageError(f"{path}: not a PEM certificate") from None


def _mapping_row(view: CertMappingView) -> list[object]:
    data = view.model_dump()
    return [data[c] for c in MAPPING_COLUMNS]


def _revocation_row(view: CertRevocationView) -> list[object]:
    data = view.model_dump()
    return [when(data[c]) if c == "revoked_at" else data[c] for c in REVOCATION_COLUMNS]


def run_map(args: argparse.Namespace) -> int:
    from gatekeeper.admin.service import cert_mapping_id, cert_mapping_view
    from gatekeeper.identity.mtls import CertMapping

    if args.cert is not None:
        match, value, flag = "fingerprint", certificate_in(args.cert).fingerprint, "--cert"
    elif args.fingerprint is not None:
        match, value, flag = "fingerprint", args.fingerprint, "--fingerprint"
    elif args.san is not None:
        match, value, flag = "san", args.san, "--san"
    else:
        match, value = "subject_dn", dn_option("--subject-dn", args.subject_dn)
        flag = "--subject-dn"
    with _named(flag):
        rule = CertMapping(
            match=match,
            value=value,
            principal_id=args.principal,
            tenant=args.tenant,
            roles=tuple(args.role),
            scopes=tuple(args.scope),
            issuer_dn=issuer_of(args),
            description=args.description,
        )
    service = build_service(args)
    mid = cert_mapping_id(rule)
    if args.replace:
        _, etag = service.get_cert_mapping(mid)
        service.put_cert_mapping(mid, rule, if_match=etag, actor=actor_of(args))
    else:
        service.create_cert_mapping(rule, actor=actor_of(args))
    view = cert_mapping_view(rule)  # what was stored: no need to read it back
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print_table([_mapping_row(view)], MAPPING_COLUMNS)
    return 0


def run_mappings(args: argparse.Namespace) -> int:
    service = build_service(args)
    views = all_pages(lambda cursor: service.list_cert_mappings(limit=100, cursor=cursor))
    return print_list(args, views, MAPPING_COLUMNS, _mapping_row)


def run_unmap(args: argparse.Namespace) -> int:
    service = build_service(args)
    return remove_once(
        args,
        lambda: service.delete_cert_mapping(args.id, if_match=None, actor=actor_of(args)),
        {"id": args.id},
        f"Deleted mapping {args.id}.",
        f"No mapping {args.id}; nothing to do.",
    )


def run_revoke(args: argparse.Namespace) -> int:
    from gatekeeper.identity.mtls import CertRevocation

    issuer = issuer_of(args)
    if (args.serial is None) != (issuer is None):
        raise UsageError("--serial and --issuer-dn (or --issuer-cert) go together")
    if args.cert is not None:
        revocation = CertRevocation(
            fingerprint=certificate_in(args.cert).fingerprint, reason=args.reason
        )
    elif args.fingerprint is not None:
        with _named("--fingerprint"):
            revocation = CertRevocation(fingerprint=args.fingerprint, reason=args.reason)
    else:
        with _named("--serial"):
            revocation = CertRevocation(
                issuer_dn=issuer, serial_number=args.serial, reason=args.reason
            )
    view, created = build_service(args).revoke_cert(revocation, actor=actor_of(args))
    if args.json:
        print_json({**view.model_dump(mode="json"), "created": created})
    elif created:
        print(f"Revoked ({view.id}); authorizers refuse it within the config refresh interval.")
    else:
        print(f"Already revoked ({view.id}) since {when(view.revoked_at)}; no change.")
    return 0


def run_revocations(args: argparse.Namespace) -> int:
    service = build_service(args)
    views = all_pages(lambda cursor: service.list_cert_revocations(limit=100, cursor=cursor))
    return print_list(args, views, REVOCATION_COLUMNS, _revocation_row)


def run_unrevoke(args: argparse.Namespace) -> int:
    service = build_service(args)
    return remove_once(
        args,
        lambda: service.delete_cert_revocation(args.id, actor=actor_of(args)),
        {"id": args.id},
        f"Lifted revocation {args.id}.",
        f"No revocation {args.id}; nothing to do.",
    )
