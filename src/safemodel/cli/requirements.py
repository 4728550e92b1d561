"""``safemodel requirements PATH``: the pip requirement lines a bundle was built with.

Reads the manifest only (nothing is unpickled), so it works in an environment where the
bundle itself cannot run, which is when it is needed::

    safemodel requirements churn.safemodel > requirements-churn.txt
    pip install -r requirements-churn.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from safemodel.cli._common import common_options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``requirements`` command to the CLI's subparsers.

    Parameters
    ----------
    subparsers : argparse subparsers action
        What ``ArgumentParser.add_subparsers`` returned for the ``safemodel`` parser.
    """
    p = subparsers.add_parser(
        "requirements", parents=[common_options()],
        help="print the pip requirement lines a bundle was built with (never unpickles)",
        description="Print one 'name==version' line per package the bundle recorded at "
                    "build time (Python and the platform as comments), ready for "
                    "'pip install -r'.",
    )
    p.add_argument("bundle", metavar="PATH", type=Path)
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect
    from safemodel.io.upgrade import requirement_lines

    info = inspect(args.bundle)
    environment = dict(info.environment)
    lines = requirement_lines(environment)
    if getattr(args, "json", False):
        payload: dict[str, Any] = {
            "bundle": f"{info.name}=={info.version}",
            "path": str(args.bundle),
            "python": environment.get("python"),
            "platform": environment.get("platform"),
            "requirements": lines,
            "environment": environment,
        }
        print(json.dumps(payload, indent=2), file=sys.stdout)
        return 0
    print(f"# {info.name}=={info.version} was built with these packages "
          f"(Python {environment.get('python') or 'unknown'} on "
          f"{environment.get('platform') or 'unknown'})", file=sys.stdout)
    for line in lines:
        print(line, file=sys.stdout)
    return 0
