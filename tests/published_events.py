"""AWS's published sample events, from an artefact we did not write: the AWS SAM CLI wheel.

``sam local generate-event`` renders mustache templates shipped inside the ``aws-sam-cli`` wheel
(``samcli/lib/generated_sample_events/events/<service>/<Name>.json``) with the defaults listed in
``event-mapping.json``. We download that wheel once (PyPI is reachable from CI), pinned by version
and hash, into a git-ignored cache, and read the templates straight out of the zip: aws-sam-cli is
never installed (it pins boto3 and pulls Flask and docker).

Rendering follows ``samcli.lib.generated_sample_events.events.Events``: tag names as the CLI's
options name them (``account-id`` → ``account_id``), a tag's ``encoding`` (``base64``/``url``),
its ``children`` (``hashing: md5``), and ``dict`` tags replaced by the parsed value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "tools" / "published-events"
SAM_CLI_VERSION = "1.170.0"
SAM_CLI_WHEEL = f"aws_sam_cli-{SAM_CLI_VERSION}-py3-none-any.whl"
SAM_CLI_SHA256 = "24ebaf5ecba38dc1758089968cb89ab61e124b84e92a344fc7a2771a47f4d0bf"
"""PyPI files never change: a different hash is a different artefact, never a cache to reuse."""
REQUIRE_ENV = "GATEKEEPER_REQUIRE_PUBLISHED_EVENTS"
_PREFIX = "samcli/lib/generated_sample_events/"
_PLACEHOLDER = re.compile(r"\{\{\{([A-Za-z0-9_]+)\}\}\}")


class Unobtainable(Exception):
    """pip could not download the wheel (no registry reachable, or no pip)."""


def sam_cli_wheel(cache: Path = CACHE) -> Path:
    """The pinned wheel, downloaded into ``cache`` on first use (atomically: runs may overlap)."""
    wheel = cache / SAM_CLI_WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
            argv += ["--disable-pip-version-check", f"aws-sam-cli=={SAM_CLI_VERSION}", "-d", tmp]
            try:
                done = subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
                    argv, capture_output=True, text=True, timeout=600, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unobtainable(f"pip download failed: {exc}") from exc
            if done.returncode != 0:
                errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("WARNING")]
                tail = "\n".join(errors[-3:])
                raise Unobtainable(f"pip download aws-sam-cli=={SAM_CLI_VERSION} failed: {tail}")
            (Path(tmp) / SAM_CLI_WHEEL).replace(wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != SAM_CLI_SHA256:
        raise AssertionError(f"{wheel} has sha256 {digest}, expected {SAM_CLI_SHA256}")
    return wheel


class SamEvents:
    """The templates and defaults of one aws-sam-cli wheel."""

    def __init__(self, wheel: Path) -> None:
        self._zip = zipfile.ZipFile(wheel)

    def _read(self, name: str) -> Any:
        return json.loads(self._zip.read(_PREFIX + name))

    @cached_property
    def mapping(self) -> dict[str, dict[str, Any]]:
        mapping: dict[str, dict[str, Any]] = self._read("event-mapping.json")
        return mapping

    def render(self, service: str, event: str, **values: str) -> dict[str, Any]:
        """``sam local generate-event <service> <event> [--tag value …]``, offline.

        ``values`` override the mapping's defaults (``resource="orders"``); an unknown tag, or a
        placeholder left without a value, fails loudly.
        """
        spec = self.mapping[service][event]
        tags = {name.replace("-", "_"): props for name, props in spec["tags"].items()}
        if unknown := set(values) - set(tags):
            raise KeyError(f"{service} {event} has no tag(s) {sorted(unknown)}")
        subs: dict[str, Any] = {}
        for name, props in tags.items():
            raw = values.get(name, props.get("default", ""))
            subs[name] = json.loads(raw) if props.get("type") == "dict" else _encode(props, raw)
            for child, child_props in props.get("children", {}).items():
                subs[child] = _encode(child_props, raw)
        template = self._read(f"events/{service}/{spec['filename']}.json")
        rendered: dict[str, Any] = _substitute(template, subs)
        if "{{" in (text := json.dumps(rendered)):
            raise AssertionError(f"unrendered placeholder in {service} {event}: {text}")
        return rendered


def _encode(props: dict[str, Any], value: str) -> str:
    if props.get("encoding") == "base64":
        value = base64.b64encode(value.encode()).decode()
    elif props.get("encoding") == "url":
        value = quote(value)
    if props.get("hashing") == "md5":
        value = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()
    return value


def _substitute(node: Any, subs: dict[str, Any]) -> Any:
    """Triple-mustache substitution in every string of the template (no sections, no escaping)."""
    if isinstance(node, dict):
        return {key: _substitute(value, subs) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, subs) for value in node]
    if not isinstance(node, str):
        return node
    whole = _PLACEHOLDER.fullmatch(node)
    if whole and not isinstance(subs.get(whole.group(1), ""), str):
        return subs[whole.group(1)]  # a dict tag, as SAM puts it back after rendering
    return _PLACEHOLDER.sub(lambda m: str(subs[m.group(1)]) if m.group(1) in subs else m[0], node)
