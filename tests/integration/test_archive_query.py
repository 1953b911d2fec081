"""``gatekeeper archive query``: SQL over an archive the real sink wrote (moto S3 or a local copy).

The README's Athena example queries are read from README.md and run here through the command,
so a schema change that breaks them fails CI.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from gatekeeper import cli
from gatekeeper.audit import table_schema
from tests.audit_demo_archive import DemoArchive, demo_archive  # noqa: F401 - fixture
from tests.integration.test_handler import handler  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def readme_queries() -> list[str]:
    """The SQL statements of the README's Audit section (```sql blocks, split at ``;``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Audit\n") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    statements = [s.strip() for block in blocks for s in block.split(";")]
    return [s + ";" for s in statements if any(not ln.startswith("--") for ln in s.splitlines())]


def query(capsys: pytest.CaptureFixture[str], sql: str, *where: str) -> tuple[int, str, str]:
    code = cli.main(["archive", "query", sql, *where])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(
    capsys: pytest.CaptureFixture[str], sql: str, archive: DemoArchive
) -> list[dict[str, object]]:
    code, out, err = query(capsys, sql, *s3(archive), "--json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def s3(archive: DemoArchive) -> list[str]:
    return ["--bucket", archive.bucket, "--prefix", archive.prefix]


def test_the_readme_queries_run_on_an_archive_the_sink_wrote(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    queries = readme_queries()
    assert len(queries) >= 3, queries
    rows = demo_archive.rows()
    days = sorted({datetime.fromtimestamp(r["time"] / 1000, UTC).date().isoformat() for r in rows})
    limited_keys = {
        r["unmapped"]["key_id"]
        for r in rows
        if r["unmapped"]["key_id"] and (r["unmapped"]["rate_limit"] or {}).get("limited")
    }
    assert limited_keys, "the demo archive has a rate-limited API key"
    for sql in queries:
        code, out, err = query(capsys, sql, *s3(demo_archive), "--json")
        assert code == 0, f"{sql}\n{err}"
        assert isinstance(json.loads(out), list)
        # the same query, pointed at the archive's day and key: it finds what the sink wrote
        ours = re.sub(r"'\d{4}-\d{2}-\d{2}'", f"'{days[0]}'", sql)
        ours = ours.replace("'0123456789abcdef'", f"'{sorted(limited_keys)[0]}'")
        code, out, err = query(capsys, ours, *s3(demo_archive), "--json")
        assert code == 0, f"{ours}\n{err}"
        assert json.loads(out), f"no rows: {ours}"


def test_the_view_has_the_athena_columns_and_reads_every_record(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    described = as_json(capsys, "DESCRIBE gatekeeper_audit", demo_archive)
    names = [row["column_name"] for row in described]
    assert names == [n for n, _ in table_schema.glue_columns()] + ["dt", "hour"]
    rows = demo_archive.rows()
    for row in rows:
        assert table_schema.uncovered(row) == [], row["metadata"]["uid"]
    everything = as_json(capsys, "SELECT * FROM gatekeeper_audit ORDER BY time", demo_archive)
    assert len(everything) == len(rows)
    by_id = {r["metadata"]["uid"]: r for r in rows}
    for got in everything:
        want = by_id[got["metadata"]["uid"]]  # type: ignore[index]
        assert got["class_uid"] == want["class_uid"] and got["time"] == want["time"]
        assert got["unmapped"]["decision"] == want["unmapped"]["decision"]  # type: ignore[index]
        assert got["dt"] == datetime.fromtimestamp(want["time"] / 1000, UTC).strftime("%Y-%m-%d")


def test_a_local_copy_answers_as_the_bucket_in_a_table_json_or_csv(
    demo_archive: DemoArchive,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local = ["--path", str(demo_archive.download(tmp_path / "copy"))]
    sql = (
        "SELECT unmapped.decision AS decision, count(*) AS n FROM gatekeeper_audit "
        "GROUP BY 1 ORDER BY 1"
    )
    from_s3 = as_json(capsys, sql, demo_archive)
    code, out, _ = query(capsys, sql, *local, "--json")
    assert code == 0 and json.loads(out) == from_s3
    assert {r["decision"] for r in from_s3} == {"allow", "deny", "unauthorized"}

    code, out, _ = query(capsys, sql, *local)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["DECISION", "N"]
    assert [line.split()[0] for line in lines[1:]] == ["allow", "deny", "unauthorized"]

    code, out, _ = query(capsys, sql, *local, "--csv")
    assert code == 0 and out.splitlines()[0] == "decision,n"
    assert len(out.splitlines()) == 4

    today = datetime.now(UTC).date()
    code, out, _ = query(capsys, "SELECT count(*) AS n FROM gatekeeper_audit", *local,
                         "--from", "2000-01-01", "--to", today.isoformat(), "--json")  # fmt: skip
    assert code == 0 and json.loads(out) == [{"n": len(demo_archive.rows())}]


def one_line(code: int, out: str, err: str) -> str:
    assert code == 1, out
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatekeeper: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELEC * FROM gatekeeper_audit", "invalid query: Parser Error"),
        ("SELECT nope FROM gatekeeper_audit", 'Binder Error: Referenced column "nope"'),
        ("SELECT * FROM other_table", "invalid query: Catalog Error"),
        ("SELECT * FROM read_text('/etc/passwd')", "query failed: Permission Error"),
        ("   ", "empty query"),
    ],
    ids=["syntax", "column", "table", "outside-file", "empty"],
)  # fmt: skip
def test_a_bad_query_is_one_line(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    sql: str,
    expected: str,
) -> None:
    assert expected in one_line(*query(capsys, sql, *s3(demo_archive)))


def test_a_missing_or_empty_archive_is_one_line(
    demo_archive: DemoArchive,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sql = "SELECT 1"
    line = one_line(*query(capsys, sql, "--path", str(tmp_path / "none")))
    assert f"{tmp_path / 'none'}: no such archive folder" in line
    (tmp_path / "empty").mkdir()
    line = one_line(*query(capsys, sql, "--path", str(tmp_path / "empty")))
    assert "no events/ folder" in line
    line = one_line(*query(capsys, sql, "--bucket", demo_archive.bucket, "--prefix", "elsewhere/"))
    assert f"s3://{demo_archive.bucket}/elsewhere/: no archived events" in line
    line = one_line(*query(capsys, sql, *s3(demo_archive), "--from", "2099-01-01"))
    assert "no archived events with dt in 2099-01-01.." in line
    line = one_line(*query(capsys, sql, *s3(demo_archive), "--from", "yesterday"))
    assert "'yesterday' is not a day (YYYY-MM-DD)" in line


@pytest.mark.parametrize("damage", ["not-gzip", "truncated", "bad-line"])
def test_a_corrupt_object_is_named_with_its_line(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    s3_client = boto3.client("s3")
    key = next(k for k in demo_archive.objects() if k.startswith(f"{demo_archive.prefix}events/"))
    good = s3_client.get_object(Bucket=demo_archive.bucket, Key=key)["Body"].read()
    part = key.rsplit("/", 1)[0]
    bad_key = f"{part}/zz-corrupt.jsonl.gz"
    body = {
        "not-gzip": b"this is not gzip",
        "truncated": good[: len(good) // 2],
        "bad-line": gzip.compress(gzip.decompress(good) + b'{"class_uid": 6003,\n'),
    }[damage]
    s3_client.put_object(Bucket=demo_archive.bucket, Key=bad_key, Body=body)
    line = one_line(*query(capsys, "SELECT count(*) FROM gatekeeper_audit", *s3(demo_archive)))
    assert f"s3://{demo_archive.bucket}/{bad_key}" in line, line
    if damage == "bad-line":
        lines = len(gzip.decompress(good).splitlines()) + 1
        assert f", line {lines}: not JSON" in line
    else:
        assert "corrupt object (not gzip" in line
