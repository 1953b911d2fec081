"""The declarative access file (``access.yaml``): roles, assignments, claim mappings, APIs, limits,
client-certificate mapping rules.

A section that is present is managed completely (items stored but not in the file are deleted
by ``policy apply``); a section that is absent is left alone. Credentials are never in the file:
API keys hold secrets (``gatekeeper keys``), and request-signing keys and certificate
revocations are operational, changed at once in an incident (``gatekeeper signing-keys``,
``gatekeeper certs revoke``) where a file applied later must not undo them.

:func:`render` is canonical (sorted, defaults omitted), so ``policy export`` of an applied file
reproduces it byte for byte when the file is itself canonical (as ``examples/access.yaml`` is).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gatekeeper.identity.mtls import CertMapping, dn_fields, dn_problem
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import (
    ApiRoutes,
    ClaimMapping,
    Permission,
    Role,
    RoleAssignment,
    check_inheritance,
)

HEADER = (
    "# Gatekeeper access file: `gatekeeper policy plan|apply -f <file>`, `gatekeeper policy "
    "export`.\n# JSON Schema: schemas/access.schema.json\n"
)


class RoleSpec(BaseModel):
    """A role in the file; its name is the key of the ``roles`` mapping (see :class:`Role`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    inherits: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()


class AccessFile(BaseModel):
    """The whole file. ``None`` sections are not managed by this file."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Gatekeeper access file")

    version: Literal[1] = Field(default=1, description="File format version.")
    roles: dict[str, RoleSpec] | None = None
    assignments: tuple[RoleAssignment, ...] | None = None
    claim_mappings: tuple[ClaimMapping, ...] | None = None
    apis: tuple[ApiRoutes, ...] | None = None
    limits: tuple[LimitRule, ...] | None = None
    cert_mappings: tuple[CertMapping, ...] | None = Field(
        default=None, description="Client-certificate (mTLS) mapping rules."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AccessFile:
        roles = self.role_models()
        if self.roles is not None:
            check_inheritance({r.name: r for r in roles})
        _unique("assignments", ((a.principal_id, a.tenant) for a in self.assignments or ()))
        _unique("claim_mappings", ((m.issuer, m.claim, m.value) for m in self.claim_mappings or ()))
        _unique("apis", ((a.api_id, a.stage) for a in self.apis or ()))
        _unique("limits", (r.rule_id for r in self.limits or ()))
        _unique("cert_mappings", ((m.match, m.value) for m in self.cert_mappings or ()))
        for m in self.cert_mappings or ():
            for dn in dn_fields(m).values():
                if (problem := dn_problem(dn)) is not None:
                    raise ValueError(f"cert_mappings: {dn!r}: {problem}")
        if self.roles is not None:
            known = set(self.roles)
            refs = [
                *(("assignments", r) for a in self.assignments or () for r in a.roles),
                *(("claim_mappings", r) for m in self.claim_mappings or () for r in m.roles),
                *(("limits", r.role) for r in self.limits or () if r.role),
                *(("cert_mappings", r) for m in self.cert_mappings or () for r in m.roles),
            ]
            for section, name in refs:
                if name not in known:
                    raise ValueError(f"{section}: unknown role {name!r}")
        return self

    def role_models(self) -> list[Role]:
        return [Role(name=n, **spec.model_dump()) for n, spec in (self.roles or {}).items()]


def _unique(section: str, keys: Iterable[object]) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{section}: duplicate entry {key!r}")
        seen.add(key)


def from_models(
    roles: Iterable[Role],
    assignments: Iterable[RoleAssignment],
    claim_mappings: Iterable[ClaimMapping],
    apis: Iterable[ApiRoutes],
    limits: Iterable[LimitRule],
    cert_mappings: Iterable[CertMapping] = (),
) -> AccessFile:
    """Canonical order: everything sorted by its key. Certificate rules appear only when there
    are some (a file written before mTLS existed round-trips unchanged)."""
    certs = tuple(sorted(cert_mappings, key=lambda m: (m.match, m.value)))
    return AccessFile(
        roles={
            r.name: RoleSpec(**r.model_dump(exclude={"name"}))
            for r in sorted(roles, key=lambda r: r.name)
        },
        assignments=tuple(sorted(assignments, key=lambda a: (a.principal_id, a.tenant))),
        claim_mappings=tuple(
            sorted(claim_mappings, key=lambda m: (m.issuer or "", m.claim, m.value))
        ),
        apis=tuple(sorted(apis, key=lambda a: (a.api_id, a.stage))),
        limits=tuple(sorted(limits, key=lambda r: r.rule_id)),
        cert_mappings=certs or None,
    )


class _Dumper(yaml.SafeDumper):
    """Block style, except short lists of scalars (``methods: [GET, POST]``) stay on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, str | int | float | bool) for v in data) and len(data) <= 8
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def render(access: AccessFile) -> str:
    data = access.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    data = {"version": access.version, **data}
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` (no ``!!python/…`` tags) that refuses duplicate keys in a mapping: YAML
    says keys are unique, and PyYAML would otherwise keep the last one silently."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if first is not None:
            line = first.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {line})", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)

SECTIONS: dict[str, str] = {
    "roles": "role",
    "assignments": "assignment",
    "claim_mappings": "claim_mapping",
    "apis": "api",
    "limits": "limit",
    "cert_mappings": "cert_mapping",
}
"""Section of the file -> the resource type of its items in a plan."""


def load_yaml(text: str, *, allow_duplicate_keys: bool = False) -> Any:
    """YAML (or JSON) data; raises ``yaml.YAMLError`` (with line and column) on bad input,
    including a duplicate key unless ``allow_duplicate_keys`` (then the last one wins)."""
    loader = yaml.SafeLoader if allow_duplicate_keys else _StrictLoader
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass


def parse(text: str, *, allow_duplicate_keys: bool = False) -> AccessFile:
    """Parse YAML (or JSON) text; raises ``yaml.YAMLError`` (bad YAML, duplicate keys),
    ``ValueError`` or pydantic's ValidationError (not a valid access file)."""
    data = load_yaml(text, allow_duplicate_keys=allow_duplicate_keys)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("the access file must be a mapping at the top level")
    return AccessFile.model_validate(data)


def json_schema() -> dict[str, Any]:
    schema = AccessFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
