"""What ``gatekeeper serve`` keeps across restarts, in its state directory.

- ``issuer-key.pem``: the local JWT issuer's private key (created on first use, mode 0600), so
  tokens minted with ``gatekeeper mint`` keep working after a restart. It never leaves the
  machine and is never committed: the directory is outside the repository by default
  (``$GATEKEEPER_STATE_DIR``, else ``$XDG_STATE_HOME/gatekeeper/serve``, else
  ``~/.local/state/gatekeeper/serve``).
- ``issuer.json``: the issuer name ``serve`` last used (``explain`` names principals with it).
- ``audit.jsonl``: the authorizer's audit events (one JSON log line per decision).
- ``api-keys.json``: the API key records (hashes only, never a secret) created against the
  embedded tables, written back on every start and saved on shutdown.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     token = mint_token(Path(d), "alice", tenant="acme")
...     token.count(".")
2
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gatekeeper.testing.tokens import SigningKey, claims_for, mint, public_jwks

ISSUER_NAME = "local"
ISSUER = "https://gatekeeper.local/"
AUDIENCE = "gatekeeper-local"
KEY_FILE = "issuer-key.pem"
API_KEYS_FILE = "api-keys.json"
ISSUER_FILE = "issuer.json"


def state_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get("GATEKEEPER_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base) / "gatekeeper" / "serve"


def issuer_key(directory: Path | None = None) -> SigningKey:
    """The local issuer's key: loaded, or created (0600) on first use."""
    folder = state_dir(directory)
    path = folder / KEY_FILE
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        private = loaded
    else:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(f"local-{hashlib.sha256(public).hexdigest()[:12]}", "RS256", private)


def issuer_name(directory: Path | None = None) -> str:
    """The issuer name the last ``gatekeeper serve`` used (principal ids ``<name>:<sub>``)."""
    path = state_dir(directory) / ISSUER_FILE
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return ISSUER_NAME
    return name if isinstance(name, str) and name else ISSUER_NAME


def local_jwks(directory: Path | None = None) -> dict[str, Any]:
    return public_jwks(issuer_key(directory))


def issuer_config(jwks_uri: str) -> dict[str, Any]:
    return {"name": ISSUER_NAME, "issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": jwks_uri}


def mint_token(
    directory: Path | None,
    subject: str,
    *,
    tenant: str | None = None,
    claims: Mapping[str, Any] | None = None,
    ttl: float = 3600,
    now: float | None = None,
) -> str:
    """A JWT of the local issuer (principal id ``local:<subject>``)."""
    extra: dict[str, Any] = dict(claims or {})
    if tenant:
        extra["tenant"] = tenant
    body = claims_for(
        ISSUER,
        AUDIENCE,
        now=time.time() if now is None else now,
        subject=subject,
        ttl=ttl,
        extra=extra,
    )
    return mint(body, issuer_key(directory))


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
