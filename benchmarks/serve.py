#!/usr/bin/env python3
"""Latency and throughput of a served model against a raw-estimator endpoint.

    PYTHONPATH=src .venv/bin/python benchmarks/serve.py            # ~1 minute
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --quick

One app (``safemodel.serve.create_app`` over a store holding the penguins logistic
regression) also gets ``POST /raw/predict``: what a hand-written endpoint does (read the
JSON body, build a DataFrame, call ``estimator.predict_proba``, answer JSON). uvicorn
serves it on 127.0.0.1 in a subprocess-free thread; one httpx client sends requests
sequentially, the two endpoints interleaved, at 1 and 100 rows. Prints p50/p99 latency
and throughput per endpoint, and the served/raw p50 ratio.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pipelines import lr_pipeline, penguins, rows

import safemodel as sm
from safemodel.serve import create_app


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict("records")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_requests = 40 if args.quick else 400

    X, y = penguins()
    pipe = lr_pipeline(X, y)
    root = Path(tempfile.mkdtemp()) / "store"
    store = sm.BundleStore(root)
    store.put(sm.ModelBundle.from_training(pipe, X, name="penguins", version="1.0.0"))
    store.promote("penguins", "1.0.0")
    app = create_app(root)
    classes = [str(c) for c in pipe.classes_]

    async def raw(request: Request) -> JSONResponse:
        body = await request.json()

        def score() -> list[dict[str, float]]:
            proba = pipe.predict_proba(pd.DataFrame(body["instances"]))
            return [dict(zip(classes, p, strict=True)) for p in proba.tolist()]

        return JSONResponse({"predictions": await run_in_threadpool(score)})

    app.add_api_route("/raw/predict", raw, methods=["POST"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=60) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if client.get(url + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        print("| rows | endpoint | p50 ms | p99 ms | requests/s | rows/s |\n"
              "|---:|---|---:|---:|---:|---:|")
        for n in (1, 100):
            payload = {"instances": _records(rows(X, n))}
            paths = {"served": "/v1/models/penguins:predict", "raw": "/raw/predict"}
            times: dict[str, list[float]] = {k: [] for k in paths}
            for i in range(n_requests + 20):
                for name, path in (paths.items() if i % 2 else reversed(paths.items())):
                    t = time.perf_counter()
                    r = client.post(url + path, json=payload)
                    elapsed = time.perf_counter() - t
                    assert r.status_code == 200, r.text[:300]
                    if i >= 20:  # warm-up
                        times[name].append(elapsed)
            for name, values in times.items():
                a = np.array(values) * 1000
                rps = len(a) / (a.sum() / 1000)
                print(f"| {n} | {name} | {np.percentile(a, 50):.2f} | "
                      f"{np.percentile(a, 99):.2f} | {rps:.0f} | {rps * n:.0f} |")
            ratio = np.median(times["served"]) / np.median(times["raw"])
            print(f"| {n} | served / raw p50 | {ratio:.3f} | | | |")
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
