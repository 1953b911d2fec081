"""Export the audit archive to Amazon Security Lake custom sources (OCSF Parquet).

Security Lake takes a custom source's data as Parquet objects of ONE OCSF event class each,
under the location it assigns the source (``s3://aws-security-data-lake-…/ext/<source>/``),
partitioned ``region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/``, ideally sorted by time
and delivered between every 5 minutes and once a day. The archive holds two classes, so it maps
onto two custom sources: API Activity (6003) and Authentication (3002).

:func:`export` converts with DuckDB (the ``query`` extra; never in a Lambda bundle, so the
authorizer and sink stay lean): one object per class and archive hour, named after the hour
(``gatekeeper-2026-12-01T09.parquet``), so exporting an hour again replaces its object instead
of duplicating events; rows sorted by ``time``; columns are the table's
(:mod:`gatekeeper.audit.table_schema`) without the other class's attributes. The records are the
archive's OCSF 1.6.0 records (``metadata.version``).

Example::

    with local_archive(Path("audit-copy")) as archive:
        written = export(archive, {6003: "out/api", 3002: "out/auth"},
                         region="eu-west-1", account="123456789012")
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gatekeeper.audit.query import QueryError, _literal, connect
from gatekeeper.audit.table_schema import COLUMNS

if TYPE_CHECKING:
    from gatekeeper.audit.query import Archive

API_ACTIVITY, AUTHENTICATION = 6003, 3002
EVENT_CLASSES = {API_ACTIVITY: "API_ACTIVITY", AUTHENTICATION: "AUTHENTICATION"}
"""Class → the ``eventClasses`` value of Security Lake's CreateCustomLogSource."""
_OTHER_CLASS_ONLY = {
    API_ACTIVITY: frozenset({"user", "service", "auth_protocol_id", "auth_protocol"}),
    AUTHENTICATION: frozenset({"resources"}),
}
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PARQUET = "application/vnd.apache.parquet"

Upload = Callable[[str, bytes], None]
"""Writes one object: (destination URL or path, body)."""


@dataclass(frozen=True)
class Exported:
    class_uid: int
    location: str  # where the object was written
    events: int


def _checked(name: str, value: str) -> str:
    if not _SAFE.match(value):
        raise QueryError(f"{name} {value!r}: letters, digits, '.', '_', '-' only (a partition)")
    return value


def export(
    archive: Archive,
    destinations: Mapping[int, str],
    *,
    region: str,
    account: str,
    upload: Upload | None = None,
) -> list[Exported]:
    """Write ``archive``'s records of each class to its destination (``s3://…`` through
    ``upload``, else a local folder); one Parquet object per class and archive hour."""
    region, account = _checked("region", region), _checked("account", account)
    unknown = sorted(set(destinations) - set(EVENT_CLASSES))
    if unknown:
        raise QueryError(f"no Security Lake export for class {unknown[0]}")
    written: list[Exported] = []
    with tempfile.TemporaryDirectory(prefix="gatekeeper-lake-") as temp:
        out = Path(temp)
        con = connect(archive, writable=out)
        try:
            for class_uid, location in sorted(destinations.items()):
                written += _export_class(con, out, class_uid, location, region, account, upload)
        finally:
            con.close()
    return written


def _export_class(
    con: object,
    out: Path,
    class_uid: int,
    location: str,
    region: str,
    account: str,
    upload: Upload | None,
) -> list[Exported]:
    import duckdb

    columns = ", ".join(f'"{n}"' for n, _ in COLUMNS if n not in _OTHER_CLASS_ONLY[class_uid])
    written = []
    try:
        hours = con.execute(  # type: ignore[attr-defined]
            "SELECT dt, hour, count(*) FROM gatekeeper_audit WHERE class_uid = ? "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            [class_uid],
        ).fetchall()
        for dt, hour, events in hours:
            relative = (
                f"region={region}/accountId={account}/eventDay={dt.replace('-', '')}/"
                f"gatekeeper-{dt}T{hour}.parquet"
            )
            local = out / str(class_uid) / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            con.execute(  # type: ignore[attr-defined]
                f"COPY (SELECT {columns} FROM gatekeeper_audit "  # noqa: S608 - our names
                f"WHERE class_uid = {int(class_uid)} AND dt = {_literal(dt)} "
                f"AND hour = {_literal(hour)} ORDER BY time) "
                f"TO {_literal(str(local))} (FORMAT parquet, COMPRESSION zstd)"
            )
            target = location.rstrip("/") + "/" + relative
            if target.startswith("s3://"):
                if upload is None:
                    raise QueryError(f"{target}: no S3 client to upload with")
                upload(target, local.read_bytes())
            else:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target)
            written.append(Exported(class_uid, target, int(events)))
    except duckdb.Error as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), repr(exc))
        raise QueryError(f"export failed: {first}") from None
    return written


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise QueryError(f"{url}: not an s3://bucket/key location")
    return bucket, key
