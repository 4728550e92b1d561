"""What scoring on a cluster engine needs whatever the engine: shipping a bundle,
the per-process cache of verified bundles, and the layout of the output columns.

Used by :mod:`safemodel.spark` and :mod:`safemodel.dask`; imports neither engine. An
engine adapter does, in this order:

1. on the driver: :func:`shippable` (the bundle and its file's bytes),
   :func:`scoring_method` and :func:`check_invalid` (the arguments),
   :func:`output_columns` and :func:`check_columns` (the schema it promises, checked
   before any job runs), :func:`added_columns` / :func:`empty_scores` (that schema);
2. in each worker process, per batch: :func:`verified_bundle` (loaded and verified
   once per process), then :func:`score_frame`;
3. for ``policy_counts``: :func:`scored_columns`, :func:`count_frame` per batch,
   :func:`count_table` to aggregate, :func:`nested_counts` for the result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from safemodel.core.bundle import ModelBundle
from safemodel.core.engine import Invalid
from safemodel.core.outputs import allowed_rejections, raise_if_too_many
from safemodel.core.report import PolicyReport
from safemodel.errors import (
    ContractViolation,
    Failure,
    IntegrityError,
    InvalidArgument,
)
from safemodel.io.archive import Expected, load_bytes, read_file
from safemodel.store.cache import VerifiedCache

__all__ = [
    "POLICY_COLUMN",
    "REJECTED_COLUMN",
    "BundleLike",
    "Kind",
    "Output",
    "added_columns",
    "check_columns",
    "check_invalid",
    "check_rejections",
    "count_frame",
    "count_table",
    "empty_scores",
    "load_counts",
    "nested_counts",
    "output_columns",
    "score_frame",
    "scored_columns",
    "scoring_method",
    "shippable",
    "verified_bundle",
]

POLICY_COLUMN = "_safemodel_policy"
"""What the policy did to the row: JSON ``{column: [action, ...]}``, null if nothing."""

REJECTED_COLUMN = "_safemodel_rejected"
"""Why the row was not scored: JSON ``[{column, check, value}, ...]``, null if scored.

Present only with ``invalid="drop"``; a rejected row has null outputs.
"""

BundleLike = ModelBundle | str | PathLike[str]
Kind = Literal["double", "long", "boolean", "string"]

_DEFAULT_OUTPUT = {"predict": "prediction", "predict_proba": "proba",
                   "decision_function": "decision", "transform": "feature"}


# ------------------------------------------------------- engine-neutral part


@dataclass(frozen=True)
class Output:
    """One output column: its name and the kind of value it holds."""

    name: str
    kind: Kind


def shippable(bundle: BundleLike, **options: Any) -> tuple[ModelBundle, bytes, str]:
    """The bundle, the bytes of its file, and their SHA-256 (what executors load).

    A path is read once and loaded (trust established, golden outputs verified) here,
    on the driver, with ``options`` (``signing_key``, ``trusted_keys``, ``trust``,
    ``allowed_modules`` of :func:`safemodel.load`), so a bad or untrusted file fails
    before any job starts. Executors then need no key: they load only bytes with
    this SHA-256 (:func:`verified_bundle`).
    """
    if isinstance(bundle, ModelBundle):
        # The driver holds the object itself: nothing to trust, only bytes to ship,
        # saved once per content (a save signs and compresses: a fixed cost per call).
        with _saved_lock:
            saved = _saved.get(bundle.fingerprint)
        if saved is None:
            with tempfile.TemporaryDirectory(prefix="safemodel-") as folder:
                path = Path(folder) / "bundle.safemodel"
                bundle.save(path)
                data = path.read_bytes()
            saved = data, hashlib.sha256(data).hexdigest()
            with _saved_lock:
                _saved[bundle.fingerprint] = saved
                while len(_saved) > _MAX_VERIFIED:
                    del _saved[next(iter(_saved))]
        return bundle, *saved
    data = read_file(bundle)
    loaded = load_bytes(data, source=str(bundle), **options)
    return loaded.bundle, data, loaded.sha256


# Bytes of bundles this driver saved to ship, by fingerprint (the most recent few).
_saved: dict[str, tuple[bytes, str]] = {}
_saved_lock = threading.Lock()

# Verified bundles of this process by fingerprint, so that each executor or worker
# process loads and verifies a bundle once, not once per batch. The store's cache,
# locked per fingerprint: a worker's threads scoring different bundles load them
# side by side, and threads scoring the same one wait for a single load.
_MAX_VERIFIED = 8
_verified: VerifiedCache[ModelBundle] = VerifiedCache(_MAX_VERIFIED)
_loads: Counter[str] = Counter()  # how often this process loaded each fingerprint
_loads_lock = threading.Lock()


def verified_bundle(fingerprint: str, data: Callable[[], bytes], sha256: str | None = None,
                    allowed_modules: Sequence[str] | None = None) -> ModelBundle:
    """The bundle with ``fingerprint``, loaded from ``data()`` and verified on first use.

    Parameters
    ----------
    fingerprint : str
        The fingerprint the driver computed; the loaded bundle must have it.
    data : callable
        Returns the bundle file's bytes; called only when this process must load it.
    sha256 : str, optional
        The SHA-256 of the bytes whose signer the driver trusted: the bytes must have
        it, and then no key is needed here. Without it, this process judges the signer
        itself (:func:`safemodel.load`'s defaults).
    allowed_modules : sequence of str, optional
        Unpickle through the enforced allow-list, as the driver did.

    Returns
    -------
    ModelBundle
        From this process's bounded cache, shared by its threads.

    Raises
    ------
    IntegrityError
        When the bytes hold another bundle, or fail their hashes or signature.
    GoldenMismatchError
        When the bundle does not reproduce in this process's environment. Failures are
        not cached: every later batch fails too.
    """

    def load_shipped(verified_before: bool) -> ModelBundle:
        # Verified again even after an eviction: a worker is a long-lived process whose
        # bytes came over the network, and a reload is rare next to the batches scored.
        with _loads_lock:
            _loads[fingerprint] += 1
        bundle = load_bytes(data(), source="the bundle shipped to this worker",
                            expected=Expected(fingerprint=fingerprint, sha256=sha256),
                            allowed_modules=allowed_modules).bundle
        if bundle.fingerprint != fingerprint:
            raise IntegrityError(
                f"The bundle shipped to this worker has fingerprint {bundle.fingerprint}; "
                f"the driver sent {fingerprint}. It was replaced or damaged on the way.",
                expected=fingerprint, found=bundle.fingerprint,
            )
        return bundle

    return _verified.get(fingerprint, load_shipped)


def load_counts() -> dict[str, int]:
    """How often this process loaded each fingerprint: ``fingerprint -> loads``.

    What tests and operators check to see that a worker verifies a bundle once.
    """
    with _loads_lock:
        return dict(_loads)


def scoring_method(bundle: ModelBundle, method: str | None) -> str:
    """The method to call: ``method``, or ``predict_proba`` when the bundle has it.

    Raises
    ------
    InvalidArgument
        When the bundle has no such method.
    """
    method = method or ("predict_proba" if "predict_proba" in bundle.methods else "predict")
    if method not in bundle.methods:
        raise InvalidArgument.of("score", "method", f"one of {list(bundle.methods)}", method)
    return method


def check_invalid(invalid: str) -> None:
    """Refuse an ``invalid`` argument other than ``"raise"`` or ``"drop"``.

    Raises
    ------
    InvalidArgument
    """
    if invalid not in ("raise", "drop"):
        raise InvalidArgument.of("score", "invalid", "one of ['raise', 'drop']", invalid)


def _kind(values: np.ndarray, method: str) -> Kind:
    dtype = values.dtype
    if dtype.kind == "f":
        return "double"
    if dtype.kind in "iu":
        return "long"
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "US":
        return "string"
    if dtype.kind == "O":
        items = values.ravel().tolist()
        if all(isinstance(v, str) for v in items):
            return "string"
        if all(isinstance(v, bool | np.bool_) for v in items):
            return "boolean"
        if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
            return "long"
        if all(isinstance(v, float | int | np.number) for v in items):
            return "double"
    expected = "a method whose outputs are numbers, booleans or strings"
    raise InvalidArgument(
        f"{method} returns values of type {dtype} that have no column type here; "
        "distributed scoring supports numbers, booleans and strings: choose another "
        "'method'.", argument="method", expected=expected, found=method,
    )


def output_columns(
    bundle: ModelBundle, method: str, output_col: str | None
) -> tuple[Output, ...]:
    """Output columns of ``method``: one, or one per class (``proba_Adelie``, ...).

    Parameters
    ----------
    bundle : ModelBundle
    method : str
        A method of the bundle (see :func:`scoring_method`).
    output_col : str or None
        The name, or prefix, of the columns; by default named for the method
        (``prediction``, ``proba``, ``decision``).

    Returns
    -------
    tuple of Output
        Kinds taken from the golden outputs, so known before any job runs.

    Raises
    ------
    InvalidArgument
        When the method's outputs are neither numbers, booleans nor strings.
    """
    base = output_col or _DEFAULT_OUTPUT[method]
    reference = np.asarray(bundle.golden.outputs[method])
    kind = _kind(reference, method)
    if reference.ndim == 1:
        return (Output(base, kind),)
    width = reference.shape[1]
    classes = getattr(bundle.estimator, "classes_", None)
    labels: Sequence[Any] = range(width)
    if (method != "predict" and isinstance(classes, np.ndarray) and classes.ndim == 1
            and len(classes) == width):
        labels = classes.tolist()
    return tuple(Output(f"{base}_{label}", kind) for label in labels)


def check_columns(
    columns: Sequence[str], bundle: ModelBundle, outputs: Sequence[Output], invalid: str
) -> None:
    """Refuse, before any work, a frame lacking contract columns or holding output names.

    Raises
    ------
    ContractViolation
        Naming every contract column missing from ``columns``.
    InvalidArgument
        When ``columns`` already holds a column scoring would add.
    """
    present = set(columns)
    missing = [name for name in bundle.contract.names if name not in present]
    if missing:
        raise ContractViolation([Failure(name, "missing_column") for name in missing])
    clash = sorted(present & set(added_columns(outputs, invalid)))
    if clash:
        raise InvalidArgument(
            f"The frame already has column(s) {clash} that scoring would add; rename them "
            "or choose another 'output_col'.", argument="output_col",
            expected=f"a name whose columns are not in the frame, not {clash}",
            found=clash,
        )


def added_columns(outputs: Sequence[Output], invalid: str) -> list[str]:
    """Names of the columns scoring adds: the outputs, the policy column, and with
    ``invalid="drop"`` the rejected column."""
    extra = [POLICY_COLUMN, REJECTED_COLUMN] if invalid == "drop" else [POLICY_COLUMN]
    return [o.name for o in outputs] + extra


def _column(
    values: np.ndarray, rows: np.ndarray, index: pd.Index, kind: Kind, nullable: bool
) -> pd.Series:
    """Outputs of the scored ``rows`` placed among all rows; the others are null.

    The dtype depends on ``kind`` and ``nullable`` only, never on the values, so that
    every partition has the dtypes the engine was promised.
    """
    n = len(index)
    everyone = len(rows) == n  # rows are distinct positions, so these are all of them
    if kind == "double":
        if everyone:
            return pd.Series(values, index=index, dtype="float64", copy=False)
        out = np.full(n, np.nan)
        out[rows] = values
        return pd.Series(out, index=index, copy=False)
    if kind == "string":
        return _text_column(values, rows, index)
    dtype = "int64" if kind == "long" else "bool"
    data = np.zeros(n, dtype=dtype)
    data[rows] = values
    if not nullable:
        return pd.Series(data, index=index, copy=False)
    mask = np.ones(n, dtype=bool)
    mask[rows] = False
    array = (pd.arrays.IntegerArray(data, mask) if kind == "long"
             else pd.arrays.BooleanArray(data, mask))
    return pd.Series(array, index=index, copy=False)


def _text_column(values: np.ndarray, rows: np.ndarray, index: pd.Index,
                 codes: np.ndarray | None = None) -> pd.Series:
    """Text at ``rows``, null elsewhere: ``values[i]`` at ``rows[i]``, or with ``codes``
    ``values[codes[i]]`` (a few distinct texts placed on many rows).

    Arrow-backed like Dask's own strings (Parquet needs a real string type), and built
    in Arrow by taking from ``values``: pandas' ``StringDtype`` constructor checks each
    of the (mostly null) objects in Python (about 0.2 ms per 1,000 rows), and even
    ``pyarrow.array`` over a row-long object array costs twice the take.
    """
    pa = importlib.import_module("pyarrow")
    pc = importlib.import_module("pyarrow.compute")
    n = len(index)
    if len(rows) == 0:
        array = pa.nulls(n, pa.large_string())
    else:
        at = np.zeros(n, dtype=np.int64)
        at[rows] = np.arange(len(rows)) if codes is None else codes
        absent = np.ones(n, dtype=bool)
        absent[rows] = False
        texts = pa.array(np.asarray(values, dtype=object), type=pa.large_string())
        array = pc.take(texts, pa.array(at, mask=absent))
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, copy=False)


def _policy_column(report: PolicyReport, index: pd.Index) -> pd.Series:
    """What the policy did to each row, as JSON ``{column: [action, ...]}``.

    Row-level actions only: whole-column ones (a lossless dtype coercion) say how the
    engine delivered the batch, not what the policy did to the data. A batch has a
    handful of distinct combinations of actions however many rows it has, so the text
    is written once per combination and placed by array indexing, not once per row.
    """
    actions = [a for a in report.actions if a.rows]
    if not actions:
        return _text_column(np.empty(0, dtype=object), np.empty(0, dtype=np.intp), index)
    if len(actions) < 64:
        # Each row's combination as one number, bit j set when action j touched the row.
        code = np.zeros(len(index), dtype=np.uint64)
        for j, a in enumerate(actions):
            code[np.asarray(a.rows, dtype=np.intp)] |= np.uint64(1 << j)
        rows = np.flatnonzero(code)
        bits, which = np.unique(code[rows], return_inverse=True)
        combinations = [[j for j in range(len(actions)) if int(b) >> j & 1]
                        for b in bits.tolist()]
    else:  # past 63 actions in one batch: rows of booleans, compared
        hit = np.zeros((len(index), len(actions)), dtype=bool)
        for j, a in enumerate(actions):
            hit[np.asarray(a.rows, dtype=np.intp), j] = True
        rows = np.flatnonzero(hit.any(axis=1))
        unique, which = np.unique(hit[rows], axis=0, return_inverse=True)
        combinations = [np.flatnonzero(c).tolist() for c in unique]
    texts = []
    for combination in combinations:
        per_column: dict[str, list[str]] = {}
        for a in (actions[j] for j in combination):
            per_column.setdefault(a.column, []).append(a.action)
        texts.append(json.dumps(per_column, separators=(",", ":")))
    return _text_column(np.asarray(texts, dtype=object), rows, index, codes=which.ravel())


def _rejected_column(report: PolicyReport, index: pd.Index) -> pd.Series:
    # One text per rejected row: each names its own offending values.
    per_row: dict[int, list[dict[str, Any]]] = {}
    for f in report.rejected:
        if f.row is not None:
            per_row.setdefault(f.row, []).append(
                {"column": f.column, "check": f.check, "value": f.value})
    rows = np.fromiter(per_row, dtype=np.intp, count=len(per_row))
    text = np.array([json.dumps(v, separators=(",", ":")) for v in per_row.values()],
                    dtype=object)
    return _text_column(text, rows, index)


def score_frame(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    method: str,
    invalid: Invalid,
    outputs: Sequence[Output],
) -> pd.DataFrame:
    """Score one batch: the added columns, aligned with ``frame``'s rows and index."""
    scored = bundle.score(frame, method=method, invalid=invalid)
    values = np.asarray(scored.outputs)
    if values.ndim == 1:
        values = values[:, None]
    index = frame.index
    data = {o.name: _column(values[:, j], scored.rows, index, o.kind, invalid == "drop")
            for j, o in enumerate(outputs)}
    data[POLICY_COLUMN] = _policy_column(scored.report, index)
    if invalid == "drop":
        data[REJECTED_COLUMN] = _rejected_column(scored.report, index)
    # The columns are new arrays of ours: no copy needed.
    return pd.DataFrame(data, index=index, copy=False)


def empty_scores(outputs: Sequence[Output], invalid: str) -> pd.DataFrame:
    """The added columns with no rows, dtypes as :func:`score_frame` makes them."""
    none, index = np.empty(0, dtype=np.int64), pd.RangeIndex(0)
    kinds: dict[str, Kind] = {o.name: o.kind for o in outputs}
    return pd.DataFrame({
        name: _column(np.empty(0), none, index, kinds.get(name, "string"), invalid == "drop")
        for name in added_columns(outputs, invalid)
    })


def check_rejections(rows: int, rejected: int, limit: float | None, label: str,
                     counts: Callable[[], Mapping[str, Mapping[str, int]]]) -> None:
    """Fail a distributed call whose ``rejected`` rows of ``rows`` exceed ``limit``.

    ``counts`` (``policy_counts`` of the scored frame) is only run to explain a failure.
    """
    if limit is None or rejected <= allowed_rejections(limit, rows):
        return
    reasons: Counter[str] = Counter()
    for column, actions in counts().items():
        for action, n in actions.items():
            if action.startswith("rejected:"):
                reasons[f"{column}: {action.removeprefix('rejected:')}"] += n
    raise_if_too_many(rejected, rows, limit, label, reasons)


def count_frame(frame: pd.DataFrame) -> Counter[tuple[str, str]]:
    """``(column, action) -> rows`` from the policy and rejected columns of scored rows."""
    counts: Counter[tuple[str, str]] = Counter()
    # Each distinct text parsed once: a batch repeats a handful of them.
    if POLICY_COLUMN in frame:
        for text, rows in frame[POLICY_COLUMN].dropna().value_counts(sort=False).items():
            for column, actions in json.loads(text).items():
                for action in actions:
                    counts[(column, action)] += int(rows)
    if REJECTED_COLUMN in frame:
        for text, rows in frame[REJECTED_COLUMN].dropna().value_counts(sort=False).items():
            for f in json.loads(text):
                counts[(f["column"], f"rejected:{f['check']}")] += int(rows)
    return counts


def count_table(counts: Mapping[tuple[str, str], int]) -> pd.DataFrame:
    """``counts`` as rows ``(column, action, rows)``, the form engines aggregate."""
    return pd.DataFrame({
        "column": pd.Series([c for c, _ in counts], dtype=object),
        "action": pd.Series([a for _, a in counts], dtype=object),
        "rows": pd.Series(list(counts.values()), dtype="int64"),
    })


def nested_counts(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """``counts`` as ``{column: {action: rows}}``, sorted: what ``policy_counts`` returns."""
    out: dict[str, dict[str, int]] = {}
    for (column, action), n in sorted(counts.items()):
        out.setdefault(column, {})[action] = int(n)
    return out


def scored_columns(columns: Sequence[str]) -> list[str]:
    """Which of the policy and rejected columns a scored frame's ``columns`` hold.

    Raises
    ------
    InvalidArgument
        When there is no policy column: the frame was not returned by ``score``.
    """
    found = [c for c in (POLICY_COLUMN, REJECTED_COLUMN) if c in columns]
    if POLICY_COLUMN not in found:
        raise InvalidArgument(
            f"The frame has no {POLICY_COLUMN!r} column; pass a frame returned by "
            "score (or read back from where its result was written).", argument="frame",
            expected=f"a scored frame, with a {POLICY_COLUMN!r} column", found=list(columns),
        )
    return found
