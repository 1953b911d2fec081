"""The CLI's one error boundary: any failure becomes one line naming the thing, and exit 1.

:func:`describe` turns an exception into that line. AWS errors name the table, bucket, stream or
key the failing call was about: :func:`watch` hooks a boto3 client so every call records the
resource it names (botocore's own messages often do not, e.g. ``ResourceNotFoundException``
on a ``Query``). :func:`redact` keeps API-key secrets out of every line printed.

Example::

    client = watch(session.client("dynamodb"))
    try:
        run(args)
    except Exception as exc:
        print(f"gatekeeper: error: {describe(exc)}", file=sys.stderr)
"""

from __future__ import annotations

import re
from typing import Any

_API_KEY = re.compile(r"\b([a-z][a-z0-9]{1,9})_([0-9a-f]{16})_[A-Za-z0-9_-]+")
_RESOURCE_PARAMS = (
    ("TableName", "table"),
    ("Bucket", "bucket"),
    ("StreamName", "stream"),
    ("StreamARN", "stream"),
    ("KeyId", "KMS key"),
)
_last_call: dict[str, str] = {}


class UsageError(Exception):
    """Bad command-line input, or a missing resource, that argparse could not catch."""


def redact(text: str) -> str:
    """Replace the secret of anything shaped like an API key (``gk_<id>_<secret>``)."""
    return _API_KEY.sub(r"\1_\2_<secret>", text)


def watch(client: Any) -> Any:
    """Record, on every call of ``client``, the resource it names (for :func:`describe`)."""
    client.meta.events.register("provide-client-params", _remember)
    return client


def _remember(params: dict[str, Any], model: Any = None, **_: Any) -> None:
    _last_call.clear()
    found = _find_resource(params)
    if found:
        _last_call["kind"], _last_call["name"] = found


def _find_resource(params: Any) -> tuple[str, str] | None:
    if isinstance(params, dict):
        for name, kind in _RESOURCE_PARAMS:
            if isinstance(params.get(name), str):
                return kind, params[name]
        for value in params.values():
            if isinstance(value, dict | list) and (found := _find_resource(value)):
                return found
    elif isinstance(params, list):
        for value in params:
            if found := _find_resource(value):
                return found
    return None


def _resource() -> str:
    if "name" in _last_call:
        return f"{_last_call['kind']} {_last_call['name']!r}"
    return ""


def describe(exc: BaseException) -> str:
    """One line: what failed and, where known, which file, table, bucket or endpoint."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )
    from pydantic import ValidationError
    from yaml import YAMLError

    from gatekeeper.admin.errors import AdminError

    match exc:
        case AdminError():
            where = f" (field: {exc.field})" if exc.field else ""
            return f"{exc.code}: {exc.message}{where}"
        case ValidationError():
            return "invalid: " + "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(input)'}: {err['msg']}"
                for err in exc.errors()
            )
        case UsageError():
            return str(exc)
        case YAMLError():
            return f"not valid YAML: {' '.join(str(exc).split())}"
        case FileNotFoundError():
            return f"{exc.filename}: no such file"
        case IsADirectoryError():
            return f"{exc.filename}: is a directory"
        case PermissionError():
            return f"{exc.filename}: permission denied"
        case UnicodeDecodeError():
            return f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        case OSError() if exc.filename:
            return f"{exc.filename}: {exc.strerror or exc}"
        case NoCredentialsError() | PartialCredentialsError():
            return (
                "no AWS credentials: use --profile or AWS_PROFILE, or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (any values will do for a local --endpoint-url)"
            )
        case NoRegionError():
            return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
        case ProfileNotFound():
            return f"AWS profile not found: {exc.kwargs.get('profile')}"
        case EndpointConnectionError() | ConnectTimeoutError() | ReadTimeoutError():
            endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
            about = f" ({_resource()})" if _resource() else ""
            return f"cannot reach {endpoint}{about}: is it running, and is the URL right?"
        case ClientError():
            return _client_error(exc)
        case BotoCoreError():
            return f"AWS: {exc}"
        case ValueError():
            return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def _client_error(exc: Any) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "error"))
    message = str(error.get("Message", "")).strip()
    operation = exc.operation_name
    resource = _resource()
    kind = _last_call.get("kind", "")
    if code in {"ResourceNotFoundException", "NoSuchBucket", "NotFoundException"} and resource:
        hint = " (create the tables with: gatekeeper tables create)" if kind == "table" else ""
        return f"{resource} not found ({operation}){hint}"
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
        on = f" on {resource}" if resource else ""
        return f"access denied: {operation}{on}: {message}"
    on = f" on {resource}" if resource else ""
    return f"{code} in {operation}{on}: {message}" if message else f"{code} in {operation}{on}"
