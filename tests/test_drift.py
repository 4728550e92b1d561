"""Tests for safemodel.monitoring.drift: PSI, JS distance, verdicts, accumulation and reports."""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from palmerpenguins import load_penguins

from helpers import assert_same_report
from safemodel.errors import ContractViolation, InvalidArgument
from safemodel.monitoring import binning as _binning
from safemodel.monitoring.drift import DriftAccumulator, DriftReport, drift, js_distance, psi
from safemodel.monitoring.profile import CategoricalProfile, NumericProfile, Profile

CATEGORICAL = ["species", "island", "sex"]
FEATURES = [
    "species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
    "body_mass_g", "sex", "year",
]  # fmt: skip


def _score(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """A stand-in for a model score: a logistic function of bill length."""
    bill = frame["bill_length_mm"].to_numpy(dtype=float, na_value=44.0)
    return np.asarray(1 / (1 + np.exp(-(bill - 44.0) / 3.0)), dtype=np.float64)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.fixture(scope="module")
def profile(penguins: pd.DataFrame) -> Profile:
    categorical = {c: sorted(penguins[c].dropna().unique().tolist()) for c in CATEGORICAL}
    return Profile.build(penguins, categorical=categorical, scores={"score": _score(penguins)})


def _check(profile: Profile, frame: pd.DataFrame, **kwargs: Any) -> DriftReport:
    return drift(profile, frame, scores={"score": _score(frame)}, **kwargs)


# -- statistics -------------------------------------------------------------------------


def test_psi_matches_a_hand_computation() -> None:
    # Reference 25/25/25/25, current 10/20/30/40. Half a row is added to each bin:
    #   p = 25.5/102 = 0.25 for every bin
    #   q = 10.5/102, 20.5/102, 30.5/102, 40.5/102 = 0.102941, 0.200980, 0.299020, 0.397059
    # PSI = sum((q - p) * ln(q / p))
    #     = (-0.147059)(-0.887303) + (-0.049020)(-0.218254)
    #       + (0.049020)(0.179048) + (0.147059)(0.462624)
    #     = 0.130486 + 0.010699 + 0.008777 + 0.068033 = 0.217995
    assert psi([25, 25, 25, 25], [10, 20, 30, 40]) == pytest.approx(0.217995, abs=2e-6)


def test_psi_on_a_profile_with_fixed_bins_matches_the_hand_computation() -> None:
    fixed = Profile(
        features={"x": NumericProfile(edges=(0.0, 1.0, 2.0, 3.0, 4.0), counts=(25,) * 4)},
        scores={},
        rows=100,
    )
    current = pd.DataFrame({"x": [0.5] * 10 + [1.5] * 20 + [2.5] * 30 + [3.5] * 40})
    # alpha=0.001: the chance level the PSI guard below works at.
    result = drift(fixed, current, alpha=0.001).features["x"]
    # Bins empty on both sides (below, above, missing, invalid) do not count.
    assert result.psi == pytest.approx(0.217995, abs=2e-6)
    assert result.current_counts == (0, 10, 20, 30, 40, 0, 0, 0)
    assert result.reference_counts == (0, 25, 25, 25, 25, 0, 0, 0)
    # 0.218 is above warn=0.1, but two samples of 100 rows from one distribution reach
    # that PSI by chance more often than 1 in 1000: chance PSI = chi2_3(0.999) * (1/100 +
    # 1/100), with chi2_3(0.999) = 16.27 (16.55 by the Wilson-Hilferty approximation).
    assert result.chance_psi == pytest.approx(16.55 * 0.02, abs=0.001)
    assert result.status == "ok"
    many = pd.concat([current] * 100)
    large = Profile(
        features={"x": NumericProfile(edges=(0.0, 1.0, 2.0, 3.0, 4.0), counts=(2500,) * 4)},
        scores={},
        rows=10_000,
    )
    # With PSI floors 0.1 / 0.25 (safemodel 0.1's thresholds), 0.218 warns.
    assert drift(large, many, warn=0.1, alert=0.25).features["x"].status == "warn"


def test_psi_properties() -> None:
    assert psi([5, 10, 0], [5, 10, 0]) == 0.0
    assert psi([5, 10, 0], [50, 100, 0]) < 1e-3  # the correction weighs more on 15 rows
    empty_bin = psi([10, 10, 0], [10, 10, 5])  # finite although the reference bin is empty
    assert math.isfinite(empty_bin)
    assert empty_bin > 0
    assert psi([1, 2, 3], [3, 2, 1]) == pytest.approx(psi([3, 2, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="positive total"):
        psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="one length"):
        psi([1, 2], [1, 2, 3])


def test_js_distance_known_values() -> None:
    assert js_distance([3, 7], [30, 70]) == 0.0
    assert js_distance([1, 0], [0, 1]) == 1.0
    # p = (1, 0), q = (0.5, 0.5), m = (0.75, 0.25):
    # JSD = H(m) - (H(p) + H(q)) / 2 = 0.811278 - 0.5 = 0.311278; distance = sqrt = 0.557923
    assert js_distance([1, 0], [1, 1]) == pytest.approx(0.557923, abs=1e-6)
    assert js_distance([1, 0], [1, 1]) == js_distance([1, 1], [1, 0])


# -- verdicts on the penguins -----------------------------------------------------------


def test_training_data_itself_is_ok(profile: Profile, penguins: pd.DataFrame) -> None:
    report = _check(profile, penguins)
    assert report.ok
    assert report.alerts == []
    assert report.warnings == []
    assert all(r.psi == 0.0 and r.js == 0.0 for r in report.results)
    assert {r.status for r in report.results} == {"ok"}


@pytest.mark.parametrize("rows", [50, 5000])
def test_samples_of_the_training_data_do_not_alert(
    profile: Profile, penguins: pd.DataFrame, rows: int
) -> None:
    for seed in range(20):
        sample = penguins.sample(rows, replace=rows > len(penguins), random_state=seed)
        report = _check(profile, sample)
        assert report.alerts == [], (seed, report.to_frame())
        assert report.warnings == [], (seed, report.to_frame())


def test_small_sample_psi_is_held_to_the_chance_level(
    profile: Profile, penguins: pd.DataFrame
) -> None:
    sample = penguins.sample(50, random_state=3)
    result = _check(profile, sample).features["bill_length_mm"]
    # PSI on 50 rows is well above zero by chance alone, and the guard knows it.
    assert result.psi is not None
    assert result.chance_psi is not None
    assert result.psi > 0.05
    assert result.chance_psi > result.psi
    assert result.status == "ok"


@pytest.mark.parametrize("rows", [None, 50])
def test_shifted_feature_alerts_on_exactly_that_feature_and_the_score(
    profile: Profile, penguins: pd.DataFrame, rows: int | None
) -> None:
    shifted = penguins.copy()
    shifted["bill_length_mm"] += 2 * penguins["bill_length_mm"].std()
    if rows is not None:
        shifted = shifted.sample(rows, random_state=0)
    report = _check(profile, shifted)
    assert report.alerts == ["bill_length_mm", "score"]
    assert not report.ok
    assert (report.features["bill_length_mm"].out_of_range_rate or 0.0) >= 0.2


def test_shift_of_another_feature_alerts_on_it_alone(
    profile: Profile, penguins: pd.DataFrame
) -> None:
    shifted = penguins.copy()
    shifted["body_mass_g"] -= 2 * penguins["body_mass_g"].std()
    report = _check(profile, shifted)
    assert report.alerts == ["body_mass_g"]
    assert report.scores["score"].status == "ok"


@pytest.mark.parametrize("rows", [None, 60])
def test_new_category_in_30_percent_of_rows_alerts_on_that_feature(
    profile: Profile, penguins: pd.DataFrame, rows: int | None
) -> None:
    current = penguins.copy() if rows is None else penguins.sample(rows, random_state=1)
    current = current.reset_index(drop=True)
    chosen = np.random.default_rng(0).permutation(len(current))[: round(0.3 * len(current))]
    current.loc[chosen, "island"] = "Atlantis"
    report = _check(profile, current)
    assert report.alerts == ["island"]
    island = report.features["island"]
    assert island.unseen_rate == pytest.approx(0.3, abs=0.01)
    assert island.bins[-2:] == ("(unseen)", "(missing)")


def test_fewer_rows_than_min_rows_get_no_verdict(profile: Profile, penguins: pd.DataFrame) -> None:
    tiny = penguins.sample(8, random_state=0).assign(island="Atlantis")  # default: 10
    report = _check(profile, tiny)
    assert report.features["island"].status == "insufficient"
    assert report.features["island"].unseen_rate == 1.0  # the statistics are still there
    assert report.ok
    assert _check(profile, tiny, min_rows=5).alerts == ["island"]


def test_scores_not_given_are_insufficient(profile: Profile, penguins: pd.DataFrame) -> None:
    report = drift(profile, penguins)
    score = report.scores["score"]
    assert score.status == "insufficient"
    assert score.rows == 0
    assert score.psi is None
    assert score.missing_rate is None
    assert report.ok


def test_thresholds_are_settable(profile: Profile, penguins: pd.DataFrame) -> None:
    sample = penguins.sample(5000, replace=True, random_state=0)
    strict = _check(profile, sample, warn=1e-6, alert=1e-5)
    # Below the chance level nothing is flagged, however low the thresholds.
    assert strict.alerts == []
    assert strict.warnings == []
    shifted = penguins.assign(bill_depth_mm=penguins["bill_depth_mm"] + 1.0)
    lenient = _check(profile, shifted, warn=5.0, alert=10.0)
    assert lenient.alerts == []
    assert (lenient.warn, lenient.alert) == (5.0, 10.0)
    assert _check(profile, shifted).alerts == ["bill_depth_mm"]


@pytest.mark.parametrize(
    "kwargs",
    [{"warn": 0.3, "alert": 0.2}, {"warn": 0.0}, {"alert": math.inf}, {"min_rows": 0}],
)
def test_bad_thresholds_are_rejected(profile: Profile, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"warn|min_rows"):
        drift(profile, pd.DataFrame(), **kwargs)
    with pytest.raises(InvalidArgument) as info:
        drift(profile, pd.DataFrame(), **kwargs)
    assert info.value.argument in {"warn", "alert", "min_rows"}
    assert info.value.expected


# -- rates ----------------------------------------------------------------------------


def test_missing_rates(profile: Profile, penguins: pd.DataFrame) -> None:
    current = penguins.copy().reset_index(drop=True)
    current.loc[: len(current) // 5 - 1, ["island", "sex"]] = None
    report = _check(profile, current)
    island, sex = report.features["island"], report.features["sex"]
    # island never had a missing value: unexpected; sex had some: expected.
    assert island.missing_rate == pytest.approx(0.2, abs=0.01)
    assert island.unexpected_missing_rate == island.missing_rate
    assert sex.missing_rate is not None
    assert sex.missing_rate > 0.2
    assert sex.unexpected_missing_rate == 0.0


def test_absent_column_counts_as_missing(profile: Profile, penguins: pd.DataFrame) -> None:
    report = _check(profile, penguins.drop(columns=["year"]))
    assert report.features["year"].missing_rate == 1.0
    assert report.alerts == ["year"]


def test_unparseable_values_are_invalid_not_errors(
    profile: Profile, penguins: pd.DataFrame
) -> None:
    current = penguins.astype({"body_mass_g": object}).reset_index(drop=True)
    current.loc[:99, "body_mass_g"] = "heavy"
    current.loc[100, "body_mass_g"] = "4000"  # parses
    current.loc[101, "body_mass_g"] = math.inf
    result = _check(profile, current).features["body_mass_g"]
    assert result.invalid_rate == pytest.approx(101 / len(current))
    assert result.status == "alert"
    assert result.bins[-1] == "(invalid)"


def test_out_of_range_rate(profile: Profile, penguins: pd.DataFrame) -> None:
    current = penguins.copy()
    current["flipper_length_mm"] = np.where(
        np.arange(len(current)) % 4 == 0, 500.0, current["flipper_length_mm"]
    )
    result = _check(profile, current).features["flipper_length_mm"]
    assert result.out_of_range_rate == pytest.approx(86 / 344)
    assert result.unseen_rate is None  # not a categorical column


# -- input forms ------------------------------------------------------------------------


def test_input_dtypes_agree(profile: Profile, penguins: pd.DataFrame) -> None:
    base = _check(profile, penguins).to_dict()
    variants = penguins.astype(
        {
            "island": "category",
            "species": object,
            "sex": "string[python]",
            "year": "Int64",
            "body_mass_g": "Float64",
        }
    )
    assert _check(profile, variants).to_dict() == base


def test_datetime_and_boolean_columns_drift() -> None:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, 1000), unit="D")
    reference = pd.DataFrame(
        {"when": when, "flag": pd.array(rng.random(1000) < 0.3, dtype="boolean")}
    )
    profile = Profile.build(reference, categorical={})
    assert drift(profile, reference).ok
    later = reference.assign(when=reference["when"] + pd.Timedelta(days=400))
    assert drift(profile, later).alerts == ["when"]
    aware = reference.assign(when=reference["when"].dt.tz_localize("UTC"))
    assert drift(profile, aware).ok
    flipped = reference.assign(flag=~reference["flag"])
    assert drift(profile, flipped).alerts == ["flag"]


def test_score_array_forms() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0)})
    proba = np.linspace(0, 1, 100)
    scores = {"proba[a]": 1 - proba, "proba[b]": proba}
    profile = Profile.build(frame, categorical={}, scores=scores)
    as_mapping = drift(profile, frame, scores=scores).to_dict()
    as_array = drift(profile, frame, scores=np.column_stack([1 - proba, proba])).to_dict()
    assert as_array == as_mapping
    with pytest.raises(ValueError, match="one column per profile score"):
        drift(profile, frame, scores=proba)
    with pytest.raises(ValueError, match="Unknown score"):
        drift(profile, frame, scores={"proba[c]": proba})
    with pytest.raises(ValueError, match="one value per row"):
        drift(profile, frame, scores={"proba[a]": proba[:10]})
    # Any input form the bundle accepts is counted like the frame; anything else is a
    # ContractViolation (a SafeModelError), never a bare TypeError.
    assert drift(profile, frame.to_dict("records"), scores=scores).to_dict() == as_mapping
    with pytest.raises(ContractViolation):
        drift(profile, "not a frame")
    for error in (ValueError, InvalidArgument):
        with pytest.raises(error, match="Unknown score"):
            drift(profile, frame, scores={"proba[c]": proba})


def test_label_scores(penguins: pd.DataFrame) -> None:
    labels = penguins["species"].to_numpy(dtype=object)
    profile = Profile.build(penguins, categorical={}, scores={"prediction": labels})
    assert isinstance(profile.scores["prediction"], CategoricalProfile)
    flipped = np.where(labels == "Adelie", "Gentoo", labels)
    assert drift(profile, penguins, scores={"prediction": flipped}).alerts == ["prediction"]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "b", "c", ""]), st.text(max_size=2)),
        max_size=300,
    ),
    arrow=st.booleans(),
)
def test_small_and_large_batch_routes_agree(values: list[str | None], arrow: bool) -> None:
    dtype = "str" if arrow else object
    column = _binning.array_of(pd.Series(values, dtype=dtype))
    lookup = _binning.CategoryLookup(("b", "a", "", "c"))
    numbers = np.array([np.nan if v is None else len(v) * 0.7 for v in values])
    numbers[::7] = np.inf
    numbers[5::13] = -np.inf
    invalid = np.zeros(len(values), dtype=bool)
    invalid[3::11] = True
    numbers[invalid] = np.nan  # how unparseable values arrive
    bins = _binning.NumericBins((0.0, 0.7, 1.4))
    original = _binning._SMALL_BATCH, _binning._SCRATCH_FROM
    try:
        _binning._SMALL_BATCH = 10**9
        small = _binning.categorical_index(column, lookup), bins.count(numbers, invalid)
        small_counts = _binning.categorical_counts(column, lookup)
        # The large routes, through the per-thread scratch buffers whatever the size.
        _binning._SMALL_BATCH, _binning._SCRATCH_FROM = -1, 0
        large = _binning.categorical_index(column, lookup), bins.count(numbers, invalid)
        large_counts = _binning.categorical_counts(column, lookup)
        counts, filled, present = bins.count_finite(numbers, invalid, fill=0.25)
        filled = filled.copy()  # a scratch buffer: the next batch would overwrite it
    finally:
        _binning._SMALL_BATCH, _binning._SCRATCH_FROM = original
    np.testing.assert_array_equal(small[0], large[0])
    np.testing.assert_array_equal(small[1], large[1])
    np.testing.assert_array_equal(counts, large[1])
    finite = np.isfinite(numbers)
    assert present == int(finite.sum())
    np.testing.assert_array_equal(filled, np.where(finite, numbers, 0.25))
    for counted in (small_counts, large_counts):
        np.testing.assert_array_equal(counted, np.bincount(small[0], minlength=lookup.size))
    expected = [5 if v is None else {"b": 0, "a": 1, "": 2, "c": 3}.get(v, 4) for v in values]
    np.testing.assert_array_equal(small[0], np.array(expected, dtype=np.intp))
    assert small[1].sum() == len(values)
    np.testing.assert_array_equal(
        small[1], np.bincount(bins.index(numbers, invalid), minlength=bins.size)
    )


# -- accumulation -----------------------------------------------------------------------


@st.composite
def batches(draw: st.DrawFn) -> list[pd.DataFrame]:
    n = draw(st.integers(0, 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = pd.DataFrame(
        {
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0.3, 1.5, n)),
            "c": rng.choice(np.array(["a", "b", "zz", None], dtype=object), n),
            "t": rng.choice(np.array(["free", None], dtype=object), n),
        }
    )
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    return [frame.iloc[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_accumulated_batches_equal_one_shot_drift(parts: list[pd.DataFrame]) -> None:
    reference = pd.DataFrame(
        {
            "x": np.random.default_rng(0).normal(size=500),
            "c": ["a", "b"] * 250,
            "t": ["free"] * 500,
        }
    )
    profile = Profile.build(
        reference, categorical={"c": ["a", "b"]}, scores={"s": np.arange(500.0)}
    )
    accumulator = DriftAccumulator(profile)
    for part in parts:
        accumulator.add(part, scores={"s": part["x"].to_numpy() * 100})
    whole = pd.concat(parts)
    one_shot = drift(profile, whole, scores={"s": whole["x"].to_numpy() * 100})
    assert accumulator.rows == len(whole)
    # Counts, verdicts and names agree exactly. The mean and variance tests read
    # floating-point sums, which batching may round differently in the last bits (and
    # Holm's adjustment passes that on to the family), so floats agree to 1e-9.
    assert_same_report(accumulator.report().to_dict(), one_shot.to_dict())


def test_accumulator_reset(profile: Profile, penguins: pd.DataFrame) -> None:
    accumulator = DriftAccumulator(profile)
    accumulator.add(penguins.assign(island="Atlantis"))
    assert accumulator.report().alerts == ["island"]
    accumulator.reset()
    assert accumulator.rows == 0
    assert {r.status for r in accumulator.report().results} == {"insufficient"}
    accumulator.add(penguins, scores={"score": _score(penguins)})
    assert accumulator.report().to_dict() == _check(profile, penguins).to_dict()


def test_concurrent_adds_lose_nothing(profile: Profile, penguins: pd.DataFrame) -> None:
    accumulator = DriftAccumulator(profile)
    rows = [penguins.iloc[[i]] for i in range(len(penguins))]
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        barrier.wait()
        for _ in range(3):
            for row in rows[offset::8]:
                accumulator.add(row, scores={"score": _score(row)})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tripled = pd.concat([penguins] * 3)
    assert accumulator.rows == 3 * len(penguins)
    assert_same_report(accumulator.report().to_dict(), _check(profile, tripled).to_dict())


def test_concurrent_large_batches_agree_with_one_thread(penguins: pd.DataFrame) -> None:
    # Batches from a few thousand rows are counted through per-thread scratch buffers:
    # threads adding large batches at once must count what one thread counts.
    labels = penguins["species"].to_numpy(dtype=object)
    species = ["Adelie", "Chinstrap", "Gentoo"]
    proba = np.where(labels[:, None] == np.array(species), 0.8, 0.1)
    profile = Profile.build(
        penguins.drop(columns="species"),
        categorical={"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]},
        scores={f"proba[{c}]": proba[:, i] for i, c in enumerate(species)},
    )
    rng = np.random.default_rng(0)
    batches = []
    for i in range(8):
        rows = rng.integers(0, len(penguins), 5_000 + 500 * i)
        frame = penguins.drop(columns="species").iloc[rows].reset_index(drop=True)
        frame.loc[frame.index[::97], "bill_length_mm"] = np.inf
        frame["sex"] = frame["sex"].astype("str")
        batches.append((frame, rng.dirichlet([1.0, 1.0, 1.0], len(frame)), labels[rows]))
    alone = DriftAccumulator(profile)
    for frame, scores, y in batches:
        alone.add(frame, scores=scores, y=y)
    together = DriftAccumulator(profile)
    barrier = threading.Barrier(4)

    def work(offset: int) -> None:
        barrier.wait()
        for frame, scores, y in batches[offset::4]:
            together.add(frame, scores=scores, y=y)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together.rows == alone.rows
    assert_same_report(together.report().to_dict(), alone.report().to_dict())


# -- the report -------------------------------------------------------------------------


def _plain_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_to_dict_is_plain_json(profile: Profile, penguins: pd.DataFrame) -> None:
    report = _check(profile, penguins.assign(island="Atlantis"))
    data = report.to_dict()
    assert _plain_json(data)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["alerts"] == ["island"]
    assert data["ok"] is False
    assert data["thresholds"] == {"warn": 0.01, "alert": 0.02, "min_rows": 10, "alpha": 0.05}
    assert list(data["features"]) == FEATURES
    island = data["features"]["island"]
    assert island["status"] == "alert"
    assert island["bins"] == ["Biscoe", "Dream", "Torgersen", "(unseen)", "(missing)"]
    assert island["current_counts"] == [0, 0, 0, 344, 0]


def test_to_frame(profile: Profile, penguins: pd.DataFrame) -> None:
    frame = _check(profile, penguins).to_frame()
    assert list(frame.index) == [*FEATURES, "score"]
    assert frame.index.name == "name"
    assert frame.loc["island", "kind"] == "categorical"
    assert frame.loc["score", "role"] == "score"
    assert frame["psi"].dtype == np.float64
    assert np.isnan(frame.loc["island", "out_of_range_rate"])
    assert {"status", "psi", "js", "chance_psi", "unseen_rate", "invalid_rate"} <= set(frame)


def test_repr_is_short(profile: Profile, penguins: pd.DataFrame) -> None:
    text = repr(_check(profile, penguins.assign(island="Atlantis")))
    assert text == "<DriftReport rows=344 columns=8 scores=1 alerts=['island'] warnings=[]>"


def test_to_html_is_self_contained(
    profile: Profile, penguins: pd.DataFrame, tmp_path: Path
) -> None:
    current = penguins.assign(island="Atlantis", **{"<b>&odd": 1.0})
    odd = Profile.build(
        penguins.assign(**{"<b>&odd": np.arange(344.0)}),
        categorical={c: sorted(penguins[c].dropna().unique()) for c in CATEGORICAL},
        scores={"score": _score(penguins)},
    )
    report = _check(odd, current)
    written = report.to_html(tmp_path / "drift.html")
    assert written == tmp_path / "drift.html"
    html = written.read_text(encoding="utf-8")
    assert html.count("<svg") == len(report.results) == 10
    assert "http" not in html
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert "<b>&odd" not in html
    assert "&lt;b&gt;&amp;odd" in html
    # Sorted by severity: the alerts come first.
    headings = re.findall(r"<h2>(.*?) <span class=\"badge", html)
    assert headings[0] in {"island", "&lt;b&gt;&amp;odd"}
    statuses = re.findall(r"<h2>.*?<span class=\"badge\"[^>]*>(\w+)</span>", html)
    severity = {"alert": 3, "warn": 2, "insufficient": 1, "ok": 0}
    assert [severity[s] for s in statuses] == sorted((severity[s] for s in statuses), reverse=True)


def test_by_severity_orders_by_status_then_psi(profile: Profile, penguins: pd.DataFrame) -> None:
    shifted = penguins.assign(
        bill_depth_mm=penguins["bill_depth_mm"] + 3, body_mass_g=penguins["body_mass_g"] + 900
    )
    ordered = _check(profile, shifted).by_severity()
    assert [r.status for r in ordered[:2]] == ["alert", "alert"]
    assert ordered[0].psi is not None
    assert ordered[1].psi is not None
    assert ordered[0].psi >= ordered[1].psi
