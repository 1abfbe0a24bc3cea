"""How long ``TokenVerifier.verify`` takes with a warm JWKS cache, against PyJWT's bare ``jwt.decode``.

    .venv/bin/python scripts/bench_verify.py [--tokens N] [--runs R]

For RS256 and ES256: µs per token, the median of R runs of N verifications each, and the ratio to
``jwt.decode`` with the same public key, audience and issuer checks, timed in the same runs (interleaved).
The JWKS comes from the real loopback test issuer; the script asserts that the hot path never fetches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from app.clock import SystemClock
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks import JwksCache
from app.identity.jwks_fetch import HttpFetcher
from app.identity.oidc import TokenVerifier
from tests.support.oidc_issuer import DEFAULT_AUDIENCE, OidcIssuer


class CountingFetcher:
    def __init__(self) -> None:
        self._inner = HttpFetcher()
        self.calls = 0

    def __call__(self, url: str) -> dict[str, Any]:
        self.calls += 1
        return self._inner(url)


def per_token_us(action: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=2000, help="verifications per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with OidcIssuer() as issuer:
        config = IssuerConfig("github", issuer.url, "github", (DEFAULT_AUDIENCE,))
        fetcher = CountingFetcher()
        verifier = TokenVerifier(
            lambda iss: config if iss == config.issuer else None,
            JwksCache(fetcher, SystemClock()),
            SystemClock(),
        )
        tokens = {
            alg: issuer.mint(issuer.github_claims(environment="production"), alg=alg)
            for alg in ("RS256", "ES256")
        }
        for token in tokens.values():
            verifier.verify(token)  # warm the cache: discovery + JWKS, once
        warm_calls = fetcher.calls

        python = sys.version.split()[0]
        print(f"{args.runs} runs x {args.tokens} tokens, Python {python}, PyJWT {jwt.__version__}")
        print(f"{'alg':<6} {'verify µs':>10} {'jwt.decode µs':>14} {'ratio':>6}")
        for alg, token in tokens.items():
            public_key = issuer.current_key(alg).private_key.public_key()

            def ours(token: str = token) -> object:
                return verifier.verify(token)

            def bare(token: str = token, key: Any = public_key, alg: str = alg) -> object:
                return jwt.decode(token, key, algorithms=[alg], audience=DEFAULT_AUDIENCE, issuer=issuer.url)

            ours_runs, bare_runs = [], []
            for _ in range(args.runs):
                ours_runs.append(per_token_us(ours, args.tokens))
                bare_runs.append(per_token_us(bare, args.tokens))
            ours_median, bare_median = statistics.median(ours_runs), statistics.median(bare_runs)
            print(f"{alg:<6} {ours_median:>10.1f} {bare_median:>14.1f} {ours_median / bare_median:>6.2f}")

        assert fetcher.calls == warm_calls, "the hot path fetched keys"
        assert issuer.count("/jwks") == 1, issuer.request_counts()
        served = issuer.count("/jwks")
        print(f"fetches after warm-up: {fetcher.calls - warm_calls} (JWKS requests served: {served})")


if __name__ == "__main__":
    main()
