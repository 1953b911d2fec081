"""``gatekeeper archive query "SQL"`` and ``archive report``: the audit archive, locally (DuckDB).

The table is ``gatekeeper_audit`` with the Athena table's columns (one description:
:mod:`gatekeeper.audit.table_schema`), so the README's Athena queries run unchanged. The archive
is a local copy (``--path DIR``) or the bucket itself (``--bucket``/``--prefix`` and the AWS
options of ``archive verify``; objects are downloaded to a temporary folder first, only the days
``--from``/``--to`` select). Output: a table, ``--json`` (a list of objects) or ``--csv``.
Any failure — bad SQL, no archive, a corrupt object (named, with the line) — is one line and
exit 1. ``archive report`` summarises the same table on one page (SVG chart + text); it skips
and counts corrupt objects instead of failing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import client, common_options, print_json, print_table, warn
from gatekeeper.commands._errors import UsageError

if TYPE_CHECKING:
    from gatekeeper.audit.query import Archive, Result

STACK_PREFIX = "audit/"


def add_query_parser(actions: Any) -> None:
    """Adds ``query`` to the ``archive`` command's actions."""
    query: argparse.ArgumentParser = actions.add_parser(
        "query",
        parents=[common_options()],
        help="run SQL over the audit archive (table gatekeeper_audit, as in Athena)",
        description="Runs SQL (DuckDB) over the archived events: the view gatekeeper_audit has "
        "the Athena table's columns and dt/hour partitions; from_unixtime() and date_format() "
        "work as in Athena. Reads a local copy (--path) or the bucket (--bucket/--prefix).",
    )
    query.add_argument("sql", metavar="SQL", help="the query, e.g. 'SELECT count(*) FROM "
                       "gatekeeper_audit'; '-' reads it from stdin")  # fmt: skip
    _archive_options(query)
    query.add_argument("--csv", action="store_true", help="CSV output (header row first)")
    query.set_defaults(func=run_query_command)


def _archive_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--path",
        metavar="DIR",
        help="a local copy of the archive prefix (holding events/), e.g. from aws s3 sync",
    )
    where.add_argument(
        "--bucket",
        default=os.environ.get("GATEKEEPER_AUDIT_BUCKET"),
        help="archive bucket (default: $GATEKEEPER_AUDIT_BUCKET, else the stack outputs')",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("GATEKEEPER_AUDIT_PREFIX"),
        help="archive key prefix (default: $GATEKEEPER_AUDIT_PREFIX, else the stack outputs' "
        f"ArchivePrefix, else {STACK_PREFIX!r})",
    )
    parser.add_argument("--from", dest="since", metavar="DAY",
                       help="first dt partition to read (YYYY-MM-DD)")  # fmt: skip
    parser.add_argument("--to", dest="until", metavar="DAY",
                       help="last dt partition to read (YYYY-MM-DD)")  # fmt: skip


def open_archive(args: argparse.Namespace) -> Archive:
    from gatekeeper.audit.query import day, local_archive, s3_archive
    from gatekeeper.audit.store import S3ObjectStore

    since = day(args.since) if args.since else None
    until = day(args.until) if args.until else None
    if since and until and since > until:
        raise UsageError(f"--from {since} is after --to {until}")
    if args.path:
        return local_archive(Path(args.path), since, until)
    if not args.bucket:
        raise UsageError(
            "no archive: pass --path DIR (a local copy) or --bucket (or set "
            "GATEKEEPER_AUDIT_BUCKET, or use --stack-outputs)"
        )
    prefix = STACK_PREFIX if args.prefix is None else args.prefix
    return s3_archive(S3ObjectStore(client(args, "s3"), args.bucket), prefix, since, until)


def run_query_command(args: argparse.Namespace) -> int:
    from gatekeeper.audit.query import run_query

    sql = sys.stdin.read() if args.sql == "-" else args.sql
    if not sql.strip():
        raise UsageError("empty query")
    with open_archive(args) as archive:
        result = run_query(archive, sql)
    if args.json:
        print_json(rows_json(result))
    elif args.csv:
        write_csv(result, sys.stdout)
    else:
        print_table([[_text(v) for v in row] for row in result.rows], result.columns)
    return 0


def rows_json(result: Result) -> list[dict[str, Any]]:
    from gatekeeper.audit.query import json_value

    return [dict(zip(result.columns, json_value(list(row)), strict=True)) for row in result.rows]


def write_csv(result: Result, out: Any) -> None:
    from gatekeeper.audit.query import json_value

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(_csv_cell(v) for v in json_value(list(row)))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _text(value: Any) -> Any:
    from gatekeeper.audit.query import json_value

    plain = json_value(value)
    if isinstance(plain, dict | list):
        return json.dumps(plain, separators=(",", ":"))
    return plain


def add_report_parser(actions: Any) -> None:
    """Adds ``report`` to the ``archive`` command's actions."""
    report: argparse.ArgumentParser = actions.add_parser(
        "report",
        parents=[common_options()],
        help="one-page summary of the archive (SVG chart + text tables)",
        description="Decisions over time by outcome, top denied principals and routes, "
        "rate-limited rules and blocked sources, from the same table as archive query. Writes "
        "an SVG chart (--output) and prints the tables (--json: the summary as JSON). Corrupt "
        "objects are skipped and counted.",
    )
    _archive_options(report)
    report.add_argument("--output", "-o", metavar="FILE.svg", default="gatekeeper-report.svg",
                        help="where to write the chart (default: gatekeeper-report.svg; "
                        "'-': no chart)")  # fmt: skip
    report.add_argument("--top", type=int, default=10, metavar="N",
                        help="entries per ranking (default: 10)")  # fmt: skip
    report.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    from gatekeeper.audit.report import build_report, render_svg, render_text

    if not 1 <= args.top <= 1000:
        raise UsageError("--top must be between 1 and 1000")
    with open_archive(args) as archive:
        report = build_report(archive, top=args.top)
    if args.output != "-":
        Path(args.output).write_text(render_svg(report), encoding="utf-8")
    if args.json:
        print_json({**report.as_json(), "chart": None if args.output == "-" else args.output})
    else:
        print(render_text(report), end="")
        if args.output != "-":
            print(f"\nchart: {args.output}")
    for problem in report.skipped[:1]:
        warn(f"{len(report.skipped)} corrupt object(s) skipped, first: {problem}")
    return 0


def add_export_parser(actions: Any) -> None:
    """Adds ``export-security-lake`` to the ``archive`` command's actions."""
    export: argparse.ArgumentParser = actions.add_parser(
        "export-security-lake",
        parents=[common_options()],
        help="write the archive as OCSF Parquet for Amazon Security Lake custom sources",
        description="One Parquet object per OCSF class and archive hour, under each custom "
        "source's location, partitioned region=/accountId=/eventDay= as Security Lake expects; "
        "exporting an hour again replaces its object. Run it hourly (or daily) for the hours "
        "that are complete.",
    )
    _archive_options(export)
    export.add_argument("--api-activity", metavar="LOCATION",
                        help="the API Activity (6003) custom source's location: "
                        "s3://aws-security-data-lake-…/ext/SOURCE/ or a folder")  # fmt: skip
    export.add_argument("--authentication", metavar="LOCATION",
                        help="the Authentication (3002) custom source's location")  # fmt: skip
    export.add_argument("--lake-region", required=True, metavar="REGION",
                        help="the region= partition (where the events were generated)")  # fmt: skip
    export.add_argument("--lake-account", required=True, metavar="ACCOUNT",
                        help="the accountId= partition (the account, or the source's "
                        "external id)")  # fmt: skip
    export.set_defaults(func=run_export_command)


def run_export_command(args: argparse.Namespace) -> int:
    from gatekeeper.audit.security_lake import API_ACTIVITY, AUTHENTICATION, export, split_s3

    destinations = {
        cls: where
        for cls, where in ((API_ACTIVITY, args.api_activity), (AUTHENTICATION, args.authentication))
        if where
    }
    if not destinations:
        raise UsageError("nowhere to export: pass --api-activity and/or --authentication")
    s3 = client(args, "s3") if any(w.startswith("s3://") for w in destinations.values()) else None

    def upload(url: str, body: bytes) -> None:
        bucket, key = split_s3(url)
        assert s3 is not None
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet"
        )

    with open_archive(args) as archive:
        written = export(archive, destinations, region=args.lake_region,
                         account=args.lake_account, upload=upload)  # fmt: skip
    if args.json:
        print_json([{"class_uid": w.class_uid, "location": w.location, "events": w.events}
                    for w in written])  # fmt: skip
    else:
        print_table([[w.class_uid, w.events, w.location] for w in written],
                    ["class", "events", "location"])  # fmt: skip
    return 0
