"""Evidently and NannyML as peers of the drift benchmark, each in its own Python environment.

``benchmarks/drift.py --peer-python PATH`` (Evidently) and ``--nannyml-python PATH``
start this script with that interpreter (one that has the peer installed; never the
project's environment) as ``_peers.py evidently`` or ``_peers.py nannyml``, and send
one JSON line per trial: the reference and the batch (``DataFrame.to_json("split")``)
and the categorical columns. It answers with one JSON line: ``{"flags": [...],
"scores": {column: strength}, "methods": {column: name}}``: the columns the peer flags
at its default thresholds, and per column a drift *strength* on one scale for every
method (larger = more drift; at least 1 where the peer's default threshold flags), so
``benchmarks/drift.py`` can also compare methods at a matched false-alarm rate:

- a p-value ``p`` tested at threshold ``t``: ``ln(p) / ln(t)`` (``-log`` of the p-value
  in units of the threshold's);
- a distance ``d`` with threshold ``t``: ``d / t``.

- Evidently: its default data-drift preset (its own per-column test selection and
  thresholds).
- NannyML: ``UnivariateDriftCalculator`` with its default methods (Jensen-Shannon for
  continuous and categorical columns) and default thresholds (three standard
  deviations of the statistic over reference chunks), one chunk = the batch. Its usage
  telemetry is switched off (``NML_DISABLE_USAGE_LOGGING=1``) before it is imported.

It imports nothing from safemodel, so it runs where safemodel is not installed.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import warnings
from typing import Any

# Set before NannyML is imported, whatever the caller's environment says.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import pandas as pd

Answer = dict[str, Any]


def strength(score: float, threshold: float, p_value: bool) -> float:
    """The peer's score on the common scale: >= 1 exactly where its default flags."""
    if not math.isfinite(score):
        return -math.inf
    if p_value:
        return math.log(max(score, 1e-300)) / math.log(threshold)
    return score / threshold


def _evidently(reference: pd.DataFrame, batch: pd.DataFrame, categorical: list[str]) -> Answer:
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    numerical = [c for c in reference.columns if c not in categorical]
    mapping = ColumnMapping(numerical_features=numerical, categorical_features=categorical)
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=reference, current_data=batch, column_mapping=mapping)
    for metric in report.as_dict()["metrics"]:
        by_column = metric.get("result", {}).get("drift_by_columns")
        if by_column:
            return {
                "flags": sorted(c for c, r in by_column.items() if r.get("drift_detected")),
                # Evidently picks a test per column: a p-value ("K-S p_value",
                # "chi-square p_value", "Z-test p_value") on small references, a distance
                # ("Wasserstein distance (normed)", "Jensen-Shannon distance") on large ones.
                "scores": {
                    c: strength(
                        float(r["drift_score"]),
                        float(r["stattest_threshold"]),
                        "p_value" in r["stattest_name"],
                    )
                    for c, r in by_column.items()
                },
                "methods": {c: r["stattest_name"] for c, r in by_column.items()},
            }
    return {"flags": [], "scores": {}, "methods": {}}


_NANNYML: dict[tuple[str, int], Any] = {}


def _nannyml(
    reference: pd.DataFrame, batch: pd.DataFrame, categorical: list[str], key: str | None
) -> Answer:
    import nannyml as nml

    columns = list(reference.columns)
    fitted = _NANNYML.get((key, len(batch))) if key is not None else None
    if fitted is None:
        fitted = nml.UnivariateDriftCalculator(
            column_names=columns, treat_as_categorical=categorical, chunk_size=len(batch)
        ).fit(reference)
        if key is not None:
            _NANNYML[(key, len(batch))] = fitted
    result = fitted.calculate(batch).filter(period="analysis").to_df()
    flagged, scores, methods = [], {}, {}
    for column in columns:
        alerts = [c for c in result.columns if c[0] == column and c[-1] == "alert"]
        if any(bool(result[c].any()) for c in alerts):
            flagged.append(column)
        for _, method, part in result.columns:
            if _ != column or part != "value":
                continue
            value = float(result[(column, method, "value")].iloc[0])
            upper = result[(column, method, "upper_threshold")].iloc[0]
            # The statistic over the column's own upper threshold (set from reference
            # chunks); the bare statistic where the reference gave no finite threshold.
            usable = upper is not None and math.isfinite(float(upper)) and float(upper) > 0
            scores[column] = strength(value, float(upper) if usable else 1.0, False)
            methods[column] = method + ("" if usable else " (no threshold)")
    return {"flags": sorted(flagged), "scores": scores, "methods": methods}


def main() -> int:
    tool = sys.argv[1] if len(sys.argv) > 1 else "evidently"
    warnings.simplefilter("ignore")
    cache: dict[str, pd.DataFrame] = {}
    for line in sys.stdin:
        message = json.loads(line)
        key = message.get("key")
        if key is not None and key in cache:
            reference = cache[key]
        else:
            reference = pd.read_json(io.StringIO(message["reference"]), orient="split")
            if key is not None:
                cache[key] = reference
        batch = pd.read_json(io.StringIO(message["batch"]), orient="split")
        categorical = message["categorical"]
        for column in categorical:
            reference[column] = reference[column].astype(object)
            batch[column] = batch[column].astype(object)
        try:
            if tool == "nannyml":
                answer = _nannyml(reference, batch, categorical, key)
            else:
                answer = _evidently(reference, batch, categorical)
        except Exception as exc:  # a failed trial counts as "not flagged", and says why
            print(f"{tool} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            answer = {"flags": [], "scores": {}, "methods": {}}
        # -inf (a column the peer could not score) is not JSON: it travels as null.
        answer["scores"] = {c: v if math.isfinite(v) else None
                            for c, v in answer["scores"].items()}  # fmt: skip
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
