"""The server's request-path shortcuts, in process: each agrees with the slow path it skips.

The whole-batch pre-check of instances must accept only what the record-by-record
check accepts (a differential hypothesis test, as for the fast contract engine), and
drift observation off the request path must never block a request, count what it
drops, and still show every answered batch to a read of drift.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safemodel as sm
from helpers import record

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from safemodel.errors import ContractViolation  # noqa: E402
from safemodel.integrations.serve.limits import Limits  # noqa: E402
from safemodel.integrations.serve.observer import DriftObserver  # noqa: E402
from safemodel.integrations.serve.protocol import (  # noqa: E402
    HTTPProblem,
    _check_each,
    _plainly_valid,
    check_instances,
)

NAMES = frozenset({"a", "b"})
LIMITS = Limits(max_columns=4, max_string_length=8, max_echo=20)


def outcome(check: Any, instances: list[Any]) -> Any:
    """What a check does with ``instances``: nothing, a 413, or the contract failures."""
    try:
        check(instances, NAMES, LIMITS)
    except HTTPProblem as problem:
        return ("problem", problem.status, problem.extra)
    except ContractViolation as exc:
        return ("violation", [f.to_dict() for f in exc.failures])
    return None


# Values around every edge the record-by-record check looks at: types JSON gives and
# some it never does, int64 bounds, string and key lengths, nesting.
scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30]),
    st.integers(), st.text(max_size=10), st.sampled_from(["s" * 8, "s" * 9]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.text(max_size=2), scalars, max_size=2),
                   st.sampled_from([(1, 2), b"x", 1j]))
keys = st.one_of(st.sampled_from(["a", "b", "c", "k" * 8, "k" * 9]), st.text(max_size=10))
records = st.one_of(st.dictionaries(keys, values, max_size=6),
                    st.fixed_dictionaries({"a": scalars, "b": scalars}),
                    values)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=5))
def test_whole_batch_check_accepts_only_what_each_record_check_accepts(
        instances: list[Any]) -> None:
    slow = outcome(_check_each, instances)
    if _plainly_valid(instances, NAMES, LIMITS):
        assert slow is None
    assert outcome(check_instances, instances) == slow


def test_a_clean_batch_takes_the_whole_batch_path(
        penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    rows = json.loads(json.dumps([record(penguins[0], i) for i in range(0, 300, 3)]))
    names = frozenset(rows[0])
    assert _plainly_valid(rows, names, Limits())
    assert _plainly_valid([], names, Limits())
    for fault in ({"year": 2**63}, {"year": -(2**63) - 1}, {"sex": [1]}, {"sex": {}},
                  {"island": "x" * 10_001}, {"k" * 10_001: 1}):
        assert not _plainly_valid([*rows, rows[0] | fault], names, Limits()), fault
    assert not _plainly_valid([*rows, {}], names, Limits())
    assert not _plainly_valid([*rows, []], names, Limits())
    assert not _plainly_valid(rows, names | {"extra"}, Limits())
    assert not _plainly_valid([dict(enumerate(range(1001)))], frozenset(), Limits())


# ------------------------------------------------------------------ drift observer


class SlowMonitor:
    """Stands in for a Monitor: blocks in ``observe`` until released, records batches."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.release = threading.Event()
        self.seen: list[int] = []
        self.fail_on = fail_on

    def observe(self, frame: Any, scores: Any = None) -> None:
        self.release.wait(30)
        if len(frame) == self.fail_on:
            raise RuntimeError("a bad batch")
        self.seen.append(len(frame))


def test_observer_never_blocks_and_counts_what_it_drops() -> None:
    observer = DriftObserver(capacity=10)
    monitor = SlowMonitor()
    try:
        assert observer.submit(monitor, [0] * 4, None)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while observer._waiting_rows and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker took the first batch and is stuck observing it
        assert observer.submit(monitor, [0] * 6, None)  # type: ignore[arg-type]
        assert observer.submit(monitor, [0] * 4, None)  # type: ignore[arg-type]
        assert not observer.submit(monitor, [0] * 3, None)  # type: ignore[arg-type]
        assert not observer.submit(monitor, [0] * 5, None)  # type: ignore[arg-type]
        assert observer.dropped(monitor) == 8  # type: ignore[arg-type]
        assert not observer.flush(0.05)  # still stuck
    finally:
        monitor.release.set()
    assert observer.flush(10)
    assert monitor.seen == [4, 6, 4]
    observer.stop()


def test_observer_takes_one_batch_of_any_size_and_survives_a_failing_one() -> None:
    observer = DriftObserver(capacity=10)
    monitor = SlowMonitor(fail_on=3)
    monitor.release.set()
    assert observer.submit(monitor, [0] * 50, None)  # type: ignore[arg-type]
    assert observer.flush(10)
    assert observer.submit(monitor, [0] * 3, None)  # type: ignore[arg-type]
    assert observer.submit(monitor, [0] * 2, None)  # type: ignore[arg-type]
    assert observer.flush(10)
    assert monitor.seen == [50, 2]
    observer.stop()
    assert observer.submit(monitor, [0] * 1, None)  # type: ignore[arg-type]
    assert observer.flush(10)  # a submit after stop starts a worker again
    assert monitor.seen == [50, 2, 1]
    observer.stop()
    with pytest.raises(ValueError, match="capacity"):
        DriftObserver(capacity=0)
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match="batch_rows"):
            DriftObserver(batch_rows=bad)  # type: ignore[arg-type]


def test_a_read_of_drift_includes_every_answered_batch(
        tmp_path: Path, lr_bundle: sm.ModelBundle,
        penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    from safemodel.serve import create_app

    store = sm.BundleStore(tmp_path / "store")
    store.put(lr_bundle)
    store.promote(lr_bundle.name, "1.0.0")
    app = create_app(store)
    url = f"/v1/models/{lr_bundle.name}"

    async def session() -> tuple[dict[str, Any], str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            deadline = time.monotonic() + 60
            while (await client.get("/readyz")).status_code != 200 \
                    and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for i in range(20):
                rows = [record(penguins[0], j) for j in range(i, i + 7)]
                r = await client.post(url + ":predict", json={"instances": rows})
                assert r.status_code == 200
            drift = (await client.get(url + "/drift")).json()
            return drift, (await client.get("/metrics")).text

    try:
        drift, metrics = asyncio.run(session())
    finally:
        app.state.server.stop()
    assert drift["rows"] == 140
    assert drift["dropped_rows"] == 0
    assert f'safemodel_drift_rows{{model="{lr_bundle.name}",version="1.0.0"}} 140.0' in metrics


# Records as a JSON body gives them: the penguins columns, sometimes absent, null, of
# another JSON type, or a category the model never saw.
ISLANDS = ["Biscoe", "Dream", "Torgersen", "Atlantis", None]
request_records = st.lists(st.fixed_dictionaries({}, optional={
    "island": st.sampled_from(ISLANDS),
    "bill_length_mm": st.one_of(st.none(), st.floats(30, 60), st.integers(30, 60)),
    "bill_depth_mm": st.one_of(st.none(), st.floats(13, 22)),
    "flipper_length_mm": st.one_of(st.none(), st.integers(170, 235), st.just("long")),
    "body_mass_g": st.floats(2700, 6300),
    "sex": st.sampled_from(["male", "female", None]),
    "year": st.sampled_from([2007, 2008, 2009, 2011]),
}), min_size=1, max_size=3)


def _held(observer: DriftObserver) -> SlowMonitor:
    """Occupy the worker with a blocked batch, so what is submitted next waits together."""
    blocker = SlowMonitor()
    assert observer.submit(blocker, [0], None)  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while observer._waiting_rows and time.monotonic() < deadline:
        time.sleep(0.005)
    return blocker


def _state(monitor: sm.Monitor) -> tuple[Any, ...]:
    counts = monitor._counts
    return (monitor.rows_observed, counts._counts.tolist(), counts._performance._sums,
            counts._performance._bins.tolist())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request_records, min_size=2, max_size=25), st.integers(1, 40))
def test_joined_batches_count_exactly_as_one_by_one(
        lr_bundle: sm.ModelBundle, requests: list[list[dict[str, Any]]], batch_rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(len(requests))
    frames = [pd.DataFrame(records) for records in requests]
    scores = [rng.dirichlet([1, 1, 1], len(frame)) for frame in frames]
    alone, joined = sm.Monitor(lr_bundle), sm.Monitor(lr_bundle)
    for frame, proba in zip(frames, scores, strict=True):
        alone.observe(frame, scores=proba)
    calls: list[int] = []
    observe = joined.observe
    joined.observe = lambda X, scores=None: (calls.append(len(X)),  # type: ignore[method-assign]
                                             observe(X, scores=scores))[1]
    observer = DriftObserver(batch_rows=batch_rows)
    blocker = _held(observer)
    for frame, proba in zip(frames, scores, strict=True):
        assert observer.submit(joined, frame, proba)
    blocker.release.set()
    assert observer.flush(30)
    observer.stop()
    assert _state(joined) == _state(alone)
    np.testing.assert_allclose(joined._counts._sums, alone._counts._sums, rtol=1e-12, atol=1e-9)
    assert sum(calls) == sum(len(f) for f in frames)
    assert max(calls) <= max(batch_rows, max(len(f) for f in frames))
    keys = [(tuple(f.columns), tuple(f.dtypes)) for f in frames]
    if batch_rows >= 6 and len(set(keys)) < len(keys):
        assert len(calls) < len(frames)  # some batches were joined


def test_a_bad_batch_in_a_joined_group_loses_only_itself(
        lr_bundle: sm.ModelBundle, penguins: tuple[pd.DataFrame, pd.Series],
        caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np

    X = penguins[0].dropna().iloc[:30].reset_index(drop=True)
    frames = [X.iloc[[i]].reset_index(drop=True) for i in range(30)]
    scores = [lr_bundle.predict_proba(f) for f in frames]
    scores[7] = np.vstack([scores[7], scores[7]])  # two score rows for one input row
    monitor, expected = sm.Monitor(lr_bundle), sm.Monitor(lr_bundle)
    for i, (frame, proba) in enumerate(zip(frames, scores, strict=True)):
        if i != 7:
            expected.observe(frame, scores=proba)
    observer = DriftObserver()
    blocker = _held(observer)
    for frame, proba in zip(frames, scores, strict=True):
        assert observer.submit(monitor, frame, proba)
    with caplog.at_level("ERROR", logger="safemodel.serve"):
        blocker.release.set()
        assert observer.flush(30)
    observer.stop()
    assert monitor.rows_observed == 29
    assert _state(monitor) == _state(expected)
    assert [r.getMessage() for r in caplog.records] == [
        "observing a batch of 1 rows for drift failed"]


def test_batches_left_out_of_a_join_keep_their_order(lr_bundle: sm.ModelBundle) -> None:
    import numpy as np

    class Recorder:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def observe(self, frame: Any, scores: Any = None) -> None:
            self.seen.extend(frame["i"].tolist())

    joined, other = Recorder(), Recorder()
    observer = DriftObserver()
    blocker = _held(observer)
    for i in range(12):
        frame = pd.DataFrame({"i": [i]})
        # Even batches for one monitor (joined), odd ones for another, each alone (its
        # scores are not joinable): the odd ones must still come in submission order.
        monitor, scores = (joined, np.zeros((1, 2))) if i % 2 == 0 else (other, None)
        assert observer.submit(monitor, frame, scores)  # type: ignore[arg-type]
    blocker.release.set()
    assert observer.flush(10)
    observer.stop()
    assert joined.seen == [0, 2, 4, 6, 8, 10]
    assert other.seen == [1, 3, 5, 7, 9, 11]


def test_batches_that_cannot_be_compared_are_observed_alone(
        lr_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while deciding what to join loses no batch and stalls no flush."""
    import numpy as np

    from safemodel.integrations.serve import observer as observer_module

    def cannot_compare(batch: Any) -> Any:
        raise TypeError("columns that do not compare")

    monkeypatch.setattr(observer_module._Batch, "join_key", property(cannot_compare))
    monitor = sm.Monitor(lr_bundle)
    observer = DriftObserver()
    blocker = _held(observer)
    frame = pd.DataFrame([{"island": "Dream", "sex": "male", "year": 2008}])
    for _ in range(5):
        assert observer.submit(monitor, frame, np.full((1, 3), 1 / 3))
    blocker.release.set()
    assert observer.flush(10)
    observer.stop()
    assert monitor.rows_observed == 5
