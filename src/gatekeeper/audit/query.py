"""SQL over an audit archive, locally: DuckDB reading the sink's gzip JSON Lines.

The archive is a folder (``aws s3 sync s3://BUCKET/audit/ DIR``: it holds ``events/``) or an S3
bucket and prefix, whose ``events/`` objects are downloaded first (only the days asked for with
``since``/``until``). DuckDB reads them with their Hive partitions (``dt``, ``hour``) into the
view :data:`~gatekeeper.audit.table_schema.TABLE`, ``gatekeeper_audit``, with exactly the Athena
table's columns (both come from :mod:`gatekeeper.audit.table_schema`), so the same SQL runs in
both places. Two Athena (Trino) functions the README's queries use are defined as macros:
``from_unixtime(seconds)`` and ``date_format(timestamp, format)`` (MySQL-style ``%Y-%m-%d``;
``%i`` is minutes); timestamps are UTC.

The query can read the archive's files and nothing else (DuckDB's external access is limited to
them and locked). A query that fails names the cause in one line (:class:`QueryError`): the SQL
error, or the object (and line) that is not gzip JSON Lines.

Needs the ``query`` extra (``pip install 'gatekeeper[query]'``).

Example::

    archive = local_archive(Path("audit-copy"))
    result = run_query(archive, "SELECT count(*) AS n FROM gatekeeper_audit")
    result.columns, result.rows   # (['n'], [(42,)])
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.audit.table_schema import TABLE, duckdb_columns

if TYPE_CHECKING:
    from gatekeeper.audit.store import ObjectStore

_OBJECT = re.compile(r"(?:^|/)events/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/[^/]+\.jsonl\.gz$")
MAX_DAYS_LISTED = 400
"""Up to this many days, S3 is listed day by day (``events/dt=D/``); beyond, listed whole."""


class QueryError(ValueError):
    """One line: why the query could not run (the SQL, the archive, or an object in it)."""


@dataclass
class Archive:
    """The archive's event objects as local files, each with the name to report it by."""

    where: str
    files: list[Path]
    names: dict[str, str] = field(default_factory=dict)  # local path → s3://… or path
    _temp: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def day(text: str) -> str:
    """``YYYY-MM-DD`` checked (a ``dt`` partition value)."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise QueryError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _in_range(dt: str, since: str | None, until: str | None) -> bool:
    return (since is None or dt >= since) and (until is None or dt <= until)


def _range_text(since: str | None, until: str | None) -> str:
    if since is None and until is None:
        return ""
    return f" with dt in {since or '…'}..{until or '…'}"


def local_archive(root: Path, since: str | None = None, until: str | None = None) -> Archive:
    """The archive copied to ``root`` (the folder holding ``events/``, or ``events/`` itself)."""
    if not root.exists():
        raise QueryError(f"{root}: no such archive folder")
    if not root.is_dir():
        raise QueryError(f"{root}: not a folder (expected the archive's, holding events/)")
    events = root / "events" if (root / "events").is_dir() else root
    if events.name != "events":
        raise QueryError(
            f"{root}: no events/ folder (pass the archive prefix's copy: events/, quarantine/, …)"
        )
    files = []
    for path in sorted(events.rglob("*.jsonl.gz")):
        found = _OBJECT.search(path.relative_to(events.parent).as_posix())
        if found and _in_range(found.group(1), since, until):
            files.append(path)
    if not files:
        raise QueryError(f"{events}: no archived events{_range_text(since, until)}")
    return Archive(str(root), files, {str(p): str(p) for p in files})


def s3_archive(
    store: ObjectStore, prefix: str, since: str | None = None, until: str | None = None
) -> Archive:
    """The ``events/`` objects under ``s3://bucket/prefix`` downloaded to a temporary folder."""
    where = f"s3://{store.bucket}/{prefix}"
    keys = [
        key
        for key in _list_events(store, prefix, since, until)
        if (match := _OBJECT.search(key)) and _in_range(match.group(1), since, until)
    ]
    if not keys:
        raise QueryError(f"{where}: no archived events{_range_text(since, until)}")
    temp = tempfile.TemporaryDirectory(prefix="gatekeeper-query-")
    archive = Archive(where, [], {}, temp)
    try:
        for key in keys:
            found = store.get(key)
            if found is None:  # deleted while we listed: nothing to read
                continue
            path = Path(temp.name) / key.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(found.body)
            archive.files.append(path)
            archive.names[str(path)] = f"s3://{store.bucket}/{key}"
    except BaseException:
        archive.close()
        raise
    return archive


def _list_events(
    store: ObjectStore, prefix: str, since: str | None, until: str | None
) -> Iterator[str]:
    events = f"{prefix}events/"
    if since is None or until is None:
        yield from store.list(events)
        return
    first, last = date.fromisoformat(since), date.fromisoformat(until)
    if (last - first).days > MAX_DAYS_LISTED:
        yield from store.list(events)
        return
    current = first
    while current <= last:
        yield from store.list(f"{events}dt={current.isoformat()}/")
        current += timedelta(days=1)


# --- DuckDB ------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(archive: Archive, writable: Path | None = None) -> Any:
    """A DuckDB connection with the :data:`TABLE` view over ``archive`` (and nothing else
    readable; ``writable``, a folder, is where ``COPY … TO`` may write)."""
    try:
        import duckdb
    except ImportError:
        raise QueryError("archive query needs DuckDB: pip install 'gatekeeper[query]'") from None

    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"},
    )
    files = "[" + ", ".join(_literal(str(p)) for p in archive.files) + "]"
    columns = "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in duckdb_columns().items())
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE MACRO from_unixtime(seconds) AS to_timestamp(seconds)")
    con.execute("CREATE MACRO date_format(ts, fmt) AS strftime(ts, replace(fmt, '%i', '%M'))")
    # Every piece is our own text or a quoted literal (_literal): the paths and the schema.
    view = (
        f"CREATE VIEW {TABLE} AS SELECT * FROM read_json({files}, "  # noqa: S608
        f"format = 'newline_delimited', compression = 'gzip', columns = {columns}}}, "
        "hive_partitioning = true, hive_types = {'dt': 'VARCHAR', 'hour': 'VARCHAR'})"
    )
    con.execute(view)
    allowed = "[" + ", ".join(_literal(str(p)) for p in archive.files) + "]"
    con.execute(f"SET allowed_paths = {allowed}")
    if writable is not None:
        con.execute(f"SET allowed_directories = [{_literal(str(writable) + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


_SQL_ERRORS = ("ParserException", "BinderException", "CatalogException", "SyntaxException")
_DATA_ERRORS = ("IOException", "InvalidInputException", "ConversionException")


def run_query(archive: Archive, sql: str) -> Result:
    """Run ``sql`` (DuckDB SQL; the view is ``gatekeeper_audit``) over ``archive``."""
    if not sql.strip():
        raise QueryError("empty query")
    [result] = run_queries(archive, [sql])
    return result


def run_queries(archive: Archive, sqls: Sequence[str]) -> list[Result]:
    """Each of ``sqls`` over ``archive``, on one connection."""
    con = connect(archive)
    import duckdb

    results = []
    try:
        for sql in sqls:
            cursor = con.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            results.append(Result(columns, cursor.fetchall() if cursor.description else []))
    except duckdb.Error as exc:
        raise QueryError(_explain(exc, archive)) from None
    finally:
        con.close()
    return results


def skip_corrupt(archive: Archive) -> list[str]:
    """Drop every object that is not gzip JSON Lines from ``archive``; what was dropped, why
    (for a report, which counts corrupt objects instead of failing)."""
    skipped: list[str] = []
    kept: list[Path] = []
    for path in archive.files:
        problem = find_corruption([path], archive.names)
        if problem:
            skipped.append(problem)
        else:
            kept.append(path)
    archive.files = kept
    return skipped


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), repr(exc))


def _explain(exc: BaseException, archive: Archive) -> str:
    kind = type(exc).__name__
    message = _first_line(exc)
    for path, name in archive.names.items():
        message = message.replace(path, name)
    if kind in _SQL_ERRORS:
        return f"invalid query: {message}"
    if kind in _DATA_ERRORS:
        return find_corruption(archive.files, archive.names) or f"query failed: {message}"
    return f"query failed: {message}"


def find_corruption(files: Sequence[Path], names: dict[str, str] | None = None) -> str | None:
    """The first object that is not gzip JSON Lines of objects: which object, which line."""
    for path in files:
        name = (names or {}).get(str(path), str(path))
        try:
            text = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            return f"{name}: corrupt object (not gzip: {exc})"
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                return f"{name}, line {number}: not JSON ({exc})"
            if not isinstance(row, dict):
                return f"{name}, line {number}: not a JSON object"
    return None


def json_value(value: Any) -> Any:
    """A result value as JSON takes it (timestamps ISO 8601, decimals as numbers)."""
    from datetime import datetime
    from decimal import Decimal

    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | timedelta):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value
