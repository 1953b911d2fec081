"""One issuer's JSON Web Key Set: fetched over HTTP(S) with a deadline and a size cap, cached.

Shaped after aws-jwt-verify's ``jwk.ts``. Keys are parsed once per fetch and kept by ``kid``.
An unknown ``kid`` may mean the issuer rotated its keys, so it triggers a refetch, with a
penalty window after a refetch that did not find the kid (see :class:`JwksCache`). A failed
fetch does not drop the keys already cached, so a JWKS outage with a warm cache only affects
tokens signed with keys we have not seen yet, up to a hard stale-if-error ceiling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gatekeeper.clock import Clock, system_clock
from gatekeeper.errors import JwksUnavailable, KeyAlgorithmMismatch, KidNotFound
from gatekeeper.identity.https import FetchError, fetch_json

JwksFetch = Callable[[str, float, int], Mapping[str, Any]]
"""``(uri, timeout_seconds, max_bytes) -> JWKS document``; raises on any failure."""

MIN_RSA_BITS: Final = 2048
_EC_CURVES: Final = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_PUBLIC_KEY_TYPES: Final = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)


def fetch_jwks(uri: str, timeout: float, max_bytes: int) -> Mapping[str, Any]:
    """GET ``uri`` and return the JWKS document; :class:`JwksUnavailable` on any failure.

    One deadline (``timeout``) covers the whole fetch however the server behaves, and at most
    ``max_bytes + 1`` bytes are read, so a slow or huge response cannot stall or exhaust the
    authorizer (see :mod:`gatekeeper.identity.https`).
    """
    try:
        document = fetch_json(uri, timeout, max_bytes)
    except FetchError as exc:
        raise JwksUnavailable(f"JWKS fetch failed: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("JWKS document is not an object with a 'keys' list")
    return document


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
    """The keys of one JWKS URI, refetched when a token names a ``kid`` we do not hold.

    When to fetch, as aws-jwt-verify does it:

    - an unknown ``kid`` triggers a fetch, unless a fetch *for an unknown kid* that did not find
      it happened less than ``refetch_interval`` ago (the penalty window: a caller spraying
      random kids cannot turn the authorizer into a load generator against the IdP). A routine
      fetch (cold start, a max-age re-check) never delays a newly published key;
    - after a failed fetch, no fetch at all for ``failure_retry`` seconds;
    - a key set older than ``max_age`` is re-checked on use, so withdrawn keys stop working. If
      the endpoint fails, the cached keys keep working (stale-if-error), but for at most
      ``stale_if_error`` seconds past ``max_age``: then they are refused (``jwks_unavailable``).

    Thread-safe: lookups of cached kids take no lock; a refetch happens under a lock so that
    concurrent requests with the same new kid cause one fetch, not many.

    Example::

        cache = JwksCache("https://idp.example.com/.well-known/jwks.json")
        key = cache.get_key(kid, "RS256")  # jwt.PyJWK
    """

    def __init__(
        self,
        uri: str | Callable[[], str],
        *,
        fetch: JwksFetch = fetch_jwks,
        clock: Clock = system_clock,
        refetch_interval: float = 60.0,
        timeout: float = 2.0,
        max_bytes: int = 65_536,
        max_age: float = 3600.0,
        failure_retry: float = 5.0,
        stale_if_error: float = 3600.0,
    ) -> None:
        self._uri = uri
        self._fetch = fetch
        self._clock = clock
        self._interval = refetch_interval
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._failure_retry = min(failure_retry, refetch_interval)
        self._stale_if_error = stale_if_error
        self._keys: Mapping[str, _Jwk] = {}
        self._last_attempt: float | None = None
        self._last_ok = False
        self._fetched_at: float | None = None
        self._kid_miss_at: float | None = None  # last fetch for an unknown kid that lacked it
        self._failure: type[JwksUnavailable] = JwksUnavailable  # of the last failed fetch
        self._lock = threading.Lock()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get_key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The key for ``kid``, checked to fit ``alg``.

        Raises :class:`KidNotFound` (the latest JWKS lacks it, or a fetch for an unknown kid
        happened too recently to ask again), :class:`JwksUnavailable` (not cached, or cached
        past the stale-if-error ceiling, and the endpoint failed) or
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

    def _age(self) -> float:
        assert self._fetched_at is not None
        return self._clock() - self._fetched_at

    def _stale(self) -> bool:
        """Key sets older than ``max_age`` are re-checked: withdrawn keys must stop working."""
        return self._fetched_at is not None and self._age() >= self._max_age

    def _failed_recently(self, now: float) -> bool:
        return (
            self._last_attempt is not None
            and not self._last_ok
            and now - self._last_attempt < self._failure_retry
        )

    def _due(self, now: float) -> bool:
        """Whether a routine (max-age) re-check may fetch now."""
        if self._last_attempt is None:
            return True
        wait = self._interval if self._last_ok else self._failure_retry
        return now - self._last_attempt >= wait

    def _refresh_stale(self, kid: str, entry: _Jwk) -> _Jwk:
        """Refetch an old key set; if the endpoint is down, the cached keys keep working until
        the stale-if-error ceiling."""
        with self._lock:
            if not self._stale():
                return self._keys.get(kid, entry)
            failed = not self._due(self._clock())
            if not failed:
                try:
                    self._refresh()
                except JwksUnavailable:
                    failed = True
            if failed:
                if self._age() >= self._max_age + self._stale_if_error:
                    raise JwksUnavailable("cached JWKS is past its stale-if-error ceiling")
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
            now = self._clock()
            if self._failed_recently(now):
                raise self._failure("JWKS endpoint failed recently; not retrying yet")
            if self._kid_miss_at is not None and now - self._kid_miss_at < self._interval:
                raise KidNotFound(f"kid {kid[:64]!r} not in the JWKS (refetch not due yet)")
            self._refresh()  # a failure: ``failure_retry`` applies, not the penalty window
            entry = self._keys.get(kid)
            if entry is None:
                self._kid_miss_at = now
                raise KidNotFound(f"kid {kid[:64]!r} not in the JWKS")
            self._kid_miss_at = None
            return entry

    def _refresh(self) -> None:
        """Fetch and replace the key set (caller holds the lock); a failure keeps the old keys."""
        now = self._clock()
        self._last_attempt = now
        self._last_ok = False
        self._failure = JwksUnavailable
        try:  # a URI from OIDC discovery may itself fail, with its own reason code
            uri = self._uri if isinstance(self._uri, str) else self._uri()
        except JwksUnavailable as exc:
            self._failure = type(exc)
            raise
        try:
            document = self._fetch(uri, self._timeout, self._max_bytes)
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
