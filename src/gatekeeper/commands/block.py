"""``gatekeeper block add|list|remove``: the IP blocklist the authorizer checks first."""

from __future__ import annotations

import argparse
from typing import Any

from gatekeeper.commands._admin import (
    actor_of,
    all_pages,
    build_service,
    change_options,
    common_options,
    duration,
    print_json,
    print_list,
    remove_once,
    when,
)

COLUMNS = ("ip", "until", "reason", "active")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("block", help="manage IP blocks")
    sub = parser.add_subparsers(dest="block_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()

    add = sub.add_parser("add", parents=[common, changes], help="block an IP for a while")
    add.add_argument("ip")
    add.add_argument(
        "--for",
        dest="seconds",
        type=duration,
        default=3600,
        metavar="DURATION",
        help="how long (15m, 12h, 30d or seconds; default 1h)",
    )
    add.add_argument("--reason", default="manual")
    add.set_defaults(func=run_add)

    listing = sub.add_parser("list", parents=[common], help="list blocks")
    listing.set_defaults(func=run_list)

    remove = sub.add_parser(
        "remove", parents=[common, changes], help="lift a block (none there: nothing to do)"
    )
    remove.add_argument("ip")
    remove.set_defaults(func=run_remove)


def run_add(args: argparse.Namespace) -> int:
    from gatekeeper.admin.models import BlockCreate

    body = BlockCreate(seconds=args.seconds, reason=args.reason)
    view = build_service(args).add_block(args.ip, body, actor=actor_of(args))
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(f"Blocked {view.ip} until {when(view.until)} ({view.reason}).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    service = build_service(args)
    rows = all_pages(lambda cursor: service.list_blocks(limit=100, cursor=cursor))
    return print_list(args, rows, COLUMNS, lambda b: (b.ip, when(b.until), b.reason, b.active))


def run_remove(args: argparse.Namespace) -> int:
    service = build_service(args)
    return remove_once(
        args,
        lambda: service.remove_block(args.ip, actor=actor_of(args)),
        {"ip": args.ip},
        f"Removed the block on {args.ip}.",
        f"No block on {args.ip}; nothing to remove.",
    )
