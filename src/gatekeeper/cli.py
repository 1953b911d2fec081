"""The ``gatekeeper`` command line: one entry point, one module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-commands and sets ``func`` (returning the exit code) on each parser. Command modules import
their heavy dependencies lazily so ``gatekeeper --help`` stays instant.

:func:`main` is the one error boundary: whatever a command raises becomes one line on stderr
naming the file, table, bucket or endpoint concerned, and exit 1 (130 for Ctrl-C); ``--debug``
adds the traceback. No command prints a traceback of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from gatekeeper.commands._admin import (
    add_global_options,
    apply_stack_outputs,
    take_audit_failures,
)

COMMAND_MODULES: tuple[str, ...] = (
    "gatekeeper.commands.demo",
    "gatekeeper.commands.tables",
    "gatekeeper.commands.archive",
    "gatekeeper.commands.policy",
    "gatekeeper.commands.keys",
    "gatekeeper.commands.certs",
    "gatekeeper.commands.signing_keys",
    "gatekeeper.commands.usage",
    "gatekeeper.commands.block",
    "gatekeeper.commands.test",
    "gatekeeper.commands.explain",
    "gatekeeper.commands.serve",
    "gatekeeper.commands.mint",
)
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gatekeeper")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        from gatekeeper.commands._errors import redact

        self.exit(2, f"{self.prog}: error: {redact(message)} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gatekeeper",
        description="API authorization for AWS API Gateway. Options of the AWS group, --json "
        "and --debug go before or after the command.",
    )
    parser.add_argument("--version", action="version", version=f"gatekeeper {version()}")
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        take_audit_failures()  # nothing left over from an earlier run in this process
        args = build_parser().parse_args(argv)
        apply_stack_outputs(args)
        code: int = args.func(args)
        undelivered = take_audit_failures()
        if undelivered:
            print(f"gatekeeper: error: {undelivered}", file=sys.stderr)
            return EXIT_ERROR
        return code
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("gatekeeper: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `gatekeeper keys list | head`: the reader left, nothing to say
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        from gatekeeper.commands._errors import describe, redact

        if debug:
            traceback.print_exc()
        print(f"gatekeeper: error: {redact(describe(exc))}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
