"""Run one fuzz target under atheris (libFuzzer): ``python -m fuzz.run TARGET [libFuzzer args]``.

sandi's modules are instrumented for coverage as they are imported; an exception the
target does not allow propagates, and libFuzzer saves the input as a crash artifact
and exits non-zero. ``scripts/fuzz`` runs every target this way.
"""

from __future__ import annotations

import importlib
import sys

INSTRUMENTED = (
    "sandi.audit.export", "sandi.audit.journal", "sandi.authority.bundle", "sandi.authority.enrolment",
    "sandi.directory.snapshot", "sandi.documents.metadata", "sandi.formats.age", "sandi.formats.minisign",
    "sandi.formats.ustar", "sandi.home", "sandi.keystore.base", "sandi.keystore.memory", "sandi.policy",
)


def main() -> None:
    import atheris

    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit("usage: python -m fuzz.run TARGET [libFuzzer options] [CORPUS_DIR...]")
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["sandi"]):
        from fuzz import targets

        # the targets import their parsers lazily: import them here, instrumented
        for module in INSTRUMENTED:
            importlib.import_module(module)
    target = targets.TARGETS[name]
    atheris.Setup(sys.argv, target.run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
