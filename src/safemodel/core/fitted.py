"""What the fitted estimator itself says about its input: the contract, checked against it.

The contract is inferred from the frame passed to ``from_training``, but the estimator
is the authority on what it needs:

- columns of ``X`` it never saw (absent from ``feature_names_in_``: a target left in
  ``X``, an id column) are not required at scoring time;
- columns it needs that ``X`` lacks are an error when the bundle is built;
- categories its fitted encoders know but ``X`` lacks (a sample of the training data)
  are added to the allowed set, so they are not "unseen" in production.

Only scikit-learn's public fitted attributes are read (``feature_names_in_``,
``categories_``, ``get_feature_names_out``), plus the walk through pipelines, column
transformers and HistGradientBoosting's own categorical encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from safemodel.core.contract import ColumnSpec, Contract
from safemodel.core.golden import Golden
from safemodel.core.policy import Policy
from safemodel.core.report import logger
from safemodel.errors import InvalidArgument

__all__ = ["check_fitted", "check_golden_accepted", "check_policy_columns", "encoder_categories",
           "fitted_contract", "frame_for", "needed_columns", "with_known_categories"]

_ENCODERS = frozenset({"OneHotEncoder", "OrdinalEncoder", "TargetEncoder"})


def check_fitted(estimator: Any) -> None:
    """Raise :class:`InvalidArgument` when a scikit-learn estimator is not fitted yet."""
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return
    if not isinstance(estimator, BaseEstimator):
        return
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        name = type(estimator).__name__
        raise InvalidArgument(
            f"{name} is not fitted: call {name}.fit(X, y) first, then bundle the fitted "
            "estimator with ModelBundle.from_training.",
            argument="estimator", expected="a fitted estimator", found=name,
        ) from None
    except TypeError:  # not an estimator in scikit-learn's sense: nothing to check
        return


def needed_columns(estimator: Any) -> list[str] | None:
    """The input columns the estimator was fitted on, in order (``None``: it does not say)."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    try:
        listed = [str(n) for n in np.asarray(names).tolist()]
    except (TypeError, ValueError):
        return None
    return listed or None


def _names_out(step: Any, names: Sequence[str] | None) -> list[str] | None:
    """The column names a fitted step hands to the next one, when it says."""
    get = getattr(step, "get_feature_names_out", None)
    if get is None:
        return None
    try:
        return [str(n) for n in get()]
    except Exception:  # a step that cannot name its outputs: stop following names
        return None


def _walk(est: Any, names: Sequence[str] | None) -> Iterator[tuple[str, list[Any]]]:
    """``(input column, categories)`` for every fitted encoder reachable from ``est``."""
    kind = type(est).__name__
    own = needed_columns(est)
    names = own if own is not None else names
    if kind in _ENCODERS and hasattr(est, "categories_"):
        if names is not None and len(names) == len(est.categories_):
            for name, cats in zip(names, est.categories_, strict=True):
                yield name, list(np.asarray(cats, dtype=object).tolist())
        return
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and kind == "Pipeline":
        current = names
        for _, step in steps:
            if step is None or step == "passthrough":
                continue
            yield from _walk(step, current)
            current = _names_out(step, current)
            if current is None:
                return
        return
    transformers = getattr(est, "transformers_", None)
    indices = getattr(est, "_transformer_to_input_indices", None)
    if isinstance(transformers, list) and isinstance(indices, dict) and names is not None:
        for name, trans, _ in transformers:
            if isinstance(trans, str):
                continue
            positions = indices.get(name, [])
            yield from _walk(trans, [names[i] for i in positions if i < len(names)])
        return
    for attribute in ("_preprocessor", "best_estimator_", "regressor_"):
        inner = getattr(est, attribute, None)
        if inner is not None and hasattr(inner, "fit"):
            yield from _walk(inner, names)


def encoder_categories(estimator: Any) -> dict[str, list[Any]]:
    """Per input column, the categories the estimator's fitted encoders know."""
    out: dict[str, list[Any]] = {}
    for name, cats in _walk(estimator, needed_columns(estimator)):
        known = out.setdefault(name, [])
        known.extend(c for c in cats if c not in known and not _is_missing(c))
    return out


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def with_known_categories(
    contract: Contract, known: dict[str, list[Any]], *, add: bool = True
) -> tuple[Contract, dict[str, list[Any]]]:
    """``contract`` with the encoders' categories added to its allowed sets (``add``).

    Only text columns with an allowed set are extended (a ``category`` column's
    categories are its dtype, which the estimator sees). A numeric column an encoder
    treats as categories imputes a category it knows. Returns the contract and
    ``{column: [categories the encoders know that the contract did not]}``.
    """
    added: dict[str, list[Any]] = {}
    columns: list[ColumnSpec] = []
    for spec in contract.columns:
        cats = known.get(spec.name)
        if spec.kind == "number" and cats:
            columns.append(_known_impute(spec, cats))
            continue
        if spec.categories is None or spec.dtype == "category" or not cats:
            columns.append(spec)
            continue
        allowed = spec.allowed or frozenset()
        extra = [c for c in cats if isinstance(c, str) and c not in allowed]
        if not extra:
            columns.append(spec)
            continue
        added[spec.name] = extra
        columns.append(replace(spec, categories=tuple(sorted([*spec.categories, *extra])))
                       if add else spec)
    if tuple(columns) == contract.columns:
        return contract, added
    return Contract(tuple(columns)), added


# ------------------------------------------------------------ from_training steps


def _known_impute(spec: ColumnSpec, cats: list[Any]) -> ColumnSpec:
    """A numeric column an encoder treats as categories: impute a category it knows.

    The median of an even count of values is no observed value, so imputing it would
    give the encoder an unknown category.
    """
    numbers = [c for c in cats if isinstance(c, int | float) and not isinstance(c, bool)]
    if not numbers or spec.impute is None or spec.impute in numbers:
        return spec
    nearest = min(numbers, key=lambda c: (abs(c - spec.impute), c))
    if "int" in spec.dtype.lower():
        nearest = int(nearest)
    return replace(spec, impute=nearest)


def frame_for(estimator: Any, frame: pd.DataFrame, notes: dict[str, Any]) -> pd.DataFrame:
    """``frame`` reduced to the columns the estimator was fitted on, in its order.

    Columns it never sees are recorded in ``notes["unused_columns"]`` and logged; a
    column it needs that ``frame`` lacks is an error.
    """
    needed = needed_columns(estimator)
    if needed is None:
        return frame
    present = {str(c) for c in frame.columns}
    missing = [n for n in needed if n not in present]
    if missing:
        raise InvalidArgument(
            f"{type(estimator).__name__} was fitted on column(s) {missing} that X lacks "
            f"(X has {[str(c) for c in frame.columns]}). Pass the training inputs the "
            "estimator was fitted on.",
            argument="X", expected=f"the columns {needed}", found=missing,
        )
    wanted = set(needed)
    unused = [str(c) for c in frame.columns if str(c) not in wanted]
    if not unused:
        return frame if list(frame.columns) == needed else frame[needed]
    notes["unused_columns"] = unused
    logger.warning(
        "%s never sees column(s) %s of X (not in feature_names_in_): they are not part of "
        "the contract and not required when scoring.", type(estimator).__name__, unused)
    return frame[needed]


def fitted_contract(estimator: Any, contract: Contract, known_categories: str,
                    notes: dict[str, Any]) -> Contract:
    """``contract`` checked against the fitted estimator (see the module docstring)."""
    needed = needed_columns(estimator)
    if needed is not None:
        lacking = [n for n in needed if n not in contract.name_set]
        if lacking:
            raise InvalidArgument(
                f"The contract lacks column(s) {lacking} that {type(estimator).__name__} "
                "was fitted on; add them to the contract.",
                argument="contract", expected=f"the columns {needed}", found=lacking,
            )
        unused = [n for n in contract.names if n not in set(needed)]
        if unused:
            notes.setdefault("unused_columns", [])
            notes["unused_columns"].extend(u for u in unused if u not in notes["unused_columns"])
            contract = Contract(tuple(contract[n] for n in needed))
    known = encoder_categories(estimator)
    extended, added = with_known_categories(contract, known, add=known_categories == "add")
    if added:
        notes["known_categories"] = {"added": known_categories == "add", "columns": added}
        logger.warning(
            "%s knows categories that X lacks: %s; they are %s.", type(estimator).__name__,
            added, "added to the contract's allowed sets" if known_categories == "add"
            else "reported only (still unseen when scoring)")
    return extended


def check_policy_columns(policy: Policy, contract: Contract, notes: dict[str, Any]) -> None:
    """A policy naming a column the contract lacks is an error (a misspelt name)."""
    unknown = [c for c in policy.columns if c not in contract.name_set]
    if not unknown:
        return
    unused = set(notes.get("unused_columns", ()))
    why = [f"{c!r} is not used by the estimator" for c in unknown if c in unused]
    raise InvalidArgument(
        f"Policy(columns=...) names column(s) {unknown} that the contract does not have "
        f"({'; '.join(why) + '; ' if why else ''}contract columns: {list(contract.names)}). "
        "Fix the column names in the policy.",
        argument="policy", expected=f"columns among {list(contract.names)}", found=unknown,
    )


def check_golden_accepted(golden: Golden) -> None:
    """A contract that rejects its own training rows (sampled into golden) is an error."""
    sampled = len(golden.inputs) - golden.edge_rows
    bad = {r: checks for r, checks in sorted(golden.rejected.items()) if r < sampled}
    if not bad:
        return
    shown = dict(list(bad.items())[:10])
    raise InvalidArgument(
        f"The contract rejects {len(bad)} of the {sampled} training rows sampled into the "
        f"golden fixture (golden row: failed checks) {shown}. A contract must accept the "
        "data the model was trained on: fix the contract's checks, or the training data.",
        argument="contract", expected="a contract accepting the training rows",
        found=sorted(bad),
    )
