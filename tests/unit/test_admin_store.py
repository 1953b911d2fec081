"""The admin store primitives behave the same in memory and in DynamoDB (moto)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from gatekeeper.commands._admin import Progress
from gatekeeper.rbac.model import Role
from gatekeeper.store import tables
from gatekeeper.store.config_store import (
    AdminConfigStore,
    DynamoConfigStore,
    InMemoryConfigStore,
    Write,
    WriteConflict,
)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[AdminConfigStore]:
    if request.param == "memory":
        yield InMemoryConfigStore()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**tables.table_definition("cfg"))  # type: ignore[arg-type]
        yield DynamoConfigStore(client, "cfg")


def key(name: str) -> tuple[str, str]:
    return ("RBAC", f"ROLE#{name}")


def doc(name: str, description: str = "") -> str:
    return Role(name=name, description=description).model_dump_json()


def test_conditional_writes(store: AdminConfigStore) -> None:
    assert store.write([Write(key("a"), doc("a"), None)]) == 1
    with pytest.raises(WriteConflict) as info:
        store.write([Write(key("b"), doc("b"), None), Write(key("a"), doc("a"), None)])
    assert info.value.index == 1
    assert store.get_doc(key("b")) is None  # all or nothing
    with pytest.raises(WriteConflict):
        store.write([Write(key("a"), doc("a", "x"), doc("a", "stale"))])
    assert store.write([Write(key("a"), doc("a", "x"), doc("a"))]) == 2
    found = store.get_doc(key("a"))
    assert found is not None and found.doc == doc("a", "x")
    assert store.load_snapshot().roles["a"].description == "x"
    with pytest.raises(WriteConflict) as info:
        store.write([Write(key("a"), None, doc("a", "x"))], expect_version=1)
    assert info.value.index == -1
    assert store.write([Write(key("a"), None, doc("a", "x"))], expect_version=2) == 3
    assert store.get_doc(key("a")) is None and store.get_version() == 3


def test_list_pages_through_a_partition_and_a_prefix(store: AdminConfigStore) -> None:
    names = [f"r{i:02d}" for i in range(7)]
    store.write([Write(key(n), doc(n), None) for n in names])
    store.write([Write(("PRINCIPAL#p1", f"TENANT#{t}"), '{"x": 1}', None) for t in ("a", "b", "c")])
    for query in ({"pk": "RBAC", "sk_prefix": "ROLE#"}, {"pk_prefix": "PRINCIPAL#"}):
        seen: list[tuple[str, str]] = []
        after = None
        while True:
            page, after = store.list_docs(**query, limit=2, after=after)
            assert len(page) <= 2
            seen += [d.key for d in page]
            if after is None:
                break
        assert len(seen) == len(set(seen)) == (7 if "pk" in query else 3)


def test_progress_bar_draws_only_when_asked() -> None:
    out = io.StringIO()
    Progress("applying", stream=out)(1, 2)
    assert out.getvalue() == ""  # not a terminal
    bar = Progress("applying", stream=out, force=True)
    bar(1, 2)
    bar(2, 2)
    assert "1/2" in out.getvalue() and out.getvalue().endswith("2/2\n")
