"""Hostile input against a real served broker: schemathesis over the app's own OpenAPI document.

Every operation of ``/openapi.json`` is fuzzed as an admin, an auditor and a CI job (a fresh OIDC token of the
registered issuer ``github`` for every request: CI tokens are single-use for issuance), then a stateful run
follows the links schemathesis infers from the document (create → read → replace → delete; lease → read →
renew → release), each scenario on a fresh broker so that Hypothesis can replay it. Each response must not be
a server error and must conform to the document: a documented status, a documented media type, a body that
matches its schema, headers as declared; invalid input must be refused, and an undeclared method must get a
405 that says what is allowed. Half of the CI lease requests are steered to a secret the broker has, so the
fuzzer gets past the policy into issuance, renewal and release.

Bounded and derandomized for the suite (``max_examples`` per operation and role); ``make fuzz`` runs the long
version, sized by ``TRANSOM_FUZZ_EXAMPLES``.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from app import create_app
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.databases import PostgresDatabases, SqliteDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving

EXAMPLES = int(os.environ.get("TRANSOM_FUZZ_EXAMPLES", "6"))
STATEFUL_EXAMPLES = max(5, EXAMPLES)
ROLES = ("admin", "auditor", "ci")
# The secrets the fixture broker leases out; a CI request body names one of them half the time (see below).
KNOWN_SECRETS = ("prod-db-static", "prod-vault-token")

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # Whether the request schemas say everything the server checks (a cursor must be one the API
            # returned, a duration must parse, a kv secret takes no policies): marshmallow cannot say all of
            # that in JSON Schema, so a refusal of such a "valid" request is not a failure here.
            "positive_data_acceptance": {"enabled": False},
            # The credential of the role under test is put on every case by Target.prepare, so these
            # checks' "same request without (valid) auth" still carries it. Authentication is proven route
            # by route, caller by caller, in tests/integration/system/test_access_matrix.py.
            "missing_required_header": {"enabled": False},
            "ignored_auth": {"enabled": False},
            # A body over the size limit is refused with 413 before it is read: that is a rejection too.
            "negative_data_rejection": {
                "expected-statuses": ["400", "401", "403", "404", "405", "409", "413", "415"]
            },
        },
        "operations": [
            {
                # The concrete paths /v1/windows/calendar and /v1/leases/revoke also match the templated
                # /v1/windows/{name} and /v1/leases/{lease_id}, so their Allow headers rightly name the
                # methods of both; schemathesis compares them with the concrete path's methods only.
                "include-path": ["/v1/windows/calendar", "/v1/leases/revoke"],
                "checks": {"allow_header_conformance": {"enabled": False}},
            }
        ],
    }
)


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app serves it (building it needs neither a database nor Vault)."""
    app = create_app({"env": "test", "database_url": "sqlite://", "vault_token": "unused"})
    document: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return document


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)  # it adds inferred links


@dataclass
class Target:
    """A served broker and its caller: every request of a fuzz run goes to ``url`` as ``role``.

    It is also the WSGI app behind ``url``, passing each request to the broker of the moment, so that
    :meth:`fresh` can swap in a new broker (a fresh database, configured as in the lease tests: issuer
    ``github``, a kv and a token secret, policy ``deploy-prod``) without moving the address.
    """

    role: str
    openbao: OpenBaoServer
    issuer: OidcIssuer
    databases: SqliteDatabases | PostgresDatabases
    url: str = ""
    token: str = ""
    app: Flask | None = None
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)

    def fresh(self) -> None:
        app = make_app(self.databases.fresh(), self.openbao)
        admin = create_broker_token(app, "admin", "fuzz-admin")
        broker = Broker(app, app.test_client(), admin, self.issuer, self.openbao)
        broker.register_issuer()
        broker.kv_secret(KNOWN_SECRETS[0])
        broker.token_secret(KNOWN_SECRETS[1])
        broker.policy(secrets=list(KNOWN_SECRETS))
        self.token = create_broker_token(app, "auditor", "fuzz-auditor") if self.role == "auditor" else admin
        self.close()
        self.app = app

    def close(self) -> None:
        if self.app is not None:
            rt(self.app).engine.dispose()
            self.app = None

    def credential(self) -> str:
        if self.role == "ci":
            return self.issuer.mint(claims=self.issuer.github_claims())
        return self.token

    def prepare(self, case: Any) -> None:
        """Authenticate the request, and steer a CI lease request to a secret the broker has half the time,
        so the fuzzer gets past the policy into issuance, renewal and release."""
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {self.credential()}"}
        body = case.body
        if (
            self.role == "ci"
            and case.operation.path == "/v1/leases"
            and isinstance(body, dict)
            and isinstance(body.get("secret"), str)
            and len(body["secret"]) % 2 == 0
        ):
            case.body = {**body, "secret": KNOWN_SECRETS[len(body["secret"]) % 4 // 2]}

    def record(self, case: Any, status: int) -> None:
        self.statuses[(f"{case.operation.method.upper()} {case.operation.path}", status)] += 1


@pytest.fixture(scope="module", params=ROLES)
def target(
    request: pytest.FixtureRequest,
    openbao: OpenBaoServer,
    fuzz_databases: SqliteDatabases | PostgresDatabases,
) -> Iterator[Target]:
    """A broker of its own per role: what one role's fuzzing changes stays out of another's run."""
    openbao.ensure_baseline(None)
    with OidcIssuer() as issuer:
        target = Target(request.param, openbao, issuer, fuzz_databases)
        target.fresh()
        with serving(target) as url:  # type: ignore[arg-type]  # any WSGI app will do
            target.url = url
            yield target
        target.close()


@pytest.fixture(scope="module")
def fuzz_databases(request: pytest.FixtureRequest) -> SqliteDatabases | PostgresDatabases:
    """PostgreSQL, as in production, when it answers; else SQLite."""
    if request.getfixturevalue("postgres_problem") is None:
        return request.getfixturevalue("postgres_databases")  # type: ignore[no-any-return]
    return request.getfixturevalue("sqlite_databases")  # type: ignore[no-any-return]


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def test_the_served_document_is_the_fuzzed_one(target: Target) -> None:
    assert requests.get(f"{target.url}/openapi.json", timeout=10).json() == DOCUMENT


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation(case: Any, target: Target) -> None:
    target.prepare(case)
    response = case.call(base_url=target.url)
    target.record(case, response.status_code)
    case.validate_response(response, transport_kwargs={"base_url": target.url})


# What each role's stateful run walks: a CI job has only the lease routes, an auditor only reads.
CI_ROUTES = {
    "POST /v1/leases",
    "GET /v1/leases/{lease_id}",
    "POST /v1/leases/{lease_id}/renew",
    "POST /v1/leases/{lease_id}/release",
}
STATEFUL_SCOPE = {
    "admin": lambda label: True,
    "auditor": lambda label: label.startswith("GET "),
    "ci": lambda label: label in CI_ROUTES,
}


def scoped_document(role: str) -> dict[str, Any]:
    """The document with only the operations ``role`` walks (schemathesis' own filters leave its state
    machines alone)."""
    document = copy.deepcopy(DOCUMENT)
    for path, item in document["paths"].items():
        for method in [m for m in item if m != "parameters"]:
            if not STATEFUL_SCOPE[role](f"{method.upper()} {path}"):
                del item[method]
    document["paths"] = {path: item for path, item in document["paths"].items() if set(item) - {"parameters"}}
    # The fixture's policy asks for no approval, so POST /v1/leases never answers 202 here; left in, the 202
    # (an approval request, its id nested) is where schemathesis infers the link to GET /v1/leases/{lease_id}
    # from, in place of the 201's, and the walk could never read the leases it obtains.
    lease_requests = document["paths"].get("/v1/leases", {}).get("post")
    if lease_requests is not None:
        lease_requests["responses"].pop("202", None)
    return document


def test_stateful_links(target: Target) -> None:
    base = schemathesis.openapi.from_dict(scoped_document(target.role), config=CONFIG).as_state_machine()

    class Scenario(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Each scenario starts from a fresh broker, so what an earlier one left (a name taken, a lease
            # released under an idempotency key) cannot change how a replayed one goes: Hypothesis needs
            # scenarios it can repeat.
            target.fresh()

        def before_call(self, case: Any) -> None:
            target.prepare(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": target.url}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            target.record(case, response.status_code)

    target.statuses.clear()
    Scenario.run(settings=settings(FUZZ_SETTINGS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=12))
    # The walk got past authentication into the API's own work, not just into its refusals.
    assert any(200 <= status < 300 for (_, status) in target.statuses), target.statuses
    if target.role == "ci":  # leases were granted, renewed and released, not only refused
        for step in (
            "POST /v1/leases",
            "POST /v1/leases/{lease_id}/renew",
            "POST /v1/leases/{lease_id}/release",
        ):
            assert target.statuses[(step, 201 if step == "POST /v1/leases" else 200)], target.statuses
