"""Plain-text tables and values, shared by ``describe()`` methods and the command line.

Base layer: imports nothing from safemodel, so any layer may format text the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["cell", "listing", "pairs", "table"]


def cell(value: Any) -> str:
    """One value as table text: ``-`` for none or NaN, ``yes``/``no``, 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """Left-aligned columns under ``headers``, two spaces apart."""
    cells = [[str(h) for h in headers], *[[cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    return "\n".join(lines)


def pairs(rows: Sequence[tuple[str, Any]], indent: str = "  ") -> str:
    """``key  value`` lines, keys padded to one width."""
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{indent}{k.ljust(width)}  {cell(v)}".rstrip() for k, v in rows)


def listing(values: Sequence[Any], limit: int = 8) -> str:
    """The first ``limit`` values, comma-separated, then how many more."""
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... (+{len(values) - limit} more)" if len(values) > limit else "")
