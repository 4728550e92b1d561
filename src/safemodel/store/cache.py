"""Verified bundles of this process, by fingerprint: one cache for the store and the
engines.

A bundle's fingerprint names its content, so a bundle loaded and verified once needs
neither again while it stays in memory, and after it is dropped it needs loading but
not re-verifying. Loading takes seconds (unpickling, golden outputs), so the cache
locks per key: threads asking for different bundles load them at the same time, and
threads asking for the same one wait for a single load. A failed load is not cached:
the next request tries again (and fails again, if the file is bad).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from safemodel.errors import InvalidArgument

__all__ = ["VerifiedCache"]

T = TypeVar("T")


@dataclass
class _Pending:
    """The lock of one key's load, and how many threads hold or wait for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class VerifiedCache(Generic[T]):
    """A bounded, thread-safe map ``fingerprint -> loaded bundle``, locked per key.

    Parameters
    ----------
    max_size : int
        Most values kept; the least recently used are dropped first.

    Notes
    -----
    The cache also remembers, without bound, which keys were ever verified here (a set
    of fingerprints, a few dozen bytes each), so that a bundle dropped and loaded again
    can skip its golden verification: ``load`` is told.

    Examples
    --------
    >>> cache = VerifiedCache(max_size=2)
    >>> cache.get("abc", lambda verified_before: f"loaded (verified before: {verified_before})")
    'loaded (verified before: False)'
    >>> cache.get("abc", lambda verified_before: "not called")
    'loaded (verified before: False)'
    """

    def __init__(self, max_size: int) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise InvalidArgument.of("VerifiedCache", "max_size", "an int >= 1", max_size)
        self._max_size = max_size
        self._lock = threading.Lock()  # guards the dicts below; never held during a load
        self._values: OrderedDict[str, T] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        self._verified: set[str] = set()

    @property
    def max_size(self) -> int:
        """Most values kept."""
        return self._max_size

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def verified(self, key: str) -> bool:
        """Whether a value for ``key`` was ever verified and kept in this cache."""
        with self._lock:
            return key in self._verified

    def get(self, key: str, load: Callable[[bool], T]) -> T:
        """The value for ``key``, loaded with ``load(verified_before)`` when absent.

        Parameters
        ----------
        key : str
            A fingerprint.
        load : callable
            Called with ``True`` when a value for ``key`` was verified here before
            (so it may skip verification), else ``False``; returns the verified value.
            At most one thread at a time runs ``load`` for a given key. What it raises
            reaches its caller and nothing is cached: a thread that was waiting for
            that load then loads itself.

        Returns
        -------
        The cached or newly loaded value.
        """
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            pending = self._pending.setdefault(key, _Pending())
            pending.users += 1
        try:
            with pending.lock:  # one load per key; other keys are not held up
                with self._lock:
                    if key in self._values:  # loaded by the thread we waited for
                        self._values.move_to_end(key)
                        return self._values[key]
                    verified = key in self._verified
                value = load(verified)
                self.put(key, value)
                return value
        finally:
            with self._lock:
                pending.users -= 1
                if pending.users == 0:
                    del self._pending[key]

    def put(self, key: str, value: T) -> None:
        """Keep ``value``, verified just now, as the value of ``key``."""
        with self._lock:
            self._verified.add(key)
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._max_size:
                self._values.popitem(last=False)
