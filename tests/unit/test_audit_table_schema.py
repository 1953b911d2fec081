"""One description of the audit table (gatekeeper/audit/table_schema.py) renders the Athena DDL,
the Glue columns and the DuckDB view: the checked-in DDL is its rendering, the CDK reads the same
columns from it, and the table has a column of the right type for everything the mapping writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.audit import table_schema
from gatekeeper.audit.event import AdminChange, RateLimitInfo
from gatekeeper.audit.ocsf import to_ocsf
from tests.audit_helpers import event

ROOT = Path(__file__).resolve().parents[2]
DDL = ROOT / "infra" / "athena" / "audit_table.sql"


def test_the_checked_in_athena_ddl_is_the_rendering() -> None:
    assert DDL.read_text(encoding="utf-8") == table_schema.athena_ddl(), (
        "infra/athena/audit_table.sql is stale: "
        "python -m gatekeeper.audit.table_schema > infra/athena/audit_table.sql"
    )


def test_the_cdk_glue_table_reads_the_same_columns() -> None:
    pytest.importorskip("aws_cdk")
    from gatekeeper_cdk.stack import ATHENA_DDL, athena_columns

    assert ATHENA_DDL.resolve() == DDL.resolve()
    assert athena_columns(DDL) == table_schema.glue_columns()


def test_duckdb_and_glue_have_the_same_columns_in_the_same_order() -> None:
    assert list(table_schema.duckdb_columns()) == [n for n, _ in table_schema.glue_columns()]
    assert table_schema.duckdb_columns()["unmapped"].count("STRUCT(") == 3


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"decision": "deny", "reason": "rate_limited", "key_id": "0123456789abcdef",
         "rate_limit": RateLimitInfo(rule_id="r", limited=True, counter=2, limit=1,
                                     shadow_limited=("s",), errors=("e",))},
        {"decision": "unauthorized", "reason": "invalid_signature", "principal_id": None},
        {"event_type": "admin_change", "reason": "delete_role", "source_ip": None,
         "method": None, "path": None,
         "change": AdminChange(operation="delete", resource_type="role", target="r",
                               before_digest="ab", config_version_after=3)},
    ],
    ids=["allow", "rate-limited", "unauthorized", "admin"],
)  # fmt: skip
def test_every_attribute_the_mapping_writes_has_a_column(fields: dict[str, object]) -> None:
    record = to_ocsf(event(1, roles=("reader",), tenant="acme", user_agent="curl", **fields))
    assert table_schema.uncovered(record) == []


def test_uncovered_finds_a_missing_column_and_a_wrong_type() -> None:
    record = to_ocsf(event(1))
    record["new_attribute"] = 1
    record["time"] = "soon"
    record["unmapped"]["rate_limit"] = {"limited": "yes"}
    assert table_schema.uncovered(record) == [
        "time: str in a bigint column",
        "unmapped.rate_limit.limited: str in a boolean column",
        "new_attribute: no column",
    ]
