"""BundleStore: immutable versions, selectors, verified promotions, history, the
serving cache, and consistency under real concurrent processes."""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from packaging.version import Version
from sklearn.linear_model import LogisticRegression

import safemodel as sm
import safemodel.store.store as store_module
from helpers import lr_pipeline
from safemodel.errors import BundleNotFoundError
from safemodel.store import BundleStore, HistoryEntry, ModelService

NAMES = ["adelie", "biscoe", "chinstrap", "dream", "gentoo"]
VERSIONS = ["0.9.0", "1.0.0", "1.2.0", "1.9.0", "1.10.0", "2.0.0rc1"]


def build_bundles(folder: Path, X: pd.DataFrame, y: pd.Series) -> dict[tuple[str, str], Path]:
    """5 names x 6 versions of small, quickly fitted penguin models, saved as files."""
    files = {}
    for i, name in enumerate(NAMES):
        sample = X.sample(frac=0.8, random_state=i)
        pipe = lr_pipeline(sample, y.loc[sample.index])
        for version in VERSIONS:
            bundle = sm.ModelBundle.from_training(pipe, X, name=name, version=version,
                                                  golden_rows=16)
            path = folder / f"{name}-{version}.safemodel"
            bundle.save(path)
            files[name, version] = path
    return files


def stale_bundle(path: Path, X: pd.DataFrame, y: pd.Series, version: str) -> sm.ModelBundle:
    """A bundle whose estimator is not the one its golden outputs were recorded with
    (re-trained and re-packaged without re-recording): it cannot reproduce them."""
    good = sm.load(path)
    sample = X.sample(frac=0.6, random_state=99)
    other = lr_pipeline(sample, y.loc[sample.index])
    return sm.ModelBundle(other, good.contract, good.policy, good.golden, name=good.name,
                          version=version)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory,
          penguins: tuple[pd.DataFrame, pd.Series]) -> dict[tuple[str, str], Path]:
    return build_bundles(tmp_path_factory.mktemp("files"), *penguins)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory,
           files: dict[tuple[str, str], Path]) -> Path:
    root = tmp_path_factory.mktemp("filled") / "store"
    store = BundleStore(root)
    for path in files.values():
        store.put(path)
    return root


@pytest.fixture
def store(tmp_path: Path, filled: Path) -> BundleStore:
    """A fresh copy of the 5 x 6 store for each test."""
    root = tmp_path / "store"
    shutil.copytree(filled, root)
    return BundleStore(root)


# ------------------------------------------------------------------ put


def test_store_of_five_names_by_six_versions(store: BundleStore) -> None:
    assert store.names() == NAMES
    for name in NAMES:
        assert store.versions(name) == [Version(v) for v in VERSIONS]  # 1.10.0 after 1.9.0
        assert store.aliases(name) == {}
        assert [e.action for e in store.history(name)] == ["put"] * 6


def test_put_same_content_again_is_a_no_op(store: BundleStore,
                                           files: dict[tuple[str, str], Path]) -> None:
    before = store.history("dream")
    info = store.put(files["dream", "1.2.0"])
    assert info.fingerprint == sm.inspect(files["dream", "1.2.0"]).fingerprint
    assert Path(info.path) == store.path("dream", "1.2.0")
    assert store.history("dream") == before
    assert len(list((store.root / "dream" / "versions").iterdir())) == 6


def test_put_other_content_under_a_taken_version_names_both_fingerprints(
    store: BundleStore, files: dict[tuple[str, str], Path],
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    taken = sm.inspect(files["dream", "1.2.0"]).fingerprint
    other = sm.ModelBundle.from_training(lr_pipeline(*penguins), penguins[0], name="dream",
                                         version="1.2.0", golden_rows=16)
    with pytest.raises(sm.StoreError, match="immutable") as caught:
        store.put(other)
    assert taken in str(caught.value)
    assert other.fingerprint in str(caught.value)
    assert isinstance(caught.value, LookupError)
    assert store.versions("dream") == [Version(v) for v in VERSIONS]
    assert sm.inspect(store.path("dream", "1.2.0")).fingerprint == taken
    # "1.2" is the same version as "1.2.0", however it is spelled.
    respelled = sm.ModelBundle(other.estimator, other.contract, other.policy, other.golden,
                               name="dream", version="1.2")
    with pytest.raises(sm.StoreError, match="immutable"):
        store.put(respelled)
    assert not list((store.root / ".incoming").iterdir())


def test_put_refuses_a_damaged_file_without_unpickling_it(
    store: BundleStore, files: dict[tuple[str, str], Path], tmp_path: Path,
) -> None:
    source = sm.load(files["gentoo", "1.0.0"])
    fresh = tmp_path / "fresh.safemodel"
    sm.ModelBundle(source.estimator, source.contract, source.policy, source.golden,
                   name="gentoo", version="7.0.0").save(fresh)
    damaged = tmp_path / "damaged.safemodel"
    with zipfile.ZipFile(fresh) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "estimator.pkl":  # same size, other bytes
                data = data[:100] + bytes(8) + data[108:]
            dst.writestr(info, data)
    assert sm.inspect(damaged).version == Version("7.0.0")  # inspect never reads the pickle
    with pytest.raises(sm.IntegrityError, match=r"estimator\.pkl"):
        store.put(damaged)
    assert Version("7.0.0") not in store.versions("gentoo")


def test_put_creates_the_store(tmp_path: Path, lr_bundle: sm.ModelBundle) -> None:
    store = BundleStore(tmp_path / "new" / "store")
    assert store.names() == []
    info = store.put(lr_bundle)
    assert (info.name, info.version) == ("penguins-lr", Version("1.0.0"))
    assert store.names() == ["penguins-lr"]
    with pytest.raises(sm.StoreError, match="is a file"):
        BundleStore(Path(info.path))
    with pytest.raises(sm.InvalidArgument, match="max_loaded"):
        BundleStore(tmp_path, max_loaded=0)


# --------------------------------------------------------------- lookups


def test_resolve_versions_specifiers_and_aliases(store: BundleStore) -> None:
    r = store.resolve
    assert r("biscoe") == Version("1.10.0")               # highest release, not 2.0.0rc1
    assert r("biscoe", "1.9.0") == Version("1.9.0")
    assert r("biscoe", "1.9") == Version("1.9.0")         # version equality, not text
    assert r("biscoe", Version("1.0")) == Version("1.0.0")
    assert r("biscoe", ">=1.2,<2") == Version("1.10.0")
    assert r("biscoe", "<1.10") == Version("1.9.0")
    assert r("biscoe", "~=1.2") == Version("1.10.0")
    assert r("biscoe", ">=2.0rc1") == Version("2.0.0rc1")  # pre-releases when asked
    with pytest.raises(sm.StoreError, match="No version of 'biscoe' matches '>=2'"):
        r("biscoe", ">=2")
    store.promote("biscoe", "1.2.0", alias="staging")
    assert r("biscoe", "staging") == Version("1.2.0")
    with pytest.raises(sm.StoreError, match=r"no alias 'production'.*staging"):
        r("biscoe", "production")
    with pytest.raises(sm.StoreError, match=r"no version '3\.0'"):
        r("biscoe", "3.0")
    with pytest.raises(sm.StoreError, match="neither a version"):
        r("biscoe", "=>1")
    with pytest.raises(sm.StoreError, match=r"No bundle named 'emperor'.*adelie"):
        r("emperor")
    with pytest.raises(sm.StoreError, match="cannot be a store name"):
        r("../biscoe")


def test_get_returns_the_verified_bundle(store: BundleStore) -> None:
    bundle = store.get("chinstrap", ">=1.2,<1.10")
    assert isinstance(bundle, sm.ModelBundle)
    assert (bundle.name, bundle.version) == ("chinstrap", Version("1.9.0"))
    assert bundle.fingerprint == sm.inspect(store.path("chinstrap", "1.9.0")).fingerprint
    assert store.get("chinstrap", "1.9.0") is bundle


def test_only_pre_releases_must_be_asked_for(tmp_path: Path,
                                              files: dict[tuple[str, str], Path]) -> None:
    store = BundleStore(tmp_path)
    store.put(files["adelie", "2.0.0rc1"])
    with pytest.raises(sm.StoreError, match="only pre-releases"):
        store.resolve("adelie")
    assert store.resolve("adelie", ">=2.0rc1") == Version("2.0.0rc1")


# ---------------------------------------------------- promote and rollback


def test_promote_rollback_and_history(store: BundleStore) -> None:
    first = store.promote("adelie", "1.0.0")
    assert first is not None
    assert (first.action, first.alias, first.from_version, first.to_version) == (
        "promote", "production", None, Version("1.0.0"))
    store.promote("adelie", "1.2.0")
    store.promote("adelie", "1.10.0")
    assert store.promote("adelie", "1.10.0") is None          # already there: no entry
    assert store.aliases("adelie") == {"production": Version("1.10.0")}

    back = store.rollback("adelie")
    assert (back.action, back.from_version, back.to_version) == (
        "rollback", Version("1.10.0"), Version("1.2.0"))
    assert store.rollback("adelie").to_version == Version("1.0.0")  # walks further back
    with pytest.raises(sm.StoreError, match="no earlier target"):
        store.rollback("adelie")
    with pytest.raises(sm.StoreError, match="no alias 'staging'"):
        store.rollback("adelie", alias="staging")
    assert store.aliases("adelie") == {"production": Version("1.0.0")}

    moves = [(e.action, e.from_version, e.to_version)
             for e in store.history("adelie") if e.action != "put"]
    assert moves == [
        ("promote", None, Version("1.0.0")),
        ("promote", Version("1.0.0"), Version("1.2.0")),
        ("promote", Version("1.2.0"), Version("1.10.0")),
        ("rollback", Version("1.10.0"), Version("1.2.0")),
        ("rollback", Version("1.2.0"), Version("1.0.0")),
    ]
    last = store.history("adelie")[-1]
    assert last.fingerprint == sm.inspect(store.path("adelie", "1.0.0")).fingerprint
    assert last.host
    assert last.time.endswith("+00:00")
    assert HistoryEntry.from_dict(last.to_dict()) == last


def test_layout_is_plain_folders_and_json(store: BundleStore) -> None:
    store.promote("gentoo", "1.9.0")
    store.promote("gentoo", "1.0.0", alias="staging")
    folder = store.root / "gentoo"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock", "aliases.json", "history.jsonl", "versions"]
    assert sorted(p.name for p in (folder / "versions").iterdir()) == sorted(
        f"{v}.safemodel" for v in VERSIONS)
    aliases = json.loads((folder / "aliases.json").read_text())
    assert aliases["production"]["version"] == "1.9.0"
    assert aliases["staging"]["version"] == "1.0.0"
    lines = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert [line["action"] for line in lines] == ["put"] * 6 + ["promote", "promote"]
    assert set(lines[-1]) == {"time", "action", "alias", "from", "to", "fingerprint", "user",
                              "host"}
    with zipfile.ZipFile(folder / "versions" / "1.9.0.safemodel") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["fingerprint"] == aliases["production"]["fingerprint"]


def test_alias_names_must_not_read_as_versions(store: BundleStore) -> None:
    for alias in ("1.0", "v2", "", "two words", ">=1"):
        with pytest.raises(sm.StoreError, match="Alias"):
            store.promote("dream", "1.0.0", alias=alias)
    assert store.aliases("dream") == {}


def test_promoting_a_bundle_that_does_not_reproduce_is_refused(
    store: BundleStore, files: dict[tuple[str, str], Path],
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    store.promote("chinstrap", "1.0.0")
    history = store.history("chinstrap")
    store.put(stale_bundle(files["chinstrap", "1.0.0"], *penguins, version="3.0.0"))
    with pytest.raises(sm.GoldenMismatchError) as caught:
        store.promote("chinstrap", "3.0.0")
    message = str(caught.value)
    assert message.splitlines()[0] == (
        "Refused to promote chinstrap==3.0.0 to 'production'; 'production' still points "
        "at 1.0.0.")
    assert "do not reproduce" in message
    assert caught.value.mismatches
    assert store.aliases("chinstrap") == {"production": Version("1.0.0")}
    assert store.history("chinstrap")[:-1] == history  # only the put of 3.0.0 was added
    with pytest.raises(sm.GoldenMismatchError):
        store.get("chinstrap", "3.0.0")


def test_a_library_change_that_alters_outputs_blocks_promotion_and_rollback(
    store: BundleStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.promote("biscoe", "1.0.0")
    store.promote("biscoe", "1.2.0")
    original = LogisticRegression.predict_proba

    def upgraded(self: LogisticRegression, X: Any) -> Any:  # a "new release" of sklearn
        return original(self, X) * (1 - 1e-12)

    monkeypatch.setattr(LogisticRegression, "predict_proba", upgraded)
    with pytest.raises(sm.GoldenMismatchError, match=r"Refused to promote biscoe==1\.9\.0"):
        store.promote("biscoe", "1.9.0")
    with pytest.raises(sm.GoldenMismatchError,
                       match=r"Refused to roll 'production' of biscoe back to 1\.0\.0"):
        store.rollback("biscoe")
    assert store.aliases("biscoe") == {"production": Version("1.2.0")}
    monkeypatch.undo()
    assert store.rollback("biscoe").to_version == Version("1.0.0")


def test_a_store_error_met_while_verifying_is_a_refusal_like_the_others(
    store: BundleStore,
) -> None:
    """A version copied in without a put, or gone from the folder, is found while the
    target is verified: the refusal says so as every other does, context kept."""
    store.promote("gentoo", "1.0.0")
    copied = store.root / "gentoo" / "versions" / "1.0.1.safemodel"
    shutil.copyfile(store.path("gentoo", "1.2.0"), copied)
    with pytest.raises(sm.StoreError, match="records no put") as caught:
        store.promote("gentoo", "1.0.1")
    assert str(caught.value).startswith(
        "Refused to promote gentoo==1.0.1 to 'production'; 'production' still points at "
        "1.0.0. ")
    assert (caught.value.name, caught.value.version) == ("gentoo", "1.0.1")
    assert caught.value.refused  # the CLI exits 1 on it, as on every refusal
    assert pickle.loads(pickle.dumps(caught.value)).refused
    copied.unlink()
    store.promote("gentoo", "1.2.0")
    store.path("gentoo", "1.0.0").unlink()
    with pytest.raises(BundleNotFoundError, match="not in store") as gone:
        store.rollback("gentoo")
    assert str(gone.value).startswith(
        "Refused to roll 'production' of gentoo back to 1.0.0; 'production' still points "
        "at 1.2.0. ")
    assert isinstance(gone.value, KeyError)
    assert (gone.value.name, gone.value.version) == ("gentoo", "1.0.0")
    assert store.aliases("gentoo") == {"production": Version("1.2.0")}


def test_a_version_replaced_during_verification_is_a_refusal_too(
    store: BundleStore, files: dict[tuple[str, str], Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verified, then replaced before the alias moves (as another writer could): the
    check under the lock refuses, with the prefix every refusal has."""
    store.promote("dream", "1.0.0")
    target = store.path("dream", "1.2.0")
    hold = store_module.holding

    def replaced_first(folder: Path) -> Any:
        os.chmod(target, 0o644)
        shutil.copyfile(files["adelie", "1.2.0"], target)  # other content, new mtime
        return hold(folder)

    monkeypatch.setattr(store_module, "holding", replaced_first)
    with pytest.raises(sm.StoreError, match="changed on disk during verification") as caught:
        store.promote("dream", "1.2.0")
    assert str(caught.value).startswith(
        "Refused to promote dream==1.2.0 to 'production'; nothing was changed. ")
    assert store.aliases("dream") == {"production": Version("1.0.0")}


def test_get_refuses_an_alias_whose_file_was_replaced(
    store: BundleStore, files: dict[tuple[str, str], Path],
) -> None:
    store.promote("dream", "1.2.0")
    target = store.path("dream", "1.2.0")
    replacement = target.with_name(".replacement")
    shutil.copyfile(files["adelie", "1.2.0"], replacement)
    os.replace(replacement, target)
    with pytest.raises(sm.StoreError, match="replaced after promotion"):
        store.get("dream", "production")


def test_history_survives_a_torn_last_line(store: BundleStore,
                                           caplog: pytest.LogCaptureFixture) -> None:
    store.promote("adelie", "1.0.0")
    with open(store.root / "adelie" / "history.jsonl", "ab") as fh:
        fh.write(b'{"time": "2026-01-01T00:00:00+00:00", "action": "prom')  # crash mid-write
    store.promote("adelie", "1.2.0")
    with caplog.at_level(logging.WARNING, logger="safemodel"):
        entries = store.history("adelie")
    assert [e.to_version for e in entries if e.action == "promote"] == [
        Version("1.0.0"), Version("1.2.0")]
    assert "skipped" in caplog.text
    assert store.rollback("adelie").to_version == Version("1.0.0")


# ----------------------------------------------------------------- serving


class LoadSpy:
    """Records every load the store makes: (file name, verify)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, bool]] = []
        self._lock = threading.Lock()
        real: Callable[..., Any] = store_module.load_bytes

        def spy(data: bytes, **kwargs: Any) -> Any:
            path = Path(kwargs["source"])
            with self._lock:
                self.calls.append((f"{path.parent.parent.name}-{path.stem}",
                                   kwargs["verify"]))
            return real(data, **kwargs)

        monkeypatch.setattr(store_module, "load_bytes", spy)


def test_cache_is_bounded_and_verifies_each_fingerprint_once(
    store: BundleStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    spy = LoadSpy(monkeypatch)
    small = BundleStore(store.root, max_loaded=2)
    a = small.get("adelie", "1.0.0")
    assert small.get("adelie", "1.0.0") is a
    small.get("adelie", "1.2.0")
    small.get("adelie", "1.9.0")                       # evicts 1.0.0
    with caplog.at_level(logging.DEBUG, logger="safemodel"):
        again = small.get("adelie", "1.0.0")
    assert again is not a
    assert again.fingerprint == a.fingerprint
    assert spy.calls == [("adelie-1.0.0", True), ("adelie-1.2.0", True),
                         ("adelie-1.9.0", True), ("adelie-1.0.0", False)]
    assert "verify=False" not in caplog.text          # it was verified, once
    assert "verified earlier" in caplog.text


def test_service_serves_every_alias_and_sees_promotions_without_restart(
    store: BundleStore,
) -> None:
    for name in ("adelie", "biscoe", "gentoo"):
        store.promote(name, "1.0.0")
    service = store.load_all("production")
    assert isinstance(service, ModelService)
    assert service.names() == ["adelie", "biscoe", "gentoo"]
    assert list(service) == service.names()
    assert len(service) == 3
    assert "biscoe" in service
    assert "dream" not in service
    assert service["biscoe"].version == Version("1.0.0")
    with pytest.raises(sm.StoreError, match="no alias 'production'"):
        service["dream"]

    # Another process (here: another store object) promotes; the service sees it.
    BundleStore(store.root).promote("biscoe", "1.9.0")
    assert service.version("biscoe") == Version("1.9.0")
    assert service.get("biscoe").version == Version("1.9.0")
    assert store.load_all(preload=True).preload() == {
        "adelie": Version("1.0.0"), "biscoe": Version("1.9.0"), "gentoo": Version("1.0.0")}


def test_service_is_thread_safe(store: BundleStore, monkeypatch: pytest.MonkeyPatch,
                                penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    for name in NAMES:
        store.promote(name, "1.2.0")
    spy = LoadSpy(monkeypatch)
    service = BundleStore(store.root, max_loaded=3).load_all("production")
    rows = penguins[0].head(3)

    def call(i: int) -> tuple[str, int]:
        name = NAMES[i % len(NAMES)]
        bundle = service[name]
        return bundle.name, len(bundle.predict(rows))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(80)))
    assert results == [(NAMES[i % len(NAMES)], 3) for i in range(80)]
    verified = [name for name, verify in spy.calls if verify]
    assert sorted(verified) == sorted(f"{n}-1.2.0" for n in NAMES)  # once per fingerprint


# ------------------------------------------------------------- concurrency

WORKER = textwrap.dedent("""
    import json, sys
    import safemodel as sm

    root, name, put_file, same_file, *versions = sys.argv[1:]
    store = sm.BundleStore(root)
    print("ready", flush=True)
    sys.stdin.readline()                      # start together
    result = {"promoted": 0}
    try:
        store.put(put_file)
        result["put"] = "ok"
    except sm.StoreError as exc:
        result["put"] = str(exc)
    store.put(same_file)
    for version in versions:
        if store.promote(name, version) is not None:
            result["promoted"] += 1
    print(json.dumps(result), flush=True)
""")


def test_concurrent_processes_leave_a_consistent_store(
    store: BundleStore, files: dict[tuple[str, str], Path],
    penguins: tuple[pd.DataFrame, pd.Series], tmp_path: Path,
) -> None:
    X, y = penguins
    # Each process puts its own content as gentoo 5.0.0 (one must be refused) and the
    # same file as gentoo 6.0.0 (both succeed), then promotes its own versions.
    contenders = []
    for i in range(2):
        sample = X.sample(frac=0.7, random_state=10 + i)
        bundle = sm.ModelBundle.from_training(lr_pipeline(sample, y.loc[sample.index]), X,
                                              name="gentoo", version="5.0.0", golden_rows=16)
        contenders.append(tmp_path / f"contender-{i}.safemodel")
        bundle.save(contenders[-1])
    same = tmp_path / "same.safemodel"
    base = sm.load(files["gentoo", "1.0.0"])
    sm.ModelBundle(base.estimator, base.contract, base.policy, base.golden, name="gentoo",
                   version="6.0.0").save(same)
    sequences = [["0.9.0", "1.0.0"] * 2, ["1.2.0", "1.9.0"] * 2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store.root), "gentoo", str(contenders[i]),
             str(same), *sequences[i]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))

    # Exactly one of the two 5.0.0 contents is in the store; the other was refused.
    puts = sorted(o["put"] for o in outcomes)
    assert puts[1] == "ok"
    assert "immutable" in puts[0]
    versions_folder = store.root / "gentoo" / "versions"
    assert sorted(p.name for p in versions_folder.iterdir()) == sorted(
        f"{v}.safemodel" for v in [*VERSIONS, "5.0.0", "6.0.0"])
    history = store.history("gentoo")
    assert [e.to_version for e in history if e.action == "put"].count(Version("5.0.0")) == 1
    assert [e.to_version for e in history if e.action == "put"].count(Version("6.0.0")) == 1

    # Every promotion was recorded, in one serial order, and the alias ends at the last.
    promotions = [e for e in history if e.action == "promote"]
    assert len(promotions) == sum(o["promoted"] for o in outcomes) == 8
    for before, after in itertools.pairwise(promotions):
        assert after.from_version == before.to_version
    assert promotions[0].from_version is None
    assert store.aliases("gentoo") == {"production": promotions[-1].to_version}
    assert store.get("gentoo", "production").version == promotions[-1].to_version
    assert not [p for p in (store.root / "gentoo").iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ errors


def test_store_errors_carry_what_was_asked_and_what_is_there(store: BundleStore) -> None:
    cases: list[tuple[Callable[[], Any], dict[str, Any]]] = [
        (lambda: store.versions("emperor"), {"name": "emperor", "known": NAMES}),
        (lambda: store.resolve("biscoe", "3.0"),
         {"name": "biscoe", "version": "3.0", "known": VERSIONS}),
        (lambda: store.resolve("biscoe", ">=3"), {"name": "biscoe", "version": ">=3"}),
        (lambda: store.resolve("biscoe", "staging"),
         {"name": "biscoe", "alias": "staging", "known": []}),
        (lambda: store.rollback("biscoe", alias="staging"),
         {"name": "biscoe", "alias": "staging"}),
    ]
    for call, context in cases:
        with pytest.raises(sm.StoreError) as caught:
            call()
        error = caught.value
        # Unknown names, versions and aliases are missing keys, as in a mapping.
        assert isinstance(error, KeyError), error
        assert str(error) == error.args[0]              # the message, not a KeyError repr
        for attribute, value in context.items():
            assert getattr(error, attribute) == value, (attribute, error)
        assert not error.refused  # a lookup that found nothing refuses nothing
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.to_dict() == error.to_dict()
        json.dumps(error.to_dict())

    with pytest.raises(KeyError):
        store.load_all("production")["dream"]
    with pytest.raises(sm.StoreError) as caught:
        store.resolve("biscoe", "==!1")
    assert not isinstance(caught.value, KeyError)       # a bad request, not a missing key
    assert (caught.value.name, caught.value.version) == ("biscoe", "==!1")
    with pytest.raises(sm.StoreError) as caught:
        store.promote("biscoe", "1.0.0", alias="1.0")
    assert caught.value.alias == "1.0"


@pytest.mark.parametrize("line", [
    {"action": "delete", "time": "t", "to": "1.0", "fingerprint": "f"},
    {"action": "put", "time": "t", "to": "not a version", "fingerprint": "f"},
    {"action": "put", "time": "t"},
    ["not", "an", "object"],
])
def test_a_malformed_history_line_is_a_store_error(line: Any) -> None:
    with pytest.raises(sm.StoreError, match="Malformed history entry"):
        HistoryEntry.from_dict(line)


@pytest.mark.parametrize("text", ["{not json", '{"production": {"version": "x"}}', "[1]"])
def test_a_damaged_aliases_file_is_a_store_error(store: BundleStore, text: str) -> None:
    (store.root / "adelie" / "aliases.json").write_text(text)
    with pytest.raises(sm.StoreError, match="aliases.json") as caught:
        store.aliases("adelie")
    assert caught.value.name == "adelie"


def test_a_bundle_from_the_store_keeps_no_copy_of_its_pickle(
        tmp_path: Path, lr_bundle: sm.ModelBundle) -> None:
    """Issue 18 (memory): as after sm.load, a re-save reads the bytes back from the file."""
    store = BundleStore(tmp_path / "store")
    store.put(lr_bundle)
    served = store.get(lr_bundle.name, lr_bundle.version)
    assert served._estimator_bytes is None
    served.save(tmp_path / "again.safemodel")
    assert sm.inspect(tmp_path / "again.safemodel").fingerprint == lr_bundle.fingerprint
    assert served._estimator_bytes is None
