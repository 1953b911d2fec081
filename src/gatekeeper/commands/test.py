"""``gatekeeper test``: access tests against an access file, offline (no AWS at all).

Exit 0 when every expectation holds, 1 on any mismatch (with a readable diff) or bad input.
``--junit-xml FILE`` writes a JUnit report for CI. See :mod:`gatekeeper.access_tests`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import common_options, print_json
from gatekeeper.commands._errors import UsageError

if TYPE_CHECKING:
    from gatekeeper.access_tests import Report
    from gatekeeper.admin.access_file import AccessFile

EXIT_FAILED = 1


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "test",
        parents=[common_options()],
        help="run access tests (expected allow/deny per request) against an access file, offline",
        description="Run access tests against an access file, with no AWS: exit 1 on any mismatch.",
    )
    parser.add_argument(
        "-f",
        "--file",
        required=True,
        type=Path,
        help="the access tests (YAML), e.g. examples/access-tests.yaml",
    )
    parser.add_argument(
        "--access",
        type=Path,
        help="the access file (default: the tests file's `access:`, relative to it)",
    )
    parser.add_argument("--junit-xml", metavar="FILE", type=Path, help="write a JUnit XML report")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    parser.set_defaults(func=run_test)


def run_tests(tests: Path, access_path: Path | None, *, access: AccessFile | None = None) -> Report:
    """Load the tests (and the access file unless given) and run them; bad input is a
    :class:`UsageError` naming the file."""
    import yaml

    from gatekeeper import access_tests
    from gatekeeper.commands.policy import read_access_file

    text = tests.read_text(encoding="utf-8")
    try:
        suite, lines = access_tests.parse_suite_with_lines(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise UsageError(f"{tests}: {at}{what}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{tests}: not valid YAML: {' '.join(str(exc).split())}") from None
    except access_tests.SuiteError as exc:
        raise UsageError(f"{tests}: invalid: {exc}") from None
    if access is None:
        if access_path is None:
            if suite.access is None:
                raise UsageError(f"{tests}: name the access file with --access (or `access:`)")
            access_path = tests.parent / suite.access
        access = read_access_file(access_path, force=False)
    return access_tests.run(suite, access, lines=lines, source=str(tests))


def run_test(args: argparse.Namespace) -> int:
    from gatekeeper import access_tests

    report = run_tests(args.file, args.access)
    if args.junit_xml:
        args.junit_xml.write_bytes(access_tests.junit_xml(report))
    if args.json:
        print_json(access_tests.to_json(report))
    else:
        print(access_tests.render(report, verbose=args.verbose))
    return 0 if report.ok else EXIT_FAILED


def check_before_plan(tests: Path, access: AccessFile, *, quiet: bool) -> None:
    """``policy plan --test``: run the tests on the planned file first. A failure prints the
    diff on stderr and stops the command (nothing planned); ``quiet`` (``--json``) keeps stdout
    for the plan alone."""
    import sys

    from gatekeeper import access_tests

    report = run_tests(tests, None, access=access)
    if not report.ok:
        print(access_tests.render(report), file=sys.stderr)
        raise UsageError(
            f"{len(report.failures)} access test(s) of {tests} failed; nothing planned"
        )
    if not quiet:
        print(f"access tests ({tests}): {access_tests.render(report)}")
