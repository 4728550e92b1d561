"""Score Dask DataFrames with a bundle, with the same guarantees as on one machine.

:func:`score` adds the bundle's outputs to a ``dask.dataframe.DataFrame``, partition by
partition::

    import safemodel.dask

    scored = safemodel.dask.score(bundle, ddf, method="predict_proba", invalid="drop")
    scored.to_parquet("scores/")                          # proba_Adelie, proba_Chinstrap, ...
    safemodel.dask.policy_counts(dd.read_parquet("scores/"))
    # {'island': {'imputed': 12, 'unseen_to_missing': 12}, 'year': {'imputed': 3}}

The bundle's bytes enter the task graph once, as one key that each worker fetches
once. Every worker process loads them with :func:`safemodel.load` in its own
environment, so the golden outputs are re-run there, once per process and bundle; a
worker whose packages score differently raises :class:`~safemodel.GoldenMismatchError`,
which Dask re-raises where the result is computed, with its diff.

Contract and policy run per partition, exactly as :meth:`ModelBundle.score` runs them.
What the policy did to each row travels with the row, in :data:`POLICY_COLUMN` (and,
with ``invalid="drop"``, why a row was rejected in :data:`REJECTED_COLUMN`).

This module needs ``dask[dataframe]`` (``pip install "safemodel[dask]"``, which adds
``distributed`` for clusters); ``import safemodel`` never imports it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from safemodel.core.engine import Invalid
from safemodel.core.outputs import rejection_limit
from safemodel.integrations.plan import (
    POLICY_COLUMN,
    REJECTED_COLUMN,
    BundleLike,
    Output,
    check_columns,
    check_invalid,
    check_rejections,
    count_frame,
    count_table,
    empty_scores,
    nested_counts,
    output_columns,
    score_frame,
    scored_columns,
    scoring_method,
    shippable,
    verified_bundle,
)
from safemodel.integrations.worker_logging import DEFAULT_LEVEL, batch_logging, check_level

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["POLICY_COLUMN", "REJECTED_COLUMN", "policy_counts", "score"]


def _dask() -> Any:
    try:
        import dask
        import dask.dataframe  # the part that needs the dataframe extra
    except ImportError as exc:
        raise ImportError(
            'safemodel.dask needs dask.dataframe; install it with pip install "safemodel[dask]".'
        ) from exc
    return dask


def score(
    bundle: BundleLike,
    frame: dd.DataFrame,
    *,
    method: str | None = None,
    invalid: Invalid = "raise",
    output_col: str | None = None,
    log_level: int | str = DEFAULT_LEVEL,
    signing_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    trust: bool = False,
    allowed_modules: Iterable[str] | None = None,
    max_rejected: float | None = None,
) -> dd.DataFrame:
    """Add a bundle's outputs to a Dask DataFrame, verified in every worker process.

    Only the contract's columns reach the estimator; the others pass through untouched.
    Each worker process loads the bundle once and re-runs its golden inputs there; the
    contract and policy then run per partition, exactly as :meth:`ModelBundle.score`
    runs them.

    Parameters
    ----------
    bundle : ModelBundle, str or path-like
        A bundle, or the path of a bundle file (loaded and verified here too).
    frame : dask.dataframe.DataFrame
        Holds every contract column; other columns are kept as they are.
    method : {"predict_proba", "predict", "decision_function"}, optional
        Defaults to ``predict_proba`` when the estimator has it, else ``predict``.
    invalid : {"raise", "drop"}, default "raise"
        ``"raise"``: a row that breaks the contract makes the computation raise the
        worker's :class:`~safemodel.ContractViolation`. ``"drop"``: such rows get null
        outputs and say why in :data:`REJECTED_COLUMN`.
    output_col : str, optional
        Name of the output column, or prefix of one column per class for
        ``predict_proba`` (``proba_Adelie``, ...). Defaults to ``"prediction"``,
        ``"proba"`` or ``"decision"``.
    log_level : str or int, default "ERROR"
        What the policy's per-batch log lines may reach the workers' logs: by default
        none (about 250 lines per million rows otherwise); ``"WARNING"`` logs each
        batch the policy changed, ``"INFO"`` every batch with an action. See
        :mod:`safemodel.integrations.worker_logging`.
    signing_key, trusted_keys, trust, allowed_modules
        As for :func:`safemodel.load`, applied on the driver to a bundle given as a
        path: the driver establishes trust once; workers load only bytes with the
        SHA-256 it checked, and need no key. ``allowed_modules`` also applies where
        workers unpickle.
    max_rejected : int or float, optional
        With ``invalid="drop"``: the most rows that may be rejected over the whole
        frame, as a count (int) or fraction (float in ``[0, 1]``). The frame is then
        scored and persisted before returning, and more rejected rows raise
        :class:`~safemodel.errors.TooManyRejected` (with the counts and the most
        frequent reasons) instead of a job that "succeeds" having dropped most rows.

    Returns
    -------
    dask.dataframe.DataFrame
        ``frame``'s columns, the outputs, :data:`POLICY_COLUMN` and (with
        ``invalid="drop"``) :data:`REJECTED_COLUMN`. Lazy; computing it raises a
        worker's :class:`~safemodel.GoldenMismatchError` when that worker's
        environment does not reproduce the golden outputs.

    Raises
    ------
    ContractViolation
        ``frame`` lacks contract columns (every missing one is named).
    SafeModelError
        A bad argument, or ``frame`` already has a column scoring would add.

    Examples
    --------
    >>> import safemodel.dask
    >>> scored = safemodel.dask.score(bundle, ddf, invalid="drop")  # doctest: +SKIP
    >>> scored[["proba_Adelie", "_safemodel_rejected"]].head()      # doctest: +SKIP
    """
    dask = _dask()
    allowed = None if allowed_modules is None else tuple(allowed_modules)
    the_bundle, data, sha256 = shippable(bundle, signing_key=signing_key,
                                         trusted_keys=trusted_keys, trust=trust,
                                         allowed_modules=allowed)
    method = scoring_method(the_bundle, method)
    check_invalid(invalid)
    limit = rejection_limit(max_rejected, "safemodel.dask.score", invalid)
    outputs = output_columns(the_bundle, method, output_col)
    columns = [str(c) for c in frame.columns]
    check_columns(columns, the_bundle, outputs, invalid)
    # One key holding the bytes, named by their content: each worker fetches it once.
    shipped = dask.delayed(data, pure=True)
    meta = pd.concat([frame._meta, empty_scores(outputs, invalid)], axis=1)
    level = check_level(log_level)
    scored: dd.DataFrame = frame.map_partitions(  # type: ignore[no-untyped-call]
        _score_partition, shipped, (the_bundle.fingerprint, sha256, allowed), method, invalid,
        outputs, the_bundle.contract.names, level, meta=meta,
    )
    if limit is not None:
        scored = scored.persist()  # type: ignore[no-untyped-call]
        rejected = scored[REJECTED_COLUMN].notnull()
        rows, bad = dask.compute(rejected.size, rejected.sum())
        check_rejections(int(rows), int(bad), limit, f"{the_bundle.name}=={the_bundle.version}",
                         lambda: policy_counts(scored))
    return scored


def _score_partition(
    partition: pd.DataFrame,
    data: bytes,
    identity: tuple[str, str, tuple[str, ...] | None],
    method: str,
    invalid: Invalid,
    outputs: Sequence[Output],
    names: Sequence[str],
    log_level: int,
) -> pd.DataFrame:
    fingerprint, sha256, allowed = identity
    bundle = verified_bundle(fingerprint, lambda: data, sha256, allowed)
    with batch_logging(log_level):
        added = score_frame(bundle, partition[list(names)], method, invalid, outputs)
    return pd.concat([partition, added], axis=1)


def policy_counts(frame: dd.DataFrame | pd.DataFrame) -> dict[str, dict[str, int]]:
    """Count what the policy did, and why rows were rejected, over a scored frame.

    Computes the frame's :data:`POLICY_COLUMN` and :data:`REJECTED_COLUMN`. Pass the
    written result (``dd.read_parquet(...)``), a persisted frame, or the computed pandas
    frame; otherwise Dask scores everything again to count.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame or pandas.DataFrame
        Returned by :func:`score` (or computed from it, or read back).

    Returns
    -------
    dict
        ``{column: {action: rows}}``, as :meth:`PolicyReport.counts` gives on one machine
        (``imputed``, ``unseen_to_missing`` ...), plus ``"rejected:<check>"`` entries for
        rows dropped with ``invalid="drop"``.

    Raises
    ------
    SafeModelError
        ``frame`` has no :data:`POLICY_COLUMN`.

    Examples
    --------
    >>> scored = safemodel.dask.score(bundle, ddf).persist()  # doctest: +SKIP
    >>> safemodel.dask.policy_counts(scored)                 # doctest: +SKIP
    {'island': {'imputed': 12, 'unseen_to_missing': 12}}
    """
    columns = scored_columns([str(c) for c in frame.columns])
    if isinstance(frame, pd.DataFrame):
        return nested_counts(count_frame(frame[columns]))
    parts = frame[columns].map_partitions(_count_partition,
                                          meta=_count_partition(frame._meta[columns]))
    table = parts.compute()
    counts: Counter[tuple[str, str]] = Counter()
    for column, action, rows in table.itertuples(index=False):
        counts[(column, action)] += rows
    return nested_counts(counts)


def _count_partition(partition: pd.DataFrame) -> pd.DataFrame:
    return count_table(count_frame(partition))
