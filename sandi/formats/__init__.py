"""The standard formats sandi reads and writes, as strict codecs over bytes and streams.

* :mod:`sandi.formats.age` — age v1 encryption (X25519, scrypt and the hybrid post-quantum
  recipients), armored or binary, streaming;
* :mod:`sandi.formats.minisign` — minisign keys and signatures (``ED``, prehashed);
* :mod:`sandi.formats.ustar` — the POSIX ustar container of a sealed document;
* :mod:`sandi.formats.bounded` — JSON and TOML loading with size and nesting limits.

Invariants: every parser accepts exactly what its specification allows (``docs/format.md``)
and raises its own :class:`~sandi.errors.FormatError` for everything else; every limit is
checked before the work it bounds; nothing here opens files by name or imports a layer above.
"""
