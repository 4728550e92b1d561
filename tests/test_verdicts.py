"""Verdicts of drift (issue 16): significance tests, effect-size floors, Holm correction.

The statistics are checked against scipy on raw data, the verdicts on samples drawn
for the purpose: a shift every batch of 1,000 rows must flag, batches with no shift
must not, and rates decide on 15 rows when an exact test can.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import assert_same_report
from safemodel.errors import InvalidArgument
from safemodel.monitoring.drift import drift
from safemodel.monitoring.monitor import Monitor
from safemodel.monitoring.profile import NumericProfile, Profile
from safemodel.monitoring.report import moment_floor
from safemodel.monitoring.statistics import (
    chi_square_test,
    holm,
    ks_test,
    mean_test,
    rate_test,
    variance_test,
)

# -- the statistics agree with scipy --------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current"),
    [((0, 1000), (5, 15)), ((3, 100), (4, 15)), ((10, 178), (1, 15)), ((500, 10_000), (60, 1000))],
)
def test_rate_test_is_fishers_exact_test(
    reference: tuple[int, int], current: tuple[int, int]
) -> None:
    (b, n_ref), (a, n) = reference, current
    expected = stats.fisher_exact([[a, n - a], [b, n_ref - b]])[1]
    assert rate_test(b, n_ref, a, n) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_chi_square_matches_scipy_when_no_bin_is_merged() -> None:
    reference, current = np.array([120, 80, 200, 100]), np.array([30, 30, 20, 20])
    statistic, p = chi_square_test(reference, current)
    expected = stats.chi2_contingency(
        np.vstack([reference, current]), correction=False, lambda_="cressie-read"
    )
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)


def test_chi_square_merges_bins_until_each_expects_enough_rows() -> None:
    # 15 current rows over 10 equal bins expect 1.5 rows each: neighbours merge in
    # pairs until a group expects 2 (3 rows), leaving 5 groups.
    reference = np.full(10, 100)
    current = np.array([4, 2, 2, 1, 1, 1, 1, 1, 1, 1])
    statistic, p = chi_square_test(reference, current, min_expected=2)
    grouped = [[200] * 5, [6, 3, 2, 2, 2]]
    expected = stats.chi2_contingency(grouped, correction=False, lambda_="cressie-read")
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    # By default (Cochran's 5) the same bins pair up into 4-bin groups: 2 groups.
    statistic, _ = chi_square_test(reference, current)
    default = stats.chi2_contingency([[400, 600], [9, 6]], correction=False, lambda_="cressie-read")
    assert statistic == pytest.approx(default.statistic)
    assert chi_square_test([10, 0], [0, 3]) == (0.0, 1.0)  # one group: nothing to compare
    # A short last group folds into the one before: 9 bins of 1/9 on 15 rows make
    # groups of 2, 2, 2, 3 bins.
    current = np.array([5, 0, 5, 0, 1, 1, 1, 1, 1])
    statistic, p = chi_square_test(np.full(9, 100), current, min_expected=2)
    expected = stats.chi2_contingency([[200, 200, 200, 300], [5, 5, 2, 3]], correction=False,
                                      lambda_="cressie-read")  # fmt: skip
    assert statistic == pytest.approx(expected.statistic)


def test_binned_ks_is_close_to_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=5000), rng.normal(0.2, 1, size=500)
    edges = np.quantile(ref, np.linspace(0, 1, 101))
    d, p = ks_test(
        np.histogram(ref, edges)[0], np.histogram(np.clip(cur, edges[0], edges[-1]), edges)[0]
    )
    exact = stats.ks_2samp(ref, cur)
    assert d <= exact.statistic + 1e-12  # binning can only hide part of the gap
    assert d == pytest.approx(exact.statistic, abs=0.01)
    assert p == pytest.approx(exact.pvalue, rel=0.5)


def test_holm_is_monotone_and_at_least_bonferroni() -> None:
    p = [0.001, 0.2, 0.01, 0.03, 0.5]
    adjusted = holm(p)
    assert adjusted == pytest.approx([0.005, 0.4, 0.04, 0.09, 0.5])
    assert all(a <= min(1.0, len(p) * x) for a, x in zip(adjusted, p, strict=True))
    assert holm([]) == []


# -- verdicts ----------------------------------------------------------------------------


def _mixed(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
        "c": rng.choice(["a", "b", "c", "d"], size=n, p=[0.08, 0.32, 0.3, 0.3]),
    })  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> Profile:
    frame = _mixed(20_000, np.random.default_rng(1))
    return Profile.build(frame, categorical={"c": ["a", "b", "c", "d"]})


def test_no_shift_batches_rarely_alarm(reference: Profile) -> None:
    rng = np.random.default_rng(2)
    alarms = sum(not drift(reference, _mixed(n, rng)).ok for n in [15, 50, 200, 1000] * 25)
    assert alarms <= 8  # 5% of 100 is 5; binomial slack, a systematic excess fails


@pytest.mark.parametrize(
    ("shift", "column"),
    [
        (lambda f: f.assign(x=f["x"] + 0.25), "x"),
        (lambda f: f.assign(x=f["x"] * math.sqrt(1.5)), "x"),
        (
            lambda f: f.assign(
                c=np.where((f["c"] == "b") & (np.arange(len(f)) % 4 == 0), "a", f["c"])
            ),
            "c",
        ),
        (lambda f: f.assign(c=np.where(np.arange(len(f)) % 20 == 0, "new", f["c"])), "c"),
        (lambda f: f.assign(y=np.where(np.arange(len(f)) % 10 == 0, np.nan, f["y"])), "y"),
    ],
    ids=["mean+0.25sd", "variance x1.5", "share 8%->16%", "unseen 5%", "missing 10%"],
)
def test_moderate_shifts_alert_from_1000_rows(reference: Profile, shift, column: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        report = drift(reference, shift(_mixed(1000, rng)))
        assert report.alerts == [column], report.to_frame()
        result = report.features[column]
        assert result.test is not None
        assert result.p_value is not None
        assert result.p_value <= 0.05
        assert result.effect_size is not None


def test_a_rate_decides_on_15_rows(reference: Profile) -> None:
    batch = _mixed(15, np.random.default_rng(4))
    batch.loc[:4, "y"] = np.nan  # 5 of 15 missing; training had none
    result = drift(reference, batch).features["y"]
    assert result.status == "alert"
    assert result.test == "missing"
    assert result.effect_size == pytest.approx(5 / 15)
    assert [t.name for t in result.tests if t.verdict == "alert"] == ["missing"]


def test_trivial_shift_on_a_huge_batch_is_not_an_alert(reference: Profile) -> None:
    # 0.05 sd on 100,000 rows is significant, but its PSI (~0.003) is below the floors.
    batch = _mixed(100_000, np.random.default_rng(5)).assign(x=lambda f: f["x"] + 0.05)
    result = drift(reference, batch).features["x"]
    assert result.status == "ok"
    assert any(t.adjusted <= 0.05 for t in result.tests)  # real, and listed
    assert drift(reference, batch, warn=1e-4, alert=1e-3).features["x"].status == "alert"


def test_report_says_which_test_decided(reference: Profile) -> None:
    batch = _mixed(2000, np.random.default_rng(6)).assign(x=lambda f: f["x"] + 1)
    report = drift(reference, batch)
    assert report.drift_share == pytest.approx(1 / 3)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    x = data["features"]["x"]
    assert x["test"] in {"ks", "chi_square", "mean", "variance"}
    assert {t["name"] for t in x["tests"]} == {"ks", "chi_square", "mean", "variance"}
    decisive = next(t for t in x["tests"] if t["name"] == x["test"])
    assert (decisive["adjusted"], decisive["effect_size"]) == (x["p_value"], x["effect_size"])
    mean = next(t for t in x["tests"] if t["name"] == "mean")
    assert mean["effect"] == "standardized_mean_difference"
    assert mean["effect_size"] == pytest.approx(1.0, abs=0.1)  # moved by 1 sd
    assert mean["verdict"] == "alert"
    frame = report.to_frame()
    assert frame.loc["x", "test"] == x["test"]
    assert frame.loc["x", "p_value"] == pytest.approx(x["p_value"])
    assert data["drift_share"] == pytest.approx(1 / 3)


def test_alpha_is_checked() -> None:
    profile = Profile(features={"x": NumericProfile((0.0, 1.0), (10,))}, scores={}, rows=10)
    for bad in (0, 1, 1.5, True, math.nan):
        with pytest.raises(InvalidArgument, match="'alpha'"):
            drift(profile, pd.DataFrame({"x": [0.5]}), alpha=bad)


class _Bundle:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def reference_scores(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        return {}


def test_monitor_reaches_the_same_verdicts(reference: Profile) -> None:
    batch = _mixed(600, np.random.default_rng(7)).assign(x=lambda f: f["x"] + 0.5)
    monitor = Monitor(_Bundle(reference), alpha=0.01)
    for part in np.array_split(np.arange(600), 6):
        monitor.observe(batch.iloc[part])
    assert_same_report(monitor.report().to_dict(), drift(reference, batch, alpha=0.01).to_dict())


def test_html_names_the_deciding_test(reference: Profile, tmp_path) -> None:
    batch = _mixed(300, np.random.default_rng(8))
    batch.loc[:60, "y"] = np.nan
    html = drift(reference, batch).to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "decided by" in html
    assert "test missing" in html
    assert "Holm" in html


# -- moment tests ---------------------------------------------------------------------------


def test_mean_and_variance_tests_agree_with_scipy() -> None:
    z, p, d = mean_test(1.0, 4.0, 10_000, 1.3, 200)
    se = math.sqrt(4.0 * (1 / 200 + 1 / 10_000))
    assert z == pytest.approx(0.3 / se)
    assert p == pytest.approx(2 * stats.t.sf(0.3 / se, 9_999))  # reference df
    assert d == pytest.approx(0.15)
    # Normal data (kurtosis 3): exactly the classic F test of two variances.
    stat, p, ratio = variance_test(2.0, 1_000, 3.0, 3.0, 50)
    assert p == pytest.approx(2 * stats.f.sf(1.5, 49, 999))
    assert ratio == pytest.approx(1.5)
    # Heavier tails: the F test's degrees of freedom shrink to 2 / v(n).
    stat, p, ratio = variance_test(2.0, 10_000, 6.0, 3.0, 400)
    vb, vr = (6.0 - 397 / 399) / 400, (6.0 - 9997 / 9999) / 10_000
    assert stat == pytest.approx(math.log(1.5) / math.sqrt(vb + vr))
    assert p == pytest.approx(2 * stats.f.sf(1.5, 2 / vb, 2 / vr))
    assert mean_test(1.0, 0.0, 100, 5.0, 10) == (0.0, 1.0, 0.0)  # constant reference
    assert variance_test(1.0, 100, 3.0, 0.0, 10) == (0.0, 1.0, 1.0)


def test_variance_change_is_caught_by_the_variance_test(reference: Profile) -> None:
    rng = np.random.default_rng(11)
    batch = _mixed(1000, rng).assign(x=lambda f: f["x"] * math.sqrt(1.5))
    result = drift(reference, batch).features["x"]
    assert result.status == "alert"
    variance = next(t for t in result.tests if t.name == "variance")
    assert variance.effect == "variance_ratio"
    assert variance.effect_size == pytest.approx(1.5, rel=0.15)
    assert variance.verdict == "alert"
    shrunk = drift(reference, _mixed(1000, rng).assign(x=lambda f: f["x"] / 2)).features["x"]
    assert next(t for t in shrunk.tests if t.name == "variance").verdict == "alert"


def test_moment_floors_follow_the_psi_floors(reference: Profile) -> None:
    assert moment_floor("standardized_mean_difference", 0.02) == pytest.approx(math.sqrt(0.02))
    for psi_floor in (0.01, 0.02, 0.25):
        r = moment_floor("variance_ratio", psi_floor)
        assert (r + 1 / r - 2) / 2 == pytest.approx(psi_floor)
    # A 0.1 sd shift on 100,000 rows: significant, below the default floor (0.141 sd).
    batch = _mixed(100_000, np.random.default_rng(12)).assign(x=lambda f: f["x"] + 0.1)
    mean = next(t for t in drift(reference, batch).features["x"].tests if t.name == "mean")
    assert mean.adjusted < 1e-6
    assert mean.verdict == "warn"  # 0.1 sd reaches the warn floor (0.1), not alert


def test_moment_tests_wait_for_enough_rows_on_skewed_and_two_point_columns() -> None:
    rng = np.random.default_rng(13)
    frame = pd.DataFrame({
        "skewed": rng.lognormal(0, 1.0, 20_000),  # skewness ~6: the mean test needs rows
        "flag": rng.integers(0, 2, 20_000).astype(float),  # two values: no variance test
        "normal": rng.normal(size=20_000),
    })  # fmt: skip
    profile = Profile.build(frame, categorical={})
    names = {}
    for n in (15, 19, 20, 50, 400):
        results = drift(profile, frame.iloc[:n]).features
        names[n] = {c: {t.name for t in r.tests} for c, r in results.items()}
    assert names[15]["normal"] == {"chi_square", "ks"}
    assert names[19]["normal"] == {"chi_square", "ks"}
    assert names[20]["normal"] == {"chi_square", "ks", "mean"}
    assert names[50]["normal"] == {"chi_square", "ks", "mean", "variance"}
    assert "mean" not in names[50]["skewed"]
    assert "variance" not in names[400]["skewed"]  # heavy tails: the variance test never runs
    assert all("variance" not in names[n]["flag"] for n in names)
    assert "mean" in names[50]["flag"]


def test_no_shift_false_alarms_with_moment_tests_on_skewed_data() -> None:
    # Heavy tails are where a z-test lies on small batches: the mean test's row floors
    # and the variance test's normal-tails check keep the family's false alarms at alpha
    # (measured at scale in benchmarks/drift.py and benchmarks/variance_calibration.py).
    rng = np.random.default_rng(14)
    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.lognormal(0, 0.75, n), "b": rng.exponential(1, n),
                             "c": rng.standard_t(5, n)})  # fmt: skip
    profile = Profile.build(frame(50_000), categorical={})
    alarms = sum(not drift(profile, frame(n)).ok for n in [15, 50, 200, 1000] * 25)
    assert alarms <= 8  # 5% of 100 is 5; binomial slack, a systematic excess fails
