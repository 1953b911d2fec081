"""``gatekeeper block add|list|remove``: the IP blocklist the authorizer checks first."""

from __future__ import annotations

import argparse
from typing import Any

from gatekeeper.commands._admin import (
    actor_of,
    all_pages,
    build_service,
    common_options,
    guarded,
    print_json,
    print_table,
)

COLUMNS = ("ip", "until", "reason", "active")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("block", help="manage IP blocks")
    sub = parser.add_subparsers(dest="block_command", required=True, metavar="ACTION")
    common = common_options()

    add = sub.add_parser("add", parents=[common], help="block an IP for a while")
    add.add_argument("ip")
    add.add_argument("--for", dest="seconds", type=int, default=3600, metavar="SECONDS")
    add.add_argument("--reason", default="manual")
    add.set_defaults(func=guarded(run_add))

    listing = sub.add_parser("list", parents=[common], help="list blocks")
    listing.set_defaults(func=guarded(run_list))

    remove = sub.add_parser("remove", parents=[common], help="lift a block")
    remove.add_argument("ip")
    remove.set_defaults(func=guarded(run_remove))


def run_add(args: argparse.Namespace) -> int:
    from gatekeeper.admin.models import BlockCreate

    body = BlockCreate(seconds=args.seconds, reason=args.reason)
    view = build_service(args).add_block(args.ip, body, actor=actor_of(args))
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(f"Blocked {view.ip} until {view.until} ({view.reason}).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    service = build_service(args)
    rows = all_pages(lambda cursor: service.list_blocks(limit=100, cursor=cursor))
    if args.json:
        print_json([b.model_dump(mode="json") for b in rows])
    else:
        print_table([[getattr(b, c) for c in COLUMNS] for b in rows], COLUMNS)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    build_service(args).remove_block(args.ip, actor=actor_of(args))
    if args.json:
        print_json({"removed": args.ip})
    else:
        print(f"Removed the block on {args.ip}.")
    return 0
