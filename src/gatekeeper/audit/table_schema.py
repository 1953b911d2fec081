"""The audit archive as a table: one description, rendered for Athena, Glue and DuckDB.

The archive's rows are the OCSF records of :mod:`gatekeeper.audit.ocsf` (gzip JSON Lines under
``events/dt=YYYY-MM-DD/hour=HH/``). :data:`COLUMNS` says which attributes the table exposes and
with which types; everything that queries the archive is rendered from it, so they cannot drift:

- :func:`athena_ddl` → ``infra/athena/audit_table.sql`` (checked in; a test compares it with the
  rendering; regenerate with
  ``python -m gatekeeper.audit.table_schema > infra/athena/audit_table.sql``);
- :func:`glue_columns`, :data:`PARTITIONS`, :data:`PROJECTION` → the CDK's Glue table (it reads
  the checked-in DDL today; the same pairs);
- :func:`duckdb_columns` → the ``gatekeeper_audit`` view of ``gatekeeper archive query``
  (:mod:`gatekeeper.audit.query`).

A test writes an archive with the real handlers and checks that every attribute of every record
has a column here (:func:`uncovered`), and that the README's Athena queries run through DuckDB.

Example::

    >>> dict(glue_columns())["time"]
    'bigint'
    >>> duckdb_columns()["src_endpoint"]
    'STRUCT("ip" VARCHAR, "name" VARCHAR, "type_id" INTEGER, "type" VARCHAR)'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

TABLE = "gatekeeper_audit"


@dataclass(frozen=True)
class Struct:
    fields: tuple[tuple[str, Type], ...]


@dataclass(frozen=True)
class Array:
    item: Type


Type = Union[str, Struct, Array]  # noqa: UP007 - a runtime alias of a recursive type
"""A scalar (``string``, ``int``, ``bigint``, ``double``, ``boolean``), a struct or an array."""


def struct(**fields: Type) -> Struct:
    return Struct(tuple(fields.items()))


STRING, INT, BIGINT, DOUBLE, BOOLEAN = "string", "int", "bigint", "double", "boolean"

_USER = struct(
    uid=STRING,
    name=STRING,
    type_id=INT,
    type=STRING,
    org=struct(uid=STRING),
    programmatic_credentials=Array(struct(uid=STRING, type=STRING)),
)
_UNMAPPED = struct(
    schema_version=STRING,
    event_type=STRING,
    decision=STRING,
    reason=STRING,
    tenant=STRING,
    auth_method=STRING,
    issuer=STRING,
    key_id=STRING,
    roles=Array(STRING),
    event_kind=STRING,
    event_shape=STRING,
    api_id=STRING,
    stage=STRING,
    route_key=STRING,
    matched_rule=STRING,
    policy_scope=STRING,
    config_version=BIGINT,
    latency_ms=DOUBLE,
    rate_limit=struct(
        rule_id=STRING,
        limited=BOOLEAN,
        counter=BIGINT,
        limit=BIGINT,
        remaining=BIGINT,
        reset_seconds=DOUBLE,
        retry_after_seconds=DOUBLE,
        shadow=BOOLEAN,
        shadow_limited=Array(STRING),
        errors=Array(STRING),
    ),
    change=struct(
        operation=STRING,
        resource_type=STRING,
        target=STRING,
        actor_kind=STRING,
        source=STRING,
        before_digest=STRING,
        after_digest=STRING,
        config_version_before=BIGINT,
        config_version_after=BIGINT,
    ),
)

COLUMNS: tuple[tuple[str, Type], ...] = (
    ("class_uid", INT),
    ("class_name", STRING),
    ("category_uid", INT),
    ("category_name", STRING),
    ("activity_id", INT),
    ("activity_name", STRING),
    ("type_uid", BIGINT),
    ("type_name", STRING),
    ("severity_id", INT),
    ("severity", STRING),
    ("time", BIGINT),
    ("status_id", INT),
    ("status", STRING),
    ("status_detail", STRING),
    ("message", STRING),
    (
        "metadata",
        struct(
            uid=STRING,
            version=STRING,
            product=struct(name=STRING, vendor_name=STRING, version=STRING),
            log_name=STRING,
            original_time=STRING,
            correlation_uid=STRING,
            profiles=Array(STRING),
        ),
    ),
    ("cloud", struct(provider=STRING)),
    ("action_id", INT),
    ("action", STRING),
    ("disposition_id", INT),
    ("disposition", STRING),
    ("actor", struct(user=_USER)),
    ("user", _USER),
    ("src_endpoint", struct(ip=STRING, name=STRING, type_id=INT, type=STRING)),
    (
        "http_request",
        struct(http_method=STRING, url=struct(path=STRING), user_agent=STRING, uid=STRING),
    ),
    (
        "api",
        struct(operation=STRING, service=struct(name=STRING), request=struct(uid=STRING)),
    ),
    ("service", struct(name=STRING)),
    ("resources", Array(struct(uid=STRING, type=STRING))),
    ("auth_protocol_id", INT),
    ("auth_protocol", STRING),
    ("unmapped", _UNMAPPED),
)
"""The table's columns, in order: the OCSF attributes :func:`gatekeeper.audit.ocsf.to_ocsf`
writes (an attribute a record lacks reads as NULL)."""

PARTITIONS: tuple[tuple[str, Type], ...] = (("dt", STRING), ("hour", STRING))
"""Hive partitions of the ``events/`` keys (``dt=YYYY-MM-DD/hour=HH``), strings as in the keys."""

PROJECTION_START = "2026-01-01"
PROJECTION: dict[str, str] = {
    "projection.enabled": "true",
    "projection.dt.type": "date",
    "projection.dt.format": "yyyy-MM-dd",
    "projection.dt.range": f"{PROJECTION_START},NOW",
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "DAYS",
    "projection.hour.type": "integer",
    "projection.hour.range": "0,23",
    "projection.hour.digits": "2",
}
"""Athena partition projection (no crawler, no MSCK REPAIR); plus ``storage.location.template``."""

SERDE = "org.openx.data.jsonserde.JsonSerDe"
SERDE_PROPERTIES = {"ignore.malformed.json": "true"}

_RESERVED = frozenset(
    {"time", "user", "limit", "date", "timestamp", "type", "array", "map", "order", "group",
     "range", "rows", "values", "interval", "end", "start", "to", "from", "table", "current"}
)  # fmt: skip
"""Names quoted with backticks in the Hive DDL (reserved there, or could be)."""


# --- Hive / Athena / Glue --------------------------------------------------------------------
def hive_type(value: Type, *, quote: bool = False) -> str:
    """``value`` as a Hive type on one line: ``struct<uid:string,org:struct<uid:string>>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Array):
        return f"array<{hive_type(value.item, quote=quote)}>"
    inner = ",".join(f"{_name(n, quote)}:{hive_type(t, quote=quote)}" for n, t in value.fields)
    return f"struct<{inner}>"


def _name(name: str, quote: bool) -> str:
    return f"`{name}`" if quote and name in _RESERVED else name


def _pretty(value: Type, indent: int, lead: int) -> str:
    """A Hive type, broken over lines (fields ``indent + 2`` deep) where one line would be too
    long to read; ``lead`` is the width already taken on the first line."""
    flat = hive_type(value, quote=True).replace(",", ", ")
    if isinstance(value, str) or lead + len(flat) <= 96:
        return flat
    if isinstance(value, Array):
        return f"array<{_pretty(value.item, indent, lead + 6)}>"
    pad = indent + 2
    fields = [
        f"{' ' * pad}{_name(n, True)}:{_pretty(t, pad, pad + len(_name(n, True)) + 1)}"
        for n, t in value.fields
    ]
    return "struct<\n" + ",\n".join(fields) + ">"


def glue_columns() -> list[tuple[str, str]]:
    """``(name, type)`` of every column as Glue takes them (no spaces, no quoting)."""
    return [(name, hive_type(value)) for name, value in COLUMNS]


def athena_ddl(bucket: str = "${bucket}", prefix: str = "${prefix}") -> str:
    """The ``CREATE EXTERNAL TABLE`` statement of :data:`TABLE` (``infra/athena/audit_table.sql``
    with the placeholders kept)."""
    from gatekeeper.audit.ocsf import OCSF_VERSION

    columns = ",\n".join(
        f"  {_name(n, True)} {_pretty(t, 2, 2 + len(_name(n, True)) + 1)}" for n, t in COLUMNS
    )
    partitions = ", ".join(f"{n} {hive_type(t)}" for n, t in PARTITIONS)
    location = f"s3://{bucket}/{prefix}events/"
    properties = {**PROJECTION, "storage.location.template": location + "dt=${dt}/hour=${hour}/"}
    props = ",\n".join(f"  '{k}' = '{v}'" for k, v in properties.items())
    serde = ", ".join(f"'{k}' = '{v}'" for k, v in SERDE_PROPERTIES.items())
    return (
        f"-- Gatekeeper audit archive (OCSF {OCSF_VERSION} records, gzip JSON Lines) with "
        "partition projection:\n"
        "-- no crawler and no MSCK REPAIR; Athena derives dt/hour partitions from the predicates.\n"
        '-- Replace ${bucket} and ${prefix} (e.g. "audit/") when deploying (the CDK does).\n'
        "-- Generated from gatekeeper/audit/table_schema.py: do not edit; regenerate with\n"
        "--   python -m gatekeeper.audit.table_schema > infra/athena/audit_table.sql\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {TABLE} (\n{columns}\n)\n"
        f"PARTITIONED BY ({partitions})\n"
        f"ROW FORMAT SERDE '{SERDE}'\n"
        f"WITH SERDEPROPERTIES ({serde})\n"
        f"LOCATION '{location}'\n"
        f"TBLPROPERTIES (\n{props}\n);\n"
    )


# --- DuckDB ----------------------------------------------------------------------------------
_DUCKDB_SCALARS = {
    STRING: "VARCHAR",
    INT: "INTEGER",
    BIGINT: "BIGINT",
    DOUBLE: "DOUBLE",
    BOOLEAN: "BOOLEAN",
}


def duckdb_type(value: Type) -> str:
    if isinstance(value, str):
        return _DUCKDB_SCALARS[value]
    if isinstance(value, Array):
        return f"{duckdb_type(value.item)}[]"
    inner = ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in value.fields)
    return f"STRUCT({inner})"


def duckdb_columns() -> dict[str, str]:
    """The ``columns`` argument of DuckDB's ``read_json`` (partitions come from the paths)."""
    return {name: duckdb_type(value) for name, value in COLUMNS}


# --- coverage --------------------------------------------------------------------------------
def uncovered(record: Mapping[str, Any]) -> list[str]:
    """Attribute paths of ``record`` (an archived OCSF record) the table has no column for, and
    values whose JSON type does not fit their column's."""
    return list(_uncovered(record, Struct(COLUMNS), ""))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    STRING: (str,),
    INT: (int,),
    BIGINT: (int,),
    DOUBLE: (int, float),
    BOOLEAN: (bool,),
}


def _uncovered(value: Any, schema: Type, path: str) -> Iterator[str]:
    if value is None:
        return
    if isinstance(schema, str):
        ok = _JSON_TYPES[schema]
        if not isinstance(value, ok) or (isinstance(value, bool) and bool not in ok):
            yield f"{path}: {type(value).__name__} in a {schema} column"
    elif isinstance(schema, Array):
        if not isinstance(value, list):
            yield f"{path}: {type(value).__name__} in an array column"
            return
        for i, item in enumerate(value):
            yield from _uncovered(item, schema.item, f"{path}[{i}]")
    elif not isinstance(value, dict):
        yield f"{path}: {type(value).__name__} in a struct column"
    else:
        fields = dict(schema.fields)
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in fields:
                yield f"{where}: no column"
            else:
                yield from _uncovered(item, fields[key], where)


if __name__ == "__main__":
    print(athena_ddl(), end="")
