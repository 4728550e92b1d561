"""Reference profiles, drift statistics and reports, and the streaming :class:`Monitor`.

Pure computations over frames and profiles: nothing here imports the bundle, so both
the bundle (which builds and carries a profile) and the archive (which stores it)
can use them.
"""

__all__: list[str] = []
