"""safemodel inside other tools: the pytest plugin, Spark, Dask.

Each integration imports its tool only when used; ``import safemodel`` imports none.
"""

__all__: list[str] = []
