"""Tests for safemodel.monitoring.profile: the reference profile stored in a bundle."""

from __future__ import annotations

import copy
import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from palmerpenguins import load_penguins
from scipy import stats

from safemodel.errors import BundleFormatError, InvalidArgument
from safemodel.monitoring.drift import DriftAccumulator, drift
from safemodel.monitoring.profile import (
    CategoricalProfile,
    Moments,
    NumericProfile,
    Profile,
    TextProfile,
)

CATEGORICAL = ["species", "island", "sex"]


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.fixture(scope="module")
def profile(penguins: pd.DataFrame) -> Profile:
    return Profile.build(penguins, categorical=_categories(penguins))


def _categories(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: sorted(frame[c].dropna().unique().tolist()) for c in CATEGORICAL}


def _roundtrip(profile: Profile) -> Profile:
    """Through JSON text, as a bundle stores it: profile.json and profile-moments.json."""
    stored, moments = (json.loads(json.dumps(d, allow_nan=False))
                       for d in (profile.to_dict(), profile.moments_to_dict()))  # fmt: skip
    return Profile.from_dict(stored, moments=moments)


# -- building ---------------------------------------------------------------------------


def test_every_column_is_profiled_in_order(penguins: pd.DataFrame, profile: Profile) -> None:
    assert list(profile.features) == list(penguins.columns)
    assert profile.rows == len(penguins) == 344
    assert profile.scores == {}
    for entry in profile.features.values():
        assert entry.rows == profile.rows


def test_categorical_counts_are_exact(penguins: pd.DataFrame, profile: Profile) -> None:
    sex = profile.features["sex"]
    assert isinstance(sex, CategoricalProfile)
    assert sex.categories == ("female", "male")
    assert sex.frequencies == penguins["sex"].value_counts().to_dict()
    assert sex.missing == 11
    assert sex.unseen == 0
    assert sex.missing_rate == pytest.approx(11 / 344)


def test_numeric_edges_are_quantiles_spanning_the_range(
    penguins: pd.DataFrame, profile: Profile
) -> None:
    bill = profile.features["bill_length_mm"]
    assert isinstance(bill, NumericProfile)
    values = penguins["bill_length_mm"].dropna()
    assert bill.min == values.min()
    assert bill.max == values.max()
    assert len(bill.edges) == 11
    assert all(a < b for a, b in zip(bill.edges, bill.edges[1:], strict=False))
    assert bill.missing == 2
    # Quantile bins hold about a tenth of the rows each.
    assert all(25 <= c <= 45 for c in bill.counts)
    # Counts match a direct count with the documented bin semantics.
    edges = np.asarray(bill.edges)
    expected = [((values >= lo) & (values < hi)).sum() for lo, hi in pairwise(edges)]
    expected[-1] += int((values == edges[-1]).sum())
    assert list(bill.counts) == expected


def test_discrete_numeric_column_gets_one_bin_per_value(profile: Profile) -> None:
    year = profile.features["year"]
    assert isinstance(year, NumericProfile)
    assert year.edges == (2007.0, 2007.5, 2008.5, 2009.0)
    assert year.counts == (110, 114, 120)


def test_inner_edges_read_cleanly_in_json() -> None:
    frame = pd.DataFrame({"x": np.linspace(0.1, 0.7, 1000) ** 2})
    x = Profile.build(frame, categorical={}).features["x"]
    assert isinstance(x, NumericProfile)
    assert all(len(repr(e)) <= 9 for e in x.edges[1:-1]), x.edges
    # The outer edges are the exact extremes, however they print.
    assert x.edges[-1] == frame["x"].max()


def test_constant_and_always_missing_columns() -> None:
    frame = pd.DataFrame({"c": [3.0] * 5 + [np.nan], "m": [np.nan] * 6})
    profile = Profile.build(frame, categorical={})
    assert profile.features["c"] == NumericProfile(
        edges=(3.0, 3.0), counts=(5,), missing=1, moments=Moments(5, 3.0, 0.0, 0.0, 0.0)
    )
    assert profile.features["m"] == NumericProfile(edges=(), counts=(), missing=6)
    assert profile.features["m"].min is None
    assert _roundtrip(profile) == profile


def test_numeric_dtypes_nullable_bool_and_datetime() -> None:
    stamps = pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"])
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "f": pd.array([0.5, 1.5, None, 2.5], dtype="Float64"),
            "b": pd.array([True, False, None, True], dtype="boolean"),
            "flag": [True, False, False, True],
            "when": stamps,
            "when_utc": stamps.tz_localize("Europe/Paris"),
        }
    )
    profile = Profile.build(frame, categorical={})
    numeric = {k: v for k, v in profile.features.items() if isinstance(v, NumericProfile)}
    assert numeric == profile.features
    assert numeric["i"].missing == 1
    assert numeric["b"].edges == (0.0, 0.5, 1.0)
    assert numeric["b"].counts == (1, 2)
    assert numeric["flag"].counts == (2, 2)
    assert numeric["when"].missing == 1
    assert numeric["when"].min == pd.Timestamp("2024-01-01").value  # ns since the epoch
    assert numeric["when_utc"].max == pd.Timestamp("2024-01-03T23:00").value
    assert _roundtrip(profile) == profile


def test_text_columns_record_presence_only() -> None:
    frame = pd.DataFrame({"note": ["a", None, "free text", "zz"], "x": [1, 2, 3, 4]})
    profile = Profile.build(frame, categorical={})
    assert profile.features["note"] == TextProfile(present=3, missing=1)
    assert profile.features["note"].to_dict() == {"kind": "text", "present": 3, "missing": 1}


def test_categories_keep_their_types_and_order() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 2, 3],
            "c": pd.Categorical(["b", "a", None, "a"], categories=["b", "a"]),
            "extra": ["x", "y", "q", "x"],
        }
    )
    profile = Profile.build(
        frame, categorical={"n": [3, 2, 1], "c": ["b", "a"], "extra": ["x", "y"]}
    )
    assert profile.features["n"] == CategoricalProfile(categories=(3, 2, 1), counts=(1, 2, 1))
    assert profile.features["c"] == CategoricalProfile(("b", "a"), (1, 2), missing=1)
    # A training value outside the given set is counted, not dropped.
    assert profile.features["extra"] == CategoricalProfile(("x", "y"), (2, 1), unseen=1)
    assert _roundtrip(profile) == profile


def test_scores_numeric_and_labels() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0)})
    profile = Profile.build(
        frame,
        categorical={},
        scores={
            "proba[yes]": np.linspace(0, 1, 20),
            "prediction": np.array(["yes", "no"] * 10),
        },
    )
    assert isinstance(profile.scores["proba[yes]"], NumericProfile)
    assert profile.scores["prediction"] == CategoricalProfile(("no", "yes"), (10, 10))
    assert _roundtrip(profile) == profile


def test_profile_stays_small_whatever_the_rows() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame({f"x{i}": rng.normal(i, 1 + i, n) for i in range(7)})
    for i in range(3):
        frame[f"c{i}"] = rng.choice([f"level-{j}" for j in range(12)], n)
    profile = Profile.build(
        frame,
        categorical={f"c{i}": [f"level-{j}" for j in range(12)] for i in range(3)},
        scores={"proba[a]": rng.random(n), "proba[b]": rng.random(n)},
    )
    size = len(json.dumps(profile.to_dict()))
    assert size < 20_000, size


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bins": 0}, InvalidArgument, "'bins' parameter of Profile.build must be an integer"),
        ({"categorical": {"nope": ["a"]}}, InvalidArgument, "'nope'"),
        ({"categorical": {"c": [["a"]]}}, InvalidArgument, "JSON scalars"),
        ({"categorical": {"c": ["a", "a"]}}, InvalidArgument, "repeat"),
        ({"scores": {"s": np.zeros(2)}}, InvalidArgument, "one value per row"),
        ({"scores": {"s": np.zeros((3, 2))}}, InvalidArgument, "multi-output"),
    ],
)
def test_build_rejects_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    arguments: dict[str, Any] = {"categorical": {"c": ["a", "b"]}, **kwargs}
    with pytest.raises(error, match=match):
        Profile.build(frame, **arguments)


def test_build_rejects_non_string_names() -> None:
    with pytest.raises(InvalidArgument, match="strings"):
        Profile.build(pd.DataFrame({0: [1.0]}), categorical={})


def test_infinities_in_training_are_counted_as_invalid() -> None:
    # The contract allows infinities when training had them, so the profile must too:
    # they go to the "invalid" count, where production infinities land, and the edges
    # stay finite.
    x = Profile.build(pd.DataFrame({"x": [1.0, np.inf, 2.0, -np.inf, np.nan]}), categorical={})
    entry = x.features["x"]
    # Moments describe the finite values only.
    assert entry == NumericProfile(edges=(1.0, 1.5, 2.0), counts=(1, 1), missing=1, invalid=2,
                                   moments=Moments(2, 1.5, 0.25, 0.0, 0.0625))  # fmt: skip
    assert _roundtrip(x) == x


# -- JSON form --------------------------------------------------------------------------


def test_json_shape(profile: Profile) -> None:
    data = profile.to_dict()
    assert data["version"] == 2
    assert set(data) == {"version", "rows", "features", "scores"}
    assert data["features"]["island"] == {
        "kind": "categorical",
        "categories": ["Biscoe", "Dream", "Torgersen"],
        "counts": [168, 124, 52],
        "unseen": 0,
        "missing": 0,
    }
    assert set(data["features"]["body_mass_g"]) == {
        "kind", "edges", "counts", "missing", "invalid"
    }
    assert data["features"]["body_mass_g"]["kind"] == "number"


def test_round_trip_penguins(profile: Profile) -> None:
    assert _roundtrip(profile) == profile


_scalars = st.one_of(
    st.text(max_size=5),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, list[Any]]]:
    n = draw(st.integers(0, 40))
    floats = st.one_of(
        st.none(), st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.0, 1.5, -2.0])
    )
    columns: dict[str, Any] = {
        "num": pd.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype="Float64"),
        "int": draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)),
    }
    categories = draw(st.lists(_scalars, min_size=1, max_size=6, unique=True))
    values = st.one_of(st.none(), st.sampled_from(categories), _scalars)
    columns["cat"] = pd.Series(draw(st.lists(values, min_size=n, max_size=n)), dtype=object)
    return pd.DataFrame(columns), {"cat": categories}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.integers(1, 12))
def test_round_trip_is_exact(data: tuple[pd.DataFrame, dict[str, list[Any]]], bins: int) -> None:
    frame, categorical = data
    scores = {"proba[x]": np.linspace(0.0, 1.0, len(frame)) ** 3}
    profile = Profile.build(frame, categorical=categorical, scores=scores, bins=bins)
    again = _roundtrip(profile)
    assert again == profile
    assert again.to_dict() == profile.to_dict()
    for entry in profile.features.values():
        assert entry.rows == len(frame)
    num = profile.features["num"]
    assert isinstance(num, NumericProfile)
    assert len(num.counts) <= bins


def _damaged(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()
GOOD: dict[str, Any] = {
    "version": 1,
    "rows": 4,
    "features": {
        "x": {"kind": "numeric", "edges": [0.0, 1.0, 2.0], "counts": [2, 1], "missing": 1},
        "c": {
            "kind": "categorical",
            "categories": ["a", 1],
            "counts": [3, 0],
            "unseen": 0,
            "missing": 1,
        },
        "t": {"kind": "text", "present": 4, "missing": 0},
    },
    "score": {"p": {"kind": "numeric", "edges": [0.5, 0.5], "counts": [4], "missing": 0}},
}
GOOD_V2: dict[str, Any] = {
    "version": 2,
    "rows": 4,
    "features": {
        "x": {
            "kind": "number", "edges": [0.0, 1.0, 2.0], "counts": [2, 1], "missing": 1,
            "invalid": 0,
        },
        "c": GOOD["features"]["c"],
        "t": GOOD["features"]["t"],
    },
    "scores": {
        "p": {"kind": "number", "edges": [0.5, 0.5], "counts": [4], "missing": 0, "invalid": 0}
    },
}


def test_good_sample_loads() -> None:
    # GOOD is a version 1 profile (safemodel 0.1 bundles): it still loads, and is
    # written back as version 2 with the same content.
    profile = Profile.from_dict(GOOD)
    assert profile.to_dict() == GOOD_V2
    assert Profile.from_dict(GOOD_V2) == profile
    assert profile.features["c"] == CategoricalProfile(("a", 1), (3, 0), missing=1)
    assert profile.features["x"] == NumericProfile((0.0, 1.0, 2.0), (2, 1), missing=1)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("version", 3, "version"),
        ("version", _DELETE, "version"),
        ("rows", -1, "rows"),
        ("rows", True, "rows"),
        ("features", [], "features"),
        ("features.x.kind", "histogram", "features.x.kind"),
        ("features.x.edges", [0.0, 2.0, 1.0], "features.x.edges"),
        ("features.x.edges", [0.0, "1", 2.0], "features.x.edges"),
        ("features.x.counts", [2, 1, 0], "features.x.counts"),
        ("features.x.counts", [3, 1], "features.x"),  # adds up to 5 rows, not 4
        ("features.x.missing", 0.5, "features.x.missing"),
        ("features.x.extra", 1, "features.x.extra"),
        ("features.c.categories", ["a", "a"], "features.c.categories"),
        ("features.c.categories", ["a", None], "features.c.categories"),
        ("features.c.unseen", _DELETE, "features.c.unseen"),
        ("features.t", "text", "features.t"),
        ("score.p.edges", [0.5, 0.5, 0.5], "score.p.edges"),
        ("scores", {}, "scores"),  # a version 1 profile names its scores "score"
        ("features.x.kind", "number", "features.x.kind"),  # version 1 says "numeric"
    ],
)
def test_from_dict_names_the_bad_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(BundleFormatError, match=f"'{field}'") as info:
        Profile.from_dict(_damaged(path, value))
    assert "rebuild the bundle" in str(info.value)
    assert info.value.expected


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(BundleFormatError, match="'profile'"):
        Profile.from_dict([])  # type: ignore[arg-type]


def test_rates_of_an_empty_profile_are_zero() -> None:
    profile = Profile.build(pd.DataFrame({"x": pd.Series([], dtype=float)}), categorical={})
    assert profile.rows == 0
    assert profile.features["x"].missing_rate == 0.0
    assert not math.isnan(profile.features["x"].missing_rate)


# -- moments ------------------------------------------------------------------------------

MAIN_V2 = Path(__file__).parent / "data" / "profile-v2-main.json"


def test_moments_are_those_of_the_present_finite_training_values(penguins: pd.DataFrame) -> None:
    profile = Profile.build(penguins, categorical=_categories(penguins))
    entry = profile.features["body_mass_g"]
    assert isinstance(entry, NumericProfile)
    assert entry.moments is not None
    values = penguins["body_mass_g"].dropna().to_numpy(dtype=np.float64)
    assert entry.moments.count == len(values) == sum(entry.counts)
    assert entry.moments.mean == pytest.approx(values.mean(), rel=1e-12)
    assert entry.moments.variance == pytest.approx(values.var(), rel=1e-12)
    d = values - values.mean()
    assert entry.moments.m3 == pytest.approx((d**3).mean(), rel=1e-9)
    assert entry.moments.m4 == pytest.approx((d**4).mean(), rel=1e-12)
    assert entry.moments.kurtosis == pytest.approx(stats.kurtosis(values, fisher=False))
    assert entry.moments.skewness == pytest.approx(stats.skew(values))
    # Scores are profiled without moments: they follow the inputs.
    scored = Profile.build(penguins[["body_mass_g"]], categorical={},
                           scores={"s": np.arange(len(penguins), dtype=float)})  # fmt: skip
    assert scored.scores["s"].moments is None  # type: ignore[union-attr]


def test_moments_round_trip_in_their_own_document(profile: Profile) -> None:
    moments = profile.moments_to_dict()
    assert moments is not None
    assert set(moments["features"]) == {"bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                        "body_mass_g", "year"}  # fmt: skip
    # profile.json keeps the form readers from before moments accept (no new field).
    assert "moments" not in json.dumps(profile.to_dict())
    assert _roundtrip(profile) == profile
    without = Profile.from_dict(profile.to_dict())
    assert all(getattr(e, "moments", None) is None for e in without.features.values())


def test_a_profile_written_by_the_previous_release_loads_without_moments(
    penguins: pd.DataFrame,
) -> None:
    # Frozen: written by safemodel main before moments (profile version 2). It loads
    # unchanged, its numeric entries have no moments, and drift skips the moment tests.
    old = Profile.from_dict(json.loads(MAIN_V2.read_text(encoding="utf-8")))
    frame = penguins.drop(columns=["species"])
    categories = _categories(penguins)
    current = Profile.build(frame, categorical={c: categories[c] for c in ("island", "sex")})
    assert old.to_dict() == current.to_dict()
    assert old.moments_to_dict() is None
    shifted = frame.assign(body_mass_g=frame["body_mass_g"] * 1.3)
    report = drift(old, shifted)
    names = {t.name for r in report.results for t in r.tests}
    assert names.isdisjoint({"mean", "variance"})
    assert "body_mass_g" in report.alerts
    names = {t.name for t in drift(current, shifted).features["body_mass_g"].tests}
    assert "mean" in names
    assert "variance" not in names  # needs 2,000 reference rows; penguins has 342


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("features", "body_mass_g", "count"), 3, "count"),
        (("features", "body_mass_g", "variance"), -1.0, "variance"),
        (("features", "body_mass_g", "mean"), "heavy", "mean"),
        (("features", "island"), dict.fromkeys(["mean", "variance", "m3", "m4"], 0.0), "island"),
        (("features", "body_mass_g", "median"), 1.0, "median"),
        (("version",), 2, "version"),
    ],
)
def test_damaged_moments_name_the_field(
    profile: Profile, path: tuple[str, ...], value: Any, field: str
) -> None:
    moments = json.loads(json.dumps(profile.moments_to_dict()))
    target = moments
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BundleFormatError, match=field):
        Profile.from_dict(profile.to_dict(), moments=moments)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=80),
    st.lists(st.integers(0, 80), max_size=4),
)
def test_batch_moments_merged_equal_moments_of_the_concatenation(
    values: list[float], cuts: list[int]
) -> None:
    reference = Profile.build(pd.DataFrame({"x": np.linspace(-3, 3, 101)}), categorical={})
    accumulator = DriftAccumulator(reference)
    data = np.array(values)
    bounds = sorted({min(c, len(data)) for c in cuts})
    for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True):
        accumulator.add(pd.DataFrame({"x": data[a:b]}))
    n, s1, s2 = accumulator._sums[:3]  # the monitor's running sums
    centre = reference.features["x"].moments.mean  # type: ignore[union-attr]
    assert n == len(data)
    mean = centre + s1 / n
    variance = (s2 - s1 * s1 / n) / (n - 1)
    scale = max(1.0, float(np.abs(data).max()))
    assert mean == pytest.approx(data.mean(), abs=1e-9 * scale)
    assert variance == pytest.approx(data.var(ddof=1), rel=1e-7, abs=1e-9 * scale**2)
