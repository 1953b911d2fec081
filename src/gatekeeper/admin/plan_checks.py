"""Checks of a plan before it is applied: pure functions over the file, the plan and the routes.

- :func:`emptied_sections`: a section present but empty (``roles: {}``) deletes every stored
  item of its kind; that is almost always a mistake, so ``policy apply`` refuses it unless forced.
- :func:`unmatched_permissions`: a permission that matches no catalogued route grants nothing
  (a typo in a path, a wrong method, an API id that does not exist); ``policy plan`` warns.

Example::

    emptied_sections(parse("roles: {}"), plan)   # ["roles: {} deletes all 5 stored role(s)"]
"""

from __future__ import annotations

from collections.abc import Iterable

from gatekeeper.admin.access_file import SECTIONS, AccessFile
from gatekeeper.admin.service import Plan
from gatekeeper.rbac.model import ApiRoutes, Permission, Role, parse_route
from gatekeeper.rbac.patterns import Segment, split_path


def emptied_sections(wanted: AccessFile, plan: Plan) -> list[str]:
    """One message per section that is present, empty, and would delete stored items."""
    found: list[str] = []
    for section, resource_type in SECTIONS.items():
        value = getattr(wanted, section)
        if value is None or len(value) > 0:
            continue
        doomed = sum(c.resource_type == resource_type for c in plan.deletions)
        if doomed:
            empty = "{}" if section == "roles" else "[]"
            found.append(f"{section}: {empty} deletes all {doomed} stored {resource_type}(s)")
    return found


def unmatched_permissions(roles: Iterable[Role], apis: Iterable[ApiRoutes]) -> list[str]:
    """``role: METHODS path`` for every allow permission that matches no route of any catalog
    it applies to (nothing is reported when no catalog exists: there is nothing to check)."""
    catalogs = list(apis)
    if not catalogs:
        return []
    found: list[str] = []
    for role in roles:
        for perm in role.permissions:
            if perm.effect != "allow":
                continue
            if not any(
                _covers(perm, route)
                for api in catalogs
                if perm.applies_to(api.api_id, api.stage)
                for route in api.routes
            ):
                where = "".join(
                    f" {k}={v}" for k, v in (("api", perm.api_id), ("stage", perm.stage)) if v
                )
                found.append(f"{role.name}: {','.join(perm.methods)} {perm.path}{where}")
    return found


def _covers(perm: Permission, route: str) -> bool:
    verb, path = parse_route(route)
    if "*" not in perm.methods and verb != "ANY" and verb not in perm.methods:
        return False
    return _overlap(perm.segments, split_path(path))


def _overlap(pattern: tuple[Segment, ...], route: tuple[str, ...]) -> bool:
    """Could one request path match both the permission's pattern and the route template?"""
    for i, seg in enumerate(pattern):
        if seg.kind == "rest":
            return True
        if i >= len(route):
            return False
        part = route[i]
        if part.startswith("{") and part.endswith("+}"):  # greedy route parameter
            return True
        if seg.kind == "literal" and not (part.startswith("{") or part == seg.value):
            return False
    return len(pattern) == len(route)
