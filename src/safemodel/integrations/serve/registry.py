"""The models a server serves now, and how a promotion reaches them.

A background thread reads the store's aliases every ``refresh_interval`` seconds.
When an alias moved, the new target is loaded and verified (integrity, signature,
golden outputs) *before* it replaces the old one, with one assignment of a new,
immutable mapping: a request takes one :class:`ServedModel` when it starts and uses
it to the end, so it never sees half of a switch. A target that fails to load or
verify is not served; the previous version stays, and :attr:`ModelRegistry.failures`
(``/readyz``, ``/metrics``) says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from safemodel.core.bundle import ModelBundle
from safemodel.errors import InvalidArgument, SafeModelError
from safemodel.monitoring.monitor import Monitor
from safemodel.store.store import BundleStore

__all__ = ["LoadFailure", "ModelRegistry", "ServedModel"]

logger = logging.getLogger("safemodel.serve")


@dataclass(frozen=True)
class ServedModel:
    """One verified bundle as served: identity, class labels, and its drift monitor."""

    name: str
    bundle: ModelBundle
    version: str
    fingerprint: str
    classes: tuple[str, ...] | None
    monitor: Monitor | None
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        """The ``GET /v1/models/{name}`` body."""
        return {
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "ready": True,
            "methods": list(self.bundle.methods),
            "classes": None if self.classes is None else list(self.classes),
            "columns": list(self.bundle.contract.names),
            "loaded_at": self.loaded_at,
        }


@dataclass(frozen=True)
class LoadFailure:
    """An alias target that this server refused to serve, and why."""

    name: str
    version: str | None
    error: str
    message: str
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "error": self.error,
                "message": self.message[:2000], "time": self.time}


def _classes(bundle: ModelBundle) -> tuple[str, ...] | None:
    if "predict_proba" not in bundle.methods:
        return None
    classes = getattr(bundle.estimator, "classes_", None)
    return None if classes is None else tuple(str(c) for c in classes)


class ModelRegistry:
    """Every model behind ``alias`` in ``store``, kept in step with the store.

    Parameters
    ----------
    store : BundleStore or path
        A path is opened as ``BundleStore(path, **load_options)``.
    alias : str, default "production"
    refresh_interval : float, default 1.0
        Seconds between two reads of the aliases: a promotion or rollback is served
        at most this long, plus the new version's load and verification, after it.
    load_options : mapping, optional
        Keyword arguments of :class:`BundleStore` (``signing_key``,
        ``allowed_modules``, ``environment`` ...) when ``store`` is a path.
    monitor : bool, default True
        Keep a drift :class:`Monitor` per served version.
    """

    def __init__(
        self,
        store: BundleStore | str | PathLike[str],
        alias: str = "production",
        *,
        refresh_interval: float = 1.0,
        load_options: Mapping[str, Any] | None = None,
        monitor: bool = True,
    ) -> None:
        if isinstance(refresh_interval, bool) or not isinstance(refresh_interval, int | float) \
                or not refresh_interval > 0:
            raise InvalidArgument.of("create_app", "refresh_interval", "a number of seconds > 0",
                                     refresh_interval)
        if isinstance(store, BundleStore):
            if load_options:
                raise InvalidArgument.of("create_app", "load_options",
                                         "None when store is a BundleStore (configure the "
                                         "store itself)", load_options)
            self.store = store
        else:
            self.store = BundleStore(store, **dict(load_options or {}))
        self.service = self.store.load_all(alias)
        self.alias = alias
        self.refresh_interval = float(refresh_interval)
        self._monitor = monitor
        self._models: Mapping[str, ServedModel] = {}
        self._failures: Mapping[str, LoadFailure] = {}
        self._targets: Mapping[str, str] = {}
        self._refreshed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    # ------------------------------------------------------------- state

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """``name -> ServedModel`` now (an immutable snapshot)."""
        return self._models

    @property
    def failures(self) -> Mapping[str, LoadFailure]:
        """Alias targets not served because they failed to load or verify."""
        return self._failures

    @property
    def targets(self) -> Mapping[str, str]:
        """``name -> version`` the alias pointed at on the last refresh."""
        return self._targets

    @property
    def refreshed(self) -> bool:
        """Whether the aliases have been read at least once."""
        return self._refreshed.is_set()

    def ready(self) -> bool:
        """Every model behind the alias is served, at the version the alias names."""
        if not self.refreshed:
            return False
        models = self._models
        return not self._failures and all(
            name in models and models[name].version == version
            for name, version in self._targets.items())

    # ------------------------------------------------------------- life

    def start(self) -> None:
        """Start the refresh thread (idempotent; the first refresh runs in it)."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._stopping.clear()
                thread = threading.Thread(target=self._run, name="safemodel-serve-refresh",
                                          daemon=True)
                thread.start()
                self._thread = thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the refresh thread."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wait_refreshed(self, timeout: float) -> bool:
        """Block until the first refresh is done (or ``timeout`` seconds)."""
        return self._refreshed.wait(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.refresh()
            except Exception:  # the thread must outlive any one bad read of the store
                logger.exception("refreshing the served models failed; will retry")
            self._stopping.wait(self.refresh_interval)

    # ------------------------------------------------------------- refresh

    def refresh(self) -> None:
        """Read the aliases once; load, verify and swap in every moved target."""
        with self._refresh_lock:
            targets: dict[str, str] = {}
            models = dict(self._models)
            failures = dict(self._failures)
            for name in self.service.names():
                try:
                    version = str(self.service.version(name))
                except SafeModelError as exc:
                    failures[name] = LoadFailure(name, None, type(exc).__name__, str(exc))
                    continue
                targets[name] = version
                served = models.get(name)
                if served is not None and served.version == version:
                    failures.pop(name, None)
                    continue
                known = failures.get(name)
                if known is not None and known.version == version:
                    continue  # refused once; a new promotion or rollback retries
                self._load(name, version, models, failures)
            for gone in set(models) - set(targets):
                del models[gone]  # the alias was removed: stop serving the name
            for gone in set(failures) - set(targets):
                del failures[gone]
            self._targets = targets
            self._models = models
            self._failures = failures
        self._refreshed.set()

    def _load(self, name: str, version: str, models: dict[str, ServedModel],
              failures: dict[str, LoadFailure]) -> None:
        try:
            bundle = self.store.get(name, version)
            monitor = Monitor(bundle) if self._monitor and bundle.profile is not None else None
        except SafeModelError as exc:
            failures[name] = LoadFailure(name, version, type(exc).__name__, str(exc))
            old = models.get(name)
            logger.error("not serving %s==%s: %s: %s; %s", name, version, type(exc).__name__,
                         exc, f"still serving {old.version}" if old else "nothing served")
            return
        previous = models.get(name)
        models[name] = ServedModel(name, bundle, str(bundle.version), bundle.fingerprint,
                                   _classes(bundle), monitor)
        failures.pop(name, None)
        logger.info("serving %s==%s (fingerprint %s)%s", name, bundle.version,
                    bundle.fingerprint, f", was {previous.version}" if previous else "")
