"""Request limits of the model server (answered with HTTP 413)."""

from __future__ import annotations

from dataclasses import dataclass

from safemodel.errors import InvalidArgument

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """What one prediction request may hold; anything over is answered 413.

    Parameters
    ----------
    max_body_bytes : int, default 16 MiB
        Size of the request body, checked on ``Content-Length`` and while reading.
    max_rows : int, default 10,000
        Records in ``instances``.
    max_columns : int, default 1,000
        Keys in one record (extra keys included).
    max_string_length : int, default 10,000
        Characters of one string value or key.
    max_echo : int, default 200
        Characters of an offending value echoed back in an error body.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_rows: int = 10_000
    max_columns: int = 1_000
    max_string_length: int = 10_000
    max_echo: int = 200

    def __post_init__(self) -> None:
        for field in ("max_body_bytes", "max_rows", "max_columns", "max_string_length",
                      "max_echo"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgument.of("Limits", field, "an integer >= 1", value)
