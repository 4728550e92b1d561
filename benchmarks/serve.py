#!/usr/bin/env python3
"""Latency and throughput of a served model against a raw-estimator endpoint.

    PYTHONPATH=src .venv/bin/python benchmarks/serve.py            # ~1 minute
    PYTHONPATH=src .venv/bin/python benchmarks/serve.py --quick

One app (``safemodel.serve.create_app`` over a store holding the penguins logistic
regression) also gets ``POST /raw/predict``: what a hand-written endpoint does (read the
JSON body, build a DataFrame, call ``estimator.predict_proba``, answer JSON). uvicorn
serves it on 127.0.0.1 in a thread of this process; one httpx client sends requests
sequentially, at 1 and 100 rows, in pairs (served then raw, raw then served, in turn),
so a slow moment of a shared machine hits both sides of a pair. Prints p50/p99 latency
and throughput per endpoint, then the served/raw ratio: of the p50s, and the median
and quartiles of the per-pair ratios, for each of ``--repeats`` blocks and overall.
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


def _ratios(served: list[float], raw: list[float]) -> tuple[float, float, float, float]:
    """p50 ratio, then the median, first and third quartile of the per-pair ratios."""
    pairs = np.array(served) / np.array(raw)
    q1, mid, q3 = np.percentile(pairs, [25, 50, 75])
    return float(np.median(served) / np.median(raw)), float(mid), float(q1), float(q3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="blocks of pairs")
    args = parser.parse_args()
    n_requests = 40 if args.quick else 200  # pairs per block

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
        ratios: dict[int, list[str]] = {}
        for n in (1, 100):
            payload = {"instances": _records(rows(X, n))}
            paths = {"served": "/v1/models/penguins:predict", "raw": "/raw/predict"}
            for _ in range(20):  # warm-up
                for path in paths.values():
                    assert client.post(url + path, json=payload).status_code == 200
            times: dict[str, list[float]] = {k: [] for k in paths}
            blocks = []
            for _block in range(args.repeats):
                start = len(times["raw"])
                for i in range(n_requests):
                    for name, path in (paths.items() if i % 2 else reversed(paths.items())):
                        t = time.perf_counter()
                        r = client.post(url + path, json=payload)
                        times[name].append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text[:300]
                blocks.append(_ratios(times["served"][start:], times["raw"][start:]))
            for name, values in times.items():
                a = np.array(values) * 1000
                rps = len(a) / (a.sum() / 1000)
                print(f"| {n} | {name} | {np.percentile(a, 50):.2f} | "
                      f"{np.percentile(a, 99):.2f} | {rps:.0f} | {rps * n:.0f} |")
            ratios[n] = [*(f"{b[0]:.3f} / {b[1]:.3f}" for b in blocks),
                         "{:.3f} / {:.3f} [{:.3f}, {:.3f}]".format(
                             *_ratios(times["served"], times["raw"]))]
        print("\nserved / raw: ratio of p50s / median of per-pair ratios [quartiles]\n")
        print("| rows | " + " | ".join(f"block {i + 1}" for i in range(args.repeats))
              + " | all |\n|---:|" + "---|" * (args.repeats + 1))
        for n, cells in ratios.items():
            print(f"| {n} | " + " | ".join(cells) + " |")
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
