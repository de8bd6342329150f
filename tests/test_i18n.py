"""Translations: the catalogs match the source, every message is translated, and the
command line picks its language as documented (sandi/i18n.py).

A new message without its Indonesian translation, a translation that drops a
placeholder, or a catalog not rebuilt after a change (``scripts/i18n``) fails here.
"""

from __future__ import annotations

import ast
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from sandi.i18n import (
    LOCALE_DIR,
    _,
    current_language,
    language_from_environment,
    normalise_language,
    set_language,
    use_language,
)

ROOT = Path(__file__).parents[1]
# scripts/i18n extracts with the same keywords (Message: see sandi.i18n.Message)
KEYWORDS = {**DEFAULT_KEYWORDS, "Message": None}
TRANSLATED = [p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/sandi.po")]


def _source_messages() -> set[str]:
    found: set[str] = set()
    method_map = [("**.py", "python")]
    for folder in ("sandi", "cli"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map=method_map, keywords=KEYWORDS
        ):
            if isinstance(message, tuple):  # ngettext: singular and plural
                found.update(m for m in message if m)
            else:
                found.add(message)
    return found


def _catalog_messages(path: Path) -> dict[str, object]:
    with path.open("rb") as f:
        catalog = read_po(f)
    out: dict[str, object] = {}
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        for one in ids:
            out[one] = message
    return out


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_indonesian_catalog_exists() -> None:
    assert "id" in TRANSLATED


def test_template_matches_the_source() -> None:
    in_source = _source_messages()
    in_template = set(_catalog_messages(LOCALE_DIR / "sandi.pot"))
    assert in_source - in_template == set(), "new messages: run scripts/i18n"
    assert in_template - in_source == set(), "messages gone from the source: run scripts/i18n"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language: str) -> None:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "sandi.po"
    messages = _catalog_messages(po)
    missing = sorted(m for m in _source_messages() if m not in messages)
    assert missing == [], f"not in {po.name}: run scripts/i18n"
    untranslated = sorted(
        key for key, m in messages.items()
        if not m.string or (isinstance(m.string, tuple) and not all(m.string))  # type: ignore[attr-defined]
    )
    assert untranslated == [], f"{len(untranslated)} messages lack a {language} translation"
    fuzzy = sorted(key for key, m in messages.items() if m.fuzzy)  # type: ignore[attr-defined]
    assert fuzzy == [], "fuzzy translations need a translator's look"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "sandi.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    broken = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        try:
            wanted = set().union(*(_fields(i) for i in ids))
            for text in strings:
                if _fields(text) != wanted:
                    broken.append(ids[0])
        except ValueError:  # an unbalanced brace is broken too
            broken.append(ids[0])
    assert broken == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_compiled_catalog_is_current(language: str) -> None:
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    def key(value: object) -> object:  # plurals: a tuple in the .po, a list in the .mo
        return tuple(value) if isinstance(value, list | tuple) else value

    with (folder / "sandi.po").open("rb") as f:
        source = {key(m.id): key(m.string) for m in read_po(f) if m.id}
    with (folder / "sandi.mo").open("rb") as f:
        compiled = {key(m.id): key(m.string) for m in read_mo(f) if m.id}
    assert compiled == source, "the .mo is older than the .po: run scripts/i18n"


# Exceptions that report a bug in the calling code, never shown to a person (the
# command line turns them into "internal error").
_PROGRAMMING_ERRORS = frozenset({
    "ValueError", "TypeError", "RuntimeError", "AssertionError", "KeyError", "IndexError",
    "NotImplementedError", "LookupError", "AttributeError",
})
_ERROR_NAME = re.compile(r"(?:Error|Denied|Conflict|Unknown|Exception)$")
# click calls whose first argument a person reads, and keywords that hold help texts.
_CLICK_TEXT_CALLS = frozenset({"click.echo", "click.secho", "click.confirm", "click.prompt"})
_CLICK_TEXT_KEYWORDS = frozenset({"help", "epilog", "short_help", "prompt"})
# CliContext.note(text), CliContext.emit(data, human), lines.append(text): the argument
# a person reads (emit's data is JSON and stays as it is).
_CLI_HUMAN_ARGS = {"note": 0, "emit": 1, "append": 0}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_plain_text(node: ast.expr) -> bool:
    """A string literal or f-string with words in it (not wrapped in _())."""
    if isinstance(node, ast.IfExp):
        return _is_plain_text(node.body) or _is_plain_text(node.orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        literal = node.value
    elif isinstance(node, ast.JoinedStr):
        literal = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
    else:
        return False
    return re.search(r"[A-Za-z]{2}", literal) is not None


def _unmarked_texts(path: Path) -> list[int]:
    """Lines of ``path`` where a person-facing text is passed without _(): the
    message or hint of an error, and in the command line help texts and echoed output."""
    in_cli = path.parent.name == "cli"
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func).rsplit(".", 1)[-1]
        texts: list[ast.expr] = []
        if name == "AgeError":  # AgeError(kind, message): the kind is machine-readable
            texts += node.args[1:2]
        elif _ERROR_NAME.search(name) and name not in _PROGRAMMING_ERRORS:
            texts += node.args[:1]
        if in_cli and _dotted(node.func) in _CLICK_TEXT_CALLS:
            texts += node.args[:1]
        if in_cli and name in _CLI_HUMAN_ARGS and len(node.args) > _CLI_HUMAN_ARGS[name]:
            human = node.args[_CLI_HUMAN_ARGS[name]]
            texts += human.elts if isinstance(human, ast.List) else [human]
        for keyword in node.keywords:
            if keyword.arg == "hint" or (in_cli and keyword.arg in _CLICK_TEXT_KEYWORDS):
                texts.append(keyword.value)
        lines += [text.lineno for text in texts if _is_plain_text(text)]
    return lines


def test_user_facing_strings_are_marked() -> None:
    """Errors, hints, help texts and echoed output are built from marked messages: a
    plain or f-string one in the library or the command line fails here."""
    offenders = []
    for path in sorted([*ROOT.joinpath("sandi").rglob("*.py"), *ROOT.joinpath("cli").rglob("*.py")]):
        if "migrations" in path.parts:
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line}" for line in _unmarked_texts(path)]
    assert offenders == [], f"unmarked user-facing messages (wrap them in _()): {offenders[:20]}"


@pytest.mark.parametrize(
    ("environ", "home", "expected"),
    [
        ({}, None, "en"),
        ({"LANG": "id_ID.UTF-8"}, None, "id"),
        ({"LANG": "C"}, None, "en"),
        ({"LANG": "C.UTF-8"}, None, "en"),
        ({"LANG": "fr_FR.UTF-8"}, None, "en"),
        ({"LC_ALL": "id_ID.UTF-8", "LANG": "C"}, None, "id"),
        ({"LC_MESSAGES": "en_US.UTF-8", "LANG": "id_ID"}, None, "en"),
        ({"LANGUAGE": "fr:id", "LANG": "C"}, None, "id"),
        ({"LANG": "C"}, "id", "id"),  # the home's choice beats the system locale
        ({"SANDI_LANG": "en", "LANG": "id_ID.UTF-8"}, "id", "en"),  # SANDI_LANG beats both
        ({"SANDI_LANG": "xx", "LANG": "id_ID.UTF-8"}, None, "id"),  # unknown: skipped
        ({"LANG": "Indonesian_Indonesia.1252"}, None, "id"),  # Windows spelling
    ],
)
def test_language_from_environment(environ: dict[str, str], home: str | None, expected: str) -> None:
    assert language_from_environment(environ, home) == expected


def test_normalise_language() -> None:
    assert normalise_language("id-ID") == "id"
    assert normalise_language("EN") == "en"
    assert normalise_language("de") is None


def test_use_language_is_scoped() -> None:
    set_language("en")
    with use_language("id"):
        assert current_language() == "id"
        assert _("Commands") == "Perintah"
    assert current_language() == "en"
    assert _("Commands") == "Commands"


def test_unknown_language_is_refused() -> None:
    # i18n sits below sandi.errors, so the library raises a ValueError subclass; the
    # command line turns it into a usage error (exit 2, tested below).
    from sandi.i18n import UnknownLanguage

    with pytest.raises(UnknownLanguage) as info:
        set_language("klingon")
    assert "klingon" in info.value.message and "id" in info.value.hint


def _sandi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from sandi_cli.main import main; main(sys.argv[1:])", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "SANDI_LANG")}
    env["SANDI_HOME"] = str(tmp_path / "home")
    return env


def test_help_follows_the_locale(clean_env: dict[str, str]) -> None:
    indonesian = _sandi("--help", env={**clean_env, "LANG": "id_ID.UTF-8"})
    english = _sandi("--help", env={**clean_env, "LANG": "C"})
    assert indonesian.returncode == english.returncode == 0
    assert "Perintah" in indonesian.stdout and "Perangkat Daerah" in indonesian.stdout
    assert "Commands" in english.stdout and "Perintah" not in english.stdout


def test_lang_option_and_variable_override_the_locale(clean_env: dict[str, str]) -> None:
    by_option = _sandi("--lang", "en", "--help", env={**clean_env, "LANG": "id_ID.UTF-8"})
    by_variable = _sandi("--help", env={**clean_env, "LANG": "C", "SANDI_LANG": "id"})
    assert "Commands" in by_option.stdout
    assert "Perintah" in by_variable.stdout
    bad = _sandi("--lang", "xx", "--help", env=clean_env)
    assert bad.returncode == 2
    assert "xx" in bad.stderr


def test_home_language_is_the_default(clean_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "sandi.toml").write_text(
        'format = 1\nrole = "workstation"\nprovince = "Banten"\nlanguage = "id"\n'
    )
    shown = _sandi("--help", env={**clean_env, "LANG": "C"})
    assert "Perintah" in shown.stdout


def test_machine_output_ignores_the_language() -> None:
    # The catalog never translates JSON keys or audit actions: no msgid is a bare
    # identifier of the kind those use.
    with (LOCALE_DIR / "sandi.pot").open("rb") as f:
        ids = [m.id for m in read_po(f) if m.id and isinstance(m.id, str)]
    assert not [i for i in ids if re.fullmatch(r"[a-z]+(?:[._][a-z]+)+", i)]


BANTEN = str(ROOT / "policies" / "banten.toml")
EXPLAIN_DENIED = ["policy", "explain", "--from", "DINSOS", "--to", "DISPAR", "--class", "R",
                  "--policy", BANTEN, "--at", "2026-06-01T09:00:00+07:00"]


@pytest.fixture
def sealed_by_passphrase(clean_env: dict[str, str], tmp_path: Path) -> tuple[Path, Path]:
    """An age file encrypted to a passphrase, and a file holding a wrong passphrase."""
    plain, right, wrong = tmp_path / "surat.txt", tmp_path / "pw", tmp_path / "pw-wrong"
    plain.write_text("Nota dinas\n")
    for path, text in ((right, "benar-123\n"), (wrong, "salah-456\n")):
        path.write_text(text)
        path.chmod(0o600)
    encrypted = tmp_path / "surat.txt.age"
    made = _sandi("encrypt", "-p", "--passphrase-file", str(right), "-o", str(encrypted), str(plain),
                  env={**clean_env, "LANG": "C"})
    assert made.returncode == 0, made.stderr
    return encrypted, wrong


def test_json_output_is_the_same_in_every_language(
    clean_env: dict[str, str], sealed_by_passphrase: tuple[Path, Path]
) -> None:
    encrypted, _wrong = sealed_by_passphrase
    commands = [
        ["--json", "policy", "validate", BANTEN],
        ["--json", "policy", "lint", BANTEN],
        ["--json", *EXPLAIN_DENIED],  # a denial: its reason is data, kept in English
        ["--json", "inspect", str(encrypted)],
    ]
    for args in commands:
        english = _sandi(*args, env={**clean_env, "LANG": "C"})
        indonesian = _sandi(*args, env={**clean_env, "LANG": "id_ID.UTF-8"})
        assert english.stdout, (args, english.stderr)
        assert (indonesian.returncode, indonesian.stdout) == (english.returncode, english.stdout), args


def test_people_read_indonesian_and_english(
    clean_env: dict[str, str], sealed_by_passphrase: tuple[Path, Path]
) -> None:
    indonesian = {**clean_env, "LANG": "id_ID.UTF-8"}
    english = {**clean_env, "LANG": "C"}
    shown = _sandi("seal", "--help", env=indonesian)
    assert "Menandatangani dan mengenkripsi BERKAS" in shown.stdout
    assert "Perangkat Daerah pengirim" in shown.stdout
    assert "Sign and encrypt FILE" in _sandi("seal", "--help", env=english).stdout

    refused = _sandi(*EXPLAIN_DENIED, env=indonesian)  # a policy refusal
    assert refused.returncode == 3
    assert "DITOLAK: DINSOS → DISPAR" in refused.stdout
    assert "alasan: tidak ada aturan yang mengizinkan DINSOS → DISPAR" in refused.stdout
    assert "DENY: DINSOS → DISPAR" in _sandi(*EXPLAIN_DENIED, env=english).stdout

    encrypted, wrong = sealed_by_passphrase  # a verification failure
    failed = _sandi("decrypt", "--passphrase-file", str(wrong), str(encrypted), env=indonesian)
    assert failed.returncode == 4
    assert "galat: kegagalan age (no match): tidak satu pun identitas" in failed.stderr
    assert "petunjuk: " in failed.stderr
    failed = _sandi("decrypt", "--passphrase-file", str(wrong), str(encrypted), env=english)
    assert "error: age no match failure: none of the given identities" in failed.stderr


def test_message_is_english_data_and_translated_text() -> None:
    from sandi.i18n import Message, translated

    reason = Message("unknown classification {classification!r}", classification="X")
    assert reason == "unknown classification 'X'"
    with use_language("id"):
        assert translated(reason) == "klasifikasi 'X' tidak dikenal"
        assert str(reason) == "unknown classification 'X'"  # as data it stays English
    assert translated("plain text") == "plain text"


def test_an_error_given_a_message_keeps_the_english_for_the_audit_log() -> None:
    from sandi.errors import PolicyDenied
    from sandi.i18n import Message

    with use_language("id"):
        exc = PolicyDenied(Message("no policy version is in force now: every relation is denied"))
    assert exc.message.startswith("saat ini tidak ada versi kebijakan")
    assert exc.source_message == "no policy version is in force now: every relation is denied"


# -- click's own messages (cli/clicktext.py) ------------------------------------------------------

CLICK_TRANSLATED = [p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/click.po")]


def _click_source_messages() -> set[tuple[str, ...]]:
    import click

    found: set[tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(Path(click.__file__).parent), method_map=[("**.py", "python")]
    ):
        found.add(message if isinstance(message, tuple) else (message,))
    return found


def _percent_fields(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_click_catalog_exists() -> None:
    assert CLICK_TRANSLATED == ["id"]


@pytest.mark.parametrize("language", CLICK_TRANSLATED)
def test_click_catalog_matches_the_installed_click(language: str) -> None:
    """A click upgrade with new or changed messages fails here until scripts/i18n ran
    and the new messages were translated."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / "click.po").open("rb") as f:
        catalog = read_po(f)
    ids = {m.id if isinstance(m.id, tuple) else (m.id,) for m in catalog if m.id}
    in_click = _click_source_messages()
    assert in_click - ids == set(), "click has messages the catalog lacks: run scripts/i18n"
    assert ids - in_click == set(), "the catalog has messages click no longer has: run scripts/i18n"
    untranslated = [m.id for m in catalog if m.id and (
        not m.string or (isinstance(m.string, tuple) and not all(m.string)))]
    assert untranslated == []
    assert [m.id for m in catalog if m.id and m.fuzzy] == []
    for message in catalog:
        if not message.id:
            continue
        ids_ = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        # click formats every plural with all its arguments, so a language with one
        # plural form may use any of them; none may be invented.
        wanted = set().union(*(_fields(i) for i in ids_))
        percent = set().union(*(_percent_fields(i) for i in ids_))
        for text in strings:
            assert _fields(text) <= wanted, (message.id, text)
            assert bool(_fields(text)) == bool(wanted), (message.id, text)
            assert _percent_fields(text) == percent, message.id
    with (LOCALE_DIR / language / "LC_MESSAGES" / "click.mo").open("rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert compiled == {_key(m.id): _key(m.string) for m in catalog if m.id}, "click.mo is stale: run scripts/i18n"


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def test_usage_errors_read_in_indonesian(clean_env: dict[str, str]) -> None:
    indonesian = _sandi("seal", "--bogus", env={**clean_env, "LANG": "id_ID.UTF-8"})
    assert indonesian.returncode == 2
    assert indonesian.stderr.splitlines()[:2] == [
        "Penggunaan: sandi seal [OPTIONS] FILE", "galat: Tidak ada opsi '--bogus'."]
    english = _sandi("seal", "--bogus", env={**clean_env, "LANG": "C"})
    assert english.stderr.splitlines()[:2] == ["Usage: sandi seal [OPTIONS] FILE", "error: No such option '--bogus'."]
    chosen = _sandi("--lang", "en", "seal", env={**clean_env, "LANG": "id_ID.UTF-8"})
    assert "error: Missing argument 'FILE'." in chosen.stderr
    missing = _sandi("seal", "x.txt", "--to", "BAPPEDA", env={**clean_env, "SANDI_LANG": "id"})
    assert "galat: Opsi tidak ada '--class'." in missing.stderr
    helped = _sandi("policy", "--help", env={**clean_env, "LANG": "id_ID.UTF-8"})
    assert "Penggunaan: sandi policy" in helped.stdout and "Opsi:" in helped.stdout
    assert "Tampilkan pesan ini lalu keluar." in helped.stdout and "Options:" not in helped.stdout


def test_click_catalog_follows_each_run() -> None:
    import click.core
    from sandi_cli.clicktext import bind_click_catalog

    try:
        bind_click_catalog("id")
        assert click.core._("Usage:") == "Penggunaan:"
        bind_click_catalog("en")
        assert click.core._("Usage:") == "Usage:"
    finally:
        bind_click_catalog("en")
