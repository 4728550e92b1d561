"""Flame graphs of safemodel's hot paths, sampled by py-spy, into docs/flamegraphs/.

Each target runs in a child process (the penguins LogisticRegression pipeline of
``_pipelines``, one BLAS/OpenMP thread) that builds what it needs, then repeats one call;
py-spy attaches once the set-up is done, samples ``--seconds`` of the calls (aggregated
by function) and writes an SVG: open it in a browser to zoom and search. The tables
under "Profiles" in docs/performance.md give the same information as numbers.

Usage::

    .venv/bin/python benchmarks/flamegraphs.py            # needs py-spy (the bench extra)
    .venv/bin/python benchmarks/flamegraphs.py --only observe_10k --seconds 5
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "flamegraphs"

# name -> (what the child prepares, the call it repeats)
TARGETS = {
    "predict_proba_1": ("b = bundle; x = rows(X, 1)", "b.predict_proba(x)"),
    "predict_proba_10k": ("b = bundle; x = rows(X, 10_000)", "b.predict_proba(x)"),
    "load": ("path = tmp / 'm.safemodel'; bundle.save(path)", "sm.load(path)"),
    "observe_10k": ("x = rows(X, 10_000); m = sm.Monitor(bundle); p = bundle.predict_proba(x)",
                    "m.observe(x, scores=p)"),
}

CHILD = """
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {here!r})
from _pipelines import lr_pipeline, penguins, rows
from threadpoolctl import threadpool_limits
import safemodel as sm
X, y = penguins()
bundle = sm.ModelBundle.from_training(lr_pipeline(X, y), X, name="penguins")
threadpool_limits(1)
tmp = Path(tempfile.mkdtemp())
{setup}
{call}
print("ready", flush=True)
end = time.perf_counter() + {seconds} + 30  # py-spy stops first; the parent ends this
while time.perf_counter() < end:
    {call}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="per target")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS))
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy, or the bench extra)")
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for name in args.only or TARGETS:
        setup, call = TARGETS[name]
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(CHILD.format(here=str(HERE), setup=setup, call=call,
                                      seconds=args.seconds))
        svg = args.output / f"{name}.svg"
        child = subprocess.Popen([sys.executable, script.name], stdout=subprocess.PIPE,
                                 text=True, env=env)
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                print(f"{name}: the child failed before its calls (exit {child.wait()})")
                return 1
            # Blocking (py-spy pauses the child for each sample): --nonblocking lost half
            # the samples of the one-row call to errors (stacks changing while read).
            done = subprocess.run(
                [spy, "record", "--pid", str(child.pid), "--duration", str(args.seconds),
                 "--rate", str(args.rate), "--function", "--output", str(svg)],
                capture_output=True, text=True, check=False)
        finally:
            child.kill()
            child.wait()
            os.unlink(script.name)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            return done.returncode
        # The title py-spy writes is its own command line (paths of this machine).
        title = html.escape(f"safemodel, {name}: {call} ({args.seconds} s sampled)")
        svg.write_text(re.sub(r'(<text id="title"[^>]*>)[^<]*(</text>)',
                              lambda m, t=title: m.group(1) + t + m.group(2), svg.read_text(),
                              count=1))
        said = (done.stdout + done.stderr).strip().splitlines()
        print(f"{svg}: {svg.stat().st_size / 1024:.0f} KiB; {said[-1] if said else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
