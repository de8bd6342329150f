"""Translations: every sentence a person reads goes through here, and only here.

sandi speaks English (the source language) and Indonesian (``id``). Catalogs are
standard gettext: ``sandi/locale/sandi.pot`` is extracted from the source by Babel,
``sandi/locale/<lang>/LC_MESSAGES/sandi.po`` holds the translations and the compiled
``sandi.mo`` beside it ships in the wheel (``scripts/i18n`` rebuilds all three).

Invariants:

* Marked strings use ``str.format`` placeholders with names (``{path}``), never
  f-strings or ``%``: a translator must see the whole sentence and may reorder it.
  ``tests/test_i18n.py`` fails when a placeholder of a message is missing from its
  translation, when a message has no Indonesian translation, or when the catalog is
  stale against the source.
* Machine output is never translated: ``--json``, audit entries, file formats, exit
  codes and the ``code`` of errors stay the same in every language.
* The active language is per context (a :class:`contextvars.ContextVar`), so a server
  thread or task answering in Indonesian does not change another's language. The
  process default is English until :func:`set_language` is called; the library never
  reads the environment by itself (the command line decides, see
  :func:`language_from_environment`).

Use ``_("...")`` for a message built now, ``N_("...")`` to mark a message that is
translated later (tables of help texts built at import time), ``ngettext`` for
plurals, and :class:`Message` for a sentence that is both data and text: a policy
decision's reason, an audit verification problem. A Message *is* its English text
(so ``--json`` and the audit log carry English whatever the language) and
:func:`translated` gives what a person reads.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "sandi"
SOURCE_LANGUAGE = "en"
#: every language sandi ships a catalog for, and the source language
SUPPORTED_LANGUAGES = ("en", "id")
LOCALE_DIR = Path(__file__).with_name("locale")

_default_language = SOURCE_LANGUAGE
_active: ContextVar[str | None] = ContextVar("sandi_language", default=None)


@cache
def _catalog(language: str) -> _gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    # fallback=False: a supported language whose catalog is missing is a packaging
    # bug, and silently showing English would hide it.
    return _gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language])


def normalise_language(value: str) -> str | None:
    """``id_ID.UTF-8`` → ``id``, ``C``/``POSIX`` → ``en``; None for a language sandi lacks."""
    tag = value.strip().split(":", 1)[0].split(".", 1)[0].split("@", 1)[0]
    if tag in ("C", "POSIX"):
        return SOURCE_LANGUAGE
    code = tag.replace("-", "_").split("_", 1)[0].lower()
    # Windows spells locales by name ("Indonesian_Indonesia").
    code = {"indonesian": "id", "bahasa": "id", "english": "en", "in": "id"}.get(code, code)
    return code if code in SUPPORTED_LANGUAGES else None


def language_from_environment(environ: Mapping[str, str], home_default: str | None = None) -> str:
    """The language the command line should speak.

    ``SANDI_LANG`` first, then the home's own default (chosen at ``init``), then the
    locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as gettext reads
    them), then English. A value naming a language sandi does not have is skipped.
    """
    explicit = environ.get("SANDI_LANG")
    if explicit and (lang := normalise_language(explicit)):
        return lang
    if home_default and (lang := normalise_language(home_default)):
        return lang
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable)
        if not value:
            continue
        for part in value.split(":"):
            if lang := normalise_language(part):
                return lang
        if variable != "LANGUAGE":
            break  # the first locale variable set decides, as in POSIX
    return SOURCE_LANGUAGE


class UnknownLanguage(ValueError):
    """A language sandi has no catalog for."""

    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.language = language

    @property
    def message(self) -> str:
        return _("unknown language {language!r}").format(language=self.language)

    @property
    def hint(self) -> str:
        return _("choose one of: {choices}").format(choices=", ".join(SUPPORTED_LANGUAGES))


def set_language(language: str) -> None:
    """Make ``language`` the process default (the command line calls this once)."""
    global _default_language
    lang = normalise_language(language)
    if lang is None:
        # A ValueError, not a SandiError: this module sits below sandi.errors (which
        # translates through it); the command line turns it into a usage error.
        raise UnknownLanguage(language)
    _catalog(lang)  # load now: a broken catalog fails here, not halfway through
    _default_language = lang


def current_language() -> str:
    return _active.get() or _default_language


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    """Speak ``language`` inside the block (this thread or task only)."""
    lang = normalise_language(language)
    if lang is None:
        raise ValueError(f"unsupported language {language!r}")
    token = _active.set(lang)
    try:
        yield
    finally:
        _active.reset(token)


def _(message: str) -> str:
    """The translation of ``message`` in the current language."""
    return _catalog(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _catalog(current_language()).ngettext(singular, plural, count)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction without translating it yet."""
    return message


gettext = _


class Message(str):
    """An English sentence that can also be shown translated.

    The string value is the source (English) text, so a Message stored in JSON, an
    audit entry or compared in a test is language-independent; ``translated()`` (or
    :func:`translated`) renders it in the current language. Arguments that are
    Messages themselves are translated with it. ``Message`` is an extraction keyword
    (``scripts/i18n``): its first argument is the catalog's msgid.
    """

    template: str
    args: dict[str, object]

    def __new__(cls, template: str, /, **args: object) -> Message:
        self = super().__new__(cls, template.format(**args))
        self.template = template
        self.args = args
        return self

    def translated(self) -> str:
        args = {k: translated(v) if isinstance(v, Message) else v for k, v in self.args.items()}
        return _(self.template).format(**args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_message, (self.template, self.args))


def _rebuild_message(template: str, args: dict[str, object]) -> Message:
    return Message(template, **args)


def translated(text: str) -> str:
    """What a person reads for ``text``: a :class:`Message` in the current language,
    any other string as it is."""
    return text.translated() if isinstance(text, Message) else text

__all__ = [
    "LOCALE_DIR",
    "N_",
    "SUPPORTED_LANGUAGES",
    "Message",
    "UnknownLanguage",
    "_",
    "current_language",
    "gettext",
    "language_from_environment",
    "ngettext",
    "normalise_language",
    "set_language",
    "translated",
    "use_language",
]
