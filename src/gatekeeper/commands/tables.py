"""``gatekeeper tables create``: the config and counters tables, on AWS or a local endpoint.

Idempotent: a table that already exists is left as it is (and reported), so the command is
safe to run again, e.g. in a local set-up script against ``moto_server`` or dynalite. On AWS
the stack creates the tables (with encryption, backups and deletion protection): use this for
local and test endpoints.
"""

from __future__ import annotations

import argparse
from typing import Any

from gatekeeper.commands._admin import client, common_options, print_json


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "tables", help="create the config and counters tables (local endpoints)"
    )
    sub = parser.add_subparsers(dest="tables_command", required=True, metavar="ACTION")
    create = sub.add_parser(
        "create",
        parents=[common_options()],
        help="create both tables if missing (idempotent)",
        description="Creates --config-table and --counters-table (both required, or their "
        "environment variables) on the endpoint, and waits until they are active. Existing "
        "tables are left alone.",
    )
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from gatekeeper.commands._errors import UsageError
    from gatekeeper.store import tables

    if not args.config_table or not args.counters_table:
        raise UsageError(
            "name both tables: --config-table and --counters-table "
            "(or GATEKEEPER_CONFIG_TABLE and GATEKEEPER_COUNTERS_TABLE)"
        )
    dynamodb = client(args, "dynamodb")
    results: dict[str, str] = {}
    for name, definition in (
        (args.config_table, tables.table_definition(args.config_table)),
        (args.counters_table, tables.counters_table_definition(args.counters_table)),
    ):
        try:
            dynamodb.create_table(**definition)
            results[name] = "created"
        except dynamodb.exceptions.ResourceInUseException:
            results[name] = "exists"
    for name in results:
        dynamodb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    if args.json:
        print_json({"tables": [{"name": n, "result": r} for n, r in results.items()]})
    else:
        for name, result in results.items():
            print(f"Table {name}: {'created' if result == 'created' else 'already exists'}.")
    return 0
