"""``gatekeeper mint``: a JWT of `gatekeeper serve`'s local issuer, for trying requests.

The issuer's key lives in the state directory (created on first use, never committed), so
tokens minted before a restart of ``serve`` still verify after it. The principal id is
``<issuer name>:<sub>`` (``local`` unless ``serve --issuer-name`` says otherwise).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gatekeeper.commands._admin import common_options, duration
from gatekeeper.commands._errors import UsageError


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "mint",
        parents=[common_options()],
        help="mint a test JWT of the local issuer of `gatekeeper serve`",
    )
    parser.add_argument("--sub", required=True, help="the subject (principal id <issuer>:<sub>)")
    parser.add_argument("--tenant", help="the tenant claim")
    parser.add_argument("--group", action="append", default=[], help="a group (repeat)")
    parser.add_argument("--scope", help="the scope claim, e.g. 'openid orders:read'")
    parser.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE", help="another claim"
    )
    parser.add_argument("--ttl", type=duration, default=3600, help="lifetime (default: 1h)")
    parser.add_argument("--state-dir", type=Path, help="`gatekeeper serve`'s state directory")
    parser.set_defaults(func=run_mint)


def run_mint(args: argparse.Namespace) -> int:
    from gatekeeper.serve import state

    claims: dict[str, Any] = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--claim must be NAME=VALUE: {item!r}")
        claims[name] = value
    if args.group:
        claims["groups"] = list(args.group)
    if args.scope:
        claims["scope"] = args.scope
    if not 0 < args.ttl <= 30 * 86_400:
        raise UsageError("--ttl must be between 1 s and 30 days")
    token = state.mint_token(
        args.state_dir, args.sub, tenant=args.tenant, claims=claims, ttl=args.ttl
    )
    print(token)
    return 0
