"""``safemodel.diff(a, b)``: the bundle diff as a library (the CLI only prints it)."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm


def test_same_bundle_has_no_differences(lr_bundle: sm.ModelBundle) -> None:
    d = sm.diff(lr_bundle, lr_bundle)
    assert isinstance(d, sm.BundleDiff)
    assert d.same_content
    assert d.contract == {"added": [], "removed": [], "changed": {}}
    assert d.policy == {}
    assert d.environment == {}
    assert d.methods == {"added": [], "removed": []}
    assert d.outputs["scored_by_both"] == d.outputs["rows"] == len(lr_bundle.golden.inputs)
    for result in d.outputs["methods"].values():
        assert result["rows_differing"] == 0
        assert result["max_abs_diff"] is None
    text = d.describe()
    assert "Same content" in text
    assert "path" not in text.splitlines()[0]          # no file known: no path column
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.policy = {}  # type: ignore[misc]


def test_other_estimator_and_policy(lr_bundle: sm.ModelBundle, hgb_pipe: Pipeline,
                                    penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    other = sm.ModelBundle.from_training(hgb_pipe, penguins[0], name="penguins-hgb",
                                         version="2.0.0", golden_rows=16,
                                         policy=sm.Policy(missing="passthrough"))
    d = sm.diff(lr_bundle, other)
    assert not d.same_content
    assert d.a["version"] == "1.0.0"
    assert d.b == {"name": "penguins-hgb", "version": "2.0.0",
                   "fingerprint": other.fingerprint, "path": None}
    assert d.policy == {"missing": ["impute", "passthrough"]}
    proba = d.outputs["methods"]["predict_proba"]
    assert 0 < proba["rows_differing"] <= proba["rows_compared"]
    assert proba["max_abs_diff"] > 0
    example = proba["examples"][0]
    assert set(example) == {"row", "a", "b"}
    assert len(proba["examples"]) <= 3
    # to_dict is JSON-ready without help, and the text names what changed.
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert data["same_content"] is False
    assert data["policy"] == {"missing": ["impute", "passthrough"]}
    assert "missing: impute -> passthrough" in d.describe()
