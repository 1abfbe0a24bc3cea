"""`transom leases list|revoke`: listing in three formats, revoking one, revoking many."""

from __future__ import annotations

import csv
import io
import json

from tests.integration.admin.conftest import Transom
from tests.support.broker import Broker


def _status(transom: Transom, lease_id: str) -> str:
    return str(transom.api("GET", f"/v1/leases/{lease_id}")[1]["status"])


def test_list_as_table_json_and_csv(transom: Transom, broker: Broker) -> None:
    first = broker.lease("prod-db-static")
    second = broker.lease("prod-vault-token", token=broker.ci_token(ref="refs/heads/release/1.2"))
    transom("leases", "revoke", first["id"], "--reason", "test")

    table = transom("leases", "list")
    assert table.exit_code == 0, table.output
    assert "2 lease(s)" in table.output
    assert first["id"] in table.output and second["id"] in table.output
    assert "release/1.2" in table.output and "acme/payments" in table.output
    assert "revoked" in table.output and "active" in table.output

    active = transom("leases", "list", "--status", "active", "--format", "json")
    assert active.exit_code == 0, active.output
    assert [item["id"] for item in json.loads(active.output)] == [second["id"]]

    by_branch = transom("leases", "list", "--branch", "main", "--format", "json")
    assert [item["id"] for item in json.loads(by_branch.output)] == [first["id"]]

    exported = transom("leases", "list", "--format", "csv", "--secret", "prod-vault-token")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [row["id"] for row in rows] == [second["id"]]
    assert all(second["data"]["token"] not in out for out in (table.output, active.output, exported.output))


def test_revoke_one_lease(transom: Transom, broker: Broker) -> None:
    lease = broker.lease("prod-vault-token")
    result = transom("leases", "revoke", lease["id"], "--reason", "suspected leak")
    assert result.exit_code == 0, result.output
    assert result.output == f"{lease['id']}: revoked\n"
    assert _status(transom, lease["id"]) == "revoked"

    again = transom("leases", "revoke", lease["id"])
    assert again.exit_code == 1
    assert "(409)" in again.output


def test_bulk_revoke_asks_first_unless_yes(transom: Transom, broker: Broker) -> None:
    main = [broker.lease("prod-db-static"), broker.lease("prod-vault-token")]
    release = broker.lease("prod-db-static", token=broker.ci_token(ref="refs/heads/release/2"))

    declined = transom("leases", "revoke", "--branch", "main", "--reason", "rotate", input="n\n")
    assert declined.exit_code == 1
    assert "Revoke 2 active lease(s) matching branch=main? [y/N]" in declined.output
    assert all(_status(transom, lease["id"]) == "active" for lease in [*main, release])

    confirmed = transom("leases", "revoke", "--branch", "main", "--reason", "rotate", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "revoked 2 lease(s) matching branch=main" in confirmed.output
    assert [_status(transom, lease["id"]) for lease in main] == ["revoked", "revoked"]
    assert _status(transom, release["id"]) == "active"

    forced = transom("leases", "revoke", "--policy", "deploy-prod", "--reason", "freeze now", "--yes")
    assert forced.exit_code == 0, forced.output
    assert forced.output == "revoked 1 lease(s) matching policy=deploy-prod\n"
    assert _status(transom, release["id"]) == "revoked"


def test_revoke_needs_an_id_or_filters_but_not_both(transom: Transom, broker: Broker) -> None:
    neither = transom("leases", "revoke")
    assert neither.exit_code == 2 and "give a LEASE_ID" in neither.output
    both = transom("leases", "revoke", "lse_x", "--policy", "deploy-prod")
    assert both.exit_code == 2 and "not both" in both.output
    no_reason = transom("leases", "revoke", "--policy", "deploy-prod", "--yes")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
