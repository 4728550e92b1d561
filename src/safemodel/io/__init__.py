"""Bundle files: the archive, manifest, codecs, signing, the pickle audit, load and save.

Importing this package registers the archive writer behind ``ModelBundle.save`` (see
:class:`safemodel.core.writer.BundleWriter`).
"""

from safemodel.io import archive as _archive  # noqa: F401  (registers the writer)

__all__: list[str] = []
