#!/usr/bin/env python3
"""The cost of ``ModelBundle.from_training`` against ``fit``, on 1 million rows.

    .venv/bin/python benchmarks/build.py                     # 1,000,000 x 20 rows
    .venv/bin/python benchmarks/build.py --rows 200000       # quicker

A synthetic frame of 20 numeric columns and one categorical column (``rows`` rows, a
binary target); a ``ColumnTransformer`` + ``HistGradientBoostingClassifier`` pipeline is
fitted on it, then bundled. Both are timed once, in one process, and the ratio printed:
the target is at most 0.05 of ``fit``. The bundle's drift profile is built from a
seeded sample of ``PROFILE_ROWS`` rows, so building costs the same beyond that size.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

import safemodel as sm


def frame(rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"x{i}" for i in range(20)])
    X["segment"] = pd.Series(rng.choice(["a", "b", "c", "d"], rows), dtype=object)
    y = (X["x0"] + X["x1"] * X["x2"] + rng.normal(size=rows) > 0).astype(int).to_numpy()
    return X, y


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    X, y = frame(args.rows)
    pipe = make_pipeline(
        make_column_transformer((OrdinalEncoder(), ["segment"]), remainder="passthrough"),
        HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0),
    )
    started = time.perf_counter()
    pipe.fit(X, y)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    bundle = sm.ModelBundle.from_training(pipe, X, name="build")
    build = time.perf_counter() - started
    print(f"rows {args.rows:,}: fit {fit:.2f} s, from_training {build:.2f} s, "
          f"ratio {build / fit:.3f} (target <= 0.05); profile from "
          f"{bundle.build_notes['profile']['rows']:,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
