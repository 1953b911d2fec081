"""``gatekeeper archive export-security-lake``: OCSF Parquet for Security Lake custom sources,
from an archive the real handlers and sink wrote; the Parquet rows are still valid OCSF."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from gatekeeper import cli
from tests.audit_demo_archive import DemoArchive, demo_archive  # noqa: F401 - fixture
from tests.integration.test_handler import handler  # noqa: F401 - fixture
from tests.ocsf_check import ocsf_errors

LAYOUT = re.compile(
    r"/region=eu-west-1/accountId=123456789012/eventDay=(\d{8})/gatekeeper-(\d{4}-\d{2}-\d{2})T(\d{2})\.parquet$"
)


def export(capsys: pytest.CaptureFixture[str], archive: DemoArchive, *args: str) -> Any:
    argv = ["archive", "export-security-lake", "--bucket", archive.bucket, "--prefix",
            archive.prefix, "--lake-region", "eu-west-1", "--lake-account", "123456789012",
            "--json", *args]  # fmt: skip
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def parquet_rows(path: str) -> list[dict[str, Any]]:
    con = duckdb.connect()
    cursor = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = false)", [path])
    names = [d[0] for d in cursor.description]
    return [without_nulls(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def test_one_class_per_source_in_the_security_lake_layout_and_still_valid_ocsf(
    demo_archive: DemoArchive,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, auth = tmp_path / "ext" / "gatekeeper-api", tmp_path / "ext" / "gatekeeper-auth"
    written = export(capsys, demo_archive, "--api-activity", str(api), "--authentication",
                     str(auth))  # fmt: skip
    rows = demo_archive.rows()
    by_class = Counter(r["class_uid"] for r in rows)
    assert {c: sum(w["events"] for w in written if w["class_uid"] == c) for c in by_class} == dict(
        by_class
    )
    exported: dict[str, dict[str, Any]] = {}
    for item in written:
        root = api if item["class_uid"] == 6003 else auth
        assert item["location"].startswith(str(root))
        day, dt, _hour = LAYOUT.search(item["location"]).groups()  # type: ignore[union-attr]
        assert day == dt.replace("-", "")
        records = parquet_rows(item["location"])
        assert len(records) == item["events"]
        assert {r["class_uid"] for r in records} == {item["class_uid"]}  # one class per object
        assert [r["time"] for r in records] == sorted(r["time"] for r in records)
        for record in records:
            assert ocsf_errors(record) == [], record["metadata"]["uid"]
            exported[record["metadata"]["uid"]] = record
    assert sorted(exported) == sorted(r["metadata"]["uid"] for r in rows)
    for row in rows:  # what the sink archived, attribute for attribute
        assert exported[row["metadata"]["uid"]] == without_nulls(row)

    again = export(capsys, demo_archive, "--api-activity", str(api), "--authentication", str(auth))
    assert again == written  # an hour exported again replaces its object
    assert len(list(tmp_path.rglob("*.parquet"))) == len(written)


def test_export_to_the_lake_bucket(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="aws-security-data-lake-eu-west-1-demo")
    location = "s3://aws-security-data-lake-eu-west-1-demo/ext/gatekeeper-api/"
    written = export(capsys, demo_archive, "--api-activity", location)
    assert written and {w["class_uid"] for w in written} == {6003}
    listed = s3.list_objects_v2(Bucket="aws-security-data-lake-eu-west-1-demo")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert keys == sorted(w["location"].removeprefix("s3://aws-security-data-lake-eu-west-1-demo/")
                          for w in written)  # fmt: skip
    assert all(k.startswith("ext/gatekeeper-api/region=eu-west-1/") for k in keys)
    head = s3.head_object(Bucket="aws-security-data-lake-eu-west-1-demo", Key=keys[0])
    assert head["ContentType"] == "application/vnd.apache.parquet"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "nowhere to export"),
        (["--api-activity", "out", "--lake-region", "eu west"], "region 'eu west'"),
    ],
    ids=["no-destination", "bad-region"],
)
def test_bad_input_is_one_line(
    demo_archive: DemoArchive,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    argv = ["archive", "export-security-lake", "--bucket", demo_archive.bucket, "--prefix",
            demo_archive.prefix, "--lake-region", "eu-west-1", "--lake-account", "123456789012",
            *args]  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
