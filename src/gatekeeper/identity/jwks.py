"""One issuer's JSON Web Key Set: fetched over HTTP(S) with a deadline and a size cap, cached.

Shaped after aws-jwt-verify's ``jwk.ts`` and ``https.ts``. Keys are parsed once per fetch and
kept by ``kid``. An unknown ``kid`` may mean the issuer rotated its keys, so it triggers a
refetch, but at most one per ``refetch_interval`` (counted from the last fetch *attempt*): a
caller spraying random kids cannot turn the authorizer into a load generator against the IdP.
A failed fetch never drops the keys already cached, so a JWKS outage with a warm cache only
affects tokens signed with keys we have not seen yet.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gatekeeper.clock import Clock, system_clock
from gatekeeper.errors import JwksUnavailable, KeyAlgorithmMismatch, KidNotFound

JwksFetch = Callable[[str, float, int], Mapping[str, Any]]
"""``(uri, timeout_seconds, max_bytes) -> JWKS document``; raises on any failure."""

MIN_RSA_BITS: Final = 2048
_CHUNK: Final = 16_384
_EC_CURVES: Final = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_PUBLIC_KEY_TYPES: Final = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The JWKS URI is configured exactly; a redirect is a misconfiguration or an attack."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirect)


def fetch_jwks(uri: str, timeout: float, max_bytes: int) -> Mapping[str, Any]:
    """GET ``uri`` and return the JWKS document; :class:`JwksUnavailable` on any failure.

    ``timeout`` bounds each socket operation and the body as a whole (checked between reads),
    and at most ``max_bytes + 1`` bytes are read, so a slow or huge response cannot stall or
    exhaust the authorizer.
    """
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        raise JwksUnavailable("JWKS URI must use http or https")
    request = urllib.request.Request(  # noqa: S310 - scheme checked just above
        uri, headers={"Accept": "application/json", "User-Agent": "gatekeeper-jwks"}
    )
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise JwksUnavailable(f"JWKS endpoint answered HTTP {response.status}")
            body = _read_capped(response, max_bytes, deadline)
        document = json.loads(body)
    except JwksUnavailable:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # URLError, HTTPError and timeouts are OSErrors; bad JSON is a ValueError.
        raise JwksUnavailable(f"JWKS fetch failed ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("JWKS document is not an object with a 'keys' list")
    return document


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise JwksUnavailable(f"JWKS larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise JwksUnavailable("JWKS fetch timed out")
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise JwksUnavailable(f"JWKS larger than {max_bytes} bytes")


@dataclass(frozen=True, slots=True)
class _Jwk:
    key: jwt.PyJWK
    declared_alg: str | None  # the JWK's own ``alg`` member; PyJWK infers one when absent


def _parse_jwk(data: object) -> tuple[str, _Jwk] | None:
    """``(kid, key)`` for a usable public signing key, else None (skipped, never fatal)."""
    if not isinstance(data, dict):
        return None
    kid, declared = data.get("kid"), data.get("alg")
    if not isinstance(kid, str) or not kid or data.get("use", "sig") != "sig" or "d" in data:
        return None
    try:
        key = jwt.PyJWK(data)
    except Exception:  # a key we cannot parse is skipped: one bad key must not break the rest
        return None
    public = key.key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        return None
    if not isinstance(public, _PUBLIC_KEY_TYPES):
        return None  # symmetric ("oct") or private material: never a verification key here
    return kid, _Jwk(key, declared if isinstance(declared, str) else None)


def _fits(entry: _Jwk, alg: str) -> bool:
    """Whether the JWK may verify ``alg``: its own ``alg`` (if any) and its key type agree."""
    if entry.declared_alg is not None and entry.declared_alg != alg:
        return False
    public = entry.key.key
    if alg.startswith(("RS", "PS")):
        return isinstance(public, rsa.RSAPublicKey)
    if alg in _EC_CURVES:
        return isinstance(public, ec.EllipticCurvePublicKey) and (
            public.curve.name == _EC_CURVES[alg]
        )
    if alg == "EdDSA":
        return isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


class JwksCache:
    """The keys of one JWKS URI, refetched on an unknown ``kid`` at most once per interval.

    Thread-safe: lookups of cached kids take no lock; a refetch happens under a lock so that
    concurrent requests with the same new kid cause one fetch, not many.

    Example::

        cache = JwksCache("https://idp.example.com/.well-known/jwks.json")
        key = cache.get_key(kid, "RS256")  # jwt.PyJWK
    """

    def __init__(
        self,
        uri: str,
        *,
        fetch: JwksFetch = fetch_jwks,
        clock: Clock = system_clock,
        refetch_interval: float = 60.0,
        timeout: float = 2.0,
        max_bytes: int = 65_536,
        max_age: float = 3600.0,
        failure_retry: float = 5.0,
    ) -> None:
        self._uri = uri
        self._fetch = fetch
        self._clock = clock
        self._interval = refetch_interval
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._failure_retry = min(failure_retry, refetch_interval)
        self._keys: Mapping[str, _Jwk] = {}
        self._last_attempt: float | None = None
        self._last_ok = False
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get_key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The key for ``kid``, checked to fit ``alg``.

        Raises :class:`KidNotFound` (the latest JWKS lacks it, or we fetched too recently to ask
        again), :class:`JwksUnavailable` (not cached and the endpoint failed) or
        :class:`KeyAlgorithmMismatch`.
        """
        entry = self._keys.get(kid)
        if entry is None:
            entry = self._refetch_for(kid)
        elif self._stale():
            entry = self._refresh_stale(kid, entry)
        if not _fits(entry, alg):
            raise KeyAlgorithmMismatch(f"key {kid[:64]!r} cannot verify {alg}")
        return entry.key

    def _stale(self) -> bool:
        """Key sets older than ``max_age`` are re-checked: withdrawn keys must stop working."""
        return self._fetched_at is not None and self._clock() - self._fetched_at >= self._max_age

    def _due(self, now: float) -> bool:
        if self._last_attempt is None:
            return True
        wait = self._interval if self._last_ok else self._failure_retry
        return now - self._last_attempt >= wait

    def _refresh_stale(self, kid: str, entry: _Jwk) -> _Jwk:
        """Refetch an old key set; if the endpoint is down, the cached keys keep working."""
        with self._lock:
            if not self._stale() or not self._due(self._clock()):
                return self._keys.get(kid, entry)
            try:
                self._refresh()
            except JwksUnavailable:
                return entry
        found = self._keys.get(kid)
        if found is None:
            raise KidNotFound(f"kid {kid[:64]!r} is no longer in the JWKS")
        return found

    def _refetch_for(self, kid: str) -> _Jwk:
        with self._lock:
            entry = self._keys.get(kid)  # another thread may have fetched it meanwhile
            if entry is not None:
                return entry
            if not self._due(self._clock()):
                if not self._last_ok:
                    raise JwksUnavailable("JWKS endpoint failed recently; not retrying yet")
                raise KidNotFound(f"kid {kid[:64]!r} not in the JWKS (refetch not due yet)")
            self._refresh()
            entry = self._keys.get(kid)
            if entry is None:
                raise KidNotFound(f"kid {kid[:64]!r} not in the JWKS")
            return entry

    def _refresh(self) -> None:
        """Fetch and replace the key set (caller holds the lock); a failure keeps the old keys.

        After a success the next fetch waits ``refetch_interval`` (forged kids cannot cause a
        fetch storm); after a failure only ``failure_retry``, so that one network blip at cold
        start does not lock out every JWT caller of the container for a whole interval.
        """
        now = self._clock()
        self._last_attempt = now
        self._last_ok = False
        try:
            document = self._fetch(self._uri, self._timeout, self._max_bytes)
            entries = document["keys"]
            if not isinstance(entries, list):
                raise TypeError("keys is not a list")
        except Exception:  # any fetch failure: keep the keys we have
            raise JwksUnavailable("JWKS could not be fetched") from None
        parsed: dict[str, _Jwk] = {}
        for item in entries:
            found = _parse_jwk(item)
            if found is not None:
                parsed.setdefault(*found)
        self._keys = parsed
        self._last_ok = True
        self._fetched_at = now
