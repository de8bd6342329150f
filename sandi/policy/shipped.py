"""The policy files sandi ships (the ``sandi_policies`` package: ``banten``, ...).

A shipped policy is reachable by name wherever a policy file is taken
(``--from-policy banten``, ``sandi policy validate banten``) and can be copied out
with ``sandi policy example banten -o banten.toml``, so a wheel user needs no
source tree. The package is data only; it is found by name, not imported.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = "sandi_policies"
_SUFFIX = ".toml"


def shipped_policy_names() -> list[str]:
    """The names of the shipped policy files (``banten``, ``banten-tests``)."""
    try:
        entries = list(files(PACKAGE).iterdir())
    except ModuleNotFoundError:
        return []
    return sorted(e.name[: -len(_SUFFIX)] for e in entries if e.name.endswith(_SUFFIX))


def shipped_policy_path(name: str) -> Path | None:
    """The file of the shipped policy ``name``, or None if sandi ships no such policy."""
    if name not in shipped_policy_names():
        return None
    found = Path(str(files(PACKAGE) / f"{name}{_SUFFIX}"))
    return found if found.is_file() else None
