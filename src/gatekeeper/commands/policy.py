"""``gatekeeper policy plan|apply|export|schema``: authorization as code.

``plan`` shows the diff between an access file and the stored configuration, ``apply`` applies
exactly that diff (each write conditional on the item still being as planned), ``export``
writes the stored configuration as an access file, ``schema`` prints the file's JSON Schema.
"""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import (
    Progress,
    actor_of,
    build_service,
    common_options,
    guarded,
    print_json,
)

if TYPE_CHECKING:
    from gatekeeper.admin.service import Change, Plan

EXIT_CHANGES = 2
SYMBOL = {"create": "+", "update": "~", "delete": "-"}


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "policy", help="authorization as code: plan, apply and export an access file"
    )
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    common = common_options()

    plan = sub.add_parser("plan", parents=[common], help="show what apply would change")
    plan.add_argument("-f", "--file", required=True, type=Path, help="the access file (YAML)")
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help=f"exit {EXIT_CHANGES} when there are changes (0: none, 1: error)",
    )
    plan.set_defaults(func=guarded(run_plan))

    apply = sub.add_parser("apply", parents=[common], help="apply the plan of an access file")
    apply.add_argument("-f", "--file", required=True, type=Path, help="the access file (YAML)")
    apply.set_defaults(func=guarded(run_apply))

    export = sub.add_parser("export", parents=[common], help="write the stored state as a file")
    export.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    export.set_defaults(func=guarded(run_export))

    schema = sub.add_parser("schema", help="print the access file's JSON Schema")
    schema.set_defaults(func=run_schema)


def _plan(args: argparse.Namespace) -> Plan:
    from gatekeeper.admin import access_file

    wanted = access_file.parse(args.file.read_text())
    return build_service(args).plan(wanted)


def _change_json(change: Change) -> dict[str, Any]:
    from gatekeeper.store.config_store import digest

    return {
        "action": change.action,
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "before_digest": digest(change.before) if change.before is not None else None,
        "after_digest": digest(change.after) if change.after is not None else None,
    }


def _pretty(doc: str | None) -> list[str]:
    return json.dumps(json.loads(doc), indent=2).splitlines() if doc else []


def show_plan(plan: Plan, source: str) -> None:
    if plan.empty:
        print(f"No changes. The stored configuration matches {source}.")
        return
    for change in plan.changes:
        print(
            f"{SYMBOL[change.action]} {change.action} {change.resource_type} {change.resource_id}"
        )
        if change.action == "update":
            diff = difflib.unified_diff(
                _pretty(change.before), _pretty(change.after), n=1, lineterm=""
            )
            for line in list(diff)[2:]:
                print(f"    {line}")
    counts = {a: sum(c.action == a for c in plan.changes) for a in SYMBOL}
    print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete."
    )


def run_plan(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if args.json:
        print_json({"changes": [_change_json(c) for c in plan.changes]})
    else:
        show_plan(plan, str(args.file))
    return EXIT_CHANGES if args.detailed_exitcode and not plan.empty else 0


def run_apply(args: argparse.Namespace) -> int:
    from gatekeeper.admin import access_file

    wanted = access_file.parse(args.file.read_text())
    service = build_service(args)
    plan = service.plan(wanted)
    if not args.json:
        show_plan(plan, str(args.file))
    if plan.empty:
        if args.json:
            print_json({"applied": [], "config_version": None})
        return 0
    version = service.apply(plan, actor=actor_of(args), progress=Progress("applying"))
    if args.json:
        print_json({"applied": [_change_json(c) for c in plan.changes], "config_version": version})
    else:
        print(f"Applied {len(plan.changes)} change(s); config version is now {version}.")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from gatekeeper.admin import access_file

    text = access_file.render(build_service(args).export())
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")
    return 0


def run_schema(_args: argparse.Namespace) -> int:
    from gatekeeper.admin import access_file

    print(json.dumps(access_file.json_schema(), indent=2))
    return 0
