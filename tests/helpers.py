"""Plain helpers shared by the tests: the penguins data, pipelines fitted on it, records.

Fixtures live in ``conftest.py``; what a test imports by name lives here (``pythonpath``
in ``pyproject.toml`` puts this folder on ``sys.path``), so no test imports conftest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import safemodel as sm

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
CATEGORICAL = ["island", "sex"]


def penguins_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Features (island, sex, measurements, year) and species, as the package ships them."""
    df = load_penguins()
    return df.drop(columns=["species"]), df["species"]


def lr_pipeline(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, y)


def hgb_pipeline(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    pre = ColumnTransformer([
        ("num", "passthrough", NUMERIC),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                               encoded_missing_value=-2), CATEGORICAL),
    ])
    return make_pipeline(pre, HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(
        X, y)


def rf_regressor(X: pd.DataFrame) -> Pipeline:
    """Body mass from the other columns."""
    feats = X.drop(columns=["body_mass_g"])
    target = X["body_mass_g"].fillna(X["body_mass_g"].median())
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"),
         ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "year"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return make_pipeline(pre, RandomForestRegressor(n_estimators=20, random_state=0)).fit(
        feats, target)


def record(X: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    """Row ``i`` as a JSON-like record (NaN as None)."""
    row = X.iloc[i].to_dict()
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def policy_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` penguins drawn with replacement, about 4% of them edited so the default
    policy acts (unseen and missing island, unseen sex, missing year), and an ``id``."""
    X, _ = penguins_frame()
    rng = np.random.default_rng(seed)
    frame = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
    frame["year"] = frame["year"].astype("Int64")
    edits = rng.permutation(n)[: 4 * max(n // 100, 1)].reshape(4, -1)
    frame.loc[edits[0], "island"] = "Atlantis"
    frame.loc[edits[1], "island"] = None
    frame.loc[edits[2], "sex"] = "unknown"
    frame.loc[edits[3], "year"] = pd.NA
    frame.insert(0, "id", np.arange(n))
    return frame


def expected_counts(report: sm.PolicyReport) -> dict[str, dict[str, int]]:
    """Row-level actions and rejections of a single-process report, as policy_counts."""
    out: dict[str, dict[str, int]] = {}
    for a in report.actions:
        if a.rows:
            out.setdefault(a.column, {})[a.action] = len(a.rows)
    for f in report.rejected:
        key = f"rejected:{f.check}"
        out.setdefault(f.column, {})[key] = out.get(f.column, {}).get(key, 0) + 1
    return out


def assert_same_report(got: Any, want: Any) -> None:
    """Two ``DriftReport.to_dict()`` forms agree: counts, names and verdicts exactly,
    floats to 1e-9 (the mean and variance tests read floating-point sums, which
    batching may round differently in the last bits; Holm passes that on)."""
    if isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same_report(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_same_report(a, b)
    else:
        assert got == want
