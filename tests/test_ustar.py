"""sandi.formats.ustar: deterministic writer, strict reader, safe names, interop with GNU tar and tarfile."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandi.errors import FormatError
from sandi.formats import ustar as u
from sandi.formats.ustar import UstarError, UstarReader, UstarWriter

MTIME = 1_735_689_600  # 2025-01-01T00:00:00Z
DOC = b"%PDF-1.7\n" + bytes(range(256)) * 7 + b"end\n"  # 1805 bytes: not a block multiple
SIG = b"untrusted comment: x\nRUT...\ntrusted comment: y\nabc\n"


def sealed_tar(name: str = "surat.pdf", doc: bytes = DOC, sig: bytes = SIG) -> bytes:
    out = io.BytesIO()
    w = UstarWriter(out)
    w.add_member(name, doc, MTIME)
    w.add_member(name + ".minisig", sig, MTIME)
    w.finish()
    return out.getvalue()


def read_all(data: bytes, *, max_members: int = 2, max_member_size: int = 1 << 20) -> list[tuple[str, bytes]]:
    reader = UstarReader(io.BytesIO(data), max_members=max_members, max_member_size=max_member_size)
    return [(m.name, m.stream.read()) for m in reader]


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("surat.pdf", "surat.pdf"),
        ("/home/staf/Dokumen/surat.pdf", "surat.pdf"),
        ("C:\\Users\\staf\\surat.pdf", "surat.pdf"),
        ("../../etc/passwd", "passwd"),
        ("dir/", "dir"),
        ("..", "document"),
        (".", "document"),
        ("", "document"),
        ("   ", "document"),
        ("/", "document"),
        ("  spasi.txt  ", "spasi.txt"),
        ("-rf", "_rf"),
        ("a\nb\x00c\x7f.txt", "a_b_c_.txt"),
        ("evil\u202egpj.exe", "evil_gpj.exe"),
        ('tanya?:*"<>|.doc', "tanya_______.doc"),
        ("bad\udcff.bin", "bad_.bin"),
        ("Surat Édaran Gubernur.pdf", "Surat Édaran Gubernur.pdf"),
        ("x" * 120 + ".pdf", "x" * 120 + ".pdf"),  # long names are kept (pax path)
        ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
        ("é" * 130, "é" * 127),  # 260 bytes -> 254, never half a character
        ("é" * 130 + ".pdf", "é" * 125 + ".pdf"),
        ("y" * 254 + ".verylongextension", "y" * 254),  # no dot left dangling
    ],
)
def test_sanitise_name(raw: str, safe: str) -> None:
    assert u.sanitise_name(raw) == safe
    assert u.validate_member_name(safe) == safe
    assert len(safe.encode()) <= 255


def test_sanitise_name_leaves_room_for_a_suffix() -> None:
    name = u.sanitise_name("z" * 200 + ".pdf", max_bytes=100 - len(".minisig"))
    assert name == "z" * 88 + ".pdf"
    assert u.validate_member_name(name + ".minisig")
    with pytest.raises(UstarError):
        u.sanitise_name("x", max_bytes=256)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "..",
        "a/b",
        "/abs",
        "a\\b",
        "nul\x00",
        "tab\tname",
        "line\nbreak",
        "del\x7f",
        "c1\x85",
        "bidi\u202e",
        "zero width\u200b joiner",
        "surrogate\udcff",
        "colon:",
        "star*",
        " lead",
        "trail ",
        "-option",
        "x" * 256,
        "é" * 128,
    ],
)
def test_validate_member_name_rejects(bad: str) -> None:
    with pytest.raises(UstarError):
        u.validate_member_name(bad)


@pytest.mark.parametrize("good", ["a", "x" * 100, "é" * 50, ".hidden", "a..b", "dokumen (1).pdf", "日本語.txt"])
def test_validate_member_name_accepts(good: str) -> None:
    assert u.validate_member_name(good) == good
    assert u.sanitise_name(good) == good


@given(st.text(max_size=300))
def test_sanitise_always_yields_a_valid_fixed_point(raw: str) -> None:
    safe = u.sanitise_name(raw)
    assert u.validate_member_name(safe) == safe
    assert u.sanitise_name(safe) == safe
    assert "/" not in safe and "\\" not in safe and safe not in (".", "..")


@given(st.text(min_size=1, max_size=120))
def test_valid_names_are_left_alone(raw: str) -> None:
    try:
        u.validate_member_name(raw)
    except UstarError:
        return
    assert u.sanitise_name(raw) == raw


# --- writer --------------------------------------------------------------------------------------


def test_header_fields_are_deterministic() -> None:
    h = u.build_header("surat.pdf", 1805, MTIME)
    assert len(h) == 512
    assert h[:100] == b"surat.pdf".ljust(100, b"\x00")
    assert h[100:108] == b"0000644\x00"
    assert h[108:124] == b"0000000\x00" * 2
    assert h[124:136] == b"%011o\x00" % 1805
    assert h[136:148] == b"%011o\x00" % MTIME
    assert h[156:157] == b"0" and h[157:257] == bytes(100)
    assert h[257:265] == b"ustar\x0000"
    assert h[265:329] == bytes(64)  # empty uname/gname
    assert h[329:345] == b"0000000\x00" * 2
    assert h[345:] == bytes(167)
    assert int(h[148:154], 8) == sum(h[:148]) + 256 + sum(h[156:])
    assert h[154:156] == b"\x00 "
    assert sealed_tar() == sealed_tar()


def test_archive_layout() -> None:
    data = sealed_tar()
    doc_blocks = -(-len(DOC) // 512)
    sig_blocks = -(-len(SIG) // 512)
    assert len(data) == 512 * (1 + doc_blocks + 1 + sig_blocks + 2)
    assert data[-1024:] == bytes(1024)
    assert data[512 : 512 + len(DOC)] == DOC
    assert data[512 + len(DOC) : 512 * (1 + doc_blocks)] == bytes(512 * doc_blocks - len(DOC))


def test_streaming_writer_functions_match_the_class() -> None:
    out = io.BytesIO()
    u.write_member_header(out, "surat.pdf", len(DOC), MTIME)
    out.write(DOC)
    u.write_member_padding(out, len(DOC))
    u.write_member_header(out, "surat.pdf.minisig", len(SIG), MTIME)
    out.write(SIG)
    u.write_member_padding(out, len(SIG))
    u.write_end_of_archive(out)
    assert out.getvalue() == sealed_tar()


def _w() -> UstarWriter:
    return UstarWriter(io.BytesIO())


WRITER_MISUSE: list[tuple[str, Callable[[UstarWriter], None]]] = [
    ("more data than announced", lambda w: (w.begin_member("a", 3, MTIME), w.write(b"abcd"))),
    ("less data than announced", lambda w: (w.begin_member("a", 3, MTIME), w.write(b"ab"), w.end_member())),
    ("write with no member", lambda w: w.write(b"x")),
    ("end with no member", lambda w: w.end_member()),
    ("finish with a member open", lambda w: (w.begin_member("a", 1, MTIME), w.finish())),
    ("begin with a member open", lambda w: (w.begin_member("a", 1, MTIME), w.begin_member("b", 1, MTIME))),
    ("finish twice", lambda w: (w.finish(), w.finish())),
    ("member after finish", lambda w: (w.finish(), w.begin_member("a", 0, MTIME))),
    ("duplicate name", lambda w: (w.add_member("a", b"", MTIME), w.add_member("a", b"", MTIME))),
    ("path name", lambda w: w.begin_member("dir/a", 0, MTIME)),
    ("dot-dot", lambda w: w.begin_member("..", 0, MTIME)),
    ("256-byte name", lambda w: w.begin_member("n" * 256, 0, MTIME)),
    ("size 8 GiB", lambda w: w.begin_member("a", 8**11, MTIME)),
    ("negative size", lambda w: w.begin_member("a", -1, MTIME)),
    ("negative mtime", lambda w: w.begin_member("a", 0, -1)),
    ("setuid mode", lambda w: w.begin_member("a", 0, MTIME, mode=0o4755)),
]


@pytest.mark.parametrize(("why", "misuse"), WRITER_MISUSE, ids=[w[0] for w in WRITER_MISUSE])
def test_writer_refuses_misuse(why: str, misuse: Callable[[UstarWriter], None]) -> None:
    with pytest.raises(UstarError):
        misuse(_w())


def test_writer_accepts_the_largest_size_header() -> None:
    assert u.build_header("big", 8**11 - 1, MTIME)[124:136] == b"77777777777\x00"


# --- reader: accepted inputs ---------------------------------------------------------------------


def test_reader_round_trip() -> None:
    assert read_all(sealed_tar()) == [("surat.pdf", DOC), ("surat.pdf.minisig", SIG)]
    reader = UstarReader(io.BytesIO(sealed_tar()), max_members=2, max_member_size=len(DOC))
    first = reader.next_member()
    assert first is not None and (first.name, first.size, first.mode, first.mtime) == (
        "surat.pdf", len(DOC), 0o644, MTIME
    )
    assert first.stream.read(10) == DOC[:10]
    second = reader.next_member()  # skips the rest of the first member
    assert second is not None and second.stream.read() == SIG
    with pytest.raises(UstarError):
        first.stream.read(1)  # a stale stream cannot read the wrong bytes
    assert reader.next_member() is None and reader.next_member() is None
    assert reader.members_read() == 2


def test_empty_archive_has_no_members() -> None:
    assert read_all(bytes(1024)) == []


class Trickle(io.RawIOBase):
    """A source that returns at most 7 bytes per read, like a pipe or a decrypting reader."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        return self._buf.read(min(size, 7) if size >= 0 else 7)


def test_reader_handles_short_reads() -> None:
    reader = UstarReader(Trickle(sealed_tar()), max_members=2, max_member_size=1 << 20)
    got = []
    for member in reader:
        chunks = []
        while chunk := member.stream.read(1000):
            assert len(chunk) <= 1000
            chunks.append(chunk)
        got.append((member.name, b"".join(chunks)))
    assert got == [("surat.pdf", DOC), ("surat.pdf.minisig", SIG)]


def _tarfile_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _info(name: str, size: int = 0, type_: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = type_
    info.mtime = MTIME
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def test_reader_accepts_pythons_ustar_with_record_padding() -> None:
    data = _tarfile_bytes([(_info("a.txt", 3, uname="root", gname="root"), b"abc"), (_info("b", 0), b"")])
    assert len(data) == 10240  # padded to a full record
    assert read_all(data) == [("a.txt", b"abc"), ("b", b"")]


# --- reader: the table of crafted archives that must be refused ----------------------------------


def fix_checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header)


def mutate_header(offset: int, value: bytes, *, member: int = 0, recompute: bool = True) -> bytes:
    """A sealed tar whose ``member``-th header has ``value`` at ``offset`` (checksum fixed)."""
    data = bytearray(sealed_tar())
    start = 0 if member == 0 else 512 * (1 + -(-len(DOC) // 512))
    header = data[start : start + 512]
    header[offset : offset + len(value)] = value
    if recompute:
        fix_checksum(header)
    data[start : start + 512] = header
    return bytes(data)


def name_field(name: bytes) -> bytes:
    return name.ljust(100, b"\x00")


def three_members() -> bytes:
    out = io.BytesIO()
    w = UstarWriter(out)
    for name in ("a", "b", "c"):
        w.add_member(name, b"x", MTIME)
    w.finish()
    return out.getvalue()


def gnu_long_name() -> bytes:
    return _tarfile_bytes([(_info("l" * 150, 1), b"x")], fmt=tarfile.GNU_FORMAT)


def pax_header() -> bytes:
    return _tarfile_bytes([(_info("a", 1, pax_headers={"comment": "hi"}), b"x")], fmt=tarfile.PAX_FORMAT)


def pax_global() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"x": "y"}) as tf:
        tf.addfile(_info("a", 1), io.BytesIO(b"x"))
    return out.getvalue()


def with_trailing(extra: bytes) -> bytes:
    return sealed_tar() + extra


BASE = sealed_tar()
END = len(BASE) - 1024

REFUSED: list[tuple[str, bytes, str]] = [
    ("symlink", _tarfile_bytes([(_info("link", type_=tarfile.SYMTYPE, linkname="/etc/passwd"), None)]), "symbolic link"),
    ("hardlink", _tarfile_bytes([(_info("a", 1), b"x"), (_info("hard", type_=tarfile.LNKTYPE, linkname="a"), None)]), "hard link"),
    ("directory", _tarfile_bytes([(_info("dir", type_=tarfile.DIRTYPE), None)]), "directory member"),
    ("fifo", _tarfile_bytes([(_info("fifo", type_=tarfile.FIFOTYPE), None)]), "FIFO"),
    ("char device", _tarfile_bytes([(_info("tty", type_=tarfile.CHRTYPE), None)]), "character device"),
    ("contiguous file", _tarfile_bytes([(_info("c", 1, type_=tarfile.CONTTYPE), b"x")]), "contiguous file"),
    ("absolute path", _tarfile_bytes([(_info("/etc/cron.d/evil", 1), b"x")]), "path separator"),
    ("dot-dot path", _tarfile_bytes([(_info("../evil", 1), b"x")]), "path separator"),
    ("nested path", _tarfile_bytes([(_info("dir/file", 1), b"x")]), "path separator"),
    ("name '..'", mutate_header(0, name_field(b"..")), "'.' or '..'"),
    ("backslash path", mutate_header(0, name_field(b"a\\b")), "path separator"),
    ("long name in ustar prefix", _tarfile_bytes([(_info("p" * 60 + "/" + "n" * 60, 1), b"x")]), "path prefix"),
    ("prefix field set", mutate_header(345, b"dir"), "path prefix"),
    ("GNU long name", gnu_long_name(), "not a POSIX ustar"),
    ("GNU format magic", _tarfile_bytes([(_info("a", 1), b"x")], fmt=tarfile.GNU_FORMAT), "not a POSIX ustar"),
    ("pax extended header", pax_header(), "pax extended"),
    ("pax global header", pax_global(), "pax global"),
    ("v7 header (no magic)", mutate_header(257, bytes(8)), "not a POSIX ustar"),
    ("wrong ustar version", mutate_header(263, b"  "), "not a POSIX ustar"),
    ("bad checksum", mutate_header(0, b"S", recompute=False), "checksum mismatch"),
    ("bad checksum second member", mutate_header(0, b"S", member=1, recompute=False), "checksum mismatch"),
    ("checksum not octal", mutate_header(148, b"0000009\x00", recompute=False), "malformed checksum"),
    ("size not octal", mutate_header(124, b"0000000000x\x00"), "malformed size"),
    ("size base-256", mutate_header(124, b"\x80" + bytes(10) + b"\x01"), "malformed size"),
    ("size field without terminator", mutate_header(124, b"000000003410"), "malformed size"),
    ("size field with leading space", mutate_header(124, b" 0000003415\x00"), "malformed size"),
    ("mode setuid", mutate_header(100, b"0004755\x00"), "special mode"),
    ("uid not octal", mutate_header(108, b"abc\x00"), "malformed uid"),
    ("link name on a regular file", mutate_header(157, b"target"), "link name on"),
    ("bytes after the name's NUL", mutate_header(0, b"surat.pdf\x00junk"), "after the end of the name"),
    ("name not UTF-8", mutate_header(0, name_field(b"\xff\xfe")), "not UTF-8"),
    ("name with control character", mutate_header(0, name_field(b"a\x1bb")), "path separator"),
    ("name starting with '-'", mutate_header(0, name_field(b"-rf")), "starts with '-'"),
    ("empty name", mutate_header(0, bytes(100)), "is empty"),
    ("non-zero header tail", mutate_header(500, b"\x01"), "non-zero padding"),
    ("unknown typeflag", mutate_header(156, b"Z"), "unknown type"),
    ("oversize member", sealed_tar(doc=b"d" * 2000), "larger than"),
    ("third member", three_members(), "more than 2"),
    ("duplicate names", _tarfile_bytes([(_info("a", 1), b"x"), (_info("a", 1), b"y")]), "duplicate"),
    ("non-zero padding", BASE[:512 + len(DOC)] + b"\x01" + BASE[512 + len(DOC) + 1 :], "padding is not zero"),
    ("trailing garbage", with_trailing(b"garbage"), "after the end-of-archive"),
    ("trailing garbage after zeros", with_trailing(bytes(4096) + b"\x01"), "after the end-of-archive"),
    ("a trailing member after the marker", BASE + sealed_tar("z"), "after the end-of-archive"),
    ("too much trailing padding", with_trailing(bytes(10241)), "after the end-of-archive"),
    ("single zero block then data", BASE[:END] + bytes(512) + b"\x01" * 512, "single zero block"),
    ("empty input", b"", "truncated"),
    ("truncated in the first header", BASE[:100], "truncated"),
    ("truncated in data", BASE[: 512 + 1000], "truncated"),
    ("truncated in padding", BASE[: 512 + len(DOC) + 3], "truncated"),
    ("truncated before the second header", BASE[: 512 * (1 + -(-len(DOC) // 512))], "truncated"),
    ("no end-of-archive marker", BASE[:END], "truncated"),
    ("only one zero block", BASE[: END + 512], "truncated"),
    ("end marker cut short", BASE[: END + 1000], "truncated"),
]


@pytest.mark.parametrize(("why", "data", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_reader_refuses(why: str, data: bytes, reason: str) -> None:
    with pytest.raises(UstarError) as info:
        read_all(data, max_members=2, max_member_size=len(DOC))
    assert reason in str(info.value)
    assert isinstance(info.value, FormatError) and info.value.exit_code == 4


@pytest.mark.parametrize(
    ("why", "data", "limit_members", "limit_size", "reads_before_error"),
    [
        ("oversize is refused before any data is read", sealed_tar(doc=b"d" * 5000), 2, 4999, 1),
        ("a third member is refused at its header", three_members(), 2, 10, 3),
    ],
)
def test_limits_are_checked_before_work(
    why: str, data: bytes, limit_members: int, limit_size: int, reads_before_error: int
) -> None:
    reader = UstarReader(io.BytesIO(data), max_members=limit_members, max_member_size=limit_size)
    seen = []
    with pytest.raises(UstarError):
        for member in reader:
            seen.append(member.name)
    assert len(seen) == reads_before_error - 1


def test_truncation_is_reported_while_streaming_the_member() -> None:
    reader = UstarReader(io.BytesIO(BASE[: 512 + 1000]), max_members=2, max_member_size=1 << 20)
    member = reader.next_member()
    assert member is not None
    assert len(member.stream.read(1000)) == 1000
    with pytest.raises(UstarError):
        member.stream.read(1)


def test_refused_names_never_reach_the_caller() -> None:
    # Even with generous limits, the member with a path is never yielded.
    data = _tarfile_bytes([(_info("ok", 1), b"x"), (_info("../../escape", 1), b"y")])
    reader = UstarReader(io.BytesIO(data), max_members=10, max_member_size=10)
    first = reader.next_member()
    assert first is not None and first.name == "ok"
    with pytest.raises(UstarError):
        reader.next_member()


# --- interop -------------------------------------------------------------------------------------

needs_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="tar not installed")


@pytest.mark.interop
@needs_tar
def test_gnu_tar_extracts_what_the_writer_writes(tmp_path: Path) -> None:
    name = "Surat Édaran No. 12 (final).pdf"
    archive = tmp_path / "sealed.tar"
    archive.write_bytes(sealed_tar(name))
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run(["tar", "-x", "-f", archive, "-C", out], capture_output=True, check=False)
    assert r.returncode == 0 and r.stderr == b""
    assert sorted(p.name for p in out.iterdir()) == sorted([name, name + ".minisig"])
    assert (out / name).read_bytes() == DOC
    assert (out / (name + ".minisig")).read_bytes() == SIG
    assert (out / name).stat().st_mtime == MTIME
    # Piped, as in `age -d ... | tar -x`.
    out2 = tmp_path / "out2"
    out2.mkdir()
    r = subprocess.run(["tar", "-x", "-C", out2], input=archive.read_bytes(), capture_output=True, check=False)
    assert r.returncode == 0 and r.stderr == b"" and (out2 / name).read_bytes() == DOC
    listing = subprocess.run(["tar", "-t", "-v", "-f", archive], capture_output=True, check=True).stdout
    assert b"0/0" in listing and b"-rw-r--r--" in listing


@pytest.mark.interop
@needs_tar
def test_reader_accepts_gnu_tar_ustar(tmp_path: Path) -> None:
    (tmp_path / "surat.pdf").write_bytes(DOC)
    (tmp_path / "surat.pdf.minisig").write_bytes(SIG)
    archive = tmp_path / "gnu.tar"
    subprocess.run(
        ["tar", "--format=ustar", "-c", "-f", archive, "-C", tmp_path, "surat.pdf", "surat.pdf.minisig"],
        check=True,
    )
    assert read_all(archive.read_bytes()) == [("surat.pdf", DOC), ("surat.pdf.minisig", SIG)]
    # GNU tar's default (gnu) format has a different magic: refused.
    gnu = tmp_path / "default.tar"
    subprocess.run(["tar", "--format=gnu", "-c", "-f", gnu, "-C", tmp_path, "surat.pdf"], check=True)
    with pytest.raises(UstarError):
        read_all(gnu.read_bytes())


def test_python_tarfile_reads_and_extracts_what_the_writer_writes(tmp_path: Path) -> None:
    data = sealed_tar()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        infos = tf.getmembers()
        assert [(i.name, i.size, i.mode, i.uid, i.gid, i.uname, i.type) for i in infos] == [
            ("surat.pdf", len(DOC), 0o644, 0, 0, "", tarfile.REGTYPE),
            ("surat.pdf.minisig", len(SIG), 0o644, 0, 0, "", tarfile.REGTYPE),
        ]
        assert all(i.mtime == MTIME for i in infos)
        tf.extractall(tmp_path, filter="data")
    assert (tmp_path / "surat.pdf").read_bytes() == DOC
    # Strict stream mode agrees.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
        assert [i.name for i in tf] == ["surat.pdf", "surat.pdf.minisig"]


# -- long names: a pax path record past the 100-byte ustar field ------------------------------

LONG = "Surat Edaran Gubernur Banten tentang " + "Penyelenggaraan Persandian " * 4 + "é" * 20 + ".pdf"


def _archive(name: str, data: bytes = b"isi surat\n") -> bytes:
    out = io.BytesIO()
    w = u.UstarWriter(out)
    w.add_member(name, data, MTIME)
    w.finish()
    return out.getvalue()


def test_long_name_round_trip() -> None:
    assert 100 < len(LONG.encode()) <= 255
    reader = u.UstarReader(io.BytesIO(_archive(LONG)), max_members=2, max_member_size=1024)
    member = reader.next_member()
    assert member is not None and member.name == LONG
    assert member.stream.read() == b"isi surat\n"
    assert reader.next_member() is None


@pytest.mark.parametrize("tool", ["tar", "bsdtar"])
def test_long_name_extracts_with_standard_tar(tool: str, tmp_path: Path) -> None:

    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    name = "Nota " + "ü" * 95 + "x.pdf"  # 200 bytes of UTF-8
    assert len(name.encode()) == 200
    archive = tmp_path / "a.tar"
    archive.write_bytes(_archive(name))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([tool, "-xf", str(archive), "-C", str(out)], check=True, capture_output=True)
    assert [p.name for p in out.iterdir()] == [name]
    assert (out / name).read_bytes() == b"isi surat\n"


def _pax_variant(change: Callable[[bytes], bytes]) -> bytes:
    data = bytearray(_archive(LONG))
    header = bytes(data[:512])
    record_len = int(header[124:135], 8)
    body = change(bytes(data[512 : 512 + record_len]))
    new_header = u._raw_header(b"PaxHeader", len(body), MTIME, 0o644, b"x")
    return new_header + body + bytes(-len(body) % 512) + bytes(data[1024:])


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.replace(b" path=", b" linkpath="),  # another key
        lambda b: b + b"11 uid=123\n",  # a second record
        lambda b: b"9" + b[b.index(b" "):],  # a wrong length
        lambda b: b.replace(b"Surat", b"Sur/t"),  # a path, not a base name
        lambda b: b[:-1] + b"X",  # no newline
    ],
)
def test_pax_headers_are_read_strictly(change: Callable[[bytes], bytes]) -> None:
    reader = u.UstarReader(io.BytesIO(_pax_variant(change)), max_members=2, max_member_size=1024)
    with pytest.raises(UstarError):
        reader.next_member()


def test_pax_path_must_match_the_short_name() -> None:
    data = bytearray(_archive(LONG))
    second = u.build_header("something else", len(b"isi surat\n"), MTIME)
    data[1024:1536] = second
    reader = u.UstarReader(io.BytesIO(bytes(data)), max_members=2, max_member_size=1024)
    with pytest.raises(UstarError):
        reader.next_member()
