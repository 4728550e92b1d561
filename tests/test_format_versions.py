"""Frozen bundles of every archive format version stay loadable, with the same outputs.

``tests/data/format-N/`` holds a small real bundle written by the safemodel of format
``N`` (a penguins ``LogisticRegression`` pipeline) and the ``predict_proba`` outputs it
gave on a few rows. Never regenerate these files: they are what users have on disk.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import safemodel as sm
from safemodel.io.zipbytes import pack

DATA = Path(__file__).parent / "data"
FORMAT_1 = DATA / "format-1" / "penguins-lr.safemodel"


@pytest.fixture(autouse=True)
def _no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEMODEL_SIGNING_KEY", raising=False)


def _expected(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.with_name(path.name.replace(".safemodel", ".expected.json"))
                      .read_text())


def test_format_1_loads_and_scores_exactly() -> None:
    expected = _expected(FORMAT_1)
    # Saved unsigned, before every save signed: loadable when trusted on purpose.
    with pytest.raises(sm.UntrustedBundleError, match="unsigned"):
        sm.load(FORMAT_1)
    bundle = sm.load(FORMAT_1, trust=True)
    assert bundle.fingerprint == expected["fingerprint"]
    proba = bundle.predict_proba(expected["records"])
    np.testing.assert_array_equal(proba, np.array(expected["predict_proba"]))
    info = sm.inspect(FORMAT_1)
    assert info.format_version == 1
    assert info.fingerprint == expected["fingerprint"]


def _members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def test_format_1_is_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    """The writer lays out the same members in the very same bytes, and a loaded bundle
    saves the same members again (but for the manifest's creation time), now signed."""
    original = FORMAT_1.read_bytes()
    members = _members(original)
    assert pack(members.items()) == original
    again = tmp_path / "again.safemodel"
    sm.load(FORMAT_1, trust=True).save(again)
    resaved = _members(again.read_bytes())
    assert sm.inspect(again).trusted
    del resaved["signature.json"]
    created = re.compile(rb'"created": "[^"]*"')
    assert len(created.findall(members["manifest.json"])) == 1
    assert list(resaved) == list(members)
    # profile.json is written in the profile's current JSON version (2); it must say the
    # same, and the manifest differ only by its hash (and so the fingerprint).
    from safemodel.monitoring.profile import Profile

    assert (Profile.from_dict(json.loads(resaved["profile.json"]))
            == Profile.from_dict(json.loads(members["profile.json"])))
    before, after = (json.loads(created.sub(b'"created": ""', m["manifest.json"]))
                     for m in (members, resaved))
    for manifest in (before, after):
        del manifest["members"]["profile.json"], manifest["fingerprint"]
    assert after == before
    for name, data in members.items():
        if name not in ("profile.json", "manifest.json"):
            assert resaved[name] == data, name


def test_migrations_run_in_order_up_to_the_current_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mechanism a format bump relies on: format k runs MIGRATIONS[k], [k + 1], ..."""
    from safemodel.io import formats

    assert formats.migrate(formats.FORMAT_VERSION, {"a.json": b"1"}) == {"a.json": b"1"}
    monkeypatch.setattr(formats, "FORMAT_VERSION", 3)
    monkeypatch.setattr(formats, "MIGRATIONS", {
        1: lambda m: {**m, "two.json": b"2"},
        2: lambda m: {k.replace(".json", ".txt"): v for k, v in m.items()},
    })
    assert formats.migrate(1, {"one.json": b"1"}) == {"one.txt": b"1", "two.txt": b"2"}
    assert formats.migrate(2, {"one.json": b"1"}) == {"one.txt": b"1"}
    with pytest.raises(sm.BundleFormatError, match="format 4.*Upgrade") as info:
        formats.migrate(4, {})
    assert (info.value.expected, info.value.found) == (3, 4)
