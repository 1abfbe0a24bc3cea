"""`make bench` rewrites a benchmark's figures in docs/BENCHMARKS.md and keeps the analysis written below."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import run_benchmarks

DOC = """# Benchmarks

## Machine

- date: then

## bench_issue.py

old figures

<!-- kept by make bench -->

### What stands between the figures and the targets

written by hand

## bench_verify.py

old verify figures
"""


@pytest.fixture
def document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text(DOC)
    monkeypatch.setattr(run_benchmarks, "TARGET", target)
    monkeypatch.setattr(run_benchmarks, "run", lambda script, _arguments: f"new figures of {script}\n")
    return target


def test_a_rerun_replaces_the_figures_and_keeps_the_written_analysis(document: Path) -> None:
    run_benchmarks.rerun_one("bench_issue.py")

    text = document.read_text()
    issue = text.split("\n## bench_issue.py\n", 1)[1].split("\n## ", 1)[0]
    assert "old figures" not in issue and "new figures of bench_issue.py" in issue
    assert (
        issue.index("new figures")
        < issue.index("<!-- kept by make bench -->")
        < issue.index("written by hand")
    )
    assert "old verify figures" in text  # the other sections are left alone


def test_a_section_without_the_marker_is_replaced_whole(document: Path) -> None:
    run_benchmarks.rerun_one("bench_verify.py")

    text = document.read_text()
    assert "old verify figures" not in text and "new figures of bench_verify.py" in text
    assert text.count("written by hand") == 1
