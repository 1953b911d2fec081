"""Validate archived records against the OCSF schema itself (the ``ocsf-json-schema`` package,
every OCSF version's JSON schema offline) with ``jsonschema``; never a hand-written schema.

:func:`ocsf_errors` checks a record against the class and profiles it declares, at the version
it declares (``metadata.version``), plus what JSON Schema cannot say: ``type_uid`` and
``category_uid`` agree with the class, and no attribute the version deprecates is used.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from ocsf_json_schema import (  # type: ignore[import-untyped]
    OcsfJsonSchemaEmbedded,
    get_ocsf_schema,
)


@functools.cache
def _embedded(version: str) -> OcsfJsonSchemaEmbedded:
    return OcsfJsonSchemaEmbedded(get_ocsf_schema(version))


@functools.cache
def class_schema(version: str, class_uid: int, profiles: tuple[str, ...]) -> dict[str, Any]:
    schema = _embedded(version)
    name = schema.lookup_class_name_from_uid(class_uid)
    built: dict[str, Any] = schema.get_class_schema(name, list(profiles))
    return built


@functools.cache
def _validator(version: str, class_uid: int, profiles: tuple[str, ...]) -> Draft202012Validator:
    schema = class_schema(version, class_uid, profiles)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _category_of(version: str, class_uid: int) -> int | None:
    for cls in get_ocsf_schema(version)["classes"].values():
        if cls.get("uid") == class_uid:
            return int(cls["category_uid"]) if "category_uid" in cls else None
    return None


def _deprecated(value: Any, schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    found: list[str] = []
    if not isinstance(value, dict):
        return found
    for key, item in value.items():
        prop = schema.get("properties", {}).get(key)
        if prop is None:
            continue
        where = f"{path}{key}"
        if prop.get("deprecated"):
            found.append(f"{where}: deprecated in this OCSF version")
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if ref and ref.startswith("#/$defs/"):
            sub = defs[ref.removeprefix("#/$defs/")]
            for element in item if isinstance(item, list) else [item]:
                found += _deprecated(element, sub, defs, f"{where}/")
    return found


def ocsf_errors(record: dict[str, Any], version: str | None = None) -> list[str]:
    """Every way ``record`` breaks the OCSF schema of ``version`` (default: the one it names)."""
    version = version or record["metadata"]["version"]
    class_uid = record["class_uid"]
    profiles = tuple(record["metadata"].get("profiles", ()))
    validator = _validator(version, class_uid, profiles)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message[:200]}"
        for e in validator.iter_errors(record)
    ]
    if record.get("type_uid") != class_uid * 100 + record.get("activity_id", -1):
        errors.append(f"type_uid {record.get('type_uid')} is not class_uid * 100 + activity_id")
    category = _category_of(version, class_uid)
    if category is not None and record.get("category_uid") != category:
        errors.append(f"category_uid {record.get('category_uid')} is not {category}")
    schema = class_schema(version, class_uid, profiles)
    errors += _deprecated(record, schema, schema.get("$defs", {}), "")
    return errors
