"""Assertions about bundles, for ordinary tests (the pytest plugin runs the same ones).

Each function takes a :class:`~safemodel.ModelBundle` or the path of a bundle file and
raises :class:`AssertionError` with a readable account of what differs: bundle, check,
expected against obtained for the first differing rows, and the package versions that
changed since the bundle was built. Nothing here imports pytest.

>>> from safemodel.testing import assert_bundle_reproducible
>>> assert_bundle_reproducible("models/churn-1.2.0.safemodel")  # doctest: +SKIP
>>> assert_bundle_reproducible(bundle, rtol=1e-9)                # doctest: +SKIP

``assert_contract_consistent`` needs ``jsonschema`` and ``assert_bundle_robust`` needs
``hypothesis``; both are imported on first use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from safemodel._values import json_text, plain
from safemodel.core.bundle import ModelBundle
from safemodel.core.golden import policy_diff
from safemodel.errors import (
    ContractViolation,
    InvalidArgument,
    SafeModelError,
)
from safemodel.io.archive import load_unverified
from safemodel.io.upgrade import verification_refusal
from safemodel.testing._outputs import output_problem

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

    from safemodel.core.contract import ColumnSpec, Contract

__all__ = [
    "assert_bundle_reproducible",
    "assert_bundle_robust",
    "assert_contract_consistent",
    "assert_edge_cases_reproducible",
]

BundleOrPath = ModelBundle | str | PathLike[str]

# Rows of a failing example shown in a message; a shrunk example rarely has more.
_SHOWN_ROWS = 5
# Problems listed per check before "... and N more".
_SHOWN_PROBLEMS = 8
_EXTRA_COLUMN = "__safemodel_extra__"


# --------------------------------------------------------------------- loading


@contextmanager
def _silenced(keep: Callable[[logging.LogRecord], bool]) -> Iterator[None]:
    """Drop the ``safemodel`` logger's records for which ``keep`` is False."""
    log = logging.getLogger("safemodel")
    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)


def _nothing(record: logging.LogRecord) -> bool:
    return False


# Every integrity check but the golden re-run: the checks here verify the golden
# outputs themselves, so that a changed score is reported as a failed assertion with
# its diff rather than as a refused load.
_load_unverified = load_unverified


def _bundle(bundle_or_path: BundleOrPath, caller: str) -> ModelBundle:
    if isinstance(bundle_or_path, ModelBundle):
        return bundle_or_path
    if isinstance(bundle_or_path, str | PathLike):
        return _load_unverified(bundle_or_path)
    raise InvalidArgument(
        f"{caller} expects a ModelBundle or the path of a bundle file; got "
        f"{type(bundle_or_path).__name__}. Pass the bundle, or the path it was saved to.",
        argument="bundle_or_path", expected="a ModelBundle or a path",
        found=type(bundle_or_path).__name__,
    )


def _label(bundle: ModelBundle) -> str:
    return f"{bundle.name}=={bundle.version}"


def _fail(bundle: ModelBundle, what: str, problems: Sequence[str]) -> AssertionError:
    lines = [f"{_label(bundle)}: {what}."]
    lines.extend(f"  {p}" for p in problems[:_SHOWN_PROBLEMS])
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more")
    return AssertionError("\n".join(lines))


# ------------------------------------------------------------- golden outputs


def assert_bundle_reproducible(
    bundle_or_path: BundleOrPath,
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that the bundle's estimator still gives its golden outputs here.

    Re-runs the golden inputs (sampled training rows and the policy's edge cases)
    through contract, policy and estimator, and compares outputs, rejections and
    policy actions with those recorded at build time.

    Parameters
    ----------
    bundle_or_path : ModelBundle, str or path-like
        A bundle, or a bundle file (loaded with every integrity check).
    rtol, atol : float, optional
        Tolerances for this comparison, overriding the ones recorded in the bundle
        (``0.0`` means exact).

    Raises
    ------
    GoldenMismatchError
        An :class:`AssertionError`: the outputs do not reproduce. The message lists,
        per scoring method, how many rows differ, the largest absolute and relative
        differences, expected against obtained for the first differing rows, and the
        package versions that differ from the recorded environment; ``.mismatches``
        and ``.environment_diff`` hold the same as data.
    IncompatibleEnvironmentError
        A :class:`RuntimeError`: the estimator raised on its golden inputs and package
        versions differ from build time (``.diff``, ``.requirements`` as data).
    IntegrityError, BundleFormatError
        The file is damaged or not a bundle.
    SafeModelError
        A tolerance is negative or not a number.

    Examples
    --------
    >>> assert_bundle_reproducible("models/churn-1.2.0.safemodel")  # doctest: +SKIP
    >>> assert_bundle_reproducible(bundle, rtol=1e-9, atol=1e-12)    # doctest: +SKIP
    Traceback (most recent call last):
    GoldenMismatchError: churn==1.2.0: golden outputs do not reproduce.
      predict_proba: 64 of 73 rows differ; max abs diff 0.0023, max rel diff 0.11
        row 0: expected [0.9353, 0.0598, 0.0047], obtained [0.9371, 0.0583, 0.0045]
      ...
      packages changed since the bundle was built: scikit-learn 1.5.2 -> 1.6.0
      compared with rtol=1e-09, atol=1e-12 (recorded: rtol=0, atol=0)
    """
    bundle = _bundle(bundle_or_path, "assert_bundle_reproducible")
    recorded = (bundle.golden.rtol, bundle.golden.atol)
    if rtol is not None or atol is not None:
        bundle = _with_tolerances(bundle, rtol, atol)
    report = bundle.verify()
    if report.ok:
        return
    golden = bundle.golden
    used = f"rtol={golden.rtol:g}, atol={golden.atol:g}"
    if (golden.rtol, golden.atol) == recorded:
        tolerance = f"  compared with the recorded tolerances ({used})"
    else:
        tolerance = (f"  compared with {used} (recorded: rtol={recorded[0]:g}, "
                     f"atol={recorded[1]:g})")
    # Names the package versions and advises pin or rebuild when they changed.
    raise verification_refusal(report, bundle=_label(bundle), environment=bundle.environment,
                               note=tolerance)


def _with_tolerances(bundle: ModelBundle, rtol: float | None, atol: float | None) -> ModelBundle:
    """The same bundle comparing with other tolerances.

    ``ModelBundle.verify`` takes its tolerances from the golden fixture, so the copy
    carries a golden fixture with the new ones and the recorded environment (which
    ``verify`` compares with the running one).
    """
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)
                                      and value >= 0):
            raise SafeModelError(
                f"The {name!r} parameter of assert_bundle_reproducible must be a finite "
                f"number >= 0 (or None for the recorded tolerance); got {value!r} instead."
            )
    golden = bundle.golden
    golden = replace(golden,
                     rtol=golden.rtol if rtol is None else float(rtol),
                     atol=golden.atol if atol is None else float(atol))
    return ModelBundle(
        bundle.estimator, bundle.contract, bundle.policy, golden,
        name=bundle.name, version=bundle.version, metadata=bundle.metadata,
        profile=bundle.profile, _environment=bundle.environment,
    )


# ------------------------------------------------------------------ contract


def assert_contract_consistent(bundle_or_path: BundleOrPath) -> None:
    """Assert that the contract accepts its own golden inputs and its JSON schema agrees.

    Checks that:

    - the contract's pandera schema accepts the sampled training rows of the golden
      inputs (cast to the contract's dtypes);
    - contract and policy reject exactly the golden rows recorded as rejected;
    - ``contract.to_json_schema()`` is a valid draft 2020-12 schema that accepts every
      sampled training row (as a JSON record, missing values as ``null``);
    - ``contract.to_json_schema(policy=bundle.policy)`` accepts every golden row the
      policy accepts, and refuses every row it rejects for an unseen category or an
      unexpected missing value.

    Parameters
    ----------
    bundle_or_path : ModelBundle, str or path-like

    Raises
    ------
    AssertionError
        Listing every disagreement (row, column, what the schema said).
    ModuleNotFoundError
        ``jsonschema`` is not installed (raised after the checks that do not need it
        passed).

    Examples
    --------
    >>> assert_contract_consistent(bundle)  # doctest: +SKIP
    """
    bundle = _bundle(bundle_or_path, "assert_contract_consistent")
    golden, contract = bundle.golden, bundle.contract
    sampled = golden.inputs.iloc[: len(golden.inputs) - golden.edge_rows]
    problems: list[str] = []
    try:
        contract.validate(_with_contract_dtypes(sampled, contract))
    except ContractViolation as exc:
        problems.append(f"the contract's pandera schema refuses the sampled training rows: {exc}")
    prepared = bundle.prepare(golden.inputs, invalid="drop")
    now, recorded = prepared.report.rejected_rows, sorted(golden.rejected)
    if now != recorded:
        problems.append(f"contract and policy reject golden rows {now}; recorded {recorded}")
    if problems:
        raise _fail(bundle, "the contract does not accept its own golden inputs", problems)

    try:
        from jsonschema import Draft202012Validator
    except ImportError as exc:
        raise ModuleNotFoundError(
            "assert_contract_consistent needs jsonschema to compare the contract's JSON "
            "schema with the contract; install it (pip install jsonschema).",
            name="jsonschema",
        ) from exc
    # The bundle's own record conversion (missing -> null, timestamps -> ISO text).
    records: list[dict[str, Any]] = contract.to_json_schema(examples=golden.inputs)["examples"]
    strict_schema = contract.to_json_schema()
    policy_schema = contract.to_json_schema(policy=bundle.policy)
    for name, schema in (("to_json_schema()", strict_schema),
                         ("to_json_schema(policy=...)", policy_schema)):
        invalid = list(Draft202012Validator(Draft202012Validator.META_SCHEMA)
                       .iter_errors(schema))
        problems.extend(f"{name} is not a valid draft 2020-12 schema: {e.message}"
                        for e in invalid[:1])
    if problems:
        raise _fail(bundle, "the contract's JSON schema is malformed", problems)
    strict = Draft202012Validator(strict_schema)
    lenient = Draft202012Validator(policy_schema)
    for row in range(len(sampled)):
        problems.extend(f"sampled row {row}: to_json_schema() refuses it: {msg}"
                        for msg in _schema_errors(strict, records[row]))
    for row in golden.accepted_rows.tolist():
        problems.extend(f"row {row}: the policy accepts it but to_json_schema(policy=...) "
                        f"refuses it: {msg}" for msg in _schema_errors(lenient, records[row]))
    for row, checks in sorted(golden.rejected.items()):
        # JSON Schema expresses allowed values and nullability, not pandera's other checks.
        if set(checks) <= {"unseen_category", "unexpected_missing"} and lenient.is_valid(
                records[row]):
            problems.append(f"row {row}: the policy rejects it ({', '.join(checks)}) but "
                            f"to_json_schema(policy=...) accepts {json_text(records[row])}")
    if problems:
        raise _fail(bundle, "the JSON schema disagrees with the contract", problems)


def _with_contract_dtypes(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Golden inputs share a frame with edge cases, which may widen a dtype (int64 to
    Int64 to hold a missing value); the training rows themselves fit the contract's."""
    out = {}
    for spec in contract.columns:
        try:
            out[spec.name] = frame[spec.name].astype(spec.pandas_dtype)
        except (TypeError, ValueError):
            out[spec.name] = frame[spec.name]  # let the schema say what is wrong
    return pd.DataFrame(out, index=frame.index)


def _schema_errors(validator: Any, record: Mapping[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or 'record'}: {e.message}"
        for e in validator.iter_errors(record)
    ]


# -------------------------------------------------------------------- policy


def assert_edge_cases_reproducible(bundle_or_path: BundleOrPath) -> None:
    """Assert that the policy treats the golden edge cases as it did at build time.

    Re-applies contract and policy (not the estimator) to the golden inputs: every
    row must be accepted or rejected, with the same failed checks, as recorded, and
    the policy must take the same actions (imputations, unseen-category handling,
    coercions) on each column.

    Parameters
    ----------
    bundle_or_path : ModelBundle, str or path-like

    Raises
    ------
    AssertionError
        Naming each row whose fate changed (with the edge case it holds, such as
        ``island='__safemodel_unseen__'``) and each column whose actions changed.

    Examples
    --------
    >>> assert_edge_cases_reproducible("models/churn-1.2.0.safemodel")  # doctest: +SKIP
    """
    bundle = _bundle(bundle_or_path, "assert_edge_cases_reproducible")
    golden = bundle.golden
    diff = policy_diff(golden, bundle.prepare(golden.inputs, invalid="drop").report)
    problems = [f"row {row}{_edge_case(golden.inputs, golden.edge_rows, row)}: "
                f"recorded {_fate(before)}, now {_fate(after)}"
                for row, before, after in diff.rows]
    order = {name: i for i, name in enumerate(bundle.contract.names)}
    for column in sorted(diff.columns, key=lambda c: (order.get(c, len(order)), c)):
        problems.append(f"column {column!r}: recorded {_actions(diff.recorded.get(column))}, "
                        f"now {_actions(diff.now.get(column))}")
    if problems:
        raise _fail(bundle, "the policy no longer treats the golden edge cases as recorded",
                    problems)


def _edge_case(inputs: pd.DataFrame, edge_rows: int, row: int) -> str:
    """What makes golden row ``row`` an edge case: the cells that differ from row 0
    (edge cases are copies of the first sampled row with one cell changed)."""
    if row < len(inputs) - edge_rows:
        return ""
    cells = []
    for column in inputs.columns:
        a, b = inputs[column].iloc[row], inputs[column].iloc[0]
        a_missing, b_missing = bool(pd.isna(a)), bool(pd.isna(b))
        if a_missing != b_missing or (not a_missing and a != b):
            cells.append(f"{column} missing" if a_missing else f"{column}={plain(a)!r}")
    return f" (edge case: {', '.join(cells)})" if cells else " (edge case)"


def _fate(checks: tuple[str, ...] | None) -> str:
    return f"rejected ({', '.join(checks)})" if checks else "accepted"


def _actions(actions: Mapping[str, int] | None) -> str:
    if not actions:
        return "no action"
    return ", ".join(f"{action} x{n}" for action, n in sorted(actions.items()))


# ---------------------------------------------------------------- robustness


_Breakage = Literal["unseen category", "unexpected missing", "wrong type", "missing column",
                    "extra column"]


@dataclass(frozen=True)
class _Change:
    """One way a generated input breaks the contract."""

    kind: _Breakage
    column: str
    row: int = 0
    value: Any = None

    def describe(self) -> str:
        if self.kind == "missing column":
            return f"column {self.column!r} left out"
        if self.kind == "extra column":
            return f"extra column {self.column!r} = {self.value!r}"
        if self.kind == "unexpected missing":
            return f"row {self.row}: {self.column} missing"
        return f"row {self.row}: {self.column}={self.value!r} ({self.kind})"


@dataclass(frozen=True)
class _Case:
    """One generated input: valid rows, how they are sent, and what was broken."""

    rows: tuple[Mapping[str, Any], ...]
    as_records: bool
    changes: tuple[_Change, ...] = ()

    def reductions(self) -> Iterator[_Case]:
        """Strictly smaller cases: each row alone, then one change fewer."""
        if len(self.rows) > 1:
            for i, row in enumerate(self.rows):
                changes = tuple(replace(c, row=0) for c in self.changes
                                if c.row == i or c.kind.endswith("column"))
                if changes or not self.changes:
                    yield replace(self, rows=(row,), changes=changes)
        if len(self.changes) > 1:
            for i in range(len(self.changes)):
                yield replace(self, changes=self.changes[:i] + self.changes[i + 1:])

    def sent(self) -> list[dict[str, Any]]:
        """The rows with the changes made: what the scoring methods receive."""
        rows = [dict(r) for r in self.rows]
        for c in self.changes:
            if c.kind == "extra column":
                for r in rows:
                    r[c.column] = c.value
            elif c.kind != "missing column":
                rows[c.row][c.column] = c.value
        dropped = {c.column for c in self.changes if c.kind == "missing column"}
        return [{k: v for k, v in r.items() if k not in dropped} for r in rows]

    def build(self, contract: Contract) -> pd.DataFrame | list[dict[str, Any]]:
        rows = self.sent()
        if self.as_records:
            return rows
        changed = {c.column for c in self.changes}
        data: dict[str, pd.Series] = {}
        for name in rows[0]:
            values = [r[name] for r in rows]
            # A changed column keeps what pandas makes of its values, as a caller's would.
            spec = contract[name] if name in contract.name_set and name not in changed else None
            data[name] = pd.Series(values, dtype=None if spec is None else spec.pandas_dtype,
                                   name=name)
        return pd.DataFrame(data)

    def describe(self) -> str:
        how = ("a list of records" if self.as_records
               else "a DataFrame with the contract's dtypes")
        lines = [f"  input: {len(self.rows)} row(s), sent as {how}"]
        if self.changes:
            lines.append("  broken on purpose: " + "; ".join(c.describe() for c in self.changes))
        for i, r in enumerate(self.sent()[:_SHOWN_ROWS]):
            lines.append(f"    row {i}: {json_text(r)}")
        if len(self.rows) > _SHOWN_ROWS:
            lines.append(f"    ... and {len(self.rows) - _SHOWN_ROWS} more rows")
        return "\n".join(lines)


def assert_bundle_robust(
    bundle_or_path: BundleOrPath, *, examples: int = 50, seed: int = 0
) -> None:
    """Property-based robustness of scoring, with inputs derived from the contract.

    Two properties, each tried on ``examples`` generated inputs of one to eight rows,
    sent to every scoring method of the bundle, as a DataFrame or as a list of records:

    - valid inputs (every allowed category, numbers within and on the boundaries of
      the observed ranges, missing values where the contract allows them) always
      score, and the outputs have the golden outputs' shape per row; probabilities
      are finite, within [0, 1] and sum to 1 per row; decision values are finite;
      a classifier predicts only its classes;
    - inputs that break the contract (unseen categories, unexpected missing values,
      values of the wrong type, a missing or an extra column) either score under the
      policy with well-formed outputs or raise :class:`~safemodel.ContractViolation`,
      never anything else; a missing column always raises it.

    Generation is deterministic for a given ``seed``. A failing input is reduced before
    it is reported: to one row where one row fails, and to the changes that matter.

    Parameters
    ----------
    bundle_or_path : ModelBundle, str or path-like
    examples : int, default 50
        Generated inputs per property.
    seed : int, default 0
        Seed of the generation.

    Raises
    ------
    AssertionError
        Saying what went wrong, with the (reduced) failing input as JSON rows.
    ModuleNotFoundError
        ``hypothesis`` is not installed.
    SafeModelError
        ``examples`` is below 1.

    Examples
    --------
    >>> assert_bundle_robust(bundle, examples=200, seed=1)  # doctest: +SKIP
    """
    if not isinstance(examples, int) or examples < 1:
        raise SafeModelError(f"The 'examples' parameter of assert_bundle_robust must be an "
                             f"integer >= 1; got {examples!r} instead.")
    bundle = _bundle(bundle_or_path, "assert_bundle_robust")
    try:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import seed as fixed_seed
    except ImportError as exc:
        raise ModuleNotFoundError(
            "assert_bundle_robust needs hypothesis to generate inputs; install it "
            "(pip install hypothesis).", name="hypothesis",
        ) from exc
    valid, invalid = _case_strategies(bundle)
    # Hypothesis's own shrinking may score thousands of inputs; _smallest reduces a
    # failing input in a bounded number of steps instead.
    budget = settings(
        max_examples=examples, derandomize=False, database=None, deadline=None,
        print_blob=False, report_multiple_bugs=False, verbosity=Verbosity.quiet,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )
    # Generated inputs break the contract on purpose: the policy's log lines about
    # them would only bury the one failing input.
    with _silenced(_nothing), _one_thread():
        for check, strategy in ((_check_valid, valid), (_check_invalid, invalid)):
            cases: list[_Case] = []
            # Hypothesis only generates (seeded); scoring happens in merged calls below.
            fixed_seed(seed)(budget(given(strategy)(_collector(cases))))()
            _check_cases(bundle, check, cases)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Native thread pools (OpenMP, BLAS) limited to one thread while scoring.

    The check scores a few hundred rows at a time, where a pool's start-up and spinning
    cost more than its work: HistGradientBoosting spent 1-2 s of CPU per bundle in
    them on a busy 2-core machine, 0.4 s on one thread. Only well-formedness is
    checked here, which no thread count changes (golden outputs are compared apart).
    """
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    with threadpool_limits(limits=1):
        yield


def _collector(cases: list[_Case]) -> Callable[[_Case], None]:
    def collect(case: _Case) -> None:
        cases.append(case)

    return collect


def _check_cases(bundle: ModelBundle, check: _Check, cases: list[_Case]) -> None:
    """``check`` every case, scoring many at once: a call costs about as much for 400
    rows as for one, so the cases are merged (by how they are sent) and looked at one
    by one only when a merged call fails; the failure reported is a single case's."""
    groups: dict[bool, list[_Case]] = {}
    for case in cases:
        if check is _check_invalid and not _accepted(bundle, case):
            _raise_reduced(bundle, check, case)  # rejected by the contract: cheap alone
            continue
        groups.setdefault(case.as_records, []).append(case)
    for members in groups.values():
        merged = _merge(members)
        try:
            _check_valid(bundle, merged)  # accepted inputs must all score well-formed
            continue
        except _Falsified as failure:
            merged_failure = failure
        for case in members:
            _raise_reduced(bundle, check, case)
        if check is _check_valid:  # valid rows that fail only together fail too
            raise _reduce(bundle, check, merged_failure)


def _accepted(bundle: ModelBundle, case: _Case) -> bool:
    """Whether contract and policy let the case through (no estimator call)."""
    try:
        bundle.prepare(case.build(bundle.contract))
    except Exception:  # the case is then checked alone, which judges it
        return False
    return True


def _merge(cases: list[_Case]) -> _Case:
    rows: list[Mapping[str, Any]] = []
    changes: list[_Change] = []
    for case in cases:
        changes.extend(replace(c, row=c.row + len(rows)) for c in case.changes)
        rows.extend(case.rows)
    return _Case(tuple(rows), cases[0].as_records, tuple(changes))


def _raise_reduced(bundle: ModelBundle, check: _Check, case: _Case) -> None:
    try:
        check(bundle, case)
    except _Falsified as failure:
        raise _reduce(bundle, check, failure) from None


def _reduce(bundle: ModelBundle, check: _Check, failure: _Falsified) -> _Falsified:
    smallest = _smallest(bundle, check, failure)
    smallest.__suppress_context__ = True
    return smallest


class _Falsified(AssertionError):
    """A property failed on ``case``."""

    def __init__(self, message: str, case: _Case) -> None:
        super().__init__(message)
        self.case = case


_Check = Callable[[ModelBundle, _Case], None]


def _smallest(bundle: ModelBundle, check: _Check, failure: _Falsified) -> _Falsified:
    """The failure on the smallest input derived from ``failure.case`` that still fails:
    one row where one suffices, and only the changes that matter."""
    case, found = failure.case, failure
    smaller = True
    while smaller:
        smaller = False
        for candidate in case.reductions():
            try:
                check(bundle, candidate)
            except _Falsified as exc:
                case, found, smaller = candidate, exc, True
                break
    return found


def _check_valid(bundle: ModelBundle, case: _Case) -> None:
    X = case.build(bundle.contract)
    for method in bundle.methods:
        try:
            out = getattr(bundle, method)(X)
        except Exception as exc:
            raise _Falsified(
                f"{_label(bundle)}: input that meets the contract did not score: {method} "
                f"raised {type(exc).__name__}: {exc}\n{case.describe()}", case,
            ) from exc
        problem = output_problem(bundle, method, out, len(case.rows))
        if problem is not None:
            raise _Falsified(f"{_label(bundle)}: on input that meets the contract, "
                             f"{problem}\n{case.describe()}", case)


def _check_invalid(bundle: ModelBundle, case: _Case) -> None:
    X = case.build(bundle.contract)
    missing = [c.column for c in case.changes if c.kind == "missing column"]
    for method in bundle.methods:
        try:
            out = getattr(bundle, method)(X)
        except ContractViolation:
            return  # contract and policy come before the estimator: the same for every method
        except Exception as exc:
            raise _Falsified(
                f"{_label(bundle)}: {method} raised {type(exc).__name__} instead of "
                f"ContractViolation on input that breaks the contract: {exc}\n{case.describe()}",
                case,
            ) from exc
        if missing:
            raise _Falsified(
                f"{_label(bundle)}: {method} scored an input without column(s) {missing}; "
                f"expected ContractViolation\n{case.describe()}", case,
            )
        problem = output_problem(bundle, method, out, len(case.rows))
        if problem is not None:
            raise _Falsified(f"{_label(bundle)}: on input that breaks the contract but "
                             f"that the policy accepted, {problem}\n{case.describe()}", case)


def _case_strategies(bundle: ModelBundle) -> tuple[SearchStrategy[_Case], SearchStrategy[_Case]]:
    """Hypothesis strategies of valid and of contract-breaking inputs."""
    from hypothesis import strategies as st

    contract = bundle.contract
    golden = bundle.golden
    sampled = golden.inputs.iloc[: len(golden.inputs) - golden.edge_rows]
    names = contract.names
    row = st.fixed_dictionaries({
        spec.name: _valid_values(spec, _observed(sampled, spec.name)) for spec in contract.columns
    }).map(lambda r: {name: r[name] for name in names})  # shown in the contract's order
    rows = st.lists(row, min_size=1, max_size=8).map(tuple)

    @st.composite
    def valid(draw: DrawFn) -> _Case:
        return _Case(draw(rows), draw(st.booleans()))

    # The kind of breakage first, then the column: every kind is tried about as often.
    breakers = _breakers(contract)
    kinds = st.sampled_from(sorted(breakers))

    @st.composite
    def invalid(draw: DrawFn) -> _Case:
        drawn = draw(rows)
        changes = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(kinds)
            column, values = draw(st.sampled_from(breakers[kind]))
            value = None if values is None else draw(values)
            row = 0 if kind.endswith("column") else draw(st.integers(0, len(drawn) - 1))
            changes.append(_Change(kind, column, row, value))
        return _Case(drawn, draw(st.booleans()), tuple(changes))

    return valid(), invalid()


def _observed(sampled: pd.DataFrame, name: str) -> list[Any]:
    """Distinct present values of a column among the sampled training rows."""
    values = sampled[name].dropna().drop_duplicates().head(50)
    return [plain(v) for v in values.tolist()]


def _valid_values(spec: ColumnSpec, observed: list[Any]) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    base: SearchStrategy[Any]
    if spec.categories is not None:
        base = st.sampled_from(spec.categories) if spec.categories else st.nothing()
    elif spec.checks or spec.custom_checks or spec.kind in ("datetime", "other"):
        # Values seen in training meet every check; arbitrary ones may not.
        base = st.sampled_from(observed) if observed else st.nothing()
    elif spec.kind == "boolean":
        base = st.booleans()
    elif spec.kind == "text":
        base = st.text(max_size=30)
        if observed:
            base = st.one_of(st.sampled_from(observed), base)
    else:  # number
        integer = pd.api.types.is_integer_dtype(spec.pandas_dtype)
        lo, hi = spec.minimum, spec.maximum
        if lo is None or hi is None:
            base = st.integers(-1000, 1000) if integer else st.floats(-1e6, 1e6)
        elif integer:
            base = st.integers(int(lo), int(hi))
        else:
            base = st.one_of(st.sampled_from([float(lo), float(hi)]),
                             st.floats(float(lo), float(hi), allow_nan=False,
                                       allow_infinity=False))
    if spec.nullable:
        return st.one_of(st.none(), base)
    return base


def _breakers(
    contract: Contract,
) -> dict[_Breakage, list[tuple[str, SearchStrategy[Any] | None]]]:
    """Every way the invalid strategy may break an input: kind -> [(column, values to put)]."""
    from hypothesis import strategies as st

    out: dict[_Breakage, list[tuple[str, SearchStrategy[Any] | None]]] = {
        "extra column": [(_EXTRA_COLUMN, st.integers())]}
    for spec in contract.columns:
        if spec.categories:
            out.setdefault("unseen category", []).append((spec.name, _unseen_values(spec)))
        if not spec.nullable:
            out.setdefault("unexpected missing", []).append((spec.name, None))
        if spec.kind != "other":
            out.setdefault("wrong type", []).append((spec.name, _wrong_values(spec)))
        out.setdefault("missing column", []).append((spec.name, None))
    return out


def _unseen_values(spec: ColumnSpec) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    allowed = set(spec.categories or ())
    if all(isinstance(c, str) for c in allowed):
        return _readable_text().filter(lambda v: v not in allowed)
    return st.integers().filter(lambda v: v not in allowed)


def _wrong_values(spec: ColumnSpec) -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    nested = st.sampled_from([[1, 2], {"a": 1}])
    text = _readable_text()
    if spec.kind == "number" or (spec.categories and not all(
            isinstance(c, str) for c in spec.categories)):
        return st.one_of(text, nested)
    if spec.kind in ("categorical", "text"):
        return st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.booleans(), nested)
    return st.one_of(text, st.floats(allow_nan=False, allow_infinity=False), nested)


def _readable_text() -> SearchStrategy[str]:
    """Short non-empty text a person can read in a failure message."""
    from hypothesis import strategies as st

    return st.text(st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=12)
