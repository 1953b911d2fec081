"""What the admin command groups share: AWS options, the service, output, errors, progress.

Every command calls :class:`~gatekeeper.admin.service.AdminService`, the same code the admin API
runs, so a change made from the CLI is validated, versioned and audited exactly the same way.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gatekeeper.admin.audit import Actor
    from gatekeeper.admin.models import Page
    from gatekeeper.admin.service import AdminService
    from gatekeeper.audit.event import AuditEvent

EXIT_ERROR = 1
T = TypeVar("T")


def common_options() -> argparse.ArgumentParser:
    """Options every admin command takes (``parents=[common_options()]``)."""
    parser = argparse.ArgumentParser(add_help=False)
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    aws.add_argument("--region", help="AWS region (default: the profile's)")
    aws.add_argument(
        "--endpoint-url", help="DynamoDB endpoint, e.g. http://127.0.0.1:5000 for moto_server"
    )
    aws.add_argument(
        "--config-table",
        default=os.environ.get("GATEKEEPER_CONFIG_TABLE"),
        help="config table (default: $GATEKEEPER_CONFIG_TABLE)",
    )
    aws.add_argument(
        "--counters-table",
        default=os.environ.get("GATEKEEPER_COUNTERS_TABLE"),
        help="counters table, for usage and blocks (default: $GATEKEEPER_COUNTERS_TABLE)",
    )
    parser.add_argument(
        "--api-key-prefix",
        default=os.environ.get("GATEKEEPER_API_KEY_PREFIX", "gk"),
        help="prefix of new API keys; must match the authorizer's (default: $GATEKEEPER_API_KEY_"
        "PREFIX or gk)",
    )
    parser.add_argument(
        "--audit-stream",
        default=os.environ.get("GATEKEEPER_AUDIT_STREAM"),
        help="Kinesis stream (name or ARN) of the audit pipeline: changes are audited there; "
        "without it, or if a put fails, the audit event is a JSON line on stderr "
        "(default: $GATEKEEPER_AUDIT_STREAM)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    parser.add_argument(
        "--actor", help="who is making the change, for the audit event (default: AWS identity)"
    )
    return parser


class UsageError(Exception):
    """Bad command-line input that argparse could not catch."""


def build_service(args: argparse.Namespace) -> AdminService:
    import boto3

    from gatekeeper.admin.audit import SchemaAdminAuditEmitter
    from gatekeeper.admin.service import AdminService
    from gatekeeper.audit.emit import AuditEmitter, KinesisAuditEmitter
    from gatekeeper.store.config_store import DynamoConfigStore
    from gatekeeper.store.counters_admin import DynamoCountersAdminStore

    if not args.config_table:
        raise UsageError("no config table: pass --config-table or set GATEKEEPER_CONFIG_TABLE")
    region = args.region or ("us-east-1" if args.endpoint_url else None)
    session = boto3.Session(profile_name=args.profile, region_name=region)
    client = session.client("dynamodb", endpoint_url=args.endpoint_url)
    counters = (
        DynamoCountersAdminStore(client, args.counters_table) if args.counters_table else None
    )
    # Every change is audited like one made through the API: into the audit stream when one is
    # named, else (and as the fallback of a failed put) as a JSON line on stderr.
    audit: AuditEmitter = StderrAuditEmitter()
    if args.audit_stream:
        kinesis = session.client("kinesis", endpoint_url=args.endpoint_url)
        audit = KinesisAuditEmitter(kinesis, args.audit_stream, audit)
    return AdminService(
        DynamoConfigStore(client, args.config_table),
        counters=counters,
        emitter=SchemaAdminAuditEmitter(audit),
        key_prefix=args.api_key_prefix,
        source="cli",
    )


def all_pages(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """Every item of a paginated list: ``fetch(cursor)`` until there is no next cursor."""
    items: list[T] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


class StderrAuditEmitter:
    """One JSON line per audit event on stderr (read at call time, unlike a logging handler)."""

    def emit(self, event: AuditEvent) -> None:
        line = json.dumps({"audit": event.model_dump(mode="json")}, separators=(",", ":"))
        print(line, file=sys.stderr)


def actor_of(args: argparse.Namespace) -> Actor:
    """``--actor``, else the AWS identity (STS), else the local user name."""
    from gatekeeper.admin.audit import Actor

    if args.actor:
        return Actor(id=args.actor, kind="cli")
    if not args.endpoint_url:
        try:
            import boto3

            session = boto3.Session(profile_name=args.profile, region_name=args.region)
            arn = session.client("sts").get_caller_identity()["Arn"]
            return Actor(id=arn, kind="cli")
        except Exception:  # noqa: S110 - best effort; the local user name is the fallback
            pass
    return Actor(id=f"cli:{getpass.getuser()}", kind="cli")


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into one clear line on stderr and a non-zero exit code."""

    def wrapper(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError
        from pydantic import ValidationError

        from gatekeeper.admin.errors import AdminError

        try:
            return run(args)
        except AdminError as exc:
            where = f" (field: {exc.field})" if exc.field else ""
            fail(f"{exc.code}: {exc.message}{where}")
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "(file)"
                fail(f"invalid: {loc}: {err['msg']}")
        except (UsageError, OSError, ValueError) as exc:
            fail(str(exc))
        except (ClientError, BotoCoreError) as exc:
            fail(f"AWS error: {exc}")
        return EXIT_ERROR

    return wrapper


def fail(message: str) -> None:
    print(f"gatekeeper: error: {message}", file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, *, stream: Any = None, force: bool = False) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._on = force or self._stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self._on or total <= 0:
            return
        width = 30
        filled = width * done // total
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total}{end}")
        self._stream.flush()
