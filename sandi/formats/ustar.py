"""The sealed container's tar layer: a streaming POSIX ustar writer and a strict reader.

Pure codec over byte streams; no files are opened here and no path from an archive is ever
joined to a directory here. Invariants:

* **Writer**: every header is deterministic (uid/gid 0, empty uname/gname, devmajor/minor 0,
  ``ustar\\0`` + ``00``, typeflag ``0``, no prefix, no link name), names pass
  :func:`validate_member_name`, sizes and times fit the 11-digit octal fields, data is padded
  to 512 bytes, and the archive ends with two zero blocks. A name longer than the 100-byte
  ustar field (up to :data:`MAX_LONG_NAME_BYTES`) is carried by a pax extended header (typeflag
  ``x``, name ``PaxHeader``) holding exactly one ``path`` record, followed by the regular
  header with the name cut to 100 bytes (what GNU tar and bsdtar read; both take the pax
  path). :class:`UstarWriter` refuses to write more or fewer bytes than a header announced.
* **Reader**: :class:`UstarReader` accepts only what the writer produces (plus zero record
  padding at the end, as other tar writers add): every header checksum is verified; only
  regular files; ustar magic and version; no GNU long-name or other extension, and pax only as
  the writer uses it (one ``path`` record for a name over 100 bytes, the short form matching); names
  validated and not repeated; member count and size bounded *before* the data is read; padding
  must be zeros; the archive must end with two zero blocks followed by zeros only, and then
  EOF. Members are handed out one at a time as bounded streams; a short read anywhere is an
  error, so truncation is never mistaken for the end. Anything else raises :class:`UstarError`.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from sandi.errors import FormatError
from sandi.i18n import _

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "BLOCK_SIZE",
    "MAX_LONG_NAME_BYTES",
    "MAX_NAME_BYTES",
    "MAX_SIZE",
    "UstarError",
    "UstarMember",
    "UstarReader",
    "UstarWriter",
    "build_header",
    "sanitise_name",
    "validate_member_name",
    "write_end_of_archive",
    "write_member_header",
    "write_member_padding",
]

BLOCK_SIZE: Final = 512
#: The ustar name field; sandi never uses the prefix field (names are base names).
MAX_NAME_BYTES: Final = 100
#: Longest member name (bytes of UTF-8), carried in a pax ``path`` record past 100 bytes:
#: what file systems allow for one name (NAME_MAX, NTFS, FAT long names).
MAX_LONG_NAME_BYTES: Final = 255
_PAX_NAME: Final = b"PaxHeader"
_PAX_TYPE: Final = b"x"
#: Largest value an 11-digit octal field holds: members are < 8 GiB, times < year 2242.
MAX_SIZE: Final = 8**11 - 1
MAX_MTIME: Final = 8**11 - 1
#: Zero padding accepted after the end-of-archive marker (GNU tar and Python's tarfile pad
#: the archive to a 10240-byte record).
MAX_TRAILING_PADDING: Final = 10240

_MAGIC: Final = b"ustar\x00"
_VERSION: Final = b"00"
_REGULAR: Final = (b"0", b"\x00")
_ZERO_BLOCK: Final = bytes(BLOCK_SIZE)
# Characters Windows refuses in file names; refused here too so an opened document can be
# written under its own name everywhere.
_WINDOWS_RESERVED: Final = frozenset('<>:"|?*')
_FALLBACK_NAME: Final = "document"

_ID_FIELDS: Final = ((108, 116, "uid"), (116, 124, "gid"))
# Device numbers mean nothing for a regular file: Python's tarfile leaves them all-NUL.
_DEVICE_FIELDS: Final = ((329, 337, "devmajor"), (337, 345, "devminor"))
_TYPE_NAMES: Final = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "character device",
    b"4": "block device",
    b"5": "directory",
    b"6": "FIFO",
    b"7": "contiguous file",
    b"x": "pax extended header",
    b"g": "pax global header",
    b"L": "GNU long name",
    b"K": "GNU long link name",
}


class UstarError(FormatError):
    """The tar container does not follow sandi's ustar rules (or a name is not a safe base name)."""


# --- names ---------------------------------------------------------------------------------------


def _bad_char(ch: str) -> bool:
    # Cc: C0/C1 controls incl. NUL, DEL; Cf: format characters such as bidi overrides, which
    # can make "gpj.exe" display as "exe.jpg"; Cs: lone surrogates (undecodable OS names).
    return ch in "/\\" or ch in _WINDOWS_RESERVED or unicodedata.category(ch) in ("Cc", "Cf", "Cs")


def validate_member_name(name: str) -> str:
    """Return ``name`` if it is a safe base name, else raise :class:`UstarError`.

    Safe: non-empty; at most 255 bytes of UTF-8; no ``/`` or ``\\``; no control, format or
    surrogate character; none of ``<>:"|?*``; not ``.`` or ``..``; no leading or trailing
    whitespace; not starting with ``-`` (so ``minisign -m NAME`` or ``rm NAME`` cannot read it
    as an option). :func:`sanitise_name` returns exactly such names, and leaves them unchanged.
    """
    if not isinstance(name, str) or not name:
        raise UstarError(_("member name is empty"))
    if any(_bad_char(ch) for ch in name):
        raise UstarError(_("member name contains a path separator or a forbidden character"))
    if len(name.encode("utf-8")) > MAX_LONG_NAME_BYTES:
        raise UstarError(_("member name is longer than {max_name_bytes} bytes").format(
            max_name_bytes=MAX_LONG_NAME_BYTES,
        ))
    if name in (".", ".."):
        raise UstarError(_("member name is '.' or '..'"))
    if name != name.strip():
        raise UstarError(_("member name starts or ends with whitespace"))
    if name.startswith("-"):
        raise UstarError(_("member name starts with '-'"))
    return name


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def sanitise_name(name: str, *, max_bytes: int = MAX_LONG_NAME_BYTES) -> str:
    """Turn any input file name into a safe base name (one :func:`validate_member_name` accepts).

    Takes the last path component (``/`` and ``\\`` both count), replaces forbidden characters
    with ``_``, trims whitespace, replaces a leading ``-`` with ``_``, and shortens the name to
    ``max_bytes`` of UTF-8 keeping a short extension. ``.``/``..``/empty become ``document``.
    Pass a smaller ``max_bytes`` to leave room for a suffix (``.minisig`` needs 8).
    """
    if not isinstance(name, str):
        raise UstarError(_("file name must be text"))
    if not 1 <= max_bytes <= MAX_LONG_NAME_BYTES:
        raise UstarError(_("max_bytes out of range"))
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    base = "".join("_" if _bad_char(ch) else ch for ch in base).strip()
    if base.startswith("-"):
        base = "_" + base[1:]
    if base in ("", ".", ".."):
        base = _FALLBACK_NAME
    if len(base.encode("utf-8")) > max_bytes:
        stem, dot, ext = base.rpartition(".")
        keep_ext = bool(dot) and bool(stem) and 0 < len(ext.encode("utf-8")) <= 16
        suffix = "." + ext if keep_ext else ""
        stem = stem if keep_ext else base
        room = max_bytes - len(suffix.encode("utf-8"))
        # Trailing dots and spaces are trimmed: Windows drops them, which would rename the file.
        stem = _truncate_utf8(stem, room).rstrip(" .") if room > 0 else ""
        base = (stem + suffix) if stem else _truncate_utf8(base, max_bytes).rstrip(" .")
        if base in ("", ".", ".."):
            base = _truncate_utf8(_FALLBACK_NAME, max_bytes)
    return validate_member_name(base)


# --- writing -------------------------------------------------------------------------------------


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def _octal(value: int, width: int) -> bytes:
    # width-1 zero-padded octal digits and a NUL: what GNU tar and Python's tarfile write.
    return b"%0*o\x00" % (width - 1, value)


def short_name(name: str) -> bytes:
    """The ustar name field of a member: the name itself, or for a long name its first
    100 bytes cut at a character boundary (the pax ``path`` record carries the whole)."""
    raw = name.encode("utf-8")
    return raw if len(raw) <= MAX_NAME_BYTES else _truncate_utf8(name, MAX_NAME_BYTES).encode("utf-8")


def pax_path_record(name: str) -> bytes:
    """One pax record ``"<len> path=<name>\\n"``, its length counting its own digits."""
    body = b" path=" + name.encode("utf-8") + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode("ascii") + body


def build_pax_header(name: str, mtime: int) -> bytes:
    """The pax extended header (header block and padded data) that carries a long name."""
    record = pax_path_record(validate_member_name(name))
    header = _raw_header(_PAX_NAME, len(record), mtime, 0o644, _PAX_TYPE)
    return header + record + bytes(_padding(len(record)))


def build_header(name: str, size: int, mtime: int, mode: int = 0o644) -> bytes:
    """The 512-byte ustar header of one regular file (deterministic apart from the arguments)."""
    raw_name = short_name(validate_member_name(name))
    return _raw_header(raw_name, size, mtime, mode, b"0")


def _raw_header(raw_name: bytes, size: int, mtime: int, mode: int, typeflag: bytes) -> bytes:
    if not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise UstarError(_("member size does not fit a ustar header (must be below 8 GiB)"))
    if not isinstance(mtime, int) or not 0 <= mtime <= MAX_MTIME:
        raise UstarError(_("member time does not fit a ustar header"))
    if not isinstance(mode, int) or not 0 <= mode <= 0o777:
        raise UstarError(_("member mode must be permission bits only (0..0o777)"))
    header = bytearray(BLOCK_SIZE)
    header[0 : len(raw_name)] = raw_name
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(0, 8)  # uid
    header[116:124] = _octal(0, 8)  # gid
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b" " * 8  # checksum is computed over spaces here
    header[156:157] = typeflag
    # linkname (157..257) stays zero
    header[257:263] = _MAGIC
    header[263:265] = _VERSION
    # uname, gname (265..329) empty
    header[329:337] = _octal(0, 8)  # devmajor
    header[337:345] = _octal(0, 8)  # devminor
    # prefix (345..500) and 500..512 stay zero
    header[148:156] = b"%06o\x00 " % sum(header)
    return bytes(header)


def write_member_header(dst: _Writable, name: str, size: int, mtime: int, mode: int = 0o644) -> None:
    """Write the header of one regular file; the caller then writes exactly ``size`` bytes."""
    dst.write(build_header(name, size, mtime, mode))


def _padding(size: int) -> int:
    return -size % BLOCK_SIZE


def write_member_padding(dst: _Writable, size: int) -> None:
    """Write the zeros that round a member of ``size`` bytes up to a 512-byte block."""
    pad = _padding(size)
    if pad:
        dst.write(bytes(pad))


def write_end_of_archive(dst: _Writable) -> None:
    """Two zero blocks. No record padding: GNU tar, bsdtar and tarfile read it without complaint."""
    dst.write(bytes(2 * BLOCK_SIZE))


class UstarWriter:
    """Streams members into ``dst``: ``begin_member``, ``write`` exactly ``size`` bytes, ``end_member``."""

    def __init__(self, dst: _Writable) -> None:
        self._dst = dst
        self._remaining: int | None = None
        self._size = 0
        self._finished = False
        self._names: set[str] = set()

    def begin_member(self, name: str, size: int, mtime: int, mode: int = 0o644) -> None:
        if self._finished or self._remaining is not None:
            raise UstarError(_("previous member not ended, or archive already finished"))
        if name in self._names:
            raise UstarError(_("duplicate member name"))
        header = build_header(name, size, mtime, mode)
        self._names.add(name)
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            self._dst.write(build_pax_header(name, mtime))
        self._dst.write(header)
        self._remaining = size
        self._size = size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._remaining is None:
            raise UstarError(_("no member is open"))
        if len(data) > self._remaining:
            raise UstarError(_("more data than the member header announced"))
        self._remaining -= len(data)
        self._dst.write(bytes(data))

    def end_member(self) -> None:
        if self._remaining is None:
            raise UstarError(_("no member is open"))
        if self._remaining:
            raise UstarError(_("less data than the member header announced"))
        write_member_padding(self._dst, self._size)
        self._remaining = None

    def add_member(self, name: str, data: bytes, mtime: int, mode: int = 0o644) -> None:
        self.begin_member(name, len(data), mtime, mode)
        self.write(data)
        self.end_member()

    def finish(self) -> None:
        if self._finished or self._remaining is not None:
            raise UstarError(_("previous member not ended, or archive already finished"))
        write_end_of_archive(self._dst)
        self._finished = True


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UstarMember:
    """One regular file: its validated base name, size, mode, mtime and a bounded data stream."""

    name: str
    size: int
    mode: int
    mtime: int
    stream: io.RawIOBase


def _parse_octal(field: bytes, what: str) -> int:
    # Octal digits, then at least one NUL or space terminator, then only NULs/spaces.
    # No leading spaces, no base-256 (GNU's encoding for big numbers), no empty field.
    digits = field.rstrip(b"\x00 ")
    if not digits or len(digits) == len(field) or any(c not in b"01234567" for c in digits):
        raise UstarError(_("tar header: malformed {what} field").format(what=what))
    return int(digits, 8)


def _parse_name(field: bytes) -> str:
    raw, _unused, rest = field.partition(b"\x00")
    if rest.strip(b"\x00"):
        raise UstarError(_("tar header: bytes after the end of the name"))
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UstarError(_("tar header: member name is not UTF-8")) from None
    return validate_member_name(name)


class _MemberStream(io.RawIOBase):
    """Reads exactly ``size`` bytes of one member from the reader; a short source is an error."""

    def __init__(self, reader: UstarReader, size: int) -> None:
        super().__init__()
        self._reader = reader
        self._remaining = size
        self._valid = True

    def readable(self) -> bool:
        return True

    @property
    def remaining(self) -> int:
        return self._remaining

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if not self._valid:
            raise UstarError(_("this member's stream is no longer current"))
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._remaining)
        if n == 0:
            return 0
        data = self._reader._read_some(n)
        view[: len(data)] = data
        self._remaining -= len(data)
        return len(data)

    def _invalidate(self) -> None:
        self._valid = False


class UstarReader:
    """Strict, streaming reader of sandi's ustar container.

    Iterate to get members one at a time; moving to the next member skips whatever the caller
    did not read of the previous one (at most ``max_member_size`` bytes) and checks its padding.
    Iteration ends normally only after the end-of-archive marker, its trailing zeros and EOF.
    """

    def __init__(self, src: _Readable, *, max_members: int, max_member_size: int) -> None:
        if max_members < 0 or max_member_size < 0:
            raise UstarError(_("limits must not be negative"))
        self._src = src
        self._max_members = max_members
        self._max_member_size = max_member_size
        self._count = 0
        self._names: set[str] = set()
        self._current: _MemberStream | None = None
        self._current_size = 0
        self._done = False

    # Reads at most n bytes (at least 1 unless EOF); loops over short reads of pipes.
    def _read_some(self, n: int) -> bytes:
        data = self._src.read(n)
        if not data:
            raise UstarError(_("tar archive is truncated"))
        if len(data) > n:
            raise UstarError(_("source returned more data than asked for"))
        return data

    def _read_exact(self, n: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < n:
            data = self._read_some(n - got)
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def _finish_current(self) -> None:
        if self._current is None:
            return
        stream = self._current
        while stream.remaining:
            if not stream.read(min(stream.remaining, 64 * 1024)):
                raise UstarError(_("tar archive is truncated"))
        stream._invalidate()
        pad = _padding(self._current_size)
        if pad and self._read_exact(pad) != bytes(pad):
            raise UstarError(_("tar member padding is not zero"))
        self._current = None

    def _check_end(self) -> None:
        # First zero block seen: the second must be zero too, then only zeros, then EOF.
        if self._read_exact(BLOCK_SIZE) != _ZERO_BLOCK:
            raise UstarError(_("tar archive: data after a single zero block"))
        trailing = 0
        while True:
            data = self._src.read(BLOCK_SIZE)
            if not data:
                break
            trailing += len(data)
            if trailing > MAX_TRAILING_PADDING or data.count(0) != len(data):
                raise UstarError(_("tar archive: data after the end-of-archive marker"))
        self._done = True

    def next_member(self) -> UstarMember | None:
        """The next member, or None after a correctly terminated archive."""
        if self._done:
            return None
        self._finish_current()
        header = self._read_exact(BLOCK_SIZE)
        if header == _ZERO_BLOCK:
            self._check_end()
            return None
        return self._parse_header(header)

    def _parse_header(self, header: bytes) -> UstarMember:
        long_name = None
        if header[156:157] == _PAX_TYPE:
            long_name = self._read_pax_path(header)
            header = self._read_exact(BLOCK_SIZE)
            if header == _ZERO_BLOCK or header[156:157] == _PAX_TYPE:
                raise UstarError(_("tar archive: a pax header must be followed by its member"))
        member = self._parse_plain_header(header, long_name)
        return member

    def _check_header_block(self, header: bytes) -> None:
        stored = _parse_octal(header[148:156], "checksum")
        if stored != sum(header[:148]) + 8 * 0x20 + sum(header[156:]):
            raise UstarError(_("tar header: checksum mismatch"))
        if header[257:263] != _MAGIC or header[263:265] != _VERSION:
            raise UstarError(_("tar header: not a POSIX ustar header"))

    def _read_pax_path(self, header: bytes) -> str:
        """The long name a pax header carries: one ``path`` record, nothing else."""
        self._check_header_block(header)
        if header[0:100].rstrip(b"\x00") != _PAX_NAME or header[345:500].strip(b"\x00"):
            raise UstarError(_("tar archive: unexpected pax extended header"))
        size = _parse_octal(header[124:136], "size")
        if not 0 < size <= BLOCK_SIZE:  # bounded before reading: one record of one name
            raise UstarError(_("tar archive: pax header of unexpected size"))
        data = self._read_exact(size)
        pad = _padding(size)
        if pad and self._read_exact(pad) != bytes(pad):
            raise UstarError(_("tar member padding is not zero"))
        length, space, rest = data.partition(b" ")
        if not space or not length.isdigit() or length.startswith(b"0") or int(length) != len(data):
            raise UstarError(_("tar archive: malformed pax record"))
        if not rest.startswith(b"path=") or not rest.endswith(b"\n") or b"\n" in rest[:-1]:
            raise UstarError(_("tar archive: a pax header may only carry a path"))
        try:
            name = rest[len(b"path="):-1].decode("utf-8")
        except UnicodeDecodeError:
            raise UstarError(_("tar header: member name is not UTF-8")) from None
        name = validate_member_name(name)
        if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
            raise UstarError(_("tar archive: pax path for a name that fits the ustar header"))
        return name

    def _parse_plain_header(self, header: bytes, long_name: str | None) -> UstarMember:
        stored = _parse_octal(header[148:156], "checksum")
        if stored != sum(header[:148]) + 8 * 0x20 + sum(header[156:]):
            raise UstarError(_("tar header: checksum mismatch"))
        if header[257:263] != _MAGIC or header[263:265] != _VERSION:
            raise UstarError(_("tar header: not a POSIX ustar header"))
        typeflag = header[156:157]
        if typeflag not in _REGULAR:
            kind = _TYPE_NAMES.get(typeflag, "unknown type")
            raise UstarError(_("tar archive: {kind} member refused (only regular files)").format(kind=kind))
        if header[157:257].strip(b"\x00"):
            raise UstarError(_("tar header: link name on a regular file"))
        if header[345:500].strip(b"\x00"):
            raise UstarError(_("tar header: path prefix refused (members are base names)"))
        if header[500:512].strip(b"\x00"):
            raise UstarError(_("tar header: non-zero padding"))
        if long_name is None:
            name = _parse_name(header[0:100])
        else:
            if header[0:100].rstrip(b"\x00") != short_name(long_name):
                raise UstarError(_("tar archive: the member's name does not match its pax path"))
            name = long_name
        mode = _parse_octal(header[100:108], "mode")
        if mode > 0o777:
            raise UstarError(_("tar header: special mode bits refused"))
        for lo, hi, what in _ID_FIELDS:
            _parse_octal(header[lo:hi], what)
        for lo, hi, what in _DEVICE_FIELDS:
            if header[lo:hi] != bytes(hi - lo):
                _parse_octal(header[lo:hi], what)
        size = _parse_octal(header[124:136], "size")
        mtime = _parse_octal(header[136:148], "mtime")
        # Limits before any data is read.
        if self._count >= self._max_members:
            raise UstarError(_("tar archive has more than {max_members} members").format(
                max_members=self._max_members,
            ))
        if size > self._max_member_size:
            raise UstarError(_("tar member is larger than {max_member_size} bytes").format(
                max_member_size=self._max_member_size,
            ))
        if name in self._names:
            raise UstarError(_("tar archive: duplicate member name"))
        self._names.add(name)
        self._count += 1
        self._current = _MemberStream(self, size)
        self._current_size = size
        return UstarMember(name=name, size=size, mode=mode, mtime=mtime, stream=self._current)

    def __iter__(self) -> Iterator[UstarMember]:
        while True:
            member = self.next_member()
            if member is None:
                return
            yield member

    def members_read(self) -> int:
        return self._count
