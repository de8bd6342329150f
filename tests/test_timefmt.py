"""Indonesian time: shown in the home's zone (WIB by default) to the second, with the zone
named; typed times without an offset mean that zone; stored times stay UTC."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandi.errors import UsageError
from sandi.i18n import use_language
from sandi.timefmt import (
    check_zone,
    iso_time,
    normalise_zone,
    parse_date,
    parse_time,
    show_date,
    show_time,
    today,
    use_zone,
)
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome
from tests.conftest import RunSandi

authority_template = fx.authority_template
authority = fx.authority

MOMENT = datetime(2026, 12, 2, 5, 30, 19, 122473, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "indonesian", "iso"),
    [
        ("Asia/Jakarta", "2 Desember 2026 12:30:19 WIB", "2026-12-02T12:30:19+07:00"),
        ("WITA", "2 Desember 2026 13:30:19 WITA", "2026-12-02T13:30:19+08:00"),
        ("wit", "2 Desember 2026 14:30:19 WIT", "2026-12-02T14:30:19+09:00"),
        ("Asia/Pontianak", "2 Desember 2026 12:30:19 WIB", "2026-12-02T12:30:19+07:00"),
        ("UTC", "2 Desember 2026 05:30:19 UTC", "2026-12-02T05:30:19+00:00"),
    ],
)
def test_times_are_shown_in_the_zone(zone: str, indonesian: str, iso: str) -> None:
    with use_zone(zone):
        with use_language("id"):
            assert show_time(MOMENT) == indonesian
        with use_language("en"):
            assert show_time(MOMENT) == iso
        with use_language("id"):
            assert iso_time(MOMENT) == iso  # machine output: the same in every language


def test_the_default_zone_is_wib() -> None:
    with use_language("id"):
        assert show_time(MOMENT).endswith(" WIB")
    assert iso_time(MOMENT).endswith("+07:00")


def test_the_date_changes_at_local_midnight() -> None:
    late = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # midnight in Jakarta
    assert today(late) == date(2027, 1, 1)
    assert today(late - timedelta(seconds=1)) == date(2026, 12, 31)
    with use_zone("WIT"):
        assert today(late - timedelta(hours=2)) == date(2027, 1, 1)


@pytest.mark.parametrize("month", range(1, 13))
def test_every_month_has_its_indonesian_name(month: int) -> None:
    names = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
             "Oktober", "November", "Desember"]
    with use_language("id"):
        assert show_date(date(2026, month, 9)) == f"9 {names[month - 1]} 2026"
    assert parse_date(f"9 {names[month - 1]} 2026") == date(2026, month, 9)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-06-01T09:00:00+07:00", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),
        ("2026-06-01T09:00:00", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),  # no offset: WIB
        ("2026-06-01 09:00", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),
        ("2026-06-01", datetime(2026, 5, 31, 17, 0, tzinfo=UTC)),  # midnight in WIB
        ("2026-06-01T02:00:00Z", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),
        ("2026-06-01 10:00 WITA", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),
        ("2026-06-01 11:00 wit", datetime(2026, 6, 1, 2, 0, tzinfo=UTC)),
    ],
)
def test_typed_times_without_an_offset_mean_the_zone(typed: str, expected: datetime) -> None:
    parsed = parse_time(typed)
    assert parsed.tzinfo is not None and parsed == expected


@pytest.mark.parametrize("typed", ["kemarin", "2026-13-01", "2026-06-01T09:00+07:00 WIB", ""])
def test_bad_times_are_usage_errors(typed: str) -> None:
    with pytest.raises(UsageError):
        parse_time(typed)


def test_zones_by_name() -> None:
    assert normalise_zone("wib") == "Asia/Jakarta"
    assert normalise_zone("WITA") == "Asia/Makassar"
    assert normalise_zone("Asia/Jayapura") == "Asia/Jayapura"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "/etc/localtime"):
        assert normalise_zone(bad) is None
    with pytest.raises(UsageError) as info:
        check_zone("Mars/Olympus")
    assert "WIB, WITA or WIT" in info.value.hint


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        show_time(datetime(2026, 1, 1))
    assert iso_time(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3)))) == "2026-01-01T10:00:00+07:00"


def test_init_writes_the_language_and_zone(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run_sandi("--home", home, "init", "--agency", "BAPPEDA", "--root-fingerprint", "ab" * 32,
                  "--lang", "id", "--zone", "WITA", env={"SANDI_PASSPHRASE": "kunci rahasia uji coba"})
    assert r.code == 0, r
    config = tomllib.loads((home / "sandi.toml").read_text())
    assert config["language"] == "id" and config["timezone"] == "Asia/Makassar"
    r = run_sandi("--home", home, "init", "--agency", "BAPPEDA", "--root-fingerprint", "ab" * 32,
                  "--zone", "Mars/Olympus", env={"SANDI_PASSPHRASE": "kunci rahasia uji coba"})
    assert r.code == 2 and "Mars/Olympus" in r.stderr


def test_a_bad_zone_in_the_configuration_is_reported(run_sandi: RunSandi, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "sandi.toml").write_text('format = 1\nrole = "workstation"\nprovince = "Banten"\n'
                                     'timezone = "Mars/Olympus"\n')
    r = run_sandi("--home", home, "--json", "keys", "list")
    assert r.code == 2 and "unknown time zone 'Mars/Olympus'" in r.stderr


def test_seal_json_shows_the_home_zone(authority: AuthorityHome, tmp_path: Path) -> None:
    config = authority.path / "sandi.toml"
    text = config.read_text()
    assert 'timezone = "Asia/Jakarta"' in text  # init writes the default zone
    config.write_text(text.replace('timezone = "Asia/Jakarta"', 'timezone = "Asia/Jayapura"'))
    doc = tmp_path / "surat.txt"
    doc.write_text("x\n")
    r = authority.run("--json", "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B")
    assert r.code == 0, r
    sealed_at = json.loads(r.stdout)["sealed_at"]
    assert sealed_at.endswith("+09:00") and len(sealed_at) == 25  # to the second
    r = authority.run("--lang", "id", "inspect", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA")
    assert " WIT\n" in r.stdout


def test_audit_log_and_keys_list_show_wib(authority: AuthorityHome) -> None:
    r = authority.run("--lang", "id", "audit", "log", "--limit", "3")
    assert r.code == 0, r
    assert re.search(r"\d{1,2} [A-Z][a-z]+ \d{4} \d\d:\d\d:\d\d WIB", r.stdout), r.stdout
    r = authority.run("audit", "log", "--limit", "3")
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", r.stdout), r.stdout
    # --since without an offset is the home's midnight: everything today in WIB is kept
    r = authority.run("--json", "audit", "log", "--since", today().isoformat(), "--limit", "0")
    assert r.code == 0 and json.loads(r.stdout)
    r = authority.run("--lang", "id", "keys", "list", "BAPPEDA")
    assert re.search(r"\d{1,2} [A-Z][a-z]+ \d{4} \.\. \d{1,2} [A-Z][a-z]+ \d{4}", r.stdout), r.stdout


def test_policy_times_without_an_offset_mean_wib(tmp_path: Path, run_sandi: RunSandi) -> None:
    from tests.authority_fixtures import BANTEN_POLICY

    r = run_sandi("--home", tmp_path / "none", "--json", "policy", "explain", "--from", "DISKOMINFO",
                  "--to", "BAPPEDA", "--class", "R", "--policy", BANTEN_POLICY, "--at", "2026-06-01 09:00")
    assert r.code == 0, r
    assert json.loads(r.stdout)["at"] == "2026-06-01T09:00:00+07:00"
    r = run_sandi("--home", tmp_path / "none", "--lang", "id", "policy", "explain", "--from", "DISKOMINFO",
                  "--to", "BAPPEDA", "--class", "R", "--policy", BANTEN_POLICY, "--at", "2026-06-01 09:00")
    assert "1 Juni 2026 09:00:00 WIB" in r.stdout
