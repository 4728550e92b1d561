#!/usr/bin/env python3
"""What the pytest plugin's checks cost per bundle, beyond loading it.

    PYTHONPATH=src .venv/bin/python benchmarks/plugin.py [--rounds 5] [--examples 50]

Builds two penguins bundles (LogisticRegression and HistGradientBoosting pipelines)
in a temporary folder, then runs pytest on them in fresh processes, interleaved:

- ``all``: the five checks, as ``pytest --safemodel-bundles`` runs them;
- ``no robustness``: ``-k "not robustness"``;
- ``load only``: ``-k integrity`` (pytest, the plugin, and one load per bundle).

It prints the median CPU time of each run (children's rusage: on a shared machine wall
time measures the neighbours), the per-bundle cost beyond loading
(``(all - load only) / 2``), the wall time pytest reports per item
(``--durations``), and the load average. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {"all": [], "no robustness": ["-k", "not robustness"], "load only": ["-k", "integrity"]}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pytest(folder: Path, examples: int, *extra: str) -> tuple[float, float, str]:
    """CPU seconds, wall seconds and output of one pytest process."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--safemodel-bundles", "*.safemodel", "--safemodel-examples", str(examples),
               *extra]
    cpu, wall = _cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder, check=False)
    if done.returncode not in (0, 5):  # 5: -k selected nothing
        raise SystemExit(f"pytest failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return _cpu() - cpu, time.perf_counter() - wall, done.stdout


def _build(folder: Path) -> None:
    sys.path.insert(0, str(HERE))
    from _pipelines import hgb_pipeline, lr_pipeline, penguins

    import safemodel as sm

    X, y = penguins()
    for name, make in (("lr", lr_pipeline), ("hgb", hgb_pipeline)):
        bundle = sm.ModelBundle.from_training(make(X, y), X, name=f"penguins-{name}",
                                              version="1.0.0")
        bundle.save(folder / f"{name}.safemodel")
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(_CPU_PER_ITEM)


# Process CPU seconds per item (its call phase), written where $CPU_PER_ITEM says.
_CPU_PER_ITEM = """
import os, time, pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    started = time.process_time()
    try:
        return (yield)
    finally:
        if os.environ.get("CPU_PER_ITEM"):
            with open(os.environ["CPU_PER_ITEM"], "a") as fh:
                fh.write(f"{time.process_time() - started} {item.nodeid}\\n")
"""


def _durations(output: str) -> dict[str, float]:
    """Wall seconds per item, from ``--durations=0`` (setup and teardown are ~0)."""
    found: dict[str, float] = {}
    for seconds, item in re.findall(r"^([\d.]+)s call\s+(\S+)$", output, re.MULTILINE):
        found[item] = float(seconds)
    return found


def _cpu_per_item(path: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        seconds, item = line.split(" ", 1)
        found.setdefault(item, []).append(float(seconds))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--examples", type=int, default=50,
                        help="--safemodel-examples of every run (default: the plugin's 50)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        os.environ["SAFEMODEL_HOME"] = str(folder / "home")  # builds and runs alike
        _build(folder)
        _pytest(folder, args.examples)  # warm the page cache and bytecode
        os.environ["CPU_PER_ITEM"] = str(folder / "cpu-per-item.txt")
        cpu: dict[str, list[float]] = {run: [] for run in RUNS}
        wall: dict[str, list[float]] = {run: [] for run in RUNS}
        loads = []
        names = list(RUNS)
        for r in range(args.rounds):
            for i in range(len(names)):
                run = names[(r + i) % len(names)]
                c, w, _ = _pytest(folder, args.examples, *RUNS[run])
                cpu[run].append(c)
                wall[run].append(w)
            loads.append(os.getloadavg()[0])
        per_item = _cpu_per_item(folder / "cpu-per-item.txt")
        _, _, output = _pytest(folder, args.examples, "--durations=0", "-vv")
    print(f"{args.rounds} rounds, --safemodel-examples {args.examples}, load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    print("| run | CPU s (median) | CPU s (min-max) | wall s (median) |")
    print("| --- | --- | --- | --- |")
    for run in RUNS:
        print(f"| {run} | {statistics.median(cpu[run]):.2f} | {min(cpu[run]):.2f}-"
              f"{max(cpu[run]):.2f} | {statistics.median(wall[run]):.2f} |")
    beyond = [(a - b) / 2 for a, b in zip(cpu["all"], cpu["load only"], strict=True)]
    robust = [(a - b) / 2 for a, b in zip(cpu["all"], cpu["no robustness"], strict=True)]
    print(f"\nper bundle beyond loading: median CPU {statistics.median(beyond):.2f} s "
          f"(paired rounds {min(beyond):.2f}-{max(beyond):.2f}); of which robustness "
          f"{statistics.median(robust):.2f} s")
    print("\nper item: median process CPU s over every run that ran it; wall s of one run")
    wall_of = _durations(output)
    for item, seconds in sorted(per_item.items()):
        wall_s = wall_of.get(item, float("nan"))
        print(f"  {statistics.median(seconds):6.2f}  {wall_s:6.2f}  {item}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
