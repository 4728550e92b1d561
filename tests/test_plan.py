"""The engine-neutral part of distributed scoring: the columns every engine adds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from safemodel.core.report import ColumnAction, PolicyReport
from safemodel.integrations import plan

pytest.importorskip("pyarrow")


@pytest.mark.parametrize("columns", [3, 70])  # 70: more actions than bits in a code
def test_policy_column_gives_each_row_the_actions_that_touched_it(columns: int) -> None:
    n = 500
    rng = np.random.default_rng(columns)
    actions = []
    for c in range(columns):
        for action in ("unseen_to_missing", "imputed"):
            rows = np.flatnonzero(rng.random(n) < 0.05).tolist()
            actions.append(ColumnAction(f"c{c}", action, tuple(rows)))
    actions.append(ColumnAction("c0", "coerced from string", count=n))  # whole column
    index = pd.RangeIndex(10_000, 10_000 + n)
    texts = plan._policy_column(PolicyReport(n, tuple(actions)), index)
    expected: dict[int, dict[str, list[str]]] = {}
    for a in actions:
        for row in a.rows:
            expected.setdefault(row, {}).setdefault(a.column, []).append(a.action)
    got = {i: json.loads(t) for i, t in enumerate(texts) if not pd.isna(t)}
    assert got == expected
    assert texts.index.equals(index)
    assert texts.dtype == pd.StringDtype("pyarrow")


def test_text_column_places_texts_at_their_rows_and_nulls_elsewhere() -> None:
    index = pd.RangeIndex(6)
    placed = plan._text_column(np.array(["a", "b", "c"], dtype=object), np.array([1, 3, 4]),
                               index)
    assert placed.isna().tolist() == [True, False, True, False, False, True]
    assert placed.dropna().tolist() == ["a", "b", "c"]
    coded = plan._text_column(np.array(["x", "y"], dtype=object), np.array([0, 5]), index,
                              codes=np.array([1, 1]))
    assert coded.isna().tolist() == [False, True, True, True, True, False]
    assert coded.dropna().tolist() == ["y", "y"]
    everyone = plan._text_column(np.array(list("uvwxyz"), dtype=object), np.arange(6), index)
    assert everyone.tolist() == list("uvwxyz")
    none = plan._text_column(np.empty(0, dtype=object), np.empty(0, dtype=np.intp), index)
    assert none.isna().all()
    assert len(none) == 6
