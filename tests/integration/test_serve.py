"""`gatekeeper serve` as a user runs it: a real process, real HTTP (httpx, and curl once).

Each test starts the command with its own state directory and port, talks to it with a real
HTTP client and stops it with SIGTERM. Nothing may hang: every client call has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatekeeper.serve.state import mint_token

ROOT = Path(__file__).resolve().parents[2]
ACCESS = ROOT / "examples" / "access.yaml"
TIMEOUT = httpx.Timeout(10.0)
LIMIT = """
- rule_id: invoices-per-principal
  scope: principal
  match: {methods: [GET], path: "/orders/*/invoice"}
  limit: 2
  window: hour
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[str], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def serve(state: Path, *argv: str, port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    log = state.parent / f"serve-{port}.log"
    env = {**os.environ, "GATEKEEPER_STATE_DIR": str(state)}
    for name in ("GATEKEEPER_ENDPOINT_URL", "GATEKEEPER_CONFIG_TABLE", "GATEKEEPER_COUNTERS_TABLE"):
        env.pop(name, None)
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "gatekeeper.cli", "serve", "--port", str(port), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited {process.returncode}: {server.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"serve did not start: {server.output()}")
                time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Upstream:
    """A backend that records what reached it; ``delay`` makes it slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append({k.lower(): v for k, v in self.headers.items()})
                if delay:
                    time.sleep(delay)
                body = json.dumps({"backend": "test", "path": self.path}).encode()
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def access(tmp_path: Path) -> Path:
    path = tmp_path / "access.yaml"
    path.write_text(ACCESS.read_text().replace("limits:\n", "limits:" + LIMIT, 1))
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def bearer(state: Path, subject: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(state, subject, tenant=tenant)}"}


def test_allow_deny_unauthorized_and_rate_limited(
    access: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = Upstream()
    alice, bob = bearer(state, "alice", "acme"), bearer(state, "bob", "globex")
    try:
        with (
            serve(
                state, "--access", str(access), "--issuer-name", "corp", "--upstream", upstream.url
            ) as server,
            httpx.Client(base_url=server.url, timeout=TIMEOUT) as http,
        ):
            # 200: the request and the authorizer context reach the backend; a spoofed
            # x-gatekeeper-* header from the client does not
            spoof = {**alice, "x-gatekeeper-principal-id": "corp:mallory"}
            ok = http.get("/orders/o-1?x=1", headers=spoof)
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"backend": "test", "path": "/orders/o-1?x=1"}
            seen = upstream.seen[-1]
            assert seen["x-gatekeeper-principal-id"] == "corp:alice"
            assert seen["x-gatekeeper-tenant"] == "acme"
            assert seen["x-gatekeeper-matched-rule"] == "orders-reader#0"
            assert "orders-clerk" in seen["x-gatekeeper-roles"]
            assert seen["authorization"] == alice["Authorization"]
            assert ok.headers["RateLimit-Policy"] == '"tenant-per-minute";q=1000;w=60'

            # 401: no credential, or a bad one
            for headers in ({}, {"Authorization": "Bearer not.a.jwt"}):
                denied = http.get("/orders", headers=headers)
                assert denied.status_code == 401 and denied.headers["WWW-Authenticate"] == "Bearer"
                assert denied.json()["requestId"] == denied.headers["x-amzn-RequestId"]

            # 403: explicit deny, tenant isolation, tenant header; no route
            deny = http.delete("/orders/o-1", headers=alice)
            assert deny.status_code == 403
            assert deny.headers["X-Gatekeeper-Reason"] == "explicit_deny"
            assert deny.json()["reason"] == "explicit_deny"
            other = http.get("/tenants/globex/reports", headers=alice)
            assert other.headers["X-Gatekeeper-Reason"] == "no_matching_permission"
            header = http.get("/orders", headers={**alice, "x-tenant-id": "globex"})
            assert header.headers["X-Gatekeeper-Reason"] == "tenant_mismatch"
            missing = http.get("/nowhere", headers=alice)
            assert missing.status_code == 403
            assert missing.json() == {"message": "Missing Authentication Token"}

            # rate limited (deny mode): a 403 with Retry-After and RateLimit-* headers
            for _ in range(2):
                assert http.get("/orders/o-7/invoice", headers=bob).status_code == 200
            limited = http.get("/orders/o-7/invoice", headers=bob)
            assert limited.status_code == 403
            assert limited.headers["X-Gatekeeper-Reason"] == "rate_limited"
            assert int(limited.headers["Retry-After"]) >= 1
            assert limited.headers["RateLimit-Limit"] == "2"
            assert limited.headers["RateLimit-Remaining"] == "0"
            assert int(limited.headers["RateLimit-Reset"]) >= 1
            assert limited.json()["retryAfter"] == limited.headers["Retry-After"]
            calls = len(upstream.seen)
            assert http.get("/orders/o-7/invoice", headers=bob).status_code == 403
            assert len(upstream.seen) == calls  # a denied request never reaches the backend
            log = server.output()
        audit = [json.loads(x)["audit"] for x in (state / "audit.jsonl").read_text().splitlines()]
        assert {"allowed", "explicit_deny", "rate_limited", "missing_credentials"} <= {
            a["reason"] for a in audit
        }
        assert "GET /orders/o-1 -> 200 (authorizer: allow, allowed)" in log
        # the 403's request id names its audit event: explain it
        explain_request(access, state, deny.headers["x-amzn-RequestId"], capsys)
    finally:
        upstream.close()


def explain_request(
    access: Path, state: Path, request_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gatekeeper import cli

    argv = ["explain", "--access", str(access), "--state-dir", str(state), "--json"]
    assert cli.main([*argv, "--request-id", request_id]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["recorded"]["reason"] == explained["reason"] == "explicit_deny"
    assert explained["decision"]["matched_rule"] == "orders-clerk#2"


def test_a_cached_answer_is_honoured_and_expires(access: Path, state: Path) -> None:
    alice = bearer(state, "alice", "acme")
    argv = ["--access", str(access), "--issuer-name", "corp", "--authorizer-type", "TOKEN"]
    with (
        serve(state, *argv, "--ttl", "4") as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        first = http.get("/orders/o-1", headers=alice)
        assert first.status_code == 200 and first.json()["answeredBy"] == "authorizer"
        # another route, same token: the cached policy answers (it covers every route)
        second = http.get("/health", headers=alice)
        assert second.status_code == 200 and second.json()["answeredBy"] == "cache"
        assert second.json()["authorizer"]["path"] == "/orders/o-1"  # the cached context
        # and it denies what RBAC denies, from the cache too
        assert http.delete("/orders/o-2", headers=alice).status_code == 403
        assert "DELETE /orders/o-2 -> 403 (cache: deny" in server.output()
        time.sleep(4.3)
        third = http.get("/health", headers=alice)
        assert third.status_code == 200 and third.json()["answeredBy"] == "authorizer"
        # TOKEN: the identity source is mandatory: API Gateway answers 401 itself
        assert http.get("/orders").status_code == 401
        assert "GET /orders -> 401 (gateway: missing_identity_source" in server.output()


def test_an_unreachable_or_slow_upstream_is_a_clear_answer(access: Path, state: Path) -> None:
    alice = bearer(state, "alice", "acme")
    closed = f"http://127.0.0.1:{free_port()}"
    with serve(state, "--access", str(access), "--issuer-name", "corp", "--upstream", closed) as s:
        started = time.monotonic()
        answer = httpx.get(f"{s.url}/orders", headers=alice, timeout=TIMEOUT)
        assert answer.status_code == 502 and time.monotonic() - started < 5
        assert answer.json()["reason"] == "upstream_unreachable"
        assert closed in answer.json()["detail"]
    slow = Upstream(delay=5)
    try:
        argv = ["--access", str(access), "--issuer-name", "corp", "--upstream", slow.url]
        with serve(state, *argv, "--upstream-timeout", "1") as s:
            started = time.monotonic()
            answer = httpx.get(f"{s.url}/orders", headers=alice, timeout=TIMEOUT)
            assert answer.status_code == 504 and time.monotonic() - started < 4
            assert answer.json()["reason"] == "upstream_timeout"
    finally:
        slow.close()


def test_routes_from_an_openapi_file(access: Path, state: Path, tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(
        json.dumps(
            {
                "openapi": "3.0.1",
                "info": {"title": "orders", "version": "1"},
                "paths": {"/health": {"get": {}}, "/orders/{id}": {"get": {}, "delete": {}}},
            }
        )
    )
    alice = bearer(state, "alice", "acme")
    argv = ["--access", str(access), "--issuer-name", "corp", "--openapi", str(document)]
    with serve(state, *argv) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        assert http.get("/orders/o-1", headers=alice).status_code == 200
        assert http.get("/health", headers=alice).json()["route"] == "GET /health"
        assert http.delete("/orders/o-1", headers=alice).status_code == 403
        unknown = http.get("/orders", headers=alice)  # in the access file, not in the document
        assert unknown.status_code == 403
        assert unknown.json() == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--openapi", '{"openapi": "3.0.1", "paths": {"/a": {"get": {}}', "line 1"),
        ("--openapi", '{"paths": {"/a": {"get": {}}}}', "not an OpenAPI document"),
        ("--openapi", '{"openapi": "3.0.1", "paths": {"/a/{x": {"get": {}}}}', "invalid segment"),
    ],
    ids=["openapi-syntax", "openapi-version", "openapi-path"],
)
def test_a_malformed_openapi_file_stops_serve_at_start(
    option: str, content: str, expected: str, tmp_path: Path
) -> None:
    bad = tmp_path / "openapi.json"
    bad.write_text(content)
    argv = ["serve", "--access", str(ACCESS), option, str(bad), "--port", "1"]
    done = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "gatekeeper.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GATEKEEPER_STATE_DIR": str(tmp_path / "state")},
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and expected in lines[0], done.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("roles: [\n", "line 2"),
        ("roles:\n  a: {inherits: [b]}\n", "unknown role 'b'"),
        ("apis:\n- {api_id: x, stage: prod, routes: ['FETCH /a']}\n", "route must look like"),
    ],
    ids=["yaml", "inheritance", "route"],
)
def test_a_malformed_access_file_stops_serve_at_start(
    content: str, expected: str, tmp_path: Path
) -> None:
    bad = tmp_path / "access.yaml"
    bad.write_text(content)
    done = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "gatekeeper.cli", "serve", "--access", str(bad), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "GATEKEEPER_STATE_DIR": str(tmp_path / "state")},
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and expected in lines[0], done.stderr
    assert done.stdout == ""


def test_keys_and_minted_tokens_survive_a_restart(access: Path, state: Path) -> None:
    alice = bearer(state, "alice", "acme")
    port = free_port()
    with serve(state, "--access", str(access), "--issuer-name", "corp", port=port) as server:
        endpoint = re.search(r"embedded DynamoDB at (http://127\.0\.0\.1:\d+)", server.output())
        assert endpoint is not None
        created = subprocess.run(  # noqa: S603 - our own entry point
            [
                sys.executable,
                "-m",
                "gatekeeper.cli",
                "--json",
                "keys",
                "create",
                "--endpoint-url",
                endpoint.group(1),
                "--config-table",
                "gatekeeper-local-config",
                "--principal",
                "svc:local",
                "--tenant",
                "acme",
                "--role",
                "orders-reader",
                "--actor",
                "test",
                "--audit-log",
                str(state.parent / "admin-audit.jsonl"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
        )
        key = json.loads(created.stdout)["api_key"]
        answer = httpx.get(f"{server.url}/orders", headers={"x-api-key": key}, timeout=TIMEOUT)
        assert answer.status_code == 200
        assert answer.json()["authorizer"]["principalId"] == "svc:local"
    saved = json.loads((state / "api-keys.json").read_text())
    assert [r["principal_id"] for r in saved] == ["svc:local"]
    assert key.rsplit("_", 1)[1] not in (state / "api-keys.json").read_text()
    with (
        serve(state, "--access", str(access), "--issuer-name", "corp", port=port) as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        assert http.get("/orders", headers={"x-api-key": key}).status_code == 200
        assert http.get("/orders/o-1", headers=alice).status_code == 200  # same issuer key
    # both runs' audit events went through the sink into one verifiable local archive
    decisions = len((state / "audit.jsonl").read_text().splitlines())
    verify = [
        sys.executable,
        "-m",
        "gatekeeper.cli",
        "--json",
        "archive",
        "verify",
        "--dir",
        str(state / "archive"),
        "--public-key",
        str(state / "archive-public-key.pem"),
        "--max-age",
        "off",
    ]
    done = subprocess.run(verify, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["events"] == decisions >= 3
    objects = sorted((state / "archive" / "events").rglob("*.jsonl.gz"))
    objects[0].write_bytes(objects[0].read_bytes() + b"tampered")
    done = subprocess.run(verify, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 1 and "modified" in done.stdout


def test_the_demo_prints_three_curl_commands_that_work(state: Path) -> None:
    with serve(state, "--demo") as server:
        deadline = time.monotonic() + 30
        while "Try these three" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        commands = re.findall(r"^  (curl .+)$", server.output(), flags=re.MULTILINE)
        assert len(commands) == 3
        statuses = []
        for command in commands:
            method = "DELETE" if "-X DELETE" in command else "GET"
            token = re.search(r"Bearer ([\w.-]+)", command)
            url = re.search(r"(http://127\.0\.0\.1:\d+\S*)", command)
            assert token is not None and url is not None
            answer = httpx.request(
                method,
                url.group(1),
                headers={"Authorization": f"Bearer {token.group(1)}"},
                timeout=TIMEOUT,
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) >= 1
                assert answer.headers["RateLimit-Remaining"] == "0"
                assert answer.headers["RateLimit-Policy"].startswith('"demo-invoices"')
            if answer.status_code == 403:
                assert answer.headers["X-Gatekeeper-Reason"] == "explicit_deny"
            if answer.status_code == 200:
                assert answer.json()["headers"]["x-gatekeeper-principal-id"] == "corp:alice"
        assert statuses == [200, 403, 429]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_smoke(access: Path, state: Path) -> None:
    alice = bearer(state, "alice", "acme")["Authorization"]
    with serve(state, "--access", str(access), "--issuer-name", "corp") as server:
        curl = shutil.which("curl")
        assert curl is not None
        done = subprocess.run(  # noqa: S603 - curl from PATH, fixed arguments
            [
                curl,
                "-sS",
                "-i",
                "--max-time",
                "10",
                "-H",
                f"Authorization: {alice}",
                f"{server.url}/orders/o-1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.startswith("HTTP/1.1 200")
        assert '"principalId":"corp:alice"' in done.stdout
        done = subprocess.run(  # noqa: S603
            [curl, "-sS", "-i", "--max-time", "10", f"{server.url}/orders/o-1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.startswith("HTTP/1.1 401") and "www-authenticate: Bearer" in done.stdout


def test_external_tables(moto_endpoint: str, state: Path, tmp_path: Path) -> None:
    """--endpoint-url: the tables as they are (created and applied with the CLI), the routes
    from the stored catalog when no access file is given."""
    from gatekeeper import cli

    names = ["--config-table", f"ext-{tmp_path.name}-config"]
    names += ["--counters-table", f"ext-{tmp_path.name}-counters"]
    local = ["--endpoint-url", moto_endpoint, "--region", "us-east-1", *names]
    audit = ["--actor", "t", "--audit-log", str(tmp_path / "admin.jsonl")]
    assert cli.main([*local, "tables", "create"]) == 0
    assert cli.main([*local, "policy", "apply", "-f", str(ACCESS), *audit]) == 0
    alice = bearer(state, "alice", "acme")
    with (
        serve(state, *local, "--issuer-name", "corp") as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        assert f"tables: {names[1]} at {moto_endpoint}" in server.output()
        assert http.get("/orders/o-1", headers=alice).status_code == 200
        assert http.delete("/orders/o-1", headers=alice).status_code == 403
        missing = http.get("/not-catalogued", headers=alice)
        assert missing.json() == {"message": "Missing Authentication Token"}
