"""``gatekeeper usage show|reset``: current rate-limit usage of a rule and scope key."""

from __future__ import annotations

import argparse
from typing import Any

from gatekeeper.commands._admin import (
    actor_of,
    build_service,
    change_options,
    common_options,
    human_duration,
    print_json,
    print_table,
    when,
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("usage", help="read or reset usage")
    sub = parser.add_subparsers(dest="usage_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()
    for name, run, text, parents in (
        ("show", run_show, "show a rule's counts for a scope key", [common]),
        ("reset", run_reset, "delete a rule's windows for a scope key", [common, changes]),
    ):
        cmd = sub.add_parser(name, parents=parents, help=text)
        cmd.add_argument("rule_id")
        cmd.add_argument("scope_key", help="the tenant, principal, key id or IP counted")
        cmd.set_defaults(func=run)


def run_show(args: argparse.Namespace) -> int:
    view = build_service(args).usage(args.rule_id, args.scope_key)
    if args.json:
        print_json(view.model_dump(mode="json"))
        return 0
    print(
        f"{view.rule_id} / {view.scope_key}: {view.current_count} of {view.limit} "
        f"per {human_duration(view.window_seconds)} used, {view.remaining} remaining"
    )
    print_table([(when(w.window_start), w.count) for w in view.windows], ("window_start", "count"))
    return 0


def run_reset(args: argparse.Namespace) -> int:
    done = build_service(args).reset_usage(args.rule_id, args.scope_key, actor=actor_of(args))
    if args.json:
        print_json(done.model_dump(mode="json"))
    else:
        print(f"Reset {done.rule_id} / {done.scope_key}: {done.deleted_items} item(s) deleted.")
    return 0
