"""What the admin command groups share: options, the service, output, audit, progress.

Every command calls :class:`~gatekeeper.admin.service.AdminService`, the same code the admin API
runs, so a change made from the CLI is validated, versioned and audited exactly the same way.

Options come in two kinds. *Global* options (AWS connection, ``--json``, ``--debug``) are
accepted before or after the sub-command: the top-level parser holds their defaults and each
sub-command re-declares them with ``default=SUPPRESS``, so a value given after the
sub-command wins and an absent one leaves the top-level value alone. *Change* options
(``--actor``, ``--audit-stream``, ``--audit-log``) exist only on commands that change something.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from gatekeeper.commands._errors import UsageError, watch

if TYPE_CHECKING:
    from gatekeeper.admin.audit import Actor
    from gatekeeper.admin.models import Page
    from gatekeeper.admin.service import AdminService
    from gatekeeper.audit.event import AuditEvent

__all__ = ["UsageError"]

EXIT_ERROR = 1
T = TypeVar("T")


# --- options ----------------------------------------------------------------------------------
def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command accepts before or after its name (see the module doc)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the traceback of an error",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )
    aws = parser.add_argument_group("AWS")
    aws.add_argument(
        "--profile", default=default(None), help="AWS profile (default: the credential chain)"
    )
    aws.add_argument(
        "--region",
        default=default(None),
        help="AWS region (default: the profile's; us-east-1 with --endpoint-url)",
    )
    aws.add_argument(
        "--endpoint-url",
        default=default(os.environ.get("GATEKEEPER_ENDPOINT_URL")),
        help="AWS endpoint, e.g. http://127.0.0.1:5000 for moto_server "
        "(default: $GATEKEEPER_ENDPOINT_URL)",
    )
    aws.add_argument(
        "--stack-outputs",
        metavar="FILE",
        default=default(os.environ.get("GATEKEEPER_STACK_OUTPUTS")),
        help="`cdk deploy --outputs-file` JSON of the Gatekeeper stack: tables, region, audit "
        "stream, archive bucket, prefix and signing key where not given otherwise "
        "(default: $GATEKEEPER_STACK_OUTPUTS)",
    )
    aws.add_argument(
        "--config-table",
        default=default(os.environ.get("GATEKEEPER_CONFIG_TABLE")),
        help="config table (default: $GATEKEEPER_CONFIG_TABLE)",
    )
    aws.add_argument(
        "--counters-table",
        default=default(os.environ.get("GATEKEEPER_COUNTERS_TABLE")),
        help="counters table, for usage and blocks (default: $GATEKEEPER_COUNTERS_TABLE)",
    )


STACK_OUTPUTS: dict[str, str] = {
    "config_table": "ConfigTableName",
    "counters_table": "CountersTableName",
    "region": "Region",
    "audit_stream": "AuditStreamName",
    "bucket": "ArchiveBucketName",
    "prefix": "ArchivePrefix",
    "kms": "DigestSigningKeyArn",
    "function": "AuditSinkFunctionName",  # archive replay --function
}
"""Option of the CLI -> output of the stack (infra/cdk/gatekeeper_cdk/stack.py) that fills it."""


def apply_stack_outputs(args: argparse.Namespace) -> None:
    """Fill options left unset (no flag, no environment variable) from ``--stack-outputs``."""
    path = getattr(args, "stack_outputs", None)
    if not path:
        return
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    stacks = [v for v in dict(data).values() if isinstance(v, dict) and "ConfigTableName" in v]
    if len(stacks) != 1:
        raise UsageError(
            f"{path}: expected the outputs of one Gatekeeper stack "
            f"(cdk deploy --outputs-file), found {len(stacks)}"
        )
    outputs = stacks[0]
    for attr, name in STACK_OUTPUTS.items():
        if attr == "kms" and getattr(args, "public_key", None):
            continue  # the operator named a key file
        if hasattr(args, attr) and getattr(args, attr) is None and name in outputs:
            setattr(args, attr, str(outputs[name]))


def common_options() -> argparse.ArgumentParser:
    """The global options, for a sub-command (``parents=[common_options()]``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_global_options(parser, suppress=True)
    return parser


def change_options() -> argparse.ArgumentParser:
    """Options of commands that change something: who does it, where the audit goes."""
    parser = argparse.ArgumentParser(add_help=False)
    audit = parser.add_argument_group("audit of the change")
    audit.add_argument(
        "--actor", help="who is making the change (default: the AWS identity, else the user)"
    )
    audit.add_argument(
        "--audit-stream",
        default=os.environ.get("GATEKEEPER_AUDIT_STREAM"),
        help="Kinesis stream (name or ARN) of the audit pipeline; a failed put is an error "
        "(default: $GATEKEEPER_AUDIT_STREAM)",
    )
    audit.add_argument(
        "--audit-log",
        metavar="FILE",
        default=os.environ.get("GATEKEEPER_AUDIT_LOG"),
        help="append the audit events (JSON lines) to FILE ('-': stderr); default without a "
        f"stream: $GATEKEEPER_AUDIT_LOG, else {default_audit_log()}",
    )
    return parser


def key_prefix_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key-prefix",
        default=os.environ.get("GATEKEEPER_API_KEY_PREFIX", "gk"),
        help="prefix of new API keys; must be the authorizer's, and follows its rule "
        "(default: $GATEKEEPER_API_KEY_PREFIX or gk)",
    )


def default_audit_log() -> str:
    state = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return str(Path(state) / "gatekeeper" / "audit.jsonl")


# --- durations and times ----------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def duration(text: str) -> int:
    """Seconds in ``3600``, ``15m``, ``12h``, ``30d``, ``1w`` or ``1h30m`` (argparse ``type``)."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use seconds or e.g. 90s, 15m, 12h, 30d, 1w, 1h30m"
        )
    return sum(int(n) * _UNITS[u] for n, u in parts)


def human_duration(seconds: float) -> str:
    """``15m``, ``2h5m``, ``3d4h`` (largest two units; rounded to the smaller one)."""
    left = round(abs(seconds))
    if left < 60:
        return f"{left}s"
    step = 3600 if left >= 86_400 else 60
    left = (left + step // 2) // step * step
    out: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if left >= size and len(out) < 2:
            out.append(f"{left // size}{unit}")
            left %= size
        elif out:
            break
    return "".join(out)


def when(epoch: float | None, now: float | None = None) -> str:
    """ISO-8601 UTC with a relative hint: ``2026-12-02T00:15:00Z (in 15m)``; ``-`` for None."""
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    delta = epoch - now
    if abs(delta) < 1:
        return f"{stamp} (now)"
    hint = f"in {human_duration(delta)}" if delta > 0 else f"{human_duration(delta)} ago"
    return f"{stamp} ({hint})"


# --- the service ------------------------------------------------------------------------------
def session_of(args: argparse.Namespace) -> Any:
    import boto3

    region = args.region or ("us-east-1" if args.endpoint_url else None)
    return boto3.Session(profile_name=args.profile, region_name=region)


def client(args: argparse.Namespace, service: str) -> Any:
    """A boto3 client for ``service`` whose errors name the resource (see ``_errors.watch``)."""
    return watch(session_of(args).client(service, endpoint_url=args.endpoint_url))


def build_service(args: argparse.Namespace) -> AdminService:
    from gatekeeper.admin.audit import SchemaAdminAuditEmitter
    from gatekeeper.admin.service import AdminService
    from gatekeeper.store.config_store import DynamoConfigStore
    from gatekeeper.store.counters_admin import DynamoCountersAdminStore

    if not args.config_table:
        raise UsageError("no config table: pass --config-table or set GATEKEEPER_CONFIG_TABLE")
    dynamodb = client(args, "dynamodb")
    counters = (
        DynamoCountersAdminStore(dynamodb, args.counters_table) if args.counters_table else None
    )
    changes = hasattr(args, "actor")
    return AdminService(
        DynamoConfigStore(dynamodb, args.config_table),
        counters=counters,
        emitter=SchemaAdminAuditEmitter(audit_emitter(args) if changes else ReadOnly()),
        key_prefix=getattr(args, "api_key_prefix", "gk"),
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


# --- audit of CLI changes ---------------------------------------------------------------------
_undelivered: list[str] = []
"""One message per stream put that failed in this run (see :func:`take_audit_failures`)."""


def take_audit_failures() -> str | None:
    """The audit delivery failures of this run, as one line (and forget them); None if none.

    The CLI's ``main`` checks this after every command: a change whose audit event did not
    reach the stream exits 1, although the change itself was made."""
    if not _undelivered:
        return None
    message = "; ".join(_undelivered)
    _undelivered.clear()
    return f"the change was made, but {message}"


class ReadOnly:
    """The emitter of read-only commands: they never change anything, so never audit."""

    def emit(self, event: AuditEvent) -> None:
        raise RuntimeError(f"a read-only command tried to audit a change: {event.reason}")


class FileAuditEmitter:
    """One JSON line per audit event, appended to a file (``-``: stderr), flushed at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path == "-":
            self._out: TextIO = sys.stderr
        else:
            target = Path(path).expanduser()
            target.parent.mkdir(parents=True, exist_ok=True)
            self._out = target.open("a", encoding="utf-8")

    def emit(self, event: AuditEvent) -> None:
        line = json.dumps({"audit": event.model_dump(mode="json")}, separators=(",", ":"))
        self._out.write(line + "\n")
        self._out.flush()


class _Undelivered:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)


class StreamAuditEmitter:
    """Puts each event into the audit stream. A failed put is never silent: the event goes to
    ``rescue`` (a file) and the failure is reported, so the command exits 1
    (:func:`take_audit_failures`); every event of the change is still emitted."""

    def __init__(self, kinesis: Any, stream: str, rescue: Any = None) -> None:
        from botocore.exceptions import ClientError

        from gatekeeper.audit.emit import KinesisAuditEmitter

        self._stream = stream
        self._rescue = rescue
        self._failed = _Undelivered()
        self._inner = KinesisAuditEmitter(kinesis, stream, self._failed)
        # Fail before changing anything if the stream does not exist. Callers allowed only to
        # put records (the stack's operator policy) cannot describe it: then the put decides.
        named = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        try:
            kinesis.describe_stream_summary(**named)
        except ClientError as exc:
            if "AccessDenied" not in str(exc.response.get("Error", {}).get("Code", "")):
                raise

    def emit(self, event: AuditEvent) -> None:
        self._inner.emit(event)
        if not self._failed.events:
            return
        failed, self._failed.events = self._failed.events, []
        where = "see --audit-log"
        if self._rescue is not None:
            for lost in failed:
                self._rescue.emit(lost)
            where = f"written to {self._rescue.path} instead"
        _undelivered.append(
            f"{len(failed)} audit event(s) could not be put into stream {self._stream!r} ({where})"
        )


class _LazyFile:
    """A :class:`FileAuditEmitter` opened on first use (a rescue file that is rarely needed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: FileAuditEmitter | None = None

    def emit(self, event: AuditEvent) -> None:
        if self._file is None:
            self._file = FileAuditEmitter(self.path)
        self._file.emit(event)


class _Both:
    def __init__(self, *emitters: Any) -> None:
        self._emitters = emitters

    def emit(self, event: AuditEvent) -> None:
        for emitter in self._emitters:
            emitter.emit(event)


def audit_emitter(args: argparse.Namespace) -> Any:
    """The stream (``--audit-stream``) and/or a file (``--audit-log``; the default file when
    no stream is named, and the rescue of a failed put): never the command's own output."""
    log = FileAuditEmitter(args.audit_log) if args.audit_log else None
    if not args.audit_stream:
        return log or FileAuditEmitter(default_audit_log())
    rescue = None if log else _LazyFile(default_audit_log())
    stream = StreamAuditEmitter(client(args, "kinesis"), args.audit_stream, rescue)
    return _Both(stream, log) if log else stream


def actor_of(args: argparse.Namespace) -> Actor:
    """``--actor``, else the AWS identity (STS), else the local user name."""
    from gatekeeper.admin.audit import Actor

    if args.actor:
        return Actor(id=args.actor, kind="cli")
    if not args.endpoint_url:
        try:
            arn = session_of(args).client("sts").get_caller_identity()["Arn"]
            return Actor(id=arn, kind="cli")
        except Exception:  # noqa: S110 - best effort; the local user name is the fallback
            pass
    return Actor(id=f"cli:{getpass.getuser()}", kind="cli")


# --- output -----------------------------------------------------------------------------------
def print_list(
    args: argparse.Namespace,
    views: Sequence[Any],
    columns: Sequence[str],
    row: Callable[[Any], Sequence[object]],
) -> int:
    """A list command's answer: the models as JSON with ``--json``, else a table of ``row``s."""
    if args.json:
        print_json([v.model_dump(mode="json") for v in views])
    else:
        print_table([row(v) for v in views], columns)
    return 0


def remove_once(
    args: argparse.Namespace,
    remove: Callable[[], object],
    key: dict[str, str],
    done: str,
    absent: str,
) -> int:
    """A remove command's answer: removing what is not there is no error (as revoking twice is
    not), it says so."""
    from gatekeeper.admin.errors import NotFound

    try:
        remove()
        removed = True
    except NotFound:
        removed = False
    if args.json:
        print_json({**key, "removed": removed})
    else:
        print(done if removed else absent)
    return 0


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


def warn(message: str) -> None:
    print(f"gatekeeper: warning: {message}", file=sys.stderr)


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
