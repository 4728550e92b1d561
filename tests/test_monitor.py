"""Tests for safemodel.monitoring.monitor, against a stand-in for ModelBundle."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from helpers import assert_same_report
from safemodel.errors import InvalidArgument, SafeModelError
from safemodel.monitoring.drift import drift
from safemodel.monitoring.monitor import Monitor
from safemodel.monitoring.profile import Profile

CATEGORICAL = ["species", "island", "sex"]


class FakeBundle:
    """The two things a Monitor needs from a bundle: a profile and its scores."""

    def __init__(self, training: pd.DataFrame | None) -> None:
        self.calls = 0
        self.profile = (
            None
            if training is None
            else Profile.build(
                training,
                categorical={c: sorted(training[c].dropna().unique()) for c in CATEGORICAL},
                scores=self._scores(training),
            )
        )

    def reference_scores(self, X: pd.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        self.calls += 1
        return self._scores(X)

    @staticmethod
    def _scores(X: pd.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        mass = X["body_mass_g"].to_numpy(dtype=float, na_value=4200.0)
        heavy = 1 / (1 + np.exp(-(mass - 4200.0) / 500.0))
        return {"proba[light]": 1 - heavy, "proba[heavy]": heavy}


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.fixture
def bundle(penguins: pd.DataFrame) -> FakeBundle:
    return FakeBundle(penguins)


def test_bundle_without_profile_is_refused() -> None:
    with pytest.raises(SafeModelError, match=r"without a reference profile.*from_training"):
        Monitor(FakeBundle(None))


def test_observe_then_report_equals_drift_on_everything_observed(
    bundle: FakeBundle, penguins: pd.DataFrame
) -> None:
    monitor = Monitor(bundle)
    assert monitor.rows_observed == 0
    for start in range(0, len(penguins), 50):
        monitor.observe(penguins.iloc[start : start + 50])
    assert monitor.rows_observed == len(penguins)
    assert bundle.calls == 7  # scores computed by the bundle when not given
    assert bundle.profile is not None
    expected = drift(bundle.profile, penguins, scores=bundle.reference_scores(penguins))
    assert_same_report(monitor.report().to_dict(), expected.to_dict())
    assert monitor.report().ok


def test_given_scores_are_not_recomputed(bundle: FakeBundle, penguins: pd.DataFrame) -> None:
    monitor = Monitor(bundle)
    scores = FakeBundle._scores(penguins)
    monitor.observe(penguins, scores=np.column_stack(list(scores.values())))
    assert bundle.calls == 0
    same = Monitor(bundle)
    same.observe(penguins)
    assert monitor.report().to_dict() == same.report().to_dict()


def test_drift_is_reported_and_reset_forgets_it(bundle: FakeBundle, penguins: pd.DataFrame) -> None:
    monitor = Monitor(bundle)
    heavier = penguins.assign(body_mass_g=penguins["body_mass_g"] + 1500)
    monitor.observe(heavier)
    assert monitor.report().alerts == ["body_mass_g", "proba[light]", "proba[heavy]"]
    monitor.reset()
    assert monitor.rows_observed == 0
    monitor.observe(penguins)
    assert monitor.report().alerts == []


def test_thresholds_reach_the_report(bundle: FakeBundle, penguins: pd.DataFrame) -> None:
    monitor = Monitor(bundle, warn=2.0, alert=50.0, min_rows=500)
    monitor.observe(penguins.assign(island="Atlantis"))
    report = monitor.report()
    assert (report.warn, report.alert, report.min_rows) == (2.0, 50.0, 500)
    assert report.features["island"].status == "insufficient"  # 344 < 500 rows
    with pytest.raises(ValueError, match="warn <= alert"):
        Monitor(bundle, warn=0.5, alert=0.2)
    with pytest.raises(InvalidArgument, match="'min_rows' parameter of Monitor") as info:
        Monitor(bundle, min_rows=0)
    assert (info.value.argument, info.value.found) == ("min_rows", 0)


def test_concurrent_observers(bundle: FakeBundle, penguins: pd.DataFrame) -> None:
    monitor = Monitor(bundle)
    batches = [penguins.iloc[i : i + 7] for i in range(0, len(penguins), 7)]

    def work(offset: int) -> None:
        for batch in batches[offset::4]:
            monitor.observe(batch)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert monitor.rows_observed == len(penguins)
    single = Monitor(bundle)
    single.observe(penguins)
    assert_same_report(monitor.report().to_dict(), single.report().to_dict())


def test_repr(bundle: FakeBundle) -> None:
    assert repr(Monitor(bundle)) == "<Monitor rows_observed=0 warn=0.01 alert=0.02>"


def test_records_are_accepted(bundle: FakeBundle, penguins: pd.DataFrame) -> None:
    as_records = Monitor(bundle)
    as_records.observe(penguins.to_dict("records"))
    as_records.observe(penguins.iloc[0].to_dict())  # one row
    as_frame = Monitor(bundle)
    as_frame.observe(penguins)
    as_frame.observe(penguins.iloc[[0]])
    assert as_records.rows_observed == as_frame.rows_observed == len(penguins) + 1
    assert as_records.report().to_dict() == as_frame.report().to_dict()
