"""OIDC discovery: an issuer configured by its URL alone; its ``jwks_uri`` is read from
``<issuer>/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0, section 4).

The document must name exactly the configured issuer (section 4.3: a document for another
issuer is refused, so a compromised or misrouted endpoint cannot swap in its keys' URI) and an
absolute ``jwks_uri`` (``https`` when the issuer is ``https``). It is fetched under the JWKS
rules (:mod:`gatekeeper.identity.https`: one deadline, a size cap, no redirects) and only when
the JWKS cache itself decides to fetch (so its penalty window applies), is cached for
``max_age`` and, while the endpoint fails, kept for at most ``stale_if_error`` more seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from gatekeeper.clock import Clock, system_clock
from gatekeeper.errors import DiscoveryUnavailable, InvalidDiscoveryDocument
from gatekeeper.identity.https import FetchError, fetch_json

WELL_KNOWN: Final = "/.well-known/openid-configuration"

DocumentFetch = Callable[[str, float, int], object]
"""``(uri, timeout_seconds, max_bytes) -> JSON``; raises :class:`FetchError` on failure."""


def discovery_uri(issuer: str) -> str:
    """Where an issuer publishes its configuration: its URL without a trailing ``/``, then
    ``/.well-known/openid-configuration``."""
    return issuer.rstrip("/") + WELL_KNOWN


def jwks_uri_from(document: object, issuer: str) -> str:
    """The ``jwks_uri`` of a discovery document for ``issuer``; raises
    :class:`InvalidDiscoveryDocument` (messages never carry the document's values)."""
    if not isinstance(document, dict):
        raise InvalidDiscoveryDocument("discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise InvalidDiscoveryDocument("discovery document names another issuer")
    uri = document.get("jwks_uri")
    if not isinstance(uri, str) or len(uri) > 2048:
        raise InvalidDiscoveryDocument("discovery document has no usable 'jwks_uri'")
    parts = urlsplit(uri)
    allowed = ("https",) if urlsplit(issuer).scheme == "https" else ("http", "https")
    if parts.scheme not in allowed or not parts.hostname:
        raise InvalidDiscoveryDocument(
            f"discovery 'jwks_uri' must be an absolute {' or '.join(allowed)} URL"
        )
    return uri


class OidcDiscovery:
    """The ``jwks_uri`` of one issuer, discovered and cached; call it to get the URI.

    Example::

        discovery = OidcDiscovery("https://idp.example.com")
        cache = JwksCache(discovery, ...)  # resolves the URI only when it fetches
    """

    def __init__(
        self,
        issuer: str,
        *,
        fetch: DocumentFetch = fetch_json,
        clock: Clock = system_clock,
        timeout: float = 2.0,
        max_bytes: int = 65_536,
        max_age: float = 3600.0,
        failure_retry: float = 5.0,
        stale_if_error: float = 3600.0,
    ) -> None:
        self._issuer = issuer
        self._uri = discovery_uri(issuer)
        self._fetch = fetch
        self._clock = clock
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._failure_retry = failure_retry
        self._stale_if_error = stale_if_error
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._failure: DiscoveryUnavailable | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def __call__(self) -> str:
        """The issuer's ``jwks_uri``: cached, else fetched; raises :class:`DiscoveryUnavailable`
        (or :class:`InvalidDiscoveryDocument`) when none can be had. Not thread-safe on its own:
        the JWKS cache calls it under its lock."""
        now = self._clock()
        age = None if self._fetched_at is None else now - self._fetched_at
        if self._jwks_uri is not None and age is not None and age < self._max_age:
            return self._jwks_uri
        if self._failed_at is None or now - self._failed_at >= self._failure_retry:
            try:
                self._jwks_uri = self._discover()
            except DiscoveryUnavailable as exc:
                self._failed_at, self._failure = now, exc
            else:
                self._fetched_at, self._failed_at, self._failure = now, None, None
                return self._jwks_uri
        # the endpoint failed: a cached URI serves until the stale-if-error ceiling
        stale_ok = age is not None and age < self._max_age + self._stale_if_error
        if self._jwks_uri is not None and stale_ok:
            return self._jwks_uri
        failure = self._failure or DiscoveryUnavailable("OIDC discovery failed")
        raise type(failure)(str(failure))

    def _discover(self) -> str:
        try:
            document = self._fetch(self._uri, self._timeout, self._max_bytes)
        except FetchError as exc:
            raise DiscoveryUnavailable(f"OIDC discovery failed: {exc}") from None
        except Exception:
            raise DiscoveryUnavailable("OIDC discovery failed") from None
        return jwks_uri_from(document, self._issuer)
