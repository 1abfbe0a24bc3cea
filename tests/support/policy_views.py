"""The decision core's usual policy, as unit tests of its rules build on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from app.decision.policy import PolicyView

DEPLOY_PROD = PolicyView(
    name="deploy-prod",
    issuer="github",
    secrets=("prod-db",),
    repositories=("acme/payments",),
    branches=("main",),
    tags=(),
    require_protected_ref=False,
    environments=(),
    runner_environments=(),
    runner_ids=(),
    events=None,
    windows=("always",),
    default_ttl=timedelta(minutes=15),
    max_ttl=timedelta(hours=1),
    max_active=None,
)


def policy_view(**changes: Any) -> PolicyView:
    """``deploy-prod``: acme/payments on main, always open, 15-minute leases, with ``changes``."""
    return replace(DEPLOY_PROD, **changes)
