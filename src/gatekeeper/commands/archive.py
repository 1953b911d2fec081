"""``gatekeeper archive verify``: prove an audit archive untouched (see audit/verify.py).

Exit 0 only when something was verified and nothing is wrong: an empty bucket or a wrong
prefix is a failure (with a hint where digests were found), a key that verifies no digest is
one line, not one per digest. Progress goes to stderr on a terminal only; ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import Progress, client, common_options, print_json
from gatekeeper.commands._errors import UsageError
from gatekeeper.commands.archive_query import (
    add_export_parser,
    add_query_parser,
    add_report_parser,
)
from gatekeeper.commands.archive_replay import add_replay_parser

if TYPE_CHECKING:
    from gatekeeper.audit.store import ObjectStore
    from gatekeeper.audit.verify import VerifyReport

STACK_PREFIX = "audit/"
"""Where the CDK stack's sink writes (``GATEKEEPER_AUDIT_PREFIX`` of the sink function)."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "archive", help="work with the tamper-evident audit archive"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        parents=[common_options()],
        help="check digests, signatures and every object; exit 1 on any finding",
        description="Walks every chain's signed digests and objects. Reports modified, deleted, "
        "reordered (swapped) and inserted objects by key, and exits 1 on any finding, or when "
        "there is nothing to verify.",
    )
    verify.add_argument(
        "--bucket",
        default=os.environ.get("GATEKEEPER_AUDIT_BUCKET"),
        help="archive bucket (default: $GATEKEEPER_AUDIT_BUCKET)",
    )
    verify.add_argument(
        "--prefix",
        default=os.environ.get("GATEKEEPER_AUDIT_PREFIX"),
        help="archive key prefix (default: $GATEKEEPER_AUDIT_PREFIX, else the stack outputs' "
        f"ArchivePrefix, else {STACK_PREFIX!r}, the stack's)",
    )
    verify.add_argument(
        "--dir",
        type=Path,
        help="a local archive folder instead of a bucket (gatekeeper serve's state/archive)",
    )
    key = verify.add_mutually_exclusive_group()
    key.add_argument("--public-key", help="PEM file of the digest signing key")
    key.add_argument(
        "--kms",
        metavar="KEY_ID",
        help="the sink's KMS signing key (id, ARN or alias; default: the stack outputs' "
        "DigestSigningKeyArn); its public key (GetPublicKey) must verify every digest, "
        "whatever key a digest names",
    )
    verify.add_argument(
        "--max-age",
        type=_max_age,
        default=None,
        metavar="DURATION|off",
        help="how old every chain's newest digest may be (default: twice the digest interval "
        "the digests name; the sink signs one per interval, even idle): older is a rollback "
        "or a stopped sink. 'off' skips the check (an archive verified after the fact)",
    )
    verify.set_defaults(func=run_verify)
    add_replay_parser(actions)
    add_query_parser(actions)
    add_report_parser(actions)
    add_export_parser(actions)


OFF = -1


def _max_age(text: str) -> int:
    from gatekeeper.commands._admin import duration

    return OFF if text.strip().lower() in {"off", "none", "no"} else duration(text)


def run_verify(args: argparse.Namespace) -> int:
    from gatekeeper.audit.archive import Layout
    from gatekeeper.audit.signer import KmsSigner
    from gatekeeper.audit.store import S3ObjectStore
    from gatekeeper.audit.verify import check_public_key, verify_archive

    if not args.bucket and not args.dir:
        raise UsageError(
            "no bucket: pass --bucket, set GATEKEEPER_AUDIT_BUCKET, or use --stack-outputs"
        )
    if not args.public_key and not args.kms:
        raise UsageError("no key to verify with: pass --public-key FILE or --kms KEY_ID")
    prefix = STACK_PREFIX if args.prefix is None else args.prefix
    if args.public_key:
        with open(args.public_key, "rb") as handle:
            pem = handle.read()
        try:
            check_public_key(pem)
        except ValueError as exc:
            raise UsageError(f"{args.public_key}: {exc}") from None
    else:
        # The operator names the key: a digest's own key id is the forger's choice, and a key
        # of their own would verify their forgery.
        pem = KmsSigner(client(args, "kms"), args.kms).public_key_pem()

    store: ObjectStore
    if args.dir:
        from gatekeeper.serve.archive import DirectoryObjectStore

        if not args.dir.is_dir():
            raise UsageError(f"{args.dir}: no such folder")
        store = DirectoryObjectStore(args.dir)
        prefix = "" if args.prefix is None else args.prefix
    else:
        store = S3ObjectStore(client(args, "s3"), args.bucket)
    fresh = getattr(args, "max_age", None) != OFF
    report = verify_archive(
        store,
        lambda _key_id: pem,
        Layout(prefix),
        progress=None if args.json else Progress("verifying"),
        now=time.time() if fresh else None,
        max_age=None if not fresh else getattr(args, "max_age", None),
    )
    where = f"{args.dir}/{prefix}" if args.dir else f"s3://{args.bucket}/{prefix}"
    hint = _prefix_hint(store, prefix) if report.empty else None
    if args.json:
        print_json(report_json(report, where, hint))
        return 0 if report.ok else 1
    return print_report(report, where, hint=hint, fresh=fresh)


def _prefix_hint(store: ObjectStore, prefix: str) -> str | None:
    """Where digests are, when none were under ``prefix`` (looks at the first 1000 keys; best
    effort: an operator may list only the stack's prefix, see the stack's operator policy)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for key in itertools.islice(store.list(""), 1000):
            at = key.find("digests/")
            if at >= 0 and key[:at] != prefix:
                return key[:at]
    except (ClientError, BotoCoreError):
        return None
    return None


def report_json(report: VerifyReport, where: str, hint: str | None = None) -> dict[str, Any]:
    return {
        "location": where,
        "ok": report.ok,
        "empty": report.empty,
        "chains": report.chains,
        "digests": report.digests,
        "objects": report.objects,
        "events": report.events,
        "pending": report.pending,
        "max_age_seconds": report.max_age,
        "notes": report.notes,
        "findings": [{"kind": f.kind, "key": f.key, "detail": f.detail} for f in report.findings],
        **({"suggested_prefix": hint} if hint is not None else {}),
    }


def print_report(
    report: Any, where: str, out: Any = None, *, hint: str | None = None, fresh: bool = True
) -> int:
    out = out or sys.stdout
    if report.empty and not report.findings:
        suggestion = (
            f"digests exist under {hint!r}: try --prefix {hint or chr(39) * 2}"
            if hint is not None
            else f"check --bucket and --prefix (the stack writes under {STACK_PREFIX!r})"
        )
        print(
            f"gatekeeper: error: {where}: nothing to verify (no digest, no object); {suggestion}",
            file=sys.stderr,
        )
        return 1
    for finding in report.findings:
        print(finding, file=out)
    for note in getattr(report, "notes", []):
        print(f"note: {note}", file=out)
    if not fresh and report.signatures:
        print("note: freshness not checked (--max-age off): a rollback would pass", file=out)
    status = "OK" if report.ok else f"FAILED: {len(report.findings)} finding(s)"
    print(
        f"{where}: {status} — {report.chains} chain(s), {report.digests} digest(s), "
        f"{report.objects} object(s), {report.events} event(s) verified"
        + (
            f", {len(report.pending)} object(s) newer than the last digest"
            if report.pending
            else ""
        ),
        file=out,
    )
    return 0 if report.ok else 1
