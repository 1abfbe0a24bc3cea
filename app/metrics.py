"""The scheduler's Prometheus metrics, in the default registry (served by the worker's ``--metrics-port`` and,
in embedded mode, by the API's ``/metrics``).

They are registered on first use, not at import: a process that runs no scheduler (a gunicorn worker without
the embedded scheduler) then shows no ``transom_leases_overdue 0`` that nobody keeps up to date.

Labels are an error class or a policy name, both configuration vocabulary; never a lease id, an identity
or anything from a secret (invariant 4).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# Lag from a lease's expires_at to Vault's confirmed revocation: sub-second when all is well, minutes when
# Vault was down and the retries are backing off.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0, 3600.0)
# Commit to integration into the log: a few hundred milliseconds while the sequencer keeps up.
INTEGRATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.revocation_lag = Histogram(
            "transom_revocation_lag_seconds",
            "Seconds from a lease's expires_at to Vault's confirmation of its revocation (expiries only).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.leases_overdue = Gauge(
            "transom_leases_overdue",
            "Leases past their expires_at whose revocation Vault has not confirmed yet (active or revoking).",
            registry=registry,
        )
        self.revocations_failed = Counter(
            "transom_revocations_failed",
            "Revocation attempts at Vault that failed, by the adapter's error class.",
            ["error_class"],
            registry=registry,
        )
        self.leases_active = Gauge(
            "transom_leases_active",
            "Active leases by policy.",
            ["policy"],
            registry=registry,
        )
        # The ledger's sequencer (docs/ARCHITECTURE.md, "The ledger").
        self.ledger_pending = Gauge(
            "transom_ledger_pending_events",
            "Committed audit events the sequencer has not integrated into the log yet.",
            registry=registry,
        )
        self.ledger_size = Gauge(
            "transom_ledger_size",
            "Entries integrated into the log (its tree size).",
            registry=registry,
        )
        self.ledger_integration_delay = Histogram(
            "transom_ledger_integration_delay_seconds",
            "Seconds from an audit event's time to its integration into the log.",
            buckets=INTEGRATION_BUCKETS,
            registry=registry,
        )
        self.ledger_checkpoint_age = Gauge(
            "transom_ledger_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint was published.",
            registry=registry,
        )
        self.ledger_unsigned_entries = Gauge(
            "transom_ledger_unsigned_entries",
            "Integrated entries that no signed checkpoint covers yet (grows while Vault cannot sign).",
            registry=registry,
        )
        self.ledger_signing_failures = Counter(
            "transom_ledger_signing_failures",
            "Checkpoints Vault's transit engine did not sign, by the adapter's error class.",
            ["error_class"],
            registry=registry,
        )
        self.jwks_refresh_failing = Gauge(
            "transom_jwks_refresh_failing",
            "1 while the latest due refresh of an issuer's signing keys failed, 0 once one succeeded.",
            ["issuer"],
            registry=registry,
        )
        self._policies: set[str] = set()
        self._issuers: set[str] = set()
        self._lock = threading.Lock()

    def set_active_by_policy(self, counts: Mapping[str, int]) -> None:
        """Set every policy's count; a policy that no longer exists drops out of the output."""
        with self._lock:
            for policy in self._policies - set(counts):
                self.leases_active.remove(policy)
            for policy, count in counts.items():
                self.leases_active.labels(policy=policy).set(count)
            self._policies = set(counts)

    def set_jwks_refreshes(self, outcomes: Mapping[str, bool | None]) -> None:
        """Issuer name → whether its due refresh failed (None: none was due, the last value stands); an
        issuer no longer registered drops out of the output."""
        with self._lock:
            for issuer in self._issuers - set(outcomes):
                self.jwks_refresh_failing.remove(issuer)
            for issuer, failed in outcomes.items():
                if failed is not None or issuer not in self._issuers:
                    self.jwks_refresh_failing.labels(issuer=issuer).set(int(bool(failed)))
            self._issuers = set(outcomes)


_instance: SchedulerMetrics | None = None
_instance_lock = threading.Lock()


def scheduler_metrics() -> SchedulerMetrics:
    """The process's scheduler metrics, registered in the default registry on first use."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = SchedulerMetrics()
        return _instance
