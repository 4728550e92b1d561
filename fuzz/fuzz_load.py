"""Fuzz target: ``safemodel.load`` and ``safemodel.inspect`` on hostile files.

Every input becomes one candidate bundle file. Loading it must either succeed or raise
a ``SafeModelError``; it must never raise anything else, and never write a file. Any
other exception is a crash (atheris stops and saves the input).

With atheris (``pip install atheris``; not a test dependency)::

    python fuzz/fuzz_load.py -atheris_runs=2000            # libFuzzer flags pass through
    python fuzz/fuzz_load.py fuzz/corpus -max_total_time=600

Without atheris, replay deterministic pseudo-random inputs (what the test suite runs,
so the target cannot rot)::

    python fuzz/fuzz_load.py --replay 500

Random bytes almost never get past the zip checks, so an input is not a file but a
recipe applied to a real seed bundle (built once per process from synthetic data): its
first byte picks one of

0. the input's remaining bytes are the whole file;
1. byte edits (set, insert, delete, truncate) of the seed file;
2. JSON edits of one member (replace, delete or insert a value anywhere), with the
   manifest's hashes and fingerprint recomputed so the edit reaches the decoders;
3. byte edits of one member, hashes recomputed (the ``.npy`` outputs, the pickle);
4. byte edits of one member, hashes left alone (must fail the hash check).

The pickle is always audited (``allowed_modules=DEFAULT_ALLOWED_MODULES``): a fuzzer
must not unpickle arbitrary bytes. Raw exceptions already reported upstream are listed
in ``KNOWN_BUGS`` and tolerated (set ``SAFEMODEL_FUZZ_STRICT=1`` to stop on them too);
remove an entry when its bug is fixed.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import io
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

# (exception class name, innermost safemodel function) -> the upstream bug it is.
KNOWN_BUGS: dict[tuple[str, str], str] = {}

INPUT = "input.safemodel"
# Values that mean something to some decoder: dtypes, policy actions, tags, extremes.
INTERESTING: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 2, -2, 3.5, 1e-300, 1e308, 2**31, 2**63, -(2**63) - 1,
    10**30, float("nan"), float("inf"), float("-inf"), "", "x", "a" * 1000, "nan", "inf",
    "-inf", "1.0.0", "../x", "/abs", "C:x", "category", "object", "str", "string",
    "string[pyarrow]", "int64", "int8", "uint8", "Int64", "float64", "float32", "float16",
    "Float64", "bool", "boolean", "complex128", "datetime64[ns]", "datetime64[ns, UTC]",
    "timedelta64[ns]", "period[D]", "Sparse[float64]", "U5", "V8", "S3", "M8", "number",
    "categorical", "datetime", "error", "impute", "passthrough", "drop", "missing",
    "most_frequent", "predict", "predict_proba", [], {}, [1], [None], ["a"], {"a": 1},
    {"$": "nan"}, {"$": "inf"}, {"$": "NA"}, {"$": "NaT"}, {"$": "float", "v": "x"},
    {"$": "timestamp", "v": "2020-01-01"}, {"$": "timestamp", "v": "x"},
    {"dtype": "int64", "values": [1, 2]},
    {"dtype": "category", "categories": {"dtype": "object", "values": []}, "codes": [5],
     "ordered": False},
)


# ------------------------------------------------------------------ archive edits


def members_of(data: bytes) -> dict[str, bytes]:
    """The members of a zip file, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def pack(members: Mapping[str, bytes]) -> bytes:
    """A zip with safemodel's canonical headers (so it passes the structural checks)."""
    from safemodel.io.zipbytes import pack as pack_members

    return pack_members(members.items())


def rehash(
    members: Mapping[str, bytes], edit: Callable[[dict[str, Any]], Any] | None = None
) -> dict[str, bytes]:
    """Recompute the manifest's member hashes and fingerprint, then apply ``edit`` to it.

    What an attacker who can write the file (but holds no signing key) can do; the
    signature, which would no longer verify, is dropped, as such an attacker would.
    """
    from safemodel.core.fingerprint import fingerprint_of

    manifest = json.loads(members["manifest.json"])
    content = {n: d for n, d in members.items() if n not in ("manifest.json", "signature.json")}
    hashes = {n: hashlib.sha256(d).hexdigest() for n, d in content.items()}
    manifest["members"] = {n: {"sha256": h, "size": len(content[n])} for n, h in hashes.items()}
    manifest["fingerprint"] = fingerprint_of(hashes)
    if edit is not None:
        edit(manifest)
    unsigned = {n: d for n, d in members.items() if n != "signature.json"}
    return {**unsigned, "manifest.json": json.dumps(manifest, indent=1).encode()}


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a node of a JSON document, the root first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from json_paths(value, (*prefix, i))


def edit_json(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """``doc`` with the node at ``path`` replaced, deleted, or a sibling inserted."""
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, list):
        parent.insert(last, value)
    else:
        parent[f"{last}_"] = value
    return doc


def edit_bytes(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    """Apply ``(kind, position, payload)`` edits: set, insert, delete, truncate."""
    out = bytearray(data)
    for kind, pos, payload in ops:
        pos = pos % (len(out) + 1)
        if kind == "set" and pos < len(out):
            out[pos] = payload[0] if payload else out[pos] ^ 0xFF
        elif kind == "insert":
            out[pos:pos] = payload
        elif kind == "delete":
            del out[pos : pos + 1 + len(payload)]
        elif kind == "truncate":
            del out[pos:]
    return bytes(out)


def known_bug(exc: BaseException) -> str | None:
    """The ``KNOWN_BUGS`` entry this exception is, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f"{os.sep}safemodel{os.sep}" in f.filename]
    if not frames:
        return None
    where = frames[-1].name
    for cls in type(exc).__mro__:
        reason = KNOWN_BUGS.get((cls.__name__, where))
        if reason is not None:
            return reason
    return None


# ------------------------------------------------------------------ the target


class _Recipe:
    """Reads choices from the input bytes (atheris' or replay's) deterministically."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def number(self, below: int) -> int:
        value = self.byte() | self.byte() << 8 | self.byte() << 16
        return value % below if below else 0

    def rest(self) -> bytes:
        out, self._pos = self._data[self._pos :], len(self._data)
        return out

    def chunk(self) -> bytes:
        size = self.byte() % 9
        out = self._data[self._pos : self._pos + size]
        self._pos += size
        return out

    def byte_ops(self) -> list[tuple[str, int, bytes]]:
        kinds = ("set", "set", "insert", "delete", "truncate")
        return [(kinds[self.byte() % len(kinds)], self.number(1 << 24), self.chunk())
                for _ in range(1 + self.byte() % 4)]


def seed_bundle() -> bytes:
    """A small real bundle: categorical, nullable and integer columns, three methods."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import safemodel as sm

    rng = np.random.default_rng(0)
    n = 120
    size = rng.normal(10, 3, n)
    size[::17] = np.nan
    X = pd.DataFrame({
        "color": rng.choice(["red", "green", "blue"], n),
        "size": size,
        "count": rng.integers(0, 5, n),
    })
    y = np.where(np.nan_to_num(size, nan=10) + (X["color"] == "red") * 3 > 11, "big", "small")
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), ["size", "count"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
    ])
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    bundle = sm.ModelBundle.from_training(pipe, X, name="fuzz-seed", version="1.0.0",
                                          golden_rows=8, metadata={"owner": "fuzz"})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed.safemodel"
        bundle.save(path)
        # Unsigned, as a rehashed file is: the inputs explore the decoders the same way
        # whoever saved the seed, and every load trusts them on purpose (_audited_load).
        members = members_of(path.read_bytes())
        del members["signature.json"]
        return pack(members)


class Target:
    """Turns an input into a file, loads it, and classifies what happened."""

    # Modes whose edits leave the manifest alone: any change must be refused.
    UNHASHED = frozenset({"raw", "file-bytes", "member-bytes-unhashed"})

    def __init__(self, seed: bytes, folder: Path, *, strict: bool = False) -> None:
        self.seed = seed
        self.members = members_of(seed)
        self.names = list(self.members)
        self.json_names = [n for n in self.names if n.endswith(".json")]
        self.folder = folder
        self.strict = strict
        self.outcomes: Counter[str] = Counter()

    def candidate(self, data: bytes) -> tuple[str, bytes]:
        recipe = _Recipe(data)
        mode = recipe.byte() % 5
        if mode == 0:
            return "raw", recipe.rest()
        if mode == 1:
            return "file-bytes", edit_bytes(self.seed, recipe.byte_ops())
        if mode == 2:
            name = self.json_names[recipe.number(len(self.json_names))]
            doc = json.loads(self.members[name])
            for _ in range(1 + recipe.byte() % 3):
                paths = list(json_paths(doc))
                path = paths[recipe.number(len(paths))]
                action = ("replace", "replace", "delete", "insert")[recipe.byte() % 4]
                value = copy.deepcopy(INTERESTING[recipe.number(len(INTERESTING))])
                doc = edit_json(doc, path, action, value)
            text = json.dumps(doc).encode()
            if name == "manifest.json":  # hash the content first, or the edit is undone
                return "json", pack({**rehash(self.members), name: text})
            return "json", pack(rehash({**self.members, name: text}))
        name = self.names[recipe.number(len(self.names))]
        edited = {**self.members, name: edit_bytes(self.members[name], recipe.byte_ops())}
        if mode == 3:
            return "member-bytes", pack(rehash(edited) if name != "manifest.json" else edited)
        return "member-bytes-unhashed", pack(edited)

    def tampered(self, blob: bytes) -> bool:
        """Whether a member other than the manifest differs from the seed's.

        The manifest itself is covered by the signature only, so an unsigned bundle
        whose manifest was edited (its ``created`` text, say) still loads. inspect
        leaves the estimator's hash to load, which is why only load is asked.
        """
        try:
            members = members_of(blob)
        except (zipfile.BadZipFile, ValueError, EOFError):
            return True
        members.pop("manifest.json", None)
        return members != {n: d for n, d in self.members.items() if n != "manifest.json"}

    def __call__(self, data: bytes) -> None:
        import safemodel as sm

        mode, blob = self.candidate(data)
        path = self.folder / INPUT
        path.write_bytes(blob)
        for check in (sm.inspect, _audited_load):
            try:
                check(path)
                self.outcomes[f"{mode}: loaded"] += 1
                if check is _audited_load and mode in self.UNHASHED and self.tampered(blob):
                    raise AssertionError(f"load accepted modified content ({mode})")
            except sm.SafeModelError as exc:
                self.outcomes[f"{mode}: {type(exc).__name__}"] += 1
            except BaseException as exc:  # classifying them is the point
                reason = known_bug(exc)
                if reason is None or self.strict:
                    raise
                self.outcomes[f"{mode}: known bug ({reason})"] += 1
        leftovers = sorted(p.name for p in self.folder.iterdir())
        if leftovers != [INPUT]:
            raise AssertionError(f"loading wrote files: {leftovers}")


def _audited_load(path: Path) -> Any:
    import safemodel as sm

    # trust=True: a rehashed file is unsigned, and load refuses it before any decoder
    # runs; trusting it on purpose reaches every decoder and the enforced audit.
    return sm.load(path, trust=True, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)


def replay(runs: int, *, seed: int = 0, strict: bool = False) -> Counter[str]:
    """Run ``runs`` pseudo-random inputs (the same ones every time); return the outcomes."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        target = Target(seed_bundle(), Path(folder), strict=strict)
        for _ in range(runs):
            target(rng.randbytes(rng.randrange(1, 64)))
    return target.outcomes


def _quiet() -> None:
    import warnings

    logging.getLogger("safemodel").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")


def main(argv: list[str]) -> int:
    strict = os.environ.get("SAFEMODEL_FUZZ_STRICT") == "1"
    if len(argv) > 1 and argv[1] == "--replay":
        _quiet()
        outcomes = replay(int(argv[2]) if len(argv) > 2 else 500, strict=strict)
        for outcome, count in sorted(outcomes.items()):
            print(f"{count:6d}  {outcome}")
        return 0
    import atheris

    with atheris.instrument_imports(include=["safemodel"]):
        import safemodel  # noqa: F401

    _quiet()
    folder = Path(tempfile.mkdtemp(prefix="safemodel-fuzz-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = Target(seed_bundle(), folder, strict=strict)
    atheris.Setup(argv, target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
