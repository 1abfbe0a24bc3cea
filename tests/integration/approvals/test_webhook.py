"""The notification webhook, received by a local HTTP server: each notification once, from the worker's
delivery job, retried until a failing receiver recovers; no secret value or token in any body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from app.approvals.jobs import expire_due_approvals
from app.clock import FrozenClock
from app.notifications.delivery import deliver_due
from tests.integration.approvals.conftest import People, ask, require_approval
from tests.integration.conftest import make_app, rt
from tests.support.broker import Broker, policy_body


class Receiver:
    """Answers 500 to the first ``failures`` POSTs, then 200; keeps every body it was sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                text = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                receiver.raw.append(text)
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(text))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/transom"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    yield server
    server.close()


@pytest.fixture
def app(database_url: str, openbao: Any, receiver: Receiver) -> Iterator[Flask]:
    flask_app = make_app(database_url, openbao, notify_webhook_url=receiver.url)
    yield flask_app
    rt(flask_app).engine.dispose()


def _deliver_everything(broker: Broker, url: str) -> None:
    runtime = rt(broker.app)
    clock = FrozenClock(datetime.now(UTC))
    for _ in range(10):
        deliver_due(runtime.sessions, clock, url)
        clock.advance(timedelta(minutes=11))  # past any backoff


def test_each_notification_once_without_secrets_through_a_failing_receiver(
    broker: Broker, people: People, receiver: Receiver
) -> None:
    require_approval(broker, approval={"required": 1, "approvers": ["alice"], "timeout": "10s"})
    token = broker.ci_token()
    approved = ask(broker, token=token)
    people.decide("alice", approved["id"])
    lease = broker.request_lease("prod-vault-token", token, approval=approved["id"]).get_json()

    denied = ask(broker, "prod-db-static")
    people.decide("alice", denied["id"], "deny")
    expiring = ask(broker, "prod-db-static", broker.ci_token(environment="staging"))
    runtime = rt(broker.app)
    later = FrozenClock(datetime.now(UTC) + timedelta(seconds=11))
    assert expire_due_approvals(runtime.sessions, later, notify=True) == 1

    later_window = datetime.now(UTC) + timedelta(days=10)
    broker.create(
        "/v1/windows",
        {
            "name": "later",
            "timezone": "UTC",
            "schedule": {
                "type": "once",
                "start": later_window.isoformat(),
                "end": (later_window + timedelta(hours=1)).isoformat(),
            },
        },
    )
    glass = {"required": 1, "approvers": ["alice"], "max_ttl": "10m"}
    body = policy_body(windows=["later"], break_glass=glass)
    assert broker.admin("PUT", "/v1/policies/deploy-prod", body).status_code == 200
    other = broker.ci_token(run_id="999")
    exception = ask(broker, token=other, justification="prod down")
    people.decide("alice", exception["id"])
    glass_lease = broker.request_lease("prod-vault-token", other, approval=exception["id"]).get_json()
    assert glass_lease["bounded_by"] == "break_glass"

    assert receiver.raw == []  # nothing on the request path
    _deliver_everything(broker, receiver.url)

    events = [(b["event"], b["approval"]["id"]) for b in receiver.bodies]
    assert sorted(events) == sorted(
        [
            ("approval.requested", approved["id"]),
            ("approval.approved", approved["id"]),
            ("approval.requested", denied["id"]),
            ("approval.denied", denied["id"]),
            ("approval.requested", expiring["id"]),
            ("approval.expired", expiring["id"]),
            ("approval.requested", exception["id"]),
            ("approval.approved", exception["id"]),
            ("break_glass.granted", exception["id"]),
        ]
    )
    assert len(receiver.raw) == len(receiver.bodies) + 2  # the two refused attempts were retried
    assert all(body["text"] for body in receiver.bodies)
    granted = next(b for b in receiver.bodies if b["event"] == "break_glass.granted")
    assert granted["lease"]["id"] == glass_lease["id"] and "prod down" in granted["text"]
    secrets = [lease["data"]["token"], glass_lease["data"]["token"], token, other, *people.tokens.values()]
    secrets += list(
        broker.vault.client()
        .secrets.kv.v2.read_secret_version(path=broker.kv_path, raise_on_deleted_version=True)["data"]["data"]
        .values()
    )
    for raw in receiver.raw:
        for secret in secrets:
            assert secret not in raw
    metrics = broker.client.get("/metrics").get_data(as_text=True)
    assert 'transom_notifications_total{event="approval.requested",outcome="delivered"}' in metrics
    assert 'outcome="retrying"' in metrics
