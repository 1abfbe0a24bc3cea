"""Invariant 6 for configuration: every change through the API has its ledger event; a refused one none."""

from __future__ import annotations

from typing import Any

from tests.support.broker import Broker


def _events(broker: Broker) -> list[tuple[str, str | None]]:
    items = broker.admin("GET", "/v1/audit/events?limit=500").get_json()["items"]
    return [(e["action"], e["details"].get("name")) for e in reversed(items) if "." in e["action"]]


def _config_events(broker: Broker, before: int) -> list[tuple[str, str | None]]:
    return [e for e in _events(broker)[before:] if not e[0].startswith("lease.")]


def test_each_configuration_change_writes_its_event(broker: Broker) -> None:
    before = len(_events(broker))
    window = {
        "name": "nightly",
        "timezone": "UTC",
        "schedule": {"type": "cron", "cron": "0 1 * * *", "duration": "1h"},
    }
    freeze = {**window, "name": "audit-week", "reason": "audit"}
    steps: list[tuple[str, str, Any]] = [
        ("POST", "/v1/windows", window),
        ("PUT", "/v1/windows/nightly", {**window, "timezone": "Europe/Berlin"}),
        ("POST", "/v1/freezes", freeze),
        ("DELETE", "/v1/freezes/audit-week", None),
        ("POST", "/v1/secrets", {"name": "extra", "kind": "token", "policies": ["deploy-prod"]}),
        ("DELETE", "/v1/secrets/extra", None),
        ("POST", "/v1/tokens", {"name": "ops", "role": "auditor"}),
        ("DELETE", "/v1/tokens/ops", None),
        ("DELETE", "/v1/windows/nightly", None),
    ]
    for method, path, body in steps:
        assert broker.admin(method, path, body).status_code in (200, 201, 204), (method, path)
    assert _config_events(broker, before) == [
        ("window.created", "nightly"),
        ("window.updated", "nightly"),
        ("freeze.created", "audit-week"),
        ("freeze.deleted", "audit-week"),
        ("secret.created", "extra"),
        ("secret.deleted", "extra"),
        ("token.created", "ops"),
        ("token.deleted", "ops"),
        ("window.deleted", "nightly"),
    ]
    verified = broker.verified_log()
    assert verified["ok"] is True and verified["checked"] == verified["size"] > 0


def test_a_refused_change_writes_no_event(broker: Broker) -> None:
    before = len(_events(broker))
    assert broker.admin("DELETE", "/v1/issuers/github").status_code == 409  # in use by deploy-prod
    assert (
        broker.admin(
            "POST",
            "/v1/policies",
            {"name": "x", "issuer": "ghost", "secrets": ["s"], "windows": ["always"], "max_ttl": "1h"},
        ).status_code
        == 400
    )
    assert _config_events(broker, before) == []
