"""`make bench`: run every benchmark of scripts/ and write docs/BENCHMARKS.md.

Each benchmark measures its own baseline in the same run (direct OpenBao calls, bare PyJWT, bare zoneinfo)
and reports ratios: machines are shared and noisy, so medians and ratios, never absolute promises.
Set BENCH_QUICK=1 for smaller sizes (a smoke run); BENCH_ONLY=bench_issue.py re-runs one benchmark and
replaces only its section of the file (marked with the date of that run).

A section's written analysis survives a re-run: everything from a line ``<!-- kept by make bench -->`` to the
section's end is carried over below the new figures (it may then speak of older figures: it says which).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
ONLY = os.environ.get("BENCH_ONLY", "")
TARGET = ROOT / "docs" / "BENCHMARKS.md"
KEPT = "<!-- kept by make bench -->"

# (script, arguments, arguments when quick)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench_issue.py", ["--requests", "400", "--rounds", "3"], ["--quick"]),
    ("bench_revoke.py", [], ["--leases", "1000"]),
    ("bench_freeze.py", ["--leases", "10000"], ["--leases", "1000"]),
    ("bench_audit.py", [], ["--quick"]),
    ("bench_verify.py", [], []),
    ("bench_windows.py", [], ["--instants", "10000"]),
    ("bench_client_install.py", [], ["--runs", "2", "--no-server"]),
    ("bench_action.py", [], ["--runs", "5"]),
]


def machine_facts() -> str:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f"{total_kb / 1024 / 1024:.1f} GiB"
    return (
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {memory}\n"
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}\n"
    )


def run(script: str, arguments: list[str]) -> str:
    path = ROOT / "scripts" / script
    if not path.exists():
        return f"_{script} is not present._\n"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(path), *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - started
    command = f"PYTHONPATH=. .venv/bin/python scripts/{script} {' '.join(arguments)}".strip()
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        return (
            f"**{script} failed** (exit {result.returncode}):\n\n```\n{tail}\n```\n\nCommand: `{command}`\n"
        )
    output = result.stdout.strip()
    body = output if output.lstrip().startswith(("#", "|")) else f"```\n{output}\n```"
    return f"{body}\n\nCommand: `{command}` ({took:.0f} s)\n"


def kept_parts(text: str) -> dict[str, str]:
    """Each section's kept tail (from the ``KEPT`` line on), by its script's name."""
    kept = {}
    for part in text.split("\n## ")[1:]:
        name, _, body = part.partition("\n")
        start = body.find(KEPT)
        if start != -1:
            kept[name.strip()] = body[start:].rstrip() + "\n"
    return kept


def with_kept(section: str, kept: str | None) -> str:
    return section if kept is None else f"{section.rstrip()}\n\n{kept}"


def main() -> None:
    if ONLY:
        rerun_one(ONLY)
        return
    kept = kept_parts(TARGET.read_text()) if TARGET.exists() else {}
    sections = [
        f"# Benchmarks\n\nWritten by `make bench` ({'quick' if QUICK else 'full'} sizes).\n\n## Machine\n\n"
        f"{machine_facts()}"
    ]
    for script, arguments, quick_arguments in BENCHMARKS:
        print(f"running {script} ...", file=sys.stderr, flush=True)
        body = run(script, quick_arguments if QUICK else arguments)
        sections.append(with_kept(f"## {script}\n\n{body}", kept.get(script)))
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text("\n".join(sections))
    print(f"wrote {TARGET}", file=sys.stderr)


def rerun_one(script: str) -> None:
    entry = next((b for b in BENCHMARKS if b[0] == script), None)
    if entry is None or not TARGET.exists():
        raise SystemExit(f"BENCH_ONLY: {script!r} is not a benchmark, or {TARGET} does not exist yet")
    print(f"running {script} ...", file=sys.stderr, flush=True)
    body = run(script, entry[2] if QUICK else entry[1])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = TARGET.read_text()
    section = with_kept(
        f"{script}\n\n_Re-run alone on {when}, on the machine above._\n\n{body}", kept_parts(text).get(script)
    )
    parts = text.split("\n## ")  # parts[0] is the title and the machine
    replaced = [section if part.startswith(f"{script}\n") else part for part in parts]
    if replaced == parts:
        replaced.append(section)
    TARGET.write_text("\n## ".join(replaced))
    print(f"replaced the {script} section of {TARGET}", file=sys.stderr)


if __name__ == "__main__":
    main()
