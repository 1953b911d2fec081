"""A real JWKS endpoint on 127.0.0.1 for the tests and the offline demo.

Real HTTP rather than a stubbed fetch, so timeouts, status codes and size caps are exercised
through the same client code as in Lambda. The server can be told to fail (HTTP 500), to hang,
or to serve a new key set (rotation), and it counts the requests it receives. It is also an
OIDC issuer: ``/.well-known/openid-configuration`` names ``issuer`` (its base URL) and its
JWKS, unless told to serve another discovery document.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self

JWKS_PATH: Final = "/.well-known/jwks.json"
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() must not wait for a handler that is "hanging"

    def __init__(self, owner: LocalJwksServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that timed out makes the late reply fail, which is expected."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path == DISCOVERY_PATH:
            self._send(owner._discovery_hit())
            return
        if self.path != JWKS_PATH:
            self._send(_Reply(404, b'{"message":"not found"}'))
            return
        reply = owner._hit()
        if reply.delay and owner._released.wait(reply.delay):
            return  # the server is closing: drop the connection without an answer
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and the demo must not scribble request lines on stderr."""


class LocalJwksServer:
    """Serves a JWKS at ``uri`` from a daemon thread until closed.

    Example::

        with LocalJwksServer(public_jwks(key)) as server:
            config = IssuerConfig(..., jwks_uri=server.uri)
            server.fail()           # next fetches get HTTP 500
            server.serve(new_jwks)  # key rotation
            assert server.hits == 2
    """

    def __init__(self, jwks: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._reply = _Reply(200, b"")
        self._hits = 0
        self._discovery: _Reply | None = None  # None: the default document
        self._discovery_hits = 0
        self._released = threading.Event()
        self.serve(jwks if jwks is not None else {"keys": []})
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="local-jwks",
            daemon=True,
        )

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._released.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what it serves ------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    @property
    def issuer(self) -> str:
        """The base URL: the issuer its default discovery document names."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def discovery_uri(self) -> str:
        return f"{self.issuer}{DISCOVERY_PATH}"

    @property
    def discovery_hits(self) -> int:
        with self._lock:
            return self._discovery_hits

    def serve_discovery(
        self, document: Mapping[str, Any] | None = None, *, status: int = 200, body: bytes = b""
    ) -> None:
        """Answer discovery with ``document`` (or raw ``body``); None: the default document."""
        with self._lock:
            if document is None and not body:
                self._discovery = None
            else:
                self._discovery = _Reply(status, body or json.dumps(document).encode())

    def _discovery_hit(self) -> _Reply:
        with self._lock:
            self._discovery_hits += 1
            if self._discovery is not None:
                return self._discovery
        document = {"issuer": self.issuer, "jwks_uri": self.uri}
        return _Reply(200, json.dumps(document).encode())

    @property
    def hits(self) -> int:
        """Requests received for the JWKS path (failed and hanging ones included)."""
        with self._lock:
            return self._hits

    def serve(self, jwks: Mapping[str, Any]) -> None:
        """Answer with ``jwks`` from now on (also ends :meth:`fail` and :meth:`hang`)."""
        self.serve_bytes(json.dumps(jwks).encode())

    def serve_bytes(self, body: bytes, *, status: int = 200) -> None:
        """Answer with an arbitrary body, e.g. an oversized or malformed JWKS."""
        self._set(_Reply(status, body))

    def fail(self, status: int = 500) -> None:
        self._set(_Reply(status, b'{"message":"internal error"}'))

    def hang(self, seconds: float) -> None:
        """Wait ``seconds`` before answering (with the current body), e.g. past a timeout."""
        with self._lock:
            self._reply = _Reply(self._reply.status, self._reply.body, seconds)

    def _set(self, reply: _Reply) -> None:
        with self._lock:
            self._reply = reply

    def _hit(self) -> _Reply:
        with self._lock:
            self._hits += 1
            return self._reply


class TricklingServer:
    """A raw socket server for one request, on any path: the status line at once, then one
    header byte per ``interval`` for ``duration`` seconds, then ``body``. Each byte arrives well
    within any socket timeout, so only a deadline over the whole fetch stops it.

    Example::

        with TricklingServer(b'{"keys": []}') as slow:
            fetch_jwks(slow.uri, 0.5, 65_536)  # JwksUnavailable after 0.5 s, not 4 s
    """

    def __init__(self, body: bytes, *, interval: float = 0.05, duration: float = 4.0) -> None:
        self._body = body
        self._interval = interval
        self._duration = duration
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.base = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.uri = f"{self.base}{JWKS_PATH}"

    def __enter__(self) -> TricklingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(2)

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65_536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                ends = time.monotonic() + self._duration
                while time.monotonic() < ends and not self._stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(self._interval)
                conn.sendall(
                    b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(self._body)).encode()
                    + b"\r\n\r\n"
                    + self._body
                )
            except OSError:
                return  # the client gave up: expected
