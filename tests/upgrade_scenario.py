"""Build and load the penguins bundles of the upgrade scenario, in whatever environment
runs this file (the test suite's, or an older scikit-learn's in a separate venv).

    python upgrade_scenario.py build FOLDER   # one bundle per pipeline, FOLDER/<name>.safemodel
    python upgrade_scenario.py load FOLDER    # JSON: per bundle, loaded exactly or the error

Run by ``tests/test_upgrades.py`` in a subprocess; it imports only safemodel's public
API, scikit-learn and palmerpenguins, so it runs under any release they support.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
CATEGORICAL = ["island", "sex"]


def _pipelines() -> dict[str, Callable[[], Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    def onehot(model: Any) -> Any:
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                  OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
        ])
        return make_pipeline(pre, model)

    def ordinal(model: Any) -> Any:
        pre = ColumnTransformer([
            ("num", "passthrough", NUMERIC),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                   encoded_missing_value=-2), CATEGORICAL),
        ])
        return make_pipeline(pre, model)

    return {
        "lr": lambda: onehot(LogisticRegression(max_iter=2000)),
        "hgb": lambda: ordinal(HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        "rf": lambda: onehot(RandomForestClassifier(n_estimators=10, random_state=0)),
        "gb": lambda: onehot(GradientBoostingClassifier(n_estimators=10, random_state=0)),
        "svc": lambda: onehot(SVC(probability=False)),
        "knn": lambda: onehot(KNeighborsClassifier()),
        "mlp": lambda: onehot(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300,
                                            random_state=0)),
        "tree": lambda: onehot(DecisionTreeClassifier(random_state=0)),
        "nb": lambda: onehot(GaussianNB()),
        "ridge": lambda: onehot(RidgeClassifier()),
        "extra_trees": lambda: onehot(ExtraTreesClassifier(n_estimators=10, random_state=0)),
    }


PIPELINES = ("lr", "hgb", "rf", "gb", "svc", "knn", "mlp", "tree", "nb", "ridge", "extra_trees")


def build(folder: Path) -> None:
    import warnings

    from palmerpenguins import load_penguins

    import safemodel as sm

    df = load_penguins()
    X, y = df.drop(columns=["species"]), df["species"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in _pipelines().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of a tiny MLP
            estimator = make().fit(X, y)
        bundle = sm.ModelBundle.from_training(estimator, X, name=name, version="1.0.0")
        bundle.save(folder / f"{name}.safemodel", overwrite=True)


def load(folder: Path) -> dict[str, dict[str, Any]]:
    import safemodel as sm

    outcomes: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.safemodel")):
        try:
            sm.load(path)
        except sm.SafeModelError as exc:
            to_dict = getattr(exc, "to_dict", None)
            outcomes[path.stem] = {"outcome": type(exc).__name__, "message": str(exc),
                                   "data": to_dict() if callable(to_dict) else None}
        else:
            outcomes[path.stem] = {"outcome": "loaded"}
    return outcomes


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    if command == "build":
        build(target)
    else:
        print(json.dumps(load(target)))
