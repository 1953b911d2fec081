"""Access tests: "who may do what" as expectations, checked against an access file, no AWS.

A test file lists requests and what RBAC must answer for them; :func:`run` decides each one with
the authorizer's own pure functions (:func:`~gatekeeper.rbac.evaluator.resolve_roles`,
:func:`~gatekeeper.rbac.evaluator.grants_for`, :func:`~gatekeeper.rbac.evaluator.evaluate`) over
the access file loaded as an :class:`~gatekeeper.rbac.model.ConfigSnapshot`, so a rule change
that breaks an expectation fails CI (``gatekeeper test``) before it is applied.

The file (YAML; ``examples/access-tests.yaml``)::

    version: 1
    access: access.yaml            # optional: the access file, relative to this file
    defaults: {api_id: a1b2c3d4e5, stage: prod}   # optional; else the file's first API
    tests:
      - name: a clerk may not delete orders
        principal: corp:alice      # a principal id: its stored assignment for `tenant` counts
        tenant: acme
        request: DELETE /orders/o-1   # or method: + path:
        expect: deny
        reason: explicit_deny      # optional: allowed | explicit_deny | no_matching_permission
        rule: orders-clerk#2       # optional: the matched rule (role#index), or null for none
      - roles: [orders-reader]     # roles held directly (an API key's roles)
        auth: api_key              # jwt (the default with claims) or api_key
        tenant: globex
        request: GET /orders
        expect: allow
      - principal: corp:carol      # a JWT caller: `issuer` defaults to the id's prefix
        claims: {groups: [platform-admins]}
        request: GET /admin/users
        expect: allow

``tenant_header`` adds the authorizer's tenant check (a header naming another tenant is a
``tenant_mismatch`` deny). Unknown fields are errors, so a typo never makes a test pass.

>>> from gatekeeper.admin.access_file import parse
>>> access = parse("roles: {r: {permissions: [{methods: [GET], path: /a}]}}")
>>> suite = parse_suite("tests: [{roles: [r], request: GET /a, expect: allow}]")
>>> [result.passed for result in run(suite, access).results]
[True]
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.admin.access_file import AccessFile
from gatekeeper.identity.principal import AuthMethod, Principal
from gatekeeper.rbac.evaluator import Decision, DecisionReason, evaluate, grants_for, resolve_roles
from gatekeeper.rbac.model import HTTP_METHODS, ConfigSnapshot

Expect = Literal["allow", "deny"]
Reason = DecisionReason | Literal["tenant_mismatch"]
GROUP_CLAIMS = ("groups", "cognito:groups")
"""The claims a JWT issuer's ``groups`` attribute is the union of (the verifier's default)."""


# --- the model -------------------------------------------------------------------------------
def snapshot_of(access: AccessFile, *, version: int = 0) -> ConfigSnapshot:
    """The access file as the RBAC data the authorizer decides over (assignments excluded)."""
    return ConfigSnapshot(
        version=version,
        roles={role.name: role for role in access.role_models()},
        claim_mappings=access.claim_mappings or (),
        apis=access.apis or (),
        limits=access.limits or (),
        cert_mappings=access.cert_mappings or (),
    )


def claim_attributes(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Claims as the JWT verifier keeps them: string claims as tuples (``scope``/``scp`` split
    on spaces), ``groups`` the union of the group claims."""
    attributes: dict[str, tuple[str, ...]] = {}
    for name, value in claims.items():
        if isinstance(value, str):
            attributes[name] = tuple(value.split()) if name in ("scope", "scp") else (value,)
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            attributes[name] = tuple(value)
    groups = tuple(dict.fromkeys(g for c in GROUP_CLAIMS for g in attributes.get(c, ())))
    attributes.pop("groups", None)
    if groups:
        attributes["groups"] = groups
    return attributes


def offline_principal(
    principal_id: str,
    *,
    tenant: str | None,
    roles: Iterable[str] = (),
    claims: Mapping[str, Any] | None = None,
    issuer: str | None = None,
    auth: AuthMethod | None = None,
    key_id: str | None = None,
    scopes: Iterable[str] = (),
) -> Principal:
    """A :class:`Principal` as authentication would have produced it, without a credential.

    With claims (or ``auth="jwt"``) it is a JWT caller whose issuer defaults to the principal
    id's prefix (``corp:alice`` → ``corp``), as the verifier names them.
    """
    method: AuthMethod = auth or ("jwt" if claims else "api_key")
    attributes = claim_attributes(claims or {})
    if method == "jwt" and issuer is None and ":" in principal_id:
        issuer = principal_id.split(":", 1)[0]
    return Principal(
        principal_id=principal_id,
        auth_method=method,
        tenant=tenant,
        issuer=issuer if method == "jwt" else None,
        key_id=key_id if method == "api_key" else None,
        roles=frozenset(roles),
        scopes=frozenset(
            (*attributes.get("scope", ()), *attributes.get("scp", ()), *tuple(scopes))
        ),
        attributes=attributes,
    )


# --- the test file ---------------------------------------------------------------------------
class Defaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_id: str | None = None
    stage: str | None = None
    tenant: str | None = None


class Case(BaseModel):
    """One expectation. ``principal`` and/or ``roles`` say who; ``request`` or ``method`` +
    ``path`` say what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    principal: str | None = Field(default=None, min_length=1)
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = Field(
        default=(), description="the credential's scopes (an API key's; a JWT's scope claim)"
    )
    tenant: str | None = None
    claims: dict[str, str | list[str]] | None = None
    issuer: str | None = None
    auth: AuthMethod | None = None
    tenant_header: str | None = None
    request: str | None = None
    method: str | None = None
    path: str | None = None
    api_id: str | None = None
    stage: str | None = None
    expect: Expect
    reason: Reason | None = None
    rule: str | None = Field(
        default="", description="the matched rule (role#index); null: none matched"
    )

    @field_validator("method")
    @classmethod
    def _verb(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)}")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _complete(self) -> Case:
        if self.principal is None and not self.roles:
            raise ValueError("say who: principal and/or roles")
        if (self.request is None) == (self.method is None and self.path is None):
            raise ValueError("say what: request ('GET /path') or method and path")
        if self.request is not None:
            verb, _, path = self.request.strip().partition(" ")
            if verb.upper() not in HTTP_METHODS or not path.strip().startswith("/"):
                raise ValueError(f"request must look like 'GET /path': {self.request!r}")
        elif self.method is None or self.path is None or not self.path.startswith("/"):
            raise ValueError("method and path ('/…') go together")
        if self.claims and self.auth == "api_key":
            raise ValueError("claims come with JWT callers only (auth: jwt)")
        return self

    @property
    def verb(self) -> str:
        if self.request is not None:
            return self.request.strip().partition(" ")[0].upper()
        assert self.method is not None
        return self.method

    @property
    def target(self) -> str:
        if self.request is not None:
            return self.request.strip().partition(" ")[2].strip()
        assert self.path is not None
        return self.path


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    access: str | None = Field(default=None, description="the access file, relative to this file")
    defaults: Defaults = Defaults()
    tests: tuple[Case, ...]

    @model_validator(mode="after")
    def _some(self) -> Suite:
        if not self.tests:
            raise ValueError("tests: the file lists no tests")
        return self


class SuiteError(ValueError):
    """The test file is not valid; the message names the test (and line) where known."""


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_unique_keys(node: yaml.Node) -> None:
    """A duplicate key is an error (PyYAML would keep the last one silently, so a test could
    lose its expectation without a word)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key.value!r} (first on line {seen[key.value]})",
                            key.start_mark,
                        )
                    seen[key.value] = key.start_mark.line + 1
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def load_suite_text(text: str) -> tuple[Any, list[int]]:
    """The data of a test file and the 1-based line of each entry of ``tests``, in one parse."""
    loader = _BaseLoader(text)  # safe: no ``!!python`` tags; libyaml where available
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_unique_keys(node)
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "tests" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return data, lines


def parse_suite(text: str) -> Suite:
    """Parse a test file; raises ``yaml.YAMLError`` or :class:`SuiteError` (with the line)."""
    return parse_suite_with_lines(text)[0]


def parse_suite_with_lines(text: str) -> tuple[Suite, list[int]]:
    """:func:`parse_suite` and the line of each test."""
    from pydantic import ValidationError

    data, lines = load_suite_text(text)
    if not isinstance(data, dict):
        raise SuiteError("the test file must be a mapping with a 'tests' list")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            where = ".".join(str(p) for p in loc) or "(file)"
            if len(loc) >= 2 and loc[0] == "tests" and isinstance(loc[1], int):
                index = loc[1]
                line = f" (line {lines[index]})" if index < len(lines) else ""
                where = f"test {index + 1}{line}" + "".join(f".{p}" for p in loc[2:])
            problems.append(f"{where}: {err['msg']}")
        raise SuiteError("; ".join(problems)) from None
    return suite, lines


def case_lines(text: str) -> list[int]:
    """The 1-based line of each entry of ``tests`` (for messages and JUnit)."""
    try:
        return load_suite_text(text)[1]
    except yaml.YAMLError:
        return []


# --- running ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    index: int
    case: Case
    name: str
    who: str
    roles: tuple[str, ...]
    decision: Decision
    tenant_mismatch: bool
    problems: tuple[str, ...]
    line: int | None = None

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def actual(self) -> str:
        return "allow" if self.decision.allowed and not self.tenant_mismatch else "deny"

    @property
    def reason(self) -> str:
        return "tenant_mismatch" if self.tenant_mismatch else self.decision.reason

    @property
    def rule(self) -> str | None:
        return None if self.tenant_mismatch else self.decision.matched_rule


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    seconds: float
    source: str = "access tests"
    failures: tuple[Result, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", tuple(r for r in self.results if not r.passed))

    @property
    def ok(self) -> bool:
        return not self.failures


def default_api(suite: Suite, access: AccessFile) -> tuple[str, str]:
    """The API stage requests are decided on unless a test names one: the defaults, else the
    access file's first catalogued API, else a placeholder (permissions without api_id apply)."""
    apis = access.apis or ()
    api_id = suite.defaults.api_id or (apis[0].api_id if apis else "local")
    stage = suite.defaults.stage or next((a.stage for a in apis if a.api_id == api_id), "$default")
    return api_id, stage


def run(
    suite: Suite, access: AccessFile, *, lines: Sequence[int] = (), source: str = "access tests"
) -> Report:
    """Decide every case and compare; pure and fast (no I/O)."""
    started = time.perf_counter()
    snapshot = snapshot_of(access)
    assignments = access.assignments or ()
    by_principal: dict[str, list[Any]] = {}
    for assignment in assignments:
        by_principal.setdefault(assignment.principal_id, []).append(assignment)
    default_id, default_stage = default_api(suite, access)
    grants_memo: dict[tuple[tuple[str, ...], str, str, frozenset[str]], Any] = {}
    results: list[Result] = []
    for index, case in enumerate(suite.tests):
        tenant = case.tenant or suite.defaults.tenant
        principal_id = case.principal or "test:" + "+".join(case.roles)
        principal = offline_principal(
            principal_id,
            tenant=tenant,
            roles=case.roles,
            claims=case.claims,
            issuer=case.issuer,
            auth=case.auth,
            scopes=case.scopes,
        )
        roles = resolve_roles(snapshot, principal, by_principal.get(principal_id, ()))
        api_id = case.api_id or default_id
        stage = case.stage or (default_stage if api_id == default_id else "$default")
        # as the authorizer: a permission requiring scopes applies only to a caller with them
        scopes = snapshot.relevant_scopes(principal.scopes)
        memo_key = (roles, api_id, stage, scopes)
        grants = grants_memo.get(memo_key)
        if grants is None:
            grants = grants_memo[memo_key] = grants_for(snapshot, roles, api_id, stage, scopes)
        decision = evaluate(grants, case.verb, case.target, tenant)
        mismatch = case.tenant_header is not None and case.tenant_header != tenant
        result = Result(
            index=index,
            case=case,
            name=case.name or f"{case.verb} {case.target} as {_who(case, tenant)}",
            who=_who(case, tenant),
            roles=roles,
            decision=decision,
            tenant_mismatch=mismatch,
            problems=(),
            line=lines[index] if index < len(lines) else None,
        )
        results.append(replace(result, problems=_compare(case, result)))
    return Report(tuple(results), time.perf_counter() - started, source)


def _who(case: Case, tenant: str | None) -> str:
    who = case.principal or "a caller"
    if case.roles:
        who += f" with roles {','.join(case.roles)}"
    if tenant:
        who += f" in {tenant}"
    if case.claims:
        who += " with " + ", ".join(
            f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in case.claims.items()
        )
    return who


def _compare(case: Case, result: Result) -> tuple[str, ...]:
    problems = []
    if case.expect != result.actual:
        problems.append("decision")
    if case.reason is not None and case.reason != result.reason:
        problems.append("reason")
    if case.rule not in ("", result.rule):
        problems.append("rule")
    return tuple(problems)


# --- reporting -------------------------------------------------------------------------------
def _expected_text(case: Case) -> str:
    parts: list[str] = [case.expect]
    if case.reason is not None:
        parts.append(f"reason {case.reason}")
    if case.rule != "":
        parts.append(f"rule {case.rule or '(none)'}")
    return ", ".join(parts)


def _actual_text(result: Result) -> str:
    return f"{result.actual}, reason {result.reason}, rule {result.rule or '(none)'}"


def failure_lines(result: Result, source: str) -> list[str]:
    """A readable diff of one failed expectation."""
    at = f"{source}:{result.line}" if result.line else source
    case = result.case
    return [
        f"FAIL {result.name}  ({at})",
        f"     {case.verb} {case.target} as {result.who}",
        f"     roles held: {', '.join(result.roles) or '(none)'}",
        f"   - expected: {_expected_text(case)}",
        f"   + actual:   {_actual_text(result)}",
    ]


def render(report: Report, *, verbose: bool = False) -> str:
    out: list[str] = []
    for result in report.results:
        if not result.passed:
            out.extend(failure_lines(result, report.source))
        elif verbose:
            out.append(f"ok   {result.name}")
    passed = len(report.results) - len(report.failures)
    status = "OK" if report.ok else "FAILED"
    out.append(
        f"{status}: {passed} passed, {len(report.failures)} failed "
        f"({len(report.results)} expectations in {report.seconds * 1000:.1f} ms)"
    )
    return "\n".join(out)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "passed": len(report.results) - len(report.failures),
        "failed": len(report.failures),
        "seconds": round(report.seconds, 6),
        "results": [
            {
                "name": r.name,
                "line": r.line,
                "passed": r.passed,
                "mismatch": list(r.problems),
                "expected": {
                    "decision": r.case.expect,
                    "reason": r.case.reason,
                    **({"rule": r.case.rule} if r.case.rule != "" else {}),
                },
                "actual": {"decision": r.actual, "reason": r.reason, "rule": r.rule},
                "roles": list(r.roles),
            }
            for r in report.results
        ],
    }


def junit_xml(report: Report, *, suite_name: str = "gatekeeper access tests") -> bytes:
    """JUnit XML (one ``testcase`` per expectation, a ``failure`` with the diff)."""
    root = ET.Element(
        "testsuites",
        tests=str(len(report.results)),
        failures=str(len(report.failures)),
        time=f"{report.seconds:.6f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(report.results)),
        failures=str(len(report.failures)),
        errors="0",
        skipped="0",
        time=f"{report.seconds:.6f}",
    )
    each = report.seconds / max(len(report.results), 1)
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=report.source,
            name=result.name,
            time=f"{each:.6f}",
        )
        if result.line:
            case.set("file", report.source)
            case.set("line", str(result.line))
        if not result.passed:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"expected {_expected_text(result.case)}; got {_actual_text(result)}",
                type="AccessMismatch",
            )
            failure.text = "\n".join(failure_lines(result, report.source))
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml
