"""``gatekeeper archive verify``: prove an audit archive untouched (see audit/verify.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "archive", help="work with the tamper-evident audit archive"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check digests, signatures and every object; exit 1 on any finding",
        description="Walks every chain's signed digests and objects. Reports modified, deleted, "
        "reordered (swapped) and inserted objects by key, and exits 1 on any finding.",
    )
    verify.add_argument("--bucket", required=True, help="archive bucket")
    verify.add_argument("--prefix", default="", help="archive key prefix (e.g. audit/)")
    key = verify.add_mutually_exclusive_group(required=True)
    key.add_argument("--public-key", help="PEM file of the digest signing key")
    key.add_argument(
        "--kms",
        metavar="KEY_ID",
        help="the sink's KMS signing key (id, ARN or alias); its public key (GetPublicKey) must "
        "verify every digest, whatever key a digest names",
    )
    verify.add_argument("--endpoint-url", help="S3/KMS endpoint override (local testing)")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    import boto3

    from gatekeeper.audit.archive import Layout
    from gatekeeper.audit.signer import KmsSigner
    from gatekeeper.audit.store import S3ObjectStore
    from gatekeeper.audit.verify import verify_archive

    store = S3ObjectStore(boto3.client("s3", endpoint_url=args.endpoint_url), args.bucket)
    if args.public_key:
        with open(args.public_key, "rb") as handle:
            pem = handle.read()

        def public_keys(key_id: str) -> bytes:
            return pem
    else:
        # The operator names the key: a digest's own key id is the forger's choice, and a key
        # of their own would verify their forgery.
        trusted = KmsSigner(boto3.client("kms", endpoint_url=args.endpoint_url), args.kms)

        def public_keys(key_id: str) -> bytes:
            return trusted.public_key_pem()

    report = verify_archive(store, public_keys, Layout(args.prefix))
    return print_report(report, f"s3://{args.bucket}/{args.prefix}")


def print_report(report: Any, where: str, out: Any = None) -> int:
    out = out or sys.stdout
    for finding in report.findings:
        print(finding, file=out)
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
