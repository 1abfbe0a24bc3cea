"""`transom audit verify|export`: the chain checked on the broker, the events downloaded."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import Flask

from tests.integration.admin.conftest import Transom
from tests.integration.conftest import rt
from tests.support.broker import Broker


def test_verify_reports_an_intact_chain(transom: Transom, broker: Broker) -> None:
    broker.lease("prod-db-static")
    result = transom("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    assert "event(s) checked, head " in result.output


def test_verify_fails_naming_the_first_bad_event(transom: Transom, broker: Broker, app: Flask) -> None:
    broker.lease("prod-db-static")
    with rt(app).engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # past the append-only trigger, as an intruder would be
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql("UPDATE audit_events SET action = 'lease.forged' WHERE id = 3")
    result = transom("audit", "verify")
    assert result.exit_code == 1
    assert "NOT OK: the chain breaks at event 3" in result.output


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
