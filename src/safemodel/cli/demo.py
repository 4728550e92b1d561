"""``safemodel demo``: the whole story on the palmer penguins, in about ten seconds.

Trains a pipeline, bundles and saves it, loads it in a fresh process with golden
verification, shows the policy handling an unseen category and a missing value, shows
a strict bundle's rejection as JSON, shows a changed model being refused (a library
upgrade simulated in a fresh process), and ends with a drift report for a shifted batch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _say(title: str) -> None:
    print(f"\n== {title}")


def _fresh_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, check=False)


LOAD_AND_SCORE = """
    import sys, json, safemodel as sm
    bundle = sm.load(sys.argv[1])           # hashes, then unpickling, then golden outputs
    print(f"loaded {bundle.name}=={bundle.version}: golden outputs reproduce")
    row = json.loads(sys.argv[2])
    print("predict_proba:", bundle.predict_proba(row).round(4).tolist())
"""

UPGRADE_AND_LOAD = """
    import sys, safemodel as sm
    from sklearn.linear_model import LogisticRegression
    # Simulate a scikit-learn upgrade whose LogisticRegression scores a little differently.
    original = LogisticRegression.predict_proba
    def predict_proba(self, X):
        p = original(self, X)
        p[:, 0] = p[:, 0] * 0.999 + 0.001
        return p
    LogisticRegression.predict_proba = predict_proba
    try:
        sm.load(sys.argv[1])
    except sm.GoldenMismatchError as exc:
        print("refused:", type(exc).__name__)
        print(exc)
        sys.exit(0)
    print("loaded a changed model: this must not happen")
    sys.exit(1)
"""


def _pipeline(X: Any, y: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), ["island", "sex"]),
    ])
    return make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, y)


def _load_penguins() -> tuple[Any, Any]:
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        raise SystemExit(
            "The demo needs the 'palmerpenguins' package (it ships the data set offline): "
            "pip install palmerpenguins"
        ) from None
    df = load_penguins()
    return df.drop(columns=["species"]), df["species"]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return 0 when every step behaved as promised."""
    parser = argparse.ArgumentParser(prog="safemodel demo", description=__doc__)
    parser.add_argument("--output", default="demo-output",
                        help="folder for the bundle and the drift report (default: %(default)s)")
    args = parser.parse_args(argv)
    import numpy as np

    import safemodel as sm

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    X, y = _load_penguins()
    train = X.sample(frac=0.7, random_state=0)
    held = X.drop(train.index)

    _say("1. Train a pipeline and bundle it with its contract, policy and golden outputs")
    pipe = _pipeline(train, y.loc[train.index])
    bundle = sm.ModelBundle.from_training(pipe, train, name="penguin-species", version="1.0.0",
                                          metadata={"trained_on": "palmerpenguins, 70%"})
    path = out / "penguin-species-1.0.0.safemodel"
    bundle.save(path, overwrite=True)
    info = sm.inspect(path)
    print(f"saved {path} ({path.stat().st_size:,} bytes), fingerprint {info.fingerprint[:16]}")
    for spec in bundle.contract.columns:
        extra = f" allowed {list(spec.categories)}" if spec.categories else ""
        print(f"  {spec.name:18} {spec.dtype:8} nullable={spec.nullable!s:5}{extra}")
    print(f"golden fixture: {len(bundle.golden.inputs)} rows "
          f"({bundle.golden.edge_rows} edge cases), methods {list(bundle.golden.outputs)}")

    _say("2. Load it in a fresh process (verification re-runs the golden inputs)")
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v)
           for k, v in held.iloc[0].to_dict().items()}
    done = _fresh_python(LOAD_AND_SCORE, str(path), json.dumps(row))
    print(done.stdout.rstrip() or done.stderr[-2000:])
    ok = done.returncode == 0

    _say("3. An unseen category and a missing value, under the default policy")
    odd = {**row, "island": "Atlantis", "year": None}
    prepared = bundle.prepare(odd)
    print("request:", json.dumps(odd))
    print("predict_proba:", bundle.predict_proba(odd).round(4).tolist())
    print("policy report:", json.dumps(prepared.report.to_dict()["actions"]))

    _say("4. The same request to a strict bundle: a ContractViolation ready for HTTP 422")
    strict = sm.ModelBundle.from_training(pipe, train, name="penguin-species-strict",
                                          version="1.0.0", policy=sm.Policy.strict())
    try:
        strict.predict_proba(odd)
        print("accepted: this must not happen")
        ok = False
    except sm.ContractViolation as exc:
        print(json.dumps(exc.to_dict()["failures"], indent=1))

    _say("5. A library upgrade changes the scores: the bundle refuses to load")
    done = _fresh_python(UPGRADE_AND_LOAD, str(path))
    print(done.stdout.rstrip() or done.stderr[-2000:])
    ok = ok and done.returncode == 0

    _say("6. Production data drifts: a report against the bundle's training profile")
    shifted = held.copy()
    shifted["flipper_length_mm"] = shifted["flipper_length_mm"] + 2 * train[
        "flipper_length_mm"].std()
    try:
        report = bundle.drift(shifted)
    except sm.SafeModelError as exc:  # pragma: no cover - profile missing
        print("drift unavailable:", exc)
    else:
        html = out / "drift-report.html"
        report.to_html(html)
        print("alerts:", report.alerts)
        print(f"HTML report: {html}")
    print("\nDemo finished:", "every promise held" if ok else "SOMETHING WENT WRONG")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
