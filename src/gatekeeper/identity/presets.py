"""Provider presets: the details of common identity providers' tokens, so an issuer entry needs
only its name, issuer URL, audience and ``preset``.

Each preset fills the fields the entry leaves out (anything set explicitly wins), adds the claim
values a token must carry, and checks the issuer URL has the provider's form, so a classic
mistake (Auth0 without its trailing ``/``, an Okta org server, Entra's v1 URL with v2 tokens)
fails at cold start, naming the variable, instead of refusing every token.

============== ================================================================================
preset         what it sets
============== ================================================================================
cognito_access ``token_use=access``; audience from ``client_id`` (access tokens have no
               ``aud``); groups from ``cognito:groups``
cognito_id     ``token_use=id``; audience ``aud`` (the app client id); ``cognito:groups``
auth0          issuer ends with ``/``; RS256; ``permissions`` (Auth0 RBAC) as groups
okta           a custom authorization server (``…/oauth2/<id>``; org-server tokens are not
               for your APIs); ``groups``
entra_v2       ``https://login.microsoftonline.com/<tid>/v2.0``; ``ver=2.0``, ``tid`` =
               the issuer's tenant; principal from ``oid`` (``sub`` differs per app);
               ``roles`` (app roles) and ``groups`` as groups
entra_v1       ``https://sts.windows.net/<tid>/``; ``ver=1.0``; otherwise as v2
google         ``https://accounts.google.com``; RS256; ID tokens for your OAuth client
============== ================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

Preset = Literal["cognito_access", "cognito_id", "auth0", "okta", "entra_v1", "entra_v2", "google"]

_COGNITO: Final = re.compile(r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9-]+_\w+$")
_AUTH0: Final = re.compile(r"^https://[^/]+/$")
_OKTA: Final = re.compile(r"^https://[^/]+/oauth2/[^/]+$")
_ENTRA_V2: Final = re.compile(r"^https://login\.microsoftonline\.com/([0-9a-f-]{36})/v2\.0$")
_ENTRA_V1: Final = re.compile(r"^https://sts\.windows\.net/([0-9a-f-]{36})/$")
_GOOGLE: Final = "https://accounts.google.com"

_ENTRA_GROUPS: Final = ("roles", "groups")


def _cognito(kind: str) -> Callable[[str], dict[str, Any]]:
    def defaults(issuer: str) -> dict[str, Any]:
        _must(_COGNITO.match(issuer), "https://cognito-idp.<region>.amazonaws.com/<user pool id>")
        return {
            "algorithms": ("RS256",),
            "audience_claim": "client_id" if kind == "access" else "aud",
            "group_claims": ("cognito:groups",),
            "required_claim_values": {"token_use": (kind,)},
        }

    return defaults


def _auth0(issuer: str) -> dict[str, Any]:
    _must(_AUTH0.match(issuer), "https://<tenant>.<region>.auth0.com/ (with the trailing '/')")
    return {"algorithms": ("RS256",), "group_claims": ("permissions",)}


def _okta(issuer: str) -> dict[str, Any]:
    _must(
        _OKTA.match(issuer),
        "https://<org>.okta.com/oauth2/<authorization server id> (e.g. .../oauth2/default)",
    )
    return {"algorithms": ("RS256",), "group_claims": ("groups",)}


def _entra(pattern: re.Pattern[str], version: str, form: str) -> Callable[[str], dict[str, Any]]:
    def defaults(issuer: str) -> dict[str, Any]:
        found = pattern.match(issuer)
        _must(found, form)
        assert found is not None
        return {
            "algorithms": ("RS256",),
            "group_claims": _ENTRA_GROUPS,
            "subject_claim": "oid",
            "required_claim_values": {"ver": (version,), "tid": (found.group(1),)},
        }

    return defaults


def _google(issuer: str) -> dict[str, Any]:
    _must(issuer == _GOOGLE, _GOOGLE)
    return {"algorithms": ("RS256",)}


def _must(ok: object, form: str) -> None:
    if not ok:
        raise ValueError(f"this preset's issuer looks like {form}")


PRESETS: Final[Mapping[str, Callable[[str], dict[str, Any]]]] = {
    "cognito_access": _cognito("access"),
    "cognito_id": _cognito("id"),
    "auth0": _auth0,
    "okta": _okta,
    "entra_v2": _entra(_ENTRA_V2, "2.0", "https://login.microsoftonline.com/<tenant id>/v2.0"),
    "entra_v1": _entra(_ENTRA_V1, "1.0", "https://sts.windows.net/<tenant id>/"),
    "google": _google,
}


def apply_preset(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (an issuer entry) with the preset's defaults under the fields it leaves out;
    ``required_claim_values`` are merged (the entry's own win claim by claim)."""
    out = dict(data)
    preset = out.get("preset")
    if preset is None:
        return out
    if preset not in PRESETS:
        return out  # the Literal field reports it
    issuer = out.get("issuer")
    if not isinstance(issuer, str):
        return out
    defaults = PRESETS[preset](issuer)
    required = {**defaults.pop("required_claim_values", {}), **out.get("required_claim_values", {})}
    for name, value in defaults.items():
        out.setdefault(name, value)
    if required:
        out["required_claim_values"] = required
    return out
