"""The soak's result: the figures and the checks, rendered as Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support.soak.checks import Check, DatabaseFigures
from tests.support.soak.load import Stats
from tests.support.soak.options import (
    EXPECTED,
    GUNICORN_WORKERS,
    KIND_WEIGHTS,
    PLAN_WEIGHTS,
    TTL_RANGE,
    SoakOptions,
)
from tests.support.soak.rss import RssTracker


@dataclass
class SoakReport:
    options: SoakOptions
    seed: int
    log_dir: Path
    load_seconds: float = 0.0
    baseline_seconds: float = 0.0  # into the load when the RSS baseline was taken
    drain_seconds: float = 0.0
    stats: Stats = field(default_factory=Stats)
    database: DatabaseFigures | None = None
    rss: RssTracker = field(default_factory=RssTracker)
    victim: str = "worker-2"
    kills: int = 0
    snapshots: int = 0
    snapshot_credentials: int = 0
    end_alive: int = 0
    end_accessors: int = 0
    checks: list[Check] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return self.aborted is None and bool(self.checks) and all(c.ok for c in self.checks)

    def render(self) -> str:
        o, s = self.options, self.stats
        out = [
            "# Transom soak",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M}Z. 2 x `transom serve` (gunicorn, {GUNICORN_WORKERS} workers "
            f"each) and 2 x `transom worker` on one PostgreSQL, a private OpenBao, the test OIDC issuer. "
            f"{o.threads} client threads, TTLs {TTL_RANGE[0]}-{TTL_RANGE[1]} s, one worker SIGKILLed every "
            f"{o.kill_every:.0f} s, seed {self.seed}. Logs: `{self.log_dir}`.",
            "",
        ]
        if self.aborted:
            out += [f"**Aborted:** {self.aborted}", ""]
        granted = sum(s.granted_by_kind.values())
        requests_total = sum(s.statuses.values())
        load = max(self.load_seconds, 1e-9)
        out += [
            "## Load",
            "",
            f"- load {self.load_seconds:.0f} s (RSS baseline after {self.baseline_seconds:.0f} s), "
            f"then {self.drain_seconds:.0f} s for the workers to end the rest",
            f"- leases granted: {granted} ({granted / load:.1f}/s): "
            + ", ".join(f"{k} {s.granted_by_kind[k]}" for k in KIND_WEIGHTS),
            f"- requests: {requests_total} ({requests_total / load:.1f}/s); by API process: "
            + ", ".join(f"{api} {n}" for api, n in sorted(s.requests_by_api.items()))
            + "; leases granted by "
            + ", ".join(f"{api} {n}" for api, n in sorted(s.granted_by_api.items())),
            "- plans: " + ", ".join(f"{p} {s.plans[p]}" for p in PLAN_WEIGHTS),
            f"- renew/release at the instant of expiry answered 409 (correctly): {s.edge_conflicts}",
            f"- worker kills (SIGKILL + restart): {self.kills}",
            f"- Vault snapshots during the load: {self.snapshots} "
            f"({self.snapshot_credentials} live credentials compared with the database)",
            "",
            "| operation | requests | statuses | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        for op in EXPECTED:
            times = sorted(s.latencies.get(op, []))
            if not times:
                continue
            codes = ", ".join(f"{code}: {n}" for (o_, code), n in sorted(s.statuses.items()) if o_ == op)
            out.append(
                f"| {op} | {len(times)} | {codes} | {_pct(times, 0.5) * 1000:.0f} | "
                f"{_pct(times, 0.99) * 1000:.0f} | {times[-1] * 1000:.0f} |"
            )
        if self.database is not None:
            db = self.database
            lags = db.expiry_lags
            out += [
                "",
                "## End state (database)",
                "",
                "- leases by status: " + ", ".join(f"{k} {v}" for k, v in sorted(db.by_status.items())),
                "- by end reason: " + ", ".join(f"{k} {v}" for k, v in sorted(db.by_end_reason.items())),
                f"- ledger events: {db.events}",
            ]
            if lags:
                out.append(
                    f"- expiry lag (ended_at - expires_at) of {len(lags)} expired leases: "
                    f"p50 {_pct(lags, 0.5):.2f} s, p99 {_pct(lags, 0.99):.2f} s, max {lags[-1]:.2f} s"
                )
            out.append(
                f"- at the end OpenBao held {self.end_alive} Transom credentials "
                f"({self.end_accessors} token accessors looked up)"
            )
        out += [
            "",
            "## RSS (MiB)",
            "",
            "| process | start | end | max | growth | bound |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rss.rows.values():
            note = ""
            if row.last_pid != row.start_pid:
                note = (
                    f" (restarted {self.kills}x; end = newest)" if row.name == self.victim else " (new PID!)"
                )
            out.append(
                f"| {row.name}{note} | {row.start_kib / 1024:.1f} | {row.last_kib / 1024:.1f} | "
                f"{row.max_kib / 1024:.1f} | {row.growth_kib / 1024:+.1f} "
                f"({row.growth_kib / max(row.start_kib, 1) * 100:+.0f} %) | {row.bound_kib / 1024:.0f} |"
            )
        out += ["", "## Checks", "", "| check | result | detail |", "|---|---|---|"]
        for check in self.checks:
            detail = check.detail.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {check.name} | {'ok' if check.ok else '**FAIL**'} | {detail} |")
        if self.evidence:
            out += ["", "## Leases that failed a check or surprised a client", ""]
            out += [f"- {story}" for story in self.evidence]
        out += ["", f"**{'PASS' if self.ok else 'FAIL'}**"]
        return "\n".join(out)


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
