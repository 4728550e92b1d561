"""Run the server with uvicorn (what ``safemodel serve`` calls)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from os import PathLike
from typing import Any

from safemodel.integrations.serve.app import create_app
from safemodel.integrations.serve.limits import Limits
from safemodel.store.store import BundleStore

__all__ = ["run"]


def run(
    store: BundleStore | str | PathLike[str],
    alias: str = "production",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    refresh_interval: float = 1.0,
    load_options: Mapping[str, Any] | None = None,
    access_log: bool = True,
) -> None:
    """Serve ``store``'s ``alias`` targets on ``host:port`` until interrupted.

    One JSON line per request goes to standard error (``access_log=False`` to turn
    it off); uvicorn's own access log is off, as it would repeat each line.
    """
    import uvicorn

    log = logging.getLogger("safemodel.serve.access")
    handler: logging.Handler | None = None
    if access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    app = create_app(store, alias, limits=limits, refresh_interval=refresh_interval,
                     load_options=load_options)
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        if handler is not None:
            log.removeHandler(handler)
