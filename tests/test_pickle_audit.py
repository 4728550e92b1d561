"""Tests for the static pickle audit (``safemodel.io.audit``).

Nothing here unpickles an untrusted payload: malicious pickles are only ever given
to the audit. Pickles the tests made themselves are unpickled as an oracle, to check
that the audit lists exactly the globals the real unpickler looks up.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import copyreg
import importlib
import io
import marshal
import os
import pickle
import pkgutil
import subprocess
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.feature_selection import SelectKBest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from safemodel.errors import IntegrityError, SafeModelError
from safemodel.io.audit import (
    ARBITRARY_CODE_MODULES,
    DEFAULT_ALLOWED_MODULES,
    NOTEBOOK_ALLOWED_MODULES,
    UNRESOLVED,
    disallowed_references,
    pickle_references,
    restricted_loads,
)

# --------------------------------------------------------------------------------------
# Hand-made pickles, opcode by opcode (see pickletools for the opcode table).


def _str(value: str) -> bytes:
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def _stack_global(module: str, name: str) -> bytes:
    return _str(module) + _str(name) + b"\x93"  # STACK_GLOBAL


def _call1(argument: bytes) -> bytes:
    return argument + b"\x85R"  # TUPLE1, REDUCE


PROTO4 = b"\x80\x04"
STOP = b"."


class _Reduces:
    """Pickles as a call of ``func(*args)``, like a malicious ``__reduce__``."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def _recorded_globals(data: bytes, protocol: int) -> set[str]:
    """The globals the real unpickler looks up, in the audit's notation (oracle)."""
    found: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            mapped_module, mapped_name = module, name
            if protocol < 3:  # what find_class(fix_imports=True) does before importing
                if (module, name) in _compat_pickle.NAME_MAPPING:
                    mapped_module, mapped_name = _compat_pickle.NAME_MAPPING[(module, name)]
                elif module in _compat_pickle.IMPORT_MAPPING:
                    mapped_module = _compat_pickle.IMPORT_MAPPING[module]
            sep = ":" if "." in mapped_name else "."
            found.add(f"{mapped_module}{sep}{mapped_name}")
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return found


# --------------------------------------------------------------------------------------
# Real models of the common families.


def _frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "bill": rng.normal(40, 5, n),
            "mass": rng.normal(4000, 500, n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
            "sex": pd.Categorical(rng.choice(["female", "male"], n)),
        }
    )
    X.loc[::9, "bill"] = np.nan
    y = (X["mass"] > 4000).to_numpy().astype(int)
    return X, y


def _preprocess(func: Any = np.log1p) -> ColumnTransformer:
    numbers = make_pipeline(
        SimpleImputer(strategy="median"), FunctionTransformer(func), StandardScaler()
    )
    return ColumnTransformer(
        [
            ("num", numbers, ["bill", "mass"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["island", "sex"]),
        ]
    )


MODEL_FAMILIES: dict[str, Callable[[], Any]] = {
    "logistic_regression": lambda: Pipeline(
        [("pre", _preprocess()), ("clf", LogisticRegression())]
    ),
    "hist_gradient_boosting": lambda: Pipeline(
        [("pre", _preprocess(np.sqrt)), ("clf", HistGradientBoostingClassifier(max_iter=5))]
    ),
    "hist_gradient_boosting_native_categories": lambda: HistGradientBoostingClassifier(
        max_iter=5, categorical_features="from_dtype"
    ),
    "random_forest": lambda: Pipeline(
        [("pre", _preprocess()), ("clf", RandomForestClassifier(n_estimators=3))]
    ),
    "gradient_boosting_scipy_ufunc": lambda: Pipeline(
        [("pre", _preprocess(scipy.special.expit)), ("clf", GradientBoostingClassifier())]
    ),
    "knn_select_k_best": lambda: Pipeline(
        [("pre", _preprocess()), ("select", SelectKBest(k=3)), ("knn", KNeighborsClassifier())]
    ),
    "grid_search_roc_auc": lambda: GridSearchCV(
        Pipeline([("pre", _preprocess()), ("clf", LogisticRegression())]),
        {"clf__C": [0.1, 1.0]},
        scoring="roc_auc",
        cv=2,
    ),
}


@pytest.fixture(scope="module")
def fitted_models() -> dict[str, Any]:
    X, y = _frame()
    models = {}
    for family, build in MODEL_FAMILIES.items():
        model = build()
        columns = ["bill", "mass", "sex"] if "native" in family else list(X.columns)
        models[family] = model.fit(X[columns], y)
    return models


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_real_pipelines_reference_only_default_allowed_globals(
    fitted_models: dict[str, Any], family: str
) -> None:
    references = pickle_references(cloudpickle.dumps(fitted_models[family]))

    assert any(ref.startswith("sklearn.") for ref in references)
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == []


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting"])
def test_references_are_exactly_what_the_unpickler_imports(
    fitted_models: dict[str, Any], family: str, protocol: int
) -> None:
    data = cloudpickle.dumps(fitted_models[family], protocol=protocol)

    references = pickle_references(data)

    assert set(references) == _recorded_globals(data, protocol)
    assert references == sorted(set(references))


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_protocols_of_a_fitted_pipeline(fitted_models: dict[str, Any], protocol: int) -> None:
    data = pickle.dumps(fitted_models["logistic_regression"], protocol=protocol)

    references = pickle_references(data)

    assert set(references) == _recorded_globals(data, protocol)
    assert "sklearn.pipeline.Pipeline" in references
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == []


# --------------------------------------------------------------------------------------
# Malicious pickles are flagged, naming the offending global.

SYSTEM = f"{os.system.__module__}.system"  # "posix.system" on Linux and macOS


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize(
    ("payload", "offender"),
    [
        (_Reduces(os.system, "touch /tmp/safemodel-pwned"), SYSTEM),
        (_Reduces(builtins.eval, "__import__('os').getcwd()"), "builtins.eval"),
        (_Reduces(builtins.exec, "import os"), "builtins.exec"),
        (_Reduces(subprocess.Popen, ["true"]), "subprocess.Popen"),
        (_Reduces(builtins.getattr, StandardScaler, "fit"), "builtins.getattr"),
        (_Reduces(importlib.import_module, "os"), "importlib.import_module"),
        (_Reduces(marshal.loads, b"N"), "marshal.loads"),
    ],
    ids=["os.system", "eval", "exec", "Popen", "getattr", "import_module", "marshal.loads"],
)
def test_malicious_reduce_is_flagged(payload: object, offender: str, protocol: int) -> None:
    # A model whose fitted state hides the payload, as a tampered bundle would.
    model = make_pipeline(StandardScaler())
    model.steps[0][1].payload = payload
    data = pickle.dumps(model, protocol=protocol)

    references = pickle_references(data)
    disallowed = disallowed_references(references, DEFAULT_ALLOWED_MODULES)

    assert offender in references
    assert offender in disallowed
    assert "sklearn.pipeline.Pipeline" not in disallowed


def test_the_audit_never_unpickles(tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Reduces(os.system, f"touch {marker}"))

    assert SYSTEM in pickle_references(data)
    assert not marker.exists()


def test_gadgets_imported_into_allowed_modules_are_flagged() -> None:
    # attrgetter and itemgetter are imported by sklearn modules the default list
    # allows; chained, they reach eval through any function's __globals__. A check
    # on the reference string alone would let this through.
    payload = (
        PROTO4
        + _call1(_stack_global("sklearn.feature_extraction.text", "itemgetter") + _str("eval"))
        + _call1(
            _stack_global("sklearn.feature_extraction.text", "itemgetter") + _str("__builtins__")
        )
        + _call1(
            _stack_global("sklearn.feature_selection._base", "attrgetter") + _str("__globals__")
        )
        + _stack_global("sklearn.pipeline", "make_pipeline")
        + b"\x85R\x85R\x85R"
        + _str("__import__('os').system('true')")
        + b"\x85R"
        + STOP
    )

    references = pickle_references(payload)

    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == [
        "sklearn.feature_extraction.text.itemgetter",
        "sklearn.feature_selection._base.attrgetter",
        "sklearn.pipeline.make_pipeline",
    ]


@pytest.mark.parametrize(
    ("module", "name", "reference"),
    [
        # An attribute path walks through the module's own imports: here numpy.load.
        ("sklearn.linear_model._base", "np.load", "sklearn.linear_model._base:np.load"),
        # The module object itself, imported into an allowed module.
        ("sklearn.linear_model._base", "np", "sklearn.linear_model._base.np"),
        # numpy's legacy ufunc reconstructor imports any module and returns any name.
        ("numpy.core", "_ufunc_reconstruct", "numpy.core._ufunc_reconstruct"),
        # Runs Python source in a subprocess.
        (
            "sklearn.utils._testing",
            "assert_run_python_script_without_output",
            "sklearn.utils._testing.assert_run_python_script_without_output",
        ),
        ("pandas", "read_pickle", "pandas.read_pickle"),
        ("numpy", "load", "numpy.load"),
        ("joblib", "load", "joblib.load"),
        ("sklearn.tree", "export_graphviz", "sklearn.tree.export_graphviz"),
        ("cloudpickle.cloudpickle", "subimport", "cloudpickle.cloudpickle.subimport"),
    ],
)
def test_known_gadgets_are_flagged(module: str, name: str, reference: str) -> None:
    data = PROTO4 + _stack_global(module, name) + STOP

    references = pickle_references(data)

    assert references == [reference]
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == [reference]


def test_python2_names_are_mapped_as_the_unpickler_maps_them() -> None:
    data = b"c__builtin__\neval\n(S'1'\ntR."  # protocol 0: GLOBAL, MARK, STRING, TUPLE, REDUCE

    assert pickle_references(data) == ["builtins.eval"]


def test_global_names_are_read_as_the_unpickler_reads_them() -> None:
    # pickletools undoes backslash escapes in GLOBAL lines; the unpickler does not,
    # and would import the module "o\\x73", not "os".
    assert pickle_references(b"co\\x73\nsystem\n.") == ["o\\x73.system"]


def test_inst_opcode_is_read() -> None:
    data = b"(S'true'\nisubprocess\nPopen\n."  # protocol 0: MARK, STRING, INST

    assert pickle_references(data) == ["subprocess.Popen"]


def test_memoized_stack_global_operands_resolve() -> None:
    # The two strings are first stored in the memo as list items, then fetched
    # back for STACK_GLOBAL, as cloudpickle does for repeated module names.
    data = (
        PROTO4
        + b"]"  # EMPTY_LIST
        + b"("  # MARK
        + _str("subprocess")
        + b"\x94"  # MEMOIZE -> 0
        + _str("Popen")
        + b"q\x07"  # BINPUT 7
        + b"e"  # APPENDS
        + b"0"  # POP
        + b"h\x00"  # BINGET 0
        + b"j\x07\x00\x00\x00"  # LONG_BINGET 7
        + b"\x93"  # STACK_GLOBAL
        + STOP
    )

    assert pickle_references(data) == ["subprocess.Popen"]


def test_protocol_0_memo_put_and_get_resolve() -> None:
    # A protocol 4 STACK_GLOBAL fed by the text-mode PUT/GET opcodes and UNICODE.
    data = b"Vos\np0\n0Vsystem\np1\n0g0\ng1\n\x93."

    assert pickle_references(data) == ["os.system"]


@pytest.mark.parametrize(
    "data",
    [
        # The module name is computed (str() of an int), not written as a string.
        PROTO4 + _stack_global("builtins", "str") + b"K\x01\x85R" + _str("system") + b"\x93.",
        # An extension code from copyreg's process-wide registry.
        b"\x80\x02\x82\x01.",
    ],
    ids=["computed-operand", "extension-code"],
)
def test_unresolvable_globals_are_reported(data: bytes) -> None:
    references = pickle_references(data)

    assert UNRESOLVED in references
    assert UNRESOLVED in disallowed_references(references, DEFAULT_ALLOWED_MODULES)
    assert disallowed_references([UNRESOLVED], [UNRESOLVED, ""]) == [UNRESOLVED]


def test_plain_data_has_no_references() -> None:
    data = pickle.dumps({"a": [1, 2.5, "x", None, True], "b": (b"\x00",)}, protocol=5)

    assert pickle_references(data) == []


# --------------------------------------------------------------------------------------
# Malformed input: always IntegrityError, never a pickletools traceback.


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\x80\x05\x95",
        b"\xff\xfe garbage",
        b"N.N.",  # bytes after STOP
        b"h\x05.",  # BINGET of a memo entry never written
        b"\x94.",  # MEMOIZE with an empty stack
        b"\x80\x04(\x93.",  # STACK_GLOBAL reaching below a MARK
        PROTO4 + _str("os") + b"(" + _str("system") + b"\x93.",  # ... with items below it
        b"0.",  # POP of an empty stack
        b"t.",  # TUPLE without a MARK
        b"c\xff\xfe\nx\n.",  # GLOBAL that is not UTF-8
        b"S'no end quote\n.",
    ],
)
def test_malformed_pickles_raise_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError, match="estimator pickle is malformed"):
        pickle_references(data)


def test_truncated_real_pickle_raises_integrity_error(fitted_models: dict[str, Any]) -> None:
    data = cloudpickle.dumps(fitted_models["logistic_regression"])

    for cut in (1, 2, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        with pytest.raises(IntegrityError) as excinfo:
            pickle_references(data[:cut])
        assert isinstance(excinfo.value, SafeModelError)
        assert excinfo.value.found


_VALID = pickle.dumps(
    {"estimator": [slice(1, 2), {1, 2}, frozenset("ab"), b"xyz", 1.5, "text"], "n": 10**20},
    protocol=4,
)


@st.composite
def _mutated_pickles(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.one_of(st.binary(max_size=200), _mutated_pickles()))
def test_arbitrary_bytes_raise_only_integrity_error(data: bytes) -> None:
    try:
        references = pickle_references(data)
    except IntegrityError:
        return
    assert references == sorted(set(references))


_PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.complex_numbers(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(_PLAIN_VALUES, st.sampled_from([0, 1, 2, 3, 4, 5]))
def test_references_match_the_unpickler_on_plain_data(value: Any, protocol: int) -> None:
    data = pickle.dumps(value, protocol=protocol)

    assert set(pickle_references(data)) == _recorded_globals(data, protocol)


# --------------------------------------------------------------------------------------
# Allow-list matching.


@pytest.mark.parametrize(
    ("reference", "allowed", "permitted"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", ["sklearn"], True),
        ("sklearn.linear_model._logistic.LogisticRegression", ["sklearn.linear_model"], True),
        ("sklearnx.evil", ["sklearn"], False),
        ("sklearn_evil.Thing", ["sklearn"], False),
        ("builtins.slice", ["builtins.slice"], True),
        ("builtins.slicer", ["builtins.slice"], False),
        ("builtins.eval", ["builtins.slice"], False),
        # A module entry permits classes, never functions: eval stays out.
        ("builtins.slice", ["builtins"], True),
        ("builtins.eval", ["builtins"], False),
        ("builtins.eval", ["builtins.eval"], True),
        # Names a module imports are judged where they are defined.
        ("sklearn.feature_selection._base.attrgetter", ["sklearn"], False),
        ("sklearn.compose._column_transformer.Bunch", ["sklearn.compose"], False),
        ("sklearn.compose._column_transformer.Bunch", ["sklearn.compose", "sklearn.utils"], True),
        # Attribute paths need an entry that reaches into them.
        ("numpy.random:RandomState.normal", ["numpy.random"], False),
        ("numpy.random:RandomState.normal", ["numpy.random.RandomState"], True),
        ("numpy.random:RandomState.normal", ["numpy.random:RandomState.normal"], True),
        ("sklearn.linear_model._base:np.load", ["sklearn"], False),
        # Test modules are reached only by an entry naming them.
        ("sklearn.utils._testing.MinimalClassifier", ["sklearn"], False),
        ("sklearn.utils._testing.MinimalClassifier", ["sklearn.utils._testing"], True),
        # ".*" trusts a package wholesale, functions included, but not its imports.
        ("cloudpickle.cloudpickle.subimport", ["cloudpickle"], False),
        ("cloudpickle.cloudpickle.subimport", ["cloudpickle.*"], True),
        ("builtins.eval", ["builtins.*"], True),
        ("sklearn.feature_selection._base.attrgetter", ["sklearn.*"], False),
        ("sklearnx.evil", ["sklearn.*"], False),
        # ... and a function it imports is judged by the entry of its own module.
        (
            "sklearn.feature_selection._univariate_selection.check_array",
            ["sklearn.feature_selection.*", "sklearn.utils"],
            False,
        ),
        (
            "sklearn.feature_selection._univariate_selection.check_array",
            ["sklearn.feature_selection.*", "sklearn.utils.*"],
            True,
        ),
        # Modules that cannot be imported cannot be vouched for.
        ("sklearn.not_a_module.Thing", ["sklearn"], False),
        (UNRESOLVED, [UNRESOLVED], False),
    ],
)
def test_allow_list_matching(reference: str, allowed: list[str], permitted: bool) -> None:
    assert disallowed_references([reference], allowed) == ([] if permitted else [reference])


def test_disallowed_keeps_the_given_order() -> None:
    references = ["os.system", "sklearn.pipeline.Pipeline", "builtins.eval"]

    assert disallowed_references(references, ["sklearn"]) == ["os.system", "builtins.eval"]


def test_a_single_string_allow_list_is_refused() -> None:
    with pytest.raises(TypeError, match="single string"):
        disallowed_references(["sklearn.pipeline.Pipeline"], "sklearn")


# --------------------------------------------------------------------------------------
# Code pickled by value needs an explicit opt-in.


class _ClipTransformer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom transformer, pickled by value in the test below."""

    def __init__(self, low: float = 0.0) -> None:
        self.low = low

    def fit(self, X: Any, y: Any = None) -> _ClipTransformer:
        return self

    def transform(self, X: Any) -> Any:
        return np.maximum(X, self.low)


def test_code_pickled_by_value_needs_the_arbitrary_code_opt_in() -> None:
    X, y = _frame()
    model = make_pipeline(
        _ClipTransformer(), FunctionTransformer(lambda a: a * 2), LogisticRegression()
    ).fit(X[["bill", "mass"]].fillna(0), y)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        data = cloudpickle.dumps(model)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])

    references = pickle_references(data)
    refused = disallowed_references(references, DEFAULT_ALLOWED_MODULES)

    assert "cloudpickle.cloudpickle._make_skeleton_class" in refused
    assert "cloudpickle.cloudpickle._make_function" in refused
    assert "builtins.type" in refused
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES) == []


# --------------------------------------------------------------------------------------
# The default allow-list itself.


def _resolve(entry: str) -> object:
    try:
        return importlib.import_module(entry)
    except ImportError:
        module, _, name = entry.rpartition(".")
        return getattr(importlib.import_module(module), name)


def test_every_default_entry_exists_once() -> None:
    assert len(set(DEFAULT_ALLOWED_MODULES)) == len(DEFAULT_ALLOWED_MODULES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in DEFAULT_ALLOWED_MODULES:
            assert _resolve(entry) is not None, entry


_DANGEROUS_MODULES = (
    "os", "posix", "nt", "subprocess", "sys", "shutil", "importlib", "socket", "pickle",
    "_pickle", "marshal", "types", "cloudpickle", "operator", "_operator", "joblib",
    "ctypes", "runpy", "code", "io", "_io", "pathlib", "tempfile", "multiprocessing",
    "pyarrow",
)  # fmt: skip


def _dangerous_objects() -> dict[int, str]:
    named = [
        *(f"builtins.{name}" for name in (
            "eval", "exec", "compile", "getattr", "setattr", "delattr", "__import__",
            "open", "breakpoint", "input", "globals", "locals", "vars",
        )),
        "numpy.load", "numpy.save", "numpy.savez", "numpy.savetxt", "numpy.fromfile",
        "numpy.memmap", "numpy.core._ufunc_reconstruct", "pandas.read_pickle",
        "pandas.to_pickle", "sklearn.tree.export_graphviz",
        "sklearn.utils._testing.assert_run_python_script_without_output",
        "sklearn.metrics._scorer._cached_call", "types.FunctionType", "types.CodeType",
    ]  # fmt: skip
    found = {}
    for entry in named:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found[id(_resolve(entry))] = entry
    for module_name in _DANGEROUS_MODULES:
        module = sys.modules.get(module_name)
        for name in dir(module) if module is not None else ():
            value = getattr(module, name, None)
            home = getattr(value, "__module__", None)
            if callable(value) and isinstance(home, str) and home.split(".")[0] == module_name:
                found.setdefault(id(value), f"{module_name}.{name}")
    return found


def _allowed_module_names() -> list[str]:
    names = []
    for entry in DEFAULT_ALLOWED_MODULES:
        module = _resolve(entry)
        if not isinstance(module, types.ModuleType):
            continue
        names.append(entry)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), entry + "."):
            if not {"tests", "testing", "_testing", "conftest"} & set(info.name.split(".")):
                names.append(info.name)
    return sorted(set(names))


def test_default_list_permits_no_dangerous_global() -> None:
    # Every global reachable by name in a module the default list allows: whatever
    # the list permits must be a class (or ufunc, or Cython reconstructor), and none
    # may be a known-dangerous callable however it got there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dangerous = _dangerous_objects()
        permitted: dict[str, object] = {}
        for module_name in _allowed_module_names():
            try:
                module = importlib.import_module(module_name)
            except Exception:  # optional dependency missing: unpickling cannot reach it
                continue
            candidates = [f"{module_name}.{name}" for name in dir(module)]
            refused = set(disallowed_references(candidates, DEFAULT_ALLOWED_MODULES))
            for ref in candidates:
                if ref not in refused:
                    permitted[ref] = getattr(module, ref.rpartition(".")[2])

    assert len(permitted) > 1000  # the scan really looked
    assert {ref: dangerous[id(obj)] for ref, obj in permitted.items() if id(obj) in dangerous} == {}
    assert [ref for ref, obj in permitted.items() if isinstance(obj, types.ModuleType)] == []


def test_default_list_excludes_dangerous_modules() -> None:
    for entry in DEFAULT_ALLOWED_MODULES:
        top = entry.split(".")[0]
        assert top not in _DANGEROUS_MODULES, entry
        assert entry not in ("builtins", "numpy", "pandas", "sklearn", "scipy"), entry
    assert disallowed_references(
        ["builtins.getattr", "builtins.type", "cloudpickle.cloudpickle._make_function"],
        DEFAULT_ALLOWED_MODULES,
    ) == ["builtins.getattr", "builtins.type", "cloudpickle.cloudpickle._make_function"]


def test_numpy_scalars_and_random_states_are_allowed() -> None:
    values = [
        np.float64(1.5),
        np.int32(3),
        np.datetime64("2024-01-01"),
        np.dtype("datetime64[ns]"),
        np.random.RandomState(0),
        np.random.default_rng(0),
        np.ma.masked_array([1, 2], [False, True]),
    ]
    references = pickle_references(cloudpickle.dumps(values))

    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == []


def test_pandas_frames_are_allowed_but_arrow_buffers_are_not() -> None:
    # Integer labels: with pyarrow installed, pandas >= 3 stores string labels and
    # values as Arrow arrays, which the default list refuses (see below).
    frame = pd.DataFrame(
        {
            0: [1.0, None],
            1: pd.array([1, None], dtype="Int64"),
            2: pd.Categorical([3, 1]),
            3: pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
        },
        index=pd.RangeIndex(2),
    )
    references = pickle_references(cloudpickle.dumps([frame, frame[0], pd.NA, pd.NaT]))

    assert "pandas.core.internals.managers.BlockManager" in references
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == []
    pytest.importorskip("pyarrow")
    arrow = pickle_references(cloudpickle.dumps(pd.Series(["a"], dtype="string[pyarrow]")))
    assert "pyarrow.lib._restore_array" in disallowed_references(arrow, DEFAULT_ALLOWED_MODULES)


# --------------------------------------------------------------------------------------
# The audit is enforced while unpickling, and holds against known gadgets.


class _ScipyDistributionGadget:
    """Only allowed names: scipy's rv_generic.__setstate__ exec()s a string from state."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        from scipy.stats._continuous_distns import norm_gen

        code = f"open({self.target!r}, 'w').close()"
        return (copyreg._reconstructor, (norm_gen, object, None),
                {"_parse_arg_template": code})


# The scipy.stats entries of the default list before this change.
_OLD_SCIPY_ENTRIES = (
    "scipy.stats._continuous_distns",
    "scipy.stats._discrete_distns",
    "scipy.stats._distn_infrastructure",
)


def test_the_scipy_distribution_gadget_ran_code_and_is_now_refused(tmp_path: Any) -> None:
    target = tmp_path / "pwned"
    data = pickle.dumps(_ScipyDistributionGadget(str(target)), protocol=2)
    references = pickle_references(data)
    assert references == ["builtins.object", "copyreg._reconstructor",
                          "scipy.stats._continuous_distns.norm_gen"]

    # Today's list admitted all three, and the unpickling that followed ran the code.
    with pytest.raises(Exception):  # noqa: B017,PT011 - scipy fails after exec() ran
        cloudpickle.loads(data)
    assert target.exists()
    target.unlink()

    # Now: refused by the default list, and by a module entry for scipy.stats too,
    # because norm_gen's __setstate__ runs code; nothing is written.
    gadget = "scipy.stats._continuous_distns.norm_gen"
    assert disallowed_references(references, DEFAULT_ALLOWED_MODULES) == [gadget]
    old = DEFAULT_ALLOWED_MODULES + _OLD_SCIPY_ENTRIES
    assert disallowed_references(references, old) == [gadget]
    for allowed in (DEFAULT_ALLOWED_MODULES, old):
        with pytest.raises(IntegrityError, match=gadget):
            restricted_loads(data, allowed)
    assert not target.exists()


_DTYPE_CRASH = """
import pickle, sys
import numpy as np
from numpy._core import multiarray

class ObjectDtypeWithoutFlags:
    def __reduce__(self):
        return (np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))

class ArrayOfFakePointers:
    def __reduce__(self):
        return (multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (1,), ObjectDtypeWithoutFlags(), False, b"AAAAAAAA"))

data = pickle.dumps(ArrayOfFakePointers(), protocol=2)
if sys.argv[1] == "references":
    from safemodel.io.audit import pickle_references
    print(" ".join(pickle_references(data)))
elif sys.argv[1] == "plain":
    print(repr(pickle.loads(data)), flush=True)  # numpy reads 0x4141... as an object
else:
    from safemodel import DEFAULT_ALLOWED_MODULES
    from safemodel.errors import IntegrityError
    from safemodel.io.audit import restricted_loads
    try:
        restricted_loads(data, DEFAULT_ALLOWED_MODULES)
    except IntegrityError as exc:
        print("refused:", exc)
"""


def _run_dtype_crash(mode: str) -> subprocess.CompletedProcess[str]:
    # A subprocess: the unprotected case crashes the interpreter.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", _DTYPE_CRASH, mode], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_a_numpy_dtype_hiding_its_objects_crashes_and_is_now_refused() -> None:
    references = _run_dtype_crash("references")
    assert {"numpy.dtype", "numpy.ndarray"} <= set(references.stdout.split())
    assert disallowed_references(references.stdout.split(), DEFAULT_ALLOWED_MODULES) == []

    plain = _run_dtype_crash("plain")
    assert plain.returncode != 0
    assert "Traceback" not in plain.stderr

    restricted = _run_dtype_crash("restricted")
    assert restricted.returncode == 0, restricted.stderr
    assert restricted.stdout.startswith("refused: The pickle builds a numpy dtype")


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_restricted_unpickling_loads_what_the_static_audit_passes(
    fitted_models: dict[str, Any], family: str
) -> None:
    model = fitted_models[family]
    data = cloudpickle.dumps(model)

    restored = restricted_loads(data, DEFAULT_ALLOWED_MODULES)

    assert type(restored) is type(model)
    assert pickle.dumps(restored) == pickle.dumps(pickle.loads(data))


def test_restricted_unpickling_checks_names_the_static_audit_cannot_read() -> None:
    # EXT codes name globals through copyreg's process-wide registry.
    code = 0x7A
    copyreg.add_extension(SYSTEM.split(".")[0], "system", code)
    try:
        data = b"\x80\x02" + bytes([pickle.EXT1[0], code]) + b"."
        assert pickle_references(data) == [UNRESOLVED]
        with pytest.raises(IntegrityError, match=SYSTEM):
            restricted_loads(data, DEFAULT_ALLOWED_MODULES)
    finally:
        copyreg.remove_extension(SYSTEM.split(".")[0], "system", code)


def test_python2_names_are_mapped_while_unpickling_too() -> None:
    data = b"c__builtin__\neval\n(S'1'\ntR."
    assert pickle_references(data) == ["builtins.eval"]
    with pytest.raises(IntegrityError, match="builtins.eval"):
        restricted_loads(data, DEFAULT_ALLOWED_MODULES)
    assert restricted_loads(b"c__builtin__\nset\n(tR.", DEFAULT_ALLOWED_MODULES) == set()


def test_notebook_code_needs_the_public_opt_in() -> None:
    def double(a: Any) -> Any:
        return a * 2

    data = cloudpickle.dumps(FunctionTransformer(double))
    with pytest.raises(IntegrityError, match="cloudpickle"):
        restricted_loads(data, DEFAULT_ALLOWED_MODULES)
    restored = restricted_loads(data, NOTEBOOK_ALLOWED_MODULES)
    assert restored.func(3) == 6
    assert NOTEBOOK_ALLOWED_MODULES == DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES


def test_a_module_entry_admits_only_classes_with_reviewed_state() -> None:
    from scipy.stats._distn_infrastructure import rv_frozen

    reference = f"{rv_frozen.__module__}.{rv_frozen.__qualname__}"
    # rv_frozen keeps no __setstate__ of its own: a module entry admits it ...
    assert disallowed_references([reference], ["scipy.stats"]) == []
    # ... but not a distribution generator, whose __setstate__ runs exec().
    gadget = "scipy.stats._continuous_distns.norm_gen"
    assert disallowed_references([gadget], ["scipy.stats"]) == [gadget]
    assert disallowed_references([gadget], [gadget]) == []  # named exactly: on purpose


def test_a_refused_notebook_model_says_it_was_pickled_by_value(tmp_path: Any) -> None:
    """sm.load names the cause (code pickled by value) and the public opt-in, which
    then loads the very same file."""
    import pandas as pd

    import safemodel as sm

    def double(a: Any) -> Any:  # a local function: cloudpickle stores its code
        return a * 2

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    model = make_pipeline(FunctionTransformer(double), LogisticRegression()).fit(X, X.b > 3)
    path = tmp_path / "nb.safemodel"
    sm.ModelBundle.from_training(model, X, name="nb", version="1").save(path)

    with pytest.raises(IntegrityError) as info:
        sm.load(path, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)
    message = str(info.value)
    assert "pickled by value" in message
    assert message.endswith("rebuild the bundle.")
    assert "allowed_modules=safemodel.NOTEBOOK_ALLOWED_MODULES" in message
    assert sm.NOTEBOOK_ALLOWED_MODULES is NOTEBOOK_ALLOWED_MODULES
    loaded = sm.load(path, allowed_modules=sm.NOTEBOOK_ALLOWED_MODULES)
    assert (loaded.predict(X) == model.predict(X)).all()


def test_a_refused_function_says_how_to_write_the_entry(tmp_path: Any) -> None:
    """A module entry admits classes only; the message says a function needs its exact
    name and shows an allow-list that works."""
    import pandas as pd

    import safemodel as sm

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(X, X.b > 3)
    path = tmp_path / "np.safemodel"
    sm.ModelBundle.from_training(model, X, name="np", version="1").save(path)

    with pytest.raises(IntegrityError) as info:
        sm.load(path, allowed_modules=("sklearn", "numpy", "builtins", "pandas"))
    message = str(info.value)
    assert "a function needs its exact name" in message
    assert "allowed_modules=(*safemodel.DEFAULT_ALLOWED_MODULES, 'numpy." in message
    assert "pickled by value" not in message
