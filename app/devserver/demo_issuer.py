"""The demo OIDC issuer of `transom dev`: GitHub-style ID tokens for trying the broker without a CI.

An RSA key, generated on first start and kept in ``instance/dev/`` (mode 0600) with the issuer's URL, so a
token minted by ``transom dev token`` still verifies after ``transom dev`` restarts (on the same port, which
it asks for again). Discovery and JWKS are served over HTTP on loopback by a small threaded ``http.server``
inside the broker process. The tokens follow GitHub Actions' documented claims
(docs/ARCHITECTURE.md, "Workload identity"), signed RS256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEMO_AUDIENCE = "transom-dev"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks"
KEY_FILE = "issuer-key.pem"
STATE_FILE = "issuer.json"
TOKEN_LIFETIME = timedelta(minutes=10)


class IssuerNotSetUp(RuntimeError):
    """``transom dev`` has not run in this instance directory yet."""


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def of(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        return cls(private_key, key_id(private_key.public_key()))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.private_key, "RS256", self.kid)]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )


def key_id(public_key: Any) -> str:
    """A ``kid`` that names the key itself: the start of the SHA-256 of its DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:32]


def public_jwk(private_key: Any, alg: str, kid: str, *, declare_alg: bool = True) -> dict[str, Any]:
    """The JWK of ``private_key``'s public half, as a JWKS lists it for signature checks."""
    jwk: dict[str, Any] = jwt.get_algorithm_by_name(alg).to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig"})
    if declare_alg:
        jwk["alg"] = alg
    return jwk


def load_or_create_key(directory: Path) -> SigningKey:
    path = directory / KEY_FILE
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise IssuerNotSetUp(f"{path} does not hold an RSA key; delete it to start over")
        return SigningKey.of(loaded)
    directory.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)
    return SigningKey.of(private_key)


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as sink:
        sink.write(content)


def saved_url(directory: Path) -> str | None:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = state.get("url") if isinstance(state, dict) else None
    return url if isinstance(url, str) else None


def _port_of(url: str | None) -> int:
    if url is None:
        return 0
    with contextlib.suppress(ValueError):
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])
    return 0


def _bind(port: int) -> _Server:
    """A server on ``port`` when it is free, else on any free port."""
    if port:
        with contextlib.suppress(OSError):
            return _Server(("127.0.0.1", port), _Handler)
    return _Server(("127.0.0.1", 0), _Handler)


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded server whose request threads do not hold up exit, and that stays quiet about a client
    that hung up."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that hung up: fine
        pass


class _Server(QuietHTTPServer):
    allow_reuse_address = True
    documents: dict[str, bytes]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        body = self.server.documents.get(self.path.split("?", 1)[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        payload = body if body is not None else b'{"error": "not found"}'
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # the broker's log is enough
        pass


class DemoIssuer:
    """Serves discovery and JWKS for the persisted key; ``url`` is the ``iss`` of its tokens."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = load_or_create_key(directory)
        self._server = _bind(_port_of(saved_url(directory)))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.documents = {
            DISCOVERY_PATH: json.dumps(discovery(self.url)).encode(),
            JWKS_PATH: json.dumps(self.key.jwks()).encode(),
        }
        (directory / STATE_FILE).write_text(json.dumps({"url": self.url, "kid": self.key.kid}) + "\n")
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="transom-demo-issuer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def discovery(url: str, algorithms: tuple[str, ...] = ("RS256",)) -> dict[str, Any]:
    """The issuer's OpenID discovery document (the members the broker reads, and the required ones)."""
    return {
        "issuer": url,
        "jwks_uri": url + JWKS_PATH,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(algorithms),
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "sha"],
    }


@dataclass(frozen=True)
class DemoJob:
    """The CI job a demo token speaks for; one ``run_id`` is one workload (renew and release need it)."""

    repo: str = "acme/app"
    branch: str | None = "main"
    tag: str | None = None
    runner: str = "github-hosted"
    event: str = "push"
    environment: str | None = None
    run_id: str = "1"
    actor: str = "dev"

    @property
    def ref(self) -> str:
        return f"refs/tags/{self.tag}" if self.tag else f"refs/heads/{self.branch or 'main'}"


def github_subject(repo: str, ref: str, event: str, environment: str | None) -> str:
    """GitHub's ``sub``: the environment when the job has one, else pull request, else the ref."""
    if environment is not None:
        return f"repo:{repo}:environment:{environment}"
    if event in ("pull_request", "pull_request_target"):
        return f"repo:{repo}:pull_request"
    return f"repo:{repo}:ref:{ref}"


def github_claims(
    job: DemoJob, *, issuer: str, audience: str, now: datetime, lifetime: timedelta = TOKEN_LIFETIME
) -> dict[str, Any]:
    """Claims shaped like a GitHub Actions ID token's (docs.github.com, "OpenID Connect reference")."""
    owner = job.repo.split("/", 1)[0]
    sha = hashlib.sha1(f"{job.repo}@{job.ref}".encode(), usedforsecurity=False).hexdigest()
    subject = github_subject(job.repo, job.ref, job.event, job.environment or None)
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "sub": subject,
        "aud": audience,
        "ref": job.ref,
        "ref_type": "tag" if job.tag else "branch",
        "sha": sha,
        "repository": job.repo,
        "repository_owner": owner,
        "actor": job.actor,
        "run_id": job.run_id,
        "run_number": job.run_id,
        "run_attempt": "1",
        "runner_environment": job.runner,
        "workflow": "deploy",
        "job_workflow_ref": f"{job.repo}/.github/workflows/deploy.yml@{job.ref}",
        "event_name": job.event,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(lifetime.total_seconds()),
    }
    if job.environment:
        claims["environment"] = job.environment
    return claims


def mint_demo_token(
    directory: Path,
    job: DemoJob,
    *,
    audience: str = DEMO_AUDIENCE,
    lifetime: timedelta = TOKEN_LIFETIME,
    now: datetime | None = None,
) -> str:
    """A token from the persisted key and issuer URL (``transom dev token``); the issuer need not run."""
    url = saved_url(directory)
    if url is None or not (directory / KEY_FILE).exists():
        raise IssuerNotSetUp(f"no demo issuer in {directory}: start `transom dev` once first")
    key = load_or_create_key(directory)
    claims = github_claims(
        job, issuer=url, audience=audience, now=now or datetime.now(UTC), lifetime=lifetime
    )
    return key.sign(claims)
