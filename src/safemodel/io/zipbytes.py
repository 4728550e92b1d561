"""The zip container of a bundle, byte by byte: one writer and one strict reader.

safemodel writes one canonical kind of zip (APPNOTE 6.3.x): members *stored*, not
deflated, back to back from byte 0, each behind a local header whose every field is
fixed but its CRC-32, sizes and name; then the central directory, one record per
member; then the end record, without comment. No zip64, no extra fields, no data
descriptors, ASCII names. These are the bytes :mod:`zipfile` wrote for bundles of
format 1, so every existing bundle reads, and any zip tool can list a bundle.

The reader accepts exactly that layout and nothing else: every header must be the one
the writer would write for the same members, and members must tile the file up to
the central directory. A changed byte anywhere in a bundle is therefore either inside
a member (whose SHA-256 the manifest holds, and whose CRC-32 is checked on reading)
or in a header the reader refuses. It also means a declared size can never exceed the
file, so nothing is allocated before it is known to exist.

Why our own code rather than :mod:`zipfile`: checking canonical headers through
``zipfile`` needs its private attributes (``FileHeader()``, ``start_dir``, ``fp``),
which a Python release may change; the format here is about eighty lines of
:mod:`struct`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any, Final

from safemodel.errors import BundleFormatError, IntegrityError

__all__ = ["DAMAGED_NEXT_STEP", "MAX_MEMBERS", "Entry", "ZipReader", "ZipWriter", "pack"]

DAMAGED_NEXT_STEP: Final = (
    "Do not load it: fetch the bundle again from where it was published (your store or "
    "artifact registry), or rebuild it with ModelBundle.from_training and save it again."
)
"""The last sentence of every error about a damaged or modified bundle file."""

MAX_MEMBERS: Final = 256

_LOCAL: Final = struct.Struct("<4s2B4HL2L2H")  # local file header (APPNOTE 4.3.7)
_CENTRAL: Final = struct.Struct("<4s4B4HL2L5H2L")  # central directory record (4.3.12)
_END: Final = struct.Struct("<4s4H2LH")  # end of central directory record (4.3.16)
_LOCAL_SIG: Final = b"PK\x03\x04"
_CENTRAL_SIG: Final = b"PK\x01\x02"
_END_SIG: Final = b"PK\x05\x06"
_VERSION: Final = 20  # "2.0": what stored members need; zipfile.DEFAULT_VERSION
_UNIX: Final = 3  # "made by" system
_DOS_DATE: Final = 1 << 5 | 1  # 1980-01-01, the earliest a zip can say
_DOS_TIME: Final = 0  # 00:00:00
_ATTR: Final = 0o644 << 16  # -rw-r--r--
_LIMIT: Final = 0xFFFFFFFF  # sizes and offsets at or above this need zip64


def _local_header(name: bytes, crc: int, size: int) -> bytes:
    return _LOCAL.pack(_LOCAL_SIG, _VERSION, 0, 0, 0, _DOS_TIME, _DOS_DATE, crc, size, size,
                       len(name), 0) + name


def _central_record(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return _CENTRAL.pack(_CENTRAL_SIG, _VERSION, _UNIX, _VERSION, 0, 0, 0, _DOS_TIME,
                         _DOS_DATE, crc, size, size, len(name), 0, 0, 0, 0, _ATTR,
                         offset) + name


# ------------------------------------------------------------------------ write


class ZipWriter:
    """Write members to ``fh`` one by one; :meth:`finish` writes the directory.

    Names are written as given (the reader, not the writer, judges them), so tests
    can build hostile archives with the very headers a save writes.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self._records: list[bytes] = []
        self._offset = 0

    def add(self, name: str, data: bytes) -> None:
        """Append one stored member."""
        if not name.isascii():
            raise BundleFormatError(f"Member name {name!r} is not ASCII; bundles hold only "
                                    "ASCII names.", member=name)
        raw = name.encode("ascii")
        if len(data) >= _LIMIT or self._offset + len(data) + 30 + len(raw) >= _LIMIT:
            raise BundleFormatError(
                f"Member {name!r} ({len(data)} bytes) would take the bundle past 4 GiB, the "
                "largest archive safemodel writes; make the estimator smaller.", member=name,
                expected=_LIMIT, found=len(data),
            )
        crc = zlib.crc32(data)
        header = _local_header(raw, crc, len(data))
        self.fh.write(header)
        self.fh.write(data)
        self._records.append(_central_record(raw, crc, len(data), self._offset))
        self._offset += len(header) + len(data)

    def finish(self) -> None:
        """Write the central directory and the end record."""
        directory = b"".join(self._records)
        count = len(self._records)
        self.fh.write(directory)
        self.fh.write(_END.pack(_END_SIG, 0, 0, count, count, len(directory),
                                self._offset, 0))


def pack(members: Iterable[tuple[str, bytes]]) -> bytes:
    """The canonical archive of ``(name, data)`` pairs, in memory (duplicates kept)."""
    import io

    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name, data in members:
        writer.add(name, data)
    writer.finish()
    return buf.getvalue()


# ------------------------------------------------------------------------ read


@dataclass(frozen=True)
class Entry:
    """One member as the central directory declares it."""

    name: str
    offset: int  # of its local header
    size: int
    crc: int
    canonical: bool = True  # every other field of its record is the one we write

    @property
    def data_offset(self) -> int:
        return self.offset + _LOCAL.size + len(self.name)


def _not_a_zip(label: str, why: str) -> BundleFormatError:
    return BundleFormatError(
        f"{label} is not a safemodel bundle: it is not a readable zip archive ({why}). It "
        "may be truncated or another kind of file; save it again with ModelBundle.save.",
        found=why,
    )


class ZipReader:
    """The members of the canonical archive open in ``fh`` (``label`` names it in errors).

    Construction checks the whole structure (see the module docstring); reading a
    member then checks its CRC-32.
    """

    def __init__(self, fh: IO[bytes], label: str) -> None:
        self._fh = fh
        size = fh.seek(0, os.SEEK_END)  # works on a file and on bytes in memory
        if size < _END.size:
            raise _not_a_zip(label, f"{size} bytes, shorter than a zip end record")
        fh.seek(size - _END.size)
        sig, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment = _END.unpack(
            fh.read(_END.size))
        if sig != _END_SIG:
            raise _not_a_zip(label, "no zip end record at the end of the file")
        if (disk, cd_disk, comment) != (0, 0, 0) or on_disk != count:
            raise _damaged("The zip end record is not the one safemodel writes: the "
                                 "file was modified after saving.", member="(end record)")
        if count > MAX_MEMBERS:
            raise BundleFormatError(f"The archive has {count} members; a bundle has at "
                                    f"most {MAX_MEMBERS}.", found=count)
        if cd_offset + cd_size + _END.size != size:
            raise _damaged(
                f"The zip central directory is declared at bytes {cd_offset} to "
                f"{cd_offset + cd_size}, but the end record starts at byte "
                f"{size - _END.size}: the file was modified after saving.",
                member="(directory)", expected=size - _END.size, found=cd_offset + cd_size,
            )
        fh.seek(cd_offset)
        self.entries = _parse_directory(fh.read(cd_size), count, label)
        _check_names(self.entries)
        self._check_layout(cd_offset)

    def _check_layout(self, cd_offset: int) -> None:
        """Members lie back to back from byte 0 behind the headers the writer writes."""
        offset = 0
        for entry in self.entries:
            if not entry.canonical:
                raise _not_canonical(entry.name)
            if entry.offset != offset:
                raise _damaged(
                    f"Member {entry.name!r} starts at byte {entry.offset}, not at byte "
                    f"{offset} where the one before it ends: a declared size is false or "
                    "bytes were added; the file was modified after saving.",
                    member=entry.name, expected=offset, found=entry.offset,
                )
            header = _local_header(entry.name.encode("ascii"), entry.crc, entry.size)
            self._fh.seek(entry.offset)
            if self._fh.read(len(header)) != header:
                raise _not_canonical(entry.name)
            offset += len(header) + entry.size
        if offset != cd_offset:
            raise _damaged(
                f"The zip members end at byte {offset}, but the central directory starts "
                f"at byte {cd_offset}: a declared size is false or bytes were added; the "
                "file was modified after saving.", member="(directory)",
                expected=cd_offset, found=offset,
            )

    def read(self, entry: Entry, limit: int) -> bytes:
        """The member's bytes; refused when larger than ``limit`` or damaged."""
        if entry.size > limit:
            raise _damaged(
                f"Member {entry.name!r} declares {entry.size} bytes; expected at most "
                f"{limit}.", member=entry.name, expected=limit, found=entry.size,
            )
        self._fh.seek(entry.data_offset)
        data = self._fh.read(entry.size)
        if len(data) != entry.size or zlib.crc32(data) != entry.crc:
            raise _damaged(
                f"Member {entry.name!r} does not match the CRC-32 of its zip header; the "
                "file is damaged.", member=entry.name, expected=entry.crc,
                found=zlib.crc32(data),
            )
        return data


def _parse_directory(directory: bytes, count: int, label: str) -> list[Entry]:
    entries: list[Entry] = []
    pos = 0
    for _ in range(count):
        fixed = directory[pos : pos + _CENTRAL.size]
        if len(fixed) < _CENTRAL.size or not fixed.startswith(_CENTRAL_SIG):
            raise _not_a_zip(label, f"central directory record {len(entries)} is cut short")
        (_sig, made_by, system, needs, reserved, flags, method, time, date, crc, csize,
         size, name_len, extra_len, comment_len, disk, internal, external,
         offset) = _CENTRAL.unpack(fixed)
        start = pos + _CENTRAL.size
        raw = directory[start : start + name_len]
        # zipfile's reading of a name without the UTF-8 flag; any non-ASCII byte (or
        # the flag) is refused below as a header safemodel does not write.
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        pos = start + name_len + extra_len + comment_len
        canonical = (
            (made_by, system, needs, reserved, flags, method, time, date) ==
            (_VERSION, _UNIX, _VERSION, 0, 0, 0, _DOS_TIME, _DOS_DATE)
            and csize == size and (extra_len, comment_len, disk, internal) == (0, 0, 0, 0)
            and external == _ATTR and raw.isascii() and len(raw) == name_len
        )
        entries.append(Entry(name, offset, size, crc, canonical))
    if pos != len(directory):
        raise _damaged("The zip central directory is not the one safemodel writes: "
                             "the file was modified after saving.", member="(directory)")
    return entries


def _check_names(entries: list[Entry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        name = entry.name
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise BundleFormatError(f"Unsafe member name {name!r} in the archive: bundles "
                                    "never hold absolute or parent-relative paths.",
                                    member=name)
        if name in seen:
            raise BundleFormatError(f"Member {name!r} appears twice in the archive; the "
                                    "file was tampered with or badly written.", member=name)
        seen.add(name)


def _not_canonical(name: str) -> IntegrityError:
    return _damaged(
        f"The zip headers of member {name!r} are not the ones safemodel writes: the file "
        "was modified after saving or written by another tool.", member=name,
    )


def _damaged(message: str, **context: Any) -> IntegrityError:
    """An :class:`IntegrityError` about changed bytes, ending with what to do next."""
    return IntegrityError(f"{message} {DAMAGED_NEXT_STEP}", **context)
