"""ASCII armor for age files: strict streaming PEM decoder and canonical encoder.

The armor is not cryptography, so it is malleable unless the parser is strict. The
decoder accepts exactly (RFC 7468 strict form, as age and the CCTV vectors define it):

* at most 1 KiB of whitespace before ``-----BEGIN AGE ENCRYPTED FILE-----`` and less
  than 1 KiB of whitespace after ``-----END AGE ENCRYPTED FILE-----``, nothing else;
* LF or CRLF line ends; no PEM headers, no blank lines, no checksum line;
* base64 lines of exactly 64 columns, except the last data line, which may be shorter
  and must then be followed by the END line; padded, strict, canonical base64.

Anything else raises ``AgeError("armor")``. Decoding is streaming with bounded memory:
whole blocks of regular 64-column lines are checked and decoded at C speed, the edges
(first, short and last lines) line by line.

The encoder writes what age writes: BEGIN, 64-column lines, END, LF line ends.
"""

from __future__ import annotations

import binascii
from typing import BinaryIO, Protocol

from sandi.i18n import _

from .errors import AgeError

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
BYTES_PER_LINE = 48
MAX_WHITESPACE = 1024
_WHITESPACE = b" \t\r\n\x0b\x0c"
# Longest line we look for before deciding it is too long (whitespace lines before
# BEGIN may be up to MAX_WHITESPACE long).
_MAX_LINE = MAX_WHITESPACE + 2
# Text read per refill: a whole number of 65-byte lines, about 1 MiB.
_BLOCK = 65 * 16384


class ByteSource(Protocol):
    def read(self, n: int) -> bytes: ...


def _err(message: str) -> AgeError:
    return AgeError("armor", message)


class ArmorReader:
    """Decode an armored age file from ``src``; ``read``/``readinto`` give the binary file."""

    def __init__(self, src: ByteSource) -> None:
        self._src = src
        self._text = b""
        self._pos = 0
        self._src_eof = False
        self._out = b""
        self._out_pos = 0
        self._started = False
        self._done = False
        self._error: AgeError | None = None

    # -- text buffer ---------------------------------------------------------------

    def _refill(self, want: int) -> None:
        """Make at least ``want`` bytes available from ``_pos`` unless the source ends."""
        while len(self._text) - self._pos < want and not self._src_eof:
            more = self._src.read(max(_BLOCK, want))
            if not more:
                self._src_eof = True
                break
            self._text = self._text[self._pos :] + more
            self._pos = 0

    def _getline(self) -> bytes | None:
        """The next line without its LF and one CR; None at end of input."""
        nl = self._text.find(b"\n", self._pos, self._pos + _MAX_LINE)
        if nl < 0:
            self._refill(_MAX_LINE)
            nl = self._text.find(b"\n", self._pos, self._pos + _MAX_LINE)
        if nl < 0:
            rest = len(self._text) - self._pos
            if rest >= _MAX_LINE:
                raise _err(_("line too long"))
            if rest == 0:
                return None
            line = self._text[self._pos :]
            self._pos = len(self._text)
        else:
            line = self._text[self._pos : nl]
            self._pos = nl + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    # -- structure -----------------------------------------------------------------

    def _start(self) -> None:
        removed = 0
        while True:
            line = self._getline()
            if line is None:
                raise _err(_("no BEGIN line"))
            if not line.strip(_WHITESPACE):
                removed += len(line) + 1
                if removed > MAX_WHITESPACE:
                    raise _err(_("too much whitespace before the armor"))
                continue
            if line != BEGIN:
                raise _err(_("the first line is not '-----BEGIN AGE ENCRYPTED FILE-----'"))
            self._started = True
            return

    def _finish(self) -> None:
        """After END: only < 1 KiB of whitespace may follow."""
        self._refill(MAX_WHITESPACE)
        rest = self._text[self._pos : self._pos + MAX_WHITESPACE]
        self._pos += len(rest)
        if rest.strip(_WHITESPACE):
            raise _err(_("data after the END line"))
        if len(rest) >= MAX_WHITESPACE:
            raise _err(_("too much whitespace after the armor"))
        self._done = True

    def _fast_lines(self) -> bytes | None:
        """Decode a run of regular full lines (64 columns, all LF or all CRLF) at once."""
        self._refill(_BLOCK)
        avail = len(self._text) - self._pos
        for stride, ending in ((65, b"\n"), (66, b"\r\n")):
            k = avail // stride
            if k < 2:
                continue
            # Keep the last complete line for the careful path: it may be the final one.
            k -= 1
            region = self._text[self._pos : self._pos + k * stride]
            if region[COLUMNS::stride] != ending[:1] * k:
                continue
            if stride == 66 and region[COLUMNS + 1 :: stride] != b"\n" * k:
                continue
            if region.count(b"\n") != k or (stride == 65 and b"\r" in region):
                continue
            if stride == 66 and region.count(b"\r") != k:
                continue
            if b"=" in region:
                return None
            body = region.replace(ending, b"")
            try:
                data = binascii.a2b_base64(body, strict_mode=True)
            except binascii.Error:
                raise _err(_("invalid base64 character")) from None
            self._pos += k * stride
            return data
        return None

    def _slow_line(self) -> bytes:
        line = self._getline()
        if line is None:
            raise _err(_("no END line"))
        if line == END:
            self._finish()
            return b""
        if len(line) > COLUMNS:
            raise _err(_("line longer than 64 columns"))
        if not line:
            raise _err(_("empty line inside the armor"))
        try:
            data = binascii.a2b_base64(line, strict_mode=True)
        except binascii.Error:
            raise _err(_("invalid base64")) from None
        if binascii.b2a_base64(data, newline=False) != line:
            raise _err(_("non-canonical base64"))
        if len(data) < BYTES_PER_LINE:
            closing = self._getline()
            if closing != END:
                raise _err(_("a short line must be followed by the END line"))
            self._finish()
        return data

    def _decode_more(self) -> None:
        if not self._started:
            self._start()
        data = self._fast_lines()
        if data is None:
            data = self._slow_line()
        self._out = data
        self._out_pos = 0

    # -- file-like -----------------------------------------------------------------

    def readinto(self, buf: memoryview | bytearray) -> int:
        if self._error is not None:
            raise self._error
        mv = memoryview(buf).cast("B")
        try:
            while self._out_pos >= len(self._out):
                if self._done:
                    return 0
                self._decode_more()
        except AgeError as exc:
            self._error = exc
            raise
        n = min(len(mv), len(self._out) - self._out_pos)
        mv[:n] = self._out[self._out_pos : self._out_pos + n]
        self._out_pos += n
        return n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        buf = bytearray(n)
        got = self.readinto(buf)
        return bytes(buf[:got])


# Encoded in sub-groups of this many bytes (1,024 lines): small enough that the strided
# copies below stay in the CPU cache, large enough to keep the Python overhead low.
_SUBGROUP = BYTES_PER_LINE * 1024


def _lines(data: memoryview) -> bytes | bytearray:
    """Base64 of ``data`` as 64-column lines, each ending with LF."""
    text = binascii.b2a_base64(data, newline=False)
    lines = (len(text) + COLUMNS - 1) // COLUMNS
    full = len(text) // COLUMNS
    out = bytearray(len(text) + lines)
    # Interleave a LF after every 64 columns with 65 strided copies instead of a
    # Python loop over the lines.
    for col in range(COLUMNS):
        out[col : full * 65 : 65] = text[col : full * COLUMNS : COLUMNS]
    out[COLUMNS : full * 65 : 65] = b"\n" * full
    if full != lines:
        out[full * 65 :] = text[full * COLUMNS :] + b"\n"
    return out


class ArmorWriter:
    """Write the armor of a binary age file to ``dst``, canonical and streaming."""

    # Input is encoded in groups of this many bytes (a whole number of lines).
    _GROUP = BYTES_PER_LINE * 16384

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._pending = bytearray()
        self._closed = False
        dst.write(BEGIN + b"\n")

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data)
        self._dst.write(b"".join([_lines(mv[i : i + _SUBGROUP]) for i in range(0, len(mv), _SUBGROUP)]))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed armor writer")
        self._pending += data
        if len(self._pending) >= self._GROUP:
            cut = len(self._pending) - len(self._pending) % BYTES_PER_LINE
            self._emit(self._pending[:cut])
            del self._pending[:cut]
        return len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pending:
            self._emit(self._pending)
        self._pending = bytearray()
        self._dst.write(END + b"\n")
