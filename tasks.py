#!/usr/bin/env python3
"""Project tasks that work from a fresh clone with nothing but Python.

    python3 tasks.py demo    # set up .venv, install safemodel[demo], run the demo
    python3 tasks.py test    # set up .venv, install safemodel[test,docs], lint, type-check,
                             # check the layers, test, build the docs site (mkdocs --strict)
    python3 tasks.py docs    # build the site into site/ (add `serve` to preview it)
    python3 tasks.py bench   # set up .venv with the peers, run benchmarks/ (add --quick)

Each command creates ``.venv`` next to this file when it is missing and (re)installs
the project when ``pyproject.toml`` changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT)
    if code:
        raise SystemExit(code)


def ensure_env(extras: str) -> None:
    if not PY.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        target = f".[{extras}]" if extras else "."
        run(PY, "-m", "pip", "install", "-q", "-e", target)
        stamp.write_text(digest)


def build_docs(*args: str) -> None:
    # --strict turns every warning (a broken link, a docstring griffe cannot read) into a
    # failure; the theme loads no web fonts, so the build needs no network.
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    run(PY, "-m", "mkdocs", "build", "--strict", "--site-dir", "site", *args)


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    rest = argv[1:]
    if task == "demo":
        ensure_env("demo")
        run(PY, "-m", "safemodel", "demo", *rest)
    elif task == "test":
        ensure_env("test,docs")
        run(PY, "-m", "ruff", "check", *(d for d in ("src", "tests", "benchmarks")
                                         if (ROOT / d).is_dir()))
        run(PY, "-m", "mypy", "--strict", "src")
        run(BIN / "lint-imports")  # the layers of docs/architecture.md
        run(PY, "-m", "pytest", *rest)
        build_docs()
    elif task == "docs":
        ensure_env("docs")
        if rest[:1] == ["serve"]:
            run(PY, "-m", "mkdocs", "serve", *rest[1:])
        else:
            build_docs(*rest)
    elif task == "bench":
        ensure_env("test,bench")
        run(PY, "benchmarks/run.py", *rest)
    else:
        print(__doc__)
        return 0 if task in {"help", "-h", "--help"} else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
