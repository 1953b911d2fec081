"""The ``gatekeeper`` command line: one entry point, one module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-commands and sets ``func`` (returning the exit code) on each parser. Command modules import
their heavy dependencies lazily so ``gatekeeper --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "gatekeeper.commands.demo",
    "gatekeeper.commands.archive",
    "gatekeeper.commands.policy",
    "gatekeeper.commands.keys",
    "gatekeeper.commands.usage",
    "gatekeeper.commands.block",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatekeeper", description="API authorization for AWS API Gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
