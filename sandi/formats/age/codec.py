"""Encrypting and decrypting age v1 files as streams.

Invariants of the workflow:

* **Header first, limits first.** The header is read and parsed with its size and
  stanza-count limits before anything else; the scrypt rules (alone in the header,
  work factor at most the limit) are checked before any identity runs scrypt; the
  header MAC is verified before a single payload byte is read.
* **Only authenticated plaintext leaves.** :class:`DecryptReader` releases a 64 KiB
  chunk only after its Poly1305 tag verified, and reports end of file only after the
  chunk flagged *last* verified and the input ended right after it (and, for armored
  input, after the END line and nothing but a little whitespace). A payload error can
  still come after some chunks were released (as in age), so a caller that writes to
  a file must only commit it once ``read`` returned ``b""`` (see ``sandi.fsutil.
  AtomicOutput``).
* **Constant memory.** Both directions work chunk by chunk with preallocated buffers,
  whatever the file size.
* **Canonical output.** What :class:`EncryptWriter` writes is byte for byte what age
  writes for the same keys and randomness: a fresh 16-byte file key and 16-byte nonce
  per file, the final chunk flagged, never an empty final chunk unless the plaintext
  is empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sandi.errors import UsageError
from sandi.i18n import _

from .armor import BEGIN, MAX_WHITESPACE, ArmorReader, ArmorWriter
from .errors import AgeError
from .header import (
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_STANZAS,
    FILE_KEY_SIZE,
    Header,
    encode_header,
    read_header,
    verify_mac,
)
from .keys import DEFAULT_MAX_WORK_FACTOR, SCRYPT_TYPE, Identity, Recipient, parse_work_factor
from .pq import check_not_mixed, mixes_classical

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
NONCE_SIZE = 16
_ENC_CHUNK = CHUNK_SIZE + TAG_SIZE
# Chunks processed per read/write call: 1 MiB batches cut the system calls by 16 while
# the buffers stay small (about 2 MiB per stream).
_BATCH = 16
_BINARY_PREFIX = b"age-encryption.org/"
_COPY_BUFFER = 1024 * 1024


class _Input:
    """A byte source with a pushback buffer, over any binary file object."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._raw_readinto = getattr(raw, "readinto", None)
        self._buf = b""
        self._pos = 0

    def _more(self, n: int) -> bool:
        more = self._raw.read(n)
        if not more:
            return False
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and self._more(n - (len(self._buf) - self._pos)):
            pass
        return self._buf[self._pos : self._pos + n]

    def readline(self, limit: int) -> bytes:
        """One line with its LF; fewer bytes if the input ends or ``limit`` is reached."""
        while True:
            nl = self._buf.find(b"\n", self._pos, self._pos + limit)
            if nl >= 0:
                line = self._buf[self._pos : nl + 1]
                self._pos = nl + 1
                return line
            if len(self._buf) - self._pos >= limit or not self._more(4096):
                line = self._buf[self._pos : self._pos + limit]
                self._pos += len(line)
                return line

    def read(self, n: int) -> bytes:
        if self._pos < len(self._buf):
            out = self._buf[self._pos : self._pos + n]
            self._pos += len(out)
            return out
        return bytes(self._raw.read(n))

    def readinto(self, mv: memoryview) -> int:
        if self._pos < len(self._buf):
            n = min(len(mv), len(self._buf) - self._pos)
            mv[:n] = self._buf[self._pos : self._pos + n]
            self._pos += n
            return n
        if self._raw_readinto is not None:
            got = self._raw_readinto(mv)
            return 0 if got is None else int(got)
        data = self._raw.read(len(mv))
        mv[: len(data)] = data
        return len(data)

    def readfull(self, mv: memoryview) -> int:
        """Fill ``mv`` unless the input ends first; return the number of bytes read."""
        total = 0
        size = len(mv)
        while total < size:
            got = self.readinto(mv[total:])
            if not got:
                break
            total += got
        return total


def _is_armored(raw: _Input) -> bool:
    head = raw.peek(len(_BINARY_PREFIX))
    if head == _BINARY_PREFIX:
        return False
    # Whatever else starts with a dash after whitespace, or carries an armor BEGIN near
    # the start, is judged as armor, so that a damaged BEGIN line or garbage before the
    # armor is reported as an armor failure rather than "not an age file".
    head = raw.peek(MAX_WHITESPACE + len(BEGIN) + 2)
    return head.lstrip(b" \t\r\n\x0b\x0c").startswith(b"-") or BEGIN[:10] in head


def _open_source(
    src: BinaryIO, armor: bool | None
) -> tuple[_Input, bool]:
    raw = _Input(src)
    armored = _is_armored(raw) if armor is None else armor
    if armored:
        return _Input(ArmorReader(raw)), True
    return raw, False


def parse_header(
    src: BinaryIO,
    *,
    armor: bool | None = None,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    max_stanzas: int = DEFAULT_MAX_STANZAS,
) -> Header:
    """Parse only the header of an age file (armor auto-detected); no key needed."""
    source, armored = _open_source(src, armor)
    return read_header(source, max_size=max_header_size, max_stanzas=max_stanzas, armored=armored)


def _check_scrypt_rules(header: Header, max_work_factor: int) -> None:
    scrypt = [s for s in header.stanzas if s.type == SCRYPT_TYPE]
    if not scrypt:
        return
    if len(header.stanzas) != 1:
        raise AgeError("header", _("an scrypt stanza must be the only stanza"))
    stanza = scrypt[0]
    if len(stanza.args) == 2 and parse_work_factor(stanza.args[1]) > max_work_factor:
        raise AgeError("header", _("scrypt work factor above the limit of {max_work_factor}").format(
            max_work_factor=max_work_factor,
        ))


def _payload_key(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce, info=b"payload").derive(file_key)
    return ChaCha20Poly1305(key)


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class DecryptReader:
    """Read the plaintext of an age file; see the module invariants.

    ``identities`` are tried in order; ``max_work_factor`` bounds scrypt whatever the
    identities allow; ``armor`` is auto-detected when ``None``. A header that mixes
    post-quantum and classical recipients is refused before any identity runs, unless
    ``allow_mixed_post_quantum`` (age itself opens such files: the CCTV vector
    ``hybrid_and_x25519`` expects success; the spec lets an identity refuse them, and
    sandi does by default, because no conforming encoder writes them).
    """

    def __init__(
        self,
        src: BinaryIO,
        identities: Iterable[Identity],
        *,
        max_work_factor: int = DEFAULT_MAX_WORK_FACTOR,
        armor: bool | None = None,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_stanzas: int = DEFAULT_MAX_STANZAS,
        allow_mixed_post_quantum: bool = False,
    ) -> None:
        ids = list(identities)
        if not ids:
            raise UsageError(_("no identity given to decrypt with"))
        source, armored = _open_source(src, armor)
        header = read_header(source, max_size=max_header_size, max_stanzas=max_stanzas, armored=armored)
        _check_scrypt_rules(header, max_work_factor)
        if not allow_mixed_post_quantum:
            check_not_mixed(header.stanzas)
        file_key: bytes | None = None
        for identity in ids:
            file_key = identity.unwrap(header.stanzas)
            if file_key is not None:
                break
        if file_key is None:
            raise AgeError("no match", _("none of the given identities opens this file"))
        if len(file_key) != FILE_KEY_SIZE:
            raise AgeError("header", _("the unwrapped file key is not 16 bytes"))
        verify_mac(header, file_key)
        nonce = bytearray(NONCE_SIZE)
        if source.readfull(memoryview(nonce)) != NONCE_SIZE:
            raise AgeError("header", _("the payload nonce is missing or short"))
        self.header = header
        self._source = source
        self._aead = _payload_key(file_key, bytes(nonce))
        self._decrypt_into = getattr(self._aead, "decrypt_into", None)
        self._cview = memoryview(bytearray(_BATCH * _ENC_CHUNK))
        self._pview = memoryview(bytearray(_BATCH * CHUNK_SIZE))
        self._cpos = 0  # ciphertext in _cview[_cpos:_cend] is read but not yet opened
        self._cend = 0
        self._counter = 0
        self._pending: memoryview = memoryview(b"")
        self._last_seen = False
        self._eof = False
        self._deferred: AgeError | None = None
        self._error: AgeError | None = None

    @property
    def header_bytes(self) -> bytes:
        """The binary header (as hashed by the sealing layer), armored input or not."""
        return self.header.header_bytes

    @property
    def armored(self) -> bool:
        return self.header.armored

    # -- chunks --------------------------------------------------------------------

    def _open(self, ct: memoryview, last: bool, out: memoryview) -> bool:
        """Authenticate and decrypt one chunk into ``out``; False if the tag is wrong."""
        if len(ct) < TAG_SIZE:
            return False
        nonce = _chunk_nonce(self._counter, last)
        try:
            if self._decrypt_into is not None:
                self._decrypt_into(nonce, ct, None, out)
            else:
                out[:] = self._aead.decrypt(nonce, bytes(ct), None)
        except InvalidTag:
            return False
        return True

    def _next_run(self) -> memoryview:
        """Open the next chunks; return their plaintext, or b'' only at verified EOF.

        Chunks are opened in batches, one at a time, and the run returned ends at the
        last chunk that authenticated: an error after it is kept and raised on the
        next call, so good chunks before a bad one are released exactly as age does.
        """
        if self._deferred is not None:
            raise self._deferred
        if self._last_seen:
            # The final chunk was released; now the input must end right here.
            if self._cpos < self._cend or self._source.read(1):
                raise AgeError("payload", _("data after the final chunk"))
            self._eof = True
            return memoryview(b"")
        if self._cpos == self._cend:
            self._cend = self._source.readfull(self._cview)
            self._cpos = 0
            if self._cend == 0:
                raise AgeError("payload", _("the file is truncated (no final chunk)"))
        produced = 0
        try:
            while self._cpos < self._cend and not self._last_seen:
                # The batch is a whole number of chunks and is filled unless the input
                # ends, so a chunk is short only at the end of the input.
                n = min(self._cend - self._cpos, _ENC_CHUNK)
                last = n < _ENC_CHUNK
                if last and self._counter != 0 and n == TAG_SIZE:
                    raise AgeError("payload", _("the final chunk is empty"))
                ct = self._cview[self._cpos : self._cpos + n]
                out = self._pview[produced : produced + max(0, n - TAG_SIZE)]
                ok = self._open(ct, last, out)
                if not ok and not last:
                    # A full-size chunk can be the final one: only the flag tells.
                    last = True
                    ok = self._open(ct, last, out)
                if not ok:
                    raise AgeError("payload", _("chunk {counter} failed to authenticate").format(
                        counter=self._counter,
                    ))
                self._counter += 1
                self._cpos += n
                produced += n - TAG_SIZE
                self._last_seen = last
        except AgeError as exc:
            if not produced:
                raise
            self._deferred = exc
        return self._pview[:produced]

    def chunks(self) -> Iterator[memoryview]:
        """Authenticated plaintext chunk by chunk (views into a reused buffer)."""
        if self._pending:
            yield self._pending
            self._pending = memoryview(b"")
        while True:
            chunk = self._guarded_next()
            if self._eof:
                return
            if chunk:
                yield chunk

    def _guarded_next(self) -> memoryview:
        if self._error is not None:
            raise self._error
        if self._eof:
            return memoryview(b"")
        try:
            return self._next_run()
        except AgeError as exc:
            self._error = exc
            raise

    # -- file-like -----------------------------------------------------------------

    def readinto(self, buf: bytearray | memoryview) -> int:
        mv = memoryview(buf).cast("B")
        while not self._pending:
            if self._eof:
                return 0
            self._pending = self._guarded_next()
        n = min(len(mv), len(self._pending))
        mv[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [bytes(c) for c in self.chunks()]
            return b"".join(parts)
        if n == 0:
            return b""
        while not self._pending:
            if self._eof:
                return b""
            self._pending = self._guarded_next()
        out = bytes(self._pending[:n])
        self._pending = self._pending[n:]
        return out

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._pending = memoryview(b"")

    def __enter__(self) -> DecryptReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EncryptWriter:
    """Write an age file to ``dst``: the header at once, then the payload as written.

    ``header_bytes`` is known right after construction. ``close()`` (or leaving the
    ``with`` block normally) writes the final chunk; leaving by an exception does not,
    so an aborted file can never decrypt as if it were complete. ``dst`` is not closed.
    """

    def __init__(self, dst: BinaryIO, recipients: Iterable[Recipient], *, armor: bool = False) -> None:
        recips = list(recipients)
        if not recips:
            raise UsageError(_("no recipient given to encrypt to"))
        file_key = os.urandom(FILE_KEY_SIZE)
        stanzas = [s for r in recips for s in r.wrap(file_key)]
        if any(s.type == SCRYPT_TYPE for s in stanzas) and len(stanzas) != 1:
            raise UsageError(_("a passphrase must be the only recipient of a file"))
        if mixes_classical(stanzas):
            raise UsageError(
                _("post-quantum recipients cannot be mixed with classical ones in one file"),
                hint=_("a quantum computer could open the file through the classical recipient; "
                       "encrypt to post-quantum (age1pq1...) recipients only"),
            )
        if len(stanzas) > DEFAULT_MAX_STANZAS:
            raise UsageError(_("more than {default_max_stanzas} recipients").format(
                default_max_stanzas=DEFAULT_MAX_STANZAS,
            ))
        self.header: Header = encode_header(stanzas, file_key)
        if len(self.header.header_bytes) > DEFAULT_MAX_HEADER_SIZE:
            # A file sandi could not read back (hybrid stanzas are about 1.6 KB each).
            raise UsageError(
                _("the age header would be larger than {limit} bytes: too many recipients").format(
                    limit=DEFAULT_MAX_HEADER_SIZE),
            )
        nonce = os.urandom(NONCE_SIZE)
        self._aead = _payload_key(file_key, nonce)
        self._encrypt_into = getattr(self._aead, "encrypt_into", None)
        self._armor = ArmorWriter(dst) if armor else None
        self._out: Any = self._armor if self._armor is not None else dst
        self._buf = bytearray(CHUNK_SIZE)
        self._fill = 0
        self._oview = memoryview(bytearray(_BATCH * _ENC_CHUNK))
        self._opos = 0
        self._counter = 0
        self._closed = False
        self.plaintext_size = 0
        self._out.write(self.header.header_bytes + nonce)

    @property
    def header_bytes(self) -> bytes:
        return self.header.header_bytes

    def _seal(self, data: memoryview, last: bool) -> None:
        nonce = _chunk_nonce(self._counter, last)
        size = len(data) + TAG_SIZE
        out = self._oview[self._opos : self._opos + size]
        if self._encrypt_into is not None:
            self._encrypt_into(nonce, data, None, out)
        else:
            out[:] = self._aead.encrypt(nonce, bytes(data), None)
        self._opos += size
        self._counter += 1
        if last or self._opos + _ENC_CHUNK > len(self._oview):
            self._out.write(self._oview[: self._opos])
            self._opos = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed EncryptWriter")
        mv = memoryview(data).cast("B")
        size = len(mv)
        off = 0
        buf = memoryview(self._buf)
        while off < size:
            if self._fill == CHUNK_SIZE:
                # More data follows, so the buffered full chunk is not the last one.
                self._seal(buf, last=False)
                self._fill = 0
            if self._fill == 0 and size - off > CHUNK_SIZE:
                self._seal(mv[off : off + CHUNK_SIZE], last=False)
                off += CHUNK_SIZE
                continue
            take = min(CHUNK_SIZE - self._fill, size - off)
            buf[self._fill : self._fill + take] = mv[off : off + take]
            self._fill += take
            off += take
        self.plaintext_size += size
        return size

    def write_from(self, src: BinaryIO) -> int:
        """Copy all of ``src`` in (the fast path of :func:`encrypt`); return the byte count.

        Reads 1 MiB ahead, so that when more input is known to follow every full chunk
        is sealed straight from the read buffer, without a copy.
        """
        readinto = getattr(src, "readinto", None)
        total = 0
        if readinto is None:
            while data := src.read(_COPY_BUFFER):
                self.write(data)
                total += len(data)
            return total
        current = memoryview(bytearray(_COPY_BUFFER))
        ahead = memoryview(bytearray(_COPY_BUFFER))
        n = _readfull(readinto, current)
        while n:
            m = _readfull(readinto, ahead)
            if m and self._fill == 0 and n % CHUNK_SIZE == 0 and not self._closed:
                for off in range(0, n, CHUNK_SIZE):
                    self._seal(current[off : off + CHUNK_SIZE], last=False)
                self.plaintext_size += n
            else:
                self.write(current[:n])
            total += n
            current, ahead = ahead, current
            n = m
        return total

    def close(self) -> None:
        """Write the final chunk (and the armor END line). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._seal(memoryview(self._buf)[: self._fill], last=True)
        if self._armor is not None:
            self._armor.close()

    def __enter__(self) -> EncryptWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True


def _readfull(readinto: Any, mv: memoryview) -> int:
    total = 0
    while total < len(mv):
        got = readinto(mv[total:])
        if not got:
            break
        total += got
    return total


def encrypt(
    src: BinaryIO, dst: BinaryIO, recipients: Iterable[Recipient], *, armor: bool = False
) -> bytes:
    """Encrypt all of ``src`` to ``dst``; return the binary header bytes."""
    with EncryptWriter(dst, recipients, armor=armor) as writer:
        writer.write_from(src)
    return writer.header_bytes


def decrypt(
    src: BinaryIO,
    dst: BinaryIO,
    identities: Sequence[Identity] | Iterable[Identity],
    *,
    max_work_factor: int = DEFAULT_MAX_WORK_FACTOR,
    armor: bool | None = None,
) -> Header:
    """Decrypt ``src`` to ``dst``; return the header.

    On an error, ``dst`` may already hold authenticated chunks: write to a temporary
    file and keep it only if this returns (``sandi.fsutil.AtomicOutput``).
    """
    reader = DecryptReader(src, identities, max_work_factor=max_work_factor, armor=armor)
    for chunk in reader.chunks():
        dst.write(chunk)
    return reader.header
