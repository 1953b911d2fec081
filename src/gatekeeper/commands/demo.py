"""``gatekeeper demo``: the offline end-to-end demo (see :mod:`gatekeeper.demo`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the authorizer offline against moto and a local JWKS endpoint",
        description="Seeds roles, principals and API keys in moto, then sends a scripted set "
        "of requests through the real authorizer handler. Exits 1 if any decision is unexpected.",
    )
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    from gatekeeper import demo

    return demo.run()
