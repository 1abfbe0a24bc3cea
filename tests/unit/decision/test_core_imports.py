"""The decision core depends on nothing else of Transom (docs/ARCHITECTURE.md, "The parts"): its rules stay
pure and testable alone, and the workload identity is a value of the core that ``app.identity`` builds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import app.decision

DECISION = Path(app.decision.__file__).parent
# Leaves the core may share with the rest: standard library only, no state (the one RFC 3339 formatter).
SHARED_LEAVES = {"app.instants"}


def _imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


def test_decision_modules_import_only_the_decision_package_of_transom() -> None:
    outside = {
        f"{path.name}: {module}"
        for path in sorted(DECISION.glob("*.py"))
        for module in _imported_modules(path)
        if (module == "app" or module.startswith("app."))
        and not module.startswith("app.decision")
        and module not in SHARED_LEAVES
    }
    assert outside == set()


def test_loading_the_decision_core_loads_no_other_transom_package() -> None:
    # A fresh interpreter: this test session has long since loaded app.identity and the rest.
    script = (
        "import importlib, pkgutil, sys\n"
        "import app.decision as core\n"
        "for info in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module(f'app.decision.{info.name}')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('app.'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=DECISION.parents[1]
    ).stdout.split()
    assert "app.decision.identity" in loaded
    assert [m for m in loaded if not m.startswith("app.decision") and m not in SHARED_LEAVES] == []
