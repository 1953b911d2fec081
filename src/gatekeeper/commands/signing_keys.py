"""``gatekeeper signing-keys add|list|show|revoke|delete``: request-signing public keys.

A server-to-server caller signs its requests (HTTP Message Signatures) with a private key that
never leaves it; only the public half is registered here, with the principal it acts as.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import (
    UsageError,
    actor_of,
    all_pages,
    build_service,
    change_options,
    common_options,
    duration,
    print_json,
    print_list,
    print_table,
    remove_once,
    when,
)

if TYPE_CHECKING:
    from gatekeeper.admin.models import SigningKeyView

COLUMNS = ("key_id", "principal_id", "tenant", "roles", "algorithm", "state", "expires_at")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "signing-keys", help="manage request-signing public keys (signed requests)"
    )
    sub = parser.add_subparsers(dest="signing_keys_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()

    add = sub.add_parser("add", parents=[common, changes], help="register a caller's public key")
    add.add_argument("key_id", help="the keyid the caller puts in Signature-Input")
    add.add_argument(
        "--public-key",
        type=Path,
        required=True,
        metavar="PEM",
        help="the public key (never the private one)",
    )
    add.add_argument("--principal", required=True, help="principal id the key acts as")
    add.add_argument("--tenant", help="tenant of the caller")
    add.add_argument("--role", action="append", default=[], help="role (repeatable)")
    add.add_argument("--scope", action="append", default=[], help="scope (repeatable)")
    add.add_argument(
        "--algorithm",
        choices=("ed25519", "ecdsa-p256-sha256"),
        help="default: from the key (Ed25519 or EC P-256)",
    )
    add.add_argument(
        "--expires-in", type=duration, metavar="DURATION", help="expiry from now (90d, 12h)"
    )
    add.add_argument("--replace", action="store_true", help="replace an existing key")
    add.set_defaults(func=run_add)

    listing = sub.add_parser("list", parents=[common], help="list registered keys")
    listing.set_defaults(func=run_list)

    show = sub.add_parser("show", parents=[common], help="one key, with its PEM and fingerprint")
    show.add_argument("key_id")
    show.set_defaults(func=run_show)

    revoke = sub.add_parser(
        "revoke", parents=[common, changes], help="refuse its signatures (again: no change)"
    )
    revoke.add_argument("key_id")
    revoke.set_defaults(func=run_revoke)

    delete = sub.add_parser(
        "delete", parents=[common, changes], help="forget a key (none: nothing to do)"
    )
    delete.add_argument("key_id")
    delete.set_defaults(func=run_delete)


def read_public_key(path: Path) -> tuple[str, str]:
    """The PEM in ``path`` and the algorithm its key type signs with; a private key, or any
    other file, is refused by name and never echoed."""
    from gatekeeper.identity.signatures import algorithm_of

    text = path.read_text(encoding="utf-8")
    if "PRIVATE KEY" in text:
        raise UsageError(f"{path}: holds a private key; register only its public half")
    try:
        algorithm = algorithm_of(text)
    except ValueError:
        raise UsageError(f"{path}: not a PEM public key") from None
    if algorithm is None:
        raise UsageError(f"{path}: neither an Ed25519 nor an EC P-256 public key")
    return text, algorithm


def _row(view: SigningKeyView) -> list[object]:
    data = view.model_dump()
    return [when(data[c]) if c == "expires_at" else data[c] for c in COLUMNS]


def run_add(args: argparse.Namespace) -> int:
    from gatekeeper.identity.signatures import SigningKeyRecord

    pem, detected = read_public_key(args.public_key)
    record = SigningKeyRecord(
        key_id=args.key_id,
        principal_id=args.principal,
        tenant=args.tenant,
        roles=tuple(args.role),
        scopes=tuple(args.scope),
        algorithm=args.algorithm or detected,
        public_key=pem,
        expires_at=time.time() + args.expires_in if args.expires_in else None,
    )
    service = build_service(args)
    etag = service.get_signing_key(args.key_id)[1] if args.replace else None
    view, _ = service.put_signing_key(args.key_id, record, if_match=etag, actor=actor_of(args))
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print_table([_row(view)], COLUMNS)
        print(f"\nPublic key SHA-256: {view.fingerprint}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    service = build_service(args)
    views = all_pages(lambda cursor: service.list_signing_keys(limit=100, cursor=cursor))
    return print_list(args, views, COLUMNS, _row)


def run_show(args: argparse.Namespace) -> int:
    view, _ = build_service(args).get_signing_key(args.key_id)
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print_table([_row(view)], COLUMNS)
        print(f"\nPublic key SHA-256: {view.fingerprint}\n{view.public_key.rstrip()}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    view, _ = build_service(args).revoke_signing_key(
        args.key_id, if_match=None, actor=actor_of(args)
    )
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(f"Signing key {view.key_id} is {view.status}.")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    service = build_service(args)
    return remove_once(
        args,
        lambda: service.delete_signing_key(args.key_id, if_match=None, actor=actor_of(args)),
        {"key_id": args.key_id},
        f"Deleted signing key {args.key_id}.",
        f"No signing key {args.key_id}; nothing to do.",
    )
