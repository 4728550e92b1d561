"""Evidently as a peer of the drift benchmark, run in its own Python environment.

``benchmarks/drift.py --peer-python PATH`` starts this script with that interpreter
(one that has Evidently installed; never the project's environment) and sends one
JSON line per trial: the reference and the batch (``DataFrame.to_json("split")``)
and the categorical columns. It answers with one JSON line: the columns Evidently's
default data-drift preset flags (its own per-column test selection and thresholds).

It imports nothing from safemodel, so it runs where safemodel is not installed.
"""

from __future__ import annotations

import io
import json
import sys
import warnings

import pandas as pd


def _evidently_flags(
    reference: pd.DataFrame, batch: pd.DataFrame, categorical: list[str]
) -> list[str]:
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
            return sorted(c for c, r in by_column.items() if r.get("drift_detected"))
    return []


def main() -> int:
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
            flags = _evidently_flags(reference, batch, categorical)
        except Exception as exc:  # a failed trial counts as "not flagged", and says why
            print(f"evidently failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            flags = []
        sys.stdout.write(json.dumps(flags) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
