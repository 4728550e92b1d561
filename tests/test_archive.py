"""The bundle file: integrity before unpickling, clear errors, atomic saves."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

import safemodel as sm
from safemodel.io import archive, unpickling
from safemodel.io.zipbytes import ZipWriter, pack


def members_of(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rehash(members: dict[str, bytes]) -> dict[str, bytes]:
    """The manifest's hashes recomputed: what anyone who can write the file can do."""
    import hashlib

    from safemodel.core.fingerprint import fingerprint_of

    manifest = json.loads(members["manifest.json"])
    hashes = {n: hashlib.sha256(d).hexdigest() for n, d in members.items()
              if n not in ("manifest.json", "signature.json")}
    manifest["members"] = {n: {"sha256": h, "size": len(members[n])} for n, h in hashes.items()}
    manifest["fingerprint"] = fingerprint_of(hashes)
    unsigned = {n: d for n, d in members.items() if n != "signature.json"}
    return {**unsigned, "manifest.json": json.dumps(manifest).encode()}


@pytest.fixture
def no_unpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> object:
        raise AssertionError("unpickled bytes that were not verified")

    monkeypatch.setattr(archive, "_unpickle", refuse)


def test_every_byte_flip_is_refused_before_unpickling(
    lr_bundle_path: Path, tmp_path: Path, no_unpickle: None
) -> None:
    data = lr_bundle_path.read_bytes()
    target = tmp_path / "flipped.safemodel"
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        target.write_bytes(flipped)
        with pytest.raises(sm.SafeModelError):
            sm.load(target)


@pytest.mark.parametrize("cut", [0, 1, 10, 100, 1000, -1, -22, -100])
def test_truncated_files_are_refused(lr_bundle_path: Path, tmp_path: Path, cut: int,
                                     no_unpickle: None) -> None:
    data = lr_bundle_path.read_bytes()
    target = tmp_path / "cut.safemodel"
    target.write_bytes(data[:cut])
    with pytest.raises(sm.SafeModelError) as info:
        sm.load(target)
    assert isinstance(info.value, sm.BundleFormatError | sm.IntegrityError)


@pytest.mark.parametrize("content", [b"", b"hello", os.urandom(4096), b"PK\x03\x04" + b"\0" * 40])
def test_files_that_are_not_bundles(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "x.safemodel"
    target.write_bytes(content)
    with pytest.raises(sm.BundleFormatError, match="not"):
        sm.load(target)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(sm.BundleFormatError, match="does not exist"):
        sm.load(tmp_path / "nope.safemodel")
    with pytest.raises(sm.BundleFormatError, match="folder"):
        sm.load(tmp_path)


def _rewrite(src: Path, dst: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite an archive canonically with ``edit(name, data) -> data | None``."""
    with zipfile.ZipFile(src) as zin:
        members = [(info.filename, edit(info.filename, zin.read(info)))
                   for info in zin.infolist()]
    dst.write_bytes(pack([(name, data) for name, data in members if data is not None]))


def test_zip_without_manifest(lr_bundle_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.safemodel"
    _rewrite(lr_bundle_path, target, lambda n, d: None if n == "manifest.json" else d)
    with pytest.raises(sm.BundleFormatError, match="no manifest.json"):
        sm.load(target)


def _edit_manifest(src: Path, dst: Path, change) -> None:  # type: ignore[no-untyped-def]
    def edit(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        change(manifest)
        return json.dumps(manifest).encode()

    _rewrite(src, dst, edit)


def test_newer_format_version_says_upgrade(lr_bundle_path: Path, tmp_path: Path,
                                           no_unpickle: None) -> None:
    target = tmp_path / "future.safemodel"
    _edit_manifest(lr_bundle_path, target, lambda m: m.update(format_version=99))
    with pytest.raises(sm.BundleFormatError, match="format 99.*Upgrade safemodel") as info:
        sm.load(target)
    assert info.value.found == 99
    with pytest.raises(sm.BundleFormatError, match="Upgrade"):
        sm.inspect(target)


@pytest.mark.parametrize("change", [
    lambda m: m.pop("members"),
    lambda m: m.update(members=[]),
    lambda m: m.update(format_version="1"),
    lambda m: m.update(format_version=True),
    lambda m: m.update(name=3),
    lambda m: m["members"]["contract.json"].update(sha256="00"),
    lambda m: m["members"]["contract.json"].update(size=-1),
    lambda m: m.update(environment={"numpy": 1}),
])
def test_malformed_manifests(
    lr_bundle_path: Path, tmp_path: Path, change, no_unpickle: None  # type: ignore[no-untyped-def]
) -> None:
    target = tmp_path / "bad.safemodel"
    _edit_manifest(lr_bundle_path, target, change)
    with pytest.raises(sm.BundleFormatError, match="manifest"):
        sm.load(target)


def test_a_replaced_member_is_refused(lr_bundle_path: Path, tmp_path: Path,
                                      no_unpickle: None) -> None:
    target = tmp_path / "swap.safemodel"
    _rewrite(lr_bundle_path, target,
             lambda n, d: d.replace(b"Biscoe", b"Biscoo") if n == "contract.json" else d)
    with pytest.raises(sm.IntegrityError, match="contract.json.*SHA-256") as info:
        sm.load(target)
    assert info.value.member == "contract.json"


def test_an_extra_member_is_refused(lr_bundle_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "extra.safemodel"
    with zipfile.ZipFile(lr_bundle_path) as zin:
        members = [(info.filename, zin.read(info)) for info in zin.infolist()]
    target.write_bytes(pack([*members, ("payload.pkl", b"x")]))
    with pytest.raises(sm.IntegrityError, match="payload.pkl"):
        sm.load(target)


def test_inspect_reads_without_unpickling(lr_bundle_path: Path, lr_bundle: sm.ModelBundle,
                                          no_unpickle: None) -> None:
    info = sm.inspect(lr_bundle_path)
    assert info.name == "penguins-lr"
    assert str(info.version) == "1.0.0"
    assert info.format_version == 1
    assert info.fingerprint == lr_bundle.fingerprint
    assert info.environment["scikit-learn"]
    assert info.methods == ("predict", "predict_proba", "decision_function")
    assert any(r.startswith("sklearn.") for r in info.pickle_references)
    assert info.contract is not None
    assert info.contract["columns"][0]["name"] == "island"
    assert json.dumps(info.to_dict())


def test_save_refuses_to_overwrite(lr_bundle: sm.ModelBundle, tmp_path: Path) -> None:
    path = tmp_path / "b.safemodel"
    lr_bundle.save(path)
    with pytest.raises(sm.SafeModelError, match="already exists.*overwrite=True"):
        lr_bundle.save(path)
    lr_bundle.save(path, overwrite=True)
    assert sm.load(path).fingerprint == lr_bundle.fingerprint


def test_interrupted_save_leaves_nothing_behind(
    lr_bundle: sm.ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "b.safemodel"
    lr_bundle.save(path)
    before = path.read_bytes()
    calls = {"n": 0}
    original = ZipWriter.add

    def failing(self: ZipWriter, name: str, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        original(self, name, data)

    monkeypatch.setattr(ZipWriter, "add", failing)
    with pytest.raises(OSError, match="disk full"):
        lr_bundle.save(path, overwrite=True)
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        lr_bundle.save(tmp_path / "new.safemodel")
    assert path.read_bytes() == before  # the previous file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.safemodel"]  # no temp, no partial


def test_save_into_missing_folder(lr_bundle: sm.ModelBundle, tmp_path: Path) -> None:
    with pytest.raises(sm.SafeModelError, match="does not exist"):
        lr_bundle.save(tmp_path / "no" / "b.safemodel")


def test_a_loaded_bundle_reserialises_to_its_recorded_fingerprint(
    lr_bundle_path: Path, tmp_path: Path
) -> None:
    """A loaded bundle reports the manifest's fingerprint; saving it again must give the
    same members, so that value is also what a re-save records."""
    import hashlib

    from safemodel.core.fingerprint import fingerprint_of

    loaded = sm.load(lr_bundle_path)
    recomputed = fingerprint_of({n: hashlib.sha256(d).hexdigest()
                                 for n, d in loaded._members().items()})
    assert recomputed == loaded.fingerprint == sm.inspect(lr_bundle_path).fingerprint
    again = tmp_path / "again.safemodel"
    loaded.save(again)
    assert sm.inspect(again).fingerprint == loaded.fingerprint


def _estimator_member(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read("estimator.pkl")


def test_a_loaded_bundle_drops_its_pickle_and_resaves_the_original_bytes(
    lr_bundle_path: Path, tmp_path: Path
) -> None:
    """Issue 18 (memory): a loaded bundle keeps no copy of the estimator's pickle; a
    re-save reads the exact bytes back from the file it came from."""
    source = tmp_path / "source.safemodel"
    source.write_bytes(lr_bundle_path.read_bytes())
    loaded = sm.load(source)
    assert loaded._estimator_bytes is None
    again = tmp_path / "again.safemodel"
    loaded.save(again)
    assert _estimator_member(again) == _estimator_member(source)
    assert sm.inspect(again).fingerprint == loaded.fingerprint
    assert loaded._estimator_bytes is None  # still not kept after the save


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_a_loaded_bundle_whose_file_is_gone_repickles_with_a_warning(
    lr_bundle_path: Path, hgb_bundle: sm.ModelBundle, tmp_path: Path, change: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the source file is deleted or holds other bytes, the bundle pickles its
    estimator again, says so, and saves a bundle that loads and scores the same."""
    source = tmp_path / "source.safemodel"
    source.write_bytes(lr_bundle_path.read_bytes())
    loaded = sm.load(source)
    source.unlink()
    if change == "replaced":
        hgb_bundle.save(source)  # same path, another estimator: the hash must refuse it
    again = tmp_path / "again.safemodel"
    with caplog.at_level("WARNING", logger="safemodel"):
        loaded.save(again)
    assert "could not be re-read" in caplog.text
    reloaded = sm.load(again)
    assert type(reloaded.estimator) is type(loaded.estimator)
    X = loaded.golden.inputs
    assert (reloaded.predict_proba(X) == loaded.predict_proba(X)).all()


# ------------------------------------------------------------------ no raw exceptions

_DEEP = b"[" * 100_000 + b"]" * 100_000  # deeper than json (and Python) can recurse


@pytest.mark.parametrize("member", ["metadata.json", "contract.json", "policy.json",
                                    "golden/inputs.json", "golden/golden.json",
                                    "profile.json", "golden/outputs/predict.json"])
def test_a_deeply_nested_member_is_a_format_error_naming_it(
    lr_bundle_path: Path, tmp_path: Path, member: str, no_unpickle: None
) -> None:
    members = members_of(lr_bundle_path.read_bytes())
    target = tmp_path / "deep.safemodel"
    target.write_bytes(pack(rehash({**members, member: _DEEP}).items()))
    with pytest.raises(sm.UntrustedBundleError):  # rehashed, so unsigned: refused first
        sm.load(target)
    with pytest.raises(sm.BundleFormatError) as info:
        sm.load(target, trust=True)
    assert info.value.member == member
    if member not in ("profile.json", "golden/outputs/predict.json"):  # inspect skips them
        with pytest.raises(sm.BundleFormatError) as info:
            sm.inspect(target)
        assert info.value.member == member


def test_a_deeply_nested_manifest_is_a_format_error(lr_bundle_path: Path,
                                                    tmp_path: Path) -> None:
    members = members_of(lr_bundle_path.read_bytes())
    target = tmp_path / "deep.safemodel"
    target.write_bytes(pack({**members, "manifest.json": _DEEP}.items()))
    for check in (sm.load, sm.inspect):
        with pytest.raises(sm.BundleFormatError, match="nested too deeply") as info:
            check(target)
        assert info.value.member == "manifest.json"


@pytest.mark.parametrize("path", [3, None, 1.5, b"model.safemodel", "", "a\0b", ["x"]])
def test_a_path_of_the_wrong_type_is_an_invalid_argument(
    lr_bundle: sm.ModelBundle, path: object
) -> None:
    for call in (sm.load, sm.inspect, lr_bundle.save):
        with pytest.raises(sm.InvalidArgument, match="'path' parameter") as info:
            call(path)  # type: ignore[operator]
        assert info.value.argument == "path"
        assert isinstance(info.value, ValueError)


def test_a_path_the_system_refuses_is_a_safemodel_error(lr_bundle: sm.ModelBundle,
                                                        tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300 + ".safemodel")
    with pytest.raises(sm.InvalidArgument, match="Cannot save"):
        lr_bundle.save(too_long)
    for check in (sm.load, sm.inspect):
        with pytest.raises(sm.BundleFormatError, match="cannot be read"):
            check(too_long)


@pytest.mark.parametrize(("keyword", "value"), [
    ("verify", "no"), ("verify", 1), ("environment", "loud"), ("allowed_modules", "sklearn"),
    ("allowed_modules", 3), ("allowed_modules", [3]),
])
def test_load_arguments_of_the_wrong_kind_are_invalid_arguments(
    lr_bundle_path: Path, keyword: str, value: object, no_unpickle: None
) -> None:
    with pytest.raises(sm.InvalidArgument, match=f"'{keyword}' parameter of load") as info:
        sm.load(lr_bundle_path, **{keyword: value})  # type: ignore[arg-type]
    assert info.value.argument == keyword


@pytest.mark.parametrize("overwrite", ["yes", 1, None])
def test_overwrite_must_be_a_bool(lr_bundle: sm.ModelBundle, tmp_path: Path,
                                  overwrite: object) -> None:
    with pytest.raises(sm.InvalidArgument, match="'overwrite' parameter of save"):
        lr_bundle.save(tmp_path / "b.safemodel", overwrite=overwrite)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_bundles_honour_the_umask(lr_bundle: sm.ModelBundle, tmp_path: Path,
                                        umask: int, mode: int) -> None:
    """A bundle gets the mode any new file gets (0o666 less the umask); the signing key
    made on first use stays owner-only whatever the umask."""
    from safemodel.io.keys import PRIVATE_KEY_FILE, default_signing_key

    path = tmp_path / "b.safemodel"
    old = os.umask(umask)
    try:
        default_signing_key(tmp_path / "home")
        lr_bundle.save(path)
        lr_bundle.save(path, overwrite=True)  # replacing keeps the rule too
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "home" / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.safemodel", "home"]  # no .tmp


def test_core_does_not_import_io() -> None:
    """core sits below io: ModelBundle.save reaches the archive through a registered
    writer, never an import (import-linter checks this in CI too)."""
    import ast

    core = Path(sm.__file__).parent / "core"
    for module in core.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("safemodel.io") for n in names), module.name


def test_a_flipped_byte_anywhere_says_what_to_do(lr_bundle_path: Path, tmp_path: Path) -> None:
    """Whatever byte is damaged, the refusal ends with the next step (fetch again or
    rebuild), not only with what differs."""
    from safemodel.io.zipbytes import DAMAGED_NEXT_STEP

    data = lr_bundle_path.read_bytes()
    edited = tmp_path / "flipped.safemodel"
    kinds: set[str] = set()
    for i in range(0, len(data), max(1, len(data) // 300)):
        blob = bytearray(data)
        blob[i] ^= 0xFF
        edited.write_bytes(bytes(blob))
        with pytest.raises((sm.IntegrityError, sm.BundleFormatError)) as info:
            sm.load(edited)
        message = str(info.value)
        if isinstance(info.value, sm.IntegrityError):
            assert message.endswith(DAMAGED_NEXT_STEP), message
        else:
            last = message.split(". ")[-1]
            assert any(w in last for w in ("save it again", "rebuild", "fetch")), message
        kinds.add(message.split(" ", 3)[1])
    assert len(kinds) > 1  # several checks were reached, not one


@pytest.mark.parametrize("sidecar", [b"not a signature", b"{}", b"\xff\xfe"])
def test_an_unusable_sidecar_does_not_block_explicit_trust(
    lr_bundle: sm.ModelBundle, tmp_path: Path, sidecar: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "vendor.safemodel"
    lr_bundle.save(path, signing_key=Ed25519PrivateKey.generate())  # a key not trusted here
    Path(str(path) + ".sig").write_bytes(sidecar)  # unrelated junk beside it
    with pytest.raises(sm.IntegrityError):
        sm.load(path)  # refused as before: nothing trusted signed it
    with caplog.at_level("WARNING", logger="safemodel"):
        loaded = sm.load(path, trust=True)
    assert loaded.fingerprint == lr_bundle.fingerprint
    assert any(".sig" in r.getMessage() and "ignored" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_an_unreadable_sidecar_does_not_block_explicit_trust(
    lr_bundle: sm.ModelBundle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "vendor.safemodel"
    lr_bundle.save(path)
    sig = Path(str(path) + ".sig")
    sig.symlink_to(sig.name)  # a loop: opening it fails, whoever runs the test
    with pytest.raises(sm.BundleFormatError, match="cannot be read"):
        sm.load(path)
    with caplog.at_level("WARNING", logger="safemodel"):
        assert sm.load(path, trust=True).fingerprint == lr_bundle.fingerprint
    assert any("ignored" in r.getMessage() for r in caplog.records)


def _arrays() -> list[np.ndarray]:
    read_only = np.arange(6.0)
    read_only.flags.writeable = False
    return [np.arange(12, dtype="int32").reshape(3, 4),
            np.asfortranarray(np.arange(12.0).reshape(3, 4)),
            np.arange(10.0)[::3],  # not contiguous: pickled as a contiguous copy
            read_only, np.float64(2.5) * np.ones(()), np.empty((0, 3)),
            np.array([(1, 2.0)], dtype=[("a", "<i8"), ("b", "<f4")]),
            np.array([True, False]), np.array(["ab", "c"])]


@pytest.mark.parametrize("array", _arrays(), ids=lambda a: f"{a.dtype}{a.shape}")
def test_unpickled_arrays_own_their_data_and_equal_the_pickled_ones(array: np.ndarray
                                                                    ) -> None:
    data = cloudpickle.dumps({"x": array})
    plain, ours = pickle.loads(data)["x"], unpickling.loads(data)["x"]
    assert ours.dtype == plain.dtype
    assert ours.shape == plain.shape
    assert ours.tobytes(order="A") == plain.tobytes(order="A")
    assert ours.flags.f_contiguous == plain.flags.f_contiguous
    assert ours.flags.c_contiguous == plain.flags.c_contiguous
    assert ours.flags.writeable == plain.flags.writeable
    assert ours.base is None  # one object, not views of the unpickler's bytearray


def test_a_loaded_estimators_arrays_own_their_data(hgb_bundle: sm.ModelBundle,
                                                   tmp_path: Path) -> None:
    hgb_bundle.save(tmp_path / "m.safemodel")
    loaded = sm.load(tmp_path / "m.safemodel")  # verified: outputs bit-identical
    model = loaded.estimator[-1]
    assert model.classes_.base is None
    assert model._baseline_prediction.base is None
    assert model.classes_.flags.writeable


def test_a_loaded_bundle_keeps_its_golden_part_encoded_and_decodes_it_exactly(
    lr_bundle: sm.ModelBundle, lr_bundle_path: Path, tmp_path: Path
) -> None:
    """Issue 18 (memory): after the load's verification the bundle holds the golden
    members as stored; each use decodes them again, equal to what was saved."""
    loaded = sm.load(lr_bundle_path)
    assert loaded._golden is None  # the decoded one served the verification only
    first = loaded.golden
    pd.testing.assert_frame_equal(first.inputs, lr_bundle.golden.inputs, check_exact=True)
    assert sorted(first.outputs) == sorted(lr_bundle.golden.outputs)
    for method, expected in lr_bundle.golden.outputs.items():
        np.testing.assert_array_equal(first.outputs[method], expected, strict=True)
    assert first.meta() == lr_bundle.golden.meta()
    first.inputs.iloc[:, 0] = first.inputs.iloc[0, 0]  # a caller's edit stays its own
    assert loaded.verify().ok
    assert loaded.verify().ok
    assert loaded.build_notes == lr_bundle.build_notes
    empty = loaded.predict_proba(lr_bundle.golden.inputs.iloc[:0])
    assert empty.shape == (0, lr_bundle.golden.outputs["predict_proba"].shape[1])
    loaded.save(tmp_path / "again.safemodel")
    assert sm.inspect(tmp_path / "again.safemodel").fingerprint == lr_bundle.fingerprint
