"""config/grafana/transom-dashboard.json queries only metrics a running broker exports: the API's /metrics
and a `transom worker`'s, after a lease was granted, expired and revoked and /readyz was asked.

Metrics are registered on first use, so names are taken from each family the output declares (a labelled
family is declared before its first sample). The ledger's metrics are declared by the scheduler already; the
break-glass counter (approvals work) is not yet, so the dashboard leaves it out for now.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from app.leases.models import LeaseStatus
from tests.e2e.scheduler.conftest import StartWorker
from tests.e2e.scheduler.worker_processes import wait_until
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.integration.scheduler.lease_seeding import load_lease
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port

pytestmark = pytest.mark.postgres

DASHBOARD = Path(__file__).resolve().parents[3] / "config" / "grafana" / "transom-dashboard.json"
# The series names each kind of family exposes (prometheus_client's text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def exported(metrics_text: str) -> set[str]:
    return {
        family.name + suffix
        for family in text_string_to_metric_families(metrics_text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def dashboard_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert queries, "the dashboard has no queries"
    return {name for query in queries for name in re.findall(r"\btransom_[a-z0-9_]+", query)}


@pytest.fixture
def api(postgres_url: str, vault: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(postgres_url, vault)
    yield app
    rt(app).engine.dispose()


def test_every_metric_the_dashboard_queries_is_exported(
    api: Flask, sessions: sessionmaker[Session], vault: OpenBaoServer, start_worker: StartWorker
) -> None:
    port = free_port()
    worker = start_worker("--metrics-port", str(port))
    worker.wait_for_log("sweeper started")
    with OidcIssuer() as issuer:
        broker = Broker.configured(api, create_broker_token(api, "admin"), issuer, vault)
        lease = broker.lease("prod-vault-token", ttl="5s")  # granted, then expired and revoked by the worker
        assert (
            broker.request_lease("prod-db-static", token=broker.ci_token(repo="acme/other")).status_code
            == 403
        )
    assert api.test_client().get("/readyz").status_code == 200
    assert wait_until(lambda: load_lease(sessions, lease["id"]).status == LeaseStatus.EXPIRED, timeout=15)

    from_api = exported(api.test_client().get("/metrics").get_data(as_text=True))
    from_worker = exported(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    missing = dashboard_metrics() - from_api - from_worker
    assert missing == set(), f"the dashboard queries metrics nothing exports: {sorted(missing)}"
    assert "transom_revocation_lag_seconds_bucket" in from_worker  # the worker's own were read, too
