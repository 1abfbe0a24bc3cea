"""Issuers' signing keys: discovery and a per-issuer JWKS cache (its HTTP fetcher: ``jwks_fetch``).

Cache rules (docs/ARCHITECTURE.md "identity", docs/API.md "Authentication"):

- a fetched copy is *fresh* for ``ttl``: it is used with no fetching at all;
- after that it is refetched on use (one thread fetches; the others keep using the old copy), and the old
  copy keeps verifying while fetching fails, up to ``max_stale`` after it was fetched;
- a ``kid`` the copy lacks triggers at most one refetch per issuer per ``refetch_cooldown``;
- a failed fetch is not retried within ``refetch_cooldown`` either, so an issuer that is down or hanging is
  not hammered by every request; an unusable cache then answers at once: :class:`IssuerUnavailable`;
- the scheduler calls :meth:`JwksCache.refresh_if_due` to refresh ahead of expiry.

Only asymmetric signing keys are kept: ``use`` other than ``sig``, ``kty: oct``, RSA keys under 2048 bits,
keys carrying private parts and keys of algorithms we do not accept are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from app.clock import Clock, SystemClock
from app.decision.reasons import UNKNOWN_KEY
from app.identity.errors import IssuerUnavailable, TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks_fetch import FetchError, FetchJson, HttpFetcher

log = logging.getLogger(__name__)

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
OKP_CURVES = frozenset({"Ed25519", "Ed448"})
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({*RSA_ALGORITHMS, *EC_ALGORITHMS.values(), "EdDSA"})
MIN_RSA_BITS = 2048
DISCOVERY_PATH = "/.well-known/openid-configuration"


# --------------------------------------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One verification key, bound to each algorithm it may verify (the JWK's ``alg``, or its type's)."""

    kid: str | None
    kty: str
    by_algorithm: Mapping[str, PyJWK]

    def for_algorithm(self, alg: str) -> PyJWK | None:
        return self.by_algorithm.get(alg)


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[SigningKey, ...]
    by_kid: Mapping[str, SigningKey]

    def find(self, kid: str | None) -> SigningKey | None:
        """The key named ``kid``; without a kid, the only key, if there is exactly one."""
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        return self.by_kid.get(kid)


def parse_jwks(document: Mapping[str, Any]) -> KeySet:
    """The usable signing keys of a JWKS document; raises :class:`FetchError` when it is not a JWKS."""
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise FetchError("the JWKS has no 'keys' list")
    keys: list[SigningKey] = []
    by_kid: dict[str, SigningKey] = {}
    for raw in raw_keys:
        key = _signing_key(raw)
        if key is None:
            continue
        if key.kid is not None:
            if key.kid in by_kid:
                log.warning("JWKS publishes kid %r twice; the first one is used", key.kid)
                continue
            by_kid[key.kid] = key
        keys.append(key)
    return KeySet(tuple(keys), MappingProxyType(by_kid))


def _signing_key(raw: Any) -> SigningKey | None:
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    if raw.get("use", "sig") != "sig" or "d" in raw:
        return None
    key_ops = raw.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    bound: dict[str, PyJWK] = {}
    for alg in _algorithms_for(raw):
        try:
            bound[alg] = PyJWK(raw, algorithm=alg)
        except (PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.warning("JWKS key %r ignored: %s", kid, type(exc).__name__)
            return None
    if not bound:
        return None
    if raw["kty"] == "RSA" and next(iter(bound.values())).key.key_size < MIN_RSA_BITS:
        log.warning("JWKS key %r ignored: RSA key shorter than %d bits", kid, MIN_RSA_BITS)
        return None
    return SigningKey(kid, raw["kty"], MappingProxyType(bound))


def _algorithms_for(raw: Mapping[str, Any]) -> tuple[str, ...]:
    kty, crv = raw.get("kty"), raw.get("crv")
    candidates: tuple[str, ...] = ()
    if kty == "RSA":
        candidates = RSA_ALGORITHMS
    elif kty == "EC" and isinstance(crv, str) and crv in EC_ALGORITHMS:
        candidates = (EC_ALGORITHMS[crv],)
    elif kty == "OKP" and crv in OKP_CURVES:
        candidates = ("EdDSA",)
    declared = raw.get("alg")
    if declared is None:
        return candidates
    return (declared,) if declared in candidates else ()


# -------------------------------------------------------------------------------------------- cache


@dataclass(eq=False)
class _Entry:
    source: tuple[str, str | None]  # (issuer URL, configured jwks_uri): a changed config starts afresh
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the fields below
    fetch_lock: threading.Lock = field(default_factory=threading.Lock)  # one fetch at a time
    keys: KeySet | None = None
    fetched_at: datetime | None = None  # when the current copy was fetched
    failed_at: datetime | None = None  # the last failed attempt, cleared by a success
    refetched_at: datetime | None = None  # the last refetch caused by an unknown kid
    generation: int = 0  # bumped by every successful fetch
    last_error: str = "not fetched yet"


class JwksCache:
    """Signing keys per issuer, thread-safe; ``fetch`` gets a URL's JSON object (default: HTTP)."""

    def __init__(
        self,
        fetch: FetchJson | None = None,
        clock: Clock | None = None,
        ttl: timedelta = timedelta(minutes=10),
        refetch_cooldown: timedelta = timedelta(seconds=30),
        max_stale: timedelta = timedelta(hours=1),
        refresh_ahead: timedelta | None = None,
    ) -> None:
        if ttl <= timedelta(0) or refetch_cooldown < timedelta(0) or max_stale < ttl:
            raise ValueError("need ttl > 0, refetch_cooldown >= 0 and max_stale >= ttl")
        self._fetch_json: FetchJson = fetch if fetch is not None else HttpFetcher()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ttl = ttl
        self._cooldown = refetch_cooldown
        self._max_stale = max_stale
        self._refresh_ahead = refresh_ahead if refresh_ahead is not None else ttl / 5
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()

    # ---- public

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    @property
    def refetch_cooldown(self) -> timedelta:
        return self._cooldown

    @property
    def max_stale(self) -> timedelta:
        return self._max_stale

    def signing_key(self, config: IssuerConfig, kid: str | None) -> SigningKey:
        """The issuer's key named ``kid``.

        Raises :class:`TokenRejected` (``unknown_key``) when the issuer does not publish it, and
        :class:`IssuerUnavailable` when no usable copy of its keys can be had.
        """
        entry = self._entry(config)
        keys, generation = self._usable_keys(entry, config)
        key = keys.find(kid)
        if key is None and kid is not None:
            key = self._refetch_for_unknown_kid(entry, config, kid, generation)
        if key is None:
            if kid is None:
                raise TokenRejected(UNKNOWN_KEY, "the token names no key and the issuer does not publish one")
            raise TokenRejected(UNKNOWN_KEY, "the issuer publishes no signing key with the token's kid")
        return key

    def refresh_if_due(self, config: IssuerConfig) -> bool:
        """Fetch when the copy is missing or expires within ``refresh_ahead``; True when it fetched.

        For the scheduler. Raises :class:`IssuerUnavailable` when a due fetch fails.
        """
        entry = self._entry(config)
        with entry.fetch_lock:
            if not self._due(entry, self._clock.now()):
                return False
            if not self._fetch_into(entry, config):
                raise IssuerUnavailable(config.name, entry.last_error)
            return True

    def forget(self, issuer_url: str) -> None:
        """Drop an issuer's cached keys (its configuration was deleted or replaced)."""
        with self._entries_lock:
            self._entries.pop(issuer_url, None)

    # ---- internals

    def _entry(self, config: IssuerConfig) -> _Entry:
        source = (config.issuer, config.jwks_uri)
        with self._entries_lock:
            entry = self._entries.get(config.issuer)
            if entry is None or entry.source != source:
                entry = self._entries[config.issuer] = _Entry(source)
            return entry

    def _usable_keys(self, entry: _Entry, config: IssuerConfig) -> tuple[KeySet, int]:
        now = self._clock.now()
        with entry.lock:
            keys, fetched_at, generation = entry.keys, entry.fetched_at, entry.generation
        if keys is not None and fetched_at is not None and now < fetched_at + self._ttl:
            return keys, generation  # fresh: the hot path, no fetch, no waiting
        if keys is not None and fetched_at is not None and now < fetched_at + self._max_stale:
            # Expired but usable: one thread refetches, the others go on with the old copy meanwhile.
            if not self._backing_off(entry, now) and entry.fetch_lock.acquire(blocking=False):
                try:
                    if self._stale(entry, self._clock.now()):
                        self._fetch_into(entry, config)
                finally:
                    entry.fetch_lock.release()
            with entry.lock:
                return entry.keys or keys, entry.generation
        # Nothing usable: wait for a fetch in flight, or fetch ourselves (unless backing off).
        with entry.fetch_lock:
            now = self._clock.now()
            if self._usable(entry, now) or (
                not self._backing_off(entry, now) and self._fetch_into(entry, config)
            ):
                with entry.lock:
                    assert entry.keys is not None
                    return entry.keys, entry.generation
            raise IssuerUnavailable(config.name, entry.last_error)

    def _refetch_for_unknown_kid(
        self, entry: _Entry, config: IssuerConfig, kid: str, seen_generation: int
    ) -> SigningKey | None:
        def cooling(now: datetime) -> bool:
            with entry.lock:
                recent = entry.refetched_at is not None and now < entry.refetched_at + self._cooldown
            return recent or self._backing_off(entry, now)

        if cooling(self._clock.now()) and not entry.fetch_lock.locked():
            return self._find_if_newer(entry, kid, seen_generation)  # garbage kids return here, at once
        with entry.fetch_lock:
            found = self._find_if_newer(entry, kid, seen_generation)
            now = self._clock.now()
            if found is not None or cooling(now):
                return found
            with entry.lock:
                entry.refetched_at = now
            self._fetch_into(entry, config)
            return self._find_if_newer(entry, kid, seen_generation)

    def _find_if_newer(self, entry: _Entry, kid: str, seen_generation: int) -> SigningKey | None:
        with entry.lock:
            if entry.generation == seen_generation or entry.keys is None:
                return None
            return entry.keys.find(kid)

    def _fetch_into(self, entry: _Entry, config: IssuerConfig) -> bool:
        """One fetch attempt (caller holds ``fetch_lock``); records the outcome, never raises."""
        started = self._clock.now()
        try:
            keys = parse_jwks(self._fetch_json(self._jwks_uri(config)))
        except Exception as exc:  # any failure of discovery, transport or shape: keep what we have
            message = str(exc) if isinstance(exc, FetchError) else f"fetch failed ({type(exc).__name__})"
            log.warning("JWKS of issuer %r not refreshed: %s", config.name, message)
            with entry.lock:
                entry.failed_at = started
                entry.last_error = message
            return False
        with entry.lock:
            entry.keys = keys
            entry.fetched_at = started
            entry.failed_at = None
            entry.generation += 1
        return True

    def _jwks_uri(self, config: IssuerConfig) -> str:
        if config.jwks_uri is not None:
            return config.jwks_uri
        document = self._fetch_json(config.issuer.rstrip("/") + DISCOVERY_PATH)
        if document.get("issuer") != config.issuer:
            raise FetchError("the discovery document names a different issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _acceptable_jwks_uri(jwks_uri, config.issuer):
            raise FetchError("the discovery document has no acceptable jwks_uri")
        return jwks_uri

    def _usable(self, entry: _Entry, now: datetime) -> bool:
        with entry.lock:
            return (
                entry.keys is not None
                and entry.fetched_at is not None
                and now < entry.fetched_at + self._max_stale
            )

    def _stale(self, entry: _Entry, now: datetime) -> bool:
        with entry.lock:
            return entry.fetched_at is None or now >= entry.fetched_at + self._ttl

    def _due(self, entry: _Entry, now: datetime) -> bool:
        with entry.lock:
            return entry.fetched_at is None or now >= entry.fetched_at + self._ttl - self._refresh_ahead

    def _backing_off(self, entry: _Entry, now: datetime) -> bool:
        with entry.lock:
            return entry.failed_at is not None and now < entry.failed_at + self._cooldown


def _acceptable_jwks_uri(jwks_uri: str, issuer: str) -> bool:
    """https always; plain http only when the issuer itself is http (development on loopback)."""
    scheme = urlsplit(jwks_uri).scheme
    return scheme == "https" or (scheme == "http" and urlsplit(issuer).scheme == "http")
