"""``gatekeeper keys create|list|revoke|rotate``: API keys (the plaintext is shown once)."""

from __future__ import annotations

import argparse
import re
import time
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import (
    actor_of,
    all_pages,
    build_service,
    change_options,
    common_options,
    duration,
    key_prefix_option,
    print_json,
    print_list,
    print_table,
    when,
)

if TYPE_CHECKING:
    from gatekeeper.admin.models import KeyView

COLUMNS = ("key_id", "principal_id", "tenant", "name", "roles", "state", "expires_at")
_WHOLE_KEY = re.compile(r"^[a-z][a-z0-9]{1,9}_([0-9a-f]{16})_.+$")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("keys", help="manage API keys")
    sub = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()

    create = sub.add_parser("create", parents=[common, changes], help="create a key (shown once)")
    create.add_argument("--principal", required=True, help="principal id the key acts as")
    create.add_argument("--tenant", help="tenant of the key's caller")
    create.add_argument("--name", default="", help="a label")
    create.add_argument("--role", action="append", default=[], help="role (repeatable)")
    create.add_argument("--scope", action="append", default=[], help="scope (repeatable)")
    create.add_argument(
        "--expires-in", type=duration, metavar="DURATION", help="expiry from now (30d, 12h, 3600)"
    )
    create.add_argument("--usage-identifier", help="API Gateway usage-plan key value")
    key_prefix_option(create)
    create.set_defaults(func=run_create)

    listing = sub.add_parser("list", parents=[common], help="list keys (never their secrets)")
    listing.set_defaults(func=run_list)

    revoke = sub.add_parser(
        "revoke", parents=[common, changes], help="revoke a key now (again: no change)"
    )
    revoke.add_argument("key_id", type=key_id, help="the key id (not the key itself)")
    revoke.set_defaults(func=run_revoke)

    rotate = sub.add_parser(
        "rotate", parents=[common, changes], help="new key; the old one gets a grace"
    )
    rotate.add_argument("key_id", type=key_id, help="the key id (not the key itself)")
    rotate.add_argument(
        "--grace",
        type=duration,
        default=86_400,
        metavar="DURATION",
        help="how long the old key keeps working (default 1d)",
    )
    key_prefix_option(rotate)
    rotate.set_defaults(func=run_rotate)


def key_id(text: str) -> str:
    """A key id; a whole key (secret included) is refused without echoing the secret."""
    whole = _WHOLE_KEY.match(text.strip())
    if whole:
        raise argparse.ArgumentTypeError(
            f"that is a whole API key, secret included; pass only its key id: {whole.group(1)}"
        )
    return text


def _row(view: KeyView) -> list[object]:
    data = view.model_dump()
    return [when(data[c]) if c == "expires_at" else data[c] for c in COLUMNS]


def run_create(args: argparse.Namespace) -> int:
    from gatekeeper.admin.models import KeyCreate

    body = KeyCreate(
        principal_id=args.principal,
        tenant=args.tenant,
        name=args.name,
        roles=tuple(args.role),
        scopes=tuple(args.scope),
        expires_at=time.time() + args.expires_in if args.expires_in else None,
        usage_identifier=args.usage_identifier,
    )
    created = build_service(args).create_key(body, actor=actor_of(args))
    if args.json:
        print_json(created.model_dump(mode="json"))
        return 0
    print_table([_row(created.key)], COLUMNS)
    print(f"\nAPI key (shown once, store it now): {created.api_key}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    service = build_service(args)
    views = all_pages(lambda cursor: service.list_keys(limit=100, cursor=cursor))
    return print_list(args, views, COLUMNS, _row)


def run_revoke(args: argparse.Namespace) -> int:
    view, _ = build_service(args).revoke_key(args.key_id, if_match=None, actor=actor_of(args))
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(f"Key {view.key_id} is {view.status}.")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from gatekeeper.admin.models import KeyRotate

    rotated = build_service(args).rotate_key(
        args.key_id, KeyRotate(grace_seconds=args.grace), if_match=None, actor=actor_of(args)
    )
    if args.json:
        print_json(rotated.model_dump(mode="json"))
        return 0
    print_table([_row(rotated.old), _row(rotated.new)], COLUMNS)
    print(f"\nOld key {rotated.old.key_id} works until {when(rotated.old.grace_until)}.")
    print(f"New API key (shown once, store it now): {rotated.api_key}")
    return 0
