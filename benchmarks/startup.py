#!/usr/bin/env python3
"""What the pytest plugin costs a pytest run that collects no bundle.

    PYTHONPATH=src .venv/bin/python benchmarks/startup.py [--rounds 15]

The ``pytest11`` entry point imports ``safemodel.integrations.pytest_plugin`` in every
pytest run of an environment where safemodel is installed. This runs pytest on one
trivial test in a fresh folder, with the plugin (the default) and without it
(``-p no:safemodel``), alternating, in fresh processes; it prints the median of the
paired differences of their CPU time, and the modules the plugin's import pulls in
(``python -X importtime``). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pytest(folder: Path, *extra: str) -> float:
    """CPU seconds of one pytest process: on a shared machine, wall time measures the
    neighbours."""
    started = _cpu()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra,
                    str(folder)], check=True, capture_output=True, cwd=folder)
    return _cpu() - started


def import_cost() -> tuple[float, list[tuple[int, str]]]:
    """Milliseconds the plugin's own import adds after pytest's, and its heaviest modules."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import pytest; import safemodel.integrations.pytest_plugin"],
        check=True, capture_output=True, text=True)
    rows = []
    for line in run.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[1].strip().isdigit():
            rows.append((int(fields[1]), fields[2].rstrip()))
    top = rows[-1][0]  # the plugin, imported last, includes everything it pulled in
    return top / 1000, sorted(rows, reverse=True)[:8]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        _pytest(folder)  # warm the page cache
        diffs, with_, without = [], [], []
        for _ in range(args.rounds):
            a = _pytest(folder)
            b = _pytest(folder, "-p", "no:safemodel")
            with_.append(a)
            without.append(b)
            diffs.append(a - b)
    print(f"pytest run, plugin active: median CPU {statistics.median(with_) * 1000:.0f} ms")
    print(f"pytest run, -p no:safemodel: median CPU {statistics.median(without) * 1000:.0f} ms")
    print(f"added by the plugin: median of paired differences "
          f"{statistics.median(diffs) * 1000:.0f} ms ({args.rounds} pairs)")
    ms, top = import_cost()
    print(f"python -X importtime: the plugin's import adds {ms:.1f} ms after pytest's")
    for cum, module in top:
        print(f"  {cum / 1000:8.1f} ms  {module.strip()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
