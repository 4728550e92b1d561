"""The bundles behind one alias, for a service that serves many models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from packaging.version import Version

from safemodel.core.bundle import ModelBundle

if TYPE_CHECKING:
    from safemodel.store.store import BundleStore

__all__ = ["ModelService"]


class ModelService:
    """The bundles behind one alias, loaded on first use (see :meth:`BundleStore.load_all`).

    ``service[name]`` (or :meth:`get`) reads the alias from disk and returns that
    version's bundle from the store's bounded, thread-safe cache, so a promotion is
    served on the next call without a restart.

    Examples
    --------
    >>> service = sm.BundleStore("models").load_all("production")   # doctest: +SKIP
    >>> service["churn"].predict_proba(records)                     # doctest: +SKIP
    """

    def __init__(self, store: BundleStore, alias: str) -> None:
        self._store = store
        self._alias = alias

    def __repr__(self) -> str:
        return f"<ModelService {self._alias!r} of {self._store!r}>"

    @property
    def alias(self) -> str:
        """The alias served."""
        return self._alias

    def names(self) -> list[str]:
        """Names that have the alias now, sorted."""
        return [n for n in self._store.names() if self._alias in self._store.aliases(n)]

    def version(self, name: str) -> Version:
        """The version the alias points at for ``name`` now."""
        return self._store.resolve(name, self._alias)

    def get(self, name: str) -> ModelBundle:
        """The verified bundle the alias points at for ``name`` now.

        Raises
        ------
        BundleNotFoundError
            When ``name`` is unknown or has no such alias (a ``StoreError`` and a
            ``KeyError``).
        """
        return self._store.get(name, self._alias)

    def preload(self) -> dict[str, Version]:
        """Load and verify every bundle behind the alias now; ``name -> version``."""
        return {name: self.get(name).version for name in self.names()}

    def __getitem__(self, name: str) -> ModelBundle:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
