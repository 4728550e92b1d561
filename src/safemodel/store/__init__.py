"""Many bundles: versions, aliases, history and promotion through verification.

One module per concept: ``layout`` (paths, name and alias rules), ``history`` (the
append-only log), ``locks`` (one change per name at a time), ``selection`` (versions,
specifiers, aliases), ``cache`` (verified bundles, shared with the cluster engines),
``service`` (:class:`ModelService`) and ``store`` (the :class:`BundleStore` facade).
"""

from safemodel.store.cache import VerifiedCache
from safemodel.store.history import HistoryEntry
from safemodel.store.service import ModelService
from safemodel.store.store import BundleStore

__all__ = ["BundleStore", "HistoryEntry", "ModelService", "VerifiedCache"]
