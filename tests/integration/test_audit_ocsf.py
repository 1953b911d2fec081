"""Every record kind the sink archives is valid OCSF, proven against the OCSF schema itself.

The archive is written by the real handlers (``tests/audit_demo_archive.py``: authorizer and
admin decisions → CloudWatch Logs subscription in Kinesis → the audit sink handler → moto S3)
and each record is validated with ``jsonschema`` against the ``ocsf-json-schema`` package's
schema for the class, profiles and version the record declares (``tests/ocsf_check.py``).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from gatekeeper.audit.ocsf import OCSF_VERSION, UNKNOWN
from tests.audit_demo_archive import DemoArchive, demo_archive  # noqa: F401 - fixture
from tests.integration.test_handler import handler  # noqa: F401 - fixture
from tests.ocsf_check import ocsf_errors

KINDS = {"allow", "deny", "rate_limited", "blocked", "unauthorized", "admin_change"}


def test_every_record_kind_the_sink_writes_is_valid_ocsf(
    demo_archive: DemoArchive,  # noqa: F811
) -> None:
    rows = demo_archive.rows()
    assert sorted(r["metadata"]["uid"] for r in rows) == sorted(demo_archive.events)
    kinds = Counter(demo_archive.kinds[r["metadata"]["uid"]] for r in rows)
    assert set(kinds) == KINDS, kinds  # every kind present, so none is validated vacuously
    invalid = {}
    for row in rows:
        assert row["metadata"]["version"] == OCSF_VERSION
        errors = ocsf_errors(row)
        if errors:
            kind = demo_archive.kinds[row["metadata"]["uid"]]
            invalid[f"{kind} {row['unmapped']['reason']}"] = errors
    assert not invalid, invalid


def test_callers_we_could_not_identify_are_an_explicit_unknown(
    demo_archive: DemoArchive,  # noqa: F811
) -> None:
    rows = {r["metadata"]["uid"]: r for r in demo_archive.rows()}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event_id, row in rows.items():
        by_kind.setdefault(demo_archive.kinds[event_id], []).append(row)
    for row in by_kind["unauthorized"]:
        assert row["class_uid"] == 3002 and row["status_id"] == 2
        assert row["user"] == {"name": UNKNOWN, "type_id": 0, "type": "Unknown"}
        assert row["actor"]["user"] == row["user"]
        assert row["service"]["name"]  # the API stage, or unknown for a malformed event
    [blocked] = by_kind["blocked"]
    assert blocked["class_uid"] == 6003 and blocked["disposition"] == "Blocked"
    assert blocked["actor"]["user"]["name"] == UNKNOWN and blocked["src_endpoint"]["ip"]
    [rbac] = by_kind["deny"]
    assert rbac["disposition"] == "Unauthorized" and rbac["action"] == "Denied"
    assert rbac["actor"]["user"]["uid"] == "corp:alice"
    for row in by_kind["allow"]:
        assert row["actor"]["user"]["uid"] and row["disposition_id"] == 1
    keyed = [r for r in by_kind["allow"] if r["unmapped"]["key_id"]]
    assert keyed, "an API-key caller"
    for row in keyed:
        [credential] = row["actor"]["user"]["programmatic_credentials"]
        assert credential == {"uid": row["unmapped"]["key_id"], "type": "API key"}
    for row in by_kind["admin_change"]:
        change = row["unmapped"]["change"]
        assert row["resources"] == [{"uid": change["target"], "type": change["resource_type"]}]
        assert row["api"]["operation"] == f"{change['operation']}_{change['resource_type']}"


def test_the_check_fails_on_what_the_sink_used_to_write(
    demo_archive: DemoArchive,  # noqa: F811
) -> None:
    """The validation can fail: the defects of the OCSF 1.1 records are each found."""
    rows = demo_archive.rows()
    api = next(r for r in rows if r["class_uid"] == 6003 and r.get("http_request"))
    auth = next(r for r in rows if r["class_uid"] == 3002)

    assert any("disposition" in e for e in ocsf_errors(api, "1.1.0"))  # no security_control
    without_actor = {k: v for k, v in api.items() if k != "actor"}
    assert any("'actor' is a required property" in e for e in ocsf_errors(without_actor))
    without_user = {k: v for k, v in auth.items() if k != "user"}
    assert any("'user' is a required property" in e for e in ocsf_errors(without_user))
    nulls = copy.deepcopy(api)
    nulls["http_request"]["user_agent"] = None
    assert any("None is not of type 'string'" in e for e in ocsf_errors(nulls))
    patch = copy.deepcopy(api)
    patch["http_request"]["http_method"] = "PATCH"
    assert not ocsf_errors(patch)
    assert any("PATCH" in e for e in ocsf_errors(patch, "1.5.0"))  # why 1.6.0
    wrong_type = dict(api, type_uid=api["type_uid"] + 1)
    assert any("type_uid" in e for e in ocsf_errors(wrong_type))
    deprecated = copy.deepcopy(api)
    deprecated["actor"]["user"]["credential_uid"] = "0123456789abcdef"
    assert any("credential_uid: deprecated" in e for e in ocsf_errors(deprecated))


@pytest.mark.parametrize("version", ["1.7.0", "1.8.0"])
def test_the_records_also_validate_against_newer_ocsf_versions(
    demo_archive: DemoArchive,  # noqa: F811
    version: str,
) -> None:
    """Readers on a newer 1.x schema accept them too (1.x only adds; this proves it here)."""
    rows = demo_archive.rows()
    assert {
        r["metadata"]["uid"]: ocsf_errors(r, version) for r in rows if ocsf_errors(r, version)
    } == {}
