#!/usr/bin/env python3
"""Render the demo's drift report and screenshot it into ``docs/drift-report.png``.

    PYTHONPATH=src .venv/bin/python tools/render_report.py [--output PNG]

Runs ``python -m safemodel demo`` in a temporary folder (with its own safemodel home,
so its signing key lands there), which writes ``drift-report.html``, then opens that
file in headless Chromium and saves the top of the page (``--width`` x ``--height``
CSS pixels: the summary table and the first column's details) as a PNG.

The browser is the first of ``$CHROMIUM``, ``chromium-headless-shell``, ``chromium``,
``chromium-browser``, ``google-chrome`` found on ``PATH``; on Debian,
``apt-get install chromium-headless-shell`` provides one. The report is self-contained
(inline CSS and SVG), so the browser needs no network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    """The path of a Chromium-family browser, or exit saying how to get one."""
    candidates = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else list(BROWSERS)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"No headless browser found (looked for {', '.join(candidates)}). "
                     "Install one (Debian: apt-get install chromium-headless-shell) or "
                     "set $CHROMIUM to its path.")


def demo_report(folder: Path) -> Path:
    """Run the demo into ``folder``; return the drift report it wrote."""
    env = {**os.environ, "SAFEMODEL_HOME": str(folder / "home")}
    done = subprocess.run([sys.executable, "-m", "safemodel", "demo", "--output",
                           str(folder / "demo")], capture_output=True, text=True, env=env,
                          check=False)
    html = folder / "demo" / "drift-report.html"
    if done.returncode != 0 or not html.exists():
        raise SystemExit(f"safemodel demo failed (exit {done.returncode}):\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return html


def screenshot(html: Path, png: Path, *, width: int, height: int) -> None:
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu",
               "--hide-scrollbars", "--force-device-scale-factor=1",
               f"--window-size={width},{height}", f"--screenshot={png}", html.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.exists():
        raise SystemExit(f"{command[0]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DOCS / "drift-report.png")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=1250)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        html = demo_report(folder)
        shot = folder / "report.png"
        screenshot(html, shot, width=args.width, height=args.height)
        shutil.copyfile(shot, args.output)
    print(f"{args.output}: {args.output.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
