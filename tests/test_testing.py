"""safemodel.testing: assertions for ordinary tests (the pytest plugin runs the same ones)."""

from __future__ import annotations

import copy
import dataclasses
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
import safemodel.testing as sm_testing
from safemodel.testing import (
    assert_bundle_reproducible,
    assert_bundle_robust,
    assert_contract_consistent,
    assert_edge_cases_reproducible,
)

ISLANDS = {"Biscoe", "Dream", "Torgersen"}


def rebuilt(bundle: sm.ModelBundle, estimator: Any = None, *, policy: sm.Policy | None = None,
            **golden: Any) -> sm.ModelBundle:
    """The same bundle with another estimator, policy or golden settings."""
    return sm.ModelBundle(
        bundle.estimator if estimator is None else estimator, bundle.contract,
        bundle.policy if policy is None else policy,
        dataclasses.replace(bundle.golden, **golden), name=bundle.name, version=bundle.version,
    )


def scaled_proba(pipe: Pipeline, factor: float) -> Pipeline:
    """A copy of ``pipe`` whose probabilities are multiplied by ``factor``."""
    est = copy.deepcopy(pipe)
    original = est.predict_proba
    est.predict_proba = lambda X: original(X) * factor
    return est


def rewrite_member(path: Path, member: str, data: bytes) -> None:
    """Replace one member's bytes, keeping the manifest (so its hash no longer matches)."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)


def test_all_lists_the_public_functions_sorted() -> None:
    public = {n for n, v in vars(sm_testing).items()
              if callable(v) and not n.startswith("_")
              and getattr(v, "__module__", None) == sm_testing.__name__}
    assert sm_testing.__all__ == sorted(sm_testing.__all__)
    assert set(sm_testing.__all__) == public


# ------------------------------------------------------------- reproducible


def test_reproducible_bundles_and_files_pass(
    lr_bundle: sm.ModelBundle, strict_bundle: sm.ModelBundle, lr_bundle_path: Path
) -> None:
    assert_bundle_reproducible(lr_bundle)
    assert_bundle_reproducible(strict_bundle)
    assert_bundle_reproducible(lr_bundle_path)
    assert_bundle_reproducible(str(lr_bundle_path), rtol=0.0, atol=0.0)


def test_changed_scores_fail_with_a_readable_diff(
    lr_bundle: sm.ModelBundle, lr_pipe: Pipeline
) -> None:
    changed = rebuilt(lr_bundle, scaled_proba(lr_pipe, 1.001))
    with pytest.raises(AssertionError) as info:
        assert_bundle_reproducible(changed)
    exc = info.value
    assert isinstance(exc, sm.GoldenMismatchError)
    message = str(exc)
    assert message.startswith("penguins-lr==1.0.0: golden outputs do not reproduce.")
    rows = len(lr_bundle.golden.accepted_rows)
    assert f"predict_proba: {rows} of {rows} rows differ; max abs diff" in message
    assert "    row 0: expected [" in message
    assert ", obtained [" in message
    assert "compared with the recorded tolerances (rtol=0, atol=0)" in message
    # Only the changed method, and no pandas repr.
    assert "decision_function" not in message
    assert "dtype" not in message
    assert [m["method"] for m in exc.mismatches] == ["predict_proba"]
    assert exc.mismatches[0]["max_rel_diff"] == pytest.approx(0.001)


def test_tolerances_override_the_recorded_ones(
    lr_bundle: sm.ModelBundle, lr_pipe: Pipeline
) -> None:
    nudged = scaled_proba(lr_pipe, 1 + 1e-9)
    with pytest.raises(AssertionError):
        assert_bundle_reproducible(rebuilt(lr_bundle, nudged))
    assert_bundle_reproducible(rebuilt(lr_bundle, nudged), rtol=1e-6)

    tolerant = rebuilt(lr_bundle, nudged, rtol=1e-6)
    assert_bundle_reproducible(tolerant)
    with pytest.raises(AssertionError, match=r"compared with rtol=0, atol=0 \(recorded: "
                                             r"rtol=1e-06, atol=0\)"):
        assert_bundle_reproducible(tolerant, rtol=0.0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "0.1"])
def test_bad_tolerances_are_refused(lr_bundle: sm.ModelBundle, bad: Any) -> None:
    with pytest.raises(sm.SafeModelError, match="The 'atol' parameter of "
                                                "assert_bundle_reproducible must be"):
        assert_bundle_reproducible(lr_bundle, atol=bad)


def test_neither_bundle_nor_path_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expects a ModelBundle or the path of a bundle file; "
                                        "got int"):
        assert_bundle_reproducible(42)  # type: ignore[arg-type]


def test_a_damaged_file_raises_integrity_error(lr_bundle_path: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.safemodel"
    damaged.write_bytes(lr_bundle_path.read_bytes())
    rewrite_member(damaged, "policy.json", b'{"unseen_category": "error"}')
    with pytest.raises(sm.IntegrityError):
        assert_bundle_reproducible(damaged)


def test_loading_a_path_does_not_log_the_unverified_notice(
    lr_bundle_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="safemodel")
    assert_bundle_reproducible(lr_bundle_path)
    assert "verify=False" not in caplog.text


# ----------------------------------------------------------------- contract


def test_contract_consistent_for_default_and_strict_policies(
    lr_bundle: sm.ModelBundle, strict_bundle: sm.ModelBundle, lr_bundle_path: Path
) -> None:
    assert_contract_consistent(lr_bundle)
    assert_contract_consistent(strict_bundle)
    assert_contract_consistent(lr_bundle_path)


def test_contract_that_now_rejects_golden_rows_fails(lr_bundle: sm.ModelBundle) -> None:
    stricter = rebuilt(lr_bundle, policy=sm.Policy.strict())
    with pytest.raises(AssertionError) as info:
        assert_contract_consistent(stricter)
    assert str(info.value).splitlines() == [
        "penguins-lr==1.0.0: the contract does not accept its own golden inputs.",
        "  contract and policy reject golden rows [64, 65, 66, 72]; recorded []",
    ]


def test_json_schema_that_disagrees_with_the_contract_fails(
    lr_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sm.Contract.to_json_schema

    def text_year(self: sm.Contract, **kwargs: Any) -> dict[str, Any]:
        schema = original(self, **kwargs)
        schema["properties"]["year"] = {"type": "string"}
        return schema

    monkeypatch.setattr(sm.Contract, "to_json_schema", text_year)
    with pytest.raises(AssertionError) as info:
        assert_contract_consistent(lr_bundle)
    lines = str(info.value).splitlines()
    assert lines[0] == "penguins-lr==1.0.0: the JSON schema disagrees with the contract."
    assert lines[1].startswith("  sampled row 0: to_json_schema() refuses it: year: ")
    assert lines[1].endswith(" is not of type 'string'")
    assert lines[-1].startswith("  ... and ")
    assert lines[-1].endswith(" more")


def test_contract_check_needs_jsonschema(
    lr_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install jsonschema") as info:
        assert_contract_consistent(lr_bundle)
    assert info.value.name == "jsonschema"


# ------------------------------------------------------------------- policy


def test_edge_cases_reproduce(lr_bundle: sm.ModelBundle, strict_bundle: sm.ModelBundle) -> None:
    assert_edge_cases_reproducible(lr_bundle)
    assert_edge_cases_reproducible(strict_bundle)


def test_changed_edge_case_handling_names_rows_and_columns(lr_bundle: sm.ModelBundle) -> None:
    stricter = rebuilt(lr_bundle, policy=sm.Policy.strict())
    with pytest.raises(AssertionError) as info:
        assert_edge_cases_reproducible(stricter)
    assert str(info.value).splitlines() == [
        "penguins-lr==1.0.0: the policy no longer treats the golden edge cases as recorded.",
        "  row 64 (edge case: island='__safemodel_unseen__'): recorded accepted, now rejected "
        "(unseen_category)",
        "  row 65 (edge case: sex='__safemodel_unseen__'): recorded accepted, now rejected "
        "(unseen_category)",
        "  row 66 (edge case: island missing): recorded accepted, now rejected "
        "(unexpected_missing)",
        "  row 72 (edge case: year missing): recorded accepted, now rejected "
        "(unexpected_missing)",
        "  column 'island': recorded imputed x2, unseen_to_missing x1, now no action",
        "  column 'sex': recorded unseen_to_missing x1, now no action",
        "  column 'year': recorded imputed x1, now no action",
    ]


def test_looser_policy_is_reported_too(strict_bundle: sm.ModelBundle) -> None:
    looser = rebuilt(strict_bundle, policy=sm.Policy())
    with pytest.raises(AssertionError, match=r"row 64 \(edge case: island='__safemodel_unseen__'"
                                             r"\): recorded rejected \(unseen_category\), now "
                                             r"accepted"):
        assert_edge_cases_reproducible(looser)


# --------------------------------------------------------------- robustness


def test_robust_bundles_pass(lr_bundle: sm.ModelBundle, strict_bundle: sm.ModelBundle) -> None:
    assert_bundle_robust(lr_bundle, examples=20)
    assert_bundle_robust(strict_bundle, examples=20, seed=7)


def test_malformed_probabilities_on_valid_input_fail(
    lr_bundle: sm.ModelBundle, lr_pipe: Pipeline
) -> None:
    broken = rebuilt(lr_bundle, scaled_proba(lr_pipe, 1.5))
    with pytest.raises(AssertionError) as info:
        assert_bundle_robust(broken, examples=10)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("penguins-lr==1.0.0: on input that meets the contract, "
                               "predict_proba row 0 ")
    # Shrunk to one row, shown as JSON.
    assert lines[1].startswith("  input: 1 row(s), sent as ")
    assert lines[2].startswith('    row 0: {"island": ')
    assert len(lines) == 3


def test_estimator_errors_on_invalid_input_fail(
    lr_bundle: sm.ModelBundle, lr_pipe: Pipeline
) -> None:
    est = copy.deepcopy(lr_pipe)
    original = est.predict_proba

    def fragile(X: Any) -> np.ndarray:
        unknown = set(X["island"].dropna()) - ISLANDS
        if unknown:
            raise ValueError(f"unknown island(s) {sorted(unknown)}")
        return np.asarray(original(X))

    est.predict_proba = fragile
    passthrough = rebuilt(lr_bundle, est, policy=sm.Policy(unseen_category="passthrough"))
    with pytest.raises(AssertionError) as info:
        assert_bundle_robust(passthrough, examples=50)
    message = str(info.value)
    assert message.startswith("penguins-lr==1.0.0: predict_proba raised ScoringError instead "
                              "of ContractViolation on input that breaks the contract: ")
    assert "ValueError: unknown island(s)" in message
    assert "(unseen category)" in message
    # Deterministic: the same seed finds the same input.
    with pytest.raises(AssertionError) as again:
        assert_bundle_robust(passthrough, examples=50)
    assert str(again.value) == message


def test_robustness_settings_are_checked(lr_bundle: sm.ModelBundle) -> None:
    with pytest.raises(sm.SafeModelError, match="'examples' parameter of assert_bundle_robust"):
        assert_bundle_robust(lr_bundle, examples=0)


def test_robustness_needs_hypothesis(
    lr_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install hypothesis") as info:
        assert_bundle_robust(lr_bundle)
    assert info.value.name == "hypothesis"
