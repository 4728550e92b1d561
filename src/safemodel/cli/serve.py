"""``safemodel serve STORE``: every model behind an alias over HTTP (needs safemodel[serve])."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from safemodel.cli._common import load_options, loading_options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``serve`` command to the ``safemodel`` command line's subparsers."""
    p = subparsers.add_parser(
        "serve", help="serve every model behind an alias over HTTP (KServe V1 protocol)",
        description="Serve every model behind ALIAS in STORE over HTTP (KServe / "
                    "TF-Serving V1 REST protocol). See docs/serving.md.",
        parents=[loading_options()])
    p.add_argument("store", metavar="STORE", type=Path, help="the bundle store's folder")
    p.add_argument("--alias", default="production", help="default: production")
    p.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="default: 8000")
    p.add_argument("--refresh-interval", type=float, default=1.0, metavar="SECONDS",
                   help="how often aliases are re-read for promotions (default: 1.0)")
    p.add_argument("--max-body-bytes", type=int, metavar="N")
    p.add_argument("--max-rows", type=int, metavar="N")
    p.add_argument("--max-columns", type=int, metavar="N")
    p.add_argument("--max-string-length", type=int, metavar="N")
    p.add_argument("--no-access-log", action="store_true",
                   help="do not write one JSON line per request to standard error")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        from safemodel.integrations.serve import Limits, run
    except ImportError as exc:
        print(f"safemodel: error: 'safemodel serve' needs the serve extra "
              f"(pip install 'safemodel[serve]'): {exc}", file=sys.stderr)
        return 2
    given = {k: getattr(args, k) for k in ("max_body_bytes", "max_rows", "max_columns",
                                           "max_string_length") if getattr(args, k) is not None}
    if not args.store.is_dir():
        print(f"safemodel: error: {str(args.store)!r} is not a store folder", file=sys.stderr)
        return 2
    run(args.store, args.alias, host=args.host, port=args.port, limits=Limits(**given),
        refresh_interval=args.refresh_interval, access_log=not args.no_access_log,
        load_options=load_options(args))
    return 0
