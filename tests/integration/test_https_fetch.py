"""JWKS and discovery fetches through a real forward proxy (proxy.py, from PyPI), over plain HTTP
and through a CONNECT tunnel to a local HTTPS issuer (certificates made with cryptography), and a
host name lookup that hangs: one deadline covers the whole fetch."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import proxy
import pytest
from cryptography.hazmat.primitives import serialization

from gatekeeper.identity import https
from gatekeeper.identity.https import FetchError, fetch_json
from gatekeeper.testing import LocalJwksServer, public_jwks, rsa_key
from gatekeeper.testing.certs import Issued, issue_server_cert, make_ca
from tests.conftest import FAST

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
DOCUMENT = {"keys": [{"kty": "oct", "kid": "x"}]}
JWKS = public_jwks(rsa_key("k1"))


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def start_proxy(*extra: str) -> Any:
    flags = ["--hostname", "127.0.0.1", "--port", "0", "--num-acceptors", "1"]
    return proxy.Proxy([*flags, "--num-workers", "1", *extra])


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    with start_proxy() as running:
        yield f"http://127.0.0.1:{running.flags.port}"


@pytest.fixture(scope="module")
def auth_proxy_port() -> Iterator[int]:
    with start_proxy("--basic-auth", "gk:s3cret-pw") as running:
        yield int(running.flags.port)


@pytest.fixture
def jwks() -> Iterator[LocalJwksServer]:
    with LocalJwksServer(JWKS) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- plain HTTP through the proxy -----------------------------------------------------------
def test_http_goes_through_the_proxy_and_no_proxy_bypasses_it(
    jwks: LocalJwksServer, proxy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    assert fetch_json(jwks.uri, 5.0, 65_536) == JWKS
    assert jwks.hits == 1
    # the proxy is really on the path: a dead one fails the fetch ...
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(FetchError, match="fetch failed"):
        fetch_json(jwks.uri, 5.0, 65_536)
    # ... unless the host is exempt
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert fetch_json(jwks.uri, 5.0, 65_536) == JWKS


def test_a_proxy_that_is_not_http_is_refused(
    jwks: LocalJwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(FetchError, match="proxy must be an http:// URL"):
        fetch_json(jwks.uri, 1.0, 65_536)


# --- HTTPS through a CONNECT tunnel ---------------------------------------------------------
class _Json(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(DOCUMENT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def issuer_ca() -> Issued:
    return make_ca("Issuer Test CA", now=time.time())


@pytest.fixture(scope="module")
def tls_issuer(issuer_ca: Issued, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An HTTPS endpoint for ``localhost`` (its key only in a temporary folder)."""
    server_cert = issue_server_cert(issuer_ca, "localhost", now=time.time())
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_text(server_cert.pem)
    (folder / "key.pem").write_bytes(
        server_cert.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Json)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def trusting_issuer_ca(issuer_ca: Issued, monkeypatch: pytest.MonkeyPatch) -> None:
    context = ssl.create_default_context(cadata=issuer_ca.pem)
    monkeypatch.setattr(https, "_TLS", context)


def test_https_tunnels_through_the_proxy_with_tls_verified_end_to_end(
    tls_issuer: int,
    trusting_issuer_ca: None,
    proxy_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    uri = f"https://localhost:{tls_issuer}/.well-known/jwks.json"
    assert fetch_json(uri, 5.0, 65_536) == DOCUMENT
    # the certificate is checked against the issuer's name, not the proxy's: an address the
    # certificate does not name is refused even though the tunnel reaches the same server
    with pytest.raises(FetchError, match="fetch failed"):
        fetch_json(f"https://127.0.0.1:{tls_issuer}/.well-known/jwks.json", 5.0, 65_536)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(FetchError, match="fetch failed"):
        fetch_json(uri, 5.0, 65_536)


def test_proxy_credentials_are_sent_and_never_shown(
    tls_issuer: int,
    trusting_issuer_ca: None,
    auth_proxy_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = f"https://localhost:{tls_issuer}/.well-known/jwks.json"
    monkeypatch.setenv("HTTPS_PROXY", f"http://gk:s3cret-pw@127.0.0.1:{auth_proxy_port}")
    assert fetch_json(uri, 5.0, 65_536) == DOCUMENT
    monkeypatch.setenv("HTTPS_PROXY", f"http://gk:wrong-pw@127.0.0.1:{auth_proxy_port}")
    with pytest.raises(FetchError) as refused:
        fetch_json(uri, 5.0, 65_536)
    assert "wrong-pw" not in str(refused.value) and refused.value.__cause__ is None


# --- the host name lookup is inside the deadline ---------------------------------------------
def test_a_hanging_resolver_costs_the_deadline_not_more(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "idp.example.test":
            release.wait(10)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch_json("https://idp.example.test/.well-known/jwks.json", 0.5, 65_536)
    assert time.monotonic() - started < FAST
    release.set()


def test_a_name_that_does_not_resolve_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    with pytest.raises(FetchError, match="host name does not resolve"):
        fetch_json("https://idp.example.test/.well-known/jwks.json", 1.0, 65_536)


def test_the_resolved_addresses_are_tried_in_order(
    jwks: LocalJwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(jwks.uri.split(":")[2].split("/")[0])
    dead = closed_port()

    real = socket.getaddrinfo

    def two(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "issuer.test":  # the numeric addresses, as create_connection passes them
            return real(host, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dead)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    uri = f"http://issuer.test:{port}/.well-known/jwks.json"
    assert fetch_json(uri, 5.0, 65_536) == JWKS
