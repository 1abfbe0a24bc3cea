"""What the GitHub Action's steps cost a job, beside the direct API calls they make.

    PYTHONPATH=. .venv/bin/python scripts/bench_action.py [--runs N]

One broker (the app served by werkzeug in this process, SQLite), the real OpenBao and a GitHub-like ID token
endpoint minting real tokens from the test issuer, all on loopback. Each run leases the KV secret
``prod-db-static``. Timed, each the median and 90th percentile of N runs:

- direct API calls: fetch the ID token, `POST /v1/leases` (Python requests, from this running process);
- the action's main step end to end: `node action/main.mjs` as the runner starts it (inputs, token, lease,
  masks, GITHUB_ENV/OUTPUT/STATE), from spawn to exit;
- the action's post step (release), likewise;
- `transom lease request --format github-env`, the Python client doing the same job, from spawn to exit;
- `node -e ""`: Node's own start-up, which every step pays.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support

from tests.e2e.live_ci_broker import live_ci_broker  # noqa: E402
from tests.integration.client.conftest import LiveBroker  # noqa: E402
from tests.support.databases import SqliteDatabases  # noqa: E402
from tests.support.openbao import OpenBaoServer  # noqa: E402

SECRET = "prod-db-static"


def timed(action: Callable[[], None], runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        took.append((time.perf_counter() - started) * 1000)
    return took


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]


class Bench:
    def __init__(self, live: LiveBroker, workdir: Path) -> None:
        self.live = live
        self.workdir = workdir
        self.node = shutil.which("node") or "node"
        self.released: list[str] = []

    def token(self) -> str:
        url = f"{self.live.github.url}&audience={self.live.broker.issuer.audience}"
        answer = requests.get(url, headers={"Authorization": f"Bearer {self.live.github.bearer}"}, timeout=10)
        answer.raise_for_status()
        value: str = answer.json()["value"]
        return value

    def release(self, lease_id: str) -> None:
        answer = requests.post(
            f"{self.live.url}/v1/leases/{lease_id}/release",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text

    def direct(self) -> None:
        answer = requests.post(
            f"{self.live.url}/v1/leases",
            json={"secret": SECRET},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        self.released.append(answer.json()["id"])

    def step_env(self, state: dict[str, str] | None = None) -> dict[str, str]:
        files = {}
        for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE"):
            path = self.workdir / name.lower()
            path.write_text("")
            files[name] = str(path)
        return {
            "PATH": os.environ["PATH"],
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.live.github.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.live.github.bearer,
            "INPUT_URL": self.live.url,
            "INPUT_AUDIENCE": self.live.broker.issuer.audience,
            "INPUT_SECRETS": SECRET,
            **files,
            **{f"STATE_{k}": v for k, v in (state or {}).items()},
        }

    def main_step(self) -> dict[str, str]:
        env = self.step_env()
        done = subprocess.run(
            [self.node, str(ROOT / "action" / "main.mjs")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        state = Path(env["GITHUB_STATE"]).read_text()
        return {
            "url": self.live.url,
            "audience": self.live.broker.issuer.audience,
            "lease_ids": heredoc_value(state, "lease_ids"),
        }

    def post_step(self, state: dict[str, str]) -> None:
        done = subprocess.run(
            [self.node, str(ROOT / "action" / "post.mjs")],
            env=self.step_env(state),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0 and "released" in done.stdout, done.stdout + done.stderr

    def python_client(self) -> None:
        github_env = self.workdir / "client_env"
        github_env.write_text("")
        env = {**self.live.env(), "GITHUB_ENV": str(github_env), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "lease",
                "request",
                "--secret",
                SECRET,
                "--format",
                "github-env",
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=self.workdir,
        )
        assert done.returncode == 0, done.stderr
        self.released.append(heredoc_value(github_env.read_text(), "TRANSOM_LEASE_IDS"))

    def node_startup(self) -> None:
        subprocess.run([self.node, "-e", ""], check=True)

    def release_all(self) -> None:
        while self.released:
            self.release(self.released.pop())


def heredoc_value(text: str, name: str) -> str:
    """The one-line value of ``name`` in a GITHUB_ENV/GITHUB_STATE file written in heredoc form."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{name}<<"):
            return lines[index + 1]
    raise AssertionError(f"no {name} in the file")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request otherwise

    with tempfile.TemporaryDirectory(prefix="bench-action-") as tmp:
        workdir = Path(tmp)
        vault = OpenBaoServer(log_dir=workdir)
        vault.ensure_baseline(None)
        try:
            with live_ci_broker(SqliteDatabases(workdir).fresh(), vault, workdir) as live:
                bench = Bench(live, workdir)
                bench.direct()  # warm: JWKS fetched, connections made, code loaded
                bench.release_all()
                results: dict[str, list[float]] = {}
                results["direct"] = timed(bench.direct, args.runs)
                bench.release_all()
                states: list[dict[str, str]] = []
                results["main"] = timed(lambda: states.append(bench.main_step()), args.runs)
                results["post"] = timed(lambda: bench.post_step(states.pop()), args.runs)
                results["client"] = timed(bench.python_client, args.runs)
                bench.release_all()
                results["node"] = timed(bench.node_startup, args.runs)
        finally:
            vault.stop()

    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    rows = [
        ("direct API calls: ID token + `POST /v1/leases` (Python requests, in process)", "direct"),
        ("the action's main step, end to end (`node action/main.mjs`)", "main"),
        ("the action's post step, end to end (`node action/post.mjs`: release)", "post"),
        ("`transom lease request --format github-env` (Python client process)", "client"),
        ("`node -e ''` (Node's start-up alone)", "node"),
    ]
    print("### The GitHub Action's steps vs the direct API call\n")
    print(
        f"One lease of a KV secret per run, median and 90th percentile of {args.runs} runs; broker "
        f"(werkzeug, SQLite), OpenBao and the ID token endpoint on this machine; Node {node_version}.\n"
    )
    print("| what | median ms | p90 ms |")
    print("|---|---:|---:|")
    for label, key in rows:
        print(f"| {label} | {statistics.median(results[key]):.0f} | {p90(results[key]):.0f} |")
    overhead = statistics.median(results["main"]) - statistics.median(results["direct"])
    print(
        f"\nThe main step costs {overhead:.0f} ms more than the direct calls (median against median), "
        f"of which Node's start-up is {statistics.median(results['node']):.0f} ms.\n"
    )
    print("Reproduce: `PYTHONPATH=. .venv/bin/python scripts/bench_action.py`")


if __name__ == "__main__":
    main()
