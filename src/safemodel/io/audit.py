"""Static audit of the globals an estimator pickle would import, without unpickling it.

Unpickling runs code: every global a pickle names is imported and may be called with
arguments the pickle chooses. Before safemodel unpickles an estimator it lists those
globals here, by reading the opcodes with :func:`pickletools.genops`, and refuses the
bundle if any is outside an allow-list.

References are written ``"module.name"`` (``"sklearn.pipeline.Pipeline"``). A
pickle may also name an attribute *path* inside a module (protocol 4 resolves
``"Outer.Inner"`` attribute by attribute); such references are written
``"module:path"``, the notation of :func:`pkgutil.resolve_name`, because a path can
walk through a module-level import (``"sklearn.linear_model._base:np.load"`` is
:func:`numpy.load`) and so must not be mistaken for a name *defined* in an allowed
module. A global the audit cannot name statically is ``"<unresolved>"``.

What the audit promises: a pickle that passes cannot reach a callable outside the
allow-list; not ``os.system``, ``builtins.eval``, ``getattr`` or a code object, and
not a function an allowed module merely imports. A module entry permits the
*classes* defined there whose unpickling only stores data: their ``__setstate__`` is
absent or one reviewed here (``_REVIEWED_SETSTATE``), because a ``__setstate__`` runs
with state the pickle chooses (scipy's distributions ``exec`` a string from it). Any
other class, and every function, needs an exact entry.

The audit is enforced while unpickling, not only read: :func:`restricted_loads`
unpickles with :class:`RestrictedUnpickler`, whose ``find_class`` applies the same
rules to each global as it is imported (so what :func:`pickle_references` reports
and what runs agree, including names reached through ``copyreg``'s extension
registry), and which checks the state given to every ``numpy.dtype``, because a
dtype whose flags deny that it holds objects makes numpy read raw bytes as object
pointers. What the audit cannot judge is what allowed classes and functions do with
the arguments and state the pickle gives them (a crafted decision tree can index
out of bounds), so it narrows the attack surface; a bundle's trusted signature
(:mod:`safemodel.io.trust`) is the trust boundary.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
import sys
from collections.abc import Iterable
from typing import Any, ClassVar, Final, Literal

from safemodel.core.references import UNRESOLVED, pickle_references
from safemodel.errors import IntegrityError, InvalidArgument

__all__ = [
    "ARBITRARY_CODE_MODULES",
    "DEFAULT_ALLOWED_MODULES",
    "NOTEBOOK_ALLOWED_MODULES",
    "UNRESOLVED",
    "RestrictedUnpickler",
    "disallowed_references",
    "pickle_references",
    "refusal_advice",
    "restricted_loads",
]

# Elementwise numpy ufuncs (and ``clip``) a ``FunctionTransformer`` commonly wraps.
# They are listed one by one because the ``numpy`` namespace also holds
# ``numpy.load`` (which unpickles a file when its third positional argument is true),
# file writers (``numpy.save``, ``numpy.savetxt``) and, through ``numpy.core``, the
# legacy ``_ufunc_reconstruct(module, name)``, which imports any module.
_NUMPY_FUNCTIONS: Final = (
    "absolute", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
    "cbrt", "ceil", "clip", "cos", "cosh", "deg2rad", "exp", "exp2", "expm1", "fabs",
    "floor", "hypot", "isfinite", "isinf", "isnan", "log", "log10", "log1p", "log2",
    "logaddexp", "logaddexp2", "maximum", "minimum", "negative", "positive", "power",
    "rad2deg", "reciprocal", "rint", "sign", "sin", "sinh", "sqrt", "square", "tan",
    "tanh", "trunc",
)  # fmt: skip
# numpy scalar types, pickled by name when an estimator stores a dtype parameter
# (``OneHotEncoder(dtype=np.float64)``).
_NUMPY_TYPES: Final = (
    "bool", "bool_", "bytes_", "complex64", "complex128", "datetime64", "float16",
    "float32", "float64", "int8", "int16", "int32", "int64", "intc", "intp", "longdouble",
    "object_", "str_", "timedelta64", "uint8", "uint16", "uint32", "uint64", "uintc",
    "uintp",
)  # fmt: skip
# pandas >= 3 pickles its classes and singletons under the top-level name
# (``pandas.DataFrame``); the ``pandas`` namespace itself is not allowed because it
# also holds ``read_pickle``, which unpickles a file or URL.
_PANDAS_NAMES: Final = (
    "ArrowDtype", "BooleanDtype", "Categorical", "CategoricalDtype", "CategoricalIndex",
    "DataFrame", "DatetimeIndex", "DatetimeTZDtype", "Float32Dtype", "Float64Dtype",
    "Index", "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "Interval",
    "IntervalDtype", "IntervalIndex", "MultiIndex", "NA", "NaT", "Period", "PeriodDtype",
    "PeriodIndex", "RangeIndex", "Series", "SparseDtype", "StringDtype", "Timedelta",
    "TimedeltaIndex", "Timestamp", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype",
    "UInt64Dtype",
)  # fmt: skip

# Score functions a fitted search (``GridSearchCV(scoring="roc_auc").scorer_``) or a
# feature selector (``SelectKBest()`` defaults to ``f_classif``) holds.
_SKLEARN_SCORE_FUNCTIONS: Final = {
    "sklearn.feature_selection._mutual_info": (
        "mutual_info_classif", "mutual_info_regression",
    ),
    "sklearn.feature_selection._univariate_selection": (
        "chi2", "f_classif", "f_oneway", "f_regression", "r_regression",
    ),
    "sklearn.metrics._classification": (
        "accuracy_score", "balanced_accuracy_score", "brier_score_loss", "d2_brier_score",
        "d2_log_loss_score", "f1_score", "fbeta_score", "jaccard_score", "log_loss",
        "matthews_corrcoef", "precision_score", "recall_score",
    ),
    "sklearn.metrics._ranking": (
        "average_precision_score", "roc_auc_score", "top_k_accuracy_score",
    ),
    "sklearn.metrics._regression": (
        "d2_absolute_error_score", "explained_variance_score", "max_error",
        "mean_absolute_error", "mean_absolute_percentage_error", "mean_gamma_deviance",
        "mean_poisson_deviance", "mean_squared_error", "mean_squared_log_error",
        "median_absolute_error", "r2_score", "root_mean_squared_error",
        "root_mean_squared_log_error",
    ),
}  # fmt: skip

#: Globals a scikit-learn / numpy / scipy / pandas model needs to be rebuilt.
#:
#: Each entry names either one global exactly (``"builtins.slice"``), or a module,
#: which permits the *classes* defined in it and its submodules (``"sklearn.pipeline"``
#: permits ``"sklearn.pipeline.Pipeline"``) whose ``__setstate__`` only stores data;
#: functions, and classes with any other ``__setstate__``, are named one by one,
#: because calling them with arguments and state of the pickle's choosing is how a
#: pickle runs code. See :func:`disallowed_references`. The list is measured, not guessed:
#: ``tests/test_pickle_audit.py`` pickles real pipelines of the common model families
#: with cloudpickle and checks that every reference is allowed, and that nothing
#: the list permits is a known-dangerous callable.
#:
#: Deliberately absent:
#:
#: * ``builtins`` but for a few containers: ``eval``, ``exec``, ``__import__``,
#:   ``open``, and ``getattr``, which reaches any function's ``__globals__`` and from
#:   there every builtin. Plain pickle uses ``getattr`` for bound methods; no
#:   estimator of the measured families needs it.
#: * ``os``, ``posix``, ``nt``, ``subprocess``, ``sys``, ``shutil``, ``importlib``,
#:   ``socket``, ``pickle``, ``marshal``, ``operator`` (``attrgetter`` is
#:   ``getattr``), ``types`` and ``cloudpickle``; the last two rebuild functions and
#:   classes from code objects, i.e. run code.
#: * ``scipy.stats``: a distribution object's ``__setstate__`` runs ``exec`` on a
#:   string from its state, so a ``RandomizedSearchCV`` holding scipy distributions
#:   needs them added on purpose (save ``search.best_estimator_`` instead);
#: * the ``numpy`` and ``pandas`` namespaces (``numpy.load``, ``numpy.savetxt``,
#:   ``pandas.read_pickle`` load pickles or write files), ``joblib``, ``pyarrow``
#:   (rebuilds arrays from raw buffers without validating them), ``sklearn.datasets``,
#:   ``sklearn.utils`` but for four names, and ``sklearn.tree._export``.
#:
#: A model with code pickled *by value* (a class or function defined in a notebook,
#: in ``__main__`` or in a module passed to ``cloudpickle.register_pickle_by_value``)
#: therefore fails the audit, because loading it runs that code. The caller must
#: opt in: ``DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES``.
DEFAULT_ALLOWED_MODULES: Final[tuple[str, ...]] = (
    # Containers and plain values Python pickles by reference.
    "builtins.bytearray",
    "builtins.complex",
    "builtins.frozenset",
    "builtins.object",
    "builtins.range",
    "builtins.set",
    "builtins.slice",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
    "copyreg._reconstructor",  # objects pickled with protocol 0 and 1
    "_codecs.encode",  # bytes pickled with protocol 2 and below
    "datetime",
    "decimal.Decimal",
    "fractions.Fraction",
    "functools.partial",
    "uuid.UUID",
    # numpy: arrays, scalars, dtypes, masked arrays, random states, the names above.
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.core.multiarray._reconstruct",  # pickles written by numpy < 2
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy.dtype",
    "numpy.dtypes",
    "numpy.ma.MaskedArray",
    "numpy.ma.core.MaskedArray",
    "numpy.ma.core._mareconstruct",
    "numpy.ndarray",
    "numpy.random",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    *(f"numpy.{name}" for name in _NUMPY_FUNCTIONS + _NUMPY_TYPES),
    # scipy: sparse matrices and arrays, special-function ufuncs, splines
    # (SplineTransformer). Not scipy.stats: see above.
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "scipy.interpolate._bsplines.BSpline",
    "scipy.sparse._bsr",
    "scipy.sparse._coo",
    "scipy.sparse._csc",
    "scipy.sparse._csr",
    "scipy.sparse._dia",
    "scipy.sparse._dok",
    "scipy.sparse._lil",
    "scipy.special",
    # pandas: frames, series, indexes, arrays, dtypes and scalars; not pandas.io.
    *(f"pandas.{name}" for name in _PANDAS_NAMES),
    "pandas._libs.arrays",
    "pandas._libs.internals",
    "pandas._libs.internals._unpickle_block",
    "pandas._libs.interval",
    "pandas._libs.missing.NA",
    "pandas._libs.sparse",
    "pandas._libs.tslibs",
    "pandas._libs.tslibs.nattype.NaT",
    "pandas._libs.tslibs.nattype._nat_unpickle",
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
    "pandas._libs.tslibs.timestamps._unpickle_timestamp",
    "pandas.arrays",
    "pandas.core.arrays",
    "pandas.core.dtypes.dtypes",
    "pandas.core.frame.DataFrame",
    "pandas.core.indexes",
    "pandas.core.indexes.base._new_Index",
    "pandas.core.indexes.datetimes._new_DatetimeIndex",
    "pandas.core.indexes.interval._new_IntervalIndex",
    "pandas.core.indexes.period._new_PeriodIndex",
    "pandas.core.indexes.timedeltas._new_TimedeltaIndex",
    "pandas.core.internals",
    "pandas.core.series.Series",
    # scikit-learn: the packages whose modules define estimators and their fitted
    # state, the score functions above, and the few functions fitted models hold.
    "sklearn._loss",
    "sklearn.base",
    "sklearn.calibration",
    "sklearn.cluster",
    "sklearn.compose",
    "sklearn.covariance",
    "sklearn.cross_decomposition",
    "sklearn.decomposition",
    "sklearn.discriminant_analysis",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
    "sklearn.frozen",
    "sklearn.gaussian_process",
    "sklearn.impute",
    "sklearn.isotonic",
    "sklearn.kernel_approximation",
    "sklearn.kernel_ridge",
    "sklearn.linear_model",
    "sklearn.manifold",
    "sklearn.metrics",
    "sklearn.metrics._dist_metrics.newObj",
    "sklearn.mixture",
    "sklearn.model_selection",
    "sklearn.multiclass",
    "sklearn.multioutput",
    "sklearn.naive_bayes",
    "sklearn.neighbors",
    "sklearn.neighbors._ball_tree.newObj",
    "sklearn.neighbors._kd_tree.newObj",
    "sklearn.neural_network",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.random_projection",
    "sklearn.semi_supervised",
    "sklearn.svm",
    "sklearn.tree._classes",
    "sklearn.tree._criterion",
    "sklearn.tree._partitioner",
    "sklearn.tree._splitter",
    "sklearn.tree._tree",
    "sklearn.tree._utils",
    "sklearn.utils._bunch.Bunch",
    "sklearn.utils._metadata_requests",
    "sklearn.utils._set_output._wrap_data_with_container",  # set_output of a custom class
    "sklearn.utils.validation.check_array",  # HistGradientBoosting, native categories
    *(f"{module}.{name}" for module, names in _SKLEARN_SCORE_FUNCTIONS.items() for name in names),
)

#: What a pickle with code serialised by value references on top of the default:
#: every function of cloudpickle (``"cloudpickle.*"``), ``builtins.type``, the method
#: decorators, and ``builtins.getattr`` for bound methods. Allowing them allows
#: **arbitrary code**: ``cloudpickle.cloudpickle.subimport`` imports any module and
#: ``_make_function`` runs any code object. Use it only for bundles you trust, ideally
#: verified with a signing key.
ARBITRARY_CODE_MODULES: Final[tuple[str, ...]] = (
    "builtins.classmethod",
    "builtins.getattr",
    "builtins.property",
    "builtins.staticmethod",
    "builtins.type",
    "cloudpickle.*",
)

#: Everything a model with code defined in a notebook (pickled by value) needs:
#: ``DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES``. The documented opt-in, for a
#: bundle whose signer you trust; it admits arbitrary code by design.
NOTEBOOK_ALLOWED_MODULES: Final[tuple[str, ...]] = DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES

# Classes defining a __setstate__ that was read and only stores or converts data; a
# module entry admits a class only if every __setstate__ it has comes from here.
# (sklearn's Tree and BinaryTree check their arrays' dtypes and shapes but not the
# child indices inside them: a crafted tree can still read out of bounds. That is
# beyond what an allow-list can judge; see docs/security.md.)
_REVIEWED_SETSTATE: Final = frozenset({
    "numpy.random.bit_generator.BitGenerator",  # assigns .state, validated by numpy
    "numpy.random.bit_generator.SeedSequence",  # Cython: stores fields
    "pandas._libs.arrays.NDArrayBacked",  # Cython: stores the ndarray and dtype
    "pandas._libs.internals.BlockManager",  # rebuilds blocks from arrays
    "pandas.core.internals.managers.SingleBlockManager",  # the same, one block
    "sklearn.base.BaseEstimator",  # version warning, then __dict__.update
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # + astype
    "sklearn.metrics._dist_metrics.DistanceMetric",  # Cython: stores fields
    "sklearn.metrics._dist_metrics.DistanceMetric32",  # stores p and arrays
    "sklearn.metrics._dist_metrics.DistanceMetric64",
    "sklearn.metrics._dist_metrics.MahalanobisDistance32",  # + a zero buffer
    "sklearn.metrics._dist_metrics.MahalanobisDistance64",
    "sklearn.neighbors._ball_tree.BinaryTree32",  # stores arrays, checks dtypes
    "sklearn.neighbors._ball_tree.BinaryTree64",
    "sklearn.neighbors._kd_tree.BinaryTree32",
    "sklearn.neighbors._kd_tree.BinaryTree64",
    "sklearn.utils._bunch.Bunch",  # ignores the state
    "sklearn.tree._tree.Tree",  # checks node and value arrays, then copies them
})  # fmt: skip

# Module path parts a prefix entry never reaches into: test modules import helpers
# that run code (``sklearn.utils._testing.assert_run_python_script_without_output``)
# and nothing a fitted estimator holds lives there. An entry naming such a module
# itself still allows it.
_TEST_MODULE_PARTS: Final = frozenset({"conftest", "tests", "testing", "_testing"})
# Cython generates ``__pyx_unpickle_<Class>(type, checksum, state)`` for every cdef
# class; it only creates an instance of ``type``, itself a checked reference.
_CYTHON_RECONSTRUCTOR: Final = "__pyx_unpickle_"
# An entry "pkg.*" trusts pkg wholesale: its functions as well as its classes.
_EVERYTHING: Final = ".*"

def refusal_advice(references: Iterable[str]) -> str:
    """The last sentences of an audit refusal: why, and what to do next.

    Code pickled by value (cloudpickle's function and class rebuilders) gets the
    notebook opt-in; anything else gets how to write allow-list entries.

    Examples
    --------
    >>> "NOTEBOOK_ALLOWED_MODULES" in refusal_advice(["cloudpickle.cloudpickle._make_function"])
    True
    """
    refused = list(references)
    if any(r.split(":")[0].startswith("cloudpickle.") for r in refused):
        return (
            "The model holds code pickled by value (a function or class defined in a "
            "notebook or in __main__), and loading it runs that code. If you trust the "
            "bundle's signer, load it with "
            "allowed_modules=safemodel.NOTEBOOK_ALLOWED_MODULES; or move that code into an "
            "importable module, install it where the bundle loads, and rebuild the bundle."
        )
    return (
        "If you trust the bundle's signer, allow them: a function needs its exact name "
        "(a module entry such as 'numpy' admits only the classes defined there), and "
        "'package.*' admits a whole package, e.g. "
        f"allowed_modules=(*safemodel.DEFAULT_ALLOWED_MODULES, {refused[0]!r})."
        if refused else "If you trust the bundle's signer, widen allowed_modules."
    )


def disallowed_references(references: Iterable[str], allowed_modules: Iterable[str]) -> list[str]:
    """Return the references that no entry of an allow-list permits.

    An entry permits:

    * the global it names exactly (``"builtins.slice"``), and any attribute path
      inside it (``"numpy.random.RandomState"`` permits
      ``"numpy.random:RandomState.normal"``);
    * the *classes* defined in the module or package it names, at dot boundaries:
      ``"sklearn.linear_model"`` permits
      ``"sklearn.linear_model._logistic.LogisticRegression"``; ``"sklearn"`` does not
      permit ``"sklearnx.evil"``; but only classes whose ``__setstate__`` is absent
      or a reviewed one (``BaseEstimator``'s, numpy's bit generators', sklearn's
      trees): a class whose ``__setstate__`` runs code from its state (scipy's
      distributions) needs an exact entry. Also numpy ufuncs and Cython's
      ``__pyx_unpickle_*`` reconstructors defined there. Functions need an exact
      entry, because calling functions is how a pickle runs code;
    * everything defined in the module or package, functions included, when the
      entry ends with ``".*"`` (``"cloudpickle.*"``): trust in the whole package.

    To tell what a module *defines* from what it merely imports (``attrgetter`` in
    ``sklearn.feature_selection._base``, ``np`` anywhere), the module, always one an
    entry names, is imported and the global's ``__module__`` is judged instead. A
    module entry also does not reach an attribute path (``"module:np.load"``) or a
    test module (a ``tests``, ``testing``, ``_testing`` or ``conftest`` part below
    the entry). ``"<unresolved>"`` is never permitted.

    Parameters
    ----------
    references : iterable of str
        As returned by :func:`pickle_references`.
    allowed_modules : iterable of str
        Module names and exact global names, e.g. :data:`DEFAULT_ALLOWED_MODULES`.

    Returns
    -------
    list of str
        The references not permitted, in their given order; empty if all are.

    Raises
    ------
    TypeError
        If ``allowed_modules`` is a single string rather than a collection of them.

    Examples
    --------
    >>> disallowed_references(["sklearn.pipeline.Pipeline", "os.system"], ["sklearn"])
    ['os.system']
    >>> disallowed_references(["sklearnx.evil"], ["sklearn"])
    ['sklearnx.evil']
    """
    if isinstance(allowed_modules, str):
        raise InvalidArgument(
            "allowed_modules must be a collection of module or global names, such as "
            f"('sklearn', 'numpy.ndarray'); got the single string {allowed_modules!r}.",
            argument="allowed_modules", expected="a collection of names",
            found=allowed_modules,
        )
    allowed = tuple(allowed_modules)
    plain = {entry for entry in allowed if not entry.endswith(_EVERYTHING)}
    everything = {entry[: -len(_EVERYTHING)] for entry in allowed if entry.endswith(_EVERYTHING)}
    disallowed = []
    for reference in references:
        permission = _permission(reference, plain, everything)
        if permission == "exact" or (
            permission is not None
            and _defined_in_allowed_module(
                reference, plain, everything, functions=permission == "anything"
            )
        ):
            continue
        disallowed.append(reference)
    return disallowed


def _split(reference: str) -> tuple[str, str]:
    module, colon, path = reference.partition(":")
    if colon:
        return module, path
    module, _, name = reference.rpartition(".")
    return module, name


def _permission(
    reference: str, plain: set[str], everything: set[str]
) -> Literal["exact", "classes", "anything"] | None:
    # "exact": an entry names the global, or an object enclosing its attribute path.
    # "classes" / "anything": an entry names its module or a package above it,
    # without or with the trailing ".*" that also admits functions.
    if reference == UNRESOLVED:
        return None
    if reference in plain:
        return "exact"
    module, path = _split(reference)
    module_parts = module.split(".") if module else []
    parts = module_parts + path.split(".")
    permission: Literal["classes", "anything"] | None = None
    for length in range(1, len(parts) + 1):
        prefix = ".".join(parts[:length])
        if length > len(module_parts):
            if prefix in plain:
                return "exact"
        elif _TEST_MODULE_PARTS.isdisjoint(module_parts[length:]):
            if prefix in everything:
                permission = "anything"
            elif prefix in plain and permission is None:
                permission = "classes"
    return permission


def _defined_in_allowed_module(
    reference: str, plain: set[str], everything: set[str], *, functions: bool
) -> bool:
    module_name, name = _split(reference)
    try:
        # Importing a module an entry names is what unpickling would do anyway.
        # getattr takes one name, so an attribute path ("module:np.load") never
        # resolves here: a module entry does not reach into paths.
        obj = getattr(importlib.import_module(module_name), name)
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
    except Exception:  # not importable, no such name, or a warning raised as error
        return False
    class_like = isinstance(obj, type) or name.startswith(_CYTHON_RECONSTRUCTOR)
    if _is_ufunc(obj):
        # A ufunc made outside numpy (scipy.special.expit) records no module.
        class_like, module = True, module if isinstance(module, str) else module_name
    if not (functions or class_like) or not isinstance(module, str):
        return False
    # Judge the global where it is defined, by the same rules: a function imported
    # from a module whose entry admits only classes stays out.
    top_level = qualname.split(".")[0] if isinstance(qualname, str) else name
    home = _permission(f"{module}.{top_level}", plain, everything)
    if home in ("exact", "anything"):
        return True
    # A class admitted by a module entry alone must not run code on its state.
    return home == "classes" and class_like and not (
        isinstance(obj, type) and not _state_is_reviewed(obj)
    )


def _state_is_reviewed(cls: type) -> bool:
    # Every class in the MRO that defines __setstate__ must be a reviewed one.
    return all(
        f"{klass.__module__}.{klass.__qualname__}" in _REVIEWED_SETSTATE
        for klass in cls.__mro__
        if "__setstate__" in vars(klass)
    )


def _is_ufunc(obj: object) -> bool:
    return type(obj).__name__ == "ufunc" and type(obj).__module__ == "numpy"


# ------------------------------------------------------------------ enforcement

_ALIGNED_STRUCT: Final = 0x80  # a numpy dtype flag that align=True sets, nothing else


# The pure-Python unpickler: the C one has no hook on BUILD (see the class).
_PythonUnpickler: Any = pickle._Unpickler


class RestrictedUnpickler(_PythonUnpickler):  # type: ignore[misc]
    """An unpickler that imports only what an allow-list permits, and checks dtypes.

    ``find_class`` judges each global by :func:`disallowed_references`, with the
    names mapped from Python 2 exactly as the static audit maps them, and resolves
    it itself, so the object checked is the object used. After every ``BUILD``
    whose target is a ``numpy.dtype``, the dtype's flags must be those numpy gives
    the same layout, so a dtype cannot claim its object items are plain bytes.

    It is the pure-Python unpickler (the C one has no hook on ``BUILD``), slower,
    but only on the audit path, never on a load that trusts its signer. cloudpickle
    payloads load through it too: they are plain pickles.

    Parameters
    ----------
    file : binary file
        As for :class:`pickle.Unpickler`.
    allowed_modules : iterable of str
        The allow-list, as for :func:`disallowed_references`.
    """

    dispatch: ClassVar[dict[int, Any]] = dict(_PythonUnpickler.dispatch)

    def __init__(self, file: Any, allowed_modules: Iterable[str]) -> None:
        super().__init__(file)
        allowed = allowed_modules if isinstance(allowed_modules, str) else tuple(allowed_modules)
        self._allowed = tuple(allowed) if not disallowed_references([], allowed) else ()
        self._judged: dict[str, bool] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif self.proto < 3 and module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        reference = f"{module}{':' if '.' in name else '.'}{name}"
        if reference not in self._judged:
            self._judged[reference] = not disallowed_references([reference], self._allowed)
        if not self._judged[reference]:
            raise IntegrityError(
                f"The pickle tried to import {reference!r}, outside the allowed modules; "
                f"unpickling stopped there. {refusal_advice([reference])}",
                expected="a global the allow-list permits", found=reference,
            )
        # Resolved here, not by super(), so the object checked is the object used.
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    def load_build(self) -> None:
        target = self.stack[-2]
        super().load_build()
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(target, numpy.dtype):
            _check_dtype(target, numpy)

    dispatch[pickle.BUILD[0]] = load_build


def restricted_loads(data: bytes, allowed_modules: Iterable[str]) -> Any:
    """Unpickle ``data`` importing only globals ``allowed_modules`` permits.

    Parameters
    ----------
    data : bytes
        One pickle (plain or cloudpickle).
    allowed_modules : iterable of str
        As for :func:`disallowed_references`, e.g. :data:`DEFAULT_ALLOWED_MODULES`.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    IntegrityError
        If the pickle imports a global the list does not permit, or builds a numpy
        dtype whose flags contradict its layout; nothing after that point runs.
        Anything else unpickling raises (a missing module) propagates as from
        :func:`pickle.loads`.

    Examples
    --------
    >>> import pickle
    >>> restricted_loads(pickle.dumps(slice(1, 2)), DEFAULT_ALLOWED_MODULES)
    slice(1, 2, None)
    """
    return RestrictedUnpickler(io.BytesIO(data), allowed_modules).load()


def _check_dtype(dtype: Any, numpy: Any) -> None:
    expected = _fresh_flags(dtype, numpy)
    if expected is None or (dtype.flags & ~_ALIGNED_STRUCT) != (expected & ~_ALIGNED_STRUCT):
        raise IntegrityError(
            f"The pickle builds a numpy dtype {dtype!s} with flags {dtype.flags:#x}; numpy "
            f"gives that layout flags {expected if expected is None else hex(expected)}. "
            "A dtype whose flags hide that it holds objects makes numpy read raw bytes as "
            "pointers, so unpickling stopped there.",
            expected=expected, found=int(dtype.flags),
        )


def _fresh_flags(dtype: Any, numpy: Any) -> int | None:
    # The flags numpy computes for the same layout, rebuilt without pickle.
    try:
        if dtype.fields is not None:
            names = list(dtype.names)
            fresh = numpy.dtype({"names": names, "itemsize": dtype.itemsize,
                                 "formats": [dtype.fields[n][0] for n in names],
                                 "offsets": [dtype.fields[n][1] for n in names]})
        elif dtype.subdtype is not None:
            fresh = numpy.dtype(dtype.subdtype)
        else:
            fresh = numpy.dtype(dtype.str)
    except (TypeError, ValueError):
        return None
    return int(fresh.flags)
