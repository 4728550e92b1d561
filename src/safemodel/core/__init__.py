"""The model and its rules: input frames, contract, policy, golden outputs, the bundle.

Nothing here touches a file; :mod:`safemodel.io` reads and writes bundles.
"""

__all__: list[str] = []
