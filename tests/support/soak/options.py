"""The soak's knobs: what it asks for, in what mix, and the bounds its checks hold the processes to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.leases.models import LeaseStatus
from tests.support.databases import PG_HOST, PG_PORT, PG_USER

PG_PARAMS: dict[str, Any] = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "dbname": "postgres"}

TTL_RANGE = (5, 30)  # seconds, for grants and renewals alike
SECRETS = {"kv": "soak-kv", "token": "soak-token", "dynamic": "soak-db"}
KIND_WEIGHTS = {"kv": 4, "token": 4, "dynamic": 2}
PLAN_WEIGHTS = {
    "expire": 30,  # nothing: the workers end it
    "release": 30,
    "renew-release": 15,
    "renew-expire": 10,
    "edge": 10,  # renew or release at expires_at ± 0.5 s: races the workers
    "revoke": 5,  # an admin revokes it
}
EDGE_JITTER = 0.5
# A renew or release sent this long before expires_at must not find the lease ended.
EARLY_MARGIN = 1.0
EXPECTED = {
    "issue": {201},
    "renew": {200, 409},
    "release": {200, 202, 409},
    "revoke": {200, 202, 409},
}
GUNICORN_WORKERS = 2
RSS_GROWTH_FRACTION = 0.5
RSS_GROWTH_FLOOR_KIB = 60 * 1024
RSS_SAMPLE_EVERY = 5.0
DRAIN_MARGIN = 15.0  # seconds beyond the last expiry plus a claim timeout
SETTLE_MARGIN = 2.0  # after everything has ended, before the checks
HTTP_TIMEOUT = 30.0
ENDED = tuple(s.value for s in LeaseStatus if s.ended)
LOG_ERROR_MARKERS = (
    "Traceback",
    " ERROR ",
    "[ERROR]",
    "[CRITICAL]",
    '"level": "ERROR"',
    '"level": "CRITICAL"',
)


@dataclass(frozen=True, slots=True)
class SoakOptions:
    duration: float = 1200.0  # seconds of load
    leases: int | None = None  # stop after this many lease requests (None: duration only)
    threads: int = 8
    kill_every: float = 180.0  # seconds between SIGKILLs of a worker (0: never)
    rate: float | None = None  # lease requests per second at most (None: as fast as the threads go)
    warmup: float | None = None  # seconds before the RSS baseline (None: a tenth of duration, 5..60)
    snapshot_every: float = 30.0  # seconds between Vault-vs-database snapshots during the load
    log_dir: Path | None = None  # process logs (None: a new temporary directory, kept)
    seed: int | None = None

    @property
    def warmup_seconds(self) -> float:
        if self.warmup is not None:
            return self.warmup
        return min(60.0, max(5.0, self.duration / 10))
