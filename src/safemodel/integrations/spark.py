"""Score Spark DataFrames with a bundle, with the same guarantees as on one machine.

:func:`score` adds the bundle's outputs to a Spark DataFrame through ``mapInArrow``::

    import safemodel.spark

    scored = safemodel.spark.score(bundle, sdf, method="predict_proba", invalid="drop")
    scored.write.parquet("scores/")                      # proba_Adelie, proba_Chinstrap, ...
    safemodel.spark.policy_counts(spark.read.parquet("scores/"))
    # {'island': {'imputed': 12, 'unseen_to_missing': 12}, 'year': {'imputed': 3}}

The bundle's bytes are broadcast once. Every executor Python process loads them with
:func:`safemodel.load` in its own environment, so the golden outputs are re-run there,
once per process and bundle; an executor whose packages score differently refuses to
score. :func:`score` checks this on the executors before it returns and raises the
executor's :class:`~safemodel.GoldenMismatchError` (with its diff) on the driver.

Contract and policy run per batch, exactly as :meth:`ModelBundle.score` runs them. What
the policy did to each row travels with the row, in :data:`POLICY_COLUMN` (and, with
``invalid="drop"``, why a row was rejected in :data:`REJECTED_COLUMN`), so the counts
reach the driver exactly, however often Spark retries or re-evaluates a task.

This module needs ``pyspark`` (``pip install "safemodel[spark]"``); ``import safemodel``
never imports it. The engine-neutral part lives in
:mod:`safemodel.integrations.plan`, shared with :mod:`safemodel.dask`.
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from safemodel.core.engine import Invalid
from safemodel.core.outputs import rejection_limit
from safemodel.errors import SafeModelError
from safemodel.integrations.plan import (
    POLICY_COLUMN,
    REJECTED_COLUMN,
    BundleLike,
    Kind,
    added_columns,
    check_columns,
    check_invalid,
    check_rejections,
    count_frame,
    count_table,
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
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

__all__ = ["POLICY_COLUMN", "REJECTED_COLUMN", "policy_counts", "score"]

# --------------------------------------------------------------------- Spark


def _pyspark() -> Any:
    try:
        from pyspark.sql import functions
    except ImportError as exc:
        raise ImportError(
            'safemodel.spark needs pyspark; install it with pip install "safemodel[spark]".'
        ) from exc
    return functions


def _spark_type(kind: Kind) -> DataType:
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType

    types: dict[str, DataType] = {"double": DoubleType(), "long": LongType(),
                                  "boolean": BooleanType(), "string": StringType()}
    return types[kind]


def _col(name: str) -> Column:
    functions = _pyspark()
    column: Column = functions.col("`" + name.replace("`", "``") + "`")
    return column


def score(
    bundle: BundleLike,
    frame: DataFrame,
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
) -> DataFrame:
    """Add a bundle's outputs to a Spark DataFrame, verified on every executor.

    Batches reach Python as Arrow: only the contract's columns are converted to pandas
    and scored; the frame's columns go back as the very Arrow arrays Spark sent.
    Each executor Python process loads the broadcast bundle once and re-runs its golden
    inputs there; the contract and policy then run per Arrow batch, exactly as
    :meth:`ModelBundle.score` runs them.

    Parameters
    ----------
    bundle : ModelBundle, str or path-like
        A bundle, or the path of a bundle file (loaded and verified on the driver too).
    frame : pyspark.sql.DataFrame
        Holds every contract column; other columns are kept as they are.
    method : {"predict_proba", "predict", "decision_function"}, optional
        Defaults to ``predict_proba`` when the estimator has it, else ``predict``.
    invalid : {"raise", "drop"}, default "raise"
        ``"raise"``: a row that breaks the contract fails the Spark job (the executor's
        ``ContractViolation`` message names every failure of its batch). ``"drop"``:
        such rows get null outputs and say why in :data:`REJECTED_COLUMN`.
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
    pyspark.sql.DataFrame
        ``frame``'s columns, the outputs, :data:`POLICY_COLUMN` and (with
        ``invalid="drop"``) :data:`REJECTED_COLUMN`. Lazy, like any DataFrame.

    Raises
    ------
    GoldenMismatchError
        An executor's environment does not reproduce the golden outputs; the error is
        the executor's own, with its ``mismatches`` and ``environment_diff``.
    ContractViolation
        ``frame`` lacks contract columns (every missing one is named).
    SafeModelError
        A bad argument, or ``frame`` already has a column scoring would add.

    Notes
    -----
    Executors load only bytes whose SHA-256 is the one the driver trusted and
    verified; they need no key of their own. Executors added after :func:`score`
    returned verify the bundle before their first batch; if one cannot, the job fails
    with its ``GoldenMismatchError`` message instead of writing its numbers.

    Examples
    --------
    >>> import safemodel.spark
    >>> scored = safemodel.spark.score(bundle, sdf, invalid="drop")  # doctest: +SKIP
    >>> scored.select("proba_Adelie", "_safemodel_rejected").show()  # doctest: +SKIP
    """
    functions = _pyspark()
    from pyspark.sql.types import StringType, StructField, StructType

    allowed = None if allowed_modules is None else tuple(allowed_modules)
    the_bundle, data, sha256 = shippable(bundle, signing_key=signing_key,
                                         trusted_keys=trusted_keys, trust=trust,
                                         allowed_modules=allowed)
    method = scoring_method(the_bundle, method)
    check_invalid(invalid)
    limit = rejection_limit(max_rejected, "safemodel.spark.score", invalid)
    outputs = output_columns(the_bundle, method, output_col)
    check_columns(frame.columns, the_bundle, outputs, invalid)
    fingerprint = the_bundle.fingerprint
    shipped = _shipped(frame.sparkSession, data, fingerprint, sha256, allowed)

    added = added_columns(outputs, invalid)
    schema = StructType(
        list(frame.schema.fields)
        + [StructField(o.name, _spark_type(o.kind)) for o in outputs]
        + [StructField(name, StringType()) for name in added[len(outputs):]]
    )
    kinds: list[Kind] = [o.kind for o in outputs] + ["string"] * (len(added) - len(outputs))
    names = list(the_bundle.contract.names)
    level = check_level(log_level)

    def score_batches(batches: Iterator[Any]) -> Iterator[Any]:
        # Arrow in, Arrow out: the frame's columns go back as the very arrays Spark sent,
        # never converted; only the contract's columns become a pandas frame.
        bundle = verified_bundle(fingerprint, lambda: shipped.value, sha256, allowed)
        for batch in batches:
            with batch_logging(level):
                scores = score_frame(bundle, batch.select(names).to_pandas(), method,
                                     invalid, outputs)
            yield _append(batch, [_arrow(scores[n], k) for n, k in zip(added, kinds,
                                                                        strict=True)], added)

    # A Python map is opaque to Spark's optimiser: no filter on the outputs is pushed
    # below it (which would score the surviving rows a second time).
    result: DataFrame = frame.mapInArrow(score_batches, schema)
    if limit is not None:
        result = result.persist()
        totals = result.agg(functions.count(functions.lit(1)).alias("rows"),
                            functions.count(_col(REJECTED_COLUMN)).alias("rejected")).collect()[0]
        check_rejections(int(totals["rows"]), int(totals["rejected"]), limit,
                         f"{the_bundle.name}=={the_bundle.version}", lambda: policy_counts(result))
    return result


def _arrow(values: pd.Series, kind: Kind) -> Any:
    pa = importlib.import_module("pyarrow")  # untyped; installed with pyspark's Arrow

    types = {"double": pa.float64(), "long": pa.int64(), "boolean": pa.bool_(),
             "string": pa.string()}
    # from_pandas: a null output (a rejected row) is null, not NaN, as Spark's own
    # pandas conversion makes it.
    return pa.Array.from_pandas(values, type=types[kind])


def _append(batch: Any, arrays: list[Any], names: list[str]) -> Any:
    pa = importlib.import_module("pyarrow")

    return pa.RecordBatch.from_arrays([*batch.columns, *arrays],
                                      names=[*batch.schema.names, *names])


# Per Spark context: the bundles already broadcast and verified on its executors, by
# (fingerprint, SHA-256, allow-list). Scoring a bundle again then ships and checks
# nothing more on the driver; each executor process still verifies before its first
# batch (verified_bundle), so executors that joined since are covered.
_MAX_SHIPPED = 8
_shipped_by_context: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary())
_shipped_lock = threading.Lock()


def _shipped(session: SparkSession, data: bytes, fingerprint: str, sha256: str,
             allowed: tuple[str, ...] | None) -> Any:
    """The broadcast of ``data``, verified on the executors once per Spark context."""
    context = session.sparkContext
    key = (fingerprint, sha256, allowed)
    with _shipped_lock:
        known = _shipped_by_context.setdefault(context, {})
        if key in known:
            return known[key]
    shipped = context.broadcast(data)
    _verify_on_executors(session, shipped, fingerprint, sha256, allowed)
    with _shipped_lock:
        if len(known) >= _MAX_SHIPPED:
            del known[next(iter(known))]  # Spark frees it once no DataFrame uses it
        known[key] = shipped
    return shipped


def _verify_on_executors(session: SparkSession, shipped: Any, fingerprint: str, sha256: str,
                         allowed: tuple[str, ...] | None) -> None:
    """Load and verify the bundle in the executors' Python processes now.

    One small task per core: the processes that will score have the bundle verified and
    cached, and a refusal reaches the driver as the executor's own exception.
    """
    tasks = session.sparkContext.defaultParallelism

    def verify(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for _ in batches:
            pass
        error = b""
        try:
            verified_bundle(fingerprint, lambda: shipped.value, sha256, allowed)
        except SafeModelError as exc:
            error = pickle.dumps(exc)
        yield pd.DataFrame({"host": [socket.gethostname()], "pid": [os.getpid()],
                            "error": [error]})

    rows = (session.range(0, tasks, 1, tasks)
            .mapInPandas(verify, "host string, pid long, error binary").collect())
    for row in rows:
        if row["error"]:
            # Our executors' own pickle, as Spark itself trusts for every collect().
            exc = pickle.loads(row["error"])
            exc.add_note(f"Raised on a Spark executor: host {row['host']}, pid {row['pid']}.")
            raise exc


def policy_counts(frame: DataFrame) -> dict[str, dict[str, int]]:
    """Count what the policy did, and why rows were rejected, over a scored frame.

    Runs one Spark job over the frame's :data:`POLICY_COLUMN` and
    :data:`REJECTED_COLUMN`. Pass the written result (``spark.read.parquet(...)``) or a
    cached frame, or Spark scores everything again to count.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        Returned by :func:`score`, or read back from where it was written.

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
    >>> safemodel.spark.policy_counts(spark.read.parquet("scores/"))  # doctest: +SKIP
    {'island': {'imputed': 12, 'unseen_to_missing': 12}}
    """
    functions = _pyspark()
    columns = scored_columns(frame.columns)
    touched = functions.lit(False)
    for name in columns:
        touched = touched | _col(name).isNotNull()
    rows = (frame.select(*[_col(c) for c in columns]).where(touched)
            .mapInPandas(_count_batches, "column string, action string, rows long")
            .groupBy("column", "action").agg(functions.sum("rows").alias("rows"))
            .collect())
    return nested_counts({(r["column"], r["action"]): r["rows"] for r in rows})


def _count_batches(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    counts: Counter[tuple[str, str]] = Counter()
    for batch in batches:
        counts.update(count_frame(batch))
    yield count_table(counts)
