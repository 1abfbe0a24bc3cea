"""`transom audit verify --server|export`: the log checked on the broker too, the events downloaded."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import Flask

from tests.integration.admin.conftest import Transom
from tests.integration.conftest import rt
from tests.support.broker import Broker


def _settled_key(broker: Broker) -> str:
    """The log brought up to date and signed; the key an auditor pins."""
    assert broker.verified_log()["ok"] is True
    return str(broker.admin("GET", "/v1/audit/key").get_json()["verifier_key"])


def test_verify_with_the_server_check_reports_an_intact_log(transom: Transom, broker: Broker) -> None:
    broker.lease("prod-db-static")
    result = transom("audit", "verify", "--key", _settled_key(broker), "--server")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: checkpoint of size ")
    assert "ok: the broker recomputed " in result.output


def test_verify_with_the_server_check_names_the_first_bad_position(
    transom: Transom, broker: Broker, app: Flask
) -> None:
    broker.lease("prod-db-static")
    key = _settled_key(broker)
    with rt(app).engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # past the append-only trigger, as an intruder would be
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        event_id = connection.exec_driver_sql(
            "SELECT event_id FROM ledger_leaves WHERE log_index = 2"
        ).scalar()
        connection.exec_driver_sql(f"UPDATE audit_events SET action = 'lease.forged' WHERE id = {event_id}")
    result = transom("audit", "verify", "--key", key, "--server")
    assert result.exit_code == 1
    assert "NOT OK: the broker's own verification fails at position 2" in result.output


def test_export_streams_the_filtered_events(transom: Transom, broker: Broker, tmp_path: Path) -> None:
    lease = broker.lease("prod-db-static")
    target = tmp_path / "granted.jsonl"
    result = transom(
        "audit", "export", "--format", "jsonl", "--action", "lease.granted", "--output", str(target)
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(e["action"], e["lease_id"]) for e in events] == [("lease.granted", lease["id"])]
    assert not (tmp_path / "granted.jsonl.partial").exists()

    as_csv = transom("audit", "export", "--policy", "deploy-prod")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert "lease.granted" in {row["action"] for row in rows}
    assert all(lease["data"]["db_password"] not in out for out in (target.read_text(), as_csv.output))


def test_a_failed_export_leaves_no_file(transom: Transom, broker: Broker, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = transom("audit", "export", "--after", "not-a-time", "--output", str(target))
    assert result.exit_code == 1
    assert "(400)" in result.output and "after" in result.output
    assert list(tmp_path.iterdir()) == []
