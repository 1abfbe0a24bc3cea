"""From a running broker, Go's golang.org/x/mod/sumdb (note and tlog), sharing no code with Transom, opens
the signed checkpoints and accepts the inclusion and consistency proofs the API serves; the leaves are
recomputed here from the events' JSON. And the log's routes refuse misuse with problem JSON
(docs/API.md, "Audit ledger — a verifiable log").

Without Go the interop test skips, except in CI (TRANSOM_REQUIRE_POSTGRES=1), where it fails."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.tlog import merkle, note
from app.tlog.canonical import event_leaf
from tests.integration.conftest import rt
from tests.support.broker import Broker, bearer
from tests.support.go_verifier import GoVerifier, go_verifier_or_skip
from tests.support.ledger import ORIGIN, integrate_all, settle_and_verify

BATCHES = (5, 12, 17)  # events recorded before each of three checkpoints


@pytest.fixture(scope="module")
def go() -> GoVerifier:
    return go_verifier_or_skip()


class Api:
    """The log's routes as an auditor calls them."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = bearer(token)

    def json(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == 200, (path, response.get_json())
        return response.get_json()

    def text(self, path: str) -> str:
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        assert response.content_type == "text/plain; charset=utf-8"
        return response.get_data(as_text=True)

    def status(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        response = self.client.get(path, headers=self.headers if headers is None else headers)
        if response.status_code >= 400:
            assert response.content_type == "application/problem+json", (path, response.content_type)
        return response.status_code, response.get_json(silent=True)


def _record_config_changes(client: FlaskClient, admin_token: str, count: int, prefix: str) -> None:
    for number in range(count):
        created = client.post(
            "/v1/tokens", json={"name": f"{prefix}-{number}", "role": "auditor"}, headers=bearer(admin_token)
        )
        assert created.status_code == 201, created.get_json()


def _settle(app: Flask) -> int:
    verification = settle_and_verify(rt(app).sessions, rt(app).ledger_signer)
    assert verification.ok, verification
    return verification.size


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _root_of(signed: str) -> str:
    body = signed[: signed.index("\n\n") + 1]
    return _b64(note.parse_checkpoint(body).root_hash)


def test_go_checks_the_brokers_checkpoints_and_proofs(
    go: GoVerifier, app: Flask, client: FlaskClient, admin_token: str, auditor_token: str
) -> None:
    api = Api(client, auditor_token)
    sizes = []
    for batch, count in enumerate(BATCHES):
        _record_config_changes(client, admin_token, count, f"batch{batch}")
        sizes.append(_settle(app))
    assert sizes == sorted(set(sizes)) and sizes[-1] >= sum(BATCHES)
    key = api.json("/v1/audit/key")
    assert key["origin"] == ORIGIN and key["algorithm"] == "ed25519"
    notes = {size: api.text(f"/v1/audit/checkpoint?size={size}") for size in sizes}
    latest = sizes[-1]
    assert api.text("/v1/audit/checkpoint") == notes[latest]
    listed = api.json("/v1/audit/checkpoints")["items"]
    assert [(c["size"], c["root_hash"]) for c in listed] == [(s, _root_of(notes[s])) for s in reversed(sizes)]

    # Each leaf recomputed here from the event as the API shows it, not taken from the broker.
    events = {e["index"]: e for e in api.json("/v1/audit/events?limit=500")["items"]}
    assert sorted(events) == list(range(latest))
    leaves = {index: _b64(merkle.leaf_hash(event_leaf(event))) for index, event in events.items()}
    assert all(leaves[index] == event["leaf_hash"] for index, event in events.items())

    for size in sizes:
        indexes = sorted({0, 1, size // 2, size - 2, size - 1})
        inclusion = []
        for index in indexes:
            proof = api.json(f"/v1/audit/proof/inclusion?index={index}&size={size}")
            assert (proof["index"], proof["size"], proof["leaf_hash"]) == (index, size, leaves[index])
            inclusion.append({"index": index, "leaf_hash": leaves[index], "hashes": proof["hashes"]})
        consistency = []
        for old in [s for s in sizes if s <= size]:
            proof = api.json(f"/v1/audit/proof/consistency?from={old}&to={size}")
            assert (proof["from"], proof["to"]) == (old, size)
            consistency.append({"size": old, "root_hash": _root_of(notes[old]), "hashes": proof["hashes"]})
        answer = go.check(
            {
                "verifier_key": key["verifier_key"],
                "note": notes[size],
                "inclusion": inclusion,
                "consistency": consistency,
            }
        )
        assert answer == {
            "ok": True,
            "checkpoint": {"origin": ORIGIN, "size": size, "root_hash": _root_of(notes[size])},
        }

    # An event's own proof, found by its id, is the same one.
    by_event = api.json(f"/v1/audit/proof/inclusion?event={events[3]['id']}")
    assert by_event == api.json(f"/v1/audit/proof/inclusion?index=3&size={latest}")

    # Go refuses a proof that does not fit: the check above can fail.
    wrong = go.check(
        {
            "verifier_key": key["verifier_key"],
            "note": notes[latest],
            "inclusion": [{"index": 1, "leaf_hash": leaves[0], "hashes": inclusion[1]["hashes"]}],
        }
    )
    assert wrong["ok"] is False


def test_the_log_routes_refuse_misuse_with_problem_json(
    app: Flask, client: FlaskClient, admin_token: str, auditor_token: str
) -> None:
    api = Api(client, auditor_token)
    _record_config_changes(client, admin_token, 6, "misuse")
    size = _settle(app)
    _record_config_changes(client, admin_token, 1, "pending")  # committed, not integrated
    pending = next(e for e in api.json("/v1/audit/events?limit=500")["items"] if e["index"] is None)
    integrated = size

    bad_requests = [
        f"/v1/audit/proof/inclusion?index={size}&size={size}",  # index >= size
        f"/v1/audit/proof/inclusion?index=0&size={integrated + 1}",  # size > integrated
        "/v1/audit/proof/inclusion?index=-1",
        "/v1/audit/proof/inclusion?index=one",
        f"/v1/audit/proof/inclusion?index={2**70}",
        f"/v1/audit/proof/inclusion?index=0&size={2**70}",
        "/v1/audit/proof/inclusion?index=0&size=0",
        "/v1/audit/proof/inclusion?index=0&event=1",  # both
        "/v1/audit/proof/inclusion",  # neither
        f"/v1/audit/proof/consistency?from=0&to={size}",
        f"/v1/audit/proof/consistency?from={size}&to={size - 1}",
        f"/v1/audit/proof/consistency?from=1&to={integrated + 1}",
        f"/v1/audit/proof/consistency?from=1&to={2**70}",
        f"/v1/audit/proof/consistency?from=-1&to={size}",
        f"/v1/audit/proof/consistency?from=1.5&to={size}",
        f"/v1/audit/proof/consistency?to={size}",
        "/v1/audit/checkpoint?size=-3",
        "/v1/audit/checkpoint?size=abc",
        f"/v1/audit/checkpoint?size={2**70}",
    ]
    for path in bad_requests:
        status, problem = api.status(path)
        assert status == 400, (path, status, problem)
        assert problem["status"] == 400

    assert api.status(f"/v1/audit/proof/inclusion?event={pending['id']}")[0] == 409
    assert api.status(f"/v1/audit/events/{pending['id']}")[1]["index"] is None
    assert api.status("/v1/audit/proof/inclusion?event=999999")[0] == 404
    assert api.status("/v1/audit/events/999999")[0] == 404
    assert api.status(f"/v1/audit/checkpoint?size={size - 1}")[0] == 404
    assert api.status(f"/v1/audit/checkpoint?size={size + 50}")[0] == 404
    # The pending event, once integrated but not yet signed, has no checkpoint to be proved in.
    integrate_all(rt(app).sessions)
    status, problem = api.status(f"/v1/audit/proof/inclusion?event={pending['id']}")
    assert status == 409 and "not in a published checkpoint yet" in problem["detail"]


LOG_ROUTES = (
    "/v1/audit/checkpoint",
    "/v1/audit/checkpoints",
    "/v1/audit/key",
    "/v1/audit/proof/inclusion?index=0",
    "/v1/audit/proof/consistency?from=1&to=1",
    "/v1/audit/events/1",
    "/v1/audit/verify",
)


def test_the_log_routes_are_for_auditors_and_admins_only(broker: Broker, auditor_token: str) -> None:
    _settle(broker.app)
    api = Api(broker.client, auditor_token)
    ci = bearer(broker.ci_token())
    for path in LOG_ROUTES:
        assert api.status(path)[0] == 200, path
        assert api.status(path, bearer(broker.admin_token))[0] == 200, path
        assert api.status(path, {})[0] == 401, path
        assert api.status(path, ci)[0] in (401, 403), path
