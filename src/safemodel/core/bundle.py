"""The :class:`ModelBundle`: estimator, contract, policy and golden outputs, together.

Scoring runs contract -> policy -> estimator. A bundle holds no per-call state, so one
bundle can serve many threads at once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

import cloudpickle
import numpy as np
import pandas as pd
from packaging.version import Version

from safemodel._frame import as_frame
from safemodel._values import bundle_name_problem
from safemodel._versions import parse_version
from safemodel.core.contract import Contract, _contract_for
from safemodel.core.engine import Invalid, apply
from safemodel.core.environment import capture_environment, environment_diff
from safemodel.core.fingerprint import fingerprint_of
from safemodel.core.fitted import (
    check_fitted,
    check_golden_accepted,
    check_policy_columns,
    fitted_contract,
    frame_for,
)
from safemodel.core.golden import (
    Golden,
    VerificationReport,
    compare_outputs,
    describe_policy_diff,
    golden_inputs,
    policy_diff,
)
from safemodel.core.methods import (
    SCORING_METHODS,
    _ScoringMethod,
    scoring_methods,
)
from safemodel.core.outputs import as_output, check_rejected, is_sparse, rejection_limit
from safemodel.core.policy import Policy, check_option
from safemodel.core.references import UNRESOLVED, pickle_references
from safemodel.core.report import (
    PolicyReport,
    Prepared,
    log_prediction,
    log_report,
    logger,
    prediction_log,
)
from safemodel.core.writer import BundleWriter, _writer, register_writer
from safemodel.errors import InvalidArgument, SafeModelError, ScoringError

if TYPE_CHECKING:

    from safemodel.monitoring.drift import DriftReport
    from safemodel.monitoring.profile import Profile

__all__ = ["SCORING_METHODS", "BundleWriter", "ModelBundle", "Scored", "register_writer"]

# BundleWriter and register_writer live in core.writer; re-exported where io looks.

#: Rows of the training frame the reference profile is built from (a seeded sample
#: beyond it): scoring every training row made from_training cost 0.45 of fit on 1M rows.
PROFILE_ROWS = 100_000


@dataclass(frozen=True)
class Scored:
    """Outputs of :meth:`ModelBundle.score`.

    ``outputs[i]`` belongs to input row ``rows[i]``; rows the contract rejected are
    listed with their failures in ``report.rejected``.
    """

    outputs: np.ndarray
    rows: np.ndarray
    report: PolicyReport


class ModelBundle:
    """A trained estimator with its input contract, handling policy and golden outputs.

    Build one with :meth:`from_training`; save it with :meth:`save`; load it with
    :func:`safemodel.load`, which re-runs the golden inputs and refuses a model whose
    outputs changed.

    Parameters
    ----------
    estimator : object
        A fitted scikit-learn-style estimator.
    contract : Contract or pandera schema
    policy : Policy
    golden : Golden
    name : str
    version : str or packaging.version.Version
        A PEP 440 version.
    metadata : dict, optional
        JSON-ready metadata (metrics, training run id, owner...).
    profile : Profile, optional
        The training reference profile used by :meth:`drift`.

    Examples
    --------
    >>> bundle = sm.ModelBundle.from_training(pipe, X, name="churn", version="1.2.0")
    ... # doctest: +SKIP
    >>> bundle.predict_proba({"island": "Biscoe", ...})  # doctest: +SKIP
    """

    predict = _ScoringMethod["ModelBundle"]("predict")
    predict_proba = _ScoringMethod["ModelBundle"]("predict_proba")
    decision_function = _ScoringMethod["ModelBundle"]("decision_function")
    transform = _ScoringMethod["ModelBundle"]("transform")

    def __init__(
        self,
        estimator: Any,
        contract: Contract | Any,
        policy: Policy | None,
        golden: Golden,
        *,
        name: str,
        version: str | Version,
        metadata: Mapping[str, Any] | None = None,
        profile: Profile | None = None,
        _environment: Mapping[str, str | None] | None = None,
        _estimator_bytes: bytes | None = None,
        _estimator_source: Callable[[], bytes | None] | None = None,
        _fingerprint: str | None = None,
        _golden_source: Callable[[], Golden] | None = None,
    ) -> None:
        problem = bundle_name_problem(name)
        if problem is not None:
            raise InvalidArgument(
                f"The 'name' parameter of ModelBundle is invalid: {problem}. Name the "
                "bundle as a store folder would be named, e.g. 'churn'.",
                argument="name", expected="a bundle name", found=name,
            )
        if not isinstance(golden, Golden):
            raise InvalidArgument.of("ModelBundle", "golden", "a safemodel Golden", golden)
        self._estimator = estimator
        self._contract = (contract if isinstance(contract, Contract)
                          else Contract.from_schema(contract))
        self._policy = policy if policy is not None else Policy()
        if not isinstance(self._policy, Policy):
            raise InvalidArgument.of("ModelBundle", "policy", "a safemodel Policy or None",
                                     policy)
        # A loaded bundle keeps its golden part in the compact form it was stored in and
        # decodes it when asked (_golden_source); the decoded one it was built with serves
        # the verification that follows the load, once. See the golden property.
        self._golden: Golden | None = golden
        self._golden_source = _golden_source
        # What an empty input returns per method, without decoding the golden outputs.
        self._empty_outputs = {m: np.empty((0, *a.shape[1:]), dtype=a.dtype)
                               for m, a in golden.outputs.items()}
        self._name = name
        self._version = parse_version(version)
        self._metadata = dict(metadata or {})
        try:
            json.dumps(self._metadata)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidArgument(
                f"Bundle metadata must be JSON-ready (str, numbers, lists, dicts); {exc}.",
                argument="metadata", expected="a JSON-ready dict", found=type(exc).__name__,
            ) from None
        self._profile = profile
        self._methods = scoring_methods(estimator)
        if not self._methods:
            raise InvalidArgument(
                f"{type(estimator).__name__} has none of {list(SCORING_METHODS)}; pass a "
                "fitted estimator.",
                argument="estimator", expected=f"an object with one of {list(SCORING_METHODS)}",
                found=type(estimator).__name__,
            )
        self._estimator_bytes = _estimator_bytes
        # A loaded bundle keeps no copy of its pickle (it would double the memory of
        # the estimator): this re-reads the exact bytes from the file, hash-checked,
        # when a save or a member listing needs them; None when they are gone.
        self._estimator_source = _estimator_source
        self._environment = dict(_environment) if _environment is not None else None
        self._members_cache: dict[str, bytes] | None = None
        # A loaded bundle's members were checked against this value, so it need not
        # be computed again by serialising every member.
        self._fingerprint = _fingerprint
        self._label = f"{name}=={self._version}"

    # ----------------------------------------------------------------- building

    @classmethod
    def from_training(
        cls,
        estimator: Any,
        X: Any,
        *,
        name: str,
        version: str | Version = "0.1.0",
        policy: Policy | None = None,
        golden_rows: int = 64,
        rtol: float = 0.0,
        atol: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
        random_state: int = 0,
        contract: Contract | Any = None,
        max_categories: int = 100,
        known_categories: Literal["add", "report"] = "add",
        profile_rows: int = PROFILE_ROWS,
    ) -> ModelBundle:
        """Bundle a fitted estimator with the contract inferred from its training data.

        Parameters
        ----------
        estimator : object
            Fitted; scored with every one of ``predict``, ``predict_proba``,
            ``decision_function`` it has.
        X : DataFrame or records
            The training inputs (or a representative sample of them).
        name, version : str
            Bundle identity; ``version`` must be PEP 440.
        policy : Policy, optional
            Defaults to ``Policy()``.
        golden_rows : int, default 64
            Training rows sampled into the golden fixture (edge cases are added).
        rtol, atol : float, default 0.0
            Tolerances recorded for golden comparison; 0 means exact.
        metadata : dict, optional
        random_state : int, default 0
            Seed of the golden sample.
        contract : Contract, pandera DataFrameSchema or DataFrameModel, optional
            Use this contract instead of inferring one (impute values still come from X).
        max_categories : int, default 100
            See :meth:`Contract.infer`.
        known_categories : {"add", "report"}, default "add"
            Categories the estimator's fitted encoders know (``OneHotEncoder``,
            ``OrdinalEncoder``, ``TargetEncoder``, HistGradientBoosting's categorical
            features) but ``X`` lacks: ``"add"`` them to the contract's allowed set, or
            only ``"report"`` them (in :attr:`build_notes` and the log).
        profile_rows : int, default 100000
            The drift profile is built from a seeded sample of at most this many rows
            of ``X``, so building costs the same beyond it.

        Returns
        -------
        ModelBundle
            :attr:`build_notes` says what the fitted estimator changed in the contract.

        Raises
        ------
        InvalidArgument
            On a bad argument: an unfitted estimator, ``X`` lacking a column the
            estimator was fitted on, a policy naming a column the contract lacks, or a
            contract that rejects training rows sampled into the golden fixture.
        SafeModelError
            When the estimator cannot score its own golden rows.
        """
        the_policy = policy if policy is not None else Policy()
        if not isinstance(the_policy, Policy):
            raise InvalidArgument.of("ModelBundle.from_training", "policy",
                                     "a safemodel Policy or None", policy)
        check_option("known_categories", known_categories, ("add", "report"),
                     "ModelBundle.from_training")
        if isinstance(profile_rows, bool) or not isinstance(profile_rows, int) or profile_rows < 1:
            raise InvalidArgument.of("ModelBundle.from_training", "profile_rows",
                                     "an integer >= 1", profile_rows)
        check_fitted(estimator)
        frame = as_frame(X)
        notes: dict[str, Any] = {}
        frame = frame_for(estimator, frame, notes)
        the_contract = _contract_for(frame, contract, max_categories)
        the_contract = fitted_contract(estimator, the_contract, known_categories, notes)
        check_policy_columns(the_policy, the_contract, notes)
        inputs, edge_rows = golden_inputs(
            frame, the_contract, rows=golden_rows, random_state=random_state
        )
        golden = _record_golden(estimator, the_contract, the_policy, inputs, edge_rows,
                                rtol=rtol, atol=atol)
        check_golden_accepted(golden)
        sample = (frame.sample(n=profile_rows, random_state=random_state)
                  if len(frame) > profile_rows else frame)
        notes["profile"] = {"rows": len(sample), "of": len(frame),
                            "random_state": random_state}
        golden = dataclasses.replace(golden, notes=notes)
        bundle = cls(estimator, the_contract, the_policy, golden, name=name, version=version,
                     metadata=metadata)
        bundle._profile = bundle._build_profile(sample)
        return bundle

    def _build_profile(self, frame: pd.DataFrame) -> Profile:
        from safemodel.monitoring.profile import Profile

        categorical = {s.name: list(s.categories) for s in self._contract.columns
                       if s.categories is not None}
        scores = self.reference_scores(frame)
        return Profile.build(frame[list(self._contract.names)], categorical=categorical,
                             scores=scores or None)

    @property
    def build_notes(self) -> dict[str, Any]:
        """What ``from_training`` learnt from the fitted estimator, recorded in the bundle.

        ``unused_columns`` (columns of ``X`` the estimator never sees, not required),
        ``known_categories`` (``{column: [categories]}`` its encoders know but ``X``
        lacked; ``added`` says whether they joined the allowed set), ``profile``
        (the rows the reference profile was built from). Empty for bundles built
        otherwise.
        """
        return copy.deepcopy(dict(self.golden.notes))

    # --------------------------------------------------------------- the parts

    @property
    def estimator(self) -> Any:
        return self._estimator

    @property
    def contract(self) -> Contract:
        return self._contract

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def golden(self) -> Golden:
        golden = self._golden
        if self._golden_source is None:
            return golden  # type: ignore[return-value]  # None only with a source
        if golden is None:
            return self._golden_source()
        # Handed out once (to the verification of the load, as a rule), then decoded
        # from the compact form on each use: 64 decoded rows and outputs cost ~20 KB
        # a bundle, three times their encoded size.
        self._golden = None
        return golden

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> Version:
        return self._version

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    @property
    def profile(self) -> Profile | None:
        """The training reference profile (``None`` for bundles built without one)."""
        return self._profile

    @property
    def methods(self) -> tuple[str, ...]:
        """The scoring methods this bundle offers (those its estimator has)."""
        return self._methods

    @property
    def environment(self) -> dict[str, str | None]:
        """Package versions at build time (Python, scikit-learn, numpy, ...)."""
        if self._environment is None:
            modules = {re.split(r"[.:]", ref, maxsplit=1)[0]
                       for ref in pickle_references(self._pickle()) if ref != UNRESOLVED}
            self._environment = capture_environment(modules)
        return dict(self._environment)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the bundle's content (estimator bytes, contract, policy, golden...)."""
        if self._fingerprint is None:
            members = self._members()
            self._fingerprint = fingerprint_of(
                {k: hashlib.sha256(v).hexdigest() for k, v in members.items()})
        return self._fingerprint

    def __repr__(self) -> str:
        return (f"<ModelBundle {self._name}=={self._version} "
                f"{type(self._estimator).__name__} methods={list(self._methods)}>")

    def _repr_html_(self) -> str:
        from safemodel.core._display import bundle_html

        return bundle_html(self)

    def __dir__(self) -> list[str]:
        """The attributes, with only the scoring methods this estimator has."""
        # The scoring methods the estimator lacks are not attributes (see _ScoringMethod).
        absent = {m for m in SCORING_METHODS if m not in self._methods}
        return sorted(n for n in super().__dir__() if n not in absent)

    # ------------------------------------------------------------------ scoring

    def prepare(self, X: Any, *, invalid: Invalid = "raise") -> Prepared:
        """Apply contract and policy, without the estimator.

        Parameters
        ----------
        X : DataFrame, list of dict records, dict of lists, or one dict (one row)
        invalid : {"raise", "drop"}, default "raise"
            ``"drop"`` leaves rows that break the contract out (listed in
            ``report.rejected``) instead of raising.

        Returns
        -------
        Prepared
            ``.frame`` (what the estimator sees) and ``.report`` (what the policy did).

        Raises
        ------
        ContractViolation
            Every failure at once, with ``.failures`` and ``.to_dict()``.
        """
        return apply(self._contract, self._policy, X, invalid=invalid)

    def score(
        self, X: Any, *, method: str | None = None, invalid: Invalid = "raise",
        max_rejected: float | None = None,
    ) -> Scored:
        """Score ``X`` and return outputs with the report (and rejected rows).

        With ``invalid="drop"`` the rows that break the contract are not scored; the
        others are, and ``Scored.rows`` says which input rows the outputs belong to.

        Parameters
        ----------
        X : DataFrame, list of dict records, dict of lists, or one dict (one row)
        method : str, optional
            One of :attr:`methods`; by default ``predict_proba`` when offered, else the
            first method.
        invalid : {"raise", "drop"}, default "raise"
        max_rejected : int or float, optional
            With ``invalid="drop"``: the most rows that may be rejected, as a count
            (an int) or a fraction of the rows (a float in ``[0, 1]``). More raise
            :class:`~safemodel.errors.TooManyRejected` instead of scoring the rest.

        Returns
        -------
        Scored
            ``outputs`` as a dense 2-D array for multi-output methods (a list of
            per-output arrays, as ``MultiOutputClassifier.predict_proba`` returns, is
            stacked side by side).
        """
        if method is None:
            method = "predict_proba" if "predict_proba" in self._methods else self._methods[0]
        if method not in self._methods:
            raise InvalidArgument.of("score", "method", f"one of {list(self._methods)}", method)
        limit = rejection_limit(max_rejected, "ModelBundle.score", invalid)
        prepared = apply(self._contract, self._policy, X, invalid=invalid)
        log_report(prepared.report, self._label)
        if limit is not None:
            check_rejected(prepared.report, limit, self._label)
        outputs = as_output(self._call(method, prepared.frame))
        return Scored(outputs, prepared.rows, prepared.report)

    def _score(self, method: str, X: Any) -> Any:
        started = time.perf_counter()
        prepared = apply(self._contract, self._policy, X)
        log_report(prepared.report, self._label)
        out = self._call(method, prepared.frame)
        if prediction_log.isEnabledFor(10):
            log_prediction(self, method, prepared.report, time.perf_counter() - started)
        return out

    def _call(self, method: str, frame: pd.DataFrame) -> Any:
        """The estimator's own output: an ndarray, a sparse matrix (``transform``), or a
        list of arrays (multi-output ``predict_proba``)."""
        if len(frame) == 0:
            return self._empty(method)
        try:
            out = getattr(self._estimator, method)(frame)
            return out if is_sparse(out) or isinstance(out, list) else np.asarray(out)
        except Exception as exc:
            raise ScoringError(
                f"{type(self._estimator).__name__}.{method} raised {type(exc).__name__}: "
                f"{exc}. The input met the contract under this bundle's policy; if the "
                "policy passes unseen or missing values through, the estimator must handle "
                "them (or choose a policy that does).",
                method=method,
            ) from exc

    def _empty(self, method: str) -> np.ndarray:
        reference = self._empty_outputs.get(method)
        return np.empty((0,)) if reference is None else reference.copy()

    # ------------------------------------------------------------ verification

    def verify(self, *, rtol: float | None = None, atol: float | None = None
               ) -> VerificationReport:
        """Re-run the golden inputs and compare outputs, rejections and policy actions.

        Parameters
        ----------
        rtol, atol : float, optional
            Override the tolerances recorded in the bundle for this check.

        Returns
        -------
        VerificationReport
            ``.ok`` is True when everything reproduced exactly (or within the
            recorded ``rtol``/``atol``).
        """
        golden = self.golden
        prepared = apply(self._contract, self._policy, golden.inputs, invalid="drop")
        changes = policy_diff(golden, prepared.report)
        mismatches = []
        rows = prepared.rows
        for method, expected in sorted(golden.outputs.items()):
            try:
                obtained = as_output(self._call(method, prepared.frame))
            except ScoringError as exc:
                # The estimator scored these very rows at build time, so the policy is
                # not the cause: report what raised, without ScoringError's policy advice.
                cause = exc.__cause__ or exc
                mismatches.append({"method": method, "rows_differing": len(expected),
                                   "rows_total": len(expected), "max_abs_diff": None,
                                   "max_rel_diff": None, "examples": [],
                                   "detail": f"{type(self._estimator).__name__}.{method} raised "
                                             f"{type(cause).__name__}: {cause}",
                                   "raised": type(cause).__name__})
                continue
            if len(rows) != len(expected):
                continue  # the policy diff already says which rows changed fate
            mismatch = compare_outputs(
                method, expected, obtained, rows=rows,
                rtol=golden.rtol if rtol is None else rtol,
                atol=golden.atol if atol is None else atol,
            )
            if mismatch is not None:
                mismatches.append(mismatch)
        return VerificationReport(
            mismatches=tuple(mismatches),
            policy_diff=tuple(describe_policy_diff(changes)),
            environment_diff=environment_diff(self.environment),
            name=self._label,
        )

    # ------------------------------------------------------------------- drift

    def _scores_of(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        # Through _call: an estimator failure is a ScoringError here too, as in predict.
        # A transformer's outputs are features, not scores: its profile has inputs only.
        if "predict_proba" in self._methods:
            proba = as_output(self._call("predict_proba", frame)).astype("float64")
            classes = getattr(self._estimator, "classes_", None)
            if not (isinstance(classes, np.ndarray) and classes.ndim == 1
                    and len(classes) == proba.shape[1]):
                classes = np.arange(proba.shape[1])  # multi-output: one column per output
            return {f"proba[{c}]": proba[:, i] for i, c in enumerate(classes.tolist())}
        if "predict" not in self._methods:
            return {}
        pred = as_output(self._call("predict", frame))
        if pred.dtype.kind not in "biuf":
            return {}
        if pred.ndim == 1:
            return {"prediction": pred.astype("float64")}
        flat = pred.reshape(len(pred), -1).astype("float64")
        return {f"prediction[{j}]": flat[:, j] for j in range(flat.shape[1])}

    def reference_scores(self, X: Any) -> dict[str, np.ndarray]:
        """Scores of ``X`` the way the reference profile's score part was built.

        One value per input row; rows the contract rejects get NaN (drift then counts
        them as missing scores).
        """
        frame = as_frame(X)
        prepared = apply(self._contract, self._policy, frame, invalid="drop")
        if len(prepared.frame) == 0:
            return {}
        scores = self._scores_of(prepared.frame)
        if len(prepared.frame) == len(frame):
            return scores
        full = {}
        for key, values in scores.items():
            column = np.full(len(frame), np.nan)
            column[prepared.rows] = values
            full[key] = column
        return full

    def drift(self, X: Any, *, scores: Mapping[str, Any] | np.ndarray | None = None,
              warn: float = 0.01, alert: float = 0.02, min_rows: int = 10,
              alpha: float = 0.05) -> DriftReport:
        """Compare ``X`` (and the scores) with the training reference profile.

        Parameters
        ----------
        X : DataFrame or records
            Production inputs, before the policy (unseen and missing values count).
        scores : dict of str to array, or array, optional
            Scores already computed: ``{score name: values}`` or the
            ``predict_proba`` / ``predict`` array itself (columns in the profile's score
            order), as :meth:`Monitor.observe` takes them; by default computed from ``X``.
        warn, alert : float, default 0.01 and 0.02
            Effect-size floors (PSI): a significant change warns from ``warn`` and
            alerts from ``alert``.
        min_rows : int, default 10
            Smaller batches report ``"insufficient"`` instead of a verdict.
        alpha : float, default 0.05
            The chance of any false alarm in the report (every test Holm-corrected).

        Raises
        ------
        SafeModelError
            When the bundle carries no reference profile (built before profiles
            existed); rebuild it with :meth:`from_training`.
        InvalidArgument
            Bad thresholds, or ``scores`` with unknown names or the wrong shape.
        ScoringError
            The estimator raised while scoring ``X``.
        """
        from safemodel.monitoring.drift import drift

        if self._profile is None:
            raise SafeModelError(
                f"Bundle {self._label} has no reference profile (it was built by a "
                "safemodel without monitoring, or without training data); rebuild it with "
                "ModelBundle.from_training to monitor drift."
            )
        frame = as_frame(X)
        if scores is None and self._profile.scores:
            scores = self.reference_scores(frame)
        return drift(self._profile, frame, scores=scores, warn=warn, alert=alert,
                     min_rows=min_rows, alpha=alpha)

    # -------------------------------------------------------------- persistence

    def save(
        self,
        path: str | PathLike[str],
        *,
        overwrite: bool = False,
        signing_key: Any = None,
        sidecar: bool = False,
    ) -> None:
        """Write the bundle to one file, atomically.

        Parameters
        ----------
        path : str or path-like
        overwrite : bool, default False
            Refuse to replace an existing file unless True. A ``<path>.sig`` there
            signs other bytes: refused too, or with True replaced (or removed).
        signing_key : HmacKey, Ed25519 private key, str or bytes, optional
            The key that signs the manifest (text: ``"hmac:<secret>"`` or a PEM
            private key). Defaults to ``$SAFEMODEL_SIGNING_KEY``, else your own
            Ed25519 key, created in the safemodel home folder on first save. Every
            save signs: :func:`safemodel.load` unpickles only what a trusted key signed.
        sidecar : bool, default False
            Also write ``<path>.sig`` (OpenSSF model signing; needs an ECDSA key).
        """
        _writer().save(self, path, overwrite=overwrite, signing_key=signing_key, sidecar=sidecar)

    def _pickle(self) -> bytes:
        if self._estimator_bytes is None and self._estimator_source is not None:
            data = self._estimator_source()
            if data is not None:
                return data  # not kept: the source can give them again
            self._estimator_source = None
            logger.warning(
                "%s: the estimator's original pickle could not be re-read from the file "
                "it was loaded from (moved, deleted or changed since); pickling the "
                "loaded estimator again. The new bytes may differ from the original "
                "ones, so a bundle saved from it may get a new fingerprint.", self._label)
        if self._estimator_bytes is None:
            try:
                self._estimator_bytes = cloudpickle.dumps(self._estimator)
            except Exception as exc:
                raise SafeModelError(
                    f"Cannot serialise {type(self._estimator).__name__} with cloudpickle: "
                    f"{type(exc).__name__}: {exc}."
                ) from exc
        return self._estimator_bytes

    def _members(self) -> dict[str, bytes]:
        """Every content member of the archive (not the manifest or signature)."""
        if self._members_cache is not None:
            return self._members_cache
        members = _writer().members(self)
        if self._estimator_source is None:
            # A loaded bundle does not cache them: they hold the pickle it dropped.
            self._members_cache = members
        return members


def _record_golden(
    estimator: Any,
    contract: Contract,
    policy: Policy,
    inputs: pd.DataFrame,
    edge_rows: int,
    *,
    rtol: float,
    atol: float,
) -> Golden:
    prepared = apply(contract, policy, inputs, invalid="drop")
    outputs: dict[str, np.ndarray] = {}
    for method in scoring_methods(estimator):
        try:
            outputs[method] = as_output(getattr(estimator, method)(prepared.frame))
        except SafeModelError:
            raise
        except Exception as exc:
            raise SafeModelError(
                f"{type(estimator).__name__}.{method} failed on the golden rows "
                f"({type(exc).__name__}: {exc}). The golden fixture includes edge cases "
                "(an unseen category and a missing value per column); the policy lets them "
                "through unchanged only under 'passthrough'. Use a policy that handles "
                "them, or an estimator that does."
            ) from exc
    return Golden(
        inputs=inputs,
        outputs=outputs,
        rtol=float(rtol),
        atol=float(atol),
        rejected=prepared.report.rejected_checks(),
        report=prepared.report.counts(),
        edge_rows=edge_rows,
    )
