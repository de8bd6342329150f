"""Addressing a circular (*surat edaran*): every agency of the directory, or a list file.

Invariants: both only name recipients; the policy still judges sender -> each of them
when sealing, and a denial of any one stops the whole seal (nothing is written). A list
file is bounded (1 MiB, at most :data:`MAX_RECIPIENTS` codes) and checked before any
lookup; an unknown code is the directory's error at sealing, naming the code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sandi.documents.metadata import MAX_RECIPIENTS
from sandi.documents.workspace import Workspace
from sandi.errors import NotFoundError, UsageError
from sandi.i18n import _

MAX_LIST_FILE_BYTES = 1024 * 1024
_CODE = re.compile(r"^[A-Z][A-Z0-9-]{0,63}$")


def circular_recipients(workspace: Workspace, sender: str, *,
                        kinds: Sequence[str] | None = None) -> list[str]:
    """Every active agency of the directory (of ``kinds``, when given) that has a current,
    valid encryption certificate, the sender excepted, in the directory's order."""
    now = workspace.now()
    out: list[str] = []
    for agency in workspace.snapshot.agencies:
        if agency.code == sender or agency.status != "active" or (kinds and agency.kind not in kinds):
            continue
        if any(c.revocation is None and c.not_before <= now <= c.not_after
               for c in agency.current("encryption")):
            out.append(agency.code)
    return out


def read_recipient_list(path: Path) -> list[str]:
    """Agency codes from a list file: one or more per line (separated by spaces or
    commas), ``#`` starts a comment, case ignored; duplicates kept once, in order."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_LIST_FILE_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(_("{path}: no such file").format(path=path)) from None
    except OSError as exc:
        raise UsageError(_("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)) from None
    if len(data) > MAX_LIST_FILE_BYTES:
        raise UsageError(_("{path}: a recipient list is at most {limit} bytes").format(
            path=path, limit=MAX_LIST_FILE_BYTES))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(_("{path}: a recipient list must be UTF-8 text").format(path=path)) from None
    codes: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split("#", 1)[0].replace(",", " ").split():
            code = word.upper()
            if not _CODE.match(code):
                raise UsageError(
                    _("{path}, line {line}: {word} is not an agency code").format(
                        path=path, line=number, word=repr(word[:70])),
                    hint=_("one code per line (or several, separated by spaces or commas); '#' starts "
                           "a comment"),
                )
            codes[code] = None
            if len(codes) > MAX_RECIPIENTS:
                raise UsageError(_("at most {max_recipients} recipients per sealed document").format(
                    max_recipients=MAX_RECIPIENTS),
                    hint=_("split the list and seal the document once per part"))
    return list(codes)
