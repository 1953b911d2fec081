"""A small JSON document over HTTP(S), under one deadline and a size cap (JWKS, OIDC discovery).

Shaped after aws-jwt-verify's ``https.ts``. A socket timeout alone bounds each read, not the
fetch: a server that sends its status line and then one header byte a second never trips it.
So one watchdog covers the whole exchange (connect, TLS handshake, request, status line,
headers, body): when the deadline passes it shuts the socket down, which wakes any blocked read
at once, and the fetch fails as timed out. Redirects are not followed (the URI is configured or
discovered exactly) and at most ``max_bytes + 1`` body bytes are read.

The host name lookup is inside the deadline too: ``getaddrinfo`` cannot be interrupted, so it
runs in a daemon thread that the fetch stops waiting for (a hung resolver costs a thread, not
the request). A proxy in the environment is honoured as ``urllib`` and botocore honour it
(``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``): a Lambda function whose only way out is an
egress proxy reaches its issuers through a ``CONNECT`` tunnel, TLS still verified end to end
against the issuer's host name.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

_CHUNK: Final = 16_384
_TLS: ssl.SSLContext | None = None
"""Made on first use (:func:`_tls`): loading the CA bundle takes 30-60 ms, which a cold start
that never fetches a key set (API-key callers, a warm token cache) should not pay."""


def _tls() -> ssl.SSLContext:
    global _TLS  # noqa: PLW0603 - one context per process, made lazily (two threads: harmless)
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


class FetchError(Exception):
    """The document could not be fetched; the message is safe to log (never the body)."""


class _Watchdog:
    """Shuts the connection's socket down when ``timeout`` seconds have passed."""

    def __init__(self, connection: http.client.HTTPConnection, timeout: float) -> None:
        self._connection = connection
        self.fired = False
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            # the plain socket's shutdown, also for a TLS socket: it only touches the fd
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def check(self) -> None:
        if self.fired:
            raise FetchError("timed out")

    def cancel(self) -> None:
        self._timer.cancel()


def resolve(host: str, port: int, deadline: float) -> list[tuple[str, int]]:
    """The addresses of ``host``, or :class:`FetchError` when none come before ``deadline``."""
    found: list[list[tuple[str, int]] | OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append([(str(info[4][0]), int(info[4][1])) for info in infos])
        except OSError as exc:
            found.append(exc)

    worker = threading.Thread(target=lookup, name="gatekeeper-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not found:
        raise FetchError("timed out")
    result = found[0]
    if isinstance(result, OSError) or not result:
        raise FetchError("host name does not resolve")
    return result


def proxy_for(parts: SplitResult) -> SplitResult | None:
    """The environment's proxy for this URL (``urllib``'s reading of ``*_PROXY``/``NO_PROXY``)."""
    host = parts.hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies_environment().get(parts.scheme)
    if not proxy:
        return None
    proxied = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if proxied.scheme != "http" or not proxied.hostname:
        raise FetchError("proxy must be an http:// URL")
    return proxied


def _connection(
    parts: SplitResult, proxy: SplitResult | None, timeout: float
) -> tuple[http.client.HTTPConnection, str, int]:
    """The connection, the host to resolve and its port: the proxy's when there is one."""
    host, port = str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)
    via_host, via_port = (str(proxy.hostname), proxy.port or 8080) if proxy else (host, port)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            via_host, via_port, timeout=timeout, context=_tls()
        )
        if proxy is not None:  # CONNECT host:port, then TLS with the issuer's host name
            connection.set_tunnel(host, port, headers=_proxy_auth(proxy))
    else:
        connection = http.client.HTTPConnection(via_host, via_port, timeout=timeout)
    return connection, via_host, via_port


def _connector(addresses: list[tuple[str, int]], deadline: float) -> Callable[..., socket.socket]:
    """Connects to the first address that answers (as ``socket.create_connection`` goes down
    ``getaddrinfo``'s list), never past ``deadline``."""

    def connect(_address: object, timeout: float, _source: object = None) -> socket.socket:
        last = OSError("no address answered")
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return socket.create_connection(address, min(timeout, remaining))
            except OSError as exc:
                last = exc
        raise last

    return connect


def _proxy_auth(proxy: SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def fetch_json(uri: str, timeout: float, max_bytes: int) -> object:
    """GET ``uri`` and return its JSON; :class:`FetchError` on any failure, within ``timeout``.

    Example::

        document = fetch_json("https://idp.example.com/.well-known/jwks.json", 2.0, 65_536)
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("URI must be an absolute http or https URL")
    deadline = time.monotonic() + timeout
    try:
        parts.port  # noqa: B018 - parsing it raises ValueError on a bad port
    except ValueError:
        raise FetchError("URI has an invalid port") from None
    proxy = proxy_for(parts)
    connection, via_host, via_port = _connection(parts, proxy, timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Accept": "application/json", "User-Agent": "gatekeeper"}
    if proxy is not None and parts.scheme == "http":  # a plain request goes to the proxy whole
        target = parts._replace(fragment="").geturl()
        headers.update(_proxy_auth(proxy))
    addresses = resolve(via_host, via_port, deadline)
    # http.client's own hook for opening its socket: to the addresses resolved in time
    connection._create_connection = _connector(addresses, deadline)  # type: ignore[attr-defined]
    watchdog = _Watchdog(connection, max(0.0, deadline - time.monotonic()))
    try:
        connection.connect()
        watchdog.check()
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        watchdog.check()
        if response.status != 200:
            raise FetchError(f"endpoint answered HTTP {response.status}")
        body = read_capped(response, max_bytes, deadline)
        watchdog.check()
    except FetchError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # timeouts and resets are OSErrors; a socket shut down mid-read ends as an
        # HTTPException (RemoteDisconnected, IncompleteRead) or a short read
        if watchdog.fired:
            raise FetchError("timed out") from None
        raise FetchError(f"fetch failed ({type(exc).__name__})") from None
    finally:
        watchdog.cancel()
        connection.close()
    try:
        return json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        raise FetchError("response is not JSON") from None


def read_capped(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """The body, refused past ``max_bytes`` (announced or read) or past ``deadline``."""
    length = response.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("timed out")
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"larger than {max_bytes} bytes")
