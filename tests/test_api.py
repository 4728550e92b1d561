"""The public surface: names, the error tree, and errors that travel between processes."""

from __future__ import annotations

import pickle
import subprocess
import sys
import types

import pytest

import safemodel as sm
from safemodel.errors import Failure


def test_all_is_sorted_complete_and_importable() -> None:
    assert sm.__all__ == sorted(sm.__all__)
    for name in sm.__all__:
        assert getattr(sm, name) is not None
    public = {n for n in dir(sm) if not n.startswith(("_", "@"))  # @: pytest's rewriting
              and not isinstance(getattr(sm, n), types.ModuleType)} - {"annotations"}
    assert public <= set(sm.__all__), public - set(sm.__all__)


def test_design_api_names_exist() -> None:
    for name in ("ModelBundle", "Contract", "Policy", "ColumnPolicy", "BundleStore", "Monitor",
                 "load", "inspect", "SafeModelError", "ContractViolation",
                 "GoldenMismatchError", "IntegrityError", "BundleFormatError"):
        assert hasattr(sm, name), name
    assert callable(sm.testing.assert_bundle_reproducible)
    assert sm.DriftReport.__name__ == "DriftReport"


@pytest.mark.parametrize(("cls", "builtin"), [
    (sm.ContractViolation, ValueError),
    (sm.GoldenMismatchError, AssertionError),
    (sm.IntegrityError, ValueError),
    (sm.BundleFormatError, ValueError),
    (sm.ScoringError, RuntimeError),
    (sm.StoreError, LookupError),
])
def test_error_tree(cls: type, builtin: type) -> None:
    assert issubclass(cls, sm.SafeModelError)
    assert issubclass(cls, builtin)


@pytest.mark.parametrize("error", [
    sm.ContractViolation([Failure("island", "unseen_category", "Atlantis", 2)]),
    sm.GoldenMismatchError("diff", mismatches=[{"method": "predict"}],
                           environment_diff={"numpy": ("1", "2")}),
    sm.IntegrityError("bad", member="estimator.pkl", expected="a", found="b"),
    sm.BundleFormatError("bad", member="manifest.json", found=9),
    sm.ScoringError("raised", method="predict"),
    sm.StoreError("unknown"),
])
def test_errors_pickle_with_their_context(error: Exception) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


def test_import_is_light() -> None:
    """Importing safemodel pulls in neither pandera, pyspark nor dask."""
    code = ("import sys, safemodel; "
            "print(sorted(m for m in ('pandera', 'pyspark', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_core_raises_no_bare_builtin_errors() -> None:
    """Every deliberate failure in core and the base modules is a SafeModelError."""
    import ast
    from pathlib import Path

    src = Path(sm.__file__).parent
    files = [*sorted((src / "core").rglob("*.py")),
             *(src / name for name in ("errors.py", "_frame.py", "_values.py"))]
    leaks = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id in (
                        "ValueError", "TypeError", "RuntimeError", "Exception"):
                    leaks.append(f"{path.relative_to(src)}:{node.lineno} raise {target.id}")
    assert leaks == []
