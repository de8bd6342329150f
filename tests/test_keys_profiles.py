"""Key profiles: the shipped default, overrides in the home, strict parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandi.authority.profiles import DEFAULT_PROFILE_TOML, default_profile, load_profile, parse_profile
from sandi.errors import NotFoundError, UsageError
from sandi.home import Home

ROOT = Path(__file__).parents[1]


def test_shipped_file_is_the_built_in_default() -> None:
    assert (ROOT / "keys" / "default.toml").read_text() == DEFAULT_PROFILE_TOML
    p = default_profile()
    assert (p.signing_validity_days, p.encryption_validity_days, p.overlap_days) == (365, 365, 30)
    assert p.subject_fields(code="BAPPEDA", name="Badan", purpose="signing", province="P") == (
        "BAPPEDA signing", "Badan")


def test_home_override(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    text = DEFAULT_PROFILE_TOML.replace('name = "default"', 'name = "short"').replace("365", "30").replace(
        "overlap_days = 30", "overlap_days = 7")
    (tmp_path / "profiles" / "short.toml").write_text(text)
    p = load_profile("short", home=Home(tmp_path))
    assert p.signing_validity_days == 30 and p.overlap_days == 7
    with pytest.raises(NotFoundError):
        load_profile("nope", home=Home(tmp_path))
    with pytest.raises(UsageError):
        load_profile("../etc/passwd", home=Home(tmp_path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('algorithm = "ed25519"', 'algorithm = "rsa"'), "ed25519"),
        (('algorithm = "x25519"', 'algorithm = "p256"'), "x25519"),
        (("validity_days = 365", "validity_days = 0"), "validity_days"),
        (("validity_days = 365", "validity_days = 99999"), "validity_days"),
        (("overlap_days = 30", "overlap_days = 400"), "overlap_days"),
        (("format = 1", "format = 2"), "format"),
        (('common_name = "{code} {purpose}"', 'common_name = "{code} {secret}"'), "placeholder"),
        (("[rotation]", "[rotation]\nsurprise = 1"), "unknown key"),
        (("[naming]", "[extra]\n[naming]"), "unknown key"),
        (("format = 1", "format = 1\nformat = 1"), "TOML"),
    ],
)
def test_bad_profiles_are_refused(change: tuple[str, str], message: str) -> None:
    text = DEFAULT_PROFILE_TOML.replace(*change, 1)
    with pytest.raises(UsageError, match=message):
        parse_profile(text, source="test.toml")


def test_long_names_are_refused_or_cut() -> None:
    p = default_profile()
    with pytest.raises(UsageError, match="64 characters"):
        p.subject_fields(code="X" * 60, name="n", purpose="encryption", province="P")
    _, ou = p.subject_fields(code="X", name="N" * 100, purpose="signing", province="P")
    assert len(ou) == 64
