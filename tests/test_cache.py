"""The verified-bundle cache shared by the store and the cluster engines, with real threads.

Overlap is proven with events, never with timings: a loader that waits for another
key's loader to start can only finish if both run at once. The timeouts below only
turn a deadlock into a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import safemodel as sm
from safemodel.integrations import plan
from safemodel.store import VerifiedCache

DEADLOCK = 30.0  # seconds; only reached when the cache serialises what it must not


def wait_for(condition: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(int(DEADLOCK * 100)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition never became true")


def test_different_keys_load_at_the_same_time() -> None:
    cache: VerifiedCache[str] = VerifiedCache(max_size=4)
    started = {"a": threading.Event(), "b": threading.Event()}

    def loader(key: str, other: str) -> Callable[[bool], str]:
        def load(verified_before: bool) -> str:
            started[key].set()
            # Only possible if the other key's load runs while this one is in progress.
            assert started[other].wait(DEADLOCK), f"{key} waited for {other}'s load to end"
            return key.upper()
        return load

    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(cache.get, "a", loader("a", "b"))
        b = pool.submit(cache.get, "b", loader("b", "a"))
        assert (a.result(), b.result()) == ("A", "B")
    assert len(cache) == 2


def test_the_same_key_loads_once_for_many_threads() -> None:
    cache: VerifiedCache[object] = VerifiedCache(max_size=4)
    entered, release = threading.Event(), threading.Event()
    loads: list[bool] = []

    def load(verified_before: bool) -> object:
        loads.append(verified_before)
        entered.set()
        assert release.wait(DEADLOCK)
        return object()

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(cache.get, "k", load) for _ in range(8)]
        assert entered.wait(DEADLOCK)
        # Every thread has asked for "k" (one loading, seven waiting) before the load ends.
        wait_for(lambda: cache._pending["k"].users == 8)
        release.set()
        results = [f.result() for f in futures]
    assert loads == [False]
    assert all(r is results[0] for r in results)
    assert not cache._pending                          # nothing left behind


def test_errors_are_not_cached() -> None:
    cache: VerifiedCache[str] = VerifiedCache(max_size=4)
    attempts: list[bool] = []

    def flaky(verified_before: bool) -> str:
        attempts.append(verified_before)
        if len(attempts) == 1:
            raise sm.GoldenMismatchError("outputs changed")
        return "ok"

    with pytest.raises(sm.GoldenMismatchError):
        cache.get("k", flaky)
    assert "k" not in cache
    assert not cache.verified("k")
    assert cache.get("k", flaky) == "ok"               # tried again, not the cached error
    assert attempts == [False, False]
    assert not cache._pending


def test_bounded_least_recently_used_and_reloads_know_they_were_verified() -> None:
    cache: VerifiedCache[str] = VerifiedCache(max_size=2)
    seen: list[tuple[str, bool]] = []

    def load(key: str) -> Callable[[bool], str]:
        def run(verified_before: bool) -> str:
            seen.append((key, verified_before))
            return key
        return run

    cache.get("a", load("a"))
    cache.get("b", load("b"))
    cache.get("a", load("a"))                          # a is now the most recent
    cache.get("c", load("c"))                          # drops b
    assert ("b" in cache, "a" in cache, "c" in cache) == (False, True, True)
    cache.get("b", load("b"))
    assert seen == [("a", False), ("b", False), ("c", False), ("b", True)]
    assert len(cache) == 2
    cache.put("d", "d")                                # verified elsewhere (promotion)
    assert cache.verified("d")
    assert cache.get("d", load("never")) == "d"


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "2"])
def test_max_size_is_an_argument_error(size: Any) -> None:
    with pytest.raises(sm.InvalidArgument, match="max_size") as caught:
        VerifiedCache(max_size=size)
    assert caught.value.argument == "max_size"


def test_engines_share_the_cache_and_load_different_bundles_side_by_side(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plan, "_verified", VerifiedCache(max_size=8))
    shipped = {b.fingerprint: plan.shippable(b)[1] for b in (lr_bundle, hgb_bundle)}
    started = {fp: threading.Event() for fp in shipped}
    before = plan.load_counts()

    def data(fingerprint: str) -> Callable[[], bytes]:
        other = next(fp for fp in shipped if fp != fingerprint)

        def read() -> bytes:
            started[fingerprint].set()
            # A process-wide lock held during a load would make this wait forever.
            assert started[other].wait(DEADLOCK), "bundles were loaded one after the other"
            return shipped[fingerprint]
        return read

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {fp: [pool.submit(plan.verified_bundle, fp, data(fp)) for _ in range(2)]
                   for fp in shipped}
        loaded = {fp: [f.result() for f in fs] for fp, fs in futures.items()}
    for fp, bundles in loaded.items():
        assert bundles[0].fingerprint == fp
        assert bundles[1] is bundles[0]
        assert plan.load_counts()[fp] - before.get(fp, 0) == 1


def test_engines_refuse_bytes_of_another_bundle_and_do_not_cache_it(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plan, "_verified", VerifiedCache(max_size=8))
    wrong = plan.shippable(hgb_bundle)[1]
    with pytest.raises(sm.IntegrityError, match="replaced or damaged") as caught:
        plan.verified_bundle(lr_bundle.fingerprint, lambda: wrong)
    assert caught.value.expected == lr_bundle.fingerprint
    assert lr_bundle.fingerprint not in plan._verified
