"""The golden fixture: inputs, the exact outputs the estimator gave for them, and how
they are compared.

Golden inputs are a reproducible sample of training rows followed by edge-case rows:
one with an unseen value per categorical column and one with a missing value per
column, so that the policy's behaviour is preserved too. Rows the policy rejects (under
a strict policy) are recorded as rejections; ``outputs[method]`` holds one entry per
*accepted* row, in order (:attr:`Golden.accepted_rows` maps them back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from safemodel.core.contract import ColumnSpec, Contract
from safemodel.errors import BundleFormatError, InvalidArgument

if TYPE_CHECKING:
    from safemodel.core.report import PolicyReport

__all__ = ["GOLDEN_NEXT_STEP", "Golden", "PolicyDiff", "VerificationReport", "compare_outputs",
           "describe_policy_diff", "golden_inputs", "policy_diff"]

UNSEEN_TEXT = "__safemodel_unseen__"


@dataclass(frozen=True)
class Golden:
    """Golden inputs and outputs.

    Attributes
    ----------
    inputs : DataFrame
        Sampled training rows, then the edge-case rows.
    outputs : dict of str to ndarray
        Per scoring method, the outputs of the accepted rows, in order.
    rejected : dict of int to tuple of str
        Row position -> failure checks, for rows the policy rejected.
    report : dict
        The policy's actions on the golden inputs, ``{column: {action: count}}``.
    rtol, atol : float
        Tolerances of the comparison; ``0.0`` means exact.
    edge_rows : int
        How many of the last rows of ``inputs`` are edge cases.
    notes : dict
        JSON-ready notes from ``from_training`` (columns the estimator never sees,
        categories its encoders know, the profile's sample); see
        :attr:`ModelBundle.build_notes`.
    """

    inputs: pd.DataFrame
    outputs: Mapping[str, np.ndarray]
    rtol: float = 0.0
    atol: float = 0.0
    rejected: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    report: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    edge_rows: int = 0
    notes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise InvalidArgument(
                    f"Golden tolerances must be numbers >= 0; got {name}={value!r}. Pass "
                    "rtol=0.0, atol=0.0 for an exact comparison.",
                    argument=name, expected="a number >= 0", found=value,
                )

    @property
    def accepted_rows(self) -> np.ndarray:
        """Positions in :attr:`inputs` of the rows that have outputs."""
        keep = np.ones(len(self.inputs), dtype=bool)
        keep[list(self.rejected)] = False
        return np.flatnonzero(keep)

    def meta(self) -> dict[str, Any]:
        """The JSON-ready part (everything but the inputs and output arrays)."""
        return {
            "rtol": self.rtol,
            "atol": self.atol,
            "methods": sorted(self.outputs),
            "rejected": {str(k): list(v) for k, v in sorted(self.rejected.items())},
            "report": {c: dict(a) for c, a in self.report.items()},
            "edge_rows": self.edge_rows,
            **({"notes": dict(self.notes)} if self.notes else {}),
        }

    @classmethod
    def from_parts(
        cls, meta: Mapping[str, Any], inputs: pd.DataFrame, outputs: Mapping[str, np.ndarray]
    ) -> Golden:
        try:
            methods = sorted(str(m) for m in meta["methods"])
            if methods != sorted(outputs) or not methods:
                raise BundleFormatError(
                    f"golden.json lists methods {methods} but the outputs present are "
                    f"{sorted(outputs)}", member="golden/golden.json",
                    expected=methods, found=sorted(outputs))
            return cls(
                inputs=inputs,
                outputs=dict(outputs),
                rtol=float(meta["rtol"]),
                atol=float(meta["atol"]),
                rejected={int(k): tuple(str(c) for c in v)
                          for k, v in dict(meta.get("rejected", {})).items()},
                report={str(c): {str(a): int(n) for a, n in dict(acts).items()}
                        for c, acts in dict(meta.get("report", {})).items()},
                edge_rows=int(meta.get("edge_rows", 0)),
                notes=dict(meta.get("notes", {})),
            )
        except BundleFormatError as exc:
            raise BundleFormatError(
                f"The golden metadata is malformed: {exc}.", member="golden/golden.json",
                expected=exc.expected, found=exc.found,
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BundleFormatError(
                f"The golden metadata is malformed: {type(exc).__name__}: {exc}.",
                member="golden/golden.json",
            ) from None


def _unseen_value(spec: ColumnSpec) -> Any:
    cats = spec.categories or ()
    if all(isinstance(c, str) for c in cats):
        value = UNSEEN_TEXT
        while value in cats:
            value += "_"
        return value
    numbers = [c for c in cats if isinstance(c, int | float) and not isinstance(c, bool)]
    if len(numbers) == len(cats):
        return max(numbers) + 1
    return None


def _holding(s: pd.Series, value: Any) -> pd.Series:
    """``s`` in a dtype that can also hold ``value`` (None means missing)."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if value is not None and value not in dtype.categories:
            return s.cat.add_categories([value])
        return s
    if isinstance(dtype, np.dtype) and value is None:
        if dtype.kind in "iu":
            return s.astype(dtype.name.capitalize().replace("Uint", "UInt"))
        if dtype.kind == "b":
            return s.astype("boolean")
    return s


def golden_inputs(
    X: pd.DataFrame, contract: Contract, *, rows: int, random_state: int
) -> tuple[pd.DataFrame, int]:
    """Sample ``rows`` training rows and append the edge-case rows.

    Returns the frame and how many edge-case rows it ends with.
    """
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise InvalidArgument.of("ModelBundle.from_training", "golden_rows",
                                 "an integer >= 1", rows)
    if len(X) == 0:
        raise InvalidArgument(
            "Cannot build golden outputs from an empty training frame; pass the training "
            "rows (or a representative sample of them).",
            argument="X", expected="at least one row", found="0 rows",
        )
    frame = X[list(contract.names)]
    sample = frame.sample(n=rows, random_state=random_state) if rows < len(frame) else frame
    sample = sample.reset_index(drop=True)
    edges: list[tuple[str, Any]] = []
    for spec in contract.columns:
        if spec.categories is not None:
            value = _unseen_value(spec)
            if value is not None:
                edges.append((spec.name, value))
    edges.extend((spec.name, None) for spec in contract.columns)
    base = sample.iloc[[0] * len(edges)].reset_index(drop=True)
    columns = {}
    for name in contract.names:
        s = pd.concat([sample[name], base[name]], ignore_index=True)
        for i, (column, value) in enumerate(edges):
            if column == name:
                s = _holding(s, value)
                s.iloc[len(sample) + i] = value
        columns[name] = s
    return pd.DataFrame(columns), len(edges)


def _equal(expected: np.ndarray, obtained: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise equality; NaN equals NaN; tolerances apply to floats."""
    if expected.dtype.kind in "fc" or obtained.dtype.kind in "fc":
        e = expected.astype("float64")
        o = obtained.astype("float64")
        if rtol == 0.0 and atol == 0.0:
            return np.asarray((e == o) | (np.isnan(e) & np.isnan(o)))
        return np.asarray(np.isclose(o, e, rtol=rtol, atol=atol, equal_nan=True), dtype=bool)
    return np.asarray(
        [a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(
            expected.ravel().tolist(), obtained.ravel().tolist(), strict=True)], dtype=bool
    ).reshape(expected.shape)


def _row_list(a: Any) -> Any:
    """One output row as plain Python (an element of a label array is already a str)."""
    return a.tolist() if isinstance(a, np.ndarray | np.generic) else a


def compare_outputs(
    method: str,
    expected: np.ndarray,
    obtained: np.ndarray,
    *,
    rows: np.ndarray,
    rtol: float,
    atol: float,
    examples: int = 5,
) -> dict[str, Any] | None:
    """Compare one method's outputs; ``None`` when they agree, else a mismatch dict.

    ``rows`` gives, for each output row, its position in the golden inputs.
    """
    obtained = np.asarray(obtained)
    if expected.shape != obtained.shape:
        return {
            "method": method, "rows_differing": len(expected),
            "rows_total": len(expected),
            "max_abs_diff": None, "max_rel_diff": None,
            "detail": f"shape changed from {expected.shape} to {obtained.shape}",
            "examples": [],
        }
    try:
        eq = _equal(expected, obtained, rtol, atol)
    except (TypeError, ValueError):
        eq = np.zeros(expected.shape, dtype=bool)
    row_eq = np.asarray(eq.reshape(eq.shape[0], -1).all(axis=1) if eq.ndim > 1 else eq)
    if row_eq.all():
        return None
    max_abs = max_rel = None
    if expected.dtype.kind in "fciu" and obtained.dtype.kind in "fciu":
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.abs(obtained.astype("float64") - expected.astype("float64"))
            rel = diff / np.abs(expected.astype("float64"))
        diff = diff[~eq]
        rel = rel[~eq]
        finite = np.isfinite(diff)
        max_abs = float(diff[finite].max()) if finite.any() else float("nan")
        rfinite = np.isfinite(rel)
        max_rel = float(rel[rfinite].max()) if rfinite.any() else float("inf")
    bad = np.flatnonzero(~row_eq)
    return {
        "method": method,
        "rows_differing": len(bad),
        "rows_total": len(row_eq),
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "detail": None,
        "examples": [
            {"row": int(rows[i]), "expected": _row_list(expected[i]),
             "obtained": _row_list(obtained[i])}
            for i in bad[:examples]
        ],
    }


@dataclass(frozen=True)
class PolicyDiff:
    """How the policy now treats the golden inputs, against what was recorded.

    Attributes
    ----------
    rows : tuple of (row, recorded, now)
        Each golden row whose fate changed: the failed checks it was rejected with
        when recorded and now (``None``: accepted).
    columns : tuple of str
        Columns whose policy actions changed, in the order of ``recorded`` then ``now``.
    recorded, now : dict
        All policy actions, ``{column: {action: count}}``, recorded and now.
    """

    rows: tuple[tuple[int, tuple[str, ...] | None, tuple[str, ...] | None], ...]
    columns: tuple[str, ...]
    recorded: dict[str, dict[str, int]]
    now: dict[str, dict[str, int]]

    def __bool__(self) -> bool:
        return bool(self.rows or self.columns)


def policy_diff(golden: Golden, report: PolicyReport) -> PolicyDiff:
    """Compare the policy's treatment of the golden inputs (``report``, from
    ``prepare(golden.inputs, invalid="drop")``) with what ``golden`` recorded."""
    now_rejected = report.rejected_checks()
    rows = []
    for row in sorted(set(golden.rejected) | set(now_rejected)):
        before, after = golden.rejected.get(row), now_rejected.get(row)
        if before != after:
            rows.append((row, before, after))
    now = report.counts()
    recorded = {c: dict(a) for c, a in golden.report.items()}
    columns = tuple(c for c in dict.fromkeys([*recorded, *now])
                    if recorded.get(c, {}) != now.get(c, {}))
    return PolicyDiff(tuple(rows), columns, recorded, now)


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of re-running the golden inputs.

    Attributes
    ----------
    ok : bool
        True when every output and every recorded rejection reproduced.
    mismatches : list of dict
        Per differing method: ``method``, ``rows_differing``, ``rows_total``,
        ``max_abs_diff``, ``max_rel_diff``, ``examples`` (expected vs obtained).
    policy_diff : list of str
        How the policy's behaviour on the edge cases changed (rejections, actions).
    environment_diff : dict
        ``package -> (recorded, running)`` for every package whose version differs.
    """

    mismatches: tuple[dict[str, Any], ...] = ()
    policy_diff: tuple[str, ...] = ()
    environment_diff: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    name: str = ""

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.policy_diff

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bundle": self.name,
            "mismatches": [dict(m) for m in self.mismatches],
            "policy_diff": list(self.policy_diff),
            "environment_diff": {k: list(v) for k, v in self.environment_diff.items()},
        }

    def __repr__(self) -> str:
        return (f"<VerificationReport {self.name or 'bundle'} ok={self.ok} "
                f"mismatches={[m['method'] for m in self.mismatches]} "
                f"policy_changes={len(self.policy_diff)} "
                f"packages_changed={sorted(self.environment_diff)}>")

    def _repr_html_(self) -> str:
        from safemodel.core._display import verification_html

        return verification_html(self)

    def describe(self) -> str:
        """A readable, multi-line account of what differs (no pandas repr)."""
        if self.ok:
            return f"{self.name}: golden outputs reproduce."
        lines = [f"{self.name}: golden outputs do not reproduce."]
        for m in self.mismatches:
            if m.get("detail"):
                lines.append(f"  {m['method']}: {m['detail']}")
                continue
            lines.append(
                f"  {m['method']}: {m['rows_differing']} of {m['rows_total']} rows differ; "
                f"max abs diff {_num(m['max_abs_diff'])}, max rel diff {_num(m['max_rel_diff'])}"
            )
            for ex in m["examples"]:
                lines.append(
                    f"    row {ex['row']}: expected {_short(ex['expected'])}, "
                    f"obtained {_short(ex['obtained'])}"
                )
        lines.extend(f"  policy: {d}" for d in self.policy_diff)
        if self.environment_diff:
            changes = ", ".join(
                f"{k} {a or 'absent'} -> {b or 'absent'}"
                for k, (a, b) in sorted(self.environment_diff.items())
            )
            lines.append(f"  packages changed since the bundle was built: {changes}")
        else:
            lines.append("  no recorded package version changed, so the estimator or code "
                         "it calls from outside the recorded packages differs")
            lines.append("  " + GOLDEN_NEXT_STEP)
        return "\n".join(lines)


GOLDEN_NEXT_STEP = (
    "Do not serve it: find what changed (safemodel diff against the last good bundle), "
    "then rebuild the bundle from the training run with ModelBundle.from_training and "
    "save it again; if small numeric differences are acceptable, rebuild with "
    "from_training(..., rtol=..., atol=...)."
)
"""The last line of a golden mismatch that no package change explains."""


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def _short(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v[:8]) + (", ..." if len(v) > 8 else "") + "]"
    return repr(v)


def describe_policy_diff(diff: PolicyDiff) -> list[str]:
    """One line per row whose fate changed, and one for changed action counts."""
    lines = [f"row {row}: recorded {_fate(before)}, now {_fate(after)}"
             for row, before, after in diff.rows]
    if diff.columns:
        lines.append(f"policy actions changed: recorded {diff.recorded}, now {diff.now}")
    return lines


def _fate(checks: tuple[str, ...] | None) -> str:
    return f"rejected {list(checks)}" if checks else "accepted"
