"""Workers scoring batches log nothing per batch by default; log_level asks for more."""

from __future__ import annotations

import logging
import threading

import pytest

import safemodel as sm
from safemodel.integrations.worker_logging import batch_logging, check_level

dd = pytest.importorskip("dask.dataframe")


def _policy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "safemodel" and r.levelno == logging.WARNING]


@pytest.mark.parametrize(("log_level", "lines"), [(None, 0), ("WARNING", 2), ("ERROR", 0)])
def test_dask_batches_log_only_when_asked(lr_bundle: sm.ModelBundle, penguins,
                                          caplog: pytest.LogCaptureFixture,
                                          log_level: str | None, lines: int) -> None:
    import safemodel.dask as smd

    X, _ = penguins
    changed = X.head(20).assign(island="Atlantis")  # unseen: the policy maps it to missing
    frame = dd.from_pandas(changed, npartitions=2)
    kwargs = {} if log_level is None else {"log_level": log_level}
    caplog.set_level(logging.INFO, logger="safemodel")
    scored = smd.score(lr_bundle, frame, **kwargs).compute(scheduler="sync")
    assert len(scored) == 20
    warnings = _policy_warnings(caplog)
    assert len(warnings) == lines, warnings
    assert all("unseen_to_missing" in w for w in warnings)


def test_the_threshold_holds_only_in_the_scoring_thread(
        lr_bundle: sm.ModelBundle, penguins, caplog: pytest.LogCaptureFixture) -> None:
    X, _ = penguins
    changed = X.head(5).assign(island="Atlantis")
    caplog.set_level(logging.INFO, logger="safemodel")
    other: list[int] = []
    with batch_logging(logging.ERROR):
        lr_bundle.predict(changed)  # held back
        thread = threading.Thread(target=lambda: other.append(len(lr_bundle.predict(changed))))
        thread.start()
        thread.join()
    lr_bundle.predict(changed)  # after the block: logged again
    assert other == [5]
    assert len(_policy_warnings(caplog)) == 2


@pytest.mark.parametrize("bad", ["LOUD", True, 1.5, None])
def test_log_level_is_checked(bad: object) -> None:
    with pytest.raises(sm.InvalidArgument, match="log_level"):
        check_level(bad)  # type: ignore[arg-type]
    assert check_level("info") == logging.INFO
    assert check_level(30) == logging.WARNING
