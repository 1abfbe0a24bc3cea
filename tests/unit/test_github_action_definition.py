"""The GitHub Action's definition (action.yml) and code: a JavaScript action on the runner's Node 20 with a
post step that always runs, the inputs and outputs the README documents, nothing but Node's standard library,
and the same refused variable names as the Python client."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import yaml

from app.client import envguard
from app.settings import PROJECT_ROOT

ACTION = PROJECT_ROOT / "action.yml"
CODE = PROJECT_ROOT / "action"


def test_a_node20_action_whose_post_step_always_runs() -> None:
    action = yaml.safe_load(ACTION.read_text())

    assert action["runs"] == {
        "using": "node20",
        "main": "action/main.mjs",
        "post": "action/post.mjs",
        "post-if": "always()",
    }
    assert set(action["inputs"]) == {"url", "audience", "secrets", "ttl", "env-prefix"}
    assert {name for name, spec in action["inputs"].items() if spec.get("required")} == {
        "url",
        "audience",
        "secrets",
    }
    assert set(action["outputs"]) == {"lease-ids", "expires-at"}
    assert (CODE / "main.mjs").is_file() and (CODE / "post.mjs").is_file()


def test_the_code_imports_only_node_builtins_and_itself() -> None:
    imported = {
        source: re.findall(r'^import .*? from "([^"]+)";', path.read_text(), re.MULTILINE)
        for path in CODE.rglob("*.mjs")
        for source in [str(path.relative_to(PROJECT_ROOT))]
    }
    outside = {
        source: [m for m in modules if not m.startswith(("node:", "./"))]
        for source, modules in imported.items()
    }
    assert all(not modules for modules in outside.values()), outside
    assert not any((where / "node_modules").exists() for where in (PROJECT_ROOT, CODE))


def test_the_action_refuses_the_names_the_python_client_refuses() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is missing: make system-deps installs it"
    script = 'import("./action/lib/envguard.mjs").then((m) => console.log(JSON.stringify(m.DANGEROUS)))'
    done = subprocess.run(
        [node, "-e", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    exact, prefixes = {}, {}
    for why, names in json.loads(done.stdout):
        for name in names:
            (prefixes if name.endswith("*") else exact)[name.rstrip("*")] = why

    assert exact == envguard._EXACT
    assert prefixes == envguard._PREFIXES
