"""Fixtures for the identity tests: a real loopback OIDC issuer, an attacker server, and a verifier.

Time is a :class:`FrozenClock` shared by the issuer (token stamps), the JWKS cache and the verifier, so
boundary cases are exact. The JWKS cache fetches over real HTTP with the production fetcher (short read
timeout, so the hanging-issuer tests stay quick).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.clock import FrozenClock
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks import JwksCache
from app.identity.jwks_fetch import HttpFetcher
from app.identity.oidc import TokenVerifier
from tests.support.oidc_issuer import DEFAULT_AUDIENCE, AttackerServer, IssuerKey, OidcIssuer, generate_key

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
COOLDOWN = timedelta(seconds=30)
MAX_STALE = timedelta(hours=1)


@pytest.fixture(scope="session")
def issuer_keys() -> list[IssuerKey]:
    """Generated once per run: RSA key generation is the slow part of starting an issuer."""
    return [generate_key("RS256"), generate_key("ES256")]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def issuer(clock: FrozenClock, issuer_keys: list[IssuerKey]) -> Iterator[OidcIssuer]:
    with OidcIssuer(clock=clock, keys=list(issuer_keys)) as running:
        yield running


@pytest.fixture
def attacker() -> Iterator[AttackerServer]:
    with AttackerServer() as running:
        yield running


def make_config(issuer: OidcIssuer, **overrides: object) -> IssuerConfig:
    values: dict[str, object] = {
        "name": "github",
        "issuer": issuer.url,
        "flavor": "github",
        "audiences": (DEFAULT_AUDIENCE,),
        "jwks_uri": None,
        "leeway_seconds": 30,
        "claim_map": None,
    }
    values.update(overrides)
    return IssuerConfig(**values)  # type: ignore[arg-type]


ConfigFactory = Callable[..., IssuerConfig]


@pytest.fixture
def config_for() -> ConfigFactory:
    """``config_for(issuer, **overrides)``: an IssuerConfig for a test issuer (github flavor by default)."""
    return make_config


@pytest.fixture
def config(issuer: OidcIssuer) -> IssuerConfig:
    return make_config(issuer)


@pytest.fixture
def registry(config: IssuerConfig) -> dict[str, IssuerConfig]:
    """Registered issuers by ``iss`` URL; tests may add more."""
    return {config.issuer: config}


@pytest.fixture
def fetcher() -> HttpFetcher:
    # Short enough that the hanging-issuer tests stay quick, long enough for a loaded CI machine.
    return HttpFetcher(connect_timeout=2.0, read_timeout=2.0, total_timeout=4.0)


@pytest.fixture
def jwks_cache(fetcher: HttpFetcher, clock: FrozenClock) -> JwksCache:
    return JwksCache(fetcher, clock, ttl=TTL, refetch_cooldown=COOLDOWN, max_stale=MAX_STALE)


@pytest.fixture
def verifier(registry: dict[str, IssuerConfig], jwks_cache: JwksCache, clock: FrozenClock) -> TokenVerifier:
    return TokenVerifier(registry.get, jwks_cache, clock)


@pytest.fixture
def jwks_hits(issuer: OidcIssuer) -> Callable[[], int]:
    """How many times the issuer's JWKS has been fetched so far."""
    return lambda: issuer.count("/jwks")
