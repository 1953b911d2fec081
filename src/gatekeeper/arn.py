"""The ``execute-api`` ARN API Gateway hands an authorizer, and the resource ARNs a policy names.

API Gateway sends ``methodArn`` (REST) or ``routeArn`` (HTTP API) as
``arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}``; the path is the
request path without its leading ``/`` (empty for the root).

Two more forms name a *route* rather than a request: an HTTP API's catch-all route
(``{apiId}/{stage}/$default``) and a WebSocket API's connect route (``{apiId}/{stage}/$connect``);
they carry no verb and no path (``route`` is set instead). The console's "Test authorizer" sends
``*`` as the stage (and may send ``*`` as the verb): a wildcard, kept as such (``wildcard``).

Parsing is strict because the parsed path is put back into policies: a ``*`` or ``?`` in it would
become a wildcard there, so such ARNs are refused rather than escaped (IAM has no escape that API
Gateway is documented to honour).

>>> arn = ExecuteApiArn.parse(
...     "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders/12"
... )
>>> arn.method, arn.path
('GET', '/orders/12')
>>> arn.resource("GET", "/orders/*")
'arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders/*'
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.rbac.model import HTTP_METHODS

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):execute-api:(?P<region>[^:]+):(?P<account>[^:]+):"
    r"(?P<api>[^/]+)/(?P<stage>[^/]+)/(?:(?P<route>\$default|\$connect)|"
    r"(?P<method>[^/$][^/]*)(?:/(?P<path>.*))?)"
)
ROUTES = ("$default", "$connect")
"""Route ARNs without verb and path: HTTP API catch-all, WebSocket connect."""
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_ACCOUNT = r"^\d{12}$"
_API_ID = r"^[A-Za-z0-9]+$"
_STAGE = r"^(\$default|\*|[A-Za-z0-9_-]+)$"
# No whitespace, no IAM wildcards (``*``, ``?``), no braces (``${…}`` is a policy variable).
_PATH_SEGMENT = re.compile(r"[^\s*?/{}]+")


class ExecuteApiArn(BaseModel):
    """One request (or route) as API Gateway names it; ``path`` is ``/a/b`` (``/`` for the root)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str = Field(default="aws", pattern=r"^aws[a-z-]*$")
    region: str = Field(pattern=_REGION)
    account_id: str = Field(pattern=_ACCOUNT)
    api_id: str = Field(pattern=_API_ID)
    stage: str = Field(pattern=_STAGE)
    method: str | None = None
    path: str | None = None
    route: str | None = None

    @field_validator("method")
    @classmethod
    def _verb(cls, value: str | None) -> str | None:
        if value is not None and value not in HTTP_METHODS and value != "*":
            raise ValueError(f"unsupported HTTP method {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str | None) -> str | None:
        """The path is put back into policies: refuse whatever would act as a wildcard there."""
        if value is not None:
            _check_path(value)
        return value

    @model_validator(mode="after")
    def _one_form(self) -> ExecuteApiArn:
        if (self.route is None) == (self.method is None or self.path is None):
            raise ValueError("an ARN names either a route or a verb and a path")
        if self.route is not None and self.route not in ROUTES:
            raise ValueError(f"unsupported route {self.route!r}")
        return self

    @property
    def wildcard(self) -> bool:
        """The console's "Test authorizer" form: ``*`` as the stage or as the verb."""
        return self.stage == "*" or self.method == "*"

    @classmethod
    def parse(cls, arn: str) -> ExecuteApiArn:
        """Parse a ``methodArn``/``routeArn``; raises ``ValueError`` when anything is off."""
        m = _ARN.fullmatch(arn) if isinstance(arn, str) else None
        if m is None:
            raise ValueError(f"not an execute-api method ARN: {arn!r}")
        try:
            return cls(
                partition=m.group("partition"),
                region=m.group("region"),
                account_id=m.group("account"),
                api_id=m.group("api"),
                stage=m.group("stage"),
                route=m.group("route"),
                method=m.group("method"),
                path=None if m.group("route") else "/" + (m.group("path") or ""),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"malformed execute-api ARN {arn!r}: {exc}") from None

    @property
    def base(self) -> str:
        """``arn:…:{apiId}/{stage}``: every resource of this API stage starts with it."""
        return (
            f"arn:{self.partition}:execute-api:{self.region}:{self.account_id}:"
            f"{self.api_id}/{self.stage}"
        )

    @property
    def arn(self) -> str:
        """The request (or route) itself as a resource ARN (the path holds no wildcards)."""
        if self.route is not None:
            return f"{self.base}/{self.route}"
        assert self.method is not None and self.path is not None  # by _one_form
        return self.resource(self.method, self.path)

    def resource(self, verb: str, path_glob: str) -> str:
        """``{base}/{verb}/{path}``; ``path_glob`` starts with ``/`` and may contain ``*``."""
        if not path_glob.startswith("/"):
            raise ValueError(f"path must start with '/': {path_glob!r}")
        return f"{self.base}/{verb}/{path_glob[1:]}"

    def __str__(self) -> str:
        return self.arn


def _check_path(path: str) -> None:
    """Refuse empty segments and characters that would act as wildcards in a policy.

    One trailing ``/`` is kept as sent (``/orders/`` is a distinct resource to IAM).
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    rest = path[1:]
    if not rest:
        return
    if rest.endswith("/"):
        rest = rest[:-1]
    if not rest or not all(_PATH_SEGMENT.fullmatch(part) for part in rest.split("/")):
        raise ValueError(f"invalid path {path!r} (empty segment, wildcard, brace or whitespace)")
