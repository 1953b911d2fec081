"""``gatekeeper archive report``: a one-page summary (SVG + text) of an archive the sink wrote."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import boto3
import pytest

from gatekeeper import cli
from gatekeeper.audit.event import AdminChange
from gatekeeper.audit.report import COLOURS, Report, render_svg, render_text
from gatekeeper.audit.store import MemoryObjectStore
from tests.audit_demo_archive import BLOCKED_IP, DemoArchive, demo_archive  # noqa: F401
from tests.audit_helpers import direct_event, event, make_sink, run
from tests.integration.test_handler import handler  # noqa: F401 - fixture

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """Our own output, well-formed XML (no entities, no DTD): the stdlib parser is fine."""
    return ET.fromstring(svg)  # noqa: S314


def report(
    capsys: pytest.CaptureFixture[str], archive: DemoArchive, *args: str
) -> tuple[int, str, str]:
    code = cli.main(["archive", "report", "--bucket", archive.bucket, "--prefix", archive.prefix,
                     *args])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


def test_a_report_of_the_real_handlers_archive(
    demo_archive: DemoArchive,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chart = tmp_path / "report.svg"
    code, out, err = report(capsys, demo_archive, "--output", str(chart))
    assert code == 0, err
    rows = demo_archive.rows()
    decisions = Counter(
        r["unmapped"]["decision"] for r in rows if r["unmapped"]["event_type"] == "authorization"
    )
    assert f"decisions: {sum(decisions.values())} (allow {decisions['allow']}, " in out
    admin = sum(1 for r in rows if r["unmapped"]["event_type"] == "admin_change")
    assert f"admin changes: {admin}" in out
    expected = ["Top denied principals", "corp:alice", "Top denied routes", "GET /admin/users",
                "Rate-limited rules", "one-per-minute", "key-one-per-minute", "Blocked sources",
                BLOCKED_IP, f"chart: {chart}"]  # fmt: skip
    for text in expected:
        assert text in out, text

    svg = parse(chart.read_text(encoding="utf-8"))
    fills = {rect.get("fill") for rect in svg.iter(f"{SVG}rect")}
    assert set(COLOURS.values()) <= fills, fills  # every outcome drawn
    texts = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert BLOCKED_IP in texts and "Decisions per minute by outcome" in texts

    code, out, _ = report(capsys, demo_archive, "--output", "-", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["chart"] is None
    assert summary["totals"] == dict(decisions)
    assert summary["blocked_sources"] == [{"ip": BLOCKED_IP, "count": 1}]
    per_bucket = sum(sum(v for k, v in b.items() if k != "at") for b in summary["timeline"])
    assert per_bucket == sum(decisions.values())


def test_corrupt_objects_are_counted_not_fatal(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = boto3.client("s3")
    key = next(k for k in demo_archive.objects() if k.startswith(f"{demo_archive.prefix}events/"))
    bad = key.rsplit("/", 1)[0] + "/zz-corrupt.jsonl.gz"
    s3.put_object(Bucket=demo_archive.bucket, Key=bad, Body=gzip.compress(b"{not json\n"))
    code, out, err = report(capsys, demo_archive, "--output", "-", "--json")
    assert code == 0, err
    summary = json.loads(out)
    [problem] = summary["corrupt_objects"]
    assert f"s3://{demo_archive.bucket}/{bad}, line 1: not JSON" in problem
    assert sum(summary["totals"].values()) > 0  # the rest is reported
    [warning] = err.strip().splitlines()
    assert warning.startswith("gatekeeper: warning: 1 corrupt object(s) skipped")
    # nothing readable at all: one line, exit 1
    for other in demo_archive.objects():
        if other.startswith(f"{demo_archive.prefix}events/"):
            s3.put_object(Bucket=demo_archive.bucket, Key=other, Body=b"garbage")
    code, out, err = report(capsys, demo_archive, "--output", "-")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "every object is corrupt" in err


def test_an_archive_without_decisions_still_renders(tmp_path: Path) -> None:
    store = MemoryObjectStore("b")
    change = AdminChange(operation="create", resource_type="role", target="r")
    admin = event(1, event_type="admin_change", reason="create_role", change=change)
    assert run(make_sink(store), direct_event([admin])) == []
    for key in store.list("audit/"):
        found = store.get(key)
        assert found is not None
        path = tmp_path / key.removeprefix("audit/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(found.body)
    from gatekeeper.audit.query import local_archive
    from gatekeeper.audit.report import build_report

    with local_archive(tmp_path) as archive:
        built = build_report(archive)
    assert built.admin_changes == 1 and built.totals == {} and built.timeline == []
    assert "no authorization decisions" in render_text(built)
    parse(render_svg(built))
    parse(render_svg(Report("empty")))
