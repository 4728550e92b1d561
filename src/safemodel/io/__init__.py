"""Bundle files: the archive, manifest, codecs, signing, the pickle audit, load and save."""

__all__: list[str] = []
