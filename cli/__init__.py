"""sandi's command line (installed as ``sandi_cli``): a thin layer over the library.

One module per command group; every error goes through one funnel in
:mod:`sandi_cli.main` that prints ``error: ...`` / ``hint: ...`` and exits with
the code documented in ``docs/cli.md``.
"""
