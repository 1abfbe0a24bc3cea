"""The GitHub Action's tests (tests/action/*.test.mjs) under Node's own test runner, against a live broker,
the real OpenBao and the suite's OIDC issuer: this starts them, hands their addresses to `node --test` and
fails with its report when any test fails. The Node tests imitate the runner (README, "In GitHub Actions")."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from app.settings import PROJECT_ROOT
from tests.integration.client.conftest import LiveBroker

pytestmark = [pytest.mark.vault, pytest.mark.slow]

NODE_TESTS = sorted((PROJECT_ROOT / "tests" / "action").glob("*.test.mjs"))


def test_the_action_under_node_test(live: LiveBroker) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is missing: make system-deps installs it"
    assert NODE_TESTS, "no tests/action/*.test.mjs"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "TRANSOM_TEST_URL": live.url,
        "TRANSOM_TEST_ADMIN_TOKEN": live.broker.admin_token,
        "TRANSOM_TEST_AUDIENCE": live.broker.issuer.audience,
        "TRANSOM_TEST_ID_TOKEN_URL": live.github.url,
        "TRANSOM_TEST_ID_TOKEN_BEARER": live.github.bearer,
        "TRANSOM_TEST_VAULT_ADDR": live.vault.addr,
        "TRANSOM_TEST_VAULT_TOKEN": live.vault.root_token,
    }

    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *map(str, NODE_TESTS)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = dict(line[2:].split(" ", 1) for line in done.stdout.splitlines() if line.startswith("# "))
    assert summary.get("fail") == "0" and int(summary.get("pass", "0")) > 0, done.stdout[-3000:]
