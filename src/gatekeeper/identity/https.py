"""A small JSON document over HTTP(S), under one deadline and a size cap (JWKS, OIDC discovery).

Shaped after aws-jwt-verify's ``https.ts``. A socket timeout alone bounds each read, not the
fetch: a server that sends its status line and then one header byte a second never trips it.
So one watchdog covers the whole exchange (connect, TLS handshake, request, status line,
headers, body): when the deadline passes it shuts the socket down, which wakes any blocked read
at once, and the fetch fails as timed out. Redirects are not followed (the URI is configured or
discovered exactly) and at most ``max_bytes + 1`` body bytes are read.

Not bounded: the host name lookup (``getaddrinfo`` cannot be interrupted); Lambda's resolver
answers in milliseconds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from typing import Final
from urllib.parse import urlsplit

_CHUNK: Final = 16_384
_TLS: Final = ssl.create_default_context()


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
        port = parts.port
    except ValueError:
        raise FetchError("URI has an invalid port") from None
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=_TLS
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watchdog = _Watchdog(connection, timeout)
    try:
        connection.connect()
        watchdog.check()
        connection.request(
            "GET", target, headers={"Accept": "application/json", "User-Agent": "gatekeeper"}
        )
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
