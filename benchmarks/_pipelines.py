"""The palmer penguins data and the three reference pipelines of the benchmark.

Built here rather than imported from ``tests/`` so the benchmark runs from an installed
package; the construction matches ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

__all__ = ["PIPELINES", "penguins", "rows"]

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
CATEGORICAL = ["island", "sex"]


def penguins() -> tuple[pd.DataFrame, pd.Series]:
    """Features (island, sex, measurements, year) and species, as the package ships them."""
    df = load_penguins()
    return df.drop(columns=["species"]), df["species"]


def rows(X: pd.DataFrame, n: int, *, random_state: int = 0) -> pd.DataFrame:
    """``n`` rows of ``X`` drawn with replacement, always including its rows with NaN.

    One row is the first (complete) record, the usual shape of a single request.
    """
    if n == 1:
        return X.iloc[[0]].reset_index(drop=True)
    with_nan = X[X.isna().any(axis=1)]
    k = min(len(with_nan), n)
    sample = X.sample(n - k, replace=True, random_state=random_state)
    out = pd.concat([with_nan.iloc[:k], sample])
    order = np.random.default_rng(random_state).permutation(n)
    return out.iloc[order].reset_index(drop=True)


def _one_hot() -> ColumnTransformer:
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])


def lr_pipeline(X: pd.DataFrame, y: pd.Series, random_state: int = 0) -> Pipeline:
    return make_pipeline(_one_hot(), LogisticRegression(max_iter=2000)).fit(X, y)


def hgb_pipeline(X: pd.DataFrame, y: pd.Series, random_state: int = 0) -> Pipeline:
    pre = ColumnTransformer([
        ("num", "passthrough", NUMERIC),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                               encoded_missing_value=-2), CATEGORICAL),
    ])
    model = HistGradientBoostingClassifier(max_iter=30, random_state=random_state)
    return make_pipeline(pre, model).fit(X, y)


def rf_pipeline(X: pd.DataFrame, y: pd.Series, random_state: int = 0) -> Pipeline:
    model = RandomForestClassifier(n_estimators=200, random_state=random_state)
    return make_pipeline(_one_hot(), model).fit(X, y)


# Short key -> (label in the tables, builder).
PIPELINES: dict[str, tuple[str, Callable[..., Pipeline]]] = {
    "lr": ("ColumnTransformer + LogisticRegression", lr_pipeline),
    "hgb": ("ColumnTransformer + HistGradientBoosting", hgb_pipeline),
    "rf": ("ColumnTransformer + RandomForest (200 trees)", rf_pipeline),
}
