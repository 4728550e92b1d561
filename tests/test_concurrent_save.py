"""Saves under concurrency and crashes, with real processes.

Two processes saving to one path leave one complete bundle; a reader never sees a
partial file; a process killed mid-save leaves the previous file (or none) at the target
path, and at most a temporary file ``.NAME.<random>.tmp`` beside it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import safemodel as sm

# Each worker loads a source bundle (without verification: it was just written) and
# prints "ready", then waits for the go file, so that all start together.
PRELUDE = """
import logging, sys, time
from pathlib import Path
logging.disable(logging.CRITICAL)
import safemodel as sm
from safemodel.io import files, zipbytes

def wait_for(go):
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
"""

# Saves the bundle to the same path, replacing it, until told to stop.
OVERWRITER = PRELUDE + """
source, target, go, stop = sys.argv[1:5]
bundle = sm.load(source, verify=False)
wait_for(go)
saves = 0
while not Path(stop).exists():
    bundle.save(target, overwrite=True)
    saves += 1
print(saves, flush=True)
"""

# Saves the bundle once to each of target-0, target-1, ..., never replacing a file.
CLAIMER = PRELUDE + """
source, target, go, rounds = sys.argv[1:5]
bundle = sm.load(source, verify=False)
wait_for(go)
outcomes = []
for i in range(int(rounds)):
    try:
        bundle.save(target.replace("{i}", str(i)))
        outcomes.append("saved")
    except sm.SafeModelError as exc:
        assert "already exists" in str(exc), exc
        outcomes.append("exists")
print(" ".join(outcomes), flush=True)
"""

# Loads the target a number of times while the writers replace it.
READER = PRELUDE + """
target, go, loads, *fingerprints = sys.argv[1:]
wait_for(go)
done = missing = 0
while done < int(loads):
    try:
        bundle = sm.load(target, verify=False)
    except sm.BundleFormatError as exc:
        # Only before the first save has landed; afterwards the path always holds a file.
        if "does not exist" not in str(exc) or done:
            raise
        missing += 1
        continue
    assert bundle.fingerprint in fingerprints, bundle.fingerprint
    done += 1
print(done, missing, flush=True)
"""

# Saves the source bundle to the target, stopping (for the parent to kill it) at a
# chosen point: after writing estimator.pkl into the temporary file, or just before
# the finished temporary file is moved into place.
STALLED = PRELUDE + """
source, target, point = sys.argv[1:4]
bundle = sm.load(source, verify=False)

def stall(what):
    print(what, flush=True)
    time.sleep(600)

if point == "mid-write":
    add = zipbytes.ZipWriter.add
    def _add(writer, name, data):
        add(writer, name, data)
        if name == "estimator.pkl":
            writer.fh.flush()
            stall("stalled")
    zipbytes.ZipWriter.add = _add
else:
    def _publish(tmp, target, overwrite):
        stall("stalled")
    files._publish = _publish
bundle.save(target, overwrite=True)
"""

# Saves two bundles in turn, forever, until killed at a random moment.
LOOPING = PRELUDE + """
first, second, target = sys.argv[1:4]
bundles = [sm.load(first, verify=False), sm.load(second, verify=False)]
print("ready", flush=True)
i = 0
while True:
    bundles[i % 2].save(target, overwrite=True)
    i += 1
"""


def _spawn(script: str, *args: object, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SAFEMODEL_SIGNING_KEY"}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _expect_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != expected:
        process.kill()
        _, err = process.communicate(timeout=60)
        pytest.fail(f"worker said {line!r}, expected {expected!r}:\n{err[-3000:]}")


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out.strip()


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; killed if the test leaves any running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)


@pytest.fixture
def sources(lr_bundle: sm.ModelBundle, tmp_path: Path) -> dict[str, Path]:
    """Two different bundles, padded to a few MB so a save takes a while."""
    folder = tmp_path / "sources"
    folder.mkdir()
    paths = {}
    for writer in ("a", "b"):
        bundle = sm.ModelBundle(
            lr_bundle.estimator, lr_bundle.contract, lr_bundle.policy, lr_bundle.golden,
            name="race", version="1.0.0", metadata={"writer": writer, "pad": "x" * 3_000_000},
        )
        paths[writer] = folder / f"{writer}.safemodel"
        bundle.save(paths[writer])
    return paths


def _fingerprint(path: Path) -> str:
    return sm.inspect(path).fingerprint


def _leftovers(folder: Path, target: Path) -> list[Path]:
    return sorted(folder.glob(f".{target.name}.*.tmp"))


def test_two_writers_and_a_reader(sources: dict[str, Path], tmp_path: Path,
                                  workers: list[subprocess.Popen[str]]) -> None:
    folder = tmp_path / "race"
    folder.mkdir()
    target, go, stop = folder / "race.safemodel", tmp_path / "go", tmp_path / "stop"
    fingerprints = {_fingerprint(p) for p in sources.values()}
    assert len(fingerprints) == 2
    writers = [_spawn(OVERWRITER, sources[w], target, go, stop, cwd=tmp_path)
               for w in ("a", "b")]
    reader = _spawn(READER, target, go, 25, *fingerprints, cwd=tmp_path)
    workers.extend([*writers, reader])
    for process in workers:
        _expect_line(process, "ready")
    go.touch()
    loads, _ = map(int, _finish(reader).split())  # every load while both keep saving
    stop.touch()
    assert loads == 25
    assert all(int(_finish(writer)) > 0 for writer in writers)
    assert _fingerprint(target) in fingerprints
    assert sm.load(target).name == "race"
    assert sorted(p.name for p in folder.iterdir()) == ["race.safemodel"]  # no temp left


def test_racing_saves_without_overwrite_have_one_winner(
    sources: dict[str, Path], tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    folder = tmp_path / "race"
    folder.mkdir()
    targets, go = str(folder / "race-{i}.safemodel"), tmp_path / "go"
    rounds = 10
    writers = [_spawn(CLAIMER, sources[w], targets, go, rounds, cwd=tmp_path)
               for w in ("a", "b")]
    workers.extend(writers)
    for writer in writers:
        _expect_line(writer, "ready")
    go.touch()
    a, b = (_finish(writer).split() for writer in writers)
    for i in range(rounds):
        assert sorted([a[i], b[i]]) == ["exists", "saved"], i
        winner = sources["a"] if a[i] == "saved" else sources["b"]
        assert _fingerprint(folder / f"race-{i}.safemodel") == _fingerprint(winner)
    assert len(list(folder.iterdir())) == rounds  # the losers left no temporary file


@pytest.mark.parametrize("point", ["mid-write", "before-publish"])
@pytest.mark.parametrize("previous", [True, False], ids=["previous-file", "no-file"])
def test_a_save_killed_midway_leaves_the_previous_file(
    sources: dict[str, Path], tmp_path: Path, workers: list[subprocess.Popen[str]],
    point: str, previous: bool,
) -> None:
    folder = tmp_path / "target"
    folder.mkdir()
    target = folder / "model.safemodel"
    if previous:
        target.write_bytes(sources["a"].read_bytes())
    before = target.read_bytes() if previous else None
    process = _spawn(STALLED, sources["b"], target, point, cwd=tmp_path)
    workers.append(process)
    _expect_line(process, "stalled")
    [tmp] = _leftovers(folder, target)
    assert tmp.stat().st_size > 0
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    if previous:
        assert target.read_bytes() == before
        assert sm.load(target).fingerprint == _fingerprint(sources["a"])
    else:
        assert not target.exists()
    # What a killed save leaves: a hidden temporary file beside the target, never at it.
    assert _leftovers(folder, target) == [tmp]
    if point == "mid-write":
        with pytest.raises((sm.BundleFormatError, sm.IntegrityError)):
            sm.load(tmp)
    else:  # complete, just never moved into place
        assert _fingerprint(tmp) == _fingerprint(sources["b"])
    # The next save is not disturbed by it.
    sm.load(sources["b"], verify=False).save(target, overwrite=True)
    assert _fingerprint(target) == _fingerprint(sources["b"])


@pytest.mark.slow
def test_saves_killed_at_random_moments_leave_a_complete_bundle(
    sources: dict[str, Path], tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    folder = tmp_path / "target"
    folder.mkdir()
    target = folder / "model.safemodel"
    fingerprints = {_fingerprint(p) for p in sources.values()}
    rng = random.Random(0)
    for _ in range(4):
        process = _spawn(LOOPING, sources["a"], sources["b"], target, cwd=tmp_path)
        workers.append(process)
        _expect_line(process, "ready")
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        if target.exists():
            assert _fingerprint(target) in fingerprints
            assert sm.load(target).name == "race"
        for tmp in _leftovers(folder, target):
            tmp.unlink()  # what an operator (or a cleanup job) does with them
