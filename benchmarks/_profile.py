"""Function-level profiles of the hot paths, with pyinstrument (a sampling profiler).

The call tree is folded into one row per function: *cumulative* share of the time
(the function and everything it called, counted once even under recursion) and *self*
share (time on the function's own lines, including the C code those lines call).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

__all__ = ["FunctionShare", "profile"]

_HARNESS = ("benchmarks/_profile.py", "benchmarks/run.py")


@dataclass(frozen=True)
class FunctionShare:
    function: str
    cumulative: float  # percent of the profiled time
    self: float


def _label(frame: Any) -> str:
    path = PurePath(frame.file_path or "?").as_posix()
    for anchor in ("site-packages/", "/src/", "/lib/python3"):
        if anchor in path:
            path = path.rsplit(anchor, 1)[1]
            break
    if path.startswith(".") and "/" in path:  # "lib/python3.11/..." stdlib remainder
        path = path.split("/", 1)[1]
    module = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    owner = f"{frame.class_name}." if getattr(frame, "class_name", None) else ""
    return f"{module}.{owner}{frame.function}"


def profile(call: Callable[[], object], seconds: float, *, top: int = 14,
            interval: float = 0.0002) -> tuple[list[FunctionShare], int]:
    """Run ``call`` repeatedly for about ``seconds`` under pyinstrument.

    Returns the top functions by cumulative share, plus any with a self share of 3% or
    more and every safemodel function above 0.5% (the library's own cost, in detail),
    and the number of calls profiled.
    """
    from pyinstrument import Profiler

    call()  # warm: first-call imports and caches are not the steady state
    profiler = Profiler(interval=interval)
    calls = 0
    profiler.start()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or calls == 0:
        call()
        calls += 1
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    if root is None:
        return [], calls
    total = root.time or 1e-12
    cumulative: dict[str, float] = {}
    own: dict[str, float] = {}

    def visit(frame: Any, on_path: frozenset[str]) -> None:
        if frame.is_synthetic:
            return
        label = _label(frame)
        if label not in on_path:
            cumulative[label] = cumulative.get(label, 0.0) + frame.time
        own[label] = own.get(label, 0.0) + frame.total_self_time
        below = on_path | {label}
        for child in frame.children:
            visit(child, below)

    visit(root, frozenset())
    harness = {_label(f) for f in _walk(root) if not f.is_synthetic
               and PurePath(f.file_path or "").as_posix().endswith(_HARNESS)}
    rows = [FunctionShare(label, 100 * cumulative[label] / total, 100 * own.get(label, 0) / total)
            for label in cumulative if label not in harness]
    rows.sort(key=lambda r: -r.cumulative)
    chosen = rows[:top] + [r for r in rows[top:] if r.self >= 3.0 or (
        r.function.startswith("safemodel.") and r.cumulative >= 0.5)]
    chosen.sort(key=lambda r: -r.cumulative)
    return chosen, calls


def _walk(frame: Any) -> list[Any]:
    out = [frame]
    for child in frame.children:
        out.extend(_walk(child))
    return out
