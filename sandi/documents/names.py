"""Which names a sealed document may carry, beyond the container's safe base names.

``open --output-dir`` writes the document under the name the sender chose, so that
name must not be able to do anything but name an ordinary, visible file, on the
agencies' Linux and Windows machines alike. The ustar layer already refuses path
separators, control and format characters, ``< > : " | ? *``, leading or trailing
whitespace, a leading ``-``, ``.`` and ``..`` (docs/format.md, section 2.5). On top of
that a document name must not:

* start with ``.``: a hidden file (``.bashrc``, ``.profile`` in a home folder);
* end with ``.``: Windows drops trailing dots, so ``surat.pdf.`` would be written as
  another name than the one signed;
* be a Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``-``COM9``,
  ``LPT0``-``LPT9``, with superscript digits too, ``CONIN$``, ``CONOUT$``), in any
  case, alone or before an extension (``nul.txt``, ``Con.tar.gz``): Windows opens the
  device instead of a file;
* end with ``.minisig``: the container's second member carries that suffix, and
  ``open`` refuses a document member named like it.

``seal`` refuses such a name as a usage error (the sender chooses another with
``--name``); ``open`` refuses a document carrying one as malformed (exit code 4),
whatever the output path, before anything is written.
"""

from __future__ import annotations

from sandi.i18n import _

SIGNATURE_SUFFIX = ".minisig"

_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)


def document_name_problem(name: str) -> str | None:
    """Why ``name`` may not be a sealed document's name (a sentence), or None if it may."""
    if name.startswith("."):
        return _("it starts with a dot, which makes a hidden file")
    if name.endswith("."):
        return _("it ends with a dot, which Windows drops from file names")
    # Windows matches a device name before the first dot, ignoring trailing spaces and dots.
    stem = name.split(".", 1)[0].rstrip(" .")
    if stem.upper() in _DEVICE_NAMES:
        return _("{stem} is a device name on Windows").format(stem=stem)
    if name.endswith(SIGNATURE_SUFFIX):
        return _("it ends with {suffix}, the suffix of the signature member").format(suffix=SIGNATURE_SUFFIX)
    return None
