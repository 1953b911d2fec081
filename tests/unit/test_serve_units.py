"""`gatekeeper serve`'s pure parts: what API Gateway answers for each authorizer outcome, the
headers a backend receives, and `gatekeeper mint`."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from gatekeeper import cli
from gatekeeper.commands.serve import default_identity_sources
from gatekeeper.serve import state
from gatekeeper.serve.gateway import (
    context_headers,
    gateway_reply,
    header_value,
    upstream_request_headers,
)
from gatekeeper.testing.gateway import GatewayAnswer


def answer(status: int, outcome: str, context: dict[str, object] | None = None) -> GatewayAnswer:
    return GatewayAnswer(status, outcome, "authorizer", "GET /a", "p", context or {})  # type: ignore[arg-type]


def test_gateway_responses() -> None:
    unauthorized = gateway_reply(answer(401, "unauthorized"), "r-1")
    assert unauthorized.status == 401 and unauthorized.headers["WWW-Authenticate"] == "Bearer"
    assert unauthorized.body is not None and unauthorized.body["requestId"] == "r-1"
    denied = gateway_reply(answer(403, "deny", {"reason": "explicit_deny"}), "r-2")
    assert denied.headers["X-Gatekeeper-Reason"] == "explicit_deny"
    assert "Retry-After" not in denied.headers
    no_route = GatewayAnswer(403, "no_route", "gateway")
    assert gateway_reply(no_route, "r").body == {"message": "Missing Authentication Token"}
    assert gateway_reply(no_route, "r", api_type="http").status == 404
    broken = gateway_reply(answer(500, "authorizer_error"), "r")
    assert broken.status == 500 and broken.headers["x-amzn-ErrorType"].startswith("Authorizer")


def test_flagged_rate_limits_are_answered_429_by_the_integration() -> None:
    context = {
        "reason": "rate_limited",
        "rateLimited": True,
        "retryAfter": 9,
        "rateLimitLimit": 2,
        "rateLimitRemaining": 0,
        "rateLimitReset": 9,
    }
    reply = gateway_reply(answer(200, "allow", context), "r")
    assert (reply.status, reply.forward) == (429, False)
    assert reply.headers["Retry-After"] == "9" and reply.headers["RateLimit-Limit"] == "2"


def test_allowed_requests_carry_the_context_and_never_the_clients_own() -> None:
    reply = gateway_reply(
        answer(200, "allow", {"principalId": "corp:a", "rateLimited": False, "configVersion": 3}),
        "r",
    )
    assert reply.forward and reply.upstream_headers == {
        "x-gatekeeper-principal-id": "corp:a",
        "x-gatekeeper-rate-limited": "false",
        "x-gatekeeper-config-version": "3",
    }
    sent = upstream_request_headers(
        {
            "X-Gatekeeper-Principal-Id": "corp:mallory",
            "Connection": "close",
            "Accept": "*/*",
            "host": "x",
        },
        reply.upstream_headers,
    )
    assert sent == {"Accept": "*/*", **reply.upstream_headers}


def test_header_values_stay_printable_ascii() -> None:
    assert header_value("corp:zoë") == "corp:zo%C3%AB"
    assert header_value("a\r\nb") == "a%0D%0Ab"
    assert context_headers({"userName": "x"}) == {"x-gatekeeper-user-name": "x"}


def test_identity_sources_as_the_construct_chooses_them() -> None:
    assert default_identity_sources("rest", "REQUEST", 0) == ()
    assert default_identity_sources("rest", "TOKEN", 0) == ("method.request.header.Authorization",)
    assert len(default_identity_sources("http", "REQUEST", 300)) == 4


def test_mint_prints_a_token_of_the_persistent_local_issuer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "mint",
        "--sub",
        "alice",
        "--tenant",
        "acme",
        "--group",
        "g",
        "--state-dir",
        str(tmp_path),
    ]
    assert cli.main([*argv, "--scope", "a b", "--claim", "x=y", "--ttl", "10m"]) == 0
    token = capsys.readouterr().out.strip()
    key = state.issuer_key(tmp_path)  # loaded from the file, not a new one
    claims = jwt.decode(
        token, key.private_key.public_key(), algorithms=["RS256"], audience=state.AUDIENCE
    )
    assert claims["sub"] == "alice" and claims["tenant"] == "acme" and claims["groups"] == ["g"]
    assert claims["scope"] == "a b" and claims["x"] == "y" and claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    assert oct((tmp_path / state.KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_mint_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["mint", "--sub", "a", "--claim", "novalue", "--state-dir", str(tmp_path)]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


def test_serve_refuses_impossible_apis(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    access = Path(__file__).resolve().parents[2] / "examples" / "access.yaml"
    base = ["serve", "--access", str(access), "--state-dir", str(tmp_path)]
    assert (
        cli.main([*base, "--api-type", "http", "--authorizer-type", "REQUEST", "--ttl", "99999"])
        == 1
    )
    assert "cannot deploy that API: ttl_seconds" in capsys.readouterr().err
    assert cli.main([*base, "--upstream", "ftp://x"]) == 1
    assert "--upstream must be an http(s) URL" in capsys.readouterr().err
    assert cli.main(["serve", "--state-dir", str(tmp_path)]) == 1
    assert "--access" in capsys.readouterr().err


def test_the_archive_folder_honours_s3s_write_conditions(tmp_path: Path) -> None:
    """The local archive keeps the sink's write-once and compare-and-swap rules, like S3."""
    from gatekeeper.audit.store import ABSENT, AlreadyExists, Conflict
    from gatekeeper.serve.archive import DirectoryObjectStore

    store = DirectoryObjectStore(tmp_path)
    store.create("events/a.gz", b"x", {}, "application/gzip")
    with pytest.raises(AlreadyExists):
        store.create("events/a.gz", b"y", {}, "application/gzip")
    first = store.put("state/s.json", b"1", "application/json", if_match=ABSENT)
    with pytest.raises(Conflict):
        store.put("state/s.json", b"2", "application/json", if_match=ABSENT)
    with pytest.raises(Conflict):
        store.put("state/s.json", b"2", "application/json", if_match="stale")
    assert store.put("state/s.json", b"2", "application/json", if_match=first) != first
