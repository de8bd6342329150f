"""click's own messages (``Usage:``, ``Options:``, "No such option" ...) in sandi's language.

click translates its messages with the standard library's ``gettext.gettext`` and
``ngettext``: the default text domain, in the language of the process locale. sandi
chooses its language itself (``--lang``, ``SANDI_LANG``, the home's default, then the
locale), so the command line gives click a catalog of click's messages in that
language: ``sandi/locale/<lang>/LC_MESSAGES/click.mo``, extracted from the installed
click and compiled by ``scripts/i18n`` (``tests/test_i18n.py`` fails when it is stale).

Invariants: only the command line binds it (the library never touches click nor the
process's gettext state); it rebinds on every run, so an in-process caller that
switches language gets click's messages in the new one; English is click's own text.
The binding replaces the ``_``/``ngettext`` names click's modules took from the
standard library at import (the only hook click offers without touching the
process environment, which would leak the choice into child processes).
"""

from __future__ import annotations

import gettext
import importlib
import sys
from collections.abc import Callable
from typing import Any

from sandi.i18n import LOCALE_DIR, SOURCE_LANGUAGE

DOMAIN = "click"
#: click's modules that translate (click._winconsole only exists on Windows)
CLICK_MODULES = ("click.core", "click.decorators", "click.exceptions", "click.formatting",
                 "click.parser", "click.shell_completion", "click.termui", "click.types",
                 "click.utils", "click._termui_impl")
_STDLIB: dict[str, Callable[..., str]] = {"_": gettext.gettext, "ngettext": gettext.ngettext}


def click_translations(language: str) -> gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    # fallback=False: a shipped language without click's catalog is a packaging bug.
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language])


def bind_click_catalog(language: str) -> None:
    """Make click speak ``language`` for the rest of this process (until the next call)."""
    catalog = click_translations(language)
    functions: dict[str, Callable[..., str]] = {"_": catalog.gettext, "ngettext": catalog.ngettext}
    names = [*CLICK_MODULES, *(["click._winconsole"] if sys.platform == "win32" else [])]
    for name in names:
        module: Any = sys.modules.get(name) or importlib.import_module(name)
        for attr, function in functions.items():
            current = getattr(module, attr, None)
            if current is None:
                continue
            if current is _STDLIB[attr] or _is_ours(current):
                setattr(module, attr, function)


def _is_ours(function: object) -> bool:
    """A bound method of a translations object this module made earlier."""
    owner = getattr(function, "__self__", None)
    return isinstance(owner, gettext.NullTranslations)
