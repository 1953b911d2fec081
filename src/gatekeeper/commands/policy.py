"""``gatekeeper policy plan|apply|export|schema``: authorization as code.

``plan`` shows the diff between an access file and the stored configuration, ``apply`` applies
exactly that diff (each write conditional on the item still being as planned), ``export``
writes the stored configuration as an access file, ``schema`` prints the file's JSON Schema.

Safety: route catalogs owned by the CDK construct are kept when the file does not mention them;
deletions need ``--yes`` (or a confirmation on a terminal); duplicate keys and a present but
empty section that would delete every item of its kind are errors unless ``--force``;
permissions that match no catalogued route are warned about.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import (
    Progress,
    actor_of,
    build_service,
    change_options,
    client,
    common_options,
    print_json,
    warn,
)
from gatekeeper.commands._errors import UsageError

if TYPE_CHECKING:
    from gatekeeper.admin.access_file import AccessFile
    from gatekeeper.admin.service import AdminService, Change, Plan

EXIT_CHANGES = 2
SYMBOL = {"create": "+", "update": "~", "delete": "-"}


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "policy", help="authorization as code: plan, apply and export an access file"
    )
    sub = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    common, changes = common_options(), change_options()

    plan = sub.add_parser("plan", parents=[common], help="show what apply would change")
    _file_options(plan)
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help=f"exit {EXIT_CHANGES} when there are changes (0: none, 1: error)",
    )
    plan.add_argument(
        "--test",
        metavar="TESTS",
        type=Path,
        help="run these access tests (gatekeeper test) on the file first; any failure stops",
    )
    plan.set_defaults(func=run_plan)

    apply = sub.add_parser(
        "apply", parents=[common, changes], help="apply the plan of an access file"
    )
    _file_options(apply)
    apply.add_argument("-y", "--yes", action="store_true", help="apply deletions without asking")
    apply.set_defaults(func=run_apply)

    export = sub.add_parser(
        "export", parents=[common], help="write the stored state as a file (YAML; --json: JSON)"
    )
    export.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    export.set_defaults(func=run_export)

    schema = sub.add_parser("schema", help="print the access file's JSON Schema")
    schema.set_defaults(func=run_schema)


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", required=True, type=Path, help="the access file (YAML)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="accept duplicate keys (the last wins) and empty sections that delete every item "
        "of their kind",
    )


def read_access_file(path: Path, *, force: bool) -> AccessFile:
    """The parsed file; any problem is a :class:`UsageError` naming the file (and line)."""
    import yaml
    from pydantic import ValidationError

    from gatekeeper.admin import access_file

    text = path.read_text(encoding="utf-8")
    try:
        return access_file.parse(text, allow_duplicate_keys=force)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        hint = " (or pass --force: the last one wins)" if "duplicate key" in what else ""
        raise UsageError(f"{path}: {at}{what}{hint}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise UsageError(f"{path}: invalid: {problems}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _plan(args: argparse.Namespace) -> tuple[AccessFile, AdminService, Plan]:
    from gatekeeper.admin.ownership import managed_items
    from gatekeeper.admin.plan_checks import emptied_sections, unmatched_permissions

    wanted = read_access_file(args.file, force=args.force)
    service = build_service(args)
    owners = managed_items(client(args, "dynamodb"), args.config_table)
    plan = service.plan(wanted, owners=owners)
    emptied = emptied_sections(wanted, plan)
    if emptied and not args.force:
        raise UsageError(
            f"{args.file}: {'; '.join(emptied)}; leave the section out to keep them, "
            "or pass --force"
        )
    if wanted.roles is not None:
        catalogs = {(a.api_id, a.stage): a for a in service.export().apis or ()}
        if wanted.apis is not None:
            kept = {k.resource_id for k in plan.kept if k.resource_type == "api"}
            catalogs = {
                **{key: a for key, a in catalogs.items() if f"{key[0]}/{key[1]}" in kept},
                **{(a.api_id, a.stage): a for a in wanted.apis},
            }
        for problem in unmatched_permissions(wanted.role_models(), catalogs.values()):
            warn(f"permission matches no catalogued route: {problem}")
    return wanted, service, plan


def _label(change: Change) -> str:
    """How a change's item reads to a person (claim mappings by claim, not by their id)."""
    if change.resource_type == "claim_mapping":
        from gatekeeper.rbac.model import ClaimMapping

        doc = change.after or change.before
        if doc:
            m = ClaimMapping.model_validate_json(doc)
            return f"{m.claim}={m.value} (issuer: {m.issuer or 'any'})"
    if change.resource_type == "cert_mapping":
        from gatekeeper.identity.mtls import CertMapping

        doc = change.after or change.before
        if doc:
            c = CertMapping.model_validate_json(doc)
            return f"{c.match}={c.value} (issuer: {c.issuer_dn or 'any'})"
    return change.resource_id


def _change_json(change: Change) -> dict[str, Any]:
    from gatekeeper.store.config_store import digest

    return {
        "action": change.action,
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "label": _label(change),
        "before_digest": digest(change.before) if change.before is not None else None,
        "after_digest": digest(change.after) if change.after is not None else None,
    }


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "changes": [_change_json(c) for c in plan.changes],
        "kept": [
            {"resource_type": k.resource_type, "resource_id": k.resource_id, "owner": k.owner}
            for k in plan.kept
        ],
    }


def _pretty(doc: str | None) -> list[str]:
    return json.dumps(json.loads(doc), indent=2).splitlines() if doc else []


def show_plan(plan: Plan, source: str) -> None:
    for kept in plan.kept:
        print(f"  keep {kept.resource_type} {kept.resource_id} (managed by {kept.owner})")
    if plan.empty:
        print(f"No changes. The stored configuration matches {source}.")
        return
    for change in plan.changes:
        print(f"{SYMBOL[change.action]} {change.action} {change.resource_type} {_label(change)}")
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
    if args.test is not None:
        from gatekeeper.commands.test import check_before_plan

        check_before_plan(args.test, read_access_file(args.file, force=args.force), quiet=args.json)
    _, _, plan = _plan(args)
    if args.json:
        print_json(_plan_json(plan))
    else:
        show_plan(plan, str(args.file))
    return EXIT_CHANGES if args.detailed_exitcode and not plan.empty else 0


def _confirm_deletions(plan: Plan, args: argparse.Namespace) -> None:
    deletions = plan.deletions
    if not deletions or args.yes:
        return
    if sys.stdin.isatty() and sys.stdout.isatty() and not args.json:
        try:
            answer = input(f"Delete {len(deletions)} item(s) as shown? Type 'yes' to apply: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() == "yes":
            return
        raise UsageError("nothing applied (not confirmed)")
    raise UsageError(
        f"the plan deletes {len(deletions)} item(s); nothing applied: review it with "
        "`gatekeeper policy plan`, then pass --yes"
    )


def run_apply(args: argparse.Namespace) -> int:
    _, service, plan = _plan(args)
    if not args.json:
        show_plan(plan, str(args.file))
    if plan.empty:
        if args.json:
            print_json({"applied": [], "config_version": None, **_plan_json(plan)})
        return 0
    _confirm_deletions(plan, args)
    version = service.apply(plan, actor=actor_of(args), progress=Progress("applying"))
    if args.json:
        print_json(
            {
                "applied": [_change_json(c) for c in plan.changes],
                "config_version": version,
                "kept": _plan_json(plan)["kept"],
            }
        )
    else:
        print(f"Applied {len(plan.changes)} change(s); config version is now {version}.")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from gatekeeper.admin import access_file

    exported = build_service(args).export()
    if args.json:
        data = exported.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        text = json.dumps({"version": exported.version, **data}, indent=2) + "\n"
    else:
        text = access_file.render(exported)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def run_schema(_args: argparse.Namespace) -> int:
    from gatekeeper.admin import access_file

    print(json.dumps(access_file.json_schema(), indent=2))
    return 0
