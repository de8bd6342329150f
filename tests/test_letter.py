"""The letter fields (naskah dinas): sifat, tanggal, kepada, tembusan, penandatangan, NIP;
strict at sealing, strict for the new fields at opening, older documents still open;
shown as an Indonesian letter heading in both languages."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from sandi.documents.letter import nip_problem, parse_letter, prepare_letter
from sandi.errors import UsageError, VerificationError
from sandi.policy.classification import level_words
from tests import authority_fixtures as fx
from tests.authority_fixtures import BANTEN_POLICY, AuthorityHome
from tests.test_seal_tamper import assert_opens, assert_refused, forge

authority_template = fx.authority_template
authority = fx.authority
policy_authority_template = fx.policy_authority_template
policy_authority = fx.policy_authority

TODAY = date(2026, 12, 2)
NIP = "197503122002121003"  # born 12 March 1975, appointed December 2002, man, serial 003


@pytest.mark.parametrize(
    ("nip", "problem"),
    [
        (NIP, None),
        ("198001012005011001", None),
        ("199912312024032001", None),  # a woman, appointed March 2024
        ("198503122021211002", None),  # NI PPPK: 21 where the month would be
        ("19750312200212100", "18 digits"),
        ("1975031220021210033", "18 digits"),
        ("19750312200212100A", "18 digits"),
        ("197513122002121003", "birth date"),  # month 13
        ("197502302002121003", "birth date"),  # 30 February
        ("189903122002121003", "not plausible"),
        ("197503122002131003", "month of appointment"),  # month 13
        ("197503122002001003", "month of appointment"),  # month 00
        ("197503121992121003", "less than 18 years"),  # appointed at 17
        ("200512312023111003", "less than 18 years"),  # 17 years and 11 months
        ("197503122027011003", "in the future"),
        ("197503122002123003", "gender"),
        ("197503122002120003", "gender"),
        ("197503122002121000", "serial"),
    ],
)
def test_nip_validation(nip: str, problem: str | None) -> None:
    found = nip_problem(nip, not_after=TODAY)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def _prepare(**letter: object) -> dict[str, object]:
    return prepare_letter(letter, today=TODAY, classification_names=level_words())


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Segera", "Segera"), ("segera", "Segera"), ("SANGAT SEGERA", "Sangat Segera"),
     ("sangat-segera", "Sangat Segera"), ("biasa", "Biasa")],
)
def test_sifat_is_one_of_the_urgencies(typed: str, stored: str) -> None:
    assert _prepare(sifat=typed)["sifat"] == stored


@pytest.mark.parametrize("typed", ["Rahasia", "sangat rahasia", "R", "SR", "B", "Terbatas", "Top Secret"])
def test_sifat_refuses_a_classification(typed: str) -> None:
    with pytest.raises(UsageError) as info:
        _prepare(sifat=typed)
    assert "is a classification, not an urgency" in str(info.value)
    assert info.value.hint.startswith("give the classification with --class")


def test_sifat_unknown_and_configured() -> None:
    with pytest.raises(UsageError) as info:
        _prepare(sifat="Kilat")
    assert info.value.hint == "sifat is one of: Sangat Segera, Segera, Biasa"
    letter = prepare_letter({"sifat": "kilat"}, today=TODAY, urgencies=("Kilat", "Segera", "Biasa"))
    assert letter["sifat"] == "Kilat"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("2026-11-28", "2026-11-28"), ("28 November 2026", "2026-11-28"), ("28 Nov 2026", "2026-11-28"),
     ("2 Desember 2026", "2026-12-02"), ("2 Des 2026", "2026-12-02"), ("17 Agustus 2026", "2026-08-17"),
     ("02-12-2026", "2026-12-02"), ("2/12/2026", "2026-12-02")],
)
def test_tanggal_is_a_real_date(typed: str, stored: str) -> None:
    assert _prepare(tanggal=typed)["tanggal"] == stored


@pytest.mark.parametrize("typed", ["2026-02-30", "31 April 2026", "besok", "2026/12/02", "32-01-2026"])
def test_tanggal_refuses_what_is_no_date(typed: str) -> None:
    with pytest.raises(UsageError, match="date"):
        _prepare(tanggal=typed)


def test_tanggal_defaults_to_today() -> None:
    assert _prepare() == {"tanggal": "2026-12-02"}


def test_addressee_copies_and_signing_official() -> None:
    letter = _prepare(kepada=" Kepala BAPPEDA ", tembusan=["Gubernur Banten", "Sekretaris Daerah"],
                      penandatangan={"nama": "Dr. Ahmad Fauzi", "jabatan": "Kepala Dinas",
                                     "nip": "19750312 200212 1 003"})
    assert letter["kepada"] == "Kepala BAPPEDA"
    assert letter["tembusan"] == ["Gubernur Banten", "Sekretaris Daerah"]
    assert letter["penandatangan"] == {"nama": "Dr. Ahmad Fauzi", "jabatan": "Kepala Dinas", "nip": NIP}
    # an official who is not a civil servant has no NIP
    assert _prepare(penandatangan={"nama": "Andra Soni", "jabatan": "Gubernur Banten"})["penandatangan"] == {
        "nama": "Andra Soni", "jabatan": "Gubernur Banten"}


@pytest.mark.parametrize(
    ("letter", "message"),
    [
        ({"penandatangan": {"nama": "Ahmad"}}, "needs a name and a position"),
        ({"penandatangan": {"jabatan": "Kepala Dinas", "nip": NIP}}, "needs a name and a position"),
        ({"penandatangan": {"nama": "A", "jabatan": "B", "nip": "123"}}, "invalid NIP 123: a NIP has 18 digits"),
        ({"tembusan": "Gubernur"}, "list"),
        ({"tembusan": [f"Dinas {i}" for i in range(21)]}, "at most 20"),
        ({"kepada": "Kepala\nBAPPEDA"}, "control characters"),
        ({"perihal": "Rapat"}, "unknown letter field 'perihal'"),
    ],
)
def test_bad_letters_are_usage_errors(letter: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        prepare_letter(letter, today=TODAY)


def test_older_letters_parse_as_signed() -> None:
    old = {"nomor": "005/1", "sifat": "segera", "tanggal": "28 Nov", "hal": "Rapat", "lampiran": "-"}
    assert parse_letter(old) == old


@pytest.mark.parametrize(
    "letter",
    [
        {"tembusan": []},
        {"tembusan": "Gubernur"},
        {"tembusan": ["Gubernur", 3]},
        {"tembusan": [" Gubernur"]},
        {"kepada": ""},
        {"kepada": ["Kepala"]},
        {"penandatangan": {"nama": "A"}},
        {"penandatangan": {"nama": "A", "jabatan": "B", "pangkat": "IV/a"}},
        {"penandatangan": {"nama": "A", "jabatan": "B", "nip": "197503122002121000"}},
        {"penandatangan": ["A", "B"]},
        {"nomor": 5},
        {"perihal": "x"},
    ],
)
def test_new_fields_are_strict_when_read(letter: dict[str, object]) -> None:
    with pytest.raises(VerificationError, match="letter"):
        parse_letter(letter)


# -- through the command line ---------------------------------------------------------------------

FULL = ("--nomor", "005/117/DISKOMINFO/2026", "--sifat", "segera", "--lampiran", "1 (satu) berkas",
        "--hal", "Rapat koordinasi", "--tanggal", "2 Desember 2026", "--kepada", "Kepala BAPPEDA",
        "--tembusan", "Gubernur Banten", "--tembusan", "Sekretaris Daerah",
        "--penandatangan", "Dr. Ahmad Fauzi", "--jabatan", "Kepala Dinas", "--nip", "19750312 200212 1 003")


@pytest.fixture
def letter_file(authority: AuthorityHome, tmp_path: Path) -> Path:
    doc = tmp_path / "surat.txt"
    doc.write_text("Dengan hormat\n")
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", *FULL)
    assert r.code == 0, r
    return tmp_path / "surat.txt.sandi"


def test_heading_in_english(authority: AuthorityHome, letter_file: Path, tmp_path: Path) -> None:
    r = authority.run("--lang", "en", "open", letter_file, "--as", "BAPPEDA", "-o", tmp_path / "dibuka.txt")
    assert r.code == 0, r
    heading = [line.strip() for line in r.stdout.splitlines()]
    expected = [
        "Number:         005/117/DISKOMINFO/2026",
        "Urgency:        Segera",
        "Attachments:    1 (satu) berkas",
        "Subject:        Rapat koordinasi",
        "Date:           2026-12-02",
        "To (Yth.):      Kepala BAPPEDA",
        "Signed by:      Kepala Dinas",
        "Dr. Ahmad Fauzi",
        "NIP 19750312 200212 1 003",
        "Copies:         1. Gubernur Banten",
        "2. Sekretaris Daerah",
    ]
    start = heading.index(expected[0])
    assert heading[start:start + len(expected)] == expected


def test_heading_in_indonesian(authority: AuthorityHome, letter_file: Path) -> None:
    r = authority.run("--lang", "id", "inspect", letter_file, "--as", "BAPPEDA")
    assert r.code == 0, r
    heading = [line.strip() for line in r.stdout.splitlines()]
    expected = [
        "Nomor:         005/117/DISKOMINFO/2026",
        "Sifat:         Segera",
        "Lampiran:      1 (satu) berkas",
        "Hal:           Rapat koordinasi",
        "Tanggal:       2 Desember 2026",
        "Kepada Yth.:   Kepala BAPPEDA",
        "Penandatangan: Kepala Dinas",
        "Dr. Ahmad Fauzi",
        "NIP 19750312 200212 1 003",
        "Tembusan:      1. Gubernur Banten",
        "2. Sekretaris Daerah",
    ]
    start = heading.index(expected[0])
    assert heading[start:start + len(expected)] == expected
    assert any(re.fullmatch(r"Klasifikasi: +Rahasia \(R\)", line) for line in heading)
    assert any(re.fullmatch(r"Disegel pada: +\d{1,2} [A-Z][a-z]+ \d{4} \d\d:\d\d:\d\d WIB", line)
               for line in heading)


def test_json_is_the_same_in_both_languages(authority: AuthorityHome, letter_file: Path) -> None:
    english = authority.run("--lang", "en", "--json", "inspect", letter_file, "--as", "BAPPEDA")
    indonesian = authority.run("--lang", "id", "--json", "inspect", letter_file, "--as", "BAPPEDA")
    assert english.code == indonesian.code == 0
    assert english.stdout_bytes == indonesian.stdout_bytes
    verified = json.loads(english.stdout)["verified"]
    assert verified["sifat"] == "Segera" and verified["tanggal"] == "2026-12-02"
    assert verified["tembusan"] == ["Gubernur Banten", "Sekretaris Daerah"]
    assert verified["penandatangan"] == {"nama": "Dr. Ahmad Fauzi", "jabatan": "Kepala Dinas", "nip": NIP}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", verified["sealed_at"])


@pytest.mark.parametrize("language", ["en", "id"])
def test_a_classification_as_sifat_is_refused(authority: AuthorityHome, tmp_path: Path, language: str) -> None:
    doc = tmp_path / "surat.txt"
    doc.write_text("x\n")
    r = authority.run("--lang", language, "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA",
                      "--class", "B", "--sifat", "Rahasia")
    assert r.code == 2, r
    assert "--class" in r.stderr
    if language == "en":
        assert "error: 'Rahasia' is a classification, not an urgency (sifat)" in r.stderr
        assert "hint: give the classification with --class; sifat is one of: Sangat Segera, Segera, Biasa" \
            in r.stderr
    else:
        assert "galat: 'Rahasia' adalah klasifikasi, bukan sifat surat" in r.stderr
    assert not (tmp_path / "surat.txt.sandi").exists()


def test_the_home_configures_its_urgencies(authority: AuthorityHome, tmp_path: Path) -> None:
    config = authority.path / "sandi.toml"
    config.write_text(config.read_text() + 'urgencies = ["Kilat", "Segera", "Biasa"]\n')
    doc = tmp_path / "surat.txt"
    doc.write_text("x\n")
    r = authority.run("--json", "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T",
                      "--sifat", "kilat")
    assert r.code == 0, r
    assert json.loads(r.stdout)["sifat"] == "Kilat"
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T",
                      "--sifat", "Sangat Segera", "--force")
    assert r.code == 2 and "sifat is one of: Kilat, Segera, Biasa" in r.stderr


def test_sign_carries_the_letter(authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "pengumuman.txt"
    doc.write_text("x\n")
    assert authority.run("sign", doc, "--as", "DISKOMINFO", "--class", "Biasa", *FULL).code == 0
    verified = json.loads(authority.run("--json", "verify", doc).stdout)
    assert verified["kepada"] == "Kepala BAPPEDA" and verified["penandatangan"]["nip"] == NIP


def test_an_older_document_still_opens(authority: AuthorityHome, tmp_path: Path) -> None:
    # what sandi signed before the letter fields were checked: free text, lower case
    old = {"nomor": "005/1", "sifat": "segera", "tanggal": "28 Nov", "hal": "Rapat"}
    raw = forge(authority, authority.workspace(), edit=lambda m: replace(m, letter=old))
    assert_opens(authority, raw, tmp_path)


@pytest.mark.parametrize(
    "letter",
    [{"penandatangan": {"nama": "A", "jabatan": "B", "nip": "197503122002121000"}},
     {"tembusan": "Gubernur"}],
    ids=["bad-nip", "copies-not-a-list"],
)
def test_a_malformed_letter_is_refused_at_opening(authority: AuthorityHome, tmp_path: Path,
                                                  letter: dict[str, object]) -> None:
    raw = forge(authority, authority.workspace(), edit=lambda m: replace(m, letter=letter))
    assert_refused(authority, raw, tmp_path, message="does not carry sandi seal metadata")


def test_the_policy_names_the_urgencies(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    text = BANTEN_POLICY.read_text(encoding="utf-8").replace(
        "version = 1\n", 'version = 2\nurgencies = ["Kilat", "Sangat Segera", "Segera", "Biasa"]\n', 1)
    policy = tmp_path / "banten-v2.toml"
    policy.write_text(text, encoding="utf-8")
    policy_authority.ok("policy", "apply", policy)
    doc = tmp_path / "surat.txt"
    doc.write_text("x\n")
    seal = ("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "--force")
    r = policy_authority.run("--json", *seal, "--sifat", "kilat")
    assert r.code == 0, r
    assert json.loads(r.stdout)["sifat"] == "Kilat"
    # the home's own list wins over the policy's
    config = policy_authority.path / "sandi.toml"
    config.write_text(config.read_text() + 'urgencies = ["Segera", "Biasa"]\n')
    r = policy_authority.run(*seal, "--sifat", "Kilat")
    assert r.code == 2 and "sifat is one of: Segera, Biasa" in r.stderr


def test_a_policy_with_bad_urgencies_is_invalid(tmp_path: Path) -> None:
    from sandi.policy import PolicyFileError, parse_policy

    for bad in ('"Segera"', '["Segera", "segera"]', '["", "Biasa"]', '[1, 2]'):
        text = BANTEN_POLICY.read_text(encoding="utf-8").replace(
            "version = 1\n", f"version = 1\nurgencies = {bad}\n", 1)
        with pytest.raises(PolicyFileError, match="urgencies"):
            parse_policy(text, "banten.toml")
