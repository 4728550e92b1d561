"""The robustness check's judgement of one scoring call's outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from safemodel.core.bundle import ModelBundle

__all__ = ["output_problem"]


def output_problem(bundle: ModelBundle, method: str, out: Any, rows: int) -> str | None:
    """What is wrong with one scoring call's outputs, or ``None``."""
    out = np.asarray(out)
    if out.ndim == 0 or out.shape[0] != rows:
        got = "a scalar" if out.ndim == 0 else f"{out.shape[0]} rows"
        return f"{method} returned {got} for {rows} input rows"
    reference = bundle.golden.outputs.get(method)
    if reference is not None and out.shape[1:] != reference.shape[1:]:
        return (f"{method} returned rows of shape {out.shape[1:]}; the golden outputs' rows "
                f"have shape {reference.shape[1:]}")
    numeric = out.dtype.kind in "biuf"
    if method in ("predict_proba", "decision_function") and not numeric:
        return f"{method} returned {out.dtype} values, not numbers"
    values = out.reshape(rows, -1).astype("float64") if numeric else None
    if values is not None and out.dtype.kind == "f" and method != "predict":
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if bad.size:
            row = int(bad[0])
            return f"{method} returned non-finite values in row {row}: {values[row].tolist()}"
    if method == "predict_proba" and values is not None:
        outside = np.flatnonzero(((values < -1e-9) | (values > 1 + 1e-9)).any(axis=1))
        if outside.size:
            row = int(outside[0])
            return f"predict_proba row {row} has values outside [0, 1]: {values[row].tolist()}"
        sums = values.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if off.size:
            row = int(off[0])
            return (f"predict_proba row {row} sums to {float(sums[row])!r}, not 1: "
                    f"{values[row].tolist()}")
    if method == "predict":
        classes = getattr(bundle.estimator, "classes_", None)
        if classes is not None:
            known = set(np.asarray(classes).tolist())
            unknown = [v for v in out.ravel().tolist() if v not in known]
            if unknown:
                return (f"predict returned {unknown[0]!r}, which is not one of the classes "
                        f"{sorted(known, key=str)}")
        elif values is not None and not np.isfinite(values).all():
            return "predict returned non-finite values"
    return None
