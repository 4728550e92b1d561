"""The ``safemodel`` command: ``main(argv) -> int``."""

from safemodel.cli.main import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "main"]
