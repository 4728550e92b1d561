"""A loader that survives any file: corrupted real bundles, hostile archives, fuzzing.

Whatever the file, ``load`` and ``inspect`` succeed or raise a ``SafeModelError`` that
says what is wrong: quickly, with bounded memory, writing nothing. Hypothesis mutates a
real (small) penguins bundle: byte edits, truncation, member edits, and JSON edits with
the manifest's hashes recomputed, which is what an attacker who can write the file but
holds no signing key can do, and which reaches every decoder behind the hash check.

Raw exceptions already reported upstream (``fuzz/fuzz_load.py: KNOWN_BUGS``) are
tolerated by the property tests and pinned by one strict ``xfail`` test each, below.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import struct
import sys
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import safemodel as sm
from safemodel.io import archive, zipbytes


def _fuzz_module() -> ModuleType:
    # The fuzz target is a script, not a package module; its archive-editing helpers
    # and its KNOWN_BUGS table serve these tests too, so both stay in step.
    path = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_load.py"
    spec = importlib.util.spec_from_file_location("fuzz_load", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_load", module)
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()
members_of = fuzz.members_of
pack = fuzz.pack
rehash = fuzz.rehash

MANIFEST = "manifest.json"
# Hypothesis examples per property test (2,200 corrupted variants in all); each test
# asserts through _ran_all that its own count really ran.
VARIANTS = {
    "file_bytes": 600,
    "truncation": 200,
    "member_bytes_unhashed": 300,
    "member_structure": 200,
    "json_rehashed": 600,
    "member_bytes_rehashed": 300,
}
MUTATION = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def seed(lr_pipe: Pipeline, penguins: tuple[pd.DataFrame, pd.Series],
         tmp_path_factory: pytest.TempPathFactory) -> bytes:
    bundle = sm.ModelBundle.from_training(lr_pipe, penguins[0], name="mutant",
                                          version="1.0.0", golden_rows=8)
    path = tmp_path_factory.mktemp("seed") / "mutant.safemodel"
    bundle.save(path)
    return path.read_bytes()


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    # Thousands of loads: keep their log lines out of the captured output.
    caplog.set_level(logging.CRITICAL, logger="safemodel")


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every estimator pickle load() handed to cloudpickle, in order."""
    calls: list[bytes] = []
    original = archive._unpickle

    def spy(data: bytes, *args: Any) -> Any:
        calls.append(data)
        return original(data, *args)

    monkeypatch.setattr(archive, "_unpickle", spy)
    return calls


def _outcome(check: Callable[[], Any]) -> str:
    """``"loaded"``, the SafeModelError subclass raised, or ``"known bug"``; else raise."""
    try:
        check()
    except sm.SafeModelError as exc:
        return type(exc).__name__
    except Exception as exc:
        if fuzz.known_bug(exc) is None:
            raise
        return "known bug"
    return "loaded"


def _content(blob: bytes) -> dict[str, bytes] | None:
    """The members other than the manifest, or None when it is no zip at all."""
    try:
        members = members_of(blob)
    except (zipfile.BadZipFile, ValueError, EOFError):
        return None
    members.pop(MANIFEST, None)
    return members


def _refused_unless_intact(blob: bytes, seed: bytes, path: Path,
                           unpickled: list[bytes]) -> None:
    """Load a file whose hashes were not recomputed: any changed member is refused.

    The manifest is covered by the signature only, so an edit confined to it (the
    ``created`` text, say) may load.
    """
    path.write_bytes(blob)
    before = len(unpickled)
    outcome = _outcome(lambda: sm.load(path))
    _outcome(lambda: sm.inspect(path))
    if _content(blob) != _content(seed):
        assert outcome in ("BundleFormatError", "IntegrityError"), outcome
        assert len(unpickled) == before, "unpickled a file whose content changed"


# ------------------------------------------------------------------ strategies

_byte_op = st.tuples(
    st.sampled_from(["set", "set", "insert", "delete", "truncate"]),
    st.integers(0, 2**24),
    st.binary(max_size=8),
)
_byte_ops = st.lists(_byte_op, min_size=1, max_size=4)
_json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                 | st.text(max_size=12))
_json_values = st.one_of(
    st.sampled_from(fuzz.INTERESTING).map(copy.deepcopy),
    st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6),
)


def _ran_all(seen: list[None], key: str) -> None:
    assert len(seen) >= VARIANTS[key], f"only {len(seen)} of {VARIANTS[key]} {key} variants ran"


# What a default load of a rehashed (so unsigned) file may raise: never "loaded".
_REFUSED_UNSIGNED = ("UntrustedBundleError", "BundleFormatError", "IntegrityError",
                     "known bug")


# ------------------------------------------------------------------ unhashed edits


def test_byte_edits_of_the_file(seed: bytes, tmp_path: Path, unpickled: list[bytes]) -> None:
    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["file_bytes"])
    @given(ops=_byte_ops)
    def check(ops: list[tuple[str, int, bytes]]) -> None:
        seen.append(None)
        blob = fuzz.edit_bytes(seed, ops)
        _refused_unless_intact(blob, seed, tmp_path / "edited.safemodel", unpickled)

    check()
    _ran_all(seen, "file_bytes")


def test_truncation_anywhere(seed: bytes, tmp_path: Path, unpickled: list[bytes]) -> None:
    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["truncation"])
    @given(cut=st.integers(0, len(seed) - 1))
    def check(cut: int) -> None:
        seen.append(None)
        path = tmp_path / "cut.safemodel"
        path.write_bytes(seed[:cut])
        with pytest.raises((sm.BundleFormatError, sm.IntegrityError)):
            sm.load(path)
        with pytest.raises((sm.BundleFormatError, sm.IntegrityError)):
            sm.inspect(path)
        assert not unpickled

    check()
    _ran_all(seen, "truncation")


def test_byte_edits_of_one_member(seed: bytes, tmp_path: Path,
                                  unpickled: list[bytes]) -> None:
    members = members_of(seed)

    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["member_bytes_unhashed"])
    @given(name=st.sampled_from(sorted(members)), ops=_byte_ops)
    def check(name: str, ops: list[tuple[str, int, bytes]]) -> None:
        seen.append(None)
        edited = {**members, name: fuzz.edit_bytes(members[name], ops)}
        _refused_unless_intact(pack(edited), seed, tmp_path / "member.safemodel", unpickled)

    check()
    _ran_all(seen, "member_bytes_unhashed")


_UNSAFE_NAMES = ["../x", "../../outside.txt", "/abs.txt", "a/../../b", "C:/x", "\\x",
                 "golden/../../x"]


def test_member_structure_edits(seed: bytes, tmp_path: Path, unpickled: list[bytes]) -> None:
    """Drop, duplicate, add, rename and swap members, hashes recomputed or not."""
    members = members_of(seed)
    names = sorted(members)

    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["member_structure"])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        seen.append(None)
        edit = data.draw(st.sampled_from(["drop", "duplicate", "add", "rename", "swap",
                                          "reorder"]))
        name, other = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
        new: str | None = None
        entries = list(members.items())
        if edit == "drop":
            entries = [(n, d) for n, d in entries if n != name]
        elif edit == "duplicate":
            entries.append((name, members[name]))
        elif edit == "add":
            new = data.draw(st.sampled_from([*_UNSAFE_NAMES, "payload.pkl", "golden/x.npy"]))
            entries.append((new, data.draw(st.binary(max_size=32))))
        elif edit == "rename":
            new = data.draw(st.sampled_from([*_UNSAFE_NAMES, other, name.upper()]))
            entries = [(new if n == name else n, d) for n, d in entries]
        elif edit == "swap":
            entries = [(n, members[other] if n == name else members[name] if n == other
                        else d) for n, d in entries]
        else:
            entries = data.draw(st.permutations(entries))
        rehashed = data.draw(st.booleans()) and dict(entries).get(MANIFEST) == members[MANIFEST]
        if rehashed:
            manifest = rehash(dict(entries))[MANIFEST]
            entries = [(n, manifest if n == MANIFEST else d) for n, d in entries]
        path = tmp_path / "structure.safemodel"
        path.write_bytes(zipbytes.pack(entries))
        before = len(unpickled)
        load = _outcome(lambda: sm.load(path))
        _outcome(lambda: sm.inspect(path))
        unchanged = (edit == "reorder" or (edit in ("swap", "rename") and name == other
                                           and new in (None, name)))
        refused = (edit == "duplicate" or new in _UNSAFE_NAMES
                   or (edit == "rename" and new == other and other != name)
                   or not (rehashed or unchanged))
        if refused:
            # Without its signature member the bundle is simply unsigned: refused as
            # untrusted (an IntegrityError too), before unpickling like the rest.
            unsigned = "signature.json" in (name, other) and edit in ("drop", "rename", "swap")
            allowed = ("BundleFormatError", "IntegrityError",
                       *(("UntrustedBundleError",) if unsigned else ()))
            assert load in allowed, (edit, name, new, load)
            assert len(unpickled) == before

    check()
    _ran_all(seen, "member_structure")


# ------------------------------------------------------------------ hash-consistent edits


def test_json_edits_with_hashes_recomputed(seed: bytes, tmp_path: Path) -> None:
    """Edits that pass the hash check reach the decoders: SafeModelError or a bundle."""
    members = members_of(seed)
    json_names = sorted(n for n in members if n.endswith(".json"))

    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["json_rehashed"])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        seen.append(None)
        name = data.draw(st.sampled_from(json_names))
        doc = json.loads(members[name])
        for _ in range(data.draw(st.integers(1, 3))):
            paths = list(fuzz.json_paths(doc))
            doc = fuzz.edit_json(
                doc,
                data.draw(st.sampled_from(paths)),
                data.draw(st.sampled_from(["replace", "replace", "delete", "insert"])),
                data.draw(_json_values),
            )
        text = json.dumps(doc).encode()
        edited = ({**rehash(members), name: text} if name == MANIFEST
                  else rehash({**members, name: text}))
        path = tmp_path / "json.safemodel"
        path.write_bytes(pack(edited))
        _outcome(lambda: sm.inspect(path))
        # Rehashed means unsigned: refused by default, decoded when trusted on purpose.
        assert _outcome(lambda: sm.load(path)) in _REFUSED_UNSIGNED
        _outcome(lambda: sm.load(path, trust=True))

    check()
    _ran_all(seen, "json_rehashed")


def test_member_byte_edits_with_hashes_recomputed(seed: bytes, tmp_path: Path) -> None:
    """The .npy outputs and the pickle too; the pickle is audited, never run blind."""
    members = members_of(seed)
    names = sorted(n for n in members if n != MANIFEST)

    seen: list[None] = []
    @settings(MUTATION, max_examples=VARIANTS["member_bytes_rehashed"])
    @given(name=st.sampled_from(names), ops=_byte_ops)
    def check(name: str, ops: list[tuple[str, int, bytes]]) -> None:
        seen.append(None)
        edited = rehash({**members, name: fuzz.edit_bytes(members[name], ops)})
        path = tmp_path / "rehashed.safemodel"
        path.write_bytes(pack(edited))
        _outcome(lambda: sm.inspect(path))
        _outcome(lambda: sm.load(path, trust=True,
                                 allowed_modules=sm.DEFAULT_ALLOWED_MODULES))

    check()
    _ran_all(seen, "member_bytes_rehashed")


# ------------------------------------------------------------------ hostile archives

# From here on, files are crafted with their hashes recomputed, so unsigned: a default
# load refuses them before any decoder runs. They are loaded with trust=True, so each
# test proves its refusal even when the caller trusts the file on purpose.


def _load_trusting(path: Path) -> Any:
    return sm.load(path, trust=True)



@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder (also the working directory) that must hold only the bundle afterwards."""
    folder = tmp_path / "sandbox" / "deep"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    yield folder
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["sandbox", "sandbox/deep", "sandbox/deep/hostile.safemodel"], written


@pytest.mark.parametrize("name", [*_UNSAFE_NAMES, "ABSOLUTE"])
def test_unsafe_member_names_are_refused_and_nothing_is_written(
    seed: bytes, sandbox: Path, tmp_path: Path, name: str
) -> None:
    if name == "ABSOLUTE":
        name = str(tmp_path / "absolute-pwned.txt")
    members = {**members_of(seed), name: b"pwned"}
    path = sandbox / "hostile.safemodel"
    path.write_bytes(pack(rehash(members)))
    for check in (_load_trusting, sm.inspect):
        with pytest.raises(sm.BundleFormatError, match="Unsafe member name") as info:
            check(path)
        assert info.value.member == name


def test_duplicate_member_names_are_refused(seed: bytes, sandbox: Path) -> None:
    members = members_of(seed)
    path = sandbox / "hostile.safemodel"
    path.write_bytes(zipbytes.pack([*members.items(), ("contract.json", b'{"columns": []}')]))
    with pytest.raises(sm.BundleFormatError, match="appears twice") as info:
        sm.load(path, trust=True)
    assert info.value.member == "contract.json"


def _declare_size(blob: bytes, member: str, size: int) -> bytes:
    """Rewrite one member's sizes in its local header and central directory record."""
    out = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        infos = zf.infolist()
    start = struct.unpack("<L", blob[-6:-2])[0]  # the end record's directory offset
    record = start
    for info in infos:
        if info.filename == member:
            struct.pack_into("<LL", out, info.header_offset + 18, size, size)
            struct.pack_into("<LL", out, record + 20, size, size)
        record += 46 + len(info.filename.encode())
    return bytes(out)


def _bounded(check: Callable[[], Any], *, megabytes: float = 4) -> None:
    # Memory, not wall time: traced allocations are the same on a busy machine, and a
    # declared size the reader believed would show here as gigabytes.
    tracemalloc.start()
    try:
        check()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("member", ["profile.json", "estimator.pkl", MANIFEST])
def test_a_member_declaring_an_enormous_size_is_refused_in_bounded_memory(
    seed: bytes, sandbox: Path, member: str
) -> None:
    # The largest size a zip without zip64 extras declares; the file is 10 KB.
    huge = 2**31 - 1
    members = members_of(seed)
    if member != MANIFEST:
        members = rehash(members, lambda m: m["members"][member].update(size=huge))
    path = sandbox / "hostile.safemodel"
    path.write_bytes(_declare_size(pack(members), member, huge))

    def refused() -> None:
        with pytest.raises(sm.IntegrityError, match="a declared size is false"):
            sm.load(path, trust=True)
        with pytest.raises(sm.IntegrityError, match="a declared size is false"):
            sm.inspect(path)

    _bounded(refused)


def test_a_manifest_declaring_an_enormous_size_is_refused(seed: bytes, sandbox: Path) -> None:
    members = rehash(members_of(seed), lambda m: m["members"]["profile.json"].update(size=2**62))
    path = sandbox / "hostile.safemodel"
    path.write_bytes(pack(members))

    def refused() -> None:
        with pytest.raises(sm.IntegrityError, match="profile.json"):
            sm.load(path, trust=True)

    _bounded(refused)


def test_a_deflate_bomb_is_refused_before_decompressing(seed: bytes, sandbox: Path) -> None:
    members = members_of(seed)
    bomb = bytes(64 * 2**20)  # 64 MiB of zeros deflate to ~64 KiB
    members = rehash({**members, "metadata.json": bomb})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = (zipfile.ZIP_DEFLATED if name == "metadata.json"
                                  else zipfile.ZIP_STORED)
            zf.writestr(info, data)
    del bomb, members
    path = sandbox / "hostile.safemodel"
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 2**20

    def refused() -> None:
        with pytest.raises(sm.IntegrityError, match="metadata.json"):
            sm.load(path, trust=True)

    _bounded(refused)


@pytest.mark.parametrize("content", [b"", b"\0", b"PK", b"PK\x05\x06" + bytes(18),
                                     b"PK\x03\x04" + bytes(26)])
def test_tiny_files_are_refused_quickly(sandbox: Path, content: bytes) -> None:
    path = sandbox / "hostile.safemodel"
    path.write_bytes(content)

    def refused() -> None:
        with pytest.raises(sm.BundleFormatError):
            sm.load(path, trust=True)

    _bounded(refused)


@pytest.mark.parametrize(("change", "field"), [
    (lambda m: m.update(format_version=2**70), "Upgrade safemodel"),
    (lambda m: m.update(format_version=0), "format"),
    (lambda m: m.update(format_version=None), "format_version"),
    (lambda m: m.pop("format_version"), "format_version"),
    (lambda m: m.pop("fingerprint"), "fingerprint"),
    (lambda m: m.pop("name"), "name"),
    (lambda m: m.pop("environment"), "environment"),
    (lambda m: m.update(created=7), "created"),
    (lambda m: m.update(methods="predict"), "methods"),
    (lambda m: m.update(pickle_references={"a": 1}), "pickle_references"),
    (lambda m: m.update(environment=["numpy"]), "environment"),
    (lambda m: m["members"].update({"contract.json": "abc"}), "contract.json"),
    (lambda m: m["members"]["contract.json"].update(size="12"), "size"),
    (lambda m: m["members"]["contract.json"].update(size=True), "size"),
    (lambda m: m["members"]["contract.json"].pop("sha256"), "sha256"),
    (lambda m: m.update(name=""), "name"),
    (lambda m: m.update(name="../../etc/passwd"), "name"),
    (lambda m: m.update(version="not a version"), "version"),
])
def test_manifests_with_wrong_types_or_missing_fields(
    seed: bytes, sandbox: Path, change: Callable[[dict[str, Any]], Any], field: str,
    unpickled: list[bytes],
) -> None:
    members = rehash(members_of(seed), change)
    path = sandbox / "hostile.safemodel"
    path.write_bytes(pack(members))
    for check in (_load_trusting, sm.inspect):
        with pytest.raises(sm.BundleFormatError) as info:
            check(path)
        assert info.value.member == MANIFEST
        assert field in str(info.value)
    assert not unpickled


@pytest.mark.parametrize("document", [b"[]", b"null", b"1", b'"x"', b"{", b"\xff\xfe",
                                      b'{"format_version": 99}'])
def test_a_manifest_that_is_not_an_object(seed: bytes, sandbox: Path, document: bytes) -> None:
    path = sandbox / "hostile.safemodel"
    path.write_bytes(pack({**members_of(seed), MANIFEST: document}))
    with pytest.raises(sm.BundleFormatError) as info:
        sm.load(path, trust=True)
    assert info.value.member == MANIFEST


# ------------------------------------------------------------------ decoders


def _rewritten(seed: bytes, path: Path, member: str, change: Callable[[Any], Any]) -> Path:
    """``path`` holding the seed with one JSON member edited, hashes recomputed."""
    members = members_of(seed)
    doc = json.loads(members[member])
    result = change(doc)
    text = json.dumps(doc if result is None else result).encode()
    path.write_bytes(pack(rehash({**members, member: text})))
    return path


@pytest.mark.parametrize(("member", "change"), [
    ("contract.json", lambda d: d.update(columns={})),
    ("contract.json", lambda d: d["columns"][0].pop("dtype")),
    ("contract.json", lambda d: d["columns"][0].update(dtype="no-such-dtype")),
    ("contract.json", lambda d: d["columns"][0].update(kind="shape")),
    ("contract.json", lambda d: d["columns"].append(7)),
    ("policy.json", lambda d: d.update(missing="ignore")),
    ("policy.json", lambda d: d.pop("unseen_category")),
    ("policy.json", lambda d: d.update(columns={"island": {"colour": "red"}})),
    ("golden/inputs.json", lambda d: d.update(rows="many")),
    ("golden/inputs.json", lambda d: d["columns"][0].update(dtype="category")),
    ("golden/inputs.json", lambda d: d["columns"][1]["values"].pop()),
    ("golden/golden.json", lambda d: d.pop("rtol")),
    ("golden/golden.json", lambda d: d.update(rejected=[1, 2])),
    ("golden/outputs/predict.json", lambda d: d.update(dtype="no-such-dtype")),
    ("metadata.json", lambda d: [d]),
    ("profile.json", lambda d: d.update(version=99)),
    ("profile.json", lambda d: d.update(rows=-1)),
])
def test_malformed_parts_are_format_errors(seed: bytes, tmp_path: Path, member: str,
                                           change: Callable[[Any], Any]) -> None:
    path = _rewritten(seed, tmp_path / "part.safemodel", member, change)
    with pytest.raises(sm.BundleFormatError) as info:
        sm.load(path, trust=True)
    # profile.py names its fields ("Reference profile field 'rows' ...") but sets no member.
    if member == "profile.json":
        assert "profile" in str(info.value)
    else:
        assert info.value.member == member, str(info.value)


def _npy_header(shape: tuple[int, ...], payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _with_member(seed: bytes, path: Path, member: str, data: bytes) -> Path:
    path.write_bytes(pack(rehash({**members_of(seed), member: data})))
    return path


# One strict xfail per raw exception already found (see fuzz/fuzz_load.py KNOWN_BUGS).
# When a fix lands the test passes, XPASS fails the run: drop the marker and the entry.


def test_edited_golden_labels_are_a_golden_mismatch(seed: bytes, tmp_path: Path) -> None:
    def relabel(d: dict[str, Any]) -> None:
        d["values"] = ["Gentoo" if v != "Gentoo" else "Adelie" for v in d["values"]]

    path = _rewritten(seed, tmp_path / "labels.safemodel", "golden/outputs/predict.json",
                      relabel)
    with pytest.raises(sm.GoldenMismatchError, match="predict"):
        sm.load(path, trust=True)


def test_an_infinite_edge_row_count_is_a_format_error(seed: bytes, tmp_path: Path) -> None:
    path = _rewritten(seed, tmp_path / "edge.safemodel", "golden/golden.json",
                      lambda d: d.update(edge_rows=float("inf")))
    with pytest.raises(sm.BundleFormatError, match="golden"):
        sm.load(path, trust=True)


def test_a_nan_tolerance_is_a_format_error(seed: bytes, tmp_path: Path) -> None:
    path = _rewritten(seed, tmp_path / "rtol.safemodel", "golden/golden.json",
                      lambda d: d.update(rtol=float("nan")))
    with pytest.raises(sm.BundleFormatError, match="rtol"):
        sm.load(path, trust=True)


def test_a_negative_tolerance_is_a_format_error(seed: bytes, tmp_path: Path) -> None:
    path = _rewritten(seed, tmp_path / "rtol.safemodel", "golden/golden.json",
                      lambda d: d.update(atol=-1.0))
    with pytest.raises(sm.BundleFormatError, match="atol"):
        sm.load(path, trust=True)


def test_a_malformed_npy_header_is_a_format_error(seed: bytes, tmp_path: Path) -> None:
    member = "golden/outputs/predict_proba.npy"
    data = members_of(seed)[member].replace(b"'shape': (", b"'shape': ((", 1)
    path = _with_member(seed, tmp_path / "npy.safemodel", member, data)
    with pytest.raises(sm.BundleFormatError, match="predict_proba"):
        sm.load(path, trust=True)


def test_an_npy_header_declaring_a_huge_shape_is_a_format_error(seed: bytes,
                                                                tmp_path: Path) -> None:
    member = "golden/outputs/predict_proba.npy"
    path = _with_member(seed, tmp_path / "npy.safemodel", member,
                        _npy_header((10**13, 3), bytes(64)))
    with pytest.raises(sm.BundleFormatError, match="predict_proba"):
        sm.load(path, trust=True)


def test_an_npy_header_is_checked_before_allocating(seed: bytes, tmp_path: Path) -> None:
    member = "golden/outputs/predict_proba.npy"
    path = _with_member(seed, tmp_path / "npy.safemodel", member,
                        _npy_header((10**8, 3), bytes(64)))

    def refused() -> None:
        with pytest.raises(sm.BundleFormatError, match="predict_proba"):
            sm.load(path, trust=True)

    _bounded(refused, megabytes=64)


def test_an_impute_value_of_the_wrong_type_is_a_format_error(seed: bytes,
                                                             tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        year = next(c for c in d["columns"] if c["name"] == "year")
        year["impute"] = "zzz"

    path = _rewritten(seed, tmp_path / "impute.safemodel", "contract.json", change)
    with pytest.raises(sm.BundleFormatError, match="year"):
        sm.load(path, trust=True)


def test_an_unhashable_category_is_a_format_error(seed: bytes, tmp_path: Path) -> None:
    path = _rewritten(seed, tmp_path / "cats.safemodel", "contract.json",
                      lambda d: d["columns"][0]["categories"].append([1]))
    with pytest.raises(sm.BundleFormatError, match="island"):
        sm.load(path, trust=True)


def test_an_empty_environment_key_is_harmless(seed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "env.safemodel"
    path.write_bytes(pack(rehash(members_of(seed),
                                 lambda m: m["environment"].update({"": "1.0"}))))
    assert sm.load(path, trust=True).name == "mutant"


# ------------------------------------------------------------------ the fuzz target


def test_the_fuzz_target_replays(tmp_path: Path) -> None:
    """Keep fuzz/fuzz_load.py working: a short deterministic replay, every mode."""
    outcomes = fuzz.replay(150)
    modes = {outcome.split(":")[0] for outcome in outcomes}
    assert modes == {"raw", "file-bytes", "json", "member-bytes", "member-bytes-unhashed"}
    assert sum(outcomes.values()) == 300  # inspect and load per input
    assert any(o.endswith("loaded") for o in outcomes)


@pytest.mark.slow
def test_the_fuzz_target_runs_under_atheris(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    import subprocess

    script = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_load.py"
    done = subprocess.run(
        [sys.executable, str(script), "-atheris_runs=300", "-seed=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 300 in" in done.stderr


def test_the_layout_check_accepts_what_save_writes(tmp_path: Path) -> None:
    """Members back to back, whatever their sizes: a large one and an integer model."""
    X = pd.DataFrame({"a": np.arange(50, dtype="float64"), "b": np.arange(50) % 3})
    y = (X["a"] > 20).astype(int)
    bundle = sm.ModelBundle.from_training(LogisticRegression().fit(X, y), X, name="tiny",
                                          golden_rows=4, metadata={"pad": "x" * 70_000})
    bundle.save(tmp_path / "tiny.safemodel")
    assert sm.load(tmp_path / "tiny.safemodel").fingerprint == bundle.fingerprint


def test_removed_golden_outputs_are_a_format_error(seed: bytes, tmp_path: Path) -> None:
    """Verification must never pass vacuously because the outputs were taken away."""
    kept = {n: d for n, d in members_of(seed).items() if not n.startswith("golden/outputs/")}
    path = tmp_path / "hollow.safemodel"
    path.write_bytes(pack(rehash(kept)))
    with pytest.raises(sm.BundleFormatError, match="outputs"):
        sm.load(path, trust=True)


@pytest.mark.parametrize("impute", [[1, 2], ["Biscoe"]])
def test_a_list_impute_value_is_a_format_error(seed: bytes, tmp_path: Path, impute: list) -> None:  # type: ignore[type-arg]
    def change(d: dict[str, Any]) -> None:
        d["columns"][0]["impute"] = impute

    path = _rewritten(seed, tmp_path / "impute.safemodel", "contract.json", change)
    with pytest.raises(sm.BundleFormatError, match="not a scalar"):
        sm.load(path, trust=True)


@pytest.mark.parametrize(("column", "impute"), [
    ("sex", True), ("sex", 3), ("island", "Atlantis"), ("year", 2007.5), ("year", True),
    ("bill_length_mm", "long"), ("year", 2**70),
])
def test_an_impute_value_that_does_not_fit_is_a_format_error(
    seed: bytes, tmp_path: Path, column: str, impute: Any
) -> None:
    def change(d: dict[str, Any]) -> None:
        next(c for c in d["columns"] if c["name"] == column)["impute"] = impute

    path = _rewritten(seed, tmp_path / "impute.safemodel", "contract.json", change)
    with pytest.raises(sm.BundleFormatError, match=column):
        sm.load(path, trust=True)


@pytest.mark.parametrize(("column", "dtype"), [
    ("island", "period[D]"), ("sex", "period[D]"), ("island", "interval[int64, right]"),
])
def test_a_contract_dtype_the_values_cannot_take_is_a_safemodel_error(
    seed: bytes, tmp_path: Path, column: str, dtype: str
) -> None:
    # A crafted contract (reachable with trust=True): the golden values, filled in by
    # the policy, cannot be cast to the recorded dtype. Not a raw pandas error.
    def change(d: dict[str, Any]) -> None:
        next(c for c in d["columns"] if c["name"] == column)["dtype"] = dtype

    path = _rewritten(seed, tmp_path / "dtype.safemodel", "contract.json", change)
    with pytest.raises(sm.SafeModelError) as info:
        sm.load(path, trust=True)
    message = str(info.value)
    assert repr(column) in message, message
    assert repr(dtype) in message, message
    assert "Send" in message  # says what to do
