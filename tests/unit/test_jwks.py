"""The JWKS fetch (deadline, size cap, document shape) and the per-issuer key cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from gatekeeper.clock import FakeClock
from gatekeeper.errors import JwksUnavailable, KeyAlgorithmMismatch, KidNotFound
from gatekeeper.identity.https import FetchError, read_capped
from gatekeeper.identity.jwks import JwksCache, fetch_jwks
from gatekeeper.testing import JWKS_PATH, LocalJwksServer, SigningKey, ec_key, public_jwks, rsa_key
from gatekeeper.testing.jwks_server import TricklingServer
from tests.conftest import FAST, LOCAL_FETCH_TIMEOUT


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("k1")


@pytest.fixture
def server(key: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(key)) as srv:
        yield srv


class CountingFetch:
    """An in-memory JWKS endpoint: returns ``document`` or raises ``error``."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self, uri: str, timeout: float, max_bytes: int) -> Mapping[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.document


# --- fetch_jwks ----------------------------------------------------------------------------
def test_fetch_returns_the_document(server: LocalJwksServer, key: SigningKey) -> None:
    document = fetch_jwks(server.uri, 1.0, 65_536)
    assert [k["kid"] for k in document["keys"]] == [key.kid]
    assert server.hits == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{}", 500),
        (b'{"keys": {}}', 200),
        (b'[{"keys": []}]', 200),
        (b"<html>", 200),
        (b'{"keys": [' + b'{"kid": "x"},' * 20_000 + b"{}]}", 200),  # larger than the cap
    ],
    ids=["http-500", "keys-not-list", "not-object", "not-json", "too-large"],
)
def test_fetch_failures(server: LocalJwksServer, body: bytes, status: int) -> None:
    server.serve_bytes(body, status=status)
    with pytest.raises(JwksUnavailable):
        fetch_jwks(server.uri, 1.0, 65_536)


def test_fetch_wrong_path_and_closed_port(server: LocalJwksServer) -> None:
    with pytest.raises(JwksUnavailable):
        fetch_jwks(server.uri.replace(JWKS_PATH, "/other"), 1.0, 65_536)
    with LocalJwksServer() as closed:
        uri = closed.uri
    with pytest.raises(JwksUnavailable):
        fetch_jwks(uri, 1.0, 65_536)


def test_fetch_refuses_other_schemes() -> None:
    with pytest.raises(JwksUnavailable):
        fetch_jwks("file:///etc/passwd", 1.0, 65_536)


def test_fetch_times_out(server: LocalJwksServer) -> None:
    server.hang(10)
    started = time.monotonic()
    with pytest.raises(JwksUnavailable):
        fetch_jwks(server.uri, 0.2, 65_536)
    assert time.monotonic() - started < FAST


class DripResponse:
    """A response without Content-Length that keeps sending, as a chunked reply would."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent = 0

    def getheader(self, name: str) -> str | None:
        return None

    def read1(self, size: int) -> bytes:
        time.sleep(self.delay)
        self.sent += size
        return b"x" * size


def test_body_cap_without_content_length() -> None:
    response = DripResponse()
    with pytest.raises(FetchError, match="larger"):
        read_capped(response, 1000, time.monotonic() + 5)  # type: ignore[arg-type]
    assert response.sent == 1001  # never more than max_bytes + 1


def test_body_deadline_covers_slow_drip() -> None:
    with pytest.raises(FetchError, match="timed out"):
        read_capped(DripResponse(0.02), 10**9, time.monotonic() + 0.1)  # type: ignore[arg-type]


def test_fetch_error_message_names_no_body(server: LocalJwksServer) -> None:
    server.serve_bytes(b"secret-looking-body", status=200)
    with pytest.raises(JwksUnavailable) as info:
        fetch_jwks(server.uri, 1.0, 65_536)
    assert "secret-looking-body" not in str(info.value)


# --- JwksCache -----------------------------------------------------------------------------
def test_unusable_keys_are_skipped_not_fatal(key: SigningKey) -> None:
    weak = rsa_key("weak", bits=1024)
    enc = {**rsa_key("enc").public_jwk(), "use": "enc"}
    private = {**ec_key("private").public_jwk(), "d": "AAAA"}
    oct_key = {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}
    broken = {"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"}
    no_kid = {k: v for k, v in rsa_key().public_jwk().items() if k != "kid"}
    document = {
        "keys": [weak.public_jwk(), enc, private, oct_key, broken, no_kid, "junk", key.public_jwk()]
    }
    cache = JwksCache("https://idp/jwks", fetch=CountingFetch(document), clock=FakeClock())
    assert cache.get_key(key.kid, "RS256").key_id == key.kid
    assert cache.kids == {key.kid}


def test_duplicate_kid_keeps_the_first(key: SigningKey) -> None:
    other = rsa_key(key.kid)
    cache = JwksCache(
        "https://idp/jwks",
        fetch=CountingFetch(public_jwks(key, other)),
        clock=FakeClock(),
    )
    assert cache.get_key(key.kid, "RS256").key.public_numbers() == (
        key.private_key.public_key().public_numbers()
    )


@pytest.mark.parametrize(
    ("kid", "alg", "declared"),
    [
        ("k1", "PS256", True),  # the JWK says RS256
        ("k1", "ES256", False),  # an RSA key cannot verify ECDSA
        ("ec", "ES384", True),
        ("ec", "ES384", False),  # a P-256 key cannot verify ES384
        ("ec", "RS256", False),
        ("ec", "EdDSA", False),
    ],
)
def test_key_must_fit_the_algorithm(key: SigningKey, kid: str, alg: str, declared: bool) -> None:
    document = public_jwks(key, ec_key("ec"))
    if not declared:
        document = {
            "keys": [{k: v for k, v in jwk.items() if k != "alg"} for jwk in document["keys"]]
        }
    cache = JwksCache("https://idp/jwks", fetch=CountingFetch(document), clock=FakeClock())
    with pytest.raises(KeyAlgorithmMismatch):
        cache.get_key(kid, alg)


def test_penalty_window_counts_from_the_last_attempt(key: SigningKey) -> None:
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=10)
    with pytest.raises(KidNotFound):
        cache.get_key("other", "RS256")
    assert cache.get_key(key.kid, "RS256")  # the first fetch also loaded k1
    clock.advance(9.9)
    with pytest.raises(KidNotFound):
        cache.get_key("other", "RS256")
    assert fetch.calls == 1
    clock.advance(0.1)
    with pytest.raises(KidNotFound):
        cache.get_key("other", "RS256")
    assert fetch.calls == 2


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), JwksUnavailable("down"), KeyError("keys")], ids=repr
)
def test_failed_fetch_keeps_cached_keys(key: SigningKey, error: Exception) -> None:
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=10)
    cache.get_key(key.kid, "RS256")
    fetch.error = error
    clock.advance(10)
    with pytest.raises(JwksUnavailable) as info:
        cache.get_key("new", "RS256")
    assert info.value.__cause__ is None
    assert cache.get_key(key.kid, "RS256")
    assert fetch.calls == 2


def test_failed_fetch_is_retried_sooner_than_the_kid_interval(key: SigningKey) -> None:
    """A blip at cold start must not lock out every JWT caller for the whole interval."""
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    fetch.error = RuntimeError("blip")
    cache = JwksCache(
        "https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=60, failure_retry=5
    )
    with pytest.raises(JwksUnavailable):
        cache.get_key(key.kid, "RS256")
    fetch.error = None
    clock.advance(4.9)
    with pytest.raises(JwksUnavailable):  # still waiting: no fetch
        cache.get_key(key.kid, "RS256")
    assert fetch.calls == 1
    clock.advance(0.1)
    assert cache.get_key(key.kid, "RS256")
    assert fetch.calls == 2


def test_old_key_sets_are_rechecked_and_withdrawn_keys_stop_working(key: SigningKey) -> None:
    clock = FakeClock()
    other = rsa_key("k2")
    fetch = CountingFetch(public_jwks(key, other))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, max_age=3600)
    cache.get_key(key.kid, "RS256")
    clock.advance(3599)
    fetch.document = public_jwks(other)  # the issuer withdrew k1
    assert cache.get_key(key.kid, "RS256")  # not yet re-checked
    assert fetch.calls == 1
    clock.advance(1)
    with pytest.raises(KidNotFound):
        cache.get_key(key.kid, "RS256")
    assert cache.get_key(other.kid, "RS256")
    assert fetch.calls == 2


def test_old_key_sets_keep_working_while_the_endpoint_is_down(key: SigningKey) -> None:
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, max_age=3600)
    cache.get_key(key.kid, "RS256")
    fetch.error = RuntimeError("down")
    clock.advance(5400)  # past max age, within the stale-if-error ceiling (3600 more)
    assert cache.get_key(key.kid, "RS256")
    assert cache.get_key(key.kid, "RS256")  # the failed re-check is not repeated at once
    assert fetch.calls == 2


def test_document_without_key_list_is_a_failed_fetch(key: SigningKey) -> None:
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=10)
    cache.get_key(key.kid, "RS256")
    fetch.document = {"keys": "nope"}
    clock.advance(10)
    with pytest.raises(JwksUnavailable):
        cache.get_key("new", "RS256")
    assert cache.kids == {key.kid}


def test_concurrent_requests_for_a_new_kid_fetch_once(key: SigningKey) -> None:
    calls = 0
    gate = threading.Event()

    def slow_fetch(uri: str, timeout: float, max_bytes: int) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        gate.wait(1)
        return public_jwks(key)

    cache = JwksCache("https://idp/jwks", fetch=slow_fetch, clock=FakeClock())
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_key(key.kid, "RS256")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    gate.set()
    for thread in threads:
        thread.join()
    assert calls == 1
    assert len(results) == 8


def test_cache_over_real_http(server: LocalJwksServer, key: SigningKey) -> None:
    clock = FakeClock()
    cache = JwksCache(server.uri, clock=clock, refetch_interval=5, timeout=LOCAL_FETCH_TIMEOUT)
    assert cache.get_key(key.kid, "RS256")
    assert cache.get_key(key.kid, "RS256")
    assert server.hits == 1
    server.fail()
    clock.advance(5)
    with pytest.raises(JwksUnavailable):
        cache.get_key("rotated", "RS256")
    assert server.hits == 2


# --- issue 13, item 6: robustness found by probing ------------------------------------------
def test_one_deadline_covers_the_whole_fetch_even_trickled_headers(key: SigningKey) -> None:
    import json

    with TricklingServer(json.dumps(public_jwks(key)).encode()) as slow:
        started = time.monotonic()
        with pytest.raises(JwksUnavailable, match="timed out"):
            fetch_jwks(slow.uri, 0.5, 65_536)
        assert time.monotonic() - started < FAST


def test_trickling_server_is_otherwise_a_valid_endpoint(key: SigningKey) -> None:
    """The control: the same server, given time, serves a JWKS the fetch accepts."""
    import json

    with TricklingServer(json.dumps(public_jwks(key)).encode(), duration=0.3) as slow:
        assert fetch_jwks(slow.uri, 3.0, 65_536)["keys"][0]["kid"] == key.kid


def test_a_routine_fetch_does_not_delay_a_newly_published_key(key: SigningKey) -> None:
    """Cold start fetched k1; the issuer publishes k2 a second later: k2 works at once."""
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=60)
    assert cache.get_key(key.kid, "RS256")
    new = rsa_key("k-new")
    fetch.document = public_jwks(key, new)
    clock.advance(1)
    assert cache.get_key(new.kid, "RS256")
    assert fetch.calls == 2


def test_a_max_age_recheck_does_not_delay_a_newly_published_key(key: SigningKey) -> None:
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, max_age=600)
    cache.get_key(key.kid, "RS256")
    clock.advance(600)
    cache.get_key(key.kid, "RS256")  # routine re-check
    assert fetch.calls == 2
    new = rsa_key("k-new")
    fetch.document = public_jwks(key, new)
    clock.advance(1)
    assert cache.get_key(new.kid, "RS256")
    assert fetch.calls == 3


def test_the_penalty_window_follows_a_fetch_for_an_unknown_kid(key: SigningKey) -> None:
    """A forged kid costs one fetch; the next unknown kid within the window costs none, even a
    real new one (the price of the penalty box, bounded by the interval)."""
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache("https://idp/jwks", fetch=fetch, clock=clock, refetch_interval=60)
    cache.get_key(key.kid, "RS256")
    clock.advance(1)
    with pytest.raises(KidNotFound):
        cache.get_key("forged-1", "RS256")
    assert fetch.calls == 2
    new = rsa_key("k-new")
    fetch.document = public_jwks(key, new)
    clock.advance(30)
    for kid in ("forged-2", "forged-3", new.kid):
        with pytest.raises(KidNotFound):
            cache.get_key(kid, "RS256")
    assert fetch.calls == 2
    clock.advance(30)
    assert cache.get_key(new.kid, "RS256")
    assert fetch.calls == 3


def test_stale_if_error_has_a_hard_ceiling(key: SigningKey) -> None:
    """The endpoint keeps failing past max age: cached keys work for ``stale_if_error`` more
    seconds, then are refused; withdrawn keys must not stay valid forever."""
    clock = FakeClock()
    fetch = CountingFetch(public_jwks(key))
    cache = JwksCache(
        "https://idp/jwks", fetch=fetch, clock=clock, max_age=3600, stale_if_error=3600
    )
    cache.get_key(key.kid, "RS256")
    fetch.error = RuntimeError("down")
    clock.advance(3600)
    assert cache.get_key(key.kid, "RS256")  # stale, endpoint down: still served
    clock.advance(3599)
    assert cache.get_key(key.kid, "RS256")
    clock.advance(1)
    with pytest.raises(JwksUnavailable):
        cache.get_key(key.kid, "RS256")
    clock.advance(86_400)  # a day later: still refused
    with pytest.raises(JwksUnavailable):
        cache.get_key(key.kid, "RS256")
    fetch.error = None  # the endpoint is back: keys work again
    clock.advance(60)
    assert cache.get_key(key.kid, "RS256")
