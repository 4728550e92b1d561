"""Many bundles: versions, aliases, history and promotion through verification."""

from safemodel.store.store import BundleStore, HistoryEntry, ModelService

__all__ = ["BundleStore", "HistoryEntry", "ModelService"]
