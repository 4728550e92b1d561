"""Load every model of a folder into one fresh process; report time and resident memory.

``run.py`` starts one process per measurement, so resident memory is that of the
loaded models alone (after the imports and one warm-up load of the same kind)::

    python benchmarks/_loadmany.py KIND FOLDER     # prints one JSON object

KIND is ``joblib`` (``FOLDER/files/*.joblib``), ``floor`` (each ``joblib.load``
followed by one call of each scoring method on that bundle's golden rows, as the
estimator sees them: what a verified load cannot go below), ``safemodel`` (``sm.load``
of ``FOLDER/files/*.safemodel``) or ``store`` (``load_all(preload=True)`` of the
``BundleStore`` at ``FOLDER/store``, where every bundle is promoted to "production").
Times are wall clock (``seconds``) and this process's CPU time (``cpu_seconds``, the
one to compare on a machine other jobs keep busy).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "measure", "rss_bytes"]

KINDS = ("joblib", "floor", "safemodel", "store")


def rss_bytes() -> int | None:
    """Resident set size of this process (psutil, else /proc), or ``None``."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def load_store_all(root: Path, count: int) -> list[Any]:
    """Every bundle behind the store's "production" alias, loaded and verified now."""
    from safemodel.store.store import BundleStore

    store = BundleStore(root, max_loaded=count)  # the default cache keeps 16 loaded
    service = store.load_all(preload=True)
    return [service[name] for name in service]


def measure(kind: str, folder: Path) -> dict[str, Any]:
    import joblib

    import safemodel as sm

    files = folder / "files"
    if kind == "joblib":
        joblib.load(folder / "warmup.joblib")
        paths = sorted(files.glob("*.joblib"))

        def load() -> list[Any]:
            return [joblib.load(p) for p in paths]
    elif kind == "floor":
        from safemodel.core.methods import scoring_methods

        joblib.load(folder / "warmup.joblib")
        paths = sorted(files.glob("*.joblib"))
        # Prepared before the clock starts (their memory is not the models'): the rows
        # verification scores, after the policy.
        goldens = []
        for p in paths:
            bundle = sm.load(p.with_suffix(".safemodel"), verify=False)
            goldens.append(bundle.prepare(bundle.golden.inputs, invalid="drop").frame)
            del bundle

        def load() -> list[Any]:
            models = []
            for p, golden in zip(paths, goldens, strict=True):
                model = joblib.load(p)
                for method in scoring_methods(model):
                    getattr(model, method)(golden)
                models.append(model)
            return models
    elif kind == "safemodel":
        sm.load(folder / "warmup.safemodel")
        paths = sorted(files.glob("*.safemodel"))

        def load() -> list[Any]:
            return [sm.load(p) for p in paths]
    elif kind == "store":
        sm.load(folder / "warmup.safemodel")

        count = len(list(files.glob("*.safemodel")))

        def load() -> list[Any]:
            return load_store_all(folder / "store", count)
    else:
        raise SystemExit(f"unknown kind {kind!r}; expected one of {list(KINDS)}")
    gc.collect()
    before = rss_bytes()
    started, cpu_started = time.perf_counter(), time.process_time()
    models = load()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    gc.collect()
    after = rss_bytes()
    return {
        "kind": kind,
        "count": len(models),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_bytes": None if before is None or after is None else after - before,
    }


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    print(json.dumps(measure(sys.argv[1], Path(sys.argv[2]))))
