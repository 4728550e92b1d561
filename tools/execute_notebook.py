#!/usr/bin/env python3
"""Re-execute the tutorial notebook and store its outputs, as the docs site shows them.

    PYTHONPATH=src .venv/bin/python tools/execute_notebook.py [NOTEBOOK ...]

Runs each notebook (default: every ``docs/tutorials/*.ipynb``) top to bottom with
nbclient, offline, in a temporary folder with its own safemodel home (so the bundle it
saves and the key that signs it land there, not in the docs or in ``~/.config``), then
writes it back with its outputs. Volatile metadata (execution times, kernel versions)
is dropped so that re-running it changes the file only when an output changes.
``tests/test_docs.py`` executes the notebook too, without writing it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parents[1] / "docs"


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["SAFEMODEL_HOME"] = str(Path(folder) / "home")
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": folder}}).execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)
    notebook.metadata.get("language_info", {}).pop("version", None)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    print(f"{path}: {len(notebook.cells)} cells executed, {path.stat().st_size:,} bytes")


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((DOCS / "tutorials").glob("*.ipynb"))
    for path in paths:
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
