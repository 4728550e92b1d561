"""Notebook displays (_repr_html_), short reprs, and the scoring methods in help()/dir()."""

from __future__ import annotations

import pydoc
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import safemodel as sm
from safemodel import _html


class _Checker(HTMLParser):
    """Collects tags and text; fails on anything that would reach out or run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag not in {"script", "link", "iframe", "img", "style"}, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            assert "http" not in (value or ""), value
        self.tags.append(tag)
        if tag not in {"rect", "br"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag != "rect":
            assert self.stack.pop() == tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.stack, checker.stack  # every tag closed
    return checker


def _text(html: str) -> str:
    return " ".join(_parse(html).text)


def test_bundle_display_shows_identity_contract_and_policy(lr_bundle: sm.ModelBundle) -> None:
    html = lr_bundle._repr_html_()
    text = _text(html)
    assert f"ModelBundle {lr_bundle.name}=={lr_bundle.version}" in text
    for column in lr_bundle.contract.names:
        assert column in text
    assert "unseen_category" in text
    assert "Pipeline" in text
    assert repr(lr_bundle).startswith(f"<ModelBundle {lr_bundle.name}==")


def test_contract_and_policy_have_displays_and_short_reprs(lr_bundle: sm.ModelBundle) -> None:
    contract = lr_bundle.contract
    text = _text(contract._repr_html_())
    assert "Biscoe" in text
    assert "categorical" in text
    assert repr(contract).startswith(f"<Contract {len(contract.columns)} column(s): island: ")
    assert len(repr(contract)) < 200
    policy = sm.Policy(columns={"island": sm.ColumnPolicy(unseen_category="error")})
    text = _text(policy._repr_html_())
    assert "island" in text
    assert "error" in text
    assert "(policy)" in text


def test_every_value_from_the_data_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    X = pd.DataFrame({evil: np.arange(40.0), "c": ["<b>x</b>", "y"] * 20})
    model = LinearRegression().fit(pd.get_dummies(X), np.arange(40.0))
    contract = sm.Contract.infer(X)
    violation = sm.ContractViolation([sm.errors.Failure(evil, "unseen_category", evil, 3)])
    for html in (contract._repr_html_(), violation._repr_html_(),
                 _html.bars([1, 2], [2, 1], colour="#000", labels=[evil, "b"])):
        _parse(html)  # no <script>, <b>: they arrive as text
        assert evil in _text(html) or evil in html.replace("&lt;", "<").replace("&gt;", ">")
        assert "<script>" not in html
        assert "<b>x" not in html
    assert model is not None


def test_violation_and_policy_report_list_the_failures(strict_bundle: sm.ModelBundle,
                                                       lr_bundle: sm.ModelBundle,
                                                       penguins) -> None:
    X, _ = penguins
    bad = X.head(4).assign(island=["Atlantis", "Biscoe", "Dream", "Atlantis"])
    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict(bad)
    text = _text(info.value._repr_html_())
    assert "ContractViolation: 2 failure(s)" in text
    assert "'Atlantis'" in text
    assert "unseen_category" in text

    report = lr_bundle.prepare(bad).report
    text = _text(report._repr_html_())
    assert "unseen_to_missing" in text
    assert "4 row(s)" in text
    dropped = strict_bundle.prepare(bad, invalid="drop").report
    assert "'Atlantis'" in _text(dropped._repr_html_())


def test_verification_report_display_and_repr(lr_bundle: sm.ModelBundle) -> None:
    report = lr_bundle.verify()
    assert "golden outputs reproduce" in _text(report._repr_html_())
    assert repr(report) == (f"<VerificationReport {lr_bundle.name}=={lr_bundle.version} "
                            "ok=True mismatches=[] policy_changes=0 packages_changed=[]>")


def test_drift_report_display_is_a_table_with_inline_charts(lr_bundle: sm.ModelBundle,
                                                           penguins) -> None:
    X, _ = penguins
    shifted = X.sample(150, random_state=4).assign(island="Dream")
    report = lr_bundle.drift(shifted)
    html = report._repr_html_()
    checker = _parse(html)
    assert checker.tags.count("svg") == len(report.results)
    assert checker.tags.count("tr") == len(report.results) + 1
    text = " ".join(checker.text)
    assert "island" in text
    assert "alert" in text
    # worst first: the first data row is an alert
    first_row = html.split("<tbody>")[1].split("</tr>")[0]
    assert ">alert<" in first_row


def test_bundle_info_display_and_repr(lr_bundle_path: Path) -> None:
    info = sm.inspect(lr_bundle_path)
    assert re.fullmatch(rf"<BundleInfo {info.name}=={info.version} format=\d+ methods=\[.*\] "
                        r"signed=(True|False) fingerprint=[0-9a-f]{12}\u2026>", repr(info))
    text = _text(info._repr_html_())
    assert info.fingerprint in text
    assert "scikit-learn" in text


def test_scoring_methods_are_in_help_and_only_those_the_estimator_has_in_dir(
        lr_bundle: sm.ModelBundle, penguins) -> None:
    page = pydoc.render_doc(sm.ModelBundle, renderer=pydoc.plaintext)
    for method in ("predict", "predict_proba", "decision_function"):
        assert f"{method}(self" in page
        assert f"``estimator.{method}(X)`` after the contract and the policy." in page
    assert {"predict", "predict_proba", "decision_function"} <= set(dir(lr_bundle))
    assert lr_bundle.predict_proba.__doc__ == sm.ModelBundle.predict_proba.__doc__

    X, _ = penguins
    numeric = X[["bill_length_mm", "flipper_length_mm"]].dropna()
    regressor = sm.ModelBundle.from_training(
        LinearRegression().fit(numeric, numeric.sum(axis=1)), numeric, name="r", version="1")
    assert "predict" in dir(regressor)
    assert "predict_proba" not in dir(regressor)
    assert not hasattr(regressor, "predict_proba")
    assert sm.ModelBundle.predict(regressor, numeric.head(2)).shape == (2,)
