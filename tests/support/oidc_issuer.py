"""A real OIDC issuer on loopback for tests: discovery, JWKS, real RS256/ES256 tokens, and hostile ones.

- :class:`OidcIssuer` serves ``/.well-known/openid-configuration`` and ``/jwks`` from a threaded
  ``http.server`` on ``127.0.0.1`` (free port), holds an RSA (RS256) and an EC P-256 (ES256) key, and mints
  tokens whose claims follow GitHub's and GitLab's documented ID token formats (:func:`github_claims`,
  :func:`gitlab_claims`). It can rotate keys, fail (``fail_with``), hang (``hang``) and ``recover``, and it
  counts the requests made to each path.
- :class:`AttackerServer` answers anything with a JWKS of the attacker's key and records every request: a
  test that hands its URL to the verifier (``jku``, ``x5u``, redirects) proves it was never contacted.
- Forging helpers (:func:`encode_token`, :func:`forge_unsigned`, :func:`forge_hmac`) build the tokens an
  attacker would send.

Only the standard library, cryptography and PyJWT: the issuer's own signing uses PyJWT's algorithms. Key ids,
JWKs, the discovery document, GitHub's ``sub`` and the quiet HTTP server are those of ``transom dev``'s demo
issuer (``app/devserver/demo_issuer.py``); what is here is what tests add.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from app.devserver.demo_issuer import (
    DISCOVERY_PATH,
    JWKS_PATH,
    QuietHTTPServer,
    discovery,
    github_subject,
    key_id,
    public_jwk,
)

DEFAULT_AUDIENCE = "https://transom.example.com"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
TOKEN_LIFETIME = timedelta(minutes=5)


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()  # as a claim or header value: leave that member out of the token


class _Clock(Protocol):
    def now(self) -> datetime: ...


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


# --------------------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class IssuerKey:
    kid: str
    alg: str
    private_key: Any  # RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey

    def public_jwk(self, *, declare_alg: bool = True) -> dict[str, Any]:
        return public_jwk(self.private_key, self.alg, self.kid, declare_alg=declare_alg)

    def public_pem(self) -> bytes:
        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, signing_input: bytes, alg: str | None = None) -> bytes:
        return bytes(jwt.get_algorithm_by_name(alg or self.alg).sign(signing_input, self.private_key))


def generate_key(alg: str = "RS256", *, kid: str | None = None, rsa_bits: int = 2048) -> IssuerKey:
    if alg[:2] in ("RS", "PS"):
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif alg in ("ES256", "ES384", "ES512"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        private = ec.generate_private_key(curve)
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key type for {alg}")
    return IssuerKey(kid or key_id(private.public_key()), alg, private)


# ------------------------------------------------------------------------------------ token builders


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def json_segment(value: Mapping[str, Any] | bytes | str) -> str:
    """A token segment from a JSON object, or from raw JSON text (for duplicate keys and other oddities)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return b64url(value)
    return b64url(json.dumps(_without_omitted(value), separators=(",", ":")).encode("utf-8"))


def encode_token(
    header: Mapping[str, Any] | bytes | str, payload: Mapping[str, Any] | bytes | str, signature: bytes
) -> str:
    return f"{json_segment(header)}.{json_segment(payload)}.{b64url(signature)}"


def sign_token(
    header: Mapping[str, Any] | bytes | str,
    payload: Mapping[str, Any] | bytes | str,
    key: IssuerKey,
    alg: str | None = None,
) -> str:
    signing_input = f"{json_segment(header)}.{json_segment(payload)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii'), alg))}"


def forge_unsigned(payload: Mapping[str, Any], alg: str = "none", **header: Any) -> str:
    """The ``alg: none`` attack (in any spelling): an empty signature."""
    return encode_token({"alg": alg, "typ": "JWT", **header}, payload, b"")


def forge_hmac(payload: Mapping[str, Any], secret: bytes, alg: str = "HS256", **header: Any) -> str:
    """The algorithm-confusion attack: HMAC keyed with something public (the issuer's PEM or JWK)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{json_segment({'alg': alg, 'typ': 'JWT', **header})}.{json_segment(payload)}"
    signature = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def _without_omitted(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not OMIT}


# ------------------------------------------------------------------------------------ claim formats


def _stamp(issued_at: datetime | None, lifetime: timedelta) -> dict[str, int]:
    iat = int((issued_at or datetime.now(UTC)).timestamp())
    return {"iat": iat, "nbf": iat, "exp": iat + int(lifetime.total_seconds())}


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


def github_claims(
    *,
    repo: str = "acme/payments",
    ref: str = "refs/heads/main",
    event: str = "push",
    environment: str | None = None,
    ref_protected: bool | None = None,
    actor: str = "octocat",
    run_id: str = "8412345678",
    run_number: str = "42",
    run_attempt: str = "1",
    runner_environment: str = "github-hosted",
    workflow: str = "deploy",
    sha: str | None = None,
    issuer: str = GITHUB_ISSUER,
    audience: str | list[str] = DEFAULT_AUDIENCE,
    issued_at: datetime | None = None,
    lifetime: timedelta = TOKEN_LIFETIME,
    jti: str | None = None,
) -> dict[str, Any]:
    """A GitHub Actions ID token's claims (docs.github.com, "OpenID Connect reference"); values are strings.

    ``ref_protected`` is left out unless given: GitHub does not document it.
    """
    owner = repo.split("/", 1)[0]
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    subject = github_subject(repo, ref, event, environment)
    sha = sha or _fake_sha(repo, ref, run_id)
    workflow_path = f"{repo}/.github/workflows/{workflow}.yml@{ref}"
    claims: dict[str, Any] = {
        "jti": jti or str(uuid.uuid4()),
        "sub": subject,
        "aud": audience,
        "ref": ref,
        "sha": sha,
        "repository": repo,
        "repository_owner": owner,
        "repository_owner_id": "1342004",
        "repository_id": "672013998",
        "repository_visibility": "private",
        "actor": actor,
        "actor_id": "583231",
        "run_id": run_id,
        "run_number": run_number,
        "run_attempt": run_attempt,
        "runner_environment": runner_environment,
        "workflow": workflow,
        "workflow_ref": workflow_path,
        "workflow_sha": sha,
        "job_workflow_ref": workflow_path,
        "job_workflow_sha": sha,
        "head_ref": "",
        "base_ref": "",
        "event_name": event,
        "ref_type": ref_type,
        "iss": issuer,
        **_stamp(issued_at, lifetime),
    }
    if environment is not None:
        claims["environment"] = environment
    if ref_protected is not None:
        claims["ref_protected"] = "true" if ref_protected else "false"
    return claims


def gitlab_claims(
    *,
    project: str = "acme/payments",
    ref: str = "main",
    ref_type: str = "branch",
    protected: bool = True,
    environment: str | None = None,
    pipeline_source: str = "push",
    user_login: str = "alice",
    pipeline_id: str = "1234567",
    job_id: str = "7654321",
    runner_id: int = 12270831,
    runner_environment: str = "gitlab-hosted",
    sha: str | None = None,
    include_ref_path: bool = True,
    issuer: str = GITLAB_ISSUER,
    audience: str | list[str] = DEFAULT_AUDIENCE,
    issued_at: datetime | None = None,
    lifetime: timedelta = TOKEN_LIFETIME,
    jti: str | None = None,
) -> dict[str, Any]:
    """A GitLab CI ID token's claims (docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using ID
    Tokens"): IDs are strings except ``runner_id``, an integer; ``ref`` is the short name.
    """
    namespace = project.rsplit("/", 1)[0]
    sha = sha or _fake_sha(project, ref, pipeline_id)
    claims: dict[str, Any] = {
        "namespace_id": "72",
        "namespace_path": namespace,
        "project_id": "20",
        "project_path": project,
        "user_id": "1",
        "user_login": user_login,
        "user_email": f"{user_login}@example.com",
        "user_access_level": "maintainer",
        "pipeline_id": pipeline_id,
        "pipeline_source": pipeline_source,
        "job_id": job_id,
        "ref": ref,
        "ref_type": ref_type,
        "ref_protected": "true" if protected else "false",
        "runner_id": runner_id,
        "runner_environment": runner_environment,
        "sha": sha,
        "project_visibility": "private",
        "ci_config_ref_uri": f"gitlab.com/{project}//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": sha,
        "jti": jti or str(uuid.uuid4()),
        "iss": issuer,
        "sub": f"project_path:{project}:ref_type:{ref_type}:ref:{ref}",
        "aud": audience,
        **_stamp(issued_at, lifetime),
    }
    if include_ref_path:
        claims["ref_path"] = ("refs/tags/" if ref_type == "tag" else "refs/heads/") + ref
    if environment is not None:
        claims.update(
            environment=environment,
            environment_protected="true",
            deployment_tier="production" if environment == "production" else "other",
            environment_action="start",
        )
    return claims


# ---------------------------------------------------------------------------------- loopback server


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(value).encode("utf-8"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _answer(self) -> None:
        request = RecordedRequest(self.command, urlsplit(self.path).path, dict(self.headers.items()))
        reply = self.server.owner._record_and_reply(request)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Server(QuietHTTPServer):
    owner: LoopbackServer


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (free port) that records every request; subclasses reply."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits up to one poll interval
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()

    def _record_and_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
        return self.reply(request)

    def reply(self, request: RecordedRequest) -> Reply:
        return Reply(404, b"{}")

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def request_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(r.path for r in self._requests)

    def count(self, path: str) -> int:
        return self.request_counts()[path]

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------- issuer


class OidcIssuer(LoopbackServer):
    """The test issuer. ``url`` is its ``iss``; tokens are stamped with ``clock.now()``."""

    def __init__(
        self,
        *,
        clock: _Clock | None = None,
        keys: list[IssuerKey] | None = None,
        audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        self.clock: _Clock = clock or _SystemClock()
        self.audience = audience
        self._keys: dict[str, IssuerKey] = {}  # every key ever held (retired ones still sign forgeries)
        self._published: list[str] = []  # kids in the JWKS, in order
        self._undeclared_alg: set[str] = set()  # kids published without "alg"
        self._extra_jwks: list[dict[str, Any]] = []
        self._current: dict[str, IssuerKey] = {}
        for key in keys or [generate_key("RS256"), generate_key("ES256")]:
            self._hold(key, publish=True, current=key.alg not in self._current)
        self._status: int | None = None
        self._hang_seconds = 0.0
        self._released = threading.Event()
        self._routes: dict[str, Reply] = {}
        self._discovery_overrides: dict[str, Any] = {}
        super().__init__()

    # ---- addresses

    @property
    def jwks_uri(self) -> str:
        return self.url + JWKS_PATH

    @property
    def discovery_url(self) -> str:
        return self.url + DISCOVERY_PATH

    # ---- keys

    def _hold(self, key: IssuerKey, *, publish: bool, current: bool) -> None:
        self._keys[key.kid] = key
        if publish and key.kid not in self._published:
            self._published.append(key.kid)
        if current:
            self._current[key.alg] = key

    def current_key(self, alg: str = "RS256") -> IssuerKey:
        with self._lock:
            return self._current[alg]

    def key(self, kid: str) -> IssuerKey:
        with self._lock:
            return self._keys[kid]

    @property
    def published_kids(self) -> list[str]:
        with self._lock:
            return list(self._published)

    def rotate(self, alg: str = "RS256") -> IssuerKey:
        """A new current key for ``alg``; the old one leaves the JWKS (it can still sign, for tests)."""
        new = generate_key(alg)
        with self._lock:
            old = self._current.get(alg)
            if old is not None and old.kid in self._published:
                self._published.remove(old.kid)
            self._hold(new, publish=True, current=True)
        return new

    def add_key(
        self,
        alg: str = "RS256",
        *,
        key: IssuerKey | None = None,
        make_current: bool = False,
        declare_alg: bool = True,
    ) -> IssuerKey:
        """Publish another key (a fresh one unless given), next to the current ones."""
        key = key or generate_key(alg)
        with self._lock:
            self._hold(key, publish=True, current=make_current)
            if not declare_alg:
                self._undeclared_alg.add(key.kid)
        return key

    def remove_key(self, kid: str) -> None:
        with self._lock:
            if kid in self._published:
                self._published.remove(kid)

    def publish_jwk(self, jwk: Mapping[str, Any]) -> None:
        """Serve an arbitrary extra JWK as it is (encryption keys, ``oct`` keys, broken ones)."""
        with self._lock:
            self._extra_jwks.append(dict(jwk))

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = [
                self._keys[kid].public_jwk(declare_alg=kid not in self._undeclared_alg)
                for kid in self._published
            ]
            return {"keys": keys + [dict(j) for j in self._extra_jwks]}

    # ---- tokens

    def now(self) -> datetime:
        return self.clock.now()

    def github_claims(self, **overrides: Any) -> dict[str, Any]:
        return github_claims(
            **{"issuer": self.url, "audience": self.audience, "issued_at": self.now(), **overrides}
        )

    def gitlab_claims(self, **overrides: Any) -> dict[str, Any]:
        return gitlab_claims(
            **{"issuer": self.url, "audience": self.audience, "issued_at": self.now(), **overrides}
        )

    def mint(
        self,
        claims_overrides: Mapping[str, Any] | None = None,
        *,
        alg: str = "RS256",
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
        signing_key: IssuerKey | None = None,
    ) -> str:
        """A signed token: ``claims`` (default: :meth:`github_claims`) updated by ``claims_overrides``.

        The signer is ``signing_key``, else the key named ``kid`` (if held), else the current key for
        ``alg``; the header's ``kid`` is ``kid`` when given, else the signer's. ``OMIT`` as a claim or header
        value leaves it out.
        """
        with self._lock:
            held = self._keys.get(kid) if kid is not None else None
            signer = signing_key or held or self._current[_key_family(alg)]
        payload = dict(claims if claims is not None else self.github_claims())
        payload.update(claims_overrides or {})
        header = {"alg": alg, "typ": "JWT", "kid": kid if kid is not None else signer.kid, **(headers or {})}
        return sign_token(_without_omitted(header), _without_omitted(payload), signer, alg)

    def sign_raw(self, header_json: str, payload_json: str, *, alg: str = "RS256") -> str:
        """Sign exact JSON texts (duplicate keys, odd spacing) with the current key for ``alg``."""
        return sign_token(header_json, payload_json, self.current_key(_key_family(alg)), alg)

    # ---- behaviour

    def fail_with(self, status: int = 500) -> None:
        with self._lock:
            self._status = status

    def hang(self, seconds: float) -> None:
        """Hold each request up to ``seconds`` before answering (``recover()`` releases them at once)."""
        with self._lock:
            self._hang_seconds = seconds
            self._released.clear()

    def recover(self) -> None:
        with self._lock:
            self._status = None
            self._hang_seconds = 0.0
            self._routes.clear()
            self._discovery_overrides.clear()
            self._released.set()

    def route(self, path: str, reply: Reply) -> None:
        """Answer ``path`` with ``reply`` (redirects, oversized bodies, garbage) until ``recover()``."""
        with self._lock:
            self._routes[path] = reply

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, Reply(status, b"", {"Location": location}))

    def set_discovery(self, **members: Any) -> None:
        """Override members of the discovery document (e.g. ``issuer=`` or ``jwks_uri=``)."""
        with self._lock:
            self._discovery_overrides.update(members)

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            overrides = dict(self._discovery_overrides)
        return {**discovery(self.url, ("RS256", "ES256")), "scopes_supported": ["openid"], **overrides}

    def reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            hang, status, route = self._hang_seconds, self._status, self._routes.get(request.path)
        if hang:
            self._released.wait(hang)
        if status is not None:
            return Reply.json({"error": "issuer failure injected by the test"}, status)
        if route is not None:
            return route
        if request.path == DISCOVERY_PATH:
            return Reply.json(self.discovery())
        if request.path == JWKS_PATH:
            return Reply.json(self.jwks())
        return Reply.json({"error": "not found"}, 404)

    def close(self) -> None:
        self._released.set()
        super().close()

    def __enter__(self) -> OidcIssuer:
        return self


def _key_family(alg: str) -> str:
    """Which current key signs ``alg``: RSA for RS*/PS*, else the key of that exact algorithm."""
    return "RS256" if alg[:2] in ("RS", "PS") else alg


# ----------------------------------------------------------------------------------------- attacker


class AttackerServer(LoopbackServer):
    """Answers every request with a JWKS of its own key (so fetching it *would* work) and records it."""

    def __init__(self, kid: str = "attacker-key") -> None:
        self.key = generate_key("RS256", kid=kid)
        self.certificate_der = _self_signed(self.key)
        super().__init__()

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks.json"

    def reply(self, request: RecordedRequest) -> Reply:
        if request.path.endswith(".pem") or request.path.endswith(".crt"):
            return Reply(200, self.certificate_der, {"Content-Type": "application/pkix-cert"})
        return Reply.json({"keys": [self.key.public_jwk()]})

    def __enter__(self) -> AttackerServer:
        return self


def _self_signed(key: IssuerKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token.actions.githubusercontent.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(secrets.randbits(64))
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)
