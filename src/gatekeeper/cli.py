"""The ``gatekeeper`` command line: one entry point for the demo and, later, the admin tools."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatekeeper", description="API authorization for AWS API Gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo",
        help="run the authorizer offline against moto and a local JWKS endpoint",
        description="Seeds roles, principals and API keys in moto, then sends a scripted set "
        "of requests through the real authorizer handler. Exits 1 if any decision is unexpected.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from gatekeeper import demo

        return demo.run()
    return 2  # unreachable: argparse enforces a known command


if __name__ == "__main__":
    raise SystemExit(main())
