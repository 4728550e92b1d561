"""What changed between two bundles: contract, policy, environment, methods, outputs.

The outputs are compared on the union of both golden inputs, each bundle scoring
the rows its own contract and policy accept, with the comparison that verifies golden
outputs (:func:`safemodel.core.golden.compare_outputs`, exact).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from safemodel._text import cell, listing, table
from safemodel._values import flatten
from safemodel.core.bundle import ModelBundle
from safemodel.core.golden import compare_outputs

__all__ = ["BundleDiff", "diff"]

_EXAMPLES = 3
_COLUMN_FIELDS = ("dtype", "kind", "nullable", "impute")


@dataclass(frozen=True)
class BundleDiff:
    """The differences between bundle A and bundle B, JSON-ready.

    Attributes
    ----------
    a, b : dict
        ``name``, ``version``, ``fingerprint`` and ``path`` (``None`` unless the
        caller knows the file) of each bundle.
    contract : dict
        ``added`` and ``removed`` column names, and ``changed``:
        ``{column: {field: [a, b]}}`` (``categories`` as ``added``/``removed``).
    policy, environment : dict
        ``{key: [a, b]}`` for every setting or build-time package version that differs
        (policy keys flattened: ``columns.island.unseen_category``).
    methods : dict
        Scoring methods ``added`` and ``removed``.
    outputs : dict
        ``rows`` (union of both golden inputs), ``scored_by_both``,
        ``rejected_only_by_a``, ``rejected_only_by_b`` (row positions), and
        ``methods``: per shared method ``rows_compared``, ``rows_differing``,
        ``max_abs_diff``, ``detail`` (why they could not be compared) and
        ``examples`` (``row``, ``a``, ``b``).
    """

    a: Mapping[str, Any]
    b: Mapping[str, Any]
    contract: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, list[Any]] = field(default_factory=dict)
    environment: Mapping[str, list[Any]] = field(default_factory=dict)
    methods: Mapping[str, list[str]] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def same_content(self) -> bool:
        """Whether both bundles have the same fingerprint."""
        return bool(self.a["fingerprint"] == self.b["fingerprint"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what ``safemodel diff --json`` prints)."""
        return {
            "a": dict(self.a),
            "b": dict(self.b),
            "same_content": self.same_content,
            "contract": dict(self.contract),
            "policy": dict(self.policy),
            "environment": dict(self.environment),
            "methods": dict(self.methods),
            "outputs": dict(self.outputs),
        }

    def describe(self) -> str:
        """A readable, multi-line account (what ``safemodel diff`` prints)."""
        with_path = self.a.get("path") is not None or self.b.get("path") is not None
        headers = ["", "name", "version", "fingerprint"] + (["path"] if with_path else [])
        rows = [[side, ident["name"], ident["version"], ident["fingerprint"][:16]]
                + ([ident.get("path")] if with_path else [])
                for side, ident in (("A", self.a), ("B", self.b))]
        lines = [table(headers, rows, indent="")]
        if self.same_content:
            lines.append("Same content (equal fingerprints).")
        lines += ["", "Contract", *(_describe_contract(self.contract) or ["  no change"])]
        for title, changes in (("Policy", self.policy),
                               ("Environment (at build time)", self.environment)):
            lines += ["", title]
            lines += ([f"  {k}: {cell(v[0])} -> {cell(v[1])}" for k, v in changes.items()]
                      or ["  no change"])
        if self.methods.get("added") or self.methods.get("removed"):
            lines += ["", "Methods", f"  added: {listing(self.methods['added']) or '-'}; "
                                     f"removed: {listing(self.methods['removed']) or '-'}"]
        lines += ["", *_describe_outputs(self.outputs)]
        return "\n".join(lines)


def diff(a: ModelBundle, b: ModelBundle) -> BundleDiff:
    """What changed from bundle ``a`` to bundle ``b``.

    Parameters
    ----------
    a, b : ModelBundle
        Typically two versions of one model, loaded (and so verified).

    Returns
    -------
    BundleDiff
        ``.to_dict()`` is JSON-ready, ``.describe()`` readable text.

    Notes
    -----
    Both estimators score the union of both golden inputs, so the outputs are
    compared on the rows each bundle was checked on; a row one policy rejects and the
    other accepts is listed, not compared. An estimator that raises is reported in
    that method's ``detail``.

    Examples
    --------
    >>> import safemodel as sm
    >>> d = sm.diff(sm.load("churn-1.2.0.safemodel"),
    ...             sm.load("churn-1.3.0.safemodel"))      # doctest: +SKIP
    >>> d.contract["removed"], d.policy                     # doctest: +SKIP
    (['year'], {'unseen_category': ['missing', 'most_frequent']})
    >>> d.outputs["methods"]["predict_proba"]["rows_differing"]  # doctest: +SKIP
    12
    >>> print(d.describe())                                 # doctest: +SKIP
    """
    contract_a, contract_b = a.contract.to_dict(), b.contract.to_dict()
    return BundleDiff(
        a=_identity(a),
        b=_identity(b),
        contract=_contract_diff(contract_a, contract_b),
        policy=_mapping_diff(flatten(a.policy.to_dict()), flatten(b.policy.to_dict())),
        environment=_mapping_diff(a.environment, b.environment),
        methods=_added_removed(list(a.methods), list(b.methods)),
        outputs=_outputs_diff(a, b),
    )


def _identity(bundle: ModelBundle) -> dict[str, Any]:
    return {"name": bundle.name, "version": str(bundle.version),
            "fingerprint": bundle.fingerprint, "path": None}


def _added_removed(a: Sequence[Any], b: Sequence[Any]) -> dict[str, list[Any]]:
    return {"added": [x for x in b if x not in a], "removed": [x for x in a if x not in b]}


def _mapping_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    keys = [*a, *(k for k in b if k not in a)]
    return {k: [a.get(k), b.get(k)] for k in keys if a.get(k) != b.get(k)}


def _contract_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    cols_a = {c["name"]: c for c in a.get("columns", [])}
    cols_b = {c["name"]: c for c in b.get("columns", [])}
    changed: dict[str, Any] = {}
    for name in (n for n in cols_a if n in cols_b):
        ca, cb = cols_a[name], cols_b[name]
        change: dict[str, Any] = {f: [ca.get(f), cb.get(f)]
                                  for f in _COLUMN_FIELDS if ca.get(f) != cb.get(f)}
        cats = _added_removed(list(ca.get("categories") or []), list(cb.get("categories") or []))
        if cats["added"] or cats["removed"]:
            change["categories"] = cats
        if change:
            changed[name] = change
    return {**_added_removed(list(cols_a), list(cols_b)), "changed": changed}


def _outputs_diff(a: ModelBundle, b: ModelBundle) -> dict[str, Any]:
    """Score the union of both golden fixtures with both bundles and compare."""
    union = pd.concat([a.golden.inputs, b.golden.inputs], ignore_index=True)
    with contextlib.suppress(TypeError, ValueError):
        union = union.drop_duplicates(ignore_index=True)
    scored_a, rows_a = _score_all(a, union)
    scored_b, rows_b = _score_all(b, union)
    both = np.intersect1d(rows_a, rows_b)
    methods: dict[str, Any] = {}
    for method in (m for m in a.methods if m in b.methods):
        out_a, out_b = scored_a[method], scored_b[method]
        if isinstance(out_a, str) or isinstance(out_b, str):
            methods[method] = {"rows_compared": 0, "rows_differing": None, "max_abs_diff": None,
                               "detail": out_a if isinstance(out_a, str) else out_b,
                               "examples": []}
            continue
        methods[method] = _compare(method, out_a[np.searchsorted(rows_a, both)],
                                   out_b[np.searchsorted(rows_b, both)], both)
    return {
        "rows": len(union),
        "scored_by_both": len(both),
        "rejected_only_by_a": [int(r) for r in np.setdiff1d(rows_b, rows_a)],
        "rejected_only_by_b": [int(r) for r in np.setdiff1d(rows_a, rows_b)],
        "methods": methods,
    }


def _score_all(bundle: ModelBundle, union: pd.DataFrame
               ) -> tuple[dict[str, np.ndarray | str], np.ndarray]:
    """Outputs per method on the rows the bundle accepts (an error text if it raised)."""
    frame = union[[c for c in bundle.contract.names if c in union.columns]]
    prepared = bundle.prepare(frame, invalid="drop")
    outputs: dict[str, np.ndarray | str] = {}
    for method in bundle.methods:
        try:
            outputs[method] = np.asarray(getattr(bundle.estimator, method)(prepared.frame))
        except Exception as exc:  # the estimator's own failure is part of the difference
            outputs[method] = f"{bundle.name} {bundle.version}: {type(exc).__name__}: {exc}"
    return outputs, np.asarray(prepared.rows)


def _compare(method: str, a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """One method's outputs on the rows both accepted, exactly, as golden outputs are."""
    result: dict[str, Any] = {"rows_compared": len(rows), "rows_differing": 0,
                              "max_abs_diff": None, "detail": None, "examples": []}
    mismatch = compare_outputs(method, a, b, rows=rows, rtol=0.0, atol=0.0,
                               examples=_EXAMPLES)
    if mismatch is None:
        return result
    max_abs = mismatch["max_abs_diff"]
    result.update(
        rows_differing=mismatch["rows_differing"],
        # NaN means no finite difference (an infinity or NaN changed): no number to give.
        max_abs_diff=None if max_abs is None or max_abs != max_abs else max_abs,
        detail=mismatch["detail"],
        examples=[{"row": ex["row"], "a": ex["expected"], "b": ex["obtained"]}
                  for ex in mismatch["examples"]],
    )
    return result


def _describe_contract(contract: Mapping[str, Any]) -> list[str]:
    body = []
    if contract.get("added"):
        body.append(f"  columns added: {', '.join(contract['added'])}")
    if contract.get("removed"):
        body.append(f"  columns removed: {', '.join(contract['removed'])}")
    for column, change in contract.get("changed", {}).items():
        items = [f"{f} {cell(v[0])} -> {cell(v[1])}" for f, v in change.items()
                 if f != "categories"]
        cats = change.get("categories")
        if cats and cats["added"]:
            items.append(f"categories added {listing(cats['added'])}")
        if cats and cats["removed"]:
            items.append(f"categories removed {listing(cats['removed'])}")
        body.append(f"  {column}: " + "; ".join(items))
    return body


def _describe_outputs(out: Mapping[str, Any]) -> list[str]:
    lines = [f"Outputs on the union of both golden inputs: {out['rows']} rows, "
             f"{out['scored_by_both']} accepted by both"]
    rows = [[m, r["detail"] or f"{r['rows_differing']} of {r['rows_compared']}",
             r["max_abs_diff"]] for m, r in out["methods"].items()]
    lines.append(table(["method", "rows differing", "max abs diff"], rows))
    for side in ("a", "b"):
        rejected = out[f"rejected_only_by_{side}"]
        if rejected:
            lines.append(f"  rejected only by {side.upper()}: rows {listing(rejected)}")
    return lines
