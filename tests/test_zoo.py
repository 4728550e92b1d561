"""The whole scikit-learn zoo: every estimator of ``all_estimators`` that fits on a small
named-column frame is bundled, saved, loaded with verification in a fresh process and
compared bit for bit on held-out rows.

Predictive estimators must package exactly or be refused with ``GoldenMismatchError``
(an estimator whose outputs change across processes); transform-only ones must
package exactly. One subprocess loads every bundle, so the cost is one interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import safemodel as sm
from safemodel.core.outputs import as_output

pytestmark = pytest.mark.slow

ROWS, HELD_OUT = 60, 12

_LOADER = r"""
import json, sys, pickle
import numpy as np, pandas as pd
import safemodel as sm
from safemodel.core.outputs import as_output
from safemodel.core.outputs import as_output

jobs = json.loads(sys.stdin.read())
rows = {key: pd.read_pickle(path) for key, path in jobs["rows"].items()}
results = {}
for name, path in jobs["bundles"].items():
    try:
        bundle = sm.load(path)
    except sm.GoldenMismatchError as exc:
        results[name] = {"status": "refused", "detail": str(exc)[:300]}
        continue
    except Exception as exc:
        results[name] = {"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
        continue
    outputs = {}
    for key, frame in rows.items():
        try:
            outputs.update({f"{m}.{key}": as_output(getattr(bundle, m)(frame))
                            for m in bundle.methods})
        except sm.ScoringError:  # the estimator refuses these rows itself
            continue
    np.savez(path + ".npz", **outputs)
    results[name] = {"status": "loaded"}
print(json.dumps(results))
"""


def _data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = ROWS + HELD_OUT
    X = pd.DataFrame(rng.uniform(0.1, 2.0, size=(n, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + X["b"] > 2.0).astype(int).to_numpy()
    Y = np.c_[X["a"] + X["c"], X["b"] - X["d"]]
    return X.iloc[:ROWS], y[:ROWS], Y[:ROWS], X.iloc[ROWS:].reset_index(drop=True)


def _instance(cls: type) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier

    try:
        return cls()
    except TypeError:
        pass
    name = cls.__name__
    base: Any = LogisticRegression() if "Classifier" in name else Ridge()
    for kwargs in ({"estimator": base}, {"base_estimator": base},
                   {"estimators": [("a", base), ("b", DecisionTreeClassifier()
                                                 if "Classifier" in name else Ridge(1.0))]},
                   {"estimator_list": [base]}):
        try:
            return cls(**kwargs)
        except TypeError:
            continue
    return None


def _fitted(est: Any, X: pd.DataFrame, y: np.ndarray, Y: np.ndarray) -> Any:
    """``est`` fitted on the frame, if it fits one and scores it with every method."""
    from safemodel.core.bundle import scoring_methods

    for args in ((X, y), (X, Y), (X,)):
        try:
            fitted = est.fit(*args)
        except Exception:
            continue
        try:
            for method in scoring_methods(fitted):
                getattr(fitted, method)(X)  # text or dict vectorisers cannot score a frame
        except Exception:
            return None
        return fitted if scoring_methods(fitted) else None
    return None


def _outputs(bundle: sm.ModelBundle, rows: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Outputs on the held-out rows, or, if the estimator refuses them, on seen rows."""
    for key, frame in rows.items():
        try:
            return {f"{m}.{key}": as_output(getattr(bundle, m)(frame)) for m in bundle.methods}
        except sm.ScoringError:
            continue
    raise AssertionError(f"{type(bundle.estimator).__name__} scores no rows")


def test_every_estimator_packages_exactly_or_is_refused(tmp_path: Path) -> None:
    from sklearn.utils import all_estimators

    X, y, Y, held = _data()
    # Held-out rows; and training rows, for estimators that refuse values they never saw
    # (a OneHotEncoder of a continuous column).
    rows = {"held": held, "seen": X.head(HELD_OUT)}
    for key, frame in rows.items():
        frame.to_pickle(tmp_path / f"{key}.pkl")
    built: dict[str, str] = {}
    expected: dict[str, dict[str, np.ndarray]] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    warnings.simplefilter("ignore")
    for name, cls in all_estimators():
        est = _instance(cls)
        if est is None:
            skipped[name] = "needs arguments"
            continue
        fitted = _fitted(est, X, y, Y)
        if fitted is None:
            skipped[name] = "does not fit and score a small numeric frame"
            continue
        try:
            bundle = sm.ModelBundle.from_training(fitted, X, name="zoo", golden_rows=16)
        except Exception as exc:
            failed[name] = f"from_training: {type(exc).__name__}: {exc}"[:300]
            continue
        kinds[name] = "transform" if bundle.methods == ("transform",) else "predictive"
        try:
            expected[name] = _outputs(bundle, rows)
            path = tmp_path / f"{name}.safemodel"
            bundle.save(path)
        except Exception as exc:
            failed[name] = f"score/save: {type(exc).__name__}: {exc}"[:300]
            continue
        built[name] = str(path)
    proc = subprocess.run(
        [sys.executable, "-c", _LOADER],
        input=json.dumps({"rows": {k: str(tmp_path / f"{k}.pkl") for k in rows},
                          "bundles": built}),
        capture_output=True, text=True, timeout=600, check=True,
    )
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    exact: dict[str, list[str]] = {"predictive": [], "transform": []}
    refused: dict[str, list[str]] = {"predictive": [], "transform": []}
    for name, result in results.items():
        kind = kinds[name]
        if result["status"] == "refused":
            refused[kind].append(name)
            continue
        if result["status"] != "loaded":
            failed[name] = f"load: {result['detail']}"
            continue
        with np.load(built[name] + ".npz", allow_pickle=False) as got:
            for method, want in expected[name].items():
                if method not in got.files or not np.array_equal(
                        got[method], want, equal_nan=want.dtype.kind in "fc"):
                    failed[name] = f"{method} differs across processes"
        if name not in failed:
            exact[kind].append(name)
    print(f"\nzoo: predictive exact {len(exact['predictive'])}, refused "
          f"{len(refused['predictive'])} {refused['predictive']}; transform exact "
          f"{len(exact['transform'])}, refused {len(refused['transform'])}; skipped "
          f"{len(skipped)}; failed {len(failed)}")
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
    assert not refused["transform"], refused["transform"]
    assert len(exact["predictive"]) >= 100, exact["predictive"]
    assert len(exact["transform"]) >= 50, exact["transform"]
