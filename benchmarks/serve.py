#!/usr/bin/env python3
"""Latency of a served model against a raw-estimator endpoint, each in its own process.

    PYTHONPATH=src .venv/bin/python benchmarks/serve.py                # about 5 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --quick
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --raw-json orjson
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --mlflow /tmp/mlflow-venv/bin/python
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --observer     # drift worker, ~1 min

Three processes: the served server (``safemodel.serve.create_app`` over a store holding
the penguins logistic regression), the raw server, and the client (this process). Both
servers are the same stack (FastAPI on one uvicorn worker, 127.0.0.1, access logs off);
the raw endpoint does what a hand-written one does: parse the JSON body (``json.loads``,
as ``Request.json()``; ``--raw-json orjson`` for ``orjson.loads``/``dumps``), build a
DataFrame from the records, call ``estimator.predict_proba`` in the thread pool (like
the served endpoint), and answer the same class-labelled ``predictions`` without
safemodel's extra fields (identity, method, classes, policy report).

The client sends the same payload to both, alternating A/B then B/A, sequentially, so a
slow moment of the shared machine hits both alike. Per round it takes ``--pairs`` pairs
or ``--round-seconds`` seconds, whichever ends first, and records the served/raw ratio
of the p50s and of the p90s and the load average; the summary is the median (and range)
of the round ratios. ``--mlflow PYTHON`` adds a third server, ``mlflow models serve``
(MLflow's FastAPI/uvicorn scoring server, one worker) over the same fitted pipeline
saved with ``mlflow.sklearn.save_model(..., pyfunc_predict_fn="predict_proba")``
(cloudpickle, as a bundle's estimator) and an inferred signature, run by a Python that
has mlflow (its own venv, with the same scikit-learn and pandas), telemetry off; it gets
the same records as
``{"dataframe_records": [...]}``.

``--observer`` measures the drift worker instead, in this process: the CPU time it takes
to observe a backlog of one-row request batches (frames built from JSON records, as the
server builds them, with their ``predict_proba`` scores), joining waiting batches (the
default) against one call per batch (``batch_rows=1``), interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request  # module level: the raw endpoint's annotation is resolved here

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict("records")]


# ---------------------------------------------------------------- servers


def _serve_served(root: str, port: int) -> None:
    import uvicorn

    from safemodel.serve import create_app

    uvicorn.run(create_app(root), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


def _serve_raw(root: str, port: int, json_lib: str) -> None:
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    import safemodel as sm

    estimator = sm.BundleStore(root).get("penguins", "production").estimator
    classes = [str(c) for c in estimator.classes_]
    if json_lib == "orjson":
        import orjson
        loads, dumps = orjson.loads, orjson.dumps
    else:
        def loads(raw: bytes) -> Any:
            return json.loads(raw)

        def dumps(value: Any) -> bytes:  # what starlette's JSONResponse writes
            return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None,
                              separators=(",", ":")).encode()

    app = FastAPI()

    @app.post("/v1/models/penguins:predict")
    async def predict(request: Request) -> Response:
        body = loads(await request.body())

        def score() -> list[dict[str, float]]:
            proba = estimator.predict_proba(pd.DataFrame.from_records(body["instances"]))
            return [dict(zip(classes, p, strict=True)) for p in proba.tolist()]

        answer = {"predictions": await run_in_threadpool(score)}
        return Response(dumps(answer), media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(role: str, root: str, json_lib: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--role", role, "--store", root,
                             "--port", str(port), "--raw-json", json_lib],
                            env=os.environ.copy())
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(client: Any, url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server {url} exited with {proc.returncode}")
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server {url} not ready after 180 s")


# MLflow's own server over the same fitted pipeline, in the venv given by --mlflow.
_MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn, pandas as pd
from mlflow.models import infer_signature
pipe, sample = joblib.load(sys.argv[1])
mlflow.sklearn.save_model(pipe, sys.argv[2], pyfunc_predict_fn="predict_proba",
                          serialization_format="cloudpickle",  # as a bundle's estimator
                          signature=infer_signature(sample, pipe.predict_proba(sample)))
"""
# Telemetry off; uvicorn's access log off, as on the other two servers.
_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "UVICORN_ACCESS_LOG": "false"}


def _start_mlflow(python: str, pipe: Any, X: Any, workdir: Path) -> tuple[
        subprocess.Popen[bytes], str]:
    import joblib

    joblib.dump((pipe, X.head(50)), workdir / "pipe.joblib")
    # Its venv's bin first: mlflow starts the `uvicorn` found on PATH.
    env = {**os.environ, **_QUIET,
           "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    subprocess.run([python, "-c", _MLFLOW_SAVE, str(workdir / "pipe.joblib"),
                    str(workdir / "mlflow-model")], check=True, env=env)
    port = _free_port()
    proc = subprocess.Popen([python, "-m", "mlflow", "models", "serve", "-m",
                             str(workdir / "mlflow-model"), "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=env)
    return proc, f"http://127.0.0.1:{port}"


def _round(client: Any, endpoints: dict[str, tuple[str, bytes]], pairs: int,
           seconds: float) -> dict[str, list[float]]:
    """Up to ``pairs`` turns (A B .., then .. B A), or until ``seconds`` have passed."""
    headers = {"content-type": "application/json"}
    times: dict[str, list[float]] = {k: [] for k in endpoints}
    order = list(endpoints.items())
    deadline = time.perf_counter() + seconds
    for i in range(pairs):
        for name, (url, payload) in (order if i % 2 else order[::-1]):
            t = time.perf_counter()
            r = client.post(url, content=payload, headers=headers)
            times[name].append(time.perf_counter() - t)
            if r.status_code != 200:
                raise SystemExit(f"{name}: {r.status_code} {r.text[:300]}")
        if time.perf_counter() > deadline:
            break
    return times


def _client(args: argparse.Namespace) -> None:
    import httpx
    from _pipelines import lr_pipeline, penguins, rows

    import safemodel as sm

    X, y = penguins()
    pipe = lr_pipeline(X, y)
    workdir = Path(tempfile.mkdtemp())
    root = str(workdir / "store")
    store = sm.BundleStore(root)
    store.put(sm.ModelBundle.from_training(pipe, X, name="penguins", version="1.0.0"))
    store.promote("penguins", "1.0.0")

    procs = {role: _start(role, root, args.raw_json) for role in ("served", "raw")}
    ready = {"served": "/readyz", "raw": "/readyz", "mlflow": "/ping"}
    predict = {"served": "/v1/models/penguins:predict", "raw": "/v1/models/penguins:predict",
               "mlflow": "/invocations"}
    try:
        if args.mlflow:
            procs["mlflow"] = _start_mlflow(args.mlflow, pipe, X, workdir)
        others = [k for k in procs if k != "raw"]
        with httpx.Client(timeout=60) as client:
            for role, (proc, url) in procs.items():
                _wait_ready(client, url + ready[role], proc)
            print(f"raw endpoint JSON: {args.raw_json}; rounds {args.rounds} x at most "
                  f"{args.pairs} turns / {args.round_seconds:.0f} s\n")
            print("| rows | round | turns | endpoint | p50 ms | p90 ms | p50 / raw | "
                  "p90 / raw | load (1 min) |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|")
            summary: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
            for n in args.rows:
                records = _records(rows(X, n))
                v1 = json.dumps({"instances": records}).encode()
                endpoints = {role: (url + predict[role], v1) for role, (_, url) in procs.items()}
                if "mlflow" in endpoints:
                    endpoints["mlflow"] = (endpoints["mlflow"][0],
                                           json.dumps({"dataframe_records": records}).encode())
                _round(client, endpoints, args.warmup, 60.0)
                for k in range(args.rounds):
                    times = _round(client, endpoints, args.pairs, args.round_seconds)
                    load = os.getloadavg()[0]
                    q = {e: np.percentile(t, [50, 90]) * 1000 for e, t in times.items()}
                    for e in ["raw", *others]:
                        r50, r90 = q[e][0] / q["raw"][0], q[e][1] / q["raw"][1]
                        if e != "raw":
                            summary.setdefault((n, e), []).append((r50, r90, load))
                        print(f"| {n} | {k + 1} | {len(times[e])} | {e} | {q[e][0]:.2f} | "
                              f"{q[e][1]:.2f} | {r50:.3f} | {r90:.3f} | {load:.1f} |",
                              flush=True)
            print("\nratio to the raw endpoint, median [min, max] of the round ratios\n\n"
                  "| rows | endpoint | p50 ratio | p90 ratio | load (1 min) |\n"
                  "|---:|---|---|---|---|")
            for (n, e), cells in summary.items():
                p50, p90, load = (np.array(c) for c in zip(*cells, strict=True))
                print(f"| {n} | {e} | {np.median(p50):.3f} [{p50.min():.3f}, {p50.max():.3f}] "
                      f"| {np.median(p90):.3f} [{p90.min():.3f}, {p90.max():.3f}] | "
                      f"{load.min():.1f}-{load.max():.1f} |")
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            proc.wait(30)


class _Blocker:
    """Occupies the drift worker until released, so that the backlog queues up."""

    def __init__(self) -> None:
        import threading

        self.hold = threading.Event()

    def observe(self, frame: Any, scores: Any = None) -> None:
        self.hold.wait(30)


def _observer(backlog: int, rounds: int) -> None:
    import pandas as pd
    from _pipelines import lr_pipeline, penguins

    import safemodel as sm
    from safemodel.integrations.serve.observer import DriftObserver

    X, y = penguins()
    bundle = sm.ModelBundle.from_training(lr_pipeline(X, y), X, name="penguins")
    # The penguins rows in turn, as JSON records: a row with a missing value gives its
    # column another dtype (object), so not every batch can join its neighbours.
    frames = [pd.DataFrame(_records(X.iloc[[i % len(X)]])) for i in range(backlog)]
    scores = [bundle.predict_proba(frame) for frame in frames]
    times: dict[int, list[float]] = {1: [], 10_000: []}
    for r in range(rounds):
        for batch_rows in (1, 10_000) if r % 2 == 0 else (10_000, 1):
            monitor, observer = sm.Monitor(bundle), DriftObserver(batch_rows=batch_rows)
            blocker = _Blocker()
            observer.submit(blocker, [0], None)  # type: ignore[arg-type]
            for frame, proba in zip(frames, scores, strict=True):
                observer.submit(monitor, frame, proba)
            started = time.process_time()
            blocker.hold.set()
            observer.flush(300)
            times[batch_rows].append(time.process_time() - started)
            observer.stop()
            assert monitor.rows_observed == backlog
    alone, joined = np.median(times[1]), np.median(times[10_000])
    print(f"{backlog} one-row batches waiting, {rounds} rounds: one call per batch "
          f"{alone * 1e3:.0f} ms of CPU, joined {joined * 1e3:.0f} ms "
          f"({alone / joined:.1f}x less); per batch {alone / backlog * 1e3:.3f} -> "
          f"{joined / backlog * 1e3:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 100 pairs")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=300, help="at most, per round")
    parser.add_argument("--round-seconds", type=float, default=20.0, help="at most, per round")
    parser.add_argument("--warmup", type=int, default=30, help="pairs before the rounds")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--raw-json", choices=["json", "orjson"], default="json")
    parser.add_argument("--mlflow", metavar="PYTHON",
                        help="also `mlflow models serve` the same pipeline with this Python "
                             "(a venv with mlflow; telemetry off)")
    parser.add_argument("--observer", action="store_true",
                        help="measure the drift worker on a backlog of one-row batches instead")
    parser.add_argument("--role", choices=["client", "served", "raw"], default="client",
                        help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.pairs = 3, 100
    if args.observer:
        _observer(backlog=300 if args.quick else 2_000, rounds=3 if args.quick else 7)
    elif args.role == "served":
        _serve_served(args.store, args.port)
    elif args.role == "raw":
        _serve_raw(args.store, args.port, args.raw_json)
    else:
        _client(args)


if __name__ == "__main__":
    main()
