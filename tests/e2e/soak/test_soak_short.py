"""The soak in its short form: a minute of mixed lease load on two API servers and two workers, one of them
SIGKILLed every 20 s, then every check of `make soak` (scripts/soak.py runs the same code for 20 minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.soak import SoakOptions, run_soak

pytestmark = [pytest.mark.postgres, pytest.mark.vault, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_a_minute_of_mixed_leases_with_a_worker_killed_leaves_nothing_behind(
    postgres: dict[str, Any], tmp_path: Path
) -> None:
    report = run_soak(SoakOptions(duration=60, threads=8, kill_every=20, snapshot_every=15, log_dir=tmp_path))
    print(report.render())
    assert report.kills >= 2  # the kills happened under load
    assert sum(report.stats.granted_by_kind[k] > 0 for k in ("kv", "token", "dynamic")) == 3
    assert report.ok, report.render()
