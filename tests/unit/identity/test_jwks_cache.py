"""The JWKS cache against the real loopback issuer: freshness, rotation, cooldown, outages, discovery.

The issuer counts requests per path, so "no fetch happened" is observed at the server, not guessed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from app.clock import FrozenClock
from app.decision.reasons import BAD_SIGNATURE, UNKNOWN_KEY
from app.identity.errors import IssuerUnavailable, TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks import JwksCache, parse_jwks
from app.identity.jwks_fetch import FetchError, HttpFetcher
from app.identity.oidc import TokenVerifier
from tests.support.oidc_issuer import AttackerServer, OidcIssuer, Reply, b64url, generate_key

DISCOVERY = "/.well-known/openid-configuration"
TTL = timedelta(minutes=10)  # what the conftest's jwks_cache is built with (checked below)
COOLDOWN = timedelta(seconds=30)
MAX_STALE = timedelta(hours=1)
ConfigFactory = Callable[..., IssuerConfig]


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    return caught.value.code


# ------------------------------------------------------------------------------------------- freshness


def test_fixture_timing(jwks_cache: JwksCache) -> None:
    assert (jwks_cache.ttl, jwks_cache.refetch_cooldown, jwks_cache.max_stale) == (TTL, COOLDOWN, MAX_STALE)


def test_a_fresh_copy_is_used_for_its_whole_lifetime_without_fetching(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    for _ in range(20):
        verifier.verify(issuer.mint())
        verifier.verify(issuer.mint(alg="ES256"))
    clock.advance(TTL - timedelta(seconds=1))
    verifier.verify(issuer.mint())
    assert jwks_hits() == 1
    assert issuer.count(DISCOVERY) == 1


def test_an_expired_copy_is_refetched_on_use(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    verifier.verify(issuer.mint())
    clock.advance(TTL)
    verifier.verify(issuer.mint())
    assert jwks_hits() == 2
    verifier.verify(issuer.mint())
    assert jwks_hits() == 2


def test_cold_cache_under_concurrency_fetches_once(
    verifier: TokenVerifier, issuer: OidcIssuer, jwks_hits: Callable[[], int]
) -> None:
    tokens = [issuer.mint(alg="ES256" if i % 2 else "RS256") for i in range(32)]
    issuer.hang(0.2)  # hold the first fetch so that every thread piles up behind it
    errors: list[BaseException] = []

    def verify(token: str) -> None:
        try:
            verifier.verify(token)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=verify, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert jwks_hits() == 1


# -------------------------------------------------------------------------------------------- rotation


def test_rotation_new_key_accepted_after_one_refetch_old_key_refused(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    old = issuer.current_key()
    verifier.verify(issuer.mint())
    assert jwks_hits() == 1

    new = issuer.rotate()
    assert verifier.verify(issuer.mint()).identity.repository == "acme/payments"  # kid unknown → refetch
    assert jwks_hits() == 2

    old_token = issuer.mint(kid=old.kid)
    assert refusal(verifier, old_token) == UNKNOWN_KEY  # within the cooldown: no further fetch
    assert jwks_hits() == 2
    clock.advance(COOLDOWN)
    assert refusal(verifier, old_token) == UNKNOWN_KEY  # after it: one refetch, still gone
    assert jwks_hits() == 3
    assert new.kid in issuer.published_kids and old.kid not in issuer.published_kids


def test_rotation_noticed_at_expiry_without_any_unknown_kid(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    old = issuer.current_key("ES256")
    verifier.verify(issuer.mint(alg="ES256"))
    issuer.rotate("ES256")
    verifier.verify(issuer.mint(alg="ES256", kid=old.kid))  # our copy is fresh: the old key still counts
    clock.advance(TTL)
    assert refusal(verifier, issuer.mint(alg="ES256", kid=old.kid)) == UNKNOWN_KEY
    # The expiry refetch (2), then the one refetch the unknown kid may cause per cooldown (3).
    assert jwks_hits() == 3
    verifier.verify(issuer.mint(alg="ES256"))
    assert refusal(verifier, issuer.mint(alg="ES256", kid=old.kid)) == UNKNOWN_KEY
    assert jwks_hits() == 3


def test_added_key_is_accepted_next_to_the_current_one(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    verifier.verify(issuer.mint())
    extra = issuer.add_key("RS256")
    verifier.verify(issuer.mint(kid=extra.kid))
    verifier.verify(issuer.mint())


def test_key_published_without_alg_verifies_every_rsa_algorithm(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    key = issuer.add_key("RS256", declare_alg=False)
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        verifier.verify(issuer.mint(alg=alg, kid=key.kid))
    # ...but never an EC or EdDSA algorithm, whatever the token says.
    ec = issuer.current_key("ES256")
    assert refusal(verifier, issuer.mint(alg="ES256", kid=key.kid, signing_key=ec)) == BAD_SIGNATURE


def test_eddsa_and_other_curves_verify(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    keys = [issuer.add_key(alg) for alg in ("EdDSA", "ES384", "ES512")]
    for key in keys:
        verifier.verify(issuer.mint(alg=key.alg, kid=key.kid))


# -------------------------------------------------------------------------------------------- cooldown


def test_hundred_garbage_kids_cause_at_most_one_refetch(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    verifier.verify(issuer.mint())
    for i in range(100):
        assert refusal(verifier, issuer.mint(kid=f"garbage-{i}")) == UNKNOWN_KEY
    assert jwks_hits() <= 2  # the first fetch plus at most one refetch
    clock.advance(COOLDOWN)
    for i in range(100):
        refusal(verifier, issuer.mint(kid=f"more-garbage-{i}"))
    assert jwks_hits() <= 3


def test_garbage_kids_from_many_threads_cause_at_most_one_refetch(
    verifier: TokenVerifier, issuer: OidcIssuer, jwks_hits: Callable[[], int]
) -> None:
    verifier.verify(issuer.mint())
    tokens = [issuer.mint(kid=f"garbage-{i}") for i in range(100)]
    codes: list[str] = []

    def attempt(token: str) -> None:
        try:
            verifier.verify(token)
        except TokenRejected as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert codes == [UNKNOWN_KEY] * 100
    assert jwks_hits() <= 2


def test_cold_cache_with_unknown_kid_fetches_once(
    verifier: TokenVerifier, issuer: OidcIssuer, jwks_hits: Callable[[], int]
) -> None:
    assert refusal(verifier, issuer.mint(kid="nope")) == UNKNOWN_KEY
    assert jwks_hits() <= 2
    verifier.verify(issuer.mint())
    assert jwks_hits() <= 2


# --------------------------------------------------------------------------------------------- outages


def test_jwks_down_warm_cached_keys_verify_unknown_kid_is_unknown_key(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, jwks_hits: Callable[[], int]
) -> None:
    verifier.verify(issuer.mint())
    issuer.fail_with(500)
    verifier.verify(issuer.mint())  # fresh copy: nobody even asks
    assert refusal(verifier, issuer.mint(kid="rotated-while-down")) == UNKNOWN_KEY
    clock.advance(TTL + timedelta(seconds=1))  # expired: refetch fails, the stale copy carries on
    verifier.verify(issuer.mint())
    verifier.verify(issuer.mint(alg="ES256"))
    assert refusal(verifier, issuer.mint(kid="another-new-kid")) == UNKNOWN_KEY
    clock.advance(MAX_STALE - TTL - timedelta(seconds=2))  # just under max_stale since the fetch
    verifier.verify(issuer.mint())
    assert len(issuer.requests) > 2  # the outage was noticed (discovery and JWKS were asked), and survived


def test_jwks_down_beyond_max_stale_is_issuer_unavailable(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    verifier.verify(issuer.mint())
    issuer.fail_with(503)
    clock.advance(MAX_STALE)
    with pytest.raises(IssuerUnavailable) as caught:
        verifier.verify(issuer.mint())
    assert caught.value.issuer_name == "github"
    assert caught.value.code == "issuer_unavailable"
    # Back up: after the failure back-off the keys are fetched and tokens verify again.
    issuer.recover()
    clock.advance(COOLDOWN)
    verifier.verify(issuer.mint())


def test_jwks_down_cold_is_issuer_unavailable_and_backs_off(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    issuer.fail_with(500)
    token = issuer.mint()
    with pytest.raises(IssuerUnavailable):
        verifier.verify(token)
    requests_after_first = len(issuer.requests)
    for _ in range(50):
        with pytest.raises(IssuerUnavailable):
            verifier.verify(token)
    assert len(issuer.requests) == requests_after_first  # no hammering within the cooldown
    issuer.recover()
    with pytest.raises(IssuerUnavailable):
        verifier.verify(token)  # still backing off
    clock.advance(COOLDOWN)
    verifier.verify(token)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"not json"),
        Reply(200, b"[]"),
        Reply(200, b'{"keys": "nope"}'),
        Reply(200, b'{"no_keys": []}'),
        Reply(404, b"{}"),
    ],
)
def test_jwks_garbage_cold_is_issuer_unavailable(
    verifier: TokenVerifier, issuer: OidcIssuer, reply: Reply
) -> None:
    issuer.route("/jwks", reply)
    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.mint())


def test_hanging_issuer_cold_fails_fast_and_warm_keeps_verifying(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    issuer.hang(30)
    started = time.monotonic()
    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.mint())
    assert time.monotonic() - started < 5  # bounded by the fetcher's timeouts, not the hang
    issuer.recover()
    clock.advance(COOLDOWN)
    verifier.verify(issuer.mint())
    issuer.hang(30)
    clock.advance(TTL)
    verifier.verify(issuer.mint())  # stale copy used after the refetch timed out
    verifier.verify(issuer.mint())  # and without waiting again (back-off)


def test_any_exception_from_the_fetcher_is_an_outage(issuer: OidcIssuer, clock: FrozenClock) -> None:
    def broken(url: str) -> dict[str, Any]:
        raise RuntimeError("boom")

    config = IssuerConfig("gh", issuer.url, "github", ("aud",))
    with pytest.raises(IssuerUnavailable) as caught:
        JwksCache(broken, clock).signing_key(config, "kid")
    assert "RuntimeError" in caught.value.message


# ------------------------------------------------------------------------------------------- discovery


def test_discovery_naming_another_issuer_is_refused(
    verifier: TokenVerifier, issuer: OidcIssuer, jwks_hits: Callable[[], int]
) -> None:
    issuer.set_discovery(issuer=issuer.url + "/")
    with pytest.raises(IssuerUnavailable) as caught:
        verifier.verify(issuer.mint())
    assert "different issuer" in caught.value.message
    assert jwks_hits() == 0


def test_discovery_with_a_non_http_jwks_uri_is_refused(
    verifier: TokenVerifier, issuer: OidcIssuer, attacker: AttackerServer
) -> None:
    issuer.set_discovery(jwks_uri="file:///etc/passwd")
    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.mint())
    assert attacker.requests == []


def test_configured_jwks_uri_skips_discovery(
    issuer: OidcIssuer,
    registry: dict[str, IssuerConfig],
    verifier: TokenVerifier,
    config_for: ConfigFactory,
) -> None:
    registry[issuer.url] = config_for(issuer, jwks_uri=issuer.jwks_uri)
    verifier.verify(issuer.mint())
    assert issuer.count(DISCOVERY) == 0
    assert issuer.count("/jwks") == 1


def test_changed_jwks_uri_starts_a_fresh_cache_entry(
    issuer: OidcIssuer, registry: dict[str, IssuerConfig], verifier: TokenVerifier, config_for: ConfigFactory
) -> None:
    verifier.verify(issuer.mint())
    issuer.route("/keys-v2", Reply.json(issuer.jwks()))
    registry[issuer.url] = config_for(issuer, jwks_uri=issuer.url + "/keys-v2")
    verifier.verify(issuer.mint())
    assert issuer.count("/keys-v2") == 1


def test_http_jwks_uri_is_refused_for_an_https_issuer(clock: FrozenClock) -> None:
    served = {
        "https://issuer.example/.well-known/openid-configuration": {
            "issuer": "https://issuer.example",
            "jwks_uri": "http://issuer.example/jwks",
        }
    }
    config = IssuerConfig("x", "https://issuer.example", "github", ("aud",))
    with pytest.raises(IssuerUnavailable):
        JwksCache(served.__getitem__, clock).signing_key(config, None)


# ------------------------------------------------------------------------------------- refresh_if_due


def test_refresh_if_due(issuer: OidcIssuer, config: IssuerConfig, clock: FrozenClock) -> None:
    cache = JwksCache(HttpFetcher(read_timeout=0.5), clock, ttl=TTL, refresh_ahead=timedelta(minutes=2))
    assert cache.refresh_if_due(config) is True  # nothing cached yet
    assert cache.refresh_if_due(config) is False
    clock.advance(TTL - timedelta(minutes=2) - timedelta(seconds=1))
    assert cache.refresh_if_due(config) is False
    clock.advance(timedelta(seconds=1))
    assert cache.refresh_if_due(config) is True
    assert issuer.count("/jwks") == 2
    clock.advance(TTL - timedelta(minutes=1))
    issuer.fail_with(500)
    with pytest.raises(IssuerUnavailable):
        cache.refresh_if_due(config)
    cache.signing_key(config, issuer.current_key().kid)  # the copy in hand still serves


def test_cache_parameters_are_validated(clock: FrozenClock) -> None:
    with pytest.raises(ValueError):
        JwksCache(lambda url: {}, clock, ttl=timedelta(0))
    with pytest.raises(ValueError):
        JwksCache(lambda url: {}, clock, ttl=timedelta(hours=2), max_stale=timedelta(hours=1))


# ------------------------------------------------------------------------------------------- key rules


def _jwk(key_alg: str = "RS256", **members: Any) -> dict[str, Any]:
    return generate_key(key_alg).public_jwk() | members


def test_only_asymmetric_signing_keys_are_kept() -> None:
    weak = generate_key("RS256", rsa_bits=1024).public_jwk()
    private = generate_key("ES256")
    with_d = private.public_jwk() | {"d": b64url(b"\x01" * 32)}
    document = {
        "keys": [
            _jwk(kid="good-rsa"),
            _jwk("ES256", kid="good-ec"),
            _jwk(kid="enc", use="enc"),
            _jwk(kid="wrap", key_ops=["wrapKey"]),
            {"kty": "oct", "k": b64url(b"secret"), "kid": "hmac"},
            {"kty": "oct", "k": b64url(b"secret"), "kid": "hmac-alg", "alg": "HS256", "use": "sig"},
            _jwk(kid="hs-declared", alg="HS256"),
            _jwk("ES256", kid="wrong-alg", alg="RS256"),
            weak | {"kid": "weak"},
            with_d | {"kid": "private"},
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kid": "no-kty"},
            "not an object",
            _jwk(kid=7),
            _jwk(kid="good-rsa"),  # duplicate kid: the first one wins
        ]
    }
    keys = parse_jwks(document)
    assert sorted(k.kid or "" for k in keys.keys) == ["good-ec", "good-rsa"]
    assert keys.find(None) is None  # two keys: a kid is needed
    assert set(keys.by_kid["good-rsa"].by_algorithm) == {"RS256"}


def test_a_jwks_that_is_not_one_is_an_error() -> None:
    with pytest.raises(FetchError):
        parse_jwks({"keys": {"a": 1}})


# --------------------------------------------------------------------------------------------- fetcher


def test_fetcher_refuses_redirects_to_another_host(issuer: OidcIssuer, attacker: AttackerServer) -> None:
    issuer.redirect("/jwks", attacker.jwks_url)
    with pytest.raises(FetchError, match="another scheme or host"):
        HttpFetcher()(issuer.jwks_uri)
    assert attacker.requests == []


def test_fetcher_refuses_a_redirect_to_another_port_of_the_same_host(
    issuer: OidcIssuer, attacker: AttackerServer
) -> None:
    assert attacker.url.startswith("http://127.0.0.1:")  # same host, another port: another origin
    issuer.redirect("/jwks", attacker.url + "/jwks")
    with pytest.raises(FetchError):
        HttpFetcher()(issuer.jwks_uri)
    assert attacker.requests == []


def test_redirect_to_attacker_through_the_verifier_is_an_outage(
    verifier: TokenVerifier, issuer: OidcIssuer, attacker: AttackerServer
) -> None:
    issuer.redirect("/jwks", attacker.jwks_url)
    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.mint(kid=attacker.key.kid, signing_key=attacker.key))
    assert attacker.requests == []


def test_fetcher_follows_same_origin_redirects(issuer: OidcIssuer) -> None:
    issuer.route("/keys", Reply.json(issuer.jwks()))
    issuer.redirect("/jwks", "/keys", status=301)
    assert HttpFetcher()(issuer.jwks_uri)["keys"]
    issuer.redirect("/jwks", "/jwks")  # a loop
    with pytest.raises(FetchError, match="too many redirects"):
        HttpFetcher()(issuer.jwks_uri)


def test_fetcher_refuses_large_bodies(issuer: OidcIssuer) -> None:
    limit = 256 * 1024
    body = json.dumps({"keys": [], "pad": "x" * limit}).encode()
    issuer.route("/jwks", Reply(200, body))
    with pytest.raises(FetchError, match="larger than"):
        HttpFetcher()(issuer.jwks_uri)
    just_fits = json.dumps({"keys": [], "pad": "x" * (limit - 30)}).encode()
    assert len(just_fits) <= limit
    issuer.route("/jwks", Reply(200, just_fits))
    assert HttpFetcher()(issuer.jwks_uri)["keys"] == []


def test_fetcher_refuses_compressed_and_odd_urls(issuer: OidcIssuer) -> None:
    issuer.route("/jwks", Reply(200, b"{}", {"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="compressed"):
        HttpFetcher()(issuer.jwks_uri)
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/jwks", "/jwks", "http:///jwks"):
        with pytest.raises(FetchError):
            HttpFetcher()(url)


def test_fetcher_times_out_on_a_hanging_server(issuer: OidcIssuer) -> None:
    issuer.hang(30)
    started = time.monotonic()
    with pytest.raises(Exception):  # requests' ReadTimeout: the cache treats any error as an outage
        HttpFetcher(read_timeout=0.3)(issuer.jwks_uri)
    assert time.monotonic() - started < 3
