"""pytest plugin: turns bundle files into reproducibility tests (see docs/pytest-plugin.md)."""
